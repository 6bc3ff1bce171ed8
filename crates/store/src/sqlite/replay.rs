//! The standalone gate's replay store: consumed writ ids and known revocations in SQLite.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use writ_core::{
    Consumed, Jti, ReplayStore, RevocationState, RevocationStatus, RevocationSubject, StateError,
    UnixTime,
};

use crate::error::StoreError;
use crate::revocations::RevocationStore;

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
CREATE TABLE IF NOT EXISTS writ_links (
    jti       BLOB PRIMARY KEY,
    parent    BLOB NOT NULL,
    principal TEXT NOT NULL,
    parent_principal TEXT NOT NULL
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

    /// Records that `child`, held by `principal`, was issued under `parent`, held by
    /// `parent_principal`, so that revoking any ancestor revokes `child` too. Durable before
    /// it returns.
    pub fn record_link(
        &self,
        child: &Jti,
        parent: &Jti,
        principal: &str,
        parent_principal: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        conn.execute(
            "INSERT OR IGNORE INTO writ_links (jti, parent, principal, parent_principal)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                child.as_bytes().as_slice(),
                parent.as_bytes().as_slice(),
                principal,
                parent_principal
            ],
        )?;
        Ok(())
    }

    /// The links above and including `jti`, root-most first: each writ, its holder and its
    /// parent's holder (as recorded by [`record_link`]). Empty for a root.
    ///
    /// [`record_link`]: Self::record_link
    pub fn ancestry(&self, jti: &Jti) -> Result<Vec<(Jti, String, String)>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt = conn.prepare_cached(
            "WITH RECURSIVE up(id, depth) AS (
                 SELECT ?1, 0
                 UNION SELECT l.parent, up.depth + 1 FROM writ_links l JOIN up ON l.jti = up.id
             )
             SELECT up.id, l.principal, l.parent_principal FROM up JOIN writ_links l ON l.jti = up.id
             ORDER BY up.depth DESC",
        )?;
        let rows = stmt.query_map(params![jti.as_bytes().as_slice()], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, principal, parent_principal) = row?;
            let id: [u8; 16] = id
                .try_into()
                .map_err(|_| StoreError::Corrupt("a writ link with a malformed id".into()))?;
            out.push((Jti::from_bytes(id), principal, parent_principal));
        }
        Ok(out)
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
    // Every writ up the delegation tree, as recorded when each child was issued: revoking
    // any of them revokes everything below.
    let mut up = conn.prepare_cached(
        "WITH RECURSIVE up(id) AS (
             SELECT ?1
             UNION SELECT l.parent FROM writ_links l JOIN up ON l.jti = up.id
         )
         SELECT id FROM up WHERE id IN (SELECT jti FROM revoked_writs) LIMIT 1",
    )?;
    for id in std::iter::once(subject.jti).chain(subject.ancestors) {
        let found: Option<Vec<u8>> = up
            .query_row(params![id.as_bytes().as_slice()], |row| row.get(0))
            .optional()?;
        if let Some(revoked) = found {
            return Ok(Some(if revoked.as_slice() == id.as_bytes().as_slice() {
                format!("writ `{id}`")
            } else {
                format!("an ancestor of writ `{id}`")
            }));
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

impl RevocationStore for SqliteReplayStore {
    fn revoke_writ(&self, jti: &Jti) -> Result<(), StoreError> {
        SqliteReplayStore::revoke_writ(self, jti)
    }
    fn revoke_principal(&self, principal: &str) -> Result<(), StoreError> {
        SqliteReplayStore::revoke_principal(self, principal)
    }
    fn record_link(
        &self,
        child: &Jti,
        parent: &Jti,
        principal: &str,
        parent_principal: &str,
    ) -> Result<(), StoreError> {
        SqliteReplayStore::record_link(self, child, parent, principal, parent_principal)
    }
    fn ancestry(&self, jti: &Jti) -> Result<Vec<(Jti, String, String)>, StoreError> {
        SqliteReplayStore::ancestry(self, jti)
    }
    fn purge(&self, now: UnixTime) -> Result<usize, StoreError> {
        SqliteReplayStore::purge(self, now)
    }
}
