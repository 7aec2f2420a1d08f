//! Storage errors. None carries a row's contents; messages name the operation and the cause.

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached, written or read (disk full, I/O error, locked,
    /// writer gone). The vault answers `503 unavailable` and retries nothing on its own.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database holds something this version cannot read.
    #[error("storage corrupt or incompatible: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
            // Constraint and I/O failures alike: the message is SQLite's, never row data.
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
