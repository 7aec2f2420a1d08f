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

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        match e.as_db_error() {
            // A server error's DETAIL (and WHERE, HINT) can quote a row, as in `Key (token)=(...)
            // already exists`: only the severity, SQLSTATE and primary message are kept.
            Some(db) => StoreError::Unavailable(format!(
                "{} {}: {}",
                db.severity(),
                db.code().code(),
                db.message()
            )),
            // I/O, protocol, closed connection, configuration: the driver's own words, no data.
            // Decoding a column goes through the postgres module's `col`, which answers `Corrupt`.
            None => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) | PoolError::Closed | PoolError::NoRuntimeSpecified => {
                StoreError::Unavailable(format!("database pool: {e}"))
            }
            // No hook is installed; were one to fail, its error could carry a server DETAIL.
            PoolError::PostCreateHook(_) => {
                StoreError::Unavailable("database pool: a new connection's setup failed".into())
            }
        }
    }
}

impl StoreError {
    /// The same error again, for each of several waiters on one failed operation.
    pub fn copy(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        }
    }
}
