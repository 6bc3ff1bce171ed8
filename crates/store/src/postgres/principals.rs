//! Principals in PostgreSQL, shared by every node. Only the SHA-256 of a bearer token is
//! stored.
//!
//! Registration is one `INSERT … ON CONFLICT DO NOTHING`: of two nodes registering one name
//! at once, the second waits for the first to commit and then finds the name taken.

use std::sync::Arc;

use tokio_postgres::Row;
use writ_core::{Sha256Digest, VerifyingKey};

use super::{from_sql, to_sql, PgDatabase};
use crate::error::StoreError;
use crate::principals::{stored, Principal, PrincipalStore, Role};

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
    let role: String = row.try_get(1)?;
    let groups: String = row.try_get(2)?;
    stored::principal(
        row.try_get(0)?,
        &role,
        &groups,
        row.try_get(3)?,
        from_sql(row.try_get(4)?),
    )
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
        stored::check_names(name, groups)?;
        let groups_json = stored::groups(groups);
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
        stored::added(name, role, groups, inserted > 0, now)
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
        let jwk = stored::approval_key(name, key)?;
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
        jwk.map(|text| stored::read_approval_key(name, &text))
            .transpose()
    }
}
