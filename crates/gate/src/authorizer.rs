//! What every gate asks before it runs an action, as one trait: the exec gate, the MCP gateway
//! and the coding-agent hook each turn what they are about to run into an [`Action`] (DESIGN.md's
//! gate table), ask an [`Authorizer`], run only on [`Permit`], and report the [`Outcome`].
//!
//! The online implementation (request a writ as the agent, verify it locally for exactly this
//! action, consume it at the authority with proof of possession, check the signed answer)
//! lives at the I/O edge, in the `writ` binary; tests use fakes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use writ_core::{Denial, Sha256Digest};

/// One action, exactly as the gate will run it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `exec`, `tools/call`, `Bash`, `Write`, ...
    pub action: String,
    /// The executable's canonical path, `mcp:<server>/<tool>`, `shell:bash`, a file path.
    pub resource: String,
    /// The exact arguments; the writ binds their RFC 8785 digest.
    pub args: Value,
}

/// Leave to run an action once: a writ, verified for it and consumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    /// The compact writ.
    pub writ: String,
    /// Its id.
    pub jti: String,
}

/// What running the action did, for the execution receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status; `None` when ended by a signal or when there is none (a tool call).
    pub exit_status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// SHA-256 of the output (a command's stdout, a tool result's JSON).
    pub stdout_sha256: Sha256Digest,
    /// SHA-256 of the error output (a command's stderr; empty for a tool call).
    pub stderr_sha256: Sha256Digest,
}

/// Why a report could not be delivered (the action already ran; this is logged, not denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt not recorded: {0}")]
pub struct ReportError(pub String);

/// Decides whether an action may run now. Every failure — authority down, a bad writ, a
/// store error, a timeout — is a [`Denial`] with a stable code: a gate never runs on an error.
pub trait Authorizer {
    /// Authorizes and consumes one use of a writ for exactly `action`. `Ok` only when the
    /// action may start now.
    fn authorize(&self, action: &Action) -> Result<Permit, Denial>;

    /// Reports how the permitted action went; the authority logs a signed receipt.
    fn report(&self, permit: &Permit, outcome: &Outcome) -> Result<(), ReportError>;

    /// Whether policy would permit `action` now, without authorizing it: `Some(false)` when
    /// it would deny, `None` when that cannot be known. Only for showing what an agent could
    /// do (a listing); never a reason to run anything.
    fn preview(&self, _action: &Action) -> Option<bool> {
        None
    }
}
