//! Policy sets the authority has applied, by digest: their full text, which one is in force,
//! and which digests are retired (their writs fail with `policy_mismatch`).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use writ_core::Sha256Digest;

use super::with_schema;
use crate::error::StoreError;
use crate::policies::{PolicyStore, PolicyTexts};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS policy_sets (
    digest     TEXT PRIMARY KEY,
    schema     TEXT NOT NULL,
    policies   TEXT NOT NULL,
    entities   TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    retired_at INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policy_in_force (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    digest TEXT NOT NULL REFERENCES policy_sets (digest)
);
";

/// Applied policy sets and retired digests.
#[derive(Debug)]
pub struct SqlitePolicies {
    conn: Mutex<Connection>,
}

impl SqlitePolicies {
    /// Opens (creating the tables if needed) the policy state in the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::setup(Connection::open(path)?)
    }

    /// A private in-memory store (nothing durable; for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Self, StoreError> {
        Ok(Self {
            conn: with_schema(conn, SCHEMA)?,
        })
    }

    /// The policy set in force, if one was ever applied.
    pub fn in_force(&self) -> Result<Option<(Sha256Digest, PolicyTexts)>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let row = conn
            .query_row(
                "SELECT s.digest, s.schema, s.policies, s.entities
                 FROM policy_in_force f JOIN policy_sets s ON s.digest = f.digest",
                [],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        PolicyTexts {
                            schema: row.get(1)?,
                            policies: row.get(2)?,
                            entities: row.get(3)?,
                        },
                    ))
                },
            )
            .optional()?;
        row.map(|(digest, texts)| Ok((parse_digest(&digest)?, texts)))
            .transpose()
    }

    /// Records `texts` (whose digest is `digest`) and puts it in force, in one transaction.
    /// Applying a retired digest again un-retires nothing: it is refused.
    pub fn apply(
        &self,
        digest: &Sha256Digest,
        texts: &PolicyTexts,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        // Write lock up front: waits for other writers instead of failing at the upgrade.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let hex = digest.to_hex();
        let retired: Option<Option<i64>> = tx
            .query_row(
                "SELECT retired_at FROM policy_sets WHERE digest = ?1",
                params![hex],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(Some(_)) = retired {
            return Err(StoreError::Retired(hex));
        }
        tx.execute(
            "INSERT OR IGNORE INTO policy_sets (digest, schema, policies, entities, applied_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                hex,
                texts.schema,
                texts.policies,
                texts.entities,
                i64::try_from(now).unwrap_or(i64::MAX)
            ],
        )?;
        tx.execute(
            "INSERT INTO policy_in_force (id, digest) VALUES (0, ?1)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
            params![hex],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Retires `digest`. Returns false when it was already retired. The set in force cannot
    /// be retired (every new writ would be born dead): [`StoreError::InForce`].
    pub fn retire(&self, digest: &Sha256Digest, now: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        // Write lock up front: waits for other writers instead of failing at the upgrade.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let hex = digest.to_hex();
        let in_force: Option<String> = tx
            .query_row("SELECT digest FROM policy_in_force", [], |row| row.get(0))
            .optional()?;
        if in_force.as_deref() == Some(hex.as_str()) {
            return Err(StoreError::InForce(hex));
        }
        // A digest never applied here can still be retired: writs under it are refused.
        let changed = tx.execute(
            "INSERT INTO policy_sets (digest, schema, policies, entities, applied_at, retired_at)
             VALUES (?1, '', '', '', ?2, ?2)
             ON CONFLICT (digest) DO UPDATE SET retired_at = excluded.retired_at
             WHERE retired_at IS NULL",
            params![hex, i64::try_from(now).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Every retired digest.
    pub fn retired(&self) -> Result<Vec<Sha256Digest>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt =
            conn.prepare("SELECT digest FROM policy_sets WHERE retired_at IS NOT NULL ORDER BY 1")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse_digest(&row?)?);
        }
        Ok(out)
    }
}

fn parse_digest(hex: &str) -> Result<Sha256Digest, StoreError> {
    Sha256Digest::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("policy digest `{hex}`")))
}

impl PolicyStore for SqlitePolicies {
    fn in_force(&self) -> Result<Option<(Sha256Digest, PolicyTexts)>, StoreError> {
        SqlitePolicies::in_force(self)
    }
    fn apply(
        &self,
        digest: &Sha256Digest,
        texts: &PolicyTexts,
        now: u64,
    ) -> Result<(), StoreError> {
        SqlitePolicies::apply(self, digest, texts, now)
    }
    fn retire(&self, digest: &Sha256Digest, now: u64) -> Result<bool, StoreError> {
        SqlitePolicies::retire(self, digest, now)
    }
    fn retired(&self) -> Result<Vec<Sha256Digest>, StoreError> {
        SqlitePolicies::retired(self)
    }
}
