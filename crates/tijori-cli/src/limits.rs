//! The connection limits of `tijori server`: how many clients at once, and how long and how
//! much a client may take to send a request, so that slow or hostile clients cannot tie the
//! server up.

use std::time::Duration;

use tijori_server::listener::Limits;

#[derive(clap::Args, Debug)]
pub(crate) struct LimitArgs {
    /// Most connections open at once; more wait until one closes.
    #[arg(long, env = "TIJORI_MAX_CONNECTIONS", default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Seconds a client may take to send a request's headers; then the connection is closed.
    #[arg(long, env = "TIJORI_HEADER_TIMEOUT_SECS", default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    header_timeout_secs: u32,
    /// Seconds a client may take to send a request's body; then it is answered 408.
    #[arg(long, env = "TIJORI_BODY_TIMEOUT_SECS", default_value_t = 30, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) body_timeout_secs: u32,
    /// Most bytes of a request line and its headers (at least 8192); more is answered 431.
    #[arg(long, env = "TIJORI_MAX_HEADER_BYTES", default_value_t = 16_384, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(8192..=1_048_576))]
    max_header_bytes: u32,
    /// Most headers in one request; more is answered 431.
    #[arg(long, env = "TIJORI_MAX_HEADERS", default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(8..=1024))]
    max_headers: u32,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_secs(u64::from(self.header_timeout_secs)),
            max_header_bytes: self.max_header_bytes as usize,
            max_headers: self.max_headers as usize,
        }
    }

    pub(crate) fn body_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.body_timeout_secs))
    }
}
