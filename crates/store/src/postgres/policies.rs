//! Policy sets the authority has applied, in PostgreSQL, shared by every node: their full
//! text, which one is in force, and which digests are retired.
//!
//! `apply` and `retire` each read, decide and write in one transaction holding one advisory
//! lock, so they take turns across nodes: a set is never both in force and retired, however
//! an apply and a retire of one digest interleave.

use std::sync::Arc;

use writ_core::Sha256Digest;

use super::{to_sql, PgDatabase};
use crate::error::StoreError;
use crate::policies::{PolicyStore, PolicyTexts};

/// The advisory lock `apply` and `retire` take (a fixed number unique to writ).
const POLICY_LOCK: i64 = 0x7772_6974_706f_6c69; // "writpoli"

/// Applied policy sets and retired digests, in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgPolicies {
    db: Arc<PgDatabase>,
}

impl PgPolicies {
    /// The policy state in `db`.
    pub fn new(db: Arc<PgDatabase>) -> Self {
        Self { db }
    }
}

fn parse_digest(hex: &str) -> Result<Sha256Digest, StoreError> {
    Sha256Digest::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("policy digest `{hex}`")))
}

impl PolicyStore for PgPolicies {
    fn in_force(&self) -> Result<Option<(Sha256Digest, PolicyTexts)>, StoreError> {
        let row = self.db.run(|client| async move {
            Ok(client
                .query_opt(
                    "SELECT s.digest, s.schema, s.policies, s.entities
                     FROM policy_in_force f JOIN policy_sets s ON s.digest = f.digest",
                    &[],
                )
                .await?)
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let digest: String = row.try_get(0)?;
        let texts = PolicyTexts {
            schema: row.try_get(1)?,
            policies: row.try_get(2)?,
            entities: row.try_get(3)?,
        };
        Ok(Some((parse_digest(&digest)?, texts)))
    }

    fn apply(
        &self,
        digest: &Sha256Digest,
        texts: &PolicyTexts,
        now: u64,
    ) -> Result<(), StoreError> {
        let hex = digest.to_hex();
        let texts = texts.clone();
        self.db.run(move |mut client| async move {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_LOCK])
                .await?;
            let retired = tx
                .query_opt(
                    "SELECT retired_at FROM policy_sets WHERE digest = $1",
                    &[&hex],
                )
                .await?
                .map(|row| row.try_get::<_, Option<i64>>(0))
                .transpose()?;
            if let Some(Some(_)) = retired {
                // Dropping the transaction rolls it back and frees the lock.
                return Err(StoreError::Retired(hex));
            }
            tx.execute(
                "INSERT INTO policy_sets (digest, schema, policies, entities, applied_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &hex,
                    &texts.schema,
                    &texts.policies,
                    &texts.entities,
                    &to_sql(now),
                ],
            )
            .await?;
            tx.execute(
                "INSERT INTO policy_in_force (id, digest) VALUES (0, $1)
                 ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest",
                &[&hex],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn retire(&self, digest: &Sha256Digest, now: u64) -> Result<bool, StoreError> {
        let hex = digest.to_hex();
        self.db.run(move |mut client| async move {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_LOCK])
                .await?;
            let in_force: Option<String> = tx
                .query_opt("SELECT digest FROM policy_in_force WHERE id = 0", &[])
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            if in_force.as_deref() == Some(hex.as_str()) {
                return Err(StoreError::InForce(hex));
            }
            // A digest never applied here can still be retired: writs under it are refused.
            let changed = tx
                .execute(
                    "INSERT INTO policy_sets (digest, schema, policies, entities, applied_at,
                         retired_at)
                     VALUES ($1, '', '', '', $2, $2)
                     ON CONFLICT (digest) DO UPDATE SET retired_at = EXCLUDED.retired_at
                     WHERE policy_sets.retired_at IS NULL",
                    &[&hex, &to_sql(now)],
                )
                .await?;
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    fn retired(&self) -> Result<Vec<Sha256Digest>, StoreError> {
        let rows = self.db.run(|client| async move {
            Ok(client
                .query(
                    "SELECT digest FROM policy_sets WHERE retired_at IS NOT NULL
                     ORDER BY digest COLLATE \"C\"",
                    &[],
                )
                .await?)
        })?;
        rows.iter()
            .map(|row| parse_digest(&row.try_get::<_, String>(0)?))
            .collect()
    }
}
