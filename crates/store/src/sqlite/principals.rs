//! Principals in SQLite. Only the SHA-256 of a bearer token is stored.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use writ_core::{Sha256Digest, VerifyingKey};

use super::configure;
use crate::error::StoreError;
use crate::principals::{stored, Principal, PrincipalStore, Role};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS principals (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    groups       TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE,
    disabled     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
-- An approver's Ed25519 public key: its approvals are signatures under it.
CREATE TABLE IF NOT EXISTS approval_keys (
    name TEXT PRIMARY KEY REFERENCES principals(name),
    jwk  TEXT NOT NULL
) WITHOUT ROWID;
";

/// Registered principals and their token digests.
#[derive(Debug)]
pub struct SqlitePrincipals {
    conn: Mutex<Connection>,
}

fn row_to_principal(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, bool, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_principal(raw: (String, String, String, bool, i64)) -> Result<Principal, StoreError> {
    let (name, role, groups, disabled, created_at) = raw;
    let created_at = u64::try_from(created_at).unwrap_or(0);
    stored::principal(name, &role, &groups, disabled, created_at)
}

const COLUMNS: &str = "name, role, groups, disabled, created_at";

impl SqlitePrincipals {
    /// Opens (creating the table if needed) the principals in the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Registers a principal whose bearer token hashes to `token_sha256`.
    pub fn add(
        &self,
        name: &str,
        role: Role,
        groups: &[String],
        token_sha256: &Sha256Digest,
        now: u64,
    ) -> Result<Principal, StoreError> {
        stored::check_names(name, groups)?;
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let groups_json = stored::groups(groups);
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO principals (name, role, groups, token_sha256, disabled, created_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![name, role.as_str(), groups_json, token_sha256.as_bytes().as_slice(), i64::try_from(now).unwrap_or(i64::MAX)],
        )?;
        stored::added(name, role, groups, inserted > 0, now)
    }

    /// The enabled principal whose token hashes to `token_sha256`, if any.
    pub fn authenticate(
        &self,
        token_sha256: &Sha256Digest,
    ) -> Result<Option<Principal>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM principals WHERE token_sha256 = ?1 AND disabled = 0"
        ))?;
        let raw = stmt
            .query_row(
                params![token_sha256.as_bytes().as_slice()],
                row_to_principal,
            )
            .optional()?;
        raw.map(to_principal).transpose()
    }

    /// The principal named `name`.
    pub fn get(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM principals WHERE name = ?1"))?;
        let raw = stmt.query_row(params![name], row_to_principal).optional()?;
        raw.map(to_principal).transpose()
    }

    /// Every principal, by name.
    pub fn list(&self) -> Result<Vec<Principal>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM principals ORDER BY name"))?;
        let rows = stmt.query_map([], row_to_principal)?;
        rows.map(|r| to_principal(r?)).collect()
    }

    /// Disables a principal: its token stops working at once. Returns whether it existed.
    pub fn disable(&self, name: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.execute(
            "UPDATE principals SET disabled = 1 WHERE name = ?1",
            params![name],
        )? > 0)
    }

    /// Sets the Ed25519 key the approver `name` signs approvals with (replacing any earlier).
    pub fn set_approval_key(&self, name: &str, key: &VerifyingKey) -> Result<(), StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let jwk = stored::approval_key(name, key)?;
        let known = conn.execute(
            "INSERT INTO approval_keys (name, jwk)
             SELECT name, ?2 FROM principals WHERE name = ?1
             ON CONFLICT(name) DO UPDATE SET jwk = excluded.jwk",
            params![name, jwk],
        )?;
        if known == 0 {
            return Err(StoreError::UnknownPrincipal(name.to_owned()));
        }
        Ok(())
    }

    /// The key the approver `name` signs approvals with, if one is registered.
    pub fn approval_key(&self, name: &str) -> Result<Option<VerifyingKey>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stmt = conn.prepare_cached("SELECT jwk FROM approval_keys WHERE name = ?1")?;
        let jwk: Option<String> = stmt.query_row(params![name], |r| r.get(0)).optional()?;
        jwk.map(|text| stored::read_approval_key(name, &text))
            .transpose()
    }
}

impl PrincipalStore for SqlitePrincipals {
    fn add(
        &self,
        name: &str,
        role: Role,
        groups: &[String],
        token_sha256: &Sha256Digest,
        now: u64,
    ) -> Result<Principal, StoreError> {
        SqlitePrincipals::add(self, name, role, groups, token_sha256, now)
    }
    fn authenticate(&self, token_sha256: &Sha256Digest) -> Result<Option<Principal>, StoreError> {
        SqlitePrincipals::authenticate(self, token_sha256)
    }
    fn get(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        SqlitePrincipals::get(self, name)
    }
    fn list(&self) -> Result<Vec<Principal>, StoreError> {
        SqlitePrincipals::list(self)
    }
    fn disable(&self, name: &str) -> Result<bool, StoreError> {
        SqlitePrincipals::disable(self, name)
    }
    fn set_approval_key(&self, name: &str, key: &VerifyingKey) -> Result<(), StoreError> {
        SqlitePrincipals::set_approval_key(self, name, key)
    }
    fn approval_key(&self, name: &str) -> Result<Option<VerifyingKey>, StoreError> {
        SqlitePrincipals::approval_key(self, name)
    }
}
