//! The `tijori` command: runs the vault and operates it. Parsing and help text live here;
//! everything else is the library crates'. `anyhow` is used only in this crate.
#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod bench;
mod hsm;
mod import;
mod keys;
mod limits;
mod operator;
mod remote;
mod secret_input;
mod server;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's allocator for the Rust side (SQLite keeps the C library's). A
/// request allocates on one thread and is often freed on another (the writer, the runtime's
/// other worker), and there glibc's allocator took about a tenth of the request threads' time
/// (`malloc_consolidate` among it). With jemalloc the server's CPU a batch item fell from
/// 6.2-6.7 µs to 5.2-5.3, batch tokenize rose from 208,000-225,000 to 254,000-260,000
/// items/s and a million-row import took 5.6-5.7 s instead of 6.7-7.0; single requests gained
/// less (BENCHMARKS.md). Its freed pages go back to the OS after 300 ms (.cargo/config.toml),
/// which keeps the import's peak RSS at 158-162 MiB (204 with jemalloc's default of 10 s,
/// 151-154 with glibc).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// the data): for trials, development and tests.
    ///
    /// Without --dev: the production vault that `tijori operator init` made in --data-dir. A
    /// vault whose root key is split among custodians starts sealed; they unseal it with
    /// `tijori operator unseal`. A vault whose root key is in an HSM (init with --hsm-...)
    /// unseals itself at start: give the same --hsm-... options and the PIN (TIJORI_HSM_PIN or
    /// --hsm-pin-file); if the HSM cannot be reached or refuses the PIN, the server does not
    /// start.
    ///
    /// TLS: give --tls-cert and --tls-key (PEM) to serve HTTPS (TLS 1.3 and 1.2, AEAD cipher
    /// suites only); send the process SIGHUP to reload them after a renewal. Without them the
    /// server speaks plain HTTP, and only on a loopback address: in dev mode, or in production
    /// with --insecure-plain-http behind a TLS-terminating proxy on the same host. For a trial
    /// certificate run `tijori operator dev-cert`.
    ///
    /// Examples:
    ///   tijori server --dev --data-dir ./tijori-data --dev-root-token my-root-token
    ///   tijori server --data-dir /var/lib/tijori --listen 0.0.0.0:7400
    ///   --tls-cert /etc/tijori/tls.crt --tls-key /etc/tijori/tls.key
    ///   TIJORI_HSM_PIN=... tijori server --data-dir /var/lib/tijori --hsm-module
    ///   /usr/lib/softhsm/libsofthsm2.so --hsm-token-label tijori --hsm-key-label tijori-root
    Server(Box<ServerArgs>),

    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),

    /// Initialize a production vault (key shares or an HSM), seal or unseal it, and make a
    /// trial TLS certificate.
    #[command(subcommand)]
    Operator(OperatorCommand),

    /// Rotate keys and move existing data to the new versions (admin credential).
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Tokenize a column of a CSV file (a migration of an existing card database) through a
    /// running server, writing the rows with tokens instead of values. Shows progress and the
    /// rate; resumable: run it again after an interruption and it carries on. Needs a
    /// credential that may tokenize.
    ///
    /// Example: tijori import --type card_number --column pan cards.csv --out cards.tokens.csv
    Import(import::ImportArgs),

    /// Measure a vault's speed: start a dev server on a fresh data dir (or drive --url), run
    /// each workload for a set time over many keep-alive connections, and print operations
    /// per second, latency p50/p99/p99.9 and the server's peak memory, with each workload's
    /// ratio to a trivial authenticated request (the ceiling). Use a release build.
    ///
    /// Example: cargo run --release -- bench --seconds 5 --json bench.json
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print the key versions, records per version, cryptoperiods and the jobs' backlog.
    ///
    /// Example: TIJORI_TOKEN=... tijori keys status
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Make a new version of a key; new writes use it at once, old data still decrypts.
    ///
    /// --key kek: a new key-encryption key under the root of trust (then run `keys rewrap`).
    /// --key data: a new vault-wide data key (then run `keys reencrypt`).
    ///
    /// Example: TIJORI_TOKEN=... tijori keys rotate --key data
    Rotate {
        #[command(flatten)]
        remote: Remote,
        /// kek or data.
        #[arg(long, value_parser = ["kek", "data"])]
        key: String,
    },
    /// Re-wrap every data key under the newest key-encryption key, with progress. Safe to
    /// interrupt: run it again and it carries on.
    Rewrap {
        #[command(flatten)]
        remote: Remote,
    },
    /// Move every value still under a retired data key to the active one, and destroy each
    /// retired key once nothing uses it, with progress. Safe to interrupt and run again.
    Reencrypt {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create a production vault in a new data dir, its root key split among custodians or
    /// held in an HSM.
    ///
    /// Key shares (the default): makes the root key, builds the key hierarchy under it, and
    /// splits the root key into --shares key shares of which any --threshold rebuild it
    /// (Shamir's secret sharing). Prints each share and the initial admin (root) token ONCE:
    /// nothing of the root key or a share is stored. Hand each share to a different custodian;
    /// the vault then starts sealed, and --threshold custodians unseal it with
    /// `tijori operator unseal`.
    ///
    /// HSM (with --hsm-module, --hsm-token-label or --hsm-slot, --hsm-key-label, and the PIN in
    /// TIJORI_HSM_PIN or --hsm-pin-file): the root key is an AES-256 key inside the HSM, which
    /// never leaves it; it is generated there if no key has that label yet. Prints the initial
    /// root token ONCE; there are no shares. `tijori server` with the same options then unseals
    /// by itself at every start.
    ///
    /// Examples:
    ///   tijori operator init --data-dir /var/lib/tijori --shares 5 --threshold 3
    ///   TIJORI_HSM_PIN=... tijori operator init --data-dir /var/lib/tijori --hsm-module
    ///   /usr/lib/softhsm/libsofthsm2.so --hsm-token-label tijori --hsm-key-label tijori-root
    Init {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        storage: storage::StorageArgs,
        /// How many key shares to make (one per custodian), 2 to 255 [default: 5]. Not with an HSM.
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..))]
        shares: Option<u8>,
        /// How many shares unseal the vault, 2 to --shares [default: 3]. Not with an HSM.
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..))]
        threshold: Option<u8>,
        /// Encrypt each share to a custodian's age public key (age1...), so that whoever runs
        /// init never sees the shares: repeat once per share, in order. The custodian decrypts
        /// theirs with `age -d -i their-key.txt` and gives the result to `operator unseal`.
        #[arg(long = "share-recipient", value_name = "AGE_RECIPIENT")]
        share_recipients: Vec<String>,
        #[command(flatten)]
        hsm: hsm::HsmArgs,
    },

    /// Give one custodian's key share to a sealed production server.
    ///
    /// Reads the share from standard input (never give it as an argument: arguments show in
    /// process lists and shell history) and prints the progress, `k of K`. At the threshold
    /// the server unseals. Needs no credential.
    ///
    /// Example: tijori operator unseal --addr https://vault.internal:7400   (then paste)
    Unseal {
        /// The server's base URL.
        #[arg(
            long,
            env = "TIJORI_ADDR",
            default_value = "http://127.0.0.1:7400",
            value_name = "URL"
        )]
        addr: String,
        /// Trust only the CA certificate(s) in this PEM file for the server's certificate.
        #[arg(
            long,
            env = "TIJORI_CA_CERT",
            value_name = "FILE",
            value_parser = remote::parse_ca_cert
        )]
        ca_cert: Option<remote::CaCert>,
    },

    /// Seal a running server now: every key leaves its memory at once (an emergency stop).
    /// Data requests answer 503 sealed until custodians unseal it again. Needs an admin key.
    ///
    /// Example: TIJORI_TOKEN=... tijori operator seal
    Seal {
        #[command(flatten)]
        remote: Remote,
    },

    /// Make a self-signed TLS certificate and key for TRIALS, not for production.
    ///
    /// Writes tijori-dev.crt (valid for localhost, 127.0.0.1, ::1 and every --hostname) and
    /// tijori-dev.key (ECDSA P-256, mode 0600) into --out-dir, and prints the command that
    /// serves with them and how clients trust the certificate (--ca-cert). Production servers
    /// use a certificate from the organization's CA: a self-signed one is trusted only where it
    /// was copied by hand, and cannot be revoked.
    ///
    /// Example: tijori operator dev-cert --out-dir ./tls --hostname vault.test
    DevCert(operator::DevCertArgs),

    /// Enroll as an operator: with the enrollment code from your administrator, set your
    /// password and get your TOTP secret, shown as a QR code for an authenticator app.
    ///
    /// The code and the password are read from standard input (prompted on a terminal),
    /// never from arguments. Then log in once with `tijori operator login` to confirm the app.
    ///
    /// Example: tijori operator enroll --addr https://vault.internal:7400 --username amina
    Enroll(accounts::Endpoint),

    /// Log in as an operator with your password and the current one-time code (both read
    /// from standard input) and print the session token alone, for scripts:
    ///
    ///   export TIJORI_TOKEN=$(tijori operator login --username amina)
    ///
    /// The session ends after 15 idle minutes (the server's --session-idle-secs).
    Login(accounts::Endpoint),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that the audit trail is intact: chained, signed, and not cut short.
    ///
    /// Recomputes the hash chain record by record and checks every signed checkpoint of the
    /// chain head with the vault's Ed25519 public key. Exits 0 if intact; otherwise exits 1
    /// and names the first record that was edited, deleted, inserted, moved or cut off.
    /// Opens the database read-only; it can run beside a live server.
    ///
    /// Give --file (export files or archives, oldest first) to check copies away from the
    /// vault: that needs only the public key. Files followed by --data-dir check that the
    /// archives and the live trail join up.
    ///
    /// Examples:
    ///   tijori audit verify --data-dir ./tijori-data
    ///   tijori audit verify --file trail.jsonl --public-key audit.pub
    Verify {
        /// The data dir to check (default ./tijori-data unless --file is given).
        #[arg(long = "data-dir", env = "TIJORI_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// An export file to check; repeat for several, oldest first.
        #[arg(long = "file", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The public key (ed25519:...) or a file holding it, as `tijori audit public-key`
        /// printed it. Required for files; for a data dir it pins the key instead of trusting
        /// the copy stored there.
        #[arg(long, value_name = "KEY|FILE")]
        public_key: Option<String>,
    },

    /// Write the trail as JSON Lines with its chain proofs and signed checkpoints.
    ///
    /// Every record keeps its exact text, number and hashes, so the copy can be checked with
    /// `tijori audit verify --file` and the public key alone. Reads the data dir read-only.
    ///
    /// Example: tijori audit export --data-dir ./tijori-data --out trail.jsonl
    Export {
        #[command(flatten)]
        data: DataDir,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only records numbered above this one.
        #[arg(long, default_value_t = 0, value_name = "SEQ")]
        after: i64,
    },

    /// Move audit records older than the online window to an archive file now, and delete
    /// archive files past retention. A running server does this by itself once a day.
    ///
    /// The cut is made at a signed checkpoint; the file is written, synced and checked with
    /// the public key before its records leave the store, and the store keeps the cut's
    /// signature, so `tijori audit verify --file ARCHIVE... --data-dir DIR` checks the whole
    /// trail across every cut. The run itself is audited (audit.archive).
    ///
    /// Example: tijori audit archive --data-dir ./tijori-data --audit-online-days 92
    Archive {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        retention: RetentionArgs,
    },

    /// Print the public key that checks the trail's signed checkpoints.
    ///
    /// Keep a copy away from the vault (with your auditors): an insider who rewrites the trail
    /// cannot forge signatures that verify under it.
    ///
    /// Example: tijori audit public-key --data-dir ./tijori-data > audit.pub
    PublicKey {
        #[command(flatten)]
        data: DataDir,
    },

    /// Print the newest audit records of a running server, and with --follow new ones as
    /// they are written. Needs an admin, auditor or data_officer credential.
    ///
    /// Example: TIJORI_TOKEN=... tijori audit tail --operation detokenize --follow
    Tail {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        filters: TailFilters,
    },

    /// Compute the HMAC that audit records carry for a value, to find the records of a known
    /// card number, IBAN, CNIC or phone number. The value is read from standard input (never
    /// give it as an argument: arguments show in process lists and shell history). Each
    /// principal may ask for a limited number an hour (60 unless the server's
    /// --audit-hash-per-hour says otherwise), so that the HMACs on the trail cannot be searched.
    ///
    /// Example: printf %s 4111111111111111 | tijori audit hash --type card_number
    Hash {
        #[command(flatten)]
        remote: Remote,
        /// The value's data type (card_number, iban, cnic, pk_mobile, ...).
        #[arg(long = "type", value_name = "TYPE")]
        data_type: String,
    },
}

/// How to reach a running server. No `Debug`: it holds a credential.
#[derive(clap::Args)]
pub(crate) struct Remote {
    /// The server's base URL.
    #[arg(
        long,
        env = "TIJORI_ADDR",
        default_value = "http://127.0.0.1:7400",
        value_name = "URL"
    )]
    pub(crate) addr: String,
    /// An API key or root token. Prefer the environment variable: arguments are visible to
    /// other users of the machine.
    #[arg(
        long,
        env = "TIJORI_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: String,
    /// Trust only the CA certificate(s) in this PEM file for the server's certificate, instead
    /// of the public (Mozilla) roots: for a server whose certificate comes from a private CA or
    /// is self-signed (tijori operator dev-cert).
    #[arg(
        long,
        env = "TIJORI_CA_CERT",
        value_name = "FILE",
        value_parser = remote::parse_ca_cert
    )]
    pub(crate) ca_cert: Option<remote::CaCert>,
    /// The command's one HTTP agent, made at its first request.
    #[arg(skip)]
    pub(crate) agent: std::sync::OnceLock<ureq::Agent>,
}

/// Which records `audit tail` shows.
#[derive(clap::Args)]
pub(crate) struct TailFilters {
    /// How many of the newest records to look through first.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub(crate) lines: u64,
    /// Start after this record number instead.
    #[arg(long, value_name = "SEQ")]
    pub(crate) after: Option<i64>,
    /// Keep waiting for new records.
    #[arg(short, long)]
    pub(crate) follow: bool,
    #[arg(long)]
    pub(crate) principal: Option<String>,
    #[arg(long)]
    pub(crate) operation: Option<String>,
    /// Only records naming this token.
    #[arg(long = "for-token", id = "for_token", value_name = "TOKEN")]
    pub(crate) for_token: Option<String>,
    /// success, denied, failure or pending (held for a second operator's approval).
    #[arg(long)]
    pub(crate) outcome: Option<String>,
    /// RFC 3339 time or Unix seconds.
    #[arg(long)]
    pub(crate) since: Option<String>,
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

/// How long the audit trail is kept: online in the store, then in archive files.
#[derive(clap::Args)]
pub(crate) struct RetentionArgs {
    /// Days audit records stay in the store (readable by GET /v1/audit and tail); older ones
    /// move to archive files. PCI DSS 10.5.1 asks for three months at hand.
    #[arg(
        long,
        env = "TIJORI_AUDIT_ONLINE_DAYS",
        default_value_t = 92,
        value_name = "DAYS"
    )]
    pub(crate) audit_online_days: u32,
    /// Days archive files are kept, counted from their newest record; then they are deleted.
    /// PCI DSS 10.5.1 asks for at least a year (365).
    #[arg(
        long,
        env = "TIJORI_AUDIT_KEEP_DAYS",
        default_value_t = 366,
        value_name = "DAYS"
    )]
    pub(crate) audit_keep_days: u32,
    /// Where archive files go [default: DATA_DIR/audit-archive]. Copy them to separate,
    /// write-once storage: they are the only copy of the records they hold.
    #[arg(long, env = "TIJORI_AUDIT_ARCHIVE_DIR", value_name = "DIR")]
    pub(crate) audit_archive_dir: Option<PathBuf>,
}

impl RetentionArgs {
    pub(crate) fn retention(
        &self,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<tijori_core::audit::archive::Retention> {
        use tijori_core::audit::archive::{Retention, DAY};
        let r = Retention {
            online: i64::from(self.audit_online_days) * DAY,
            keep: i64::from(self.audit_keep_days) * DAY,
            dir: self
                .audit_archive_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("audit-archive")),
        };
        if r.keep < r.online {
            anyhow::bail!(
                "--audit-keep-days ({}) is shorter than --audit-online-days ({}): records would be \
                 deleted before they are archived",
                self.audit_keep_days,
                self.audit_online_days
            );
        }
        if self.audit_keep_days < 365 {
            eprintln!(
                "warning: audit archives kept {} days; PCI DSS 10.5.1 asks for at least 365",
                self.audit_keep_days
            );
        }
        Ok(r)
    }
}

#[derive(clap::Args)]
pub(crate) struct ServerArgs {
    /// Run a dev vault: embedded store, local key file, auto-unsealed; plain HTTP on loopback
    /// unless --tls-cert is given.
    #[arg(long)]
    dev: bool,

    #[command(flatten)]
    data: DataDir,

    #[command(flatten)]
    storage: storage::StorageArgs,

    /// Address to listen on; port 0 picks a free port. Without TLS, loopback addresses only.
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

    /// Cryptoperiod of the key-encryption key, in days: `tijori keys status` flags an active
    /// key older than this for rotation.
    #[arg(
        long,
        env = "TIJORI_KEK_CRYPTOPERIOD_DAYS",
        default_value_t = 365,
        value_name = "DAYS"
    )]
    pub(crate) kek_cryptoperiod_days: u32,

    /// Cryptoperiod of the vault-wide data key, in days.
    #[arg(
        long,
        env = "TIJORI_DATA_KEY_CRYPTOPERIOD_DAYS",
        default_value_t = 365,
        value_name = "DAYS"
    )]
    pub(crate) data_key_cryptoperiod_days: u32,

    /// How often the audit chain's head is signed (also at seal and at shutdown), in seconds.
    /// Records written since the last signature are chained but not yet signed.
    #[arg(long, env = "TIJORI_AUDIT_CHECKPOINT_SECS", default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    audit_checkpoint_secs: u64,

    /// Value HMACs (`tijori audit hash`, `POST /v1/audit/hash`) each principal may ask for an
    /// hour, on each node; more are refused with 429 and a retry-after. Enough to look up the
    /// values of an investigation; too few to try a card's candidates against the HMACs on
    /// the trail (a format-preserving token leaves about 100,000).
    #[arg(long, env = "TIJORI_AUDIT_HASH_PER_HOUR", default_value_t = tijori_core::audit::DEFAULT_HASH_PER_HOUR,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) audit_hash_per_hour: u32,

    /// Forward every audit record to a SIEM as RFC 5424 syslog: tcp://HOST:PORT (octet-counted
    /// frames) or udp://HOST:PORT. Repeat for several receivers. Delivery is at least once,
    /// in order, resumed after restarts (deduplicate on the seq parameter). Plain text: use a
    /// trusted network or a TLS tunnel.
    #[arg(
        long = "syslog",
        env = "TIJORI_SYSLOG",
        value_delimiter = ',',
        value_name = "URL"
    )]
    syslog: Vec<tijori_syslog::Target>,

    #[command(flatten)]
    retention: RetentionArgs,

    #[command(flatten)]
    hsm: hsm::HsmArgs,

    #[command(flatten)]
    tls: server::TlsArgs,

    #[command(flatten)]
    accounts: accounts::AccountArgs,

    #[command(flatten)]
    limits: limits::LimitArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Audit(cmd) => match cmd {
            AuditCommand::Verify {
                data_dir,
                files,
                public_key,
            } => {
                let dir = match (data_dir, files.is_empty()) {
                    (Some(d), _) => Some(d),
                    (None, true) => Some(PathBuf::from("./tijori-data")),
                    (None, false) => None,
                };
                audit::verify(dir.as_deref(), &files, public_key.as_deref())
            }
            AuditCommand::Export { data, out, after } => {
                audit::export(&data.path, out.as_deref(), after)
            }
            AuditCommand::Archive { data, retention } => retention
                .retention(&data.path)
                .and_then(|r| audit::archive(&data.path, &r)),
            AuditCommand::PublicKey { data } => audit::public_key(&data.path),
            AuditCommand::Tail { remote, filters } => audit::tail(&remote, &filters),
            AuditCommand::Hash { remote, data_type } => audit::hash(&remote, &data_type),
        },
        Command::Operator(cmd) => match cmd {
            OperatorCommand::Init {
                data,
                storage,
                shares,
                threshold,
                share_recipients,
                hsm,
            } if hsm.given() => match (shares, threshold, share_recipients.is_empty()) {
                (None, None, true) => operator::init_hsm(&data.path, &storage, &hsm),
                _ => Err(anyhow::anyhow!(
                    "--shares and --threshold split a root key among custodians; with an HSM the \
                     root key stays in the HSM and there are no shares: drop them (and any \
                     --share-recipient), or drop the --hsm-... options"
                )),
            },
            OperatorCommand::Init {
                data,
                storage,
                shares,
                threshold,
                share_recipients,
                hsm: _,
            } => operator::init(
                &data.path,
                &storage,
                shares.unwrap_or(5),
                threshold.unwrap_or(3),
                &share_recipients,
            ),
            OperatorCommand::Unseal { addr, ca_cert } => operator::unseal(&addr, ca_cert.as_ref()),
            OperatorCommand::Seal { remote } => operator::seal(&remote),
            OperatorCommand::DevCert(args) => operator::dev_cert(&args),
            OperatorCommand::Enroll(to) => accounts::enroll(&to).map(|()| ExitCode::SUCCESS),
            OperatorCommand::Login(to) => accounts::login(&to).map(|()| ExitCode::SUCCESS),
        },
        Command::Import(args) => import::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Keys(cmd) => match cmd {
            KeysCommand::Status { remote } => keys::status(&remote),
            KeysCommand::Rotate { remote, key } => keys::rotate(&remote, &key),
            KeysCommand::Rewrap { remote } => keys::run_job(&remote, "rewrap"),
            KeysCommand::Reencrypt { remote } => keys::run_job(&remote, "reencrypt"),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
