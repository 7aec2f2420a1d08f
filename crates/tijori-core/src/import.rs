//! The pure part of `tijori import` (a migration of a CSV file's column of values into
//! tokens): reading the file's rows in batches, finding the value column, the batch request
//! and its idempotency key, the tokenized rows written back, and the progress record a run
//! resumes from. The CLI keeps the files, the network and the syncing; this part lives here so
//! that it can be unit-tested and fuzzed without either.
//!
//! Values pass through here only on their way into the batch request; nothing in this module
//! puts a value into an error (a CSV error names a row and a byte position, not the content).

use std::io::Read;

use csv::StringRecord;
use serde_json::Value;

/// Why the input could not be read as an import file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The CSV is malformed: unreadable, not UTF-8, or a row with a different number of fields
    /// than the header.
    #[error("{0}")]
    Csv(#[from] csv::Error),
    /// The column given is neither a position (from 1) nor a name in the header.
    #[error("no column '{0}' in the header")]
    NoColumn(String),
}

/// A CSV file being imported: its header, the column of values, and the rows not yet read.
pub struct ImportReader<R: Read> {
    reader: csv::Reader<R>,
    headers: StringRecord,
    column: usize,
}

impl<R: Read> ImportReader<R> {
    /// Reads the header of `input` (comma-separated UTF-8, first row a header) and finds
    /// `column` in it: a position from 1, or else a header name.
    pub fn new(input: R, column: &str) -> Result<ImportReader<R>, ImportError> {
        let mut reader = csv::Reader::from_reader(input);
        let headers = reader.headers()?.clone();
        let column = resolve_column(&headers, column)
            .ok_or_else(|| ImportError::NoColumn(column.to_owned()))?;
        Ok(ImportReader {
            reader,
            headers,
            column,
        })
    }

    /// The header row.
    pub fn headers(&self) -> &StringRecord {
        &self.headers
    }

    /// The index (from 0) of the column of values.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Passes over `rows` data rows (those a previous run finished).
    pub fn skip(&mut self, rows: u64) -> Result<(), ImportError> {
        let mut record = StringRecord::new();
        for _ in 0..rows {
            if !self.reader.read_record(&mut record)? {
                break;
            }
        }
        Ok(())
    }

    /// Up to `max` next data rows; none at the end of the file.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<StringRecord>, ImportError> {
        let mut rows = Vec::with_capacity(max.min(10_000));
        for _ in 0..max {
            let mut record = StringRecord::new();
            if !self.reader.read_record(&mut record)? {
                break;
            }
            rows.push(record);
        }
        Ok(rows)
    }

    /// The value of `row` in the column (empty if the row is short of it).
    pub fn value<'a>(&self, row: &'a StringRecord) -> &'a str {
        row.get(self.column).unwrap_or("")
    }
}

/// The index of `column` in `headers`: a position from 1 that is in range, or else the first
/// header equal to it.
pub fn resolve_column(headers: &StringRecord, column: &str) -> Option<usize> {
    match column.parse::<usize>() {
        Ok(n) if n >= 1 && n <= headers.len() => Some(n - 1),
        _ => headers.iter().position(|h| h == column),
    }
}

/// The secret of one run, kept in its progress file: a batch's `Idempotency-Key` is an HMAC of
/// the batch's body under it, so the same batch sent again (after a crash) gets the first
/// answer instead of new tokens. Keyed, because the server keeps idempotency keys as they come
/// for a day beside each answer's masked values: an unkeyed hash of a batch of one card (whose
/// masked form leaves about 10^5 candidates) or of one mobile number would give the value away
/// to whoever reads that table or a backup of it.
pub struct RunKey(tijori_crypto::SecretKey);

impl RunKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<RunKey, tijori_crypto::CryptoError> {
        tijori_crypto::SecretKey::generate().map(RunKey)
    }

    /// The key as the progress file holds it: 64 hex digits.
    fn parse(hex_text: &str) -> Option<RunKey> {
        let bytes = zeroize::Zeroizing::new(hex::decode(hex_text).ok()?);
        tijori_crypto::SecretKey::from_slice(&bytes).map(RunKey)
    }

    fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0.expose_secret()))
    }
}

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(..)")
    }
}

impl PartialEq for RunKey {
    fn eq(&self, other: &RunKey) -> bool {
        use subtle::ConstantTimeEq;
        self.0.expose_secret().ct_eq(other.0.expose_secret()).into()
    }
}

impl Eq for RunKey {}

/// One batch's `POST /v1/tokens/batch` body and its `Idempotency-Key` (see [`RunKey`]).
pub struct BatchRequest {
    pub body: String,
    pub idempotency_key: String,
}

/// One item of a batch request. Its fields are in alphabetical order, as a JSON object of
/// `serde_json` writes them: the body, and so the idempotency key of a batch, are the same
/// bytes as when items were built as such objects, so a run resumed by a newer tijori sends
/// its batches under the same keys and gets no new tokens.
#[derive(serde::Serialize)]
struct Item<'a> {
    deterministic: bool,
    format: &'a str,
    #[serde(rename = "type")]
    data_type: &'a str,
    value: &'a str,
}

/// The batch request tokenizing `values` as `data_type` in `format`.
pub fn batch_request(
    key: &RunKey,
    data_type: &str,
    format: &str,
    deterministic: bool,
    values: &[&str],
) -> BatchRequest {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        items: Vec<Item<'a>>,
    }
    let items = values
        .iter()
        .map(|value| Item {
            deterministic,
            format,
            data_type,
            value,
        })
        .collect();
    // Serializing borrowed strs and a bool cannot fail.
    let body = serde_json::to_string(&Body { items }).unwrap_or_default();
    let idempotency_key = format!(
        "import-{}",
        hex::encode(tijori_crypto::hmac_sha256(
            key.0.expose_secret(),
            &[body.as_bytes()]
        ))
    );
    BatchRequest {
        body,
        idempotency_key,
    }
}

/// One item of a batch answer: the token, or the error code it was refused with.
pub fn item_outcome(item: &Value) -> Result<&str, &str> {
    match item["token"].as_str() {
        Some(token) => Ok(token),
        None => Err(item["error"]["code"].as_str().unwrap_or("error")),
    }
}

/// The CSV text of `record` (a header or a row), as the output file holds it.
pub fn csv_line<'a>(record: impl IntoIterator<Item = &'a str>) -> Result<Vec<u8>, ImportError> {
    // A buffer of a line's size, not csv's default 8 KiB zeroed for every row of an import.
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(256)
        .from_writer(Vec::with_capacity(128));
    w.write_record(record)?;
    w.into_inner()
        .map_err(|e| ImportError::Csv(csv::Error::from(e.into_error())))
}

/// `row` with the value in `column` replaced by `token`, as the output file holds it.
pub fn tokenized_row(
    row: &StringRecord,
    column: usize,
    token: &str,
) -> Result<Vec<u8>, ImportError> {
    csv_line(
        row.iter()
            .enumerate()
            .map(|(c, f)| if c == column { token } else { f }),
    )
}

/// Where a run stands: input rows done, output bytes written, rows rejected. Kept in a small
/// text file beside the output with the run's key, written before the first batch and after
/// every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub rows: u64,
    pub out_bytes: u64,
    pub rejected: u64,
}

impl Progress {
    /// Reads the progress file's text: three whole numbers, then the run's key (64 hex
    /// digits). The key is None in a file of a tijori before 2026-12-05, which had none (its
    /// batches' keys were unkeyed hashes).
    pub fn parse(text: &str) -> Option<(Progress, Option<RunKey>)> {
        let mut words = text.split_whitespace();
        let mut number = || words.next()?.parse::<u64>().ok();
        let (rows, out_bytes, rejected) = (number()?, number()?, number()?);
        let key = match words.next() {
            Some(hex_text) => Some(RunKey::parse(hex_text)?),
            None => None,
        };
        let progress = Progress {
            rows,
            out_bytes,
            rejected,
        };
        words.next().is_none().then_some((progress, key))
    }

    /// The progress file's text.
    pub fn to_text(&self, key: &RunKey) -> zeroize::Zeroizing<String> {
        use std::fmt::Write;
        // Room for it all up front: a string that grows leaves its old buffer unwiped.
        let mut text = zeroize::Zeroizing::new(String::with_capacity(160));
        let hex_key = key.to_hex();
        let _ = writeln!(
            text,
            "{} {} {} {}",
            self.rows,
            self.out_bytes,
            self.rejected,
            hex_key.as_str()
        );
        text
    }
}

/// Data rows of a file (lines after the header), for the progress line; an estimate, since a
/// quoted field may hold a line break.
pub fn count_data_rows(mut input: impl Read) -> std::io::Result<u64> {
    let (mut buf, mut n) = (vec![0u8; 1 << 16], 0u64);
    loop {
        let k = input.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = "id,card,name\n1,4111111111111111,\"Doe, J\"\n2,5555555555554444,x\n";

    #[test]
    fn column_by_position_or_name() {
        let r = ImportReader::new(FILE.as_bytes(), "card").unwrap();
        assert_eq!(r.column(), 1);
        let r = ImportReader::new(FILE.as_bytes(), "3").unwrap();
        assert_eq!(r.column(), 2);
        // A number out of range may still be a header name.
        let h = StringRecord::from(vec!["a", "7"]);
        assert_eq!(resolve_column(&h, "7"), Some(1));
        assert_eq!(resolve_column(&h, "0"), None);
        let e = ImportReader::new(FILE.as_bytes(), "pan").err().unwrap();
        assert_eq!(e.to_string(), "no column 'pan' in the header");
    }

    #[test]
    fn batches_skip_and_rows_rewritten() {
        let mut r = ImportReader::new(FILE.as_bytes(), "card").unwrap();
        r.skip(1).unwrap();
        let rows = r.next_batch(10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(r.value(&rows[0]), "5555555555554444");
        assert!(r.next_batch(10).unwrap().is_empty());
        let mut r = ImportReader::new(FILE.as_bytes(), "2").unwrap();
        let rows = r.next_batch(1).unwrap();
        let line = tokenized_row(&rows[0], r.column(), "tok_1").unwrap();
        assert_eq!(line, b"1,tok_1,\"Doe, J\"\n");
        assert_eq!(csv_line(r.headers()).unwrap(), b"id,card,name\n");
    }

    #[test]
    fn a_row_of_another_width_is_an_error_naming_no_value() {
        let mut r = ImportReader::new("a,b\n1,4111111111111111,3\n".as_bytes(), "b").unwrap();
        let e = r.next_batch(5).err().unwrap().to_string();
        assert!(!e.contains("4111111111111111"), "{e}");
    }

    #[test]
    fn batch_request_and_its_key_follow_the_values_and_the_run() {
        let key = RunKey::generate().unwrap();
        let card = ["4111111111111111"];
        let a = batch_request(&key, "card_number", "random", false, &card);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["items"][0]["value"], "4111111111111111");
        assert_eq!(v["items"][0]["deterministic"], false);
        assert!(a.idempotency_key.starts_with("import-"));
        // The same batch of the same run (a resumed one) sends the same key.
        let again = batch_request(&key, "card_number", "random", false, &card);
        assert_eq!(a.idempotency_key, again.idempotency_key);
        let b = batch_request(&key, "card_number", "random", false, &["4242424242424242"]);
        assert_ne!(a.idempotency_key, b.idempotency_key);
        // Keyed: neither another run's key nor the body's plain hash, which anyone reading the
        // server's idempotency table could try card numbers against.
        let other = batch_request(
            &RunKey::generate().unwrap(),
            "card_number",
            "random",
            false,
            &card,
        );
        assert_ne!(a.idempotency_key, other.idempotency_key);
        let plain = hex::encode(tijori_crypto::sha256(a.body.as_bytes()));
        assert_ne!(a.idempotency_key, format!("import-{plain}"));
        assert_eq!(item_outcome(&json!({"token": "tok_1"})), Ok("tok_1"));
        assert_eq!(
            item_outcome(&json!({"error": {"code": "invalid_card_number"}})),
            Err("invalid_card_number")
        );
        assert_eq!(item_outcome(&json!({})), Err("error"));
    }

    /// The body is byte for byte what earlier versions built from `json!` objects (keys in
    /// alphabetical order), so a batch's idempotency key survives an upgrade mid-import. The
    /// values escape as JSON strings.
    #[test]
    fn a_batch_body_keeps_its_bytes_across_versions() {
        let values = ["4111111111111111", "a \"quoted\" \\ value\n"];
        let a = batch_request(
            &RunKey::generate().unwrap(),
            "text",
            "random",
            true,
            &values,
        );
        let items: Vec<Value> = values
            .iter()
            .map(|v| json!({"type": "text", "value": v, "format": "random", "deterministic": true}))
            .collect();
        assert_eq!(a.body, json!({ "items": items }).to_string());
    }

    #[test]
    fn progress_round_trip() {
        let p = Progress {
            rows: 3,
            out_bytes: 120,
            rejected: 1,
        };
        let key = RunKey::generate().unwrap();
        let text = p.to_text(&key);
        assert!(
            text.starts_with("3 120 1 ") && text.len() == 8 + 64 + 1,
            "{}",
            *text
        );
        assert_eq!(Progress::parse(&text), Some((p, Some(key))));
        // A file of an older tijori: no key.
        assert_eq!(Progress::parse("3 120 1\n"), Some((p, None)));
        assert_eq!(Progress::parse("3 120"), None);
        assert_eq!(Progress::parse("3 120 1 abcd"), None, "a key too short");
        assert_eq!(
            Progress::parse(&format!("3 120 1 {} 7", "a".repeat(64))),
            None
        );
        assert_eq!(Progress::parse("garbage"), None);
        // The key never shows in Debug.
        let parsed = Progress::parse(&format!("1 2 3 {}", "ab".repeat(32)));
        assert!(!format!("{parsed:?}").contains("abab"), "{parsed:?}");
        assert_eq!(count_data_rows("h\n1\n2\n".as_bytes()).unwrap(), 2);
        assert_eq!(count_data_rows("".as_bytes()).unwrap(), 0);
    }
}
