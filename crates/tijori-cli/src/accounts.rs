//! Operators from the command line: the server's account rules (`tijori server` flags), and
//! the person's side of enrollment and login (`tijori operator enroll|login`), which read
//! secrets from standard input, never from arguments.

use anyhow::{bail, Result};
use serde_json::json;
use tijori_core::approval::{DualControl, Guarded};
use tijori_core::operator::OperatorPolicy;
use zeroize::Zeroizing;

/// Account rules and dual control of `tijori server` (PCI DSS 8 defaults).
#[derive(clap::Args, Debug)]
pub(crate) struct AccountArgs {
    /// Failed logins after which an operator's account locks.
    #[arg(long, env = "TIJORI_LOCKOUT_AFTER", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    lockout_after: u32,
    /// How long a lockout lasts, in seconds (at least 30 minutes in PCI DSS 8.3.4).
    #[arg(long, env = "TIJORI_LOCKOUT_SECS", default_value_t = 1800, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(1..))]
    lockout_secs: u32,
    /// Idle time after which an operator's session ends, in seconds.
    #[arg(long, env = "TIJORI_SESSION_IDLE_SECS", default_value_t = 900, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(1..))]
    session_idle_secs: u32,
    /// Longest life of a session, active or not, in seconds.
    #[arg(long, env = "TIJORI_SESSION_MAX_SECS", default_value_t = 43_200, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(1..))]
    session_max_secs: u32,
    /// Days without login after which an operator's account is disabled.
    #[arg(long, env = "TIJORI_INACTIVE_DAYS", default_value_t = 90, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..))]
    inactive_days: u32,

    /// Operations that need a second operator's approval (dual control), comma-separated:
    /// policy_change (custom roles), key_rotation, bulk_reveal, audit_export (over the API).
    /// Recommended in production.
    #[arg(long, env = "TIJORI_DUAL_CONTROL", value_delimiter = ',', value_name = "OPS",
          value_parser = parse_guarded)]
    dual_control: Vec<Guarded>,
    /// A detokenize of more tokens than this is a bulk reveal (under dual control).
    #[arg(
        long,
        env = "TIJORI_BULK_REVEAL_THRESHOLD",
        default_value_t = 100,
        value_name = "N"
    )]
    bulk_reveal_threshold: usize,
    /// How long a dual-control request waits for approval, and an approval for use, in seconds.
    #[arg(long, env = "TIJORI_APPROVAL_WINDOW_SECS", default_value_t = 3600, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(60..=604_800))]
    approval_window_secs: u32,
}

fn parse_guarded(name: &str) -> Result<Guarded, String> {
    Guarded::parse(name).ok_or_else(|| {
        format!("unknown operation '{name}'; use policy_change, key_rotation, bulk_reveal or audit_export")
    })
}

impl AccountArgs {
    pub(crate) fn policy(&self) -> OperatorPolicy {
        OperatorPolicy {
            max_failures: i64::from(self.lockout_after),
            lockout_secs: i64::from(self.lockout_secs),
            idle_secs: i64::from(self.session_idle_secs),
            session_max_secs: i64::from(self.session_max_secs),
            inactive_days: i64::from(self.inactive_days),
            ..OperatorPolicy::default()
        }
    }

    pub(crate) fn dual_control(&self) -> DualControl {
        DualControl {
            guarded: self.dual_control.iter().copied().collect(),
            bulk_reveal_threshold: self.bulk_reveal_threshold,
            window_secs: i64::from(self.approval_window_secs),
        }
    }
}

/// Where the person's commands reach the server (they need no credential: they make one).
#[derive(clap::Args)]
pub(crate) struct Endpoint {
    /// The server's base URL.
    #[arg(
        long,
        env = "TIJORI_ADDR",
        default_value = "http://127.0.0.1:7400",
        value_name = "URL"
    )]
    addr: String,
    /// Trust only the CA certificate(s) in this PEM file for the server's certificate.
    #[arg(long, env = "TIJORI_CA_CERT", value_name = "FILE", value_parser = crate::remote::parse_ca_cert)]
    ca_cert: Option<crate::remote::CaCert>,
    /// Your username.
    #[arg(long, value_name = "NAME")]
    username: String,
}

impl Endpoint {
    fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let agent = crate::remote::agent(self.ca_cert.as_ref());
        let url = format!("{}{path}", self.addr.trim_end_matches('/'));
        crate::remote::answer(agent.post(&url).send_json(body))
    }
}

/// A secret from standard input (see [`crate::secret_input`]); refused if empty.
fn secret_line(prompt: &str) -> Result<Zeroizing<String>> {
    let secret = crate::secret_input::read_secret(prompt)?;
    if secret.is_empty() {
        bail!("{prompt}: nothing was given on standard input");
    }
    Ok(secret)
}

/// `tijori operator enroll`: the person sets their password with the administrator's code and
/// gets their TOTP secret, shown as a QR code for an authenticator app.
pub(crate) fn enroll(to: &Endpoint) -> Result<()> {
    let code = secret_line("Enrollment code (from your administrator)")?;
    let password = secret_line("New password (12+ characters, letters and digits)")?;
    let body = json!({"username": to.username, "enrollment_code": code.as_str(), "password": password.as_str()});
    let answer = to.post("/v1/auth/enroll", body)?;
    let uri = Zeroizing::new(
        answer["otpauth_uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let secret = Zeroizing::new(answer["secret"].as_str().unwrap_or_default().to_owned());
    println!("Scan this with your authenticator app (or type the secret below):\n");
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(qr) => println!(
            "{}",
            qr.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        ),
        Err(_) => println!("(the URI is too long for a QR code; use it as text)"),
    }
    println!("URI:    {}", uri.as_str());
    println!("Secret: {}  (SHA-1, 6 digits, 30 seconds)", secret.as_str());
    println!(
        "\nThen log in once to confirm the app: tijori operator login --addr {} --username {}",
        to.addr, to.username
    );
    Ok(())
}

/// `tijori operator login`: prints the session token alone on standard output, for
/// `export TIJORI_TOKEN=$(tijori operator login ...)`.
pub(crate) fn login(to: &Endpoint) -> Result<()> {
    let password = secret_line("Password")?;
    let code = secret_line("One-time code")?;
    let body =
        json!({"username": to.username, "password": password.as_str(), "totp": code.as_str()});
    let answer = to.post("/v1/auth/login", body)?;
    let token = Zeroizing::new(
        answer["session_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let idle = answer["idle_timeout_seconds"].as_i64().unwrap_or(0);
    eprintln!(
        "Logged in; the session ends after {} idle minutes.",
        idle / 60
    );
    println!("{}", token.as_str());
    Ok(())
}
