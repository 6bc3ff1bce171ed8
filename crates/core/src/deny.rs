//! Denials: the stable codes of DESIGN.md and the detail that explains one.

use std::borrow::Cow;
use std::fmt;

/// Why a writ was refused. The strings returned by [`DenyCode::as_str`] are a public
/// contract: HTTP bodies, CLI output and log entries carry them.
///
/// Exhaustive on purpose: adding a code must break every `match` in the gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyCode {
    /// No writ was presented.
    MissingAuthorization,
    /// The writ is not a well-formed writ (shape, header, claims, size).
    Malformed,
    /// The header names an algorithm other than EdDSA.
    UnsupportedAlgorithm,
    /// The key id is not in the trusted key set, or the issuer is not the trusted one.
    UnknownKey,
    /// The signature does not verify.
    InvalidSignature,
    /// The writ names another executor.
    AudienceMismatch,
    /// The writ is not valid yet.
    NotYetValid,
    /// The writ has expired.
    Expired,
    /// Action, resource or arguments differ from what the writ authorizes.
    ScopeMismatch,
    /// The policy set that decided is not (or no longer) accepted.
    PolicyMismatch,
    /// The runtime environment differs from the one the writ is bound to.
    EnvironmentIntegrityFailure,
    /// The executor key differs from the one the writ is bound to.
    RuntimeIdentityMismatch,
    /// The delegation chain is broken or exceeds what its parent allowed.
    LineageInconsistency,
    /// The writ, an ancestor, or a principal it names was revoked.
    RevokedAuthorization,
    /// The writ has already been used as often as it allows.
    ReplayDetected,
    /// Replay or revocation state could not be reached.
    StatusUnavailable,
}

impl DenyCode {
    /// Every code, in the order the verifier checks them.
    pub const ALL: [DenyCode; 16] = [
        DenyCode::MissingAuthorization,
        DenyCode::Malformed,
        DenyCode::UnsupportedAlgorithm,
        DenyCode::UnknownKey,
        DenyCode::InvalidSignature,
        DenyCode::AudienceMismatch,
        DenyCode::NotYetValid,
        DenyCode::Expired,
        DenyCode::ScopeMismatch,
        DenyCode::PolicyMismatch,
        DenyCode::EnvironmentIntegrityFailure,
        DenyCode::RuntimeIdentityMismatch,
        DenyCode::LineageInconsistency,
        DenyCode::RevokedAuthorization,
        DenyCode::ReplayDetected,
        DenyCode::StatusUnavailable,
    ];

    /// The code as DESIGN.md spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyCode::MissingAuthorization => "missing_authorization",
            DenyCode::Malformed => "malformed",
            DenyCode::UnsupportedAlgorithm => "unsupported_algorithm",
            DenyCode::UnknownKey => "unknown_key",
            DenyCode::InvalidSignature => "invalid_signature",
            DenyCode::AudienceMismatch => "audience_mismatch",
            DenyCode::NotYetValid => "not_yet_valid",
            DenyCode::Expired => "expired",
            DenyCode::ScopeMismatch => "scope_mismatch",
            DenyCode::PolicyMismatch => "policy_mismatch",
            DenyCode::EnvironmentIntegrityFailure => "environment_integrity_failure",
            DenyCode::RuntimeIdentityMismatch => "runtime_identity_mismatch",
            DenyCode::LineageInconsistency => "lineage_inconsistency",
            DenyCode::RevokedAuthorization => "revoked_authorization",
            DenyCode::ReplayDetected => "replay_detected",
            DenyCode::StatusUnavailable => "status_unavailable",
        }
    }

    /// Parses a code from its DESIGN.md spelling.
    pub fn from_str_code(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

/// A denial: the code and a short human-readable explanation.
///
/// The detail never repeats secret material; it may name claims and expected values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The stable code.
    pub code: DenyCode,
    /// Why, for a human.
    pub detail: Cow<'static, str>,
}

impl Denial {
    /// A denial with `code`, and `detail` for a human.
    pub fn new(code: DenyCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_design_md_says() {
        let expected = [
            "missing_authorization",
            "malformed",
            "unsupported_algorithm",
            "unknown_key",
            "invalid_signature",
            "audience_mismatch",
            "not_yet_valid",
            "expired",
            "scope_mismatch",
            "policy_mismatch",
            "environment_integrity_failure",
            "runtime_identity_mismatch",
            "lineage_inconsistency",
            "revoked_authorization",
            "replay_detected",
            "status_unavailable",
        ];
        let got: Vec<&str> = DenyCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(got, expected);
        for code in DenyCode::ALL {
            assert_eq!(DenyCode::from_str_code(code.as_str()), Some(code));
        }
        assert_eq!(DenyCode::from_str_code("Malformed"), None);
    }
}
