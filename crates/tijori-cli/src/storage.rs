//! Where a vault's data lives: the embedded SQLite database in the data dir (the default, one
//! node), or a PostgreSQL database that several nodes share (`--storage-url`, or
//! `TIJORI_DATABASE_URL`). The data dir is made either way: it holds the dev key file and the
//! audit archives.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tijori_store::postgres::PgStore;
use tijori_store::sqlite::SqliteStore;
use tijori_store::Store;

/// The store options of `tijori server` and `tijori operator init`. No `Debug`: the URL may
/// hold a password.
#[derive(clap::Args)]
pub(crate) struct StorageArgs {
    /// Keep the vault in this PostgreSQL database instead of the data dir's SQLite file, so
    /// that several `tijori server` nodes serve one vault:
    /// postgres://USER:PASSWORD@HOST:5432/DB. Prefer the environment variable (arguments are
    /// visible to other users of the machine).
    #[arg(
        long = "storage-url",
        env = "TIJORI_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    url: Option<String>,
}

impl StorageArgs {
    /// Opens the store (making the data dir if needed).
    pub(crate) async fn open(&self, data_dir: &Path) -> Result<Arc<dyn Store>> {
        create_private_dir(data_dir)?;
        Ok(match &self.url {
            Some(url) => Arc::new(
                PgStore::connect(url)
                    .await
                    .context("connecting to the PostgreSQL store (--storage-url)")?,
            ),
            None => Arc::new(
                SqliteStore::open(data_dir)
                    .with_context(|| format!("opening the store in {}", data_dir.display()))?,
            ),
        })
    }

    /// Where the vault is, for messages: never the URL (it may hold a password).
    pub(crate) fn describe(&self, data_dir: &Path) -> String {
        match self.url {
            Some(_) => "the PostgreSQL store".to_owned(),
            None => data_dir.display().to_string(),
        }
    }
}

/// Makes `dir` (mode 0700) if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data dir {}", dir.display()))?;
    }
    Ok(())
}
