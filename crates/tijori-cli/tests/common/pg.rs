//! Helpers of the multi-node tests: a PostgreSQL schema of the test's own (from
//! `DATABASE_URL`, skipped with a note when it is not set), two dev nodes on it, and polling
//! for changes to reach the other node.

use std::time::{Duration, Instant};

use super::*;

/// This test's schema, dropped at the end (best effort, with `psql`; a leftover `n_...`
/// schema harms nothing).
pub struct Schema {
    /// `DATABASE_URL` as given (without this schema's search path).
    pub url: String,
    pub name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                &self.url,
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}

/// The database URL with this test's own schema as the search path, made and migrated;
/// `None`, with a note, when `DATABASE_URL` is not set.
pub fn schema_url(test: &str) -> Option<(String, Schema)> {
    let url = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            eprintln!("DATABASE_URL is not set: {test} skipped");
            return None;
        }
    };
    let schema = format!("n_{}_{}", std::process::id(), hex(8));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(tijori_store::postgres::PgStore::connect_in_schema(
        &url, &schema,
    ))
    .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let with_path = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((with_path, Schema { url, name: schema }))
}

/// Two dev nodes sharing the data dir (its dev key file) and the database.
pub fn two_nodes(test: &str, url: &str) -> (Server, Server) {
    let dir = temp_dir(&tmp_base(), test);
    let token = root_token();
    let args = ["--storage-url", url];
    let a = Server::start_with(&bin(), &dir, &token, &args);
    let b = Server::start_with(&bin(), &dir, &token, &args);
    (a, b)
}

/// Polls `check` for up to 5 s: changes reach the other node within a second or two.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within 5 s");
}
