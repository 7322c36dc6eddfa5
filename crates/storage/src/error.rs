use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Everything a storage call can fail with, classified for the caller.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    /// A unique key or a version compare-and-swap did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    /// No connection became free within the pool's wait timeout. Retry later (503).
    #[error("the database pool is busy")]
    Busy,
    /// The database cannot be reached (connect failed or timed out, connection lost).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot work (bad URL, unsupported scheme).
    #[error("invalid storage configuration: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value could not be decoded (corrupt JSON in a TEXT column, …).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Query(String),
}

impl From<DieselError> for StorageError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
                info,
            ) => Self::Conflict(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            // The connection broke mid-query (reset, closed by the server, an I/O error):
            // the database is unavailable, not the query wrong.
            DieselError::DatabaseError(_, info) if lost_connection(info.message()) => {
                Self::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("connection left in a broken transaction state".into())
            }
            other => Self::Query(other.to_string()),
        }
    }
}

/// tokio-postgres reports a lost connection only in its message.
fn lost_connection(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "error communicating with the server",
        "connection closed",
        "connection reset",
        "broken pipe",
        "unexpected eof",
        "terminating connection",
        "server closed the connection",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl From<serde_json::Error> for StorageError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// For an update or delete by key: no row changed means there was no such row.
pub(crate) fn one_changed(changed: usize) -> Result<(), StorageError> {
    if changed == 0 {
        Err(StorageError::NotFound)
    } else {
        Ok(())
    }
}
