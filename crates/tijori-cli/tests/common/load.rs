//! Concurrent tokenize load on a running server, for the crash and disk-fault tests: writer
//! threads send card numbers until told to stop (or until the server is gone), and tally what
//! was acknowledged and what was refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{card, detokenize, Reply, Server};

/// What the writers have seen so far.
#[derive(Default)]
pub struct Tally {
    /// Acknowledged (201) tokens with the values sent.
    pub acked: Vec<(String, String)>,
    /// Every other answer: status and body, with the value sent.
    pub refused: Vec<(u16, Value, String)>,
    /// Writers that have stopped (the server went away, or they were told to).
    pub finished: usize,
}

pub struct Load {
    shared: Arc<(Mutex<Tally>, Condvar)>,
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

/// One tokenize of a card number over `agent`; `Err` on a transport error (the server is gone).
pub fn try_tokenize(
    agent: &ureq::Agent,
    url: &str,
    key: &str,
    value: &str,
) -> Result<Reply, String> {
    tijori_testkit::try_reply(
        agent
            .post(&format!("{url}/v1/tokens"))
            .set("Authorization", &format!("Bearer {key}"))
            .send_json(json!({"type": "card_number", "value": value})),
    )
}

impl Tally {
    /// Every value sent, acknowledged or not.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let acked = self.acked.iter().map(|(_, v)| v.as_str());
        acked.chain(self.refused.iter().map(|(_, _, v)| v.as_str()))
    }

    /// No refusal quotes its value, and `output` (the server's log) quotes none of the values.
    pub fn assert_no_leak(&self, output: &str) {
        for (status, body, value) in &self.refused {
            assert!(
                !body.to_string().contains(value.as_str()),
                "{status}: {body}"
            );
        }
        for value in self.values() {
            assert!(
                !output.contains(value),
                "the server's log quotes a value sent"
            );
        }
    }
}

impl Load {
    /// Starts `writers` threads against the server at `url` with the API key `key`.
    pub fn start(url: &str, key: &str, writers: usize) -> Load {
        let shared = Arc::new((Mutex::new(Tally::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..writers)
            .map(|_| {
                let (shared, stop, url, key) =
                    (shared.clone(), stop.clone(), url.to_owned(), key.to_owned());
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(30))
                        .build();
                    let (lock, cv) = &*shared;
                    while !stop.load(Ordering::SeqCst) {
                        let value = card();
                        let Ok(Reply {
                            status, json: body, ..
                        }) = try_tokenize(&agent, &url, &key, &value)
                        else {
                            break;
                        };
                        {
                            let mut t = lock.lock().unwrap();
                            match body["token"].as_str() {
                                Some(token) if status == 201 => {
                                    t.acked.push((token.to_owned(), value))
                                }
                                _ => t.refused.push((status, body, value)),
                            }
                        }
                        cv.notify_all();
                    }
                    lock.lock().unwrap().finished += 1;
                    cv.notify_all();
                })
            })
            .collect();
        Load {
            shared,
            stop,
            handles,
        }
    }

    /// Waits until `done` holds of the tally, or every writer has stopped, or `timeout` passes;
    /// answers whether `done` holds.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&Tally) -> bool) -> bool {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut t = lock.lock().unwrap();
        while !done(&t) && t.finished < self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            t = cv.wait_timeout(t, left).unwrap().0;
        }
        done(&t)
    }

    /// A look at the tally so far.
    pub fn peek<T>(&self, f: impl FnOnce(&Tally) -> T) -> T {
        f(&self.shared.0.lock().unwrap())
    }

    /// Stops the writers (those still running finish their request) and answers the tally.
    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            h.join().unwrap();
        }
        std::mem::take(&mut *self.shared.0.lock().unwrap())
    }
}

/// Every acknowledged token reveals its own value on `s` (in requests of 1,000); `when` says
/// in the failure message at which point of the test.
pub fn assert_all_reveal(s: &Server, key: &str, acked: &[(String, String)], when: &str) {
    for chunk in acked.chunks(1000) {
        let tokens: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let r = detokenize(s, key, &tokens);
        assert_eq!(
            r.status,
            200,
            "{when}: {}",
            &r.text[..r.text.len().min(500)]
        );
        let items = r.json["items"].as_array().unwrap();
        assert_eq!(items.len(), chunk.len(), "{when}");
        for ((t, value), item) in chunk.iter().zip(items) {
            assert_eq!(item["token"], t.as_str(), "{when}");
            assert_eq!(
                item["value"],
                value.as_str(),
                "{when}: acknowledged token {t} lost or wrong: {item}"
            );
        }
    }
}
