//! Reading the audit trail from outside the data dir: `GET /v1/audit` (roles, filters,
//! pagination, refusals, and its own records), the public key that checks the signed
//! checkpoints, the HMAC that finds the records of a known value (API and `tijori audit hash`),
//! `tijori audit tail`, and forwarding every record to a syslog receiver over TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Long enough for a loaded two-core machine; conditions are polled, never slept on.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The trail as stored, read straight from the data dir.

struct Row {
    seq: i64,
    record: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl Row {
    fn json(&self) -> Value {
        serde_json::from_str(&self.record).unwrap()
    }
}

fn rows(dir: &Path) -> Vec<Row> {
    let db = common::trail::trail_db(dir);
    let mut stmt = db
        .prepare("SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                seq: r.get(0)?,
                record: r.get(1)?,
                prev_hash: r.get(2)?,
                hash: r.get(3)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// The newest record's number (0 for none).
fn db_head(dir: &Path) -> i64 {
    rows(dir).last().map_or(0, |r| r.seq)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// Creates a principal as root; answers its id and API key.
fn principal_with_id(s: &Server, name: &str, roles: &[&str]) -> (String, String) {
    let r = s.post(
        "/v1/principals",
        Some(&s.root_token),
        &json!({"name": name, "roles": roles}),
    );
    assert_eq!(r.status, 201, "create principal: {}", r.text);
    (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["api_key"].as_str().unwrap().to_owned(),
    )
}

/// `GET /v1/audit?{query}`, insisting on `200`.
fn read(s: &Server, key: &str, query: &str) -> Reply {
    let r = s.get(&format!("/v1/audit?{query}"), Some(key));
    assert_eq!(r.status, 200, "GET /v1/audit?{query}: {}", r.text);
    r
}

fn entries(r: &Reply) -> &Vec<Value> {
    r.json["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records array: {}", r.text))
}

fn seqs(r: &Reply) -> Vec<i64> {
    entries(r)
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

fn head_of(r: &Reply) -> i64 {
    r.json["head"]
        .as_i64()
        .unwrap_or_else(|| panic!("no head: {}", r.text))
}

/// The entry of the request that answered `r`, if `page` has it.
fn entry_of<'a>(page: &'a Reply, r: &Reply) -> Option<&'a Value> {
    let id = r.request_id.as_deref().unwrap();
    entries(page)
        .iter()
        .find(|e| e["record"]["request_id"] == id)
}

fn request_ids(page: &Reply) -> Vec<String> {
    entries(page)
        .iter()
        .map(|e| e["record"]["request_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Runs the `tijori` binary with `args`, optionally feeding `stdin`.
fn tijori(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("TIJORI_TOKEN")
        .env_remove("TIJORI_ADDR")
        .env_remove("TIJORI_DATA_DIR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// `tijori audit hash --type TY` against `s` with `key`, the value on stdin.
fn cli_hash(s: &Server, key: &str, ty: &str, input: &str) -> Output {
    tijori(
        &[
            "audit", "hash", "--type", ty, "--addr", &s.url, "--token", key,
        ],
        Some(input),
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// GET /v1/audit

#[test]
fn reading_the_trail_takes_an_audit_role() {
    let s = start("audit-read-roles");
    let (auditor_id, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (_, officer) = principal_with_id(&s, "officer", &["data_officer"]);
    let revealer = principal_with_id(&s, "revealer", &["revealer"]);
    let tokenizer = principal_with_id(&s, "tokenizer", &["tokenizer"]);
    let support = principal_with_id(&s, "support", &["support"]);

    for key in [&auditor, &officer, &s.root_token] {
        let r = read(&s, key, "");
        assert!(!entries(&r).is_empty(), "{}", r.text);
        assert_eq!(s.get("/v1/audit/public-key", Some(key)).status, 200);
        let h = s.post(
            "/v1/audit/hash",
            Some(key),
            &json!({"type": "card_number", "value": card()}),
        );
        assert_eq!(h.status, 200, "{}", h.text);
    }
    let mut refused = Vec::new();
    for (id, key) in [&revealer, &tokenizer, &support] {
        let r = s.get("/v1/audit", Some(key));
        assert_error(&r, 403, "forbidden");
        assert_eq!(r.json.get("records"), None, "a refusal shows no records");
        assert_error(&s.get("/v1/audit/public-key", Some(key)), 403, "forbidden");
        assert_error(
            &s.post(
                "/v1/audit/hash",
                Some(key),
                &json!({"type": "card_number", "value": card()}),
            ),
            403,
            "forbidden",
        );
        refused.push((id, r));
    }
    let anonymous = s.get("/v1/audit", None);
    assert_error(&anonymous, 401, "unauthenticated");
    assert_error(
        &s.get("/v1/audit", Some("not-a-key")),
        401,
        "unauthenticated",
    );
    assert_error(&s.get("/v1/audit/public-key", None), 401, "unauthenticated");
    assert_error(
        &s.post(
            "/v1/audit/hash",
            None,
            &json!({"type": "iban", "value": "x"}),
        ),
        401,
        "unauthenticated",
    );

    // The refusals are on the trail, as denied reads.
    let later = read(
        &s,
        &auditor,
        "operation=read_audit&outcome=denied&limit=1000",
    );
    for (id, r) in &refused {
        let e = entry_of(&later, r).unwrap_or_else(|| panic!("no record of a refused read"));
        assert_eq!(e["record"]["reason"], "forbidden");
        assert_eq!(e["record"]["principal_id"], id.as_str());
    }
    assert!(
        entries(&later)
            .iter()
            .all(|e| e["record"]["principal_id"] != auditor_id.as_str()),
        "the auditor was never refused: {}",
        later.text
    );
    let e = entry_of(&later, &anonymous).expect("no record of the anonymous read");
    assert_eq!(e["record"]["reason"], "unauthenticated");
    assert!(e["record"]["principal_id"].is_null());
}

#[test]
fn records_come_whole_chained_and_as_stored() {
    let s = start("audit-read-shape");
    let (auditor_id, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (svc_id, svc) = principal_with_id(&s, "svc", &["revealer"]);
    let card = card();
    let t = tokenize(&s, &svc, json!({"type": "card_number", "value": card}));
    assert_eq!(t.status, 201, "{}", t.text);
    let token = token_of(&t);
    assert_eq!(reveal(&s, &svc, &token), card);

    let before = db_head(&s.data_dir);
    let page = read(&s, &auditor, "");
    let stored = rows(&s.data_dir);
    assert_eq!(
        head_of(&page),
        before,
        "head is the newest record when read"
    );
    assert!(
        page.json["next"].is_null(),
        "one page holds it all: {}",
        page.text
    );
    // The whole trail, in order, from record 1, byte for byte what the data dir holds.
    assert_eq!(seqs(&page), (1..=before).collect::<Vec<_>>());
    for (e, row) in entries(&page).iter().zip(&stored) {
        assert_eq!(e["seq"], row.seq);
        assert_eq!(e["hash"], hex_of(&row.hash).as_str());
        assert_eq!(e["prev_hash"], hex_of(&row.prev_hash).as_str());
        assert!(is_hex(e["hash"].as_str().unwrap(), 64), "{e}");
        assert!(is_hex(e["prev_hash"].as_str().unwrap(), 64), "{e}");
        assert_eq!(
            e["record"],
            row.json(),
            "record {} differs from the stored one",
            row.seq
        );
        let mut keys: Vec<&str> = e["record"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "value_hmacs")
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "data_type",
                "operation",
                "outcome",
                "principal_id",
                "principal_kind",
                "reason",
                "request_id",
                "resource",
                "source",
                "time"
            ],
            "{e}"
        );
        let entry_keys: BTreeSet<&str> =
            e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            entry_keys,
            BTreeSet::from(["hash", "prev_hash", "record", "seq"])
        );
    }
    for pair in entries(&page).windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "chain broken at {}",
            pair[1]["seq"]
        );
    }
    let ops: Vec<&str> = entries(&page)
        .iter()
        .map(|e| e["record"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "system.unseal",
            "system.root_token_set",
            "system.start",
            "create_principal",
            "create_principal",
            "tokenize",
            "detokenize"
        ]
    );
    let tk = entry_of(&page, &t).expect("the tokenize record");
    assert_eq!(tk["record"]["principal_id"], svc_id.as_str());
    assert_eq!(tk["record"]["resource"], token.as_str());
    assert_eq!(tk["record"]["data_type"], "card_number");
    assert_eq!(tk["record"]["outcome"], "success");
    assert!(!page.text.contains(&card), "the trail shows a value");

    // The read is on the trail now, after what it read, and did not see itself.
    assert!(entry_of(&page, &page).is_none());
    let next = read(&s, &auditor, &format!("after={before}"));
    assert_eq!(seqs(&next)[0], before + 1);
    let me = &entries(&next)[0]["record"];
    assert_eq!(me["request_id"], page.request_id.as_deref().unwrap());
    assert_eq!(me["operation"], "read_audit");
    assert_eq!(me["principal_id"], auditor_id.as_str());
    assert_eq!(me["principal_kind"], "service");
    assert_eq!(me["outcome"], "success");
    assert!(me["reason"].is_null());
    // It names the records it handed out, by number, and how many.
    let read_seqs = seqs(&page);
    let (first, last) = (read_seqs[0], read_seqs[read_seqs.len() - 1]);
    assert_eq!(me["resource"], format!("seq {first}-{last}").as_str());
    assert_eq!(me["count"], read_seqs.len());
}

#[test]
fn filters_select_exactly_the_matching_records() {
    let s = start("audit-read-filters");
    let (_, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (a_id, a) = principal_with_id(&s, "svc-a", &["revealer"]);
    let (b_id, b) = principal_with_id(&s, "svc-b", &["revealer"]);
    let ta = tokenize(&s, &a, json!({"type": "card_number", "value": card()}));
    assert_eq!(ta.status, 201);
    let tok_a = token_of(&ta);
    let tok_b = new_token(&s, &b, "text", &text());
    let both = detokenize(&s, &a, &[&tok_b, &tok_a]);
    assert_eq!(both.status, 200, "{}", both.text);
    let only_b = detokenize(&s, &b, &[&tok_b]);
    assert_eq!(only_b.status, 200);
    let bad_card = tokenize(
        &s,
        &b,
        json!({"type": "card_number", "value": "4111111111111112"}),
    );
    assert_eq!(bad_card.status, 422, "{}", bad_card.text);
    let anon = s.post("/v1/tokens", None, &json!({"type": "text", "value": "x"}));
    assert_eq!(anon.status, 401);
    let forbidden = s.post("/v1/sys/seal", Some(&b), &json!({}));
    assert_eq!(forbidden.status, 403);

    // Every filter against the same records, computed here from the data dir.
    let check_maybe_empty = |query: &str, want: &dyn Fn(&Value) -> bool| -> Reply {
        let page = read(&s, &auditor, &format!("{query}&limit=1000"));
        assert!(page.json["next"].is_null(), "{query}: {}", page.text);
        let head = head_of(&page);
        let expected: Vec<i64> = rows(&s.data_dir)
            .iter()
            .filter(|r| r.seq <= head && want(&r.json()))
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs(&page), expected, "{query}");
        page
    };
    let check = |query: &str, want: &dyn Fn(&Value) -> bool| -> Reply {
        let page = check_maybe_empty(query, want);
        assert!(
            !entries(&page).is_empty(),
            "{query} matched nothing, so it shows nothing"
        );
        page
    };

    let p = check(&format!("principal={a_id}"), &|r| {
        r["principal_id"] == a_id.as_str()
    });
    assert!(entry_of(&p, &ta).is_some() && entry_of(&p, &both).is_some());
    assert!(entry_of(&p, &only_b).is_none());
    let p = check(&format!("principal={b_id}&operation=detokenize"), &|r| {
        r["principal_id"] == b_id.as_str() && r["operation"] == "detokenize"
    });
    assert_eq!(request_ids(&p), [only_b.request_id.clone().unwrap()]);

    let p = check("operation=tokenize", &|r| r["operation"] == "tokenize");
    assert_eq!(
        entries(&p).len(),
        4,
        "two tokens, a refused card and an anonymous attempt: {}",
        p.text
    );
    assert!(entry_of(&p, &bad_card).is_some() && entry_of(&p, &anon).is_some());

    // A token matches records naming it alone or among others.
    let p = check(&format!("token={tok_a}"), &|r| {
        r["resource"]
            .as_str()
            .is_some_and(|res| res.split([',', ' ']).any(|t| t == tok_a))
    });
    assert_eq!(
        request_ids(&p),
        [
            ta.request_id.clone().unwrap(),
            both.request_id.clone().unwrap()
        ]
    );
    let p = check(&format!("token={tok_b}&principal={b_id}"), &|r| {
        r["principal_id"] == b_id.as_str()
            && r["resource"]
                .as_str()
                .is_some_and(|res| res.split([',', ' ']).any(|t| t == tok_b))
    });
    assert_eq!(
        entries(&p).len(),
        2,
        "b's tokenize and detokenize: {}",
        p.text
    );

    let p = check("outcome=denied", &|r| r["outcome"] == "denied");
    assert!(entry_of(&p, &anon).is_some() && entry_of(&p, &forbidden).is_some());
    let p = check("outcome=failure", &|r| r["outcome"] == "failure");
    let e = entry_of(&p, &bad_card).expect("the refused card");
    assert_eq!(e["record"]["reason"], "invalid_card_number");
    check("outcome=success&operation=detokenize", &|r| {
        r["outcome"] == "success" && r["operation"] == "detokenize"
    });

    // Time: since is inclusive, until exclusive; RFC 3339 or Unix seconds alike.
    let t = rows(&s.data_dir)
        .iter()
        .find(|r| r.json()["request_id"] == ta.request_id.as_deref().unwrap())
        .unwrap()
        .json()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let secs = unix_seconds(&t);
    let since = |r: &Value| unix_seconds(r["time"].as_str().unwrap()) >= secs;
    let until = |r: &Value| unix_seconds(r["time"].as_str().unwrap()) < secs;
    let p1 = check(&format!("since={t}"), &since);
    assert!(entry_of(&p1, &ta).is_some());
    let p2 = check(&format!("since={secs}"), &since);
    assert_eq!(seqs(&p1), seqs(&p2)[..seqs(&p1).len()]);
    let offset = format!("since={}", rfc3339_plus5(secs));
    check(&offset.replace('+', "%2B"), &since);
    // (Empty if everything so far happened within one second.)
    let p = check_maybe_empty(&format!("until={t}"), &until);
    assert!(entry_of(&p, &ta).is_none());
    check_maybe_empty(&format!("until={secs}"), &until);
    let window = check(&format!("since={secs}&until={}", secs + 1), &|r| {
        unix_seconds(r["time"].as_str().unwrap()) == secs
    });
    assert!(entry_of(&window, &ta).is_some());

    // Filters that match nothing answer an empty last page, not an error.
    for q in [
        "until=0",
        "since=4102444800",
        "until=1970-01-01T00:00:00Z",
        "operation=no-such-operation",
        "principal=prn_nobody",
        "token=tok_nothing",
    ] {
        let r = read(&s, &auditor, q);
        assert_eq!(r.json["records"], json!([]), "{q}: {}", r.text);
        assert!(r.json["next"].is_null(), "{q}: {}", r.text);
        assert!(head_of(&r) > 0);
    }
    let all = read(&s, &auditor, "since=0&until=4102444800&limit=1000");
    assert_eq!(seqs(&all), (1..=head_of(&all)).collect::<Vec<_>>());
}

/// Unix seconds past year 9999 (a millisecond timestamp passed by mistake, say) are either
/// refused or taken for what they are: a time after every record. Never as 1970.
#[test]
fn far_future_times_are_not_read_as_1970() {
    let s = start("audit-read-far");
    let (_, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    for far in [now_ms.as_str(), "253402300800", "9223372036854775807"] {
        let r = s.get(&format!("/v1/audit?since={far}"), Some(&auditor));
        if r.status != 400 {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(
                r.json["records"],
                json!([]),
                "since={far} is after every record, yet it matched: {}",
                r.text
            );
        } else {
            assert_error(&r, 400, "invalid_request");
        }
        let r = s.get(&format!("/v1/audit?until={far}&limit=1000"), Some(&auditor));
        if r.status != 400 {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(
                seqs(&r),
                (1..=head_of(&r)).collect::<Vec<_>>(),
                "until={far} is after every record, yet it excluded some: {}",
                r.text
            );
        } else {
            assert_error(&r, 400, "invalid_request");
        }
    }
}

/// `secs` as an RFC 3339 time at UTC+05:00 (the same instant).
fn rfc3339_plus5(secs: i64) -> String {
    let local = secs + 5 * 3600;
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+05:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn bad_queries_are_refused_and_recorded() {
    let s = start("audit-read-bad");
    let (auditor_id, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let mut refused = Vec::new();
    for q in [
        "foo=1",
        "operations=tokenize",
        "outcome=ok",
        "outcome=Success",
        "outcome=",
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=-1",
        "limit=",
        "since=yesterday",
        "since=2026-13-01T00:00:00Z",
        "until=2026-11-24",
        "until=2026-11-24T10:00:00",
        "after=x",
        "after=1.5",
        "limit=5&bogus=",
    ] {
        let r = s.get(&format!("/v1/audit?{q}"), Some(&auditor));
        assert_error(&r, 400, "invalid_request");
        assert_eq!(r.json.get("records"), None, "{q}: {}", r.text);
        refused.push(r);
    }
    // The bounds themselves are accepted.
    for q in [
        "limit=1",
        "limit=1000",
        "after=0",
        "since=2026-11-24T10:00:00.5Z",
    ] {
        read(&s, &auditor, q);
    }
    assert_eq!(entries(&read(&s, &auditor, "limit=1")).len(), 1);
    let later = read(
        &s,
        &auditor,
        "operation=read_audit&outcome=failure&limit=1000",
    );
    assert_eq!(entries(&later).len(), refused.len(), "{}", later.text);
    for r in &refused {
        let e = &entry_of(&later, r).expect("a record of each refused read")["record"];
        assert_eq!(e["reason"], "invalid_request");
        assert_eq!(e["principal_id"], auditor_id.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination

#[test]
fn pages_cover_the_trail_without_gaps_or_repeats() {
    let s = start("audit-read-pages");
    let (auditor_id, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (_, svc) = principal_with_id(&s, "svc", &["tokenizer"]);
    let mut tokenized = Vec::new();
    for _ in 0..25 {
        let r = tokenize(&s, &svc, json!({"type": "text", "value": text()}));
        assert_eq!(r.status, 201);
        tokenized.push(r.request_id.unwrap());
    }
    let start_head = db_head(&s.data_dir);
    assert_eq!(start_head, 30, "3 system records, 2 principals, 25 tokens");
    assert_eq!(
        rows(&s.data_dir).iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=start_head).collect::<Vec<_>>()
    );

    // Unfiltered: each read adds its own record, which later pages pick up.
    let mut collected = Vec::new();
    let mut after: Option<i64> = None;
    let mut pages = 0;
    let last_head = loop {
        let q = after.map_or("limit=7".to_owned(), |a| format!("limit=7&after={a}"));
        let page = read(&s, &auditor, &q);
        pages += 1;
        assert!(pages < 50, "pagination does not end");
        if pages == 1 {
            assert_eq!(head_of(&page), start_head);
        }
        let got = seqs(&page);
        assert!(got.len() <= 7, "{q}: {}", page.text);
        if let Some(a) = after {
            assert!(got.iter().all(|&n| n > a), "{q}: {got:?}");
        }
        collected.extend_from_slice(&got);
        match page.json["next"].as_i64() {
            Some(next) => {
                assert_eq!(got.len(), 7, "a page with a next is full: {}", page.text);
                assert_eq!(Some(&next), got.last());
                after = Some(next);
            }
            None => {
                assert!(page.json["next"].is_null(), "{}", page.text);
                break head_of(&page);
            }
        }
    };
    assert!(
        collected.windows(2).all(|w| w[0] < w[1]),
        "not strictly increasing: {collected:?}"
    );
    // Exactly the trail up to the last page's head: the records there at the first read, and
    // the records of the earlier page reads, which were the only ones written since.
    assert_eq!(collected, (1..=last_head).collect::<Vec<_>>());
    assert_eq!(last_head, start_head + pages - 1, "{pages} pages");
    let stored = rows(&s.data_dir);
    for r in stored.iter().filter(|r| r.seq > start_head) {
        let v = r.json();
        assert_eq!(
            (v["operation"].as_str(), v["principal_id"].as_str()),
            (Some("read_audit"), Some(auditor_id.as_str()))
        );
    }
    assert_eq!(
        db_head(&s.data_dir),
        start_head + pages,
        "the last read is recorded too"
    );

    // Filtered: the pages hold the matches only, still in order and complete.
    let mut found = Vec::new();
    let mut after = 0;
    let mut sizes = Vec::new();
    loop {
        let page = read(
            &s,
            &auditor,
            &format!("operation=tokenize&limit=7&after={after}"),
        );
        sizes.push(entries(&page).len());
        found.extend(request_ids(&page));
        match page.json["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
        assert!(sizes.len() < 50);
    }
    assert_eq!(found, tokenized);
    assert_eq!(sizes, [7, 7, 7, 4]);

    // `after` past the head: an empty last page.
    let r = read(&s, &auditor, "after=1000000");
    assert_eq!(r.json["records"], json!([]));
    assert!(r.json["next"].is_null());
}

// ---------------------------------------------------------------------------------------------
// The public key

#[test]
fn public_key_is_the_one_in_the_data_dir() {
    let mut s = start("audit-read-key");
    let (_, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let r = s.get("/v1/audit/public-key", Some(&auditor));
    assert_eq!(r.status, 200, "{}", r.text);
    let key = r.json["public_key"].as_str().unwrap().to_owned();
    let fingerprint = r.json["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        key.strip_prefix("ed25519:").is_some_and(|h| is_hex(h, 64)),
        "{key}"
    );
    assert!(is_hex(&fingerprint, 16), "{fingerprint}");
    assert_eq!(
        r.json.as_object().unwrap().len(),
        2,
        "public_key and fingerprint only: {}",
        r.text
    );

    // The CLI reads the same key from the data dir, beside the running server.
    let dir = s.data_dir.to_str().unwrap().to_owned();
    let out = tijori(&["audit", "public-key", "--data-dir", &dir], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{key}\n"));
    // And verify names its fingerprint when checking with it.
    let out = tijori(&["audit", "verify", "--data-dir", &dir], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains(&fingerprint), "{}", stderr(&out));
    let out = tijori(
        &["audit", "verify", "--data-dir", &dir, "--public-key", &key],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The key outlives a restart, and fetching it is recorded.
    let fetched = r.request_id.clone().unwrap();
    s.restart();
    let again = s.get("/v1/audit/public-key", Some(&auditor));
    assert_eq!(again.json, r.json);
    let recs = read(&s, &auditor, "operation=read_audit_public_key");
    assert_eq!(
        request_ids(&recs),
        [fetched, again.request_id.clone().unwrap()]
    );
}

// ---------------------------------------------------------------------------------------------
// Value HMACs

fn hash(s: &Server, key: &str, ty: &str, value: &str) -> Reply {
    s.post(
        "/v1/audit/hash",
        Some(key),
        &json!({"type": ty, "value": value}),
    )
}

fn hmac(s: &Server, key: &str, ty: &str, value: &str) -> String {
    let r = hash(s, key, ty, value);
    assert_eq!(r.status, 200, "hash {ty}: {}", r.text);
    assert_no_leak(&r, value);
    let h = r.json["hmac"].as_str().unwrap().to_owned();
    assert!(
        h.strip_prefix("hmac-sha256:")
            .is_some_and(|x| is_hex(x, 64)),
        "{h}"
    );
    h
}

#[test]
fn a_values_hmac_finds_its_tokenize_records() {
    let s = start("audit-read-hash");
    let (_, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (_, svc) = principal_with_id(&s, "svc", &["tokenizer"]);
    let c = card();
    let h = hmac(&s, &auditor, "card_number", &c);
    assert_eq!(hmac(&s, &auditor, "card_number", &grouped(&c, ' ')), h);
    assert_eq!(hmac(&s, &auditor, "card_number", &grouped(&c, '-')), h);
    let other = card();
    assert_ne!(other, c);
    assert_ne!(hmac(&s, &auditor, "card_number", &other), h);
    // Keyed per type: the same digits as another type hash differently.
    assert_ne!(hmac(&s, &auditor, "text", &c), h);

    let spaced = tokenize(
        &s,
        &svc,
        json!({"type": "card_number", "value": grouped(&c, ' ')}),
    );
    assert_eq!(spaced.status, 201, "{}", spaced.text);
    let plain = tokenize(&s, &svc, json!({"type": "card_number", "value": c}));
    assert_eq!(plain.status, 201);
    let unrelated = tokenize(&s, &svc, json!({"type": "card_number", "value": other}));
    assert_eq!(unrelated.status, 201);
    let csc = tokenize(
        &s,
        &svc,
        json!({"type": "card_security_code", "value": digits(3)}),
    );
    assert_eq!(csc.status, 201, "{}", csc.text);

    let page = read(&s, &auditor, "operation=tokenize");
    let hmacs =
        |r: &Reply| entry_of(&page, r).expect("a tokenize record")["record"]["value_hmacs"].clone();
    assert_eq!(hmacs(&spaced), json!([h]));
    assert_eq!(hmacs(&plain), json!([h]));
    assert_eq!(hmacs(&unrelated).as_array().map(Vec::len), Some(1));
    assert_ne!(hmacs(&unrelated), json!([h]));
    assert!(
        hmacs(&csc).is_null(),
        "a card security code has no HMAC: {}",
        page.text
    );
    let with_h: Vec<String> = entries(&read(&s, &auditor, "limit=1000"))
        .iter()
        .filter(|e| {
            e["record"]["value_hmacs"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(h)))
        })
        .filter(|e| e["record"]["operation"] == "tokenize")
        .map(|e| e["record"]["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        with_h,
        [spaced.request_id.unwrap(), plain.request_id.unwrap()]
    );
    for v in [&c, &other] {
        assert!(!page.text.contains(v.as_str()));
    }

    // Refused: security codes, unknown types, invalid values, unknown fields.
    let r = hash(&s, &auditor, "card_security_code", &digits(3));
    assert_error(&r, 400, "invalid_request");
    assert_error(
        &hash(&s, &auditor, "shoe_size", "42"),
        400,
        "invalid_request",
    );
    assert_error(
        &hash(&s, &auditor, "card_number", "4111111111111112"),
        422,
        "invalid_card_number",
    );
    assert_error(
        &s.post(
            "/v1/audit/hash",
            Some(&auditor),
            &json!({"type": "card_number", "value": c, "extra": 1}),
        ),
        400,
        "unknown_field",
    );
    let audited = read(&s, &auditor, "operation=audit_hash&limit=1000");
    let e = entry_of(&audited, &r).expect("the refused hash is recorded");
    assert_eq!(e["record"]["outcome"], "failure");
    assert!(e["record"].get("value_hmacs").is_none());
    assert!(!audited.text.contains(&c));

    // The CLI reads the value from stdin and asks the server.
    for input in [
        c.clone(),
        format!("{c}\n"),
        format!("{}\r\n", grouped(&c, ' ')),
    ] {
        let out = cli_hash(&s, &auditor, "card_number", &input);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{h}\n"));
        assert!(!stderr(&out).contains(&c));
    }
    let out = cli_hash(&s, &auditor, "card_security_code", "123");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("400"), "{}", stderr(&out));
    let (_, revealer) = principal_with_id(&s, "revealer", &["revealer"]);
    let out = cli_hash(&s, &revealer, "card_number", &c);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// Value HMACs are rationed per principal, so that whoever reads the trail cannot try a value's
/// candidates against the HMACs on it; each refusal is on the trail too.
#[test]
fn value_hmacs_are_rationed_per_principal() {
    let dir = temp_dir(&tmp_base(), "audit-read-hash-quota");
    let s = Server::start_with(&bin(), &dir, &root_token(), &["--audit-hash-per-hour", "2"]);
    let (auditor_id, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let c = card();
    for _ in 0..2 {
        hmac(&s, &auditor, "card_number", &c);
    }
    let over = hash(&s, &auditor, "card_number", &c);
    assert_error(&over, 429, "rate_limited");
    assert_no_leak(&over, &c);
    let wait: u64 = over
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after in seconds: {:?}", over.retry_after));
    assert!((1..=1800).contains(&wait), "retry-after {wait}");
    // A bad type is refused before the quota is counted; another principal has its own.
    assert_error(
        &hash(&s, &auditor, "shoe_size", "42"),
        400,
        "invalid_request",
    );
    hmac(&s, &s.root_token, "card_number", &c);

    let page = read(&s, &auditor, "operation=audit_hash&limit=1000");
    let e = entry_of(&page, &over).expect("the refused hash is recorded");
    assert_eq!(e["record"]["outcome"], "failure");
    assert_eq!(e["record"]["reason"], "rate_limited");
    assert_eq!(e["record"]["principal_id"], auditor_id.as_str());
    assert!(e["record"].get("value_hmacs").is_none());

    // The CLI says what happened and when to try again, and fails.
    let out = cli_hash(&s, &auditor, "card_number", &c);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("429") && err.contains("--audit-hash-per-hour"),
        "{err}"
    );
    assert!(err.contains("retry in"), "{err}");
    assert!(!err.contains(&c) && stdout(&out).is_empty());
}

// ---------------------------------------------------------------------------------------------
// tijori audit tail

fn tail(s: &Server, key: &str, extra: &[&str]) -> Output {
    let mut args = vec!["audit", "tail", "--addr", &s.url, "--token", key];
    args.extend_from_slice(extra);
    tijori(&args, None)
}

/// The request ids of `tail`'s lines, checking each is a whole entry.
fn tail_ids(out: &Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    stdout(out)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
            assert!(v["seq"].as_i64().is_some() && v["hash"].is_string(), "{l}");
            v["record"]["request_id"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

#[test]
fn tail_prints_the_newest_matching_records() {
    let s = start("audit-read-tail");
    let (_, auditor) = principal_with_id(&s, "auditor", &["auditor"]);
    let (_, svc) = principal_with_id(&s, "svc", &["revealer"]);
    let token = new_token(&s, &svc, "text", &text());
    let reveals: Vec<String> = (0..3)
        .map(|_| {
            let r = detokenize(&s, &svc, &[&token]);
            assert_eq!(r.status, 200);
            r.request_id.unwrap()
        })
        .collect();

    let out = tail(&s, &auditor, &["-n", "1000", "--operation", "detokenize"]);
    assert_eq!(tail_ids(&out), reveals);
    for line in stdout(&out).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["record"]["operation"], "detokenize");
        assert_eq!(v["record"]["resource"], token.as_str());
    }
    // -n looks through the newest N records only: those since the last reveal (the reads of
    // the tail above) and two more take in the last two reveals and not the first.
    let stored = rows(&s.data_dir);
    let before = stored.last().unwrap().seq;
    let last_reveal = stored
        .iter()
        .rev()
        .find(|r| r.json()["operation"] == "detokenize")
        .unwrap()
        .seq;
    assert_eq!(
        last_reveal,
        before - 2,
        "the tail above read twice: {before}"
    );
    let n = (before - last_reveal + 2).to_string();
    assert_eq!(
        tail_ids(&tail(
            &s,
            &auditor,
            &["-n", &n, "--operation", "detokenize"]
        )),
        reveals[1..]
    );
    // Default -n is 20, a filter can match nothing, --after starts from a given record.
    assert_eq!(
        tail_ids(&tail(&s, &auditor, &["--operation", "detokenize"])),
        reveals
    );
    assert_eq!(
        tail_ids(&tail(
            &s,
            &auditor,
            &["--operation", "detokenize", "--outcome", "denied"]
        )),
        Vec::<String>::new()
    );
    let all = tail_ids(&tail(&s, &auditor, &["--after", "0", "-n", "1"]));
    assert!(all.len() as i64 >= before, "{all:?}");

    // Refused: the exit code says so and nothing is printed.
    let out = tail(&s, &svc, &["--operation", "detokenize"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let out = tail(&s, &auditor, &["--outcome", "maybe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("400"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// Syslog forwarding

/// A syslog receiver over TCP with octet-counted framing (RFC 6587): every message it got,
/// over every connection, and any framing error.
struct Receiver {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (m, e) = (messages.clone(), errors.clone());
        // Runs until the test process ends.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (m, e) = (m.clone(), e.clone());
                std::thread::spawn(move || read_frames(conn, &m, &e));
            }
        });
        Receiver {
            port,
            messages,
            errors,
        }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    fn seqs(&self) -> BTreeSet<i64> {
        self.messages()
            .iter()
            .map(|m| parse_syslog(m).seq)
            .collect()
    }
}

fn read_frames(conn: TcpStream, out: &Mutex<Vec<String>>, errors: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(conn);
    loop {
        let mut len = Vec::new();
        match r.read_until(b' ', &mut len) {
            Ok(0) => return,
            Ok(_) if len.last() == Some(&b' ') => {}
            Ok(_) => {
                // A connection may end between frames only.
                errors
                    .lock()
                    .unwrap()
                    .push(format!("cut frame header {len:?}"));
                return;
            }
            Err(_) => return,
        }
        len.pop();
        let Some(n) = std::str::from_utf8(&len)
            .ok()
            .filter(|t| {
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0')
            })
            .and_then(|t| t.parse::<usize>().ok())
        else {
            errors
                .lock()
                .unwrap()
                .push(format!("bad frame length {len:?}"));
            return;
        };
        let mut msg = vec![0; n];
        if r.read_exact(&mut msg).is_err() {
            // The sender resends anything not confirmed; a cut frame is not an error of format.
            return;
        }
        match String::from_utf8(msg) {
            Ok(m) => out.lock().unwrap().push(m),
            Err(_) => errors.lock().unwrap().push("a message is not UTF-8".into()),
        }
    }
}

#[derive(Debug)]
struct Syslog<'a> {
    pri: u32,
    version: &'a str,
    timestamp: &'a str,
    app: &'a str,
    procid: &'a str,
    msgid: &'a str,
    seq: i64,
    hash: &'a str,
    msg: &'a str,
}

fn bad_shape(m: &str) -> ! {
    panic!("not the expected RFC 5424 shape: {m}")
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [tijori@32473 seq="N" hash="HEX"] MSG`
fn parse_syslog(m: &str) -> Syslog<'_> {
    let rest = m.strip_prefix('<').unwrap_or_else(|| bad_shape(m));
    let (pri, rest) = rest.split_once('>').unwrap_or_else(|| bad_shape(m));
    let mut fields = rest.splitn(7, ' ');
    let mut next = || fields.next().unwrap_or_else(|| bad_shape(m));
    let (version, timestamp, hostname, app, procid, msgid, rest) =
        (next(), next(), next(), next(), next(), next(), next());
    assert!(!hostname.is_empty(), "{m}");
    let rest = rest
        .strip_prefix("[tijori@32473 seq=\"")
        .unwrap_or_else(|| bad_shape(m));
    let (seq, rest) = rest.split_once('"').unwrap_or_else(|| bad_shape(m));
    let rest = rest
        .strip_prefix(" hash=\"")
        .unwrap_or_else(|| bad_shape(m));
    let (hash, rest) = rest.split_once('"').unwrap_or_else(|| bad_shape(m));
    let msg = rest.strip_prefix("] ").unwrap_or_else(|| bad_shape(m));
    Syslog {
        pri: pri.parse().unwrap_or_else(|_| bad_shape(m)),
        version,
        timestamp,
        app,
        procid,
        msgid,
        seq: seq.parse().unwrap_or_else(|_| bad_shape(m)),
        hash,
        msg,
    }
}

#[test]
fn syslog_receives_every_record_verbatim() {
    let receiver = Receiver::start();
    let target = format!("tcp://127.0.0.1:{}", receiver.port);
    let dir = temp_dir(&tmp_base(), "audit-read-syslog");
    let mut s = Server::start_with(&bin(), &dir, &root_token(), &["--syslog", &target]);
    let (_, svc) = principal_with_id(&s, "svc", &["tokenizer"]);
    let ok = tokenize(&s, &svc, json!({"type": "card_number", "value": card()}));
    assert_eq!(ok.status, 201);
    new_token(&s, &svc, "text", &text());
    let anon = s.post(
        "/v1/tokens",
        Some("not-a-key"),
        &json!({"type": "text", "value": "x"}),
    );
    assert_eq!(anon.status, 401);
    let forbidden = s.get("/v1/audit", Some(&svc));
    assert_eq!(forbidden.status, 403);
    let bad = tokenize(&s, &svc, json!({"type": "card_number", "value": "123"}));
    assert_eq!(bad.status, 422);

    // Everything on the trail reaches the receiver while the server runs (the forwarder is
    // woken by each append); only then is the server killed.
    let arrived = wait_for(PATIENCE, || {
        let want: BTreeSet<i64> = rows(&dir).iter().map(|r| r.seq).collect();
        want.is_subset(&receiver.seqs())
    });
    s.kill();
    let stored = rows(&dir);
    let got = receiver.messages();
    assert!(
        arrived,
        "records missing at the receiver: stored {:?}, received {:?}",
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        receiver.seqs()
    );
    assert_eq!(receiver.errors.lock().unwrap().as_slice(), &[] as &[String]);
    assert_eq!(
        stored.len(),
        9,
        "3 system, 1 principal, 2 tokens, 3 refusals"
    );

    let by_seq: BTreeMap<i64, &Row> = stored.iter().map(|r| (r.seq, r)).collect();
    let mut seen = BTreeSet::new();
    let mut procids = BTreeSet::new();
    for m in &got {
        let p = parse_syslog(m);
        let row = by_seq
            .get(&p.seq)
            .unwrap_or_else(|| panic!("a message for a record not in the trail: {m}"));
        let rec = row.json();
        assert_eq!(
            p.msg, row.record,
            "MSG is the stored record text, byte for byte"
        );
        assert_eq!(p.hash, hex_of(&row.hash));
        let pri = match rec["outcome"].as_str() {
            Some("success") => 110,
            Some("denied") => 108,
            Some("failure") => 109,
            other => panic!("outcome {other:?}"),
        };
        assert_eq!(p.pri, pri, "{m}");
        assert_eq!(p.version, "1");
        assert_eq!(p.timestamp, rec["time"].as_str().unwrap());
        assert_eq!(p.app, "tijori");
        assert_eq!(p.msgid, rec["operation"].as_str().unwrap());
        assert!(p.procid.bytes().all(|b| b.is_ascii_digit()), "{m}");
        procids.insert(p.procid.to_owned());
        seen.insert(p.seq);
    }
    assert_eq!(seen, by_seq.keys().copied().collect::<BTreeSet<_>>());
    assert_eq!(procids.len(), 1, "one server process sent them all");
    // Each outcome's priority was exercised.
    let pris: BTreeSet<u32> = got.iter().map(|m| parse_syslog(m).pri).collect();
    assert_eq!(pris, BTreeSet::from([108, 109, 110]));
    let ids: BTreeSet<String> = got
        .iter()
        .filter_map(|m| {
            serde_json::from_str::<Value>(parse_syslog(m).msg).ok()?["request_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for r in [&ok, &anon, &forbidden, &bad] {
        assert!(ids.contains(r.request_id.as_deref().unwrap()));
    }
}
