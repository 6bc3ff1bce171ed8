//! The standalone gate's replay store: consumed writ ids and known revocations in SQLite.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use writ_core::{
    Consumed, Jti, ReplayStore, RevocationState, RevocationStatus, RevocationSubject, StateError,
    UnixTime,
};

use crate::error::StoreError;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS consumed (
    jti        BLOB PRIMARY KEY,
    spent      INTEGER NOT NULL,
    keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS consumed_keep_until ON consumed (keep_until);
CREATE TABLE IF NOT EXISTS revoked_writs (
    jti BLOB PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_principals (
    principal TEXT PRIMARY KEY
) WITHOUT ROWID;
";

/// Consumed writ ids and revocations in one SQLite file, safe to share between processes.
///
/// Every consumption is one `BEGIN IMMEDIATE` transaction that reads revocation state and
/// marks the id, committed with `synchronous=FULL` before [`ReplayStore::consume`] returns.
#[derive(Debug)]
pub struct SqliteReplayStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl SqliteReplayStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::setup(Connection::open(path)?, Some(path.to_path_buf()))
    }

    /// A private in-memory store (nothing durable; for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        super::configure(&conn)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Revokes a writ (and, through lineage, its descendants).
    pub fn revoke_writ(&self, jti: &Jti) -> Result<(), StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        conn.execute(
            "INSERT OR IGNORE INTO revoked_writs (jti) VALUES (?1)",
            params![jti.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// Revokes every writ naming `principal`.
    pub fn revoke_principal(&self, principal: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        conn.execute(
            "INSERT OR IGNORE INTO revoked_principals (principal) VALUES (?1)",
            params![principal],
        )?;
        Ok(())
    }

    /// Forgets consumed ids whose writs expired (plus skew) before `now`; returns how many.
    pub fn purge(&self, now: UnixTime) -> Result<usize, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.execute(
            "DELETE FROM consumed WHERE keep_until < ?1",
            params![to_sql(now)],
        )?)
    }

    /// How many consumed ids are recorded.
    pub fn consumed_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.query_row("SELECT COUNT(*) FROM consumed", [], |row| {
            row.get::<_, i64>(0)
        })? as u64)
    }

    fn try_consume(
        &self,
        jti: &Jti,
        uses: u32,
        keep_until: UnixTime,
        subject: &RevocationSubject<'_>,
    ) -> Result<Consumed, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let consumed = consume_in(&tx, jti, uses, keep_until, subject)?;
        tx.commit()?;
        Ok(consumed)
    }

    /// Where the store lives (`None` in memory): the authority logs each consumption in the
    /// same transaction as its mark, so its log must be in this same database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Creates the replay tables in `conn`'s database if they are missing.
pub(crate) fn ensure_schema(conn: &Connection) -> Result<(), StoreError> {
    Ok(conn.execute_batch(SCHEMA)?)
}

/// One consumption inside the caller's transaction: reads revocation state, then checks and
/// marks `jti`. Nothing is committed here; the caller commits (with whatever else belongs
/// to the same durable step) or rolls back.
pub(crate) fn consume_in(
    tx: &Connection,
    jti: &Jti,
    uses: u32,
    keep_until: UnixTime,
    subject: &RevocationSubject<'_>,
) -> Result<Consumed, StoreError> {
    if revoked(tx, subject)?.is_some() {
        return Ok(Consumed::Revoked);
    }
    let key = jti.as_bytes().as_slice();
    let spent: Option<i64> = tx
        .prepare_cached("SELECT spent FROM consumed WHERE jti = ?1")?
        .query_row(params![key], |row| row.get(0))
        .optional()?;
    let spent = spent.unwrap_or(0);
    if spent >= i64::from(uses) {
        return Ok(Consumed::Exhausted);
    }
    tx.prepare_cached(
        "INSERT INTO consumed (jti, spent, keep_until) VALUES (?1, 1, ?2)
         ON CONFLICT (jti) DO UPDATE SET spent = spent + 1,
             keep_until = max(keep_until, excluded.keep_until)",
    )?
    .execute(params![key, to_sql(keep_until)])?;
    // `spent` < `uses` <= u32::MAX, so the difference fits.
    Ok(Consumed::Fresh {
        remaining: u32::try_from(i64::from(uses) - spent - 1).unwrap_or(0),
    })
}

fn to_sql(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// What in `subject` is revoked, if anything.
fn revoked(
    conn: &Connection,
    subject: &RevocationSubject<'_>,
) -> Result<Option<String>, StoreError> {
    let mut writ = conn.prepare_cached("SELECT 1 FROM revoked_writs WHERE jti = ?1")?;
    for id in std::iter::once(subject.jti).chain(subject.ancestors) {
        if writ.exists(params![id.as_bytes().as_slice()])? {
            return Ok(Some(format!("writ `{id}`")));
        }
    }
    let mut principal =
        conn.prepare_cached("SELECT 1 FROM revoked_principals WHERE principal = ?1")?;
    for p in subject.principals {
        if principal.exists(params![p])? {
            return Ok(Some(format!("principal `{p}`")));
        }
    }
    Ok(None)
}

impl ReplayStore for SqliteReplayStore {
    fn consume(
        &self,
        jti: &Jti,
        uses: u32,
        keep_until: UnixTime,
        subject: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError> {
        Ok(self.try_consume(jti, uses, keep_until, subject)?)
    }
}

impl RevocationStatus for SqliteReplayStore {
    fn check(&self, subject: &RevocationSubject<'_>) -> Result<RevocationState, StateError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(match revoked(&conn, subject)? {
            Some(what) => RevocationState::Revoked(what),
            None => RevocationState::Valid,
        })
    }
}
