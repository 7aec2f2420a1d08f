//! `tijori server`: builds the vault from its parts and serves the API until interrupted, over
//! TLS, or over plain HTTP on a loopback address only (dev mode, or behind a local TLS proxy
//! with --insecure-plain-http). It never serves plain HTTP to another machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tijori_core::audit::archive::Retention;
use tijori_core::audit::{AuditEvent, Outcome};
use tijori_core::seal::{SEAL_PKCS11, SEAL_SHAMIR};
use tijori_core::{SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_server::{app, listener, AppState, Metrics, ServerConfig, TlsConfig, TlsFiles};

use crate::hsm::HsmArgs;
use crate::ServerArgs;

/// Name of the dev root key file inside the data dir.
const DEV_KEY_FILE: &str = "dev-root.key";
/// How often expired tokens, codes and idempotency answers are removed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// How often audit records past the online window are archived (also once at start).
const ARCHIVE_EVERY: Duration = Duration::from_secs(86_400);
/// How long a stopping server waits, once its connections are closed, for requests still
/// running (their clients gone) to finish and write their records.
const REQUESTS_DRAIN: Duration = Duration::from_secs(30);

pub(crate) fn run(args: ServerArgs) -> Result<()> {
    // Before anything touches the data dir: a server that would listen wrongly never starts.
    let tls = transport(&args)?;
    init_logging();
    if cfg!(feature = "unaudited-bench") {
        if !args.dev {
            bail!("this tijori was built with the unaudited-bench feature (no audit records, for measuring their cost): it runs dev vaults only");
        }
        tracing::warn!("built with unaudited-bench: requests are NOT audited; for benchmarks only");
    }
    if tls.is_none() && !args.dev {
        tracing::warn!(
            listen = %args.listen,
            "--insecure-plain-http: serving plain HTTP; only a TLS-terminating proxy on this host \
             may reach this address"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, tls))
}

/// The listener's TLS options, part of `tijori server`'s arguments.
#[derive(clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first). Reloaded
    /// with --tls-key when the process receives SIGHUP.
    #[arg(
        id = "tls_cert",
        long = "tls-cert",
        env = "TIJORI_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Keep it readable by the
    /// server's user only.
    #[arg(
        id = "tls_key",
        long = "tls-key",
        env = "TIJORI_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    key: Option<PathBuf>,

    /// Ask clients for a certificate and verify one presented against these CAs (PEM); a
    /// certificate that does not verify fails the handshake. Clients without one are served
    /// as usual (their bearer credential authenticates them).
    #[arg(
        id = "tls_client_ca",
        long = "tls-client-ca",
        env = "TIJORI_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    client_ca: Option<PathBuf>,

    /// Production without TLS, on a loopback address: only for a TLS-terminating proxy on
    /// the same host. Everything between the proxy and the vault travels in clear text.
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_plain_http: bool,
}

/// What the listener speaks: TLS from the given files, or plain HTTP where that is allowed
/// (loopback only; in production only with --insecure-plain-http). Refuses, saying what to
/// give, otherwise.
fn transport(args: &ServerArgs) -> Result<Option<TlsConfig>> {
    let (cert, key) = match (&args.tls.cert, &args.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => {
            if !args.listen.ip().is_loopback() {
                bail!(
                    "refusing to serve plain HTTP on {}, which is not a loopback address: give \
                     --tls-cert FILE and --tls-key FILE (or TIJORI_TLS_CERT and TIJORI_TLS_KEY) to \
                     serve HTTPS, or listen on 127.0.0.1:{}.\nFor a trial certificate run: tijori \
                     operator dev-cert",
                    args.listen,
                    args.listen.port()
                );
            }
            if !args.dev && !args.tls.insecure_plain_http {
                bail!(
                    "a production server serves HTTPS: give --tls-cert FILE and --tls-key FILE \
                     (or TIJORI_TLS_CERT and TIJORI_TLS_KEY).\nOnly behind a TLS-terminating proxy \
                     on this same host, add --insecure-plain-http instead (loopback addresses only)"
                );
            }
            return Ok(None);
        }
        _ => bail!("give both --tls-cert and --tls-key, or neither"),
    };
    let files = TlsFiles {
        cert,
        key,
        client_ca: args.tls.client_ca.clone(),
    };
    let tls = TlsConfig::load(files).map_err(|e| {
        anyhow::anyhow!(
            "{e}.\nThe server does not start without a working certificate and key; for a trial \
             pair run: tijori operator dev-cert"
        )
    })?;
    Ok(Some(tls))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    tijori_server::install_panic_hook();
}

async fn serve(args: ServerArgs, tls: Option<TlsConfig>) -> Result<()> {
    let store = args.storage.open(&args.data.path).await?;
    let config = VaultConfig {
        kek_cryptoperiod_days: i64::from(args.kek_cryptoperiod_days),
        data_key_cryptoperiod_days: i64::from(args.data_key_cryptoperiod_days),
        operators: args.accounts.policy(),
        dual_control: args.accounts.dual_control(),
        audit_hash_per_hour: args.audit_hash_per_hour,
        ..VaultConfig::default()
    };
    let vault = Vault::open(store.clone(), Arc::new(SystemClock), config).await?;
    let seal_type = vault.seal_type().await?;
    if !args.dev && args.dev_root_token.is_some() {
        bail!("--dev-root-token is for dev mode only; a production vault's root token is the one tijori operator init printed");
    }
    if args.dev && args.hsm.given() {
        bail!("the --hsm-... options are for production vaults; a dev vault's root key is its key file");
    }
    let mode = match (args.dev, seal_type) {
        (true, None) => {
            open_dev(&vault, &args, tls.is_some()).await?;
            "dev mode"
        }
        (true, Some(kind)) => bail!(
            "{} is a production vault (its root key is held by {kind}); run tijori server \
             without --dev",
            args.data.path.display()
        ),
        (false, None) => bail!(
            "{} holds no initialized production vault.\nCreate one with: tijori operator init \
             --data-dir {}   (or try Tijori with: tijori server --dev)",
            args.data.path.display(),
            args.data.path.display()
        ),
        (false, Some(kind)) if kind == SEAL_PKCS11 => {
            open_hsm(&vault, &args.hsm, &args.data.path).await?;
            "unsealed by the HSM"
        }
        (false, Some(kind)) if kind == SEAL_SHAMIR => {
            if args.hsm.given() {
                bail!(
                    "{} is unsealed with custodians' key shares, not by an HSM: drop the \
                     --hsm-... options (and TIJORI_HSM_* variables), start it, and unseal it \
                     with tijori operator unseal",
                    args.data.path.display()
                );
            }
            tracing::warn!(
                seal = %kind,
                "vault starts SEALED: custodians unseal it with tijori operator unseal \
                 (POST /v1/sys/unseal); data requests answer 503 sealed until then"
            );
            "sealed"
        }
        (false, Some(kind)) => bail!(
            "{} is sealed by '{kind}', which this version of tijori does not know: run the \
             version that initialized it",
            args.data.path.display()
        ),
    };
    let vault = Arc::new(vault);
    // Other nodes' changes (principals, roles, keys, erasures) are reloaded as they come.
    tokio::spawn(vault.clone().follow_changes());
    let audit_vault = vault.clone();
    let state = AppState {
        vault: vault.clone(),
        metrics: Arc::new(Metrics::default()),
        config: ServerConfig {
            body_limit: args.body_limit,
            body_timeout: args.limits.body_timeout(),
        },
        requests: Default::default(),
    };
    let requests = state.requests.clone();
    let rejected = tijori_server::record_rejected(state.clone());
    let router = app(state);
    let tcp = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = tcp.local_addr()?;

    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = vault.housekeeping().await {
                tracing::warn!(error = %e, "housekeeping failed; will retry");
            }
        }
    });
    let signer = audit_vault.clone();
    let every = Duration::from_secs(args.audit_checkpoint_secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            checkpoint(&signer).await;
        }
    });
    let retention = args.retention.retention(&args.data.path)?;
    let archiver = audit_vault.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ARCHIVE_EVERY);
        loop {
            tick.tick().await;
            archive(&archiver, &retention).await;
        }
    });
    let (stop_forwarding, stopped) = tokio::sync::watch::channel(false);
    let forwarders: Vec<_> = args
        .syslog
        .iter()
        .map(|target| {
            tracing::info!(%target, "forwarding the audit trail as syslog");
            let f = tijori_syslog::Forwarder::new(
                target.clone(),
                store.clone(),
                audit_vault.watch_audit(),
            );
            tokio::spawn(f.run(stopped.clone()))
        })
        .collect();

    audit_vault
        .audit_system("system.start")
        .await
        .context("writing the audit trail")?;
    let limits = args.limits.limits();
    match tls {
        Some(tls) => {
            // Listening for SIGHUP before saying where we listen: from then on it reloads
            // (its default action would end the process).
            reload_on_hangup(tls.clone())?;
            println!("tijori listening on https://{addr} ({mode})");
            listener::serve(tcp, router, Some(tls), limits, rejected, shutdown_signal()).await;
        }
        None => {
            println!("tijori listening on http://{addr} ({mode})");
            listener::serve(tcp, router, None, limits, rejected, shutdown_signal()).await;
        }
    }
    // Requests whose clients left before their answer still run to their audit record.
    requests.close();
    if tokio::time::timeout(REQUESTS_DRAIN, requests.wait())
        .await
        .is_err()
    {
        tracing::error!(
            running = requests.len(),
            "requests still running {} s after the listener closed; stopping without their \
             audit records",
            REQUESTS_DRAIN.as_secs()
        );
    }
    audit_vault
        .audit_system("system.stop")
        .await
        .context("writing the audit trail")?;
    checkpoint(&audit_vault).await;
    let _ = stop_forwarding.send(true);
    for f in forwarders {
        let _ = f.await;
    }
    // Each database file whole on its own after a clean stop: a copy of `audit.sqlite3` alone
    // holds every record, the last (`system.stop`) among them.
    if let Err(e) = store.settle_logs().await {
        tracing::warn!(error = %e, "the write-ahead logs stay beside the database files (consistent; copy them with the files)");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Dev mode: the root key from a file beside the data, unsealed at once, a known root token.
async fn open_dev(vault: &Vault, args: &ServerArgs, tls: bool) -> Result<()> {
    let key_path = args.data.path.join(DEV_KEY_FILE);
    let (provider, created) = DevKeyFile::load_or_create(&key_path).context("dev root key")?;
    let http = if tls { "" } else { ", and HTTP is unencrypted" };
    tracing::warn!(
        key_file = %key_path.display(),
        created,
        "DEV MODE IS INSECURE: the root key is a plain file beside the data it protects{http}. \
         Never put real customer data in a dev vault."
    );
    vault
        .unseal(Arc::new(provider))
        .await
        .context("unsealing with the dev key file")?;
    vault
        .audit_system("system.unseal")
        .await
        .context("writing the audit trail")?;
    match &args.dev_root_token {
        Some(token) => {
            vault.install_root_token(token).await?;
            vault.audit_system("system.root_token_set").await?;
        }
        None if !vault.has_root().await? => {
            let token = vault.generate_root_token().await?;
            vault.audit_system("system.root_token_set").await?;
            println!("Root token (admin; shown once, keep it safe): {token}");
        }
        None => println!("Root token: the one printed at this data dir's first start (or pass --dev-root-token)."),
    }
    Ok(())
}

/// A vault whose root key is in an HSM: opens the key (never creates one) and unseals, or
/// refuses to start, naming what to fix. The provider is dropped once the key-encryption keys
/// are unwrapped: a sealed server unseals again by restarting.
async fn open_hsm(vault: &Vault, hsm: &HsmArgs, data_dir: &std::path::Path) -> Result<()> {
    if !hsm.given() {
        bail!(
            "{} keeps its root key in an HSM: give --hsm-module, --hsm-token-label (or \
             --hsm-slot) and --hsm-key-label as at `tijori operator init`, and the user PIN in \
             TIJORI_HSM_PIN or --hsm-pin-file",
            data_dir.display()
        );
    }
    let unsealed = async {
        let provider = hsm.open()?;
        match vault.unseal(Arc::new(provider)).await {
            Ok(()) => Ok(()),
            Err(tijori_core::CoreError::RootMismatch) => Err(anyhow::anyhow!(
                "the HSM's {} does not open this vault's keys: give the token and key label \
                 that `tijori operator init` used for {}",
                hsm.describe(),
                data_dir.display()
            )),
            Err(e) => Err(e).context("unsealing with the HSM"),
        }
    }
    .await;
    if let Err(e) = &unsealed {
        // Audited like a refused share. The messages name modules, tokens and labels, never a
        // PIN (tijori-hsm's errors carry none). Best effort: the server stops either way.
        let failed = AuditEvent::system(
            vault.now(),
            "system.unseal",
            Outcome::Failure,
            Some(format!("{e:#}")),
        );
        if let Err(audit) = vault.audit(vec![failed]).await {
            tracing::error!(error = %audit, "could not audit the failed unseal");
        }
    }
    unsealed?;
    tracing::info!(root = %hsm.describe(), "vault unsealed by the HSM");
    vault
        .audit_system("system.unseal")
        .await
        .context("writing the audit trail")?;
    Ok(())
}

/// Signs the audit chain's head; a failure is logged, and the records stay chained.
async fn checkpoint(vault: &Vault) {
    match vault.checkpoint_audit().await {
        Ok(Some(cp)) => tracing::debug!(seq = cp.seq, "audit trail signed"),
        Ok(None) | Err(tijori_core::CoreError::Sealed) => {}
        Err(e) => tracing::warn!(error = %e, "could not sign the audit trail's head; will retry"),
    }
}

/// Moves old audit records to archive files (off the async workers: it reads and writes files
/// for a while); a failure is logged and audited, and the records stay online until next time.
async fn archive(vault: &Arc<Vault>, retention: &Retention) {
    let (vault, retention) = (vault.clone(), retention.clone());
    let handle = tokio::runtime::Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        handle.block_on(vault.archive_audit(&retention, |_| {}))
    })
    .await;
    match run {
        Ok(Ok(report)) => {
            if let Some((path, n)) = &report.written {
                tracing::info!(records = n, file = %path.display(), "audit records archived");
            }
            for path in &report.removed {
                tracing::info!(file = %path.display(), "audit archive past retention deleted");
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "audit archiving failed; records stay online"),
        Err(e) => tracing::error!(error = %e, "audit archiving stopped"),
    }
}

/// On every SIGHUP, reads the TLS files again; new connections get the new certificate, open
/// ones keep theirs. A failed reload is logged and the certificate in force stays.
fn reload_on_hangup(tls: TlsConfig) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let cert = tls.files().cert.display().to_string();
            match tls.reload() {
                Ok(()) => tracing::info!(%cert, "SIGHUP: TLS certificate and key reloaded"),
                Err(e) => tracing::error!(
                    error = %e,
                    "SIGHUP: TLS reload failed; still serving the previous certificate"
                ),
            }
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
