//! writ-store owns writ's durable state behind traits; the verifier in writ-core decides,
//! this crate only remembers.
//!
//! Each concept has a trait: [`PrincipalStore`] (role, groups and the SHA-256 of each bearer
//! token, never the token), [`LogStore`] (the transparency log: appends and consumptions
//! made durable in batches), [`RevocationStore`] (revoked writs and principals, delegation
//! links), [`KeyStore`] (writ-signing keys), [`PolicyStore`] (applied policy sets, retired
//! digests) and [`ApprovalStore`] (requests pending human approval).
//!
//! Two backends implement them. SQLite (`Sqlite*`, the embedded default): one WAL file with
//! `synchronous=FULL`; [`SqliteReplayStore`] is also the replay store of a standalone gate.
//! PostgreSQL ([`postgres`]): several authority nodes on one database act as one authority,
//! with one log sequence under an advisory lock.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod approvals;
mod error;
mod keys;
mod log;
mod policies;
pub mod postgres;
mod principals;
mod revocations;
mod sqlite;

pub use approvals::{ApprovalRequest, ApprovalStore, RequestState, Vote};
pub use error::StoreError;
pub use keys::{KeyStore, StoredKey};
pub use log::{AppendCallback, ConsumeCallback, ConsumeJob, LogStore};
pub use policies::{PolicyStore, PolicyTexts};
pub use postgres::PgDatabase;
pub use principals::{valid_name, Principal, PrincipalStore, Role};
pub use revocations::RevocationStore;
pub use sqlite::{
    Audit, AuditFinding, SqliteApprovals, SqliteLog, SqlitePolicies, SqlitePrincipals,
    SqliteReplayStore, SqliteSigningKeys,
};
