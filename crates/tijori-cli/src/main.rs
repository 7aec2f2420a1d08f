//! The `tijori` command: runs the vault and operates it. Parsing and help text live here;
//! everything else is the library crates'. `anyhow` is used only in this crate.
#![forbid(unsafe_code)]

mod audit;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tijori: a self-hosted data-privacy vault for payment data.
///
/// Tijori takes card numbers, IBANs, CNICs, mobile-wallet numbers and other sensitive values,
/// returns tokens, and keeps the originals encrypted, so that your other systems hold tokens
/// only. Start a trial vault with `tijori server --dev`, then see README.md for a curl session.
// No `Debug` on the argument types: they can hold the root token.
#[derive(Parser)]
#[command(name = "tijori", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the vault's HTTP API.
    ///
    /// With --dev: a complete single-node vault on the embedded SQLite store in --data-dir,
    /// initialized and unsealed with a local key file. Insecure by design (the key lies beside
    /// the data), plain HTTP, loopback only: for trials, development and tests.
    ///
    /// Example: tijori server --dev --data-dir ./tijori-data --dev-root-token my-root-token
    Server(ServerArgs),

    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that the audit trail is intact: every record chains to the one before it.
    ///
    /// Recomputes the hash chain of a data dir's audit trail from the stored records. Exits 0 if
    /// it is intact; otherwise exits 1 and names the first record that was edited, deleted,
    /// inserted or moved. Opens the database read-only; it can run beside a live server.
    ///
    /// Example: tijori audit verify --data-dir ./tijori-data
    Verify {
        #[command(flatten)]
        data: DataDir,
    },
}

/// `--data-dir`, the same option for every command that works on a vault's data.
#[derive(clap::Args)]
pub(crate) struct DataDir {
    /// The vault's data dir: its database and (in dev mode) its key file. `server` creates it.
    #[arg(
        long = "data-dir",
        env = "TIJORI_DATA_DIR",
        default_value = "./tijori-data",
        value_name = "DIR"
    )]
    pub(crate) path: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct ServerArgs {
    /// Run a dev vault: embedded store, local key file, auto-unsealed, plain HTTP on loopback.
    #[arg(long)]
    dev: bool,

    #[command(flatten)]
    data: DataDir,

    /// Address to listen on. Dev mode accepts loopback addresses only; port 0 picks a free port.
    #[arg(
        long,
        env = "TIJORI_LISTEN",
        default_value = "127.0.0.1:7400",
        value_name = "ADDR"
    )]
    listen: SocketAddr,

    /// Use this root (admin) token instead of generating one; for scripts and tests.
    /// It replaces any root token the data dir had.
    #[arg(
        long,
        env = "TIJORI_DEV_ROOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    dev_root_token: Option<String>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TIJORI_BODY_LIMIT", default_value_t = 1024 * 1024, value_name = "BYTES")]
    body_limit: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(args).map(|()| ExitCode::SUCCESS),
        Command::Audit(AuditCommand::Verify { data }) => audit::verify(&data.path),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
