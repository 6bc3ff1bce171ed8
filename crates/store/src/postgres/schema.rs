//! The PostgreSQL schema, embedded and applied at start. Each migration runs once, in order,
//! under a transaction-scoped advisory lock, so nodes starting together take turns and the
//! second finds the work done.

use crate::error::StoreError;

/// The advisory lock key migrations take (any fixed 64-bit number unique to writ).
const MIGRATION_LOCK: i64 = 0x7772_6974_6d69_6772; // "writmigr"

/// Migrations by version; never edit one that shipped, add the next.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

const V1: &str = "
CREATE TABLE principals (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    groups       TEXT NOT NULL,
    token_sha256 BYTEA NOT NULL UNIQUE,
    disabled     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL
);
CREATE TABLE approval_keys (
    name TEXT PRIMARY KEY REFERENCES principals (name),
    jwk  TEXT NOT NULL
);

CREATE TABLE consumed (
    jti        BYTEA PRIMARY KEY,
    spent      INTEGER NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX consumed_keep_until ON consumed (keep_until);
CREATE TABLE revoked_writs (
    jti BYTEA PRIMARY KEY
);
CREATE TABLE revoked_principals (
    principal TEXT PRIMARY KEY
);
CREATE TABLE writ_links (
    jti              BYTEA PRIMARY KEY,
    parent           BYTEA NOT NULL,
    principal        TEXT NOT NULL,
    parent_principal TEXT NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    pkcs8_pem    TEXT NOT NULL,
    announced_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    removed_at   BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE policy_sets (
    digest     TEXT PRIMARY KEY,
    schema     TEXT NOT NULL,
    policies   TEXT NOT NULL,
    entities   TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE TABLE policy_in_force (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    digest TEXT NOT NULL REFERENCES policy_sets (digest)
);

CREATE TABLE approval_requests (
    id                 TEXT PRIMARY KEY,
    principal          TEXT NOT NULL,
    request            TEXT NOT NULL,
    request_sha256     TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    approver_group     TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    state              TEXT NOT NULL,
    outcome            TEXT
);
CREATE INDEX approval_requests_by_state ON approval_requests (state, expires_at);
CREATE TABLE approval_votes (
    request_id TEXT NOT NULL REFERENCES approval_requests (id),
    approver   TEXT NOT NULL,
    verdict    TEXT NOT NULL,
    at         BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    sig        TEXT NOT NULL UNIQUE,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE log_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE log_entries (
    idx  BIGINT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE log_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = 1;

/// Applies every migration the database lacks; refuses a database newer than this build.
pub(crate) async fn migrate(client: &mut super::PgClient) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS writ_schema (version INTEGER PRIMARY KEY)")
        .await?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM writ_schema", &[])
        .await?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: i64::from(found),
            supported: i64::from(SCHEMA_VERSION),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO writ_schema (version) VALUES ($1)", &[version])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
