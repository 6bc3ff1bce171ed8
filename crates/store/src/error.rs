//! Errors of writ-store.

/// Why the store could not answer. The verifier turns every one into `status_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (open, lock, I/O, constraint).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer version of writ.
    #[error("database schema version {found} is newer than this writ understands ({supported})")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A lock around the connection was poisoned by a panic.
    #[error("store lock poisoned")]
    Poisoned,
}

impl From<StoreError> for writ_core::StateError {
    fn from(e: StoreError) -> Self {
        writ_core::StateError(e.to_string())
    }
}
