//! RFC 5424 rendering of one audit row:
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [tijori@32473 seq="N" hash="HEX"] MSG`.
//!
//! The MSG is the record's stored JSON text, byte for byte and without a BOM, so a SIEM can
//! verify it against the hash chain; everything in the header is derived from it and only
//! helps routing and filtering. The header never carries more than the record does. A field
//! the RFC would reject (too long, not printable ASCII, not a valid timestamp) becomes the
//! NILVALUE `-` rather than being altered, so nothing misleading reaches the receiver.
//!
//! 32473 is the private enterprise number RFC 5612 reserves for documentation; a deployment
//! that registers its own number changes [`SD_ID`].

use std::borrow::Cow;

use serde_json::Value;
use tijori_store::AuditRow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The APP-NAME of every message.
pub const APP_NAME: &str = "tijori";
/// The SD-ID of the structured-data element carrying the record's place in the hash chain.
pub const SD_ID: &str = "tijori@32473";
/// Facility 13, "log audit".
const FACILITY: u8 = 13;
const NIL: &str = "-";

/// Renders `row` as one RFC 5424 message (without transport framing).
pub fn format(row: &AuditRow, hostname: &str, procid: u32) -> String {
    format_limited(row, hostname, procid, usize::MAX)
}

/// Like [`format`], but a message longer than `limit` bytes has its MSG cut at a UTF-8
/// character boundary so the whole fits, and says so with `truncated="true"`.
pub(crate) fn format_limited(row: &AuditRow, hostname: &str, procid: u32, limit: usize) -> String {
    let fields: Option<Value> = serde_json::from_str(&row.record).ok();
    let field = |name: &str| fields.as_ref().and_then(|v| v.get(name)?.as_str());
    let pri = FACILITY * 8 + severity(field("outcome"));
    let timestamp = timestamp(field("time"));
    let hostname = header_field(Some(hostname), 255);
    let msgid = header_field(field("operation"), 32);
    let sd = format!(
        "[{SD_ID} seq=\"{}\" hash=\"{}\"",
        row.seq,
        escape_param(&hex::encode(&row.hash))
    );
    let head = format!("<{pri}>1 {timestamp} {hostname} {APP_NAME} {procid} {msgid} {sd}");
    let whole = head.len() + "] ".len() + row.record.len();
    if whole <= limit {
        return format!("{head}] {}", row.record);
    }
    let head = format!("{head} truncated=\"true\"] ");
    let mut end = limit.saturating_sub(head.len()).min(row.record.len());
    while !row.record.is_char_boundary(end) {
        end -= 1;
    }
    format!("{head}{}", &row.record[..end])
}

/// RFC 5424 severities: denials are what an analyst looks for first.
fn severity(outcome: Option<&str>) -> u8 {
    match outcome {
        Some("success") => 6,
        Some("denied") => 4,
        _ => 5,
    }
}

/// A header field as is if the RFC allows it (1 to `max` printable US-ASCII characters),
/// otherwise the NILVALUE.
fn header_field(value: Option<&str>, max: usize) -> &str {
    match value {
        Some(v)
            if !v.is_empty() && v.len() <= max && v.bytes().all(|b| (33..=126).contains(&b)) =>
        {
            v
        }
        _ => NIL,
    }
}

/// The record's RFC 3339 time, verbatim when it already has RFC 5424's stricter shape
/// (upper-case `T`/`Z`, at most six fraction digits, no leap second), re-rendered when it is a
/// valid RFC 3339 time of another shape, and the NILVALUE otherwise.
fn timestamp(time: Option<&str>) -> Cow<'_, str> {
    let Some(s) = time else {
        return Cow::Borrowed(NIL);
    };
    let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) else {
        return Cow::Borrowed(NIL);
    };
    if has_5424_shape(s) {
        return Cow::Borrowed(s);
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.microsecond() != 0 {
        out.push_str(&format!(".{:06}", t.microsecond()));
    }
    let offset = t.offset();
    if offset.is_utc() {
        out.push('Z');
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        out.push_str(&format!(
            "{sign}{:02}:{:02}",
            h.unsigned_abs(),
            m.unsigned_abs()
        ));
    }
    Cow::Owned(out)
}

/// `YYYY-MM-DDTHH:MM:SS[.1-6 digits](Z|+HH:MM|-HH:MM)` with seconds below 60; the values
/// themselves were already checked by the RFC 3339 parser.
fn has_5424_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let fixed = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19)
        && b.get(17).is_some_and(|d| *d < b'6');
    if !fixed {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|d| d.is_ascii_digit()).count();
        if !(1..=6).contains(&n) {
            return false;
        }
        rest = &frac[n..];
    }
    rest == b"Z"
        || (rest.len() == 6
            && matches!(rest[0], b'+' | b'-')
            && rest[1..3].iter().all(u8::is_ascii_digit)
            && rest[3] == b':'
            && rest[4..6].iter().all(u8::is_ascii_digit))
}

/// Escapes an SD-PARAM value: `"`, `\` and `]` take a backslash (RFC 5424 section 6.3.3).
pub(crate) fn escape_param(value: &str) -> Cow<'_, str> {
    if !value.contains(['"', '\\', ']']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"time":"2026-11-24T10:00:00Z","request_id":"req_ab12","principal_id":"p_1","principal_kind":"service","source":"127.0.0.1:5555","operation":"detokenize","resource":"tok_x","data_type":"card","outcome":"success","reason":null}"#;

    fn row(record: &str) -> AuditRow {
        AuditRow {
            seq: 7,
            record: record.to_owned(),
            prev_hash: vec![0; 4],
            hash: vec![0xde, 0xad, 0xbe, 0xef],
        }
    }

    /// The record with one field's JSON value replaced (`None` removes the field).
    fn with(field: &str, value: Option<&str>) -> String {
        let mut v: serde_json::Map<String, Value> = serde_json::from_str(RECORD).unwrap();
        match value {
            Some(x) => v.insert(field.to_owned(), serde_json::from_str(x).unwrap()),
            None => v.remove(field),
        };
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn formats_a_success_record() {
        assert_eq!(
            format(&row(RECORD), "vault-1", 4242),
            format!(
                "<110>1 2026-11-24T10:00:00Z vault-1 tijori 4242 detokenize \
                 [tijori@32473 seq=\"7\" hash=\"deadbeef\"] {RECORD}"
            )
        );
    }

    #[test]
    fn priority_follows_outcome() {
        let pri = |record: &str| {
            let m = format(&row(record), "h", 1);
            m[..m.find('>').unwrap() + 1].to_owned()
        };
        // Facility 13 (log audit) * 8 + severity.
        assert_eq!(pri(RECORD), "<110>");
        assert_eq!(pri(&with("outcome", Some(r#""denied""#))), "<108>");
        assert_eq!(pri(&with("outcome", Some(r#""failure""#))), "<109>");
        assert_eq!(pri(&with("outcome", Some(r#""surprise""#))), "<109>");
        assert_eq!(pri(&with("outcome", Some("1"))), "<109>");
        assert_eq!(pri(&with("outcome", None)), "<109>");
    }

    #[test]
    fn unusable_fields_become_nilvalue() {
        let r = with("time", None);
        assert_eq!(
            format(&row(&r), "h", 1),
            format!(
                "<110>1 - h tijori 1 detokenize [tijori@32473 seq=\"7\" hash=\"deadbeef\"] {r}"
            )
        );
        let r = with("time", Some(r#""yesterday""#));
        assert!(format(&row(&r), "h", 1).starts_with("<110>1 - h tijori 1 detokenize ["));
        let r = with("time", Some(r#""2026-13-24T10:00:00Z""#));
        assert!(format(&row(&r), "h", 1).starts_with("<110>1 - h "));
        // Not JSON at all: still sent, verbatim, with what can be said about it.
        let mut odd = row("not json ]\"");
        odd.hash.clear();
        assert_eq!(
            format(&odd, "h", 1),
            "<109>1 - h tijori 1 - [tijori@32473 seq=\"7\" hash=\"\"] not json ]\""
        );
    }

    #[test]
    fn msgid_is_restricted() {
        let msgid = |op: Option<&str>| {
            let m = format(&row(&with("operation", op)), "h", 1);
            m.split(' ').nth(5).unwrap().to_owned()
        };
        assert_eq!(msgid(Some(r#""tokenize""#)), "tokenize");
        assert_eq!(
            msgid(Some(&format!("\"{}\"", "x".repeat(32)))),
            "x".repeat(32)
        );
        assert_eq!(msgid(Some(&format!("\"{}\"", "x".repeat(33)))), "-");
        assert_eq!(msgid(Some(r#""de tokenize""#)), "-");
        assert_eq!(msgid(Some(r#""détokenize""#)), "-");
        assert_eq!(msgid(Some(r#""tab\tbed""#)), "-");
        assert_eq!(msgid(Some(r#""""#)), "-");
        assert_eq!(msgid(Some("null")), "-");
        assert_eq!(msgid(None), "-");
    }

    #[test]
    fn hostname_is_restricted() {
        let host = |h: &str| {
            format(&row(RECORD), h, 1)
                .split(' ')
                .nth(2)
                .unwrap()
                .to_owned()
        };
        assert_eq!(host("vault-1.example.com"), "vault-1.example.com");
        assert_eq!(host(&"h".repeat(255)), "h".repeat(255));
        assert_eq!(host(&"h".repeat(256)), "-");
        assert_eq!(host("two words"), "-");
        assert_eq!(host(""), "-");
    }

    #[test]
    fn timestamps_take_the_rfc_5424_shape() {
        let ts = |t: &str| timestamp(Some(t)).into_owned();
        assert_eq!(ts("2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z");
        assert_eq!(
            ts("2026-11-24T10:00:00.5+05:00"),
            "2026-11-24T10:00:00.5+05:00"
        );
        assert_eq!(
            ts("2026-11-24T10:00:00.123456-00:30"),
            "2026-11-24T10:00:00.123456-00:30"
        );
        // RFC 5424 allows six fraction digits at most: re-rendered, same instant and offset.
        assert_eq!(
            ts("2026-11-24T10:00:00.123456789+05:00"),
            "2026-11-24T10:00:00.123456+05:00"
        );
        assert_eq!(
            ts("2026-11-24T10:00:00.000000001-08:00"),
            "2026-11-24T10:00:00-08:00"
        );
        // RFC 3339 lets a space stand for the `T`; RFC 5424 does not.
        assert_eq!(ts("2026-11-24 10:00:00Z"), "2026-11-24T10:00:00Z");
        assert_eq!(ts("2026-11-24"), "-");
        assert_eq!(ts("2026-11-24T10:00:00"), "-");
        assert_eq!(ts(""), "-");
        assert_eq!(timestamp(None), "-");
    }

    #[test]
    fn escapes_param_values() {
        assert_eq!(escape_param("plain"), "plain");
        assert_eq!(escape_param(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_param("[x]=é"), r"[x\]=é");
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        // 3-byte characters, so most cut points fall inside one.
        let record = format!(r#"{{"operation":"x","resource":"{}"}}"#, "€".repeat(30_000));
        let r = row(&record);
        assert_eq!(format_limited(&r, "h", 1, usize::MAX), format(&r, "h", 1));
        for limit in [60_000, 59_999, 59_998, 1_000] {
            let m = format_limited(&r, "h", 1, limit);
            assert!(
                m.len() <= limit && m.len() > limit - 4,
                "{limit}: {}",
                m.len()
            );
            let head = "<109>1 - h tijori 1 x [tijori@32473 seq=\"7\" hash=\"deadbeef\" \
                        truncated=\"true\"] ";
            assert!(m.starts_with(head));
            assert!(record.starts_with(&m[head.len()..]));
        }
        // A message that fits exactly is left whole.
        let whole = format(&r, "h", 1);
        assert_eq!(format_limited(&r, "h", 1, whole.len()), whole);
        assert!(format_limited(&r, "h", 1, whole.len() - 1).contains("truncated=\"true\""));
    }
}
