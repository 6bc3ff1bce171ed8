//! The authority's writ-signing keys in SQLite: every key it announced, when each starts
//! signing, and which were retired or revoked. The private key is kept as PKCS#8 PEM, like the
//! data dir's `issuer-key.pem`; the database file is the authority's secret as a whole.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection};
use writ_core::SigningKey;
use zeroize::Zeroizing;

use super::with_schema;
use crate::error::StoreError;
use crate::keys::{KeyStore, StoredKey};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS signing_keys (
    kid          TEXT PRIMARY KEY,
    pkcs8_pem    TEXT NOT NULL,
    announced_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    removed_at   INTEGER,
    revoked_at   INTEGER
) WITHOUT ROWID;
";

/// The authority's signing keys.
#[derive(Debug)]
pub struct SqliteSigningKeys {
    conn: Mutex<Connection>,
}

fn to_sql(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn from_sql(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

impl SqliteSigningKeys {
    /// Opens (creating the table if needed) the keys in the database at `path`.
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

    /// Every key, oldest activation first.
    pub fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt = conn.prepare(
            "SELECT kid, pkcs8_pem, announced_at, activates_at, removed_at, revoked_at
             FROM signing_keys ORDER BY activates_at, announced_at",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                Zeroizing::new(row.get::<_, String>(1)?),
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (kid, pem, announced, activates, removed, revoked) = row?;
            let key = SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| StoreError::Corrupt(format!("signing key `{kid}`: {e}")))?;
            if key.kid().as_str() != kid {
                return Err(StoreError::Corrupt(format!(
                    "signing key stored as `{kid}` is `{}`",
                    key.kid()
                )));
            }
            keys.push(StoredKey {
                key,
                announced_at: from_sql(announced),
                activates_at: from_sql(activates),
                removed_at: removed.map(from_sql),
                revoked_at: revoked.map(from_sql),
            });
        }
        Ok(keys)
    }

    /// Stores a new key, published from `announced_at` and signing from `activates_at`.
    /// Adding a key that is already there changes nothing.
    pub fn add(
        &self,
        key: &SigningKey,
        announced_at: u64,
        activates_at: u64,
    ) -> Result<(), StoreError> {
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| StoreError::Corrupt(format!("signing key: {e}")))?;
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        conn.execute(
            "INSERT OR IGNORE INTO signing_keys (kid, pkcs8_pem, announced_at, activates_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                key.kid().as_str(),
                pem.as_str(),
                to_sql(announced_at),
                to_sql(activates_at)
            ],
        )?;
        Ok(())
    }

    /// Records that `kid` left the JWKS at `at`. Returns false when it had already left.
    pub fn mark_removed(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.execute(
            "UPDATE signing_keys SET removed_at = ?2 WHERE kid = ?1 AND removed_at IS NULL",
            params![kid, to_sql(at)],
        )? == 1)
    }

    /// Revokes `kid` at `at`: it neither signs nor verifies from now on. Returns false when
    /// there is no such key or it was already revoked.
    pub fn revoke(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.execute(
            "UPDATE signing_keys SET revoked_at = ?2 WHERE kid = ?1 AND revoked_at IS NULL",
            params![kid, to_sql(at)],
        )? == 1)
    }
}

impl KeyStore for SqliteSigningKeys {
    fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        SqliteSigningKeys::list(self)
    }
    fn add(
        &self,
        key: &SigningKey,
        announced_at: u64,
        activates_at: u64,
    ) -> Result<(), StoreError> {
        SqliteSigningKeys::add(self, key, announced_at, activates_at)
    }
    fn mark_removed(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        SqliteSigningKeys::mark_removed(self, kid, at)
    }
    fn revoke(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        SqliteSigningKeys::revoke(self, kid, at)
    }
}
