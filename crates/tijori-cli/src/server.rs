//! `tijori server`: builds the vault from its parts and serves the API until interrupted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tijori_core::audit::archive::Retention;
use tijori_core::audit::{AuditEvent, Outcome};
use tijori_core::seal::{SEAL_PKCS11, SEAL_SHAMIR};
use tijori_core::{SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_server::{app, AppState, Metrics, ServerConfig};
use tijori_store::sqlite::SqliteStore;
use tijori_store::Store;

use crate::hsm::HsmArgs;
use crate::ServerArgs;

/// Name of the dev root key file inside the data dir.
const DEV_KEY_FILE: &str = "dev-root.key";
/// How often expired tokens, codes and idempotency answers are removed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// How often audit records past the online window are archived (also once at start).
const ARCHIVE_EVERY: Duration = Duration::from_secs(86_400);

pub(crate) fn run(args: ServerArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "this version serves plain HTTP (TLS comes with a later release), so it listens on \
             loopback only, not {}.\nUse --listen 127.0.0.1:{} (behind a TLS proxy on the same host)",
            args.listen,
            args.listen.port()
        );
    }
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
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
}

async fn serve(args: ServerArgs) -> Result<()> {
    create_private_dir(&args.data.path)?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&args.data.path)
            .with_context(|| format!("opening the store in {}", args.data.path.display()))?,
    );
    let config = VaultConfig {
        kek_cryptoperiod_days: i64::from(args.kek_cryptoperiod_days),
        data_key_cryptoperiod_days: i64::from(args.data_key_cryptoperiod_days),
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
            open_dev(&vault, &args).await?;
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
    let audit_vault = vault.clone();
    let state = AppState {
        vault: vault.clone(),
        metrics: Arc::new(Metrics::default()),
        config: ServerConfig {
            body_limit: args.body_limit,
        },
    };
    let router = app(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;

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
    println!("tijori listening on http://{addr} ({mode})");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")?;
    audit_vault
        .audit_system("system.stop")
        .await
        .context("writing the audit trail")?;
    checkpoint(&audit_vault).await;
    let _ = stop_forwarding.send(true);
    for f in forwarders {
        let _ = f.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Dev mode: the root key from a file beside the data, unsealed at once, a known root token.
async fn open_dev(vault: &Vault, args: &ServerArgs) -> Result<()> {
    let key_path = args.data.path.join(DEV_KEY_FILE);
    let (provider, created) = DevKeyFile::load_or_create(&key_path).context("dev root key")?;
    tracing::warn!(
        key_file = %key_path.display(),
        created,
        "DEV MODE IS INSECURE: the root key is a plain file beside the data it protects, and HTTP is \
         unencrypted. Never put real customer data in a dev vault."
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

pub(crate) fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data dir {}", dir.display()))?;
    }
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
