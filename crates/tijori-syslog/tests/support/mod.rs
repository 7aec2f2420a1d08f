//! Shared by the black-box tests: a real SQLite store in a fresh directory, audit records, a
//! TCP syslog receiver that parses octet-counted frames, and waiting on what it received.
#![allow(dead_code)] // Each test binary uses part of this.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tijori_store::sqlite::SqliteStore;
use tijori_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The longest any test waits for data to arrive.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A directory removed when the test ends, pass or fail.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a store in a directory of its own under the system temp dir.
pub fn store(test: &str) -> (Arc<dyn Store>, TempDir) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tijori-syslog-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (Arc::new(SqliteStore::open(&dir).unwrap()), TempDir(dir))
}

/// Any deterministic chain will do here; the forwarder only passes hashes on.
pub fn chain(prev: &[u8], seq: i64, _record: &str) -> Vec<u8> {
    let mut v = prev.to_vec();
    v.extend(seq.to_be_bytes());
    v.truncate(32);
    v
}

pub fn record(i: usize) -> String {
    let outcome = ["success", "denied", "failure"][i % 3];
    format!(
        r#"{{"time":"2026-11-24T10:00:00Z","request_id":"req_{i}","principal_id":"p_1","principal_kind":"service","source":"127.0.0.1:5555","operation":"detokenize","resource":"tok_{i}","data_type":"card","outcome":"{outcome}","reason":null}}"#
    )
}

/// Appends `n` records in batches, as a busy vault would; answers the last seq.
pub async fn append(store: &Arc<dyn Store>, n: usize) -> i64 {
    let mut last = 0;
    let records: Vec<String> = (0..n).map(record).collect();
    for batch in records.chunks(100) {
        last = *store
            .append_audit(batch.to_vec(), chain)
            .await
            .unwrap()
            .last()
            .unwrap();
    }
    last
}

/// The `seq` SD parameter of a message.
pub fn seq_of(msg: &str) -> i64 {
    let start = msg.find(" seq=\"").unwrap() + 6;
    let len = msg[start..].find('"').unwrap();
    msg[start..start + len].parse().unwrap()
}

/// One message as received, with the number of the connection (from 0) it came on.
#[derive(Debug)]
pub struct Received {
    pub conn: usize,
    pub seq: i64,
    pub msg: String,
}

/// Accepts connections and parses RFC 6587 octet-counted frames from each, reporting every
/// message. Connection `i` is cut after `cuts[i]` frames, with any unread bytes still queued
/// (so the kernel resets it); later connections are read until EOF, then closed.
pub async fn tcp_receiver(cuts: &[usize]) -> (u16, mpsc::UnboundedReceiver<Received>) {
    let cuts = cuts.to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for conn in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let cut = cuts.get(conn).copied();
            tokio::spawn(async move {
                let mut r = BufReader::new(stream);
                let mut frames = 0;
                loop {
                    if Some(frames) == cut {
                        return; // drops the socket with bytes unread
                    }
                    let mut len = Vec::new();
                    if r.read_until(b' ', &mut len).await.unwrap() == 0 {
                        return; // EOF: the forwarder closed; closing answers its FIN
                    }
                    let len: usize = std::str::from_utf8(&len[..len.len() - 1])
                        .unwrap()
                        .parse()
                        .unwrap();
                    let mut msg = vec![0; len];
                    r.read_exact(&mut msg).await.unwrap();
                    let msg = String::from_utf8(msg).unwrap();
                    let _ = tx.send(Received {
                        conn,
                        seq: seq_of(&msg),
                        msg,
                    });
                    frames += 1;
                }
            });
        }
    });
    (port, rx)
}

/// Receives messages until every seq in `want` has arrived at least once.
pub async fn until_all(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    want: std::ops::RangeInclusive<i64>,
) -> Vec<Received> {
    let mut got = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let expected = want.clone().count();
    let done = async {
        while seen.range(want.clone()).count() < expected {
            let m = rx.recv().await.unwrap();
            seen.insert(m.seq);
            got.push(m);
        }
    };
    let in_time = tokio::time::timeout(PATIENCE, done).await.is_ok();
    let have = seen.range(want).count();
    assert!(in_time, "timed out; received {have} of {expected} seqs");
    got
}
