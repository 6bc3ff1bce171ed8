//! Principals in PostgreSQL, shared by every node. Only the SHA-256 of a bearer token is
//! stored.
//!
//! Registration is one `INSERT … ON CONFLICT DO NOTHING`: of two nodes registering one name
//! at once, the second waits for the first to commit and then finds the name taken.

use std::sync::Arc;

use tokio_postgres::Row;
use writ_core::{Jwk, Sha256Digest, VerifyingKey};

use super::{from_sql, to_sql, PgDatabase};
use crate::error::StoreError;
use crate::principals::{valid_name, Principal, PrincipalStore, Role};

const COLUMNS: &str = "name, role, groups, disabled, created_at";

/// Registered principals and their token digests, in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgPrincipals {
    db: Arc<PgDatabase>,
}

impl PgPrincipals {
    /// The principals in `db`.
    pub fn new(db: Arc<PgDatabase>) -> Self {
        Self { db }
    }
}

fn to_principal(row: &Row) -> Result<Principal, StoreError> {
    let name: String = row.try_get(0)?;
    let role: String = row.try_get(1)?;
    let groups: String = row.try_get(2)?;
    let role: Role = role
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("principal `{name}`: {e}")))?;
    let groups = serde_json::from_str(&groups)
        .map_err(|e| StoreError::Corrupt(format!("principal `{name}` groups: {e}")))?;
    Ok(Principal {
        role,
        groups,
        disabled: row.try_get(3)?,
        created_at: from_sql(row.try_get(4)?),
        name,
    })
}

impl PrincipalStore for PgPrincipals {
    fn add(
        &self,
        name: &str,
        role: Role,
        groups: &[String],
        token_sha256: &Sha256Digest,
        now: u64,
    ) -> Result<Principal, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        if let Some(bad) = groups.iter().find(|g| !valid_name(g)) {
            return Err(StoreError::InvalidName(bad.clone()));
        }
        let groups_json = serde_json::to_string(groups).unwrap_or_else(|_| "[]".into());
        let owned = name.to_owned();
        let token = token_sha256.as_bytes().to_vec();
        // INVARIANT: no conflict target, so a taken name *or* a taken token inserts nothing,
        // as SQLite's `INSERT OR IGNORE` does.
        let inserted = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "INSERT INTO principals (name, role, groups, token_sha256, disabled, created_at)
                     VALUES ($1, $2, $3, $4, FALSE, $5) ON CONFLICT DO NOTHING",
                    &[&owned, &role.as_str(), &groups_json, &token, &to_sql(now)],
                )
                .await?)
        })?;
        if inserted == 0 {
            return Err(StoreError::PrincipalExists(name.to_owned()));
        }
        Ok(Principal {
            name: name.to_owned(),
            role,
            groups: groups.to_vec(),
            disabled: false,
            created_at: now,
        })
    }

    fn authenticate(&self, token_sha256: &Sha256Digest) -> Result<Option<Principal>, StoreError> {
        let token = token_sha256.as_bytes().to_vec();
        let row = self.db.run(move |client| async move {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM principals WHERE token_sha256 = $1 AND NOT disabled"
                ))
                .await?;
            Ok(client.query_opt(&stmt, &[&token]).await?)
        })?;
        row.as_ref().map(to_principal).transpose()
    }

    fn get(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let name = name.to_owned();
        let row = self.db.run(move |client| async move {
            let stmt = client
                .prepare_cached(&format!("SELECT {COLUMNS} FROM principals WHERE name = $1"))
                .await?;
            Ok(client.query_opt(&stmt, &[&name]).await?)
        })?;
        row.as_ref().map(to_principal).transpose()
    }

    fn list(&self) -> Result<Vec<Principal>, StoreError> {
        // `COLLATE "C"`: byte order, as SQLite sorts, whatever the database's locale.
        let rows = self.db.run(|client| async move {
            Ok(client
                .query(
                    &format!("SELECT {COLUMNS} FROM principals ORDER BY name COLLATE \"C\""),
                    &[],
                )
                .await?)
        })?;
        rows.iter().map(to_principal).collect()
    }

    fn disable(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        let changed = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "UPDATE principals SET disabled = TRUE WHERE name = $1",
                    &[&name],
                )
                .await?)
        })?;
        Ok(changed > 0)
    }

    fn set_approval_key(&self, name: &str, key: &VerifyingKey) -> Result<(), StoreError> {
        let jwk = serde_json::to_string(&key.to_jwk())
            .map_err(|e| StoreError::Corrupt(format!("approval key of `{name}`: {e}")))?;
        let owned = name.to_owned();
        // One statement: the principal's existence and the upsert cannot be split.
        let known = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "INSERT INTO approval_keys (name, jwk)
                     SELECT name, $2 FROM principals WHERE name = $1
                     ON CONFLICT (name) DO UPDATE SET jwk = EXCLUDED.jwk",
                    &[&owned, &jwk],
                )
                .await?)
        })?;
        if known == 0 {
            return Err(StoreError::UnknownPrincipal(name.to_owned()));
        }
        Ok(())
    }

    fn approval_key(&self, name: &str) -> Result<Option<VerifyingKey>, StoreError> {
        let owned = name.to_owned();
        let jwk: Option<String> = self.db.run(move |client| async move {
            let stmt = client
                .prepare_cached("SELECT jwk FROM approval_keys WHERE name = $1")
                .await?;
            let row = client.query_opt(&stmt, &[&owned]).await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })?;
        jwk.map(|text| {
            serde_json::from_str::<Jwk>(&text)
                .map_err(|e| e.to_string())
                .and_then(|jwk| VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string()))
                .map_err(|e| StoreError::Corrupt(format!("approval key of `{name}`: {e}")))
        })
        .transpose()
    }
}
