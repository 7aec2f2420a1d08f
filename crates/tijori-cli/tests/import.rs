//! `tijori import`, black-box: a CSV of card numbers becomes the same rows with tokens, each
//! revealing its card; rejected rows are listed by number and reason, never by value; and a
//! run interrupted after a batch resumes where it stopped, with the very same tokens (each
//! batch carries an idempotency key, keyed with the run's own key from the progress file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn import(s: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("import")
        .args(args)
        .args(["--addr", &s.url, "--token", key])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_card_column_becomes_tokens_and_a_run_resumes() {
    let s = start("import");
    let key = s.principal("migration", &["revealer"]);
    let dir = s.data_dir.join("import");
    std::fs::create_dir_all(&dir).unwrap();
    let cards: Vec<String> = (0..2_500).map(|_| card()).collect();
    let mut csv = String::from("id,pan,name\n");
    for (i, c) in cards.iter().enumerate() {
        // Two bad rows early on (rows 11 and 501 of the file, counting the header as 1).
        let pan = if i == 9 || i == 499 {
            "4111 1111 1111 1112".to_owned()
        } else {
            c.clone()
        };
        csv.push_str(&format!("{i},{pan},\"Customer, {i}\"\n"));
    }
    let input = dir.join("cards.csv");
    std::fs::write(&input, &csv).unwrap();
    let out_path = dir.join("cards.tokens.csv");
    let args = [
        "--type",
        "card_number",
        "--column",
        "pan",
        "--batch",
        "1000",
    ];
    let mut full_args = args.to_vec();
    let (input_s, out_s) = (input.to_str().unwrap(), out_path.to_str().unwrap());
    full_args.extend([input_s, "--out", out_s]);
    // The run's key, known to the test: a progress file of nothing done yet, as a run writes
    // before its first batch.
    let run_key = "5a".repeat(32);
    let progress = out_path.with_extension("progress");
    std::fs::write(&progress, format!("0 0 0 {run_key}\n")).unwrap();
    let (ok, stdout, stderr) = import(&s, &key, &full_args);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), out_s);
    assert!(
        stderr.contains("rows/s") && stderr.contains("2 rejected"),
        "{stderr}"
    );
    let first = std::fs::read_to_string(&out_path).unwrap();
    let rows: Vec<&str> = first.lines().collect();
    assert_eq!(rows[0], "id,pan,name");
    assert_eq!(rows.len(), 1 + 2_498);
    // Other columns as they were (quoted where they hold a comma); tokens reveal the cards.
    assert!(
        rows[1].starts_with("0,") && rows[1].ends_with(",\"Customer, 0\""),
        "{}",
        rows[1]
    );
    let sample: Vec<(String, String)> = rows[1..]
        .iter()
        .step_by(97)
        .map(|r| {
            let mut f = r.splitn(3, ',');
            let i: usize = f.next().unwrap().parse().unwrap();
            (f.next().unwrap().to_owned(), cards[i].clone())
        })
        .collect();
    let tokens: Vec<&str> = sample.iter().map(|(t, _)| t.as_str()).collect();
    let r = s.post("/v1/detokenize", Some(&key), &json!({"tokens": tokens}));
    for (item, (_, card)) in r.json["items"].as_array().unwrap().iter().zip(&sample) {
        assert_eq!(item["value"], card.as_str());
    }
    let rejected = std::fs::read_to_string(out_path.with_extension("rejected.csv")).unwrap();
    assert_eq!(
        rejected.lines().collect::<Vec<_>>(),
        ["11,invalid_card_number", "501,invalid_card_number"]
    );
    assert!(!rejected.contains("4111"), "no value in the rejects");

    // A crash after the first batch: the progress file says 1000 rows, and the output has a
    // torn tail past what it records. Run again: the same output, byte for byte (the batches
    // go again under the run's key, so the server answers them as the first time).
    let after_first: usize = first.lines().take(1 + 998).map(|l| l.len() + 1).sum();
    let torn = |out: &str| {
        let mut torn = out.as_bytes()[..after_first].to_vec();
        torn.extend_from_slice(b"1000,half-writ");
        std::fs::write(&out_path, torn).unwrap();
    };
    std::fs::write(&progress, format!("1000 {after_first} 2 {run_key}\n")).unwrap();
    torn(&first);
    let (ok, _, stderr) = import(&s, &key, &full_args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("resuming after 1000 rows"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        first,
        "same rows, same tokens"
    );
    assert!(!progress.exists());

    // The progress file of a tijori before run keys: the run goes on under a new key, says so,
    // and the rows after the first thousand get tokens of their own, revealing the same cards.
    std::fs::write(&progress, format!("1000 {after_first} 2\n")).unwrap();
    torn(&first);
    let (ok, _, stderr) = import(&s, &key, &full_args);
    assert!(
        ok && stderr.contains("begun by an older tijori"),
        "{stderr}"
    );
    let second = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(second[..after_first], first[..after_first]);
    assert_eq!(second.lines().count(), first.lines().count());
    let (a, b) = (
        first.lines().nth(1_500).unwrap(),
        second.lines().nth(1_500).unwrap(),
    );
    assert_ne!(a, b, "new tokens after the first batch");
    let token = b.split(',').nth(1).unwrap();
    let r = s.post("/v1/detokenize", Some(&key), &json!({"tokens": [token]}));
    let i: usize = b.split(',').next().unwrap().parse().unwrap();
    assert_eq!(r.json["items"][0]["value"], cards[i].as_str());

    // Wrong column, no right to tokenize: clear errors.
    let mut bad = args.to_vec();
    bad[3] = "card";
    bad.extend([input_s, "--out", out_s]);
    let (ok, _, stderr) = import(&s, &key, &bad);
    assert!(!ok && stderr.contains("no column 'card'"), "{stderr}");
    let auditor = s.principal("import-auditor", &["auditor"]);
    std::fs::remove_file(&out_path).unwrap();
    let (ok, _, stderr) = import(&s, &auditor, &full_args);
    assert!(!ok && stderr.contains("403"), "{stderr}");
}
