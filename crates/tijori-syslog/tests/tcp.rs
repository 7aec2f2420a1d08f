//! The forwarder over TCP against a real receiver on a loopback socket and a real SQLite store:
//! order, wake-ups, receiver outages and restarts. Tests wait on received data, never on time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{append, chain, record, store, tcp_receiver, until_all, Received, PATIENCE};
use tijori_store::Store;
use tijori_syslog::{Forwarder, Target};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    wake: Arc<Notify>,
}

impl Running {
    fn start(target: &Target, store: &Arc<dyn Store>, poll: Duration) -> Running {
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let forwarder = Forwarder::new(target.clone(), store.clone(), wake.clone())
            .hostname("vault-1")
            .poll_interval(poll);
        let task = tokio::spawn(forwarder.run(stopped));
        Running { stop, task, wake }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn target(port: u16) -> Target {
    format!("tcp://127.0.0.1:{port}").parse().unwrap()
}

async fn cursor(store: &Arc<dyn Store>, target: &Target) -> Option<String> {
    store.meta(&target.cursor_key()).await.unwrap()
}

fn seqs(got: &[Received], conn: usize) -> Vec<i64> {
    got.iter()
        .filter(|m| m.conn == conn)
        .map(|m| m.seq)
        .collect()
}

/// No resend can leave a gap: each connection carries a run of consecutive records.
fn assert_consecutive(seqs: &[i64]) {
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "not consecutive: {seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_the_backlog_in_order_then_wakes_on_notify() {
    let (store, _dir) = store("order");
    assert_eq!(append(&store, 1_200).await, 1_200);
    let (port, mut rx) = tcp_receiver(&[]).await;
    let target = target(port);
    // An hour: only the notification can bring the later records in time.
    let fwd = Running::start(&target, &store, Duration::from_secs(3_600));

    let got = until_all(&mut rx, 1..=1_200).await;
    assert_eq!(seqs(&got, 0), (1..=1_200).collect::<Vec<_>>());
    assert_eq!(got.len(), 1_200);
    let first = store.audit_rows(0, 1).await.unwrap().remove(0);
    assert_eq!(
        got[0].msg,
        tijori_syslog::format(&first, "vault-1", std::process::id())
    );
    assert!(got[1]
        .msg
        .starts_with("<108>1 2026-11-24T10:00:00Z vault-1 tijori "));
    assert!(got[1]
        .msg
        .contains(" detokenize [tijori@32473 seq=\"2\" hash=\""));
    assert!(got[1].msg.ends_with(&format!("] {}", record(1))));

    let records = (1_200..1_500).map(record).collect();
    store.append_audit(records, chain).await.unwrap();
    fwd.wake.notify_one();
    let got = until_all(&mut rx, 1_201..=1_500).await;
    assert_eq!(seqs(&got, 0), (1_201..=1_500).collect::<Vec<_>>());
    assert_eq!(got.len(), 300);

    fwd.stop().await;
    // The receiver answered the closing FIN after reading everything: all confirmed.
    assert_eq!(cursor(&store, &target).await.as_deref(), Some("1500"));
    assert!(rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_receiver_that_drops_connections() {
    let (store, _dir) = store("outage");
    append(&store, 1_200).await;
    // Cut mid-batch, cut before reading anything, cut within the second batch, then healthy.
    let cuts = [250, 0, 700];
    let (port, mut rx) = tcp_receiver(&cuts).await;
    let target = target(port);
    let fwd = Running::start(&target, &store, Duration::from_secs(1));

    let got = until_all(&mut rx, 1..=1_200).await;
    let last_conn = got.iter().map(|m| m.conn).max().unwrap();
    assert!(last_conn >= cuts.len(), "no reconnect past the cuts");
    for (conn, cut) in cuts.iter().enumerate() {
        let s = seqs(&got, conn);
        assert_eq!(s.len(), *cut);
        assert_consecutive(&s);
    }
    // What the cut connections carried unread was sent again, not skipped.
    let resumed = seqs(&got, cuts.len());
    assert!(resumed[0] <= 701, "resumed at {}", resumed[0]);
    assert_consecutive(&resumed);
    for conn in cuts.len()..=last_conn {
        assert_consecutive(&seqs(&got, conn));
    }

    fwd.stop().await;
    assert_eq!(cursor(&store, &target).await.as_deref(), Some("1200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_forwarder_resumes_from_its_cursor() {
    let (store, _dir) = store("restart");
    append(&store, 100).await;
    let (port, mut rx) = tcp_receiver(&[]).await;
    let target = target(port);
    assert_eq!(cursor(&store, &target).await, None);

    let fwd = Running::start(&target, &store, Duration::from_secs(1));
    until_all(&mut rx, 1..=100).await;
    fwd.stop().await;
    assert_eq!(cursor(&store, &target).await.as_deref(), Some("100"));

    append(&store, 50).await;
    // A new forwarder, as after a restart of the vault: the same target names the same cursor.
    let fwd = Running::start(&target, &store, Duration::from_secs(1));
    let got = until_all(&mut rx, 101..=150).await;
    assert!(got.iter().all(|m| m.conn == 1));
    assert_eq!(seqs(&got, 1), (101..=150).collect::<Vec<_>>());
    fwd.stop().await;
    assert_eq!(cursor(&store, &target).await.as_deref(), Some("150"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_forwarder_resends_rather_than_skips() {
    let (store, _dir) = store("abort");
    append(&store, 100).await;
    let (port, mut rx) = tcp_receiver(&[]).await;
    let target = target(port);

    // Killed without a shutdown: it had no chance to confirm and save what it sent.
    let fwd = Running::start(&target, &store, Duration::from_secs(1));
    until_all(&mut rx, 1..=100).await;
    fwd.task.abort();

    append(&store, 20).await;
    let fwd = Running::start(&target, &store, Duration::from_secs(1));
    let got = until_all(&mut rx, 101..=120).await;
    let again = seqs(&got, 1);
    assert!(again[0] <= 101, "resumed at {}", again[0]);
    assert_eq!(again.last(), Some(&120));
    assert_consecutive(&again);
    fwd.stop().await;
    assert_eq!(cursor(&store, &target).await.as_deref(), Some("120"));
}
