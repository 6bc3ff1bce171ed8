//! Requests waiting for human approval, and the votes given, in PostgreSQL, shared by every
//! node.
//!
//! A request moves once, from `pending` to one final state, by a conditional `UPDATE … WHERE
//! state = 'pending'`: of two nodes settling one request, the second waits for the first to
//! commit, re-reads the row and changes nothing. A vote locks the request row (`FOR SHARE`)
//! while it checks that the request is pending and inserts, so no vote lands on a request a
//! concurrent settlement closed; a second vote by one approver, or a reused signature, hits a
//! unique index and inserts nothing.

use std::sync::Arc;

use serde_json::Value;
use tokio_postgres::Row;
use writ_core::{ApprovalVerdict, Sha256Digest};

use super::{from_sql, to_sql, PgDatabase};
use crate::approvals::{ApprovalRequest, ApprovalStore, RequestState, Vote};
use crate::error::StoreError;

/// One request and its votes, in one statement (so in one snapshot): the request's columns
/// (0–9), then one vote's (10–14), NULL for a request without votes. `COLLATE "C"` orders by
/// bytes, as SQLite does, whatever the database's locale.
const SELECT: &str = "
SELECT r.id, r.principal, r.request, r.request_sha256, r.approvals_required,
       r.approver_group, r.created_at, r.expires_at, r.state, r.outcome,
       v.approver, v.verdict, v.at, v.expires, v.sig
FROM approval_requests r LEFT JOIN approval_votes v ON v.request_id = r.id";

const ORDER: &str = "ORDER BY r.created_at, r.id COLLATE \"C\", v.at, v.approver COLLATE \"C\"";

/// Pending requests and their votes, in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgApprovals {
    db: Arc<PgDatabase>,
}

impl PgApprovals {
    /// The approval requests in `db`.
    pub fn new(db: Arc<PgDatabase>) -> Self {
        Self { db }
    }
}

fn corrupt(id: &str, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("approval request `{id}` {what}: {e}"))
}

fn to_request(row: &Row) -> Result<ApprovalRequest, StoreError> {
    let id: String = row.try_get(0)?;
    let request: String = row.try_get(2)?;
    let request: Value = serde_json::from_str(&request).map_err(|e| corrupt(&id, "request", e))?;
    let digest: String = row.try_get(3)?;
    let request_sha256 = Sha256Digest::from_hex(&digest)
        .ok_or_else(|| corrupt(&id, "digest", "not lowercase hex SHA-256"))?;
    let required: i32 = row.try_get(4)?;
    let state: String = row.try_get(8)?;
    let state: RequestState = state.parse().map_err(|e| corrupt(&id, "state", e))?;
    let outcome = row
        .try_get::<_, Option<String>>(9)?
        .map(|o| serde_json::from_str(&o))
        .transpose()
        .map_err(|e| corrupt(&id, "outcome", e))?;
    Ok(ApprovalRequest {
        approvals_required: u32::try_from(required).map_err(|e| corrupt(&id, "quorum", e))?,
        principal: row.try_get(1)?,
        request,
        request_sha256,
        approver_group: row.try_get(5)?,
        created_at: from_sql(row.try_get(6)?),
        expires_at: from_sql(row.try_get(7)?),
        state,
        outcome,
        votes: Vec::new(),
        id,
    })
}

fn to_vote(id: &str, row: &Row) -> Result<Option<Vote>, StoreError> {
    let Some(approver) = row.try_get::<_, Option<String>>(10)? else {
        return Ok(None);
    };
    let verdict: String = row.try_get(11)?;
    let verdict: ApprovalVerdict =
        serde_json::from_value(Value::String(verdict)).map_err(|e| corrupt(id, "vote", e))?;
    Ok(Some(Vote {
        approver,
        verdict,
        at: from_sql(row.try_get(12)?),
        expires: from_sql(row.try_get(13)?),
        sig: row.try_get(14)?,
    }))
}

/// Folds the rows of [`SELECT`] (ordered by request) into requests with their votes.
fn to_requests(rows: &[Row]) -> Result<Vec<ApprovalRequest>, StoreError> {
    let mut out: Vec<ApprovalRequest> = Vec::new();
    for row in rows {
        let id: String = row.try_get(0)?;
        if out.last().is_none_or(|last| last.id != id) {
            out.push(to_request(row)?);
        }
        if let (Some(vote), Some(last)) = (to_vote(&id, row)?, out.last_mut()) {
            last.votes.push(vote);
        }
    }
    Ok(out)
}

/// A quorum for the INTEGER column (a quorum past `i32::MAX` cannot be met either way).
fn quorum(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl ApprovalStore for PgApprovals {
    fn create(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let r = request;
        let params = (
            r.id.clone(),
            r.principal.clone(),
            r.request.to_string(),
            r.request_sha256.to_hex(),
            quorum(r.approvals_required),
            r.approver_group.clone(),
            to_sql(r.created_at),
            to_sql(r.expires_at),
        );
        // Its state and votes are not taken from `request`: a request starts pending.
        self.db.run(move |client| async move {
            let (id, principal, body, digest, required, group, created, expires) = params;
            client
                .execute(
                    "INSERT INTO approval_requests (id, principal, request, request_sha256,
                         approvals_required, approver_group, created_at, expires_at, state,
                         outcome)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', NULL)",
                    &[
                        &id, &principal, &body, &digest, &required, &group, &created, &expires,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        let id = id.to_owned();
        let rows = self.db.run(move |client| async move {
            let stmt = client
                .prepare_cached(&format!("{SELECT} WHERE r.id = $1 {ORDER}"))
                .await?;
            Ok(client.query(&stmt, &[&id]).await?)
        })?;
        Ok(to_requests(&rows)?.into_iter().next())
    }

    fn list(&self, state: RequestState) -> Result<Vec<ApprovalRequest>, StoreError> {
        let rows = self.db.run(move |client| async move {
            Ok(client
                .query(
                    &format!("{SELECT} WHERE r.state = $1 {ORDER}"),
                    &[&state.as_str()],
                )
                .await?)
        })?;
        to_requests(&rows)
    }

    fn vote(&self, id: &str, vote: &Vote) -> Result<(), StoreError> {
        let id = id.to_owned();
        let vote = vote.clone();
        self.db.run(move |mut client| async move {
            let tx = client.transaction().await?;
            // The share lock holds off a settlement until this vote commits; a settlement
            // that committed first is what this read sees.
            let state: Option<String> = tx
                .query_opt(
                    "SELECT state FROM approval_requests WHERE id = $1 FOR SHARE",
                    &[&id],
                )
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            let state = state.ok_or_else(|| StoreError::UnknownRequest(id.clone()))?;
            let state: RequestState = state.parse().map_err(|e| corrupt(&id, "state", e))?;
            if state != RequestState::Pending {
                return Err(StoreError::RequestClosed(state.as_str().to_owned()));
            }
            // INVARIANT: no conflict target, so either unique index (one vote per approver,
            // one use per signature) refuses the vote, as SQLite's `INSERT OR IGNORE` does.
            let inserted = tx
                .execute(
                    "INSERT INTO approval_votes (request_id, approver, verdict, at, expires, sig)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &id,
                        &vote.approver,
                        &vote.verdict.as_str(),
                        &to_sql(vote.at),
                        &to_sql(vote.expires),
                        &vote.sig,
                    ],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::DuplicateVote(vote.approver));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn require(&self, id: &str, approvals: u32, group: &str) -> Result<(), StoreError> {
        let (id, group) = (id.to_owned(), group.to_owned());
        self.db.run(move |client| async move {
            client
                .execute(
                    "UPDATE approval_requests SET approvals_required = $2, approver_group = $3
                     WHERE id = $1 AND state = 'pending'",
                    &[&id, &quorum(approvals), &group],
                )
                .await?;
            Ok(())
        })
    }

    fn record_outcome(&self, id: &str, outcome: &Value) -> Result<(), StoreError> {
        let (id, outcome) = (id.to_owned(), outcome.to_string());
        self.db.run(move |client| async move {
            client
                .execute(
                    "UPDATE approval_requests SET outcome = $2
                     WHERE id = $1 AND state <> 'pending'",
                    &[&id, &outcome],
                )
                .await?;
            Ok(())
        })
    }

    fn settle(&self, id: &str, state: RequestState, outcome: &Value) -> Result<bool, StoreError> {
        let (id, outcome) = (id.to_owned(), outcome.to_string());
        let changed = self.db.run(move |client| async move {
            Ok(client
                .execute(
                    "UPDATE approval_requests SET state = $2, outcome = $3
                     WHERE id = $1 AND state = 'pending'",
                    &[&id, &state.as_str(), &outcome],
                )
                .await?)
        })?;
        Ok(changed == 1)
    }

    fn due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let rows = self.db.run(move |client| async move {
            Ok(client
                .query(
                    "SELECT id FROM approval_requests WHERE state = 'pending' AND expires_at <= $1
                     ORDER BY expires_at, id COLLATE \"C\"",
                    &[&to_sql(now)],
                )
                .await?)
        })?;
        rows.iter()
            .map(|row| Ok(row.try_get::<_, String>(0)?))
            .collect()
    }
}
