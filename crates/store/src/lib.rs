//! writ-store owns writ's durable state behind writ-core's traits.
//!
//! Today that is [`SqliteReplayStore`]: the replay store of a standalone gate, which records
//! consumed writ ids and the revocations it knows in one SQLite database (WAL,
//! `synchronous=FULL`), so a use is durable before the action starts and two processes
//! sharing the file never both consume the last use. The verifier in writ-core decides;
//! this crate only remembers.
//!
//! It also keeps the authority's principals ([`SqlitePrincipals`]: role, groups and the
//! SHA-256 of each bearer token, never the token), its transparency log ([`SqliteLog`]), its
//! signing keys ([`SqliteSigningKeys`]) and the policy sets it applied ([`SqlitePolicies`]).
//!
//! No cargo features yet (PostgreSQL arrives with the multi-node authority).
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
