//! Errors of writ-store.

/// Why the store could not answer. The verifier turns every one into `status_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (open, lock, I/O, constraint).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed or cannot be reached (connect, pool, statement timeout, I/O).
    #[error("postgres: {0}")]
    Postgres(String),
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
    /// The database holds no log yet.
    #[error("no log in this database (it is created by the first append or `writ serve`)")]
    NoLog,
    /// A log already exists; its origin and key are fixed at creation.
    #[error("a log already exists here with origin `{0}`")]
    LogExists(String),
    /// The checkpoint key given is not the log's.
    #[error("the checkpoint key `{given}` is not this log's `{expected}`")]
    KeyMismatch {
        /// The verifier key of the key given.
        given: String,
        /// The verifier key the log was created with.
        expected: String,
    },
    /// The log's stored state contradicts itself (see `writ log verify`).
    #[error("log storage is inconsistent: {0}")]
    Corrupt(String),
    /// Only the canonical JSON of a typed log entry may be appended.
    #[error("not a log entry: the canonical JSON of an object with a known `type` is required")]
    InvalidEntry,
    /// A retired policy digest cannot be put in force again.
    #[error("policy set `{0}` is retired")]
    Retired(String),
    /// The policy set in force cannot be retired; apply another one first.
    #[error("policy set `{0}` is in force: apply another policy set before retiring it")]
    InForce(String),
    /// A principal with this name exists already.
    #[error("principal `{0}` already exists")]
    PrincipalExists(String),
    /// No principal has this name.
    #[error("no principal `{0}`")]
    UnknownPrincipal(String),
    /// No approval request has this id.
    #[error("no approval request `{0}`")]
    UnknownRequest(String),
    /// The approval request is settled already (its state).
    #[error("the request is {0} already")]
    RequestClosed(String),
    /// The approver voted on this request already, or the signature was used before.
    #[error("`{0}` approved or rejected this request already, or the signature was used before")]
    DuplicateVote(String),
    /// A principal or group name is not acceptable.
    #[error("invalid name `{0}`: 1 to 128 letters, digits or `._-@:/`")]
    InvalidName(String),
    /// The log's writer has stopped.
    #[error("log writer unavailable: {0}")]
    Writer(String),
    /// A proof was asked for sizes or indexes the log does not have.
    #[error(transparent)]
    Proof(#[from] writ_log::ProofError),
    /// A checkpoint could not be made or read.
    #[error(transparent)]
    Checkpoint(#[from] writ_log::CheckpointError),
    /// An index past the end of the log.
    #[error("index {index} is not in a log of size {size}")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The log size.
        size: u64,
    },
}

impl From<StoreError> for writ_core::StateError {
    fn from(e: StoreError) -> Self {
        writ_core::StateError(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The driver's Display hides the server's message; the source carries it.
        let detail = match std::error::Error::source(&e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        };
        StoreError::Postgres(detail)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Postgres(format!("connection pool: {e}"))
    }
}
