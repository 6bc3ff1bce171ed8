//! SQLite-backed stores.

mod approvals;
mod keys;
mod log;
mod policies;
mod principals;
mod replay;

pub use approvals::SqliteApprovals;
pub use keys::SqliteSigningKeys;
pub use log::{Audit, AuditFinding, SqliteLog};
pub use policies::SqlitePolicies;
pub use principals::SqlitePrincipals;
pub use replay::SqliteReplayStore;

use rusqlite::Connection;

use crate::error::StoreError;

/// The pragmas every writ connection runs with: WAL so readers run beside the one writer,
/// `synchronous=FULL` so a commit is on disk before it is acknowledged, and a bounded wait
/// for another process's lock.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// A configured connection with `schema` created, ready to share behind a lock.
pub(crate) fn with_schema(
    conn: Connection,
    schema: &str,
) -> Result<std::sync::Mutex<Connection>, StoreError> {
    configure(&conn)?;
    conn.execute_batch(schema)?;
    Ok(std::sync::Mutex::new(conn))
}
