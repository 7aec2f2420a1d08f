//! The forwarder over UDP against a real socket: one message per datagram, and an oversized
//! record cut at a character boundary and marked `truncated="true"`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{append, chain, seq_of, store, PATIENCE};
use tijori_syslog::{Forwarder, Target, MAX_DATAGRAM};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Notify};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_one_datagram_per_record_and_truncates_oversized_ones() {
    let (store, _dir) = store("udp");
    append(&store, 30).await;
    // 3-byte characters, 90,000 bytes of them: the cut must not split one.
    let huge = format!(
        r#"{{"time":"2026-11-24T10:00:00Z","operation":"tokenize","resource":"{}","outcome":"success"}}"#,
        "€".repeat(30_000)
    );
    store
        .append_audit(vec![huge.clone()], support::chain)
        .await
        .unwrap();
    store
        .append_audit((0..5).map(support::record).collect(), chain)
        .await
        .unwrap();

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target: Target = format!("udp://127.0.0.1:{}", socket.local_addr().unwrap().port())
        .parse()
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let forwarder = Forwarder::new(target.clone(), store.clone(), Arc::new(Notify::new()))
        .hostname("vault-1")
        .poll_interval(Duration::from_millis(200));
    let task = tokio::spawn(forwarder.run(stopped));

    let mut got = Vec::new();
    let receive = async {
        let mut buf = vec![0; 65_536];
        while got.len() < 36 {
            let n = socket.recv(&mut buf).await.unwrap();
            got.push(String::from_utf8(buf[..n].to_vec()).expect("valid UTF-8"));
        }
    };
    tokio::time::timeout(PATIENCE, receive).await.unwrap();
    let seqs: Vec<i64> = got.iter().map(|m| seq_of(m)).collect();
    assert_eq!(seqs, (1..=36).collect::<Vec<_>>());

    let cut = &got[30];
    let head = "<110>1 2026-11-24T10:00:00Z vault-1 tijori ";
    assert!(cut.starts_with(head));
    let marker = " truncated=\"true\"] ";
    let msg_at = cut.find(marker).unwrap() + marker.len();
    assert!(cut.len() <= MAX_DATAGRAM && cut.len() > MAX_DATAGRAM - 3);
    assert!(huge.starts_with(&cut[msg_at..]));
    for (i, m) in got.iter().enumerate().filter(|(i, _)| *i != 30) {
        assert!(!m.contains("truncated"), "{i}");
        assert!(m.ends_with('}'));
    }

    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    // Sent is all UDP can know: the cursor is at the end.
    let saved = store.meta(&target.cursor_key()).await.unwrap();
    assert_eq!(saved.as_deref(), Some("36"));
}
