//! The authority's writ-signing keys in PostgreSQL, shared by every node. The private key is
//! kept as PKCS#8 PEM, as in SQLite; the database as a whole is the authority's secret.
//!
//! Every change is one conditional statement, so two nodes marking or revoking one key at
//! once see exactly one `true`.

use std::sync::Arc;

use writ_core::SigningKey;
use zeroize::Zeroizing;

use super::{from_sql, to_sql, PgDatabase};
use crate::error::StoreError;
use crate::keys::{KeyStore, StoredKey};

/// The authority's signing keys, in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgSigningKeys {
    db: Arc<PgDatabase>,
}

impl PgSigningKeys {
    /// The signing keys in `db`.
    pub fn new(db: Arc<PgDatabase>) -> Self {
        Self { db }
    }
}

impl KeyStore for PgSigningKeys {
    fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = self.db.run(|client| async move {
            Ok(client
                .query(
                    "SELECT kid, pkcs8_pem, announced_at, activates_at, removed_at, revoked_at
                     FROM signing_keys ORDER BY activates_at, announced_at, kid COLLATE \"C\"",
                    &[],
                )
                .await?)
        })?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let kid: String = row.try_get(0)?;
            let pem = Zeroizing::new(row.try_get::<_, String>(1)?);
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
                announced_at: from_sql(row.try_get(2)?),
                activates_at: from_sql(row.try_get(3)?),
                removed_at: row.try_get::<_, Option<i64>>(4)?.map(from_sql),
                revoked_at: row.try_get::<_, Option<i64>>(5)?.map(from_sql),
            });
        }
        Ok(keys)
    }

    fn add(
        &self,
        key: &SigningKey,
        announced_at: u64,
        activates_at: u64,
    ) -> Result<(), StoreError> {
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| StoreError::Corrupt(format!("signing key: {e}")))?;
        let kid = key.kid().as_str().to_owned();
        // Adding a key that is already there changes nothing.
        self.db.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO signing_keys (kid, pkcs8_pem, announced_at, activates_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[
                        &kid,
                        &pem.as_str(),
                        &to_sql(announced_at),
                        &to_sql(activates_at),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn mark_removed(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let kid = kid.to_owned();
        let changed = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "UPDATE signing_keys SET removed_at = $2
                     WHERE kid = $1 AND removed_at IS NULL",
                    &[&kid, &to_sql(at)],
                )
                .await?)
        })?;
        Ok(changed == 1)
    }

    fn revoke(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let kid = kid.to_owned();
        let changed = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "UPDATE signing_keys SET revoked_at = $2
                     WHERE kid = $1 AND revoked_at IS NULL",
                    &[&kid, &to_sql(at)],
                )
                .await?)
        })?;
        Ok(changed == 1)
    }
}
