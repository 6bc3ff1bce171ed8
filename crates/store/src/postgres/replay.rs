//! Revocations, delegation links and consumed ids in PostgreSQL, shared by every node.
//!
//! The consume step ([`consume_in`]) runs inside the log writer's transaction, so a use is
//! spent exactly when its `consumption` entry is in the log, at whichever node it happens.

use std::sync::Arc;

use deadpool_postgres::GenericClient;
use writ_core::{
    Consumed, Jti, RevocationState, RevocationStatus, RevocationSubject, StateError, UnixTime,
};

use super::{to_sql, PgDatabase};
use crate::error::StoreError;
use crate::revocations::RevocationStore;

/// Revocation state in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgRevocations {
    db: Arc<PgDatabase>,
}

impl PgRevocations {
    /// Revocation state in `db`.
    pub fn new(db: Arc<PgDatabase>) -> Self {
        Self { db }
    }
}

/// What in `subject` is revoked, if anything: the writ, an ancestor (as recorded when each
/// child was issued, or as the writ itself names them), or a principal it names. One prepared
/// statement (cached per connection): a consumption holds the log's lock while it runs.
pub(crate) async fn revoked(
    client: &impl GenericClient,
    subject: &RevocationSubject<'_>,
) -> Result<Option<String>, StoreError> {
    let ids: Vec<Vec<u8>> = std::iter::once(subject.jti)
        .chain(subject.ancestors)
        .map(|j| j.as_bytes().to_vec())
        .collect();
    let principals: Vec<&str> = subject.principals.to_vec();
    let statement = client
        .prepare_cached(
            "(WITH RECURSIVE up(start, id) AS (
                  SELECT s, s FROM unnest($1::bytea[]) AS s
                  UNION SELECT up.start, l.parent FROM writ_links l JOIN up ON l.jti = up.id
              )
              SELECT start, id, NULL::text FROM up
              WHERE id IN (SELECT jti FROM revoked_writs) LIMIT 1)
             UNION ALL
             (SELECT NULL::bytea, NULL::bytea, principal FROM revoked_principals
              WHERE principal = ANY($2) LIMIT 1)
             LIMIT 1",
        )
        .await?;
    let Some(row) = client.query_opt(&statement, &[&ids, &principals]).await? else {
        return Ok(None);
    };
    if let Some(principal) = row.get::<_, Option<String>>(2) {
        return Ok(Some(format!("principal `{principal}`")));
    }
    let start: Vec<u8> = row.get::<_, Option<Vec<u8>>>(0).unwrap_or_default();
    let id: Vec<u8> = row.get::<_, Option<Vec<u8>>>(1).unwrap_or_default();
    let name = jti_of(&start).map(|j| j.to_string()).unwrap_or_default();
    Ok(Some(if start == id {
        format!("writ `{name}`")
    } else {
        format!("an ancestor of writ `{name}`")
    }))
}

fn jti_of(bytes: &[u8]) -> Option<Jti> {
    <[u8; 16]>::try_from(bytes).ok().map(Jti::from_bytes)
}

/// One consumption inside the caller's transaction: reads revocation state, then spends one
/// use of `jti` unless all are spent. The spend is one conditional upsert, so two nodes racing
/// for the last use cannot both have it. The caller commits or rolls back.
pub(crate) async fn consume_in(
    tx: &impl GenericClient,
    jti: &Jti,
    uses: u32,
    keep_until: UnixTime,
    subject: &RevocationSubject<'_>,
) -> Result<Consumed, StoreError> {
    if revoked(tx, subject).await?.is_some() {
        return Ok(Consumed::Revoked);
    }
    let uses = i32::try_from(uses).unwrap_or(i32::MAX);
    let statement = tx
        .prepare_cached(
            "INSERT INTO consumed (jti, spent, keep_until) VALUES ($1, 1, $3)
             ON CONFLICT (jti) DO UPDATE SET spent = consumed.spent + 1,
                 keep_until = GREATEST(consumed.keep_until, EXCLUDED.keep_until)
             WHERE consumed.spent < $2
             RETURNING spent",
        )
        .await?;
    let row = tx
        .query_opt(
            &statement,
            &[
                &jti.as_bytes().as_slice(),
                &uses,
                &to_sql(keep_until.as_secs()),
            ],
        )
        .await?;
    Ok(match row {
        Some(row) if row.get::<_, i32>(0) <= uses => Consumed::Fresh {
            remaining: u32::try_from(uses - row.get::<_, i32>(0)).unwrap_or(0),
        },
        _ => Consumed::Exhausted,
    })
}

impl RevocationStatus for PgRevocations {
    fn check(&self, subject: &RevocationSubject<'_>) -> Result<RevocationState, StateError> {
        let jti = *subject.jti;
        let ancestors = subject.ancestors.to_vec();
        let principals = subject.principals.map(str::to_owned);
        let found = self.db.run(move |client| async move {
            let subject = RevocationSubject {
                jti: &jti,
                ancestors: &ancestors,
                principals: [&principals[0], &principals[1]],
            };
            revoked(&client, &subject).await
        })?;
        Ok(match found {
            Some(what) => RevocationState::Revoked(what),
            None => RevocationState::Valid,
        })
    }
}

impl RevocationStore for PgRevocations {
    fn revoke_writ(&self, jti: &Jti) -> Result<(), StoreError> {
        let id = jti.as_bytes().to_vec();
        self.db.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO revoked_writs (jti) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&id],
                )
                .await?;
            Ok(())
        })
    }

    fn revoke_principal(&self, principal: &str) -> Result<(), StoreError> {
        let principal = principal.to_owned();
        self.db.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO revoked_principals (principal) VALUES ($1)
                     ON CONFLICT DO NOTHING",
                    &[&principal],
                )
                .await?;
            Ok(())
        })
    }

    fn record_link(
        &self,
        child: &Jti,
        parent: &Jti,
        principal: &str,
        parent_principal: &str,
    ) -> Result<(), StoreError> {
        let (child, parent) = (child.as_bytes().to_vec(), parent.as_bytes().to_vec());
        let (principal, parent_principal) = (principal.to_owned(), parent_principal.to_owned());
        self.db.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO writ_links (jti, parent, principal, parent_principal)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&child, &parent, &principal, &parent_principal],
                )
                .await?;
            Ok(())
        })
    }

    fn ancestry(&self, jti: &Jti) -> Result<Vec<(Jti, String, String)>, StoreError> {
        let id = jti.as_bytes().to_vec();
        let rows = self.db.run(move |client| async move {
            Ok(client
                .query(
                    "WITH RECURSIVE up(id, depth) AS (
                         SELECT $1::bytea, 0
                         UNION SELECT l.parent, up.depth + 1
                               FROM writ_links l JOIN up ON l.jti = up.id
                     )
                     SELECT up.id, l.principal, l.parent_principal
                     FROM up JOIN writ_links l ON l.jti = up.id
                     ORDER BY up.depth DESC",
                    &[&id],
                )
                .await?)
        })?;
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = row.get(0);
                let jti = jti_of(&id)
                    .ok_or_else(|| StoreError::Corrupt("a writ link with a malformed id".into()))?;
                Ok((jti, row.get(1), row.get(2)))
            })
            .collect()
    }

    fn purge(&self, now: UnixTime) -> Result<usize, StoreError> {
        let now = to_sql(now.as_secs());
        self.db.run(move |client| async move {
            let n = client
                .execute("DELETE FROM consumed WHERE keep_until < $1", &[&now])
                .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
