//! The workloads: which request each sends, with fresh random card numbers (made to pass Luhn)
//! or tokens and values prepared beforehand.

use crate::client::Conn;
use crate::BenchError;

/// One kind of request, measured on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// `GET /v1/auth/session`: authenticated and audited, but no data work; the ceiling the
    /// others are compared with.
    Ceiling,
    /// A random token for a new card number.
    Tokenize,
    /// A format-preserving token for a new card number.
    TokenizePreserving,
    /// A deterministic token for a new card number (a blind index is computed and kept).
    TokenizeDeterministic,
    /// One prepared token revealed.
    Detokenize,
    /// The deterministic token of one prepared value looked up.
    Search,
    /// A batch of new card numbers in one request (figures in items).
    TokenizeBatch,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Ceiling,
        Workload::Tokenize,
        Workload::TokenizePreserving,
        Workload::TokenizeDeterministic,
        Workload::Detokenize,
        Workload::Search,
        Workload::TokenizeBatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Ceiling => "ceiling",
            Workload::Tokenize => "tokenize",
            Workload::TokenizePreserving => "tokenize_preserving",
            Workload::TokenizeDeterministic => "tokenize_deterministic",
            Workload::Detokenize => "detokenize",
            Workload::Search => "search",
            Workload::TokenizeBatch => "tokenize_batch",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The method, path and body of one request.
    pub(crate) fn request(
        self,
        rng: &mut fastrand::Rng,
        pool: &Pool,
        batch: usize,
    ) -> (&'static str, &'static str, String) {
        let mut tokenize =
            |extra: &str| format!(r#"{{"type":"card_number","value":"{}"{extra}}}"#, card(rng));
        match self {
            Workload::Ceiling => ("GET", "/v1/auth/session", String::new()),
            Workload::Tokenize => ("POST", "/v1/tokens", tokenize("")),
            Workload::TokenizePreserving => {
                ("POST", "/v1/tokens", tokenize(r#","format":"preserving""#))
            }
            Workload::TokenizeDeterministic => {
                ("POST", "/v1/tokens", tokenize(r#","deterministic":true"#))
            }
            Workload::Detokenize => {
                let token = &pool.tokens[rng.usize(..pool.tokens.len())];
                (
                    "POST",
                    "/v1/detokenize",
                    format!(r#"{{"tokens":["{token}"]}}"#),
                )
            }
            Workload::Search => {
                let value = &pool.values[rng.usize(..pool.values.len())];
                let body = format!(r#"{{"type":"card_number","value":"{value}"}}"#);
                ("POST", "/v1/tokens/search", body)
            }
            Workload::TokenizeBatch => {
                let items: Vec<String> = (0..batch)
                    .map(|_| format!(r#"{{"type":"card_number","value":"{}"}}"#, card(rng)))
                    .collect();
                (
                    "POST",
                    "/v1/tokens/batch",
                    format!(r#"{{"items":[{}]}}"#, items.join(",")),
                )
            }
        }
    }
}

/// A random 16-digit card number in the 4xxx range that passes the Luhn check.
fn card(rng: &mut fastrand::Rng) -> String {
    let mut digits: String = std::iter::once('4')
        .chain((0..14).map(|_| char::from(b'0' + rng.u8(..10))))
        .collect();
    digits.push('0');
    for check in b'0'..=b'9' {
        digits.pop();
        digits.push(char::from(check));
        if tijori_types::validate::luhn_valid(&digits) {
            break;
        }
    }
    digits
}

/// Values with deterministic tokens, made before the read workloads run.
pub(crate) struct Pool {
    pub(crate) values: Vec<String>,
    pub(crate) tokens: Vec<String>,
}

/// How many values the read workloads pick from.
const POOL: usize = 2_000;

impl Pool {
    pub(crate) async fn make(conn: &mut Conn, key: &str) -> Result<Pool, BenchError> {
        let mut rng = fastrand::Rng::new();
        let values: Vec<String> = (0..POOL).map(|_| card(&mut rng)).collect();
        let mut tokens = Vec::with_capacity(POOL);
        for chunk in values.chunks(1000) {
            let items: Vec<serde_json::Value> = chunk
                .iter()
                .map(|v| serde_json::json!({"type": "card_number", "value": v, "deterministic": true}))
                .collect();
            let body = serde_json::json!({ "items": items }).to_string();
            let (status, answer) = conn.call("POST", "/v1/tokens/batch", key, body).await?;
            let json: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
            let made: Vec<String> = json["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i["token"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if status != 200 || made.len() != chunk.len() {
                return Err(BenchError::Setup {
                    step: "tokenize the values to reveal and search",
                    answer: format!("{status} {}", String::from_utf8_lossy(&answer)),
                });
            }
            tokens.extend(made);
        }
        Ok(Pool { values, tokens })
    }
}
