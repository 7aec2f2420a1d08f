//! `tijori operator ...`: initializing a production vault with custodians' key shares or under
//! an HSM root key, sealing or unsealing a running one, and making a self-signed certificate
//! for trials. It never prints a private key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tijori_core::seal::SEAL_PKCS11;
use tijori_core::{SystemClock, Vault, VaultConfig};
use zeroize::Zeroizing;

use crate::hsm::HsmArgs;
use crate::remote::{agent, answer, request, CaCert};
use crate::storage::StorageArgs;
use crate::Remote;

/// Opens (creating if needed) the vault's store and a vault over it, sealed.
async fn open_vault(data_dir: &Path, storage: &StorageArgs) -> Result<Vault> {
    let store = storage.open(data_dir).await?;
    Ok(Vault::open(store, Arc::new(SystemClock), VaultConfig::default()).await?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the runtime")
}

/// `tijori operator init`: a new production vault; prints its shares (or each encrypted to its
/// custodian's age recipient) and the root token once.
pub(crate) fn init(
    data_dir: &Path,
    storage: &StorageArgs,
    shares: u8,
    threshold: u8,
    recipients: &[String],
) -> Result<ExitCode> {
    if threshold > shares {
        bail!("--threshold ({threshold}) cannot exceed --shares ({shares})");
    }
    let recipients = parse_recipients(recipients, shares)?;
    let done = runtime()?.block_on(async {
        let vault = open_vault(data_dir, storage).await?;
        anyhow::Ok(vault.init_with_shares(shares, threshold).await?)
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Initialized a production vault in {}.\n\n\
         Key shares: any {} of these {} unseal the vault. Give each to a different custodian\n\
         now; they are shown this once and stored nowhere.\n",
        storage.describe(data_dir),
        done.threshold,
        done.shares.len()
    )?;
    for (i, share) in done.shares.iter().enumerate() {
        match recipients.get(i) {
            Some(r) => {
                let sealed = age::encrypt_and_armor(r, share.as_bytes())
                    .context("encrypting a share to its custodian")?;
                writeln!(out, "Key share {} (age-encrypted to {r}):\n{sealed}", i + 1)?;
            }
            None => writeln!(out, "Key share {}: {}", i + 1, share.as_str())?,
        }
    }
    writeln!(
        out,
        "\nInitial root token (admin; shown once, keep it safe): {}\n\n\
         Next: tijori server --data-dir {}   (it starts sealed), then {} custodians run\n\
         tijori operator unseal",
        done.root_token.as_str(),
        storage.describe(data_dir),
        done.threshold
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Custodians' age recipients: none, or exactly one per share.
fn parse_recipients(given: &[String], shares: u8) -> Result<Vec<age::x25519::Recipient>> {
    if !given.is_empty() && given.len() != usize::from(shares) {
        bail!(
            "{} --share-recipient given for {shares} shares: give one per share, in order",
            given.len()
        );
    }
    given
        .iter()
        .map(|r| {
            r.parse::<age::x25519::Recipient>().map_err(|e| {
                anyhow::anyhow!("--share-recipient {r} is not an age public key (age1...): {e}")
            })
        })
        .collect()
}

/// `tijori operator init --hsm-...`: a new production vault under a root key in the HSM
/// (generated there if the label names none); prints the root token once.
pub(crate) fn init_hsm(data_dir: &Path, storage: &StorageArgs, hsm: &HsmArgs) -> Result<ExitCode> {
    // Check everything that needs no HSM first, so a mistyped dir makes no key in the HSM.
    let cfg = hsm.config()?;
    let (root_token, created) = runtime()?.block_on(async {
        let vault = open_vault(data_dir, storage).await?;
        if vault.holds_vault().await? {
            bail!(
                "{} holds a vault already; initialize a new, empty data dir",
                storage.describe(data_dir)
            );
        }
        let (provider, created) = hsm.open_or_create(&cfg)?;
        let token = vault
            .init_with_provider(Arc::new(provider), SEAL_PKCS11)
            .await?;
        anyhow::Ok((token, created))
    })?;
    let key = if created {
        "generated now inside the HSM; it never leaves it"
    } else {
        "an existing key of the HSM"
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Initialized a production vault in {}.\n\n\
         Root of trust: {} in {} ({key}).\n\
         There are no key shares: whoever holds the HSM's user PIN can unseal this vault.\n\n\
         Initial root token (admin; shown once, keep it safe): {}\n\n\
         Next: tijori server --data-dir {} with the same --hsm-... options and the PIN in\n\
         TIJORI_HSM_PIN (or --hsm-pin-file); it unseals itself from the HSM at start.",
        storage.describe(data_dir),
        hsm.describe(),
        cfg.module.display(),
        root_token.as_str(),
        storage.describe(data_dir),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `tijori operator unseal`: one share from stdin to the server; prints the progress.
pub(crate) fn unseal(addr: &str, ca: Option<&CaCert>) -> Result<ExitCode> {
    let share = crate::secret_input::read_secret("Key share (tjs1-...)")?;
    if share.trim().is_empty() {
        bail!("give the key share on stdin, e.g.  tijori operator unseal < share.txt");
    }
    let body = serde_json::json!({ "share": share.trim() });
    let url = format!("{}/v1/sys/unseal", addr.trim_end_matches('/'));
    let reply = answer(agent(ca).post(&url).send_json(body))?;
    if reply["sealed"] == false {
        println!("unsealed");
    } else {
        println!(
            "share accepted: {} of {}; still sealed",
            reply["progress"], reply["threshold"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tijori operator seal`: drops every key from the server's memory.
pub(crate) fn seal(remote: &Remote) -> Result<ExitCode> {
    answer(request(remote, "POST", "/v1/sys/seal").send_json(serde_json::json!({})))?;
    println!(
        "sealed: the server holds no key until custodians unseal it (a vault whose root key is \
         in an HSM unseals again when the server restarts)"
    );
    Ok(ExitCode::SUCCESS)
}

/// File names `tijori operator dev-cert` writes.
const DEV_CERT: &str = "tijori-dev.crt";
const DEV_KEY: &str = "tijori-dev.key";

/// `tijori operator dev-cert`'s arguments.
#[derive(clap::Args)]
pub(crate) struct DevCertArgs {
    /// Where to write tijori-dev.crt and tijori-dev.key.
    #[arg(long, default_value = ".", value_name = "DIR")]
    out_dir: PathBuf,
    /// Another DNS name or IP address the certificate is valid for; repeat for several.
    #[arg(long = "hostname", value_name = "NAME")]
    hostnames: Vec<String>,
    /// Days the certificate is valid, 1 to 825.
    #[arg(long, default_value_t = 90, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=825))]
    days: u32,
    /// Replace tijori-dev.crt and tijori-dev.key if they exist.
    #[arg(long)]
    force: bool,
}

/// `tijori operator dev-cert`: a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1,
/// ::1 and `--hostname`s, and its key (mode 0600), for trials; prints how to use them.
pub(crate) fn dev_cert(args: &DevCertArgs) -> Result<ExitCode> {
    let DevCertArgs {
        out_dir,
        hostnames,
        days,
        force,
    } = args;
    let (days, force) = (*days, *force);
    let (cert_path, key_path) = (out_dir.join(DEV_CERT), out_dir.join(DEV_KEY));
    for path in [&cert_path, &key_path] {
        if path.exists() && !force {
            bail!(
                "{} exists; pass --force to replace it, or choose another --out-dir",
                path.display()
            );
        }
    }
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    for h in hostnames {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names.clone())
        .with_context(|| format!("a --hostname is not a DNS name or IP address: {names:?}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Tijori trial certificate (not for production)",
    );
    // An hour back, for clients whose clocks run a little behind.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;

    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let key_pem = Zeroizing::new(key.serialize_pem());
    write_new(&key_path, key_pem.as_bytes(), 0o600, force)?;
    write_new(&cert_path, cert.pem().as_bytes(), 0o644, force)?;
    let (c, k) = (cert_path.display(), key_path.display());
    println!(
        "Wrote a self-signed TLS certificate FOR TRIALS ONLY, not for production:\n\
         \x20 certificate: {c}   (valid {days} days for {})\n\
         \x20 private key: {k}   (mode 0600; it never leaves this machine)\n\n\
         Serve HTTPS with it (add --dev for a trial vault):\n\
         \x20 tijori server --tls-cert {c} --tls-key {k}\n\n\
         Clients trust this certificate, and nothing else, with:\n\
         \x20 tijori keys status --addr https://127.0.0.1:7400 --ca-cert {c}\n\
         \x20 curl --cacert {c} https://127.0.0.1:7400/v1/health\n\n\
         In production use a certificate from your organization's CA: a self-signed one is\n\
         trusted only where it was copied by hand, and cannot be revoked.",
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a file that did not exist (or, with `replace`, is removed first), created with `mode`
/// so a key is never readable by others, not even for a moment.
fn write_new(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if replace {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("replacing {}", path.display()));
            }
            _ => {}
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
