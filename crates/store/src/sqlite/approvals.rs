//! Requests waiting for human approval, and the approvals and rejections given, in SQLite.
//!
//! A request moves once, from `pending` to one final state; every move is a conditional
//! update, so two settlements of one request can never both succeed.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;
use writ_core::{ApprovalVerdict, Sha256Digest};

use super::with_schema;
use crate::approvals::{ApprovalRequest, ApprovalStore, RequestState, Vote};
use crate::error::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approval_requests (
    id                 TEXT PRIMARY KEY,
    principal          TEXT NOT NULL,
    request            TEXT NOT NULL,
    request_sha256     TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    approver_group     TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    state              TEXT NOT NULL,
    outcome            TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS approval_requests_by_state
    ON approval_requests (state, expires_at);
CREATE TABLE IF NOT EXISTS approval_votes (
    request_id TEXT NOT NULL REFERENCES approval_requests(id),
    approver   TEXT NOT NULL,
    verdict    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    sig        TEXT NOT NULL UNIQUE,
    PRIMARY KEY (request_id, approver)
) WITHOUT ROWID;
";

const COLUMNS: &str = "id, principal, request, request_sha256, approvals_required, \
                       approver_group, created_at, expires_at, state, outcome";

/// Pending requests and their votes.
#[derive(Debug)]
pub struct SqliteApprovals {
    conn: Mutex<Connection>,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

type Row = (
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn corrupt(id: &str, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("approval request `{id}` {what}: {e}"))
}

fn to_request(raw: Row, votes: Vec<Vote>) -> Result<ApprovalRequest, StoreError> {
    let (id, principal, request, digest, required, group, created, expires, state, outcome) = raw;
    let request: Value = serde_json::from_str(&request).map_err(|e| corrupt(&id, "request", e))?;
    let request_sha256 = Sha256Digest::from_hex(&digest)
        .ok_or_else(|| corrupt(&id, "digest", "not lowercase hex SHA-256"))?;
    let state: RequestState = state.parse().map_err(|e| corrupt(&id, "state", e))?;
    let outcome = outcome
        .map(|o| serde_json::from_str(&o))
        .transpose()
        .map_err(|e| corrupt(&id, "outcome", e))?;
    Ok(ApprovalRequest {
        approvals_required: u32::try_from(required).map_err(|e| corrupt(&id, "quorum", e))?,
        id,
        principal,
        request,
        request_sha256,
        approver_group: group,
        created_at: uint(created),
        expires_at: uint(expires),
        state,
        outcome,
        votes,
    })
}

fn votes_of(conn: &Connection, id: &str) -> Result<Vec<Vote>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver, verdict, at, expires, sig FROM approval_votes
         WHERE request_id = ?1 ORDER BY at, approver",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|r| {
        let (approver, verdict, at, expires, sig) = r?;
        let verdict: ApprovalVerdict =
            serde_json::from_value(Value::String(verdict)).map_err(|e| corrupt(id, "vote", e))?;
        Ok(Vote {
            approver,
            verdict,
            at: uint(at),
            expires: uint(expires),
            sig,
        })
    })
    .collect()
}

fn get_in(conn: &Connection, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE id = ?1"
    ))?;
    let Some(raw) = stmt.query_row(params![id], read_row).optional()? else {
        return Ok(None);
    };
    let votes = votes_of(conn, id)?;
    to_request(raw, votes).map(Some)
}

fn state_in(tx: &Transaction<'_>, id: &str) -> Result<RequestState, StoreError> {
    let state: Option<String> = tx
        .query_row(
            "SELECT state FROM approval_requests WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    let state = state.ok_or_else(|| StoreError::UnknownRequest(id.to_owned()))?;
    state.parse().map_err(|e| corrupt(id, "state", e))
}

impl SqliteApprovals {
    /// Opens (creating the tables if needed) the approvals in the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: with_schema(Connection::open(path)?, SCHEMA)?,
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Records a new pending request (its votes are ignored).
    pub fn create(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO approval_requests (id, principal, request, request_sha256,
                 approvals_required, approver_group, created_at, expires_at, state, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', NULL)",
            params![
                request.id,
                request.principal,
                request.request.to_string(),
                request.request_sha256.to_hex(),
                i64::from(request.approvals_required),
                request.approver_group,
                int(request.created_at),
                int(request.expires_at),
            ],
        )?;
        Ok(())
    }

    /// The request `id` with its votes.
    pub fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        let conn = self.conn()?;
        get_in(&conn, id)
    }

    /// The requests in `state`, oldest first.
    pub fn list(&self, state: RequestState) -> Result<Vec<ApprovalRequest>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM approval_requests WHERE state = ?1 ORDER BY created_at, id"
        ))?;
        let raws = stmt
            .query_map(params![state.as_str()], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|raw| {
                let votes = votes_of(&conn, &raw.0)?;
                to_request(raw, votes)
            })
            .collect()
    }

    /// Records `vote` on the pending request `id`: refused when the request is settled
    /// ([`StoreError::RequestClosed`]) or the approver voted already, or the same signature
    /// was used before ([`StoreError::DuplicateVote`]).
    pub fn vote(&self, id: &str, vote: &Vote) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        // Write lock up front: waits for other writers instead of failing at the upgrade.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let state = state_in(&tx, id)?;
        if state != RequestState::Pending {
            return Err(StoreError::RequestClosed(state.as_str().to_owned()));
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO approval_votes (request_id, approver, verdict, at, expires, sig)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                vote.approver,
                vote.verdict.as_str(),
                int(vote.at),
                int(vote.expires),
                vote.sig
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::DuplicateVote(vote.approver.clone()));
        }
        tx.commit()?;
        Ok(())
    }

    /// Changes what the request `id` still needs (a policy applied since asked for more).
    pub fn require(&self, id: &str, approvals: u32, group: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE approval_requests SET approvals_required = ?2, approver_group = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, i64::from(approvals), group],
        )?;
        Ok(())
    }

    /// Settles the pending request `id` as `state` with `outcome`. False when it was settled
    /// already: only the first settlement holds.
    pub fn settle(
        &self,
        id: &str,
        state: RequestState,
        outcome: &Value,
    ) -> Result<bool, StoreError> {
        let changed = self.conn()?.execute(
            "UPDATE approval_requests SET state = ?2, outcome = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, state.as_str(), outcome.to_string()],
        )?;
        Ok(changed == 1)
    }

    /// Replaces the outcome of a settled request (a pending one is left alone).
    pub fn record_outcome(&self, id: &str, outcome: &Value) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE approval_requests SET outcome = ?2 WHERE id = ?1 AND state <> 'pending'",
            params![id, outcome.to_string()],
        )?;
        Ok(())
    }

    /// The pending requests whose time ran out by `now`.
    pub fn due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM approval_requests WHERE state = 'pending' AND expires_at <= ?1",
        )?;
        let ids = stmt
            .query_map(params![int(now)], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }
}

impl ApprovalStore for SqliteApprovals {
    fn create(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        SqliteApprovals::create(self, request)
    }
    fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        SqliteApprovals::get(self, id)
    }
    fn list(&self, state: RequestState) -> Result<Vec<ApprovalRequest>, StoreError> {
        SqliteApprovals::list(self, state)
    }
    fn vote(&self, id: &str, vote: &Vote) -> Result<(), StoreError> {
        SqliteApprovals::vote(self, id, vote)
    }
    fn require(&self, id: &str, approvals: u32, group: &str) -> Result<(), StoreError> {
        SqliteApprovals::require(self, id, approvals, group)
    }
    fn settle(&self, id: &str, state: RequestState, outcome: &Value) -> Result<bool, StoreError> {
        SqliteApprovals::settle(self, id, state, outcome)
    }
    fn due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        SqliteApprovals::due(self, now)
    }
    fn record_outcome(&self, id: &str, outcome: &Value) -> Result<(), StoreError> {
        SqliteApprovals::record_outcome(self, id, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, SqliteApprovals) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteApprovals::open(&dir.path().join("writ.db")).unwrap();
        (dir, store)
    }

    fn request(id: &str) -> ApprovalRequest {
        ApprovalRequest {
            id: id.into(),
            principal: "bot".into(),
            request: json!({"action": "pay"}),
            request_sha256: Sha256Digest::of(id.as_bytes()),
            approvals_required: 2,
            approver_group: "finance".into(),
            created_at: 100,
            expires_at: 1000,
            state: RequestState::Pending,
            outcome: None,
            votes: Vec::new(),
        }
    }

    fn vote(approver: &str, sig: &str) -> Vote {
        Vote {
            approver: approver.into(),
            verdict: ApprovalVerdict::Approve,
            at: 200,
            expires: 1000,
            sig: sig.into(),
        }
    }

    #[test]
    fn a_vote_counts_once_and_never_on_a_settled_request() {
        let (_dir, s) = store();
        s.create(&request("r1")).unwrap();
        s.vote("r1", &vote("alice", "s1")).unwrap();
        assert!(matches!(
            s.vote("r1", &vote("alice", "s2")),
            Err(StoreError::DuplicateVote(_))
        ));
        // The same signature again, even under another name, is a replay.
        assert!(matches!(
            s.vote("r1", &vote("bob", "s1")),
            Err(StoreError::DuplicateVote(_))
        ));
        s.vote("r1", &vote("bob", "s3")).unwrap();
        let r = s.get("r1").unwrap().unwrap();
        assert_eq!(r.votes.len(), 2);
        assert_eq!(r.state, RequestState::Pending);

        assert!(s
            .settle("r1", RequestState::Permit, &json!({"jti": "x"}))
            .unwrap());
        assert!(!s.settle("r1", RequestState::Deny, &json!({})).unwrap());
        assert!(matches!(
            s.vote("r1", &vote("carol", "s4")),
            Err(StoreError::RequestClosed(state)) if state == "permit"
        ));
        let r = s.get("r1").unwrap().unwrap();
        assert_eq!(r.state, RequestState::Permit);
        assert_eq!(r.outcome, Some(json!({"jti": "x"})));
        assert!(matches!(
            s.vote("nope", &vote("carol", "s5")),
            Err(StoreError::UnknownRequest(_))
        ));
    }

    #[test]
    fn requests_survive_reopening_and_expire_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.db");
        {
            let s = SqliteApprovals::open(&path).unwrap();
            s.create(&request("r1")).unwrap();
            s.create(&ApprovalRequest {
                expires_at: 5000,
                ..request("r2")
            })
            .unwrap();
            s.vote("r1", &vote("alice", "s1")).unwrap();
        }
        let s = SqliteApprovals::open(&path).unwrap();
        assert_eq!(s.list(RequestState::Pending).unwrap().len(), 2);
        assert_eq!(s.get("r1").unwrap().unwrap().votes[0].approver, "alice");
        assert_eq!(s.due(999).unwrap(), Vec::<String>::new());
        assert_eq!(s.due(1000).unwrap(), vec!["r1".to_owned()]);
        s.require("r2", 3, "finance-leads").unwrap();
        let r2 = s.get("r2").unwrap().unwrap();
        assert_eq!(
            (r2.approvals_required, r2.approver_group.as_str()),
            (3, "finance-leads")
        );
    }
}
