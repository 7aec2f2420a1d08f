//! The crate's one error type. Messages name the target and the cause, never a record's
//! contents: they end up in the vault's own logs, which must not become a second audit trail.

use std::io;

use tijori_store::StoreError;

/// What can go wrong while configuring or running a syslog forwarder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// The target string names a scheme other than `tcp` or `udp` (TLS, RFC 5425, is not
    /// supported).
    #[error("unsupported syslog target {input:?}: expected tcp://host:port or udp://host:port")]
    UnsupportedScheme { input: String },
    /// The target string is not of the form `scheme://host:port`.
    #[error("invalid syslog target {input:?}: {reason}")]
    InvalidTarget { input: String, reason: &'static str },
    /// The receiver could not be resolved or reached.
    #[error("cannot connect to syslog receiver {target}: {source}")]
    Connect { target: String, source: io::Error },
    /// Sending failed, timed out, or the receiver closed the connection.
    #[error("cannot send to syslog receiver {target}: {source}")]
    Send { target: String, source: io::Error },
    /// The audit trail or the saved cursor could not be read or written.
    #[error("audit store: {0}")]
    Store(#[from] StoreError),
}
