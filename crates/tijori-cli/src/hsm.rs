//! The PKCS#11 HSM options, shared by `tijori operator init` and `tijori server`: where the root
//! key lives, and where the token's user PIN comes from. The PIN is never an argument (arguments
//! show in process lists and shell history): it comes from `TIJORI_HSM_PIN` or a file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tijori_hsm::{Pkcs11Config, Pkcs11Provider};
use zeroize::Zeroizing;

/// The environment variable that may hold the token's user PIN.
pub(crate) const PIN_ENV: &str = "TIJORI_HSM_PIN";

/// Where the vault's root key lives in a PKCS#11 HSM. The PIN is deliberately not a field: it
/// is read only when a [`Pkcs11Config`] is built, into zeroized memory.
#[derive(clap::Args)]
#[command(next_help_heading = "HSM root of trust (PKCS#11)")]
pub(crate) struct HsmArgs {
    /// The HSM vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. The token's user
    /// PIN comes from the TIJORI_HSM_PIN environment variable or --hsm-pin-file, never from an
    /// argument.
    #[arg(long, env = "TIJORI_HSM_MODULE", value_name = "PATH")]
    pub(crate) hsm_module: Option<PathBuf>,
    /// The label of the token holding the root key (preferred over --hsm-slot: slot ids can
    /// change when tokens are added or removed).
    #[arg(
        long,
        env = "TIJORI_HSM_TOKEN_LABEL",
        value_name = "LABEL",
        conflicts_with = "hsm_slot"
    )]
    pub(crate) hsm_token_label: Option<String>,
    /// The token's slot id, instead of --hsm-token-label.
    #[arg(long, env = "TIJORI_HSM_SLOT", value_name = "N")]
    pub(crate) hsm_slot: Option<u64>,
    /// The label of the AES-256 root key on the token. `operator init` generates it inside the
    /// HSM (sensitive, never extractable) if no key has this label yet.
    #[arg(long, env = "TIJORI_HSM_KEY_LABEL", value_name = "LABEL")]
    pub(crate) hsm_key_label: Option<String>,
    /// A file holding the token's user PIN (one line; keep it mode 0600), instead of the
    /// TIJORI_HSM_PIN environment variable.
    #[arg(long, env = "TIJORI_HSM_PIN_FILE", value_name = "FILE")]
    pub(crate) hsm_pin_file: Option<PathBuf>,
}

impl HsmArgs {
    /// Whether any HSM option was given (the PIN's environment variable alone does not count).
    pub(crate) fn given(&self) -> bool {
        self.hsm_module.is_some()
            || self.hsm_token_label.is_some()
            || self.hsm_slot.is_some()
            || self.hsm_key_label.is_some()
            || self.hsm_pin_file.is_some()
    }

    /// The provider configuration, or an error naming each missing option.
    pub(crate) fn config(&self) -> Result<Pkcs11Config> {
        let mut missing = Vec::new();
        if self.hsm_module.is_none() {
            missing.push("--hsm-module PATH (the vendor's PKCS#11 library)");
        }
        if self.hsm_token_label.is_none() && self.hsm_slot.is_none() {
            missing.push("--hsm-token-label LABEL (or --hsm-slot N)");
        }
        if self.hsm_key_label.is_none() {
            missing.push("--hsm-key-label LABEL (the root key's label)");
        }
        let pin = self.pin()?;
        if pin.is_none() {
            missing.push("the user PIN, in TIJORI_HSM_PIN or a file named by --hsm-pin-file");
        }
        match (&self.hsm_module, &self.hsm_key_label, pin) {
            (Some(module), Some(key_label), Some(pin)) if missing.is_empty() => Ok(Pkcs11Config {
                module: module.clone(),
                token_label: self.hsm_token_label.clone(),
                slot: self.hsm_slot,
                pin,
                key_label: key_label.clone(),
            }),
            _ => bail!(
                "the HSM root of trust needs more settings; give:\n  {}",
                missing.join("\n  ")
            ),
        }
    }

    /// The token as the operator named it, for messages.
    pub(crate) fn describe(&self) -> String {
        let token = match (&self.hsm_token_label, self.hsm_slot) {
            (Some(label), _) => format!("token '{label}'"),
            (None, Some(slot)) => format!("the token in slot {slot}"),
            (None, None) => "the token".to_owned(),
        };
        let key = self.hsm_key_label.as_deref().unwrap_or("?");
        format!("key '{key}' on {token}")
    }

    /// The PIN from the file or the environment; both at once is refused as ambiguous.
    fn pin(&self) -> Result<Option<Zeroizing<String>>> {
        let from_env = match std::env::var_os(PIN_ENV) {
            None => None,
            Some(v) => match v.into_string() {
                Ok(pin) => Some(Zeroizing::new(pin)),
                Err(_) => bail!("{PIN_ENV} is not valid UTF-8"),
            },
        };
        match (&self.hsm_pin_file, from_env) {
            (Some(_), Some(_)) => bail!(
                "both {PIN_ENV} and --hsm-pin-file are set: give the HSM user PIN one way only"
            ),
            (Some(path), None) => read_pin_file(path).map(Some),
            (None, Some(pin)) if pin.is_empty() => bail!("{PIN_ENV} is set but empty"),
            (None, pin) => Ok(pin),
        }
    }

    /// Opens the root key for unsealing (never creates one).
    pub(crate) fn open(&self) -> Result<Pkcs11Provider> {
        let cfg = self.config()?;
        Pkcs11Provider::open(&cfg).with_context(|| {
            format!(
                "cannot open the vault's HSM root of trust ({} in {}); check --hsm-module, \
                 --hsm-token-label (or --hsm-slot), --hsm-key-label and the PIN \
                 ({PIN_ENV} or --hsm-pin-file)",
                self.describe(),
                cfg.module.display()
            )
        })
    }

    /// Opens the root key `cfg` (from [`HsmArgs::config`]) names, generating it in the HSM if no
    /// key has the label; answers whether it was generated now.
    pub(crate) fn open_or_create(&self, cfg: &Pkcs11Config) -> Result<(Pkcs11Provider, bool)> {
        Pkcs11Provider::open_or_create(cfg).with_context(|| {
            format!(
                "cannot open the HSM root of trust ({} in {})",
                self.describe(),
                cfg.module.display()
            )
        })
    }
}

/// The first line of `path`, without its line end. Warns if others may read the file.
fn read_pin_file(path: &Path) -> Result<Zeroizing<String>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading the HSM PIN file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "warning: the HSM PIN file {} may be read by other users: chmod 600 it",
            path.display()
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the HSM PIN file {}", path.display()))?,
    );
    let pin = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
    if pin.is_empty() {
        bail!(
            "the HSM PIN file {} is empty: put the token's user PIN on its first line",
            path.display()
        );
    }
    Ok(pin)
}
