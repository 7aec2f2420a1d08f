//! Forwards the vault's audit trail to a SIEM as RFC 5424 syslog, over TCP (RFC 6587
//! octet counting) or UDP (RFC 5426).
//!
//! The store stays the record of truth: this crate only reads the trail (and one cursor per
//! receiver in the store's meta table), so a slow or absent receiver never holds up a request,
//! and a record reaches the receiver only after it is durable. Each message carries the
//! record's exact JSON text and its chain hash, so the SIEM holds evidence it can check, not a
//! paraphrase. Transport is plain text: use it on a trusted network or through a TLS tunnel;
//! records hold tokens, principals and addresses, never plaintext values or keys.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn tijori_store::Store>) -> Result<(), tijori_syslog::SyslogError> {
//! use std::sync::Arc;
//! use tijori_syslog::{Forwarder, Target};
//!
//! let wake = Arc::new(tokio::sync::Notify::new()); // the vault calls wake.notify_one() after appends
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let target: Target = "tcp://siem.internal:514".parse()?;
//! let task = tokio::spawn(Forwarder::new(target, store, wake).run(stopped));
//! // ... at shutdown:
//! let _ = stop.send(true);
//! let _ = task.await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;
mod format;
mod forward;
mod target;
mod transport;

pub use error::SyslogError;
pub use format::{format, APP_NAME, SD_ID};
pub use forward::{Forwarder, CONFIRM_AFTER};
pub use target::{Protocol, Target};
pub use transport::MAX_DATAGRAM;
