//! Request counters in the Prometheus text format, for `GET /metrics`. Labels are the route
//! template (never a token or value) and the status.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Counts of answered requests.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    pub(crate) fn observe(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, sealed: bool) -> String {
        let mut out = String::new();
        out.push_str("# HELP tijori_requests_total HTTP requests answered.\n# TYPE tijori_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(out, "tijori_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP tijori_sealed 1 while the vault is sealed.\n# TYPE tijori_sealed gauge\n",
        );
        let _ = writeln!(out, "tijori_sealed {}", u8::from(sealed));
        out
    }
}
