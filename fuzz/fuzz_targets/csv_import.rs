//! `tijori import`'s CSV side (tijori-core's `import` module): the header and the column
//! chosen by position or name, rows read in batches and after a resumed run's skip, the
//! tokenized row written back (it must read back as the same row with the token in place),
//! the batch request (its items must be the column's values) and the progress file.
//!
//! Input: a byte for the batch size, the column argument, a NUL, then the CSV file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_core::import::{
    batch_request, count_data_rows, csv_line, resolve_column, tokenized_row, ImportReader,
    Progress, RunKey,
};
use tijori_fuzz::{split_at_byte, split_first};

/// The records of `bytes` read as header-less CSV, or `None` if unreadable.
fn read_back(bytes: &[u8]) -> Option<Vec<Vec<String>>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    r.records()
        .map(|rec| rec.ok().map(|rec| rec.iter().map(str::to_owned).collect()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (batch, rest) = split_first(data);
    let (column, file) = split_at_byte(rest, 0);
    let column = String::from_utf8_lossy(column);
    let batch = 1 + usize::from(batch % 16);

    let run_key = RunKey::generate().expect("the OS CSPRNG");
    if let Some((p, key)) = Progress::parse(&column) {
        let key = key.as_ref().unwrap_or(&run_key);
        let (again, again_key) = Progress::parse(&p.to_text(key)).expect("its own text parses");
        assert_eq!(again, p);
        assert!(
            again_key.as_ref() == Some(key),
            "the key does not read back"
        );
    }
    let _ = count_data_rows(file);

    let Ok(mut reader) = ImportReader::new(file, &column) else {
        return;
    };
    let headers = reader.headers().clone();
    let col = reader.column();
    assert!(col < headers.len());
    assert_eq!(resolve_column(&headers, &column), Some(col));
    assert!(
        headers.get(col) == Some(column.as_ref()) || column.parse::<usize>().ok() == Some(col + 1),
        "the column is neither the position nor the name given"
    );
    let head = csv_line(&headers).expect("a header writes");
    let expected: Vec<String> = headers.iter().map(str::to_owned).collect();
    assert_eq!(
        read_back(&head),
        Some(vec![expected]),
        "the header does not read back"
    );

    let mut all = Vec::new();
    while let Ok(rows) = reader.next_batch(batch) {
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= batch);
        let values: Vec<&str> = rows.iter().map(|r| reader.value(r)).collect();
        let req = batch_request(&run_key, "card_number", "random", false, &values);
        let body: serde_json::Value = serde_json::from_str(&req.body).expect("the body is JSON");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), values.len());
        for (item, value) in items.iter().zip(&values) {
            assert_eq!(item["value"].as_str(), Some(*value));
        }
        for (i, row) in rows.iter().enumerate() {
            let token = format!("tok_{i}");
            let line = tokenized_row(row, col, &token).expect("a row writes");
            let mut want: Vec<String> = row.iter().map(str::to_owned).collect();
            if let Some(f) = want.get_mut(col) {
                *f = token;
            }
            assert_eq!(
                read_back(&line),
                Some(vec![want]),
                "a tokenized row reads back otherwise"
            );
        }
        all.extend(rows);
    }

    // A resumed run skips what the first run did and goes on with the same rows.
    if let Ok(mut again) = ImportReader::new(file, &column) {
        let done = (batch as u64).min(all.len() as u64);
        if again.skip(done).is_ok() {
            if let (Ok(next), Some(want)) = (again.next_batch(1), all.get(done as usize)) {
                assert_eq!(next.first(), Some(want), "the skip lost its place");
            }
        }
    }
});
