//! The forwarder: tails the audit trail in the store and sends every record to one receiver, in
//! order, at least once, across restarts of the vault and outages of the receiver.
//!
//! Its position is a cursor, the last sequence number known delivered, saved in the store's
//! meta table under [`Target::cursor_key`]. A record is never skipped: on any failure the
//! forwarder backs off (100 ms doubling to 30 s) and resends from the cursor. Duplicates are
//! the price: a SIEM deduplicates on the `seq` SD parameter.
//!
//! "Delivered" differs by transport, since plain syslog has no acknowledgements:
//! - UDP: sent counts as delivered; datagrams lost on the way are lost (RFC 5426).
//! - TCP: a successful write only means the bytes reached our kernel. A receiver that closes
//!   or resets with unread bytes loses them, and we learn of it only afterwards. So a batch
//!   counts as delivered once the connection is still open [`CONFIRM_AFTER`] after it was
//!   written, or when the receiver answers our closing FIN with its own. If the connection
//!   fails first, everything unconfirmed on it is sent again on the next one.
//!
//! The forwarder logs failures with the target and the cause, never a record's contents.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tijori_store::{AuditRow, Store};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep, Instant};

use crate::transport::{Connection, Origin};
use crate::{SyslogError, Target};

/// The most records read from the store and sent as one batch.
const BATCH: usize = 500;
/// How long a TCP connection must stay open after a write before that write counts.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(1);
/// How long shutdown waits for the receiver to acknowledge our closing FIN.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Sends the audit trail of a store to one syslog receiver. Build it, then spawn [`run`].
///
/// [`run`]: Forwarder::run
pub struct Forwarder {
    target: Target,
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    hostname: String,
    poll_interval: Duration,
}

impl Forwarder {
    /// A forwarder of `store`'s audit trail to `target`. The vault calls `wake.notify_one()`
    /// after each append; the forwarder also polls (every second by default) for records
    /// appended by other nodes. The HOSTNAME is this machine's name unless set.
    pub fn new(target: Target, store: Arc<dyn Store>, wake: Arc<Notify>) -> Forwarder {
        Forwarder {
            target,
            store,
            wake,
            hostname: local_hostname(),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The HOSTNAME header field (sent as `-` unless 1-255 printable ASCII characters).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Forwarder {
        self.hostname = hostname.into();
        self
    }

    /// How often to look for new records without being woken.
    pub fn poll_interval(mut self, every: Duration) -> Forwarder {
        self.poll_interval = every;
        self
    }

    /// Forwards until `shutdown` turns `true` (or its sender is dropped), then finishes the
    /// batch in hand, closes the connection and saves the cursor. Never fails: every error is
    /// logged and retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let key = self.target.cursor_key();
        let mut backoff = BACKOFF_MIN;
        let cursor = loop {
            match self.store.meta(&key).await {
                Ok(v) => break parse_cursor(v.as_deref(), &self.target),
                Err(e) => {
                    tracing::warn!(receiver = %self.target, error = %e, "cannot read the syslog cursor; retrying");
                    if !pause(&mut backoff, &mut shutdown).await {
                        return;
                    }
                }
            }
        };
        let mut st = State::new(cursor);
        let from = Origin {
            hostname: &self.hostname,
            procid: std::process::id(),
        };
        while !stopping(&shutdown) {
            // Created before reading, so an append between the read and the wait still wakes us.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let confirmed = st.confirmed;
            let step = self.step(&mut st, &from).await;
            // Only progress ends a backoff: a receiver that takes each batch and then resets the
            // connection must not be hammered.
            if st.confirmed > confirmed || matches!(step, Ok(false)) {
                backoff = BACKOFF_MIN;
            }
            match step {
                Ok(true) => {
                    // Lets the I/O driver run between batches of a long backlog, so a reset
                    // by the receiver is noticed by the next check.
                    tokio::task::yield_now().await;
                }
                Ok(false) => {
                    let wait = st.next_confirm().map_or(self.poll_interval, |at| {
                        self.poll_interval
                            .min(at.saturating_duration_since(Instant::now()))
                    });
                    tokio::select! {
                        () = &mut notified => {}
                        () = sleep(wait) => {}
                        () = changed(&mut shutdown) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(receiver = %self.target, error = %e, "syslog forwarding failed; retrying");
                    if !matches!(e, SyslogError::Store(_)) {
                        st.drop_connection();
                    }
                    if !pause(&mut backoff, &mut shutdown).await {
                        break;
                    }
                }
            }
        }
        if let Some(conn) = st.conn.take() {
            if conn.close(CLOSE_WAIT).await {
                st.confirmed = st.sent;
            }
            st.pending.clear();
        }
        self.save(&mut st).await;
    }

    /// Confirms what can be, then sends one batch; `false` if there was nothing to send.
    async fn step(&self, st: &mut State, from: &Origin<'_>) -> Result<bool, SyslogError> {
        if let Some(conn) = &mut st.conn {
            match conn.check() {
                Ok(()) => st.confirm_written_by(Instant::now()),
                // Receivers may close idle connections; nothing was at stake on this one.
                Err(e) if st.pending.is_empty() => {
                    tracing::debug!(receiver = %self.target, error = %e, "syslog connection closed while idle");
                    st.conn = None;
                }
                Err(e) => return Err(self.send_error(e)),
            }
        }
        self.save(st).await;
        let rows = self.store.audit_rows(st.sent, BATCH).await?;
        let Some(last) = rows.last().map(|r: &AuditRow| r.seq) else {
            return Ok(false);
        };
        let conn = match &mut st.conn {
            Some(conn) => conn,
            None => st.conn.insert(Connection::open(&self.target).await?),
        };
        conn.send(&rows, from)
            .await
            .map_err(|e| self.send_error(e))?;
        st.sent = last;
        if conn.is_datagram() {
            st.confirmed = last;
        } else {
            st.pending.push_back((last, Instant::now()));
        }
        Ok(true)
    }

    /// Saves the cursor if it moved; a failure is logged and retried on the next save.
    async fn save(&self, st: &mut State) {
        if st.confirmed == st.saved {
            return;
        }
        let key = self.target.cursor_key();
        match self.store.set_meta(&key, &st.confirmed.to_string()).await {
            Ok(()) => st.saved = st.confirmed,
            Err(e) => {
                tracing::warn!(receiver = %self.target, error = %e, "cannot save the syslog cursor")
            }
        }
    }

    fn send_error(&self, source: std::io::Error) -> SyslogError {
        SyslogError::Send {
            target: self.target.to_string(),
            source,
        }
    }
}

/// Where the forwarder stands.
struct State {
    conn: Option<Connection>,
    /// Last seq known delivered; everything after it is sent again after a failure.
    confirmed: i64,
    /// Last seq saved in the store.
    saved: i64,
    /// Last seq written to the current connection.
    sent: i64,
    /// Batches written to the TCP connection but not yet confirmed: (last seq, written at).
    pending: VecDeque<(i64, Instant)>,
}

impl State {
    fn new(cursor: i64) -> State {
        State {
            conn: None,
            confirmed: cursor,
            saved: cursor,
            sent: cursor,
            pending: VecDeque::new(),
        }
    }

    /// Confirms the batches written at least [`CONFIRM_AFTER`] before `now`; the caller has
    /// just checked that the connection is still open.
    fn confirm_written_by(&mut self, now: Instant) {
        while let Some(&(seq, at)) = self.pending.front() {
            if at + CONFIRM_AFTER > now {
                break;
            }
            self.confirmed = seq;
            self.pending.pop_front();
        }
    }

    fn next_confirm(&self) -> Option<Instant> {
        self.pending.front().map(|&(_, at)| at + CONFIRM_AFTER)
    }

    /// Forgets the connection and rewinds to the last confirmed record.
    fn drop_connection(&mut self) {
        self.conn = None;
        self.pending.clear();
        self.sent = self.confirmed;
    }
}

fn parse_cursor(saved: Option<&str>, target: &Target) -> i64 {
    match saved.map(str::parse::<i64>) {
        None => 0,
        Some(Ok(seq)) if seq >= 0 => seq,
        Some(_) => {
            // Starting over duplicates records; guessing could skip some.
            tracing::warn!(receiver = %target, "unreadable syslog cursor; resending the whole audit trail");
            0
        }
    }
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves when shutdown is asked for; a dropped sender counts as asking.
async fn changed(shutdown: &mut watch::Receiver<bool>) {
    // `wait_for` fails only when the sender is gone, which also means stop.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sleeps for the current backoff, then doubles it; `false` if shutdown came first.
async fn pause(backoff: &mut Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    tokio::select! {
        () = sleep(wait) => !stopping(shutdown),
        () = changed(shutdown) => false,
    }
}

/// This machine's name for the HOSTNAME field, or `-` where it cannot be read.
fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let name = std::fs::read_to_string(p).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        "tcp://127.0.0.1:514".parse().unwrap()
    }

    #[test]
    fn cursor_parsing_never_skips() {
        assert_eq!(parse_cursor(None, &target()), 0);
        assert_eq!(parse_cursor(Some("1200"), &target()), 1200);
        assert_eq!(parse_cursor(Some("-5"), &target()), 0);
        assert_eq!(parse_cursor(Some("12x"), &target()), 0);
    }

    #[test]
    fn confirms_in_order_and_rewinds_on_failure() {
        let mut st = State::new(10);
        let t0 = Instant::now();
        st.sent = 30;
        st.pending
            .extend([(20, t0), (30, t0 + Duration::from_secs(2))]);
        assert_eq!(st.next_confirm(), Some(t0 + CONFIRM_AFTER));
        st.confirm_written_by(t0 + Duration::from_secs(2));
        assert_eq!((st.confirmed, st.pending.len()), (20, 1));
        st.drop_connection();
        assert_eq!((st.confirmed, st.sent, st.next_confirm()), (20, 20, None));
    }

    #[tokio::test]
    async fn shutdown_signals() {
        let (tx, rx) = watch::channel(false);
        assert!(!stopping(&rx));
        tx.send(true).unwrap();
        assert!(stopping(&rx));
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        assert!(stopping(&rx));
        changed(&mut rx).await;
    }
}
