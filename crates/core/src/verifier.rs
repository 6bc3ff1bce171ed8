//! The fail-closed verifier: one entry point, checks in DESIGN.md's order, stateful last.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;

use crate::claims::{Claims, Jti};
use crate::deny::{Denial, DenyCode};
use crate::digest::Sha256Digest;
use crate::jws::{parse_unverified, UnverifiedWrit};
use crate::keys::{KeyId, KeySet};
use crate::state::{Consumed, ReplayStore, RevocationState, RevocationStatus, RevocationSubject};
use crate::time::UnixTime;

/// Clock skew allowed by default, in seconds.
pub const DEFAULT_SKEW_SECS: u64 = 5;
/// The largest clock skew a verifier accepts to be configured with.
pub const MAX_SKEW_SECS: u64 = 300;

/// Tunables of a [`Verifier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierOptions {
    /// Clock skew allowance for `nbf`, `iat` and `exp`, at most [`MAX_SKEW_SECS`].
    pub skew_secs: u64,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            skew_secs: DEFAULT_SKEW_SECS,
        }
    }
}

/// Which policy digests a gate accepts (`policy_mismatch` otherwise).
#[derive(Clone, Copy, Debug)]
pub enum PolicyAcceptance<'a> {
    /// Any digest: the gate does not track policy sets.
    Any,
    /// Only these digests.
    OneOf(&'a [Sha256Digest]),
    /// Any digest but these retired ones.
    AnyExcept(&'a [Sha256Digest]),
}

/// What the gate is about to do, and what it knows about itself: the writ must match it.
#[derive(Clone, Copy, Debug)]
pub struct Expectation<'a> {
    /// The gate's own principal; the writ's `aud` must equal it.
    pub audience: &'a str,
    /// The action about to run.
    pub action: &'a str,
    /// The resource it acts on.
    pub resource: &'a str,
    /// The exact arguments; their canonical digest must equal `scope.args_sha256`.
    pub args: &'a Value,
    /// Digest of the environment as measured now, when the gate has an environment spec.
    /// A writ with `env` is denied when this is `None`, and one without `env` when it is set.
    pub environment: Option<&'a Sha256Digest>,
    /// Key id of the gate's executor key, when it has one. Same rule as `environment`.
    pub executor: Option<&'a KeyId>,
    /// Accepted policy digests.
    pub policy: PolicyAcceptance<'a>,
    /// The writ's ancestors as compact writs, parent first. Empty: only the structure of
    /// `lin` is checked, and its parent and root ids are asked about revocation.
    pub ancestors: &'a [&'a str],
}

impl<'a> Expectation<'a> {
    /// An expectation with no environment, no executor key, any policy and no ancestors.
    pub fn new(audience: &'a str, action: &'a str, resource: &'a str, args: &'a Value) -> Self {
        Self {
            audience,
            action,
            resource,
            args,
            environment: None,
            executor: None,
            policy: PolicyAcceptance::Any,
            ancestors: &[],
        }
    }
}

/// The stateful checks to run after every stateless one has passed.
#[derive(Clone, Copy)]
pub enum StateChecks<'a> {
    /// None: an offline check. Nothing is consumed and revocation is not known.
    Offline,
    /// Revocation only; nothing is consumed.
    Revocation(&'a dyn RevocationStatus),
    /// Revocation, then atomic consumption of one use.
    Consume {
        /// Revocation source.
        revocation: &'a dyn RevocationStatus,
        /// Replay store that records the use.
        replay: &'a dyn ReplayStore,
    },
}

/// A writ that passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedWrit {
    claims: Claims,
    kid: KeyId,
    digest: Sha256Digest,
    remaining_uses: Option<u32>,
}

impl VerifiedWrit {
    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The key that signed it.
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// SHA-256 of the compact writ.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// Uses left after this verification consumed one; `None` when nothing was consumed.
    pub fn remaining_uses(&self) -> Option<u32> {
        self.remaining_uses
    }
}

/// The verifier's answer. There is no third outcome: every error is a denial.
#[derive(Clone, Debug)]
#[must_use]
pub enum Verdict {
    /// Every check passed (and one use was consumed, if asked).
    Permit(Box<VerifiedWrit>),
    /// The first check that failed.
    Deny(Denial),
}

impl Verdict {
    /// The denial code, if denied.
    pub fn deny_code(&self) -> Option<DenyCode> {
        match self {
            Verdict::Permit(_) => None,
            Verdict::Deny(d) => Some(d.code),
        }
    }

    /// Whether every check passed.
    pub fn is_permit(&self) -> bool {
        matches!(self, Verdict::Permit(_))
    }
}

/// Verifies writs from one trusted issuer.
#[derive(Clone, Debug)]
pub struct Verifier {
    issuer: String,
    keys: KeySet,
    options: VerifierOptions,
}

impl Verifier {
    /// A verifier trusting `keys` for writs whose `iss` is `issuer`.
    pub fn new(issuer: impl Into<String>, keys: KeySet) -> Self {
        Self {
            issuer: issuer.into(),
            keys,
            options: VerifierOptions::default(),
        }
    }

    /// Sets the options; a skew above [`MAX_SKEW_SECS`] is refused.
    pub fn with_options(mut self, options: VerifierOptions) -> Option<Self> {
        if options.skew_secs > MAX_SKEW_SECS {
            return None;
        }
        self.options = options;
        Some(self)
    }

    /// The trusted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `writ` for `expect` at `now`, then runs `state`'s checks. The first failing
    /// check, in DESIGN.md's order, names the denial; a writ that fails any earlier check is
    /// never consumed.
    pub fn verify(
        &self,
        writ: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
        state: StateChecks<'_>,
    ) -> Verdict {
        match self.verify_inner(writ, expect, now, state) {
            Ok(verified) => Verdict::Permit(Box::new(verified)),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    fn verify_inner(
        &self,
        writ: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
        state: StateChecks<'_>,
    ) -> Result<VerifiedWrit, Denial> {
        let unverified = self.authenticate(writ)?;
        let kid = KeyId::new(unverified.kid());
        let digest = unverified.digest();
        let claims = unverified.into_claims();

        if claims.aud != expect.audience {
            return Err(Denial::new(
                DenyCode::AudienceMismatch,
                format!(
                    "writ is for `{}`, this gate is `{}`",
                    short(&claims.aud),
                    expect.audience
                ),
            ));
        }
        self.check_time(&claims, now)?;
        check_scope(&claims, expect)?;
        check_policy(&claims, expect.policy)?;
        check_binding(
            claims.env.as_ref(),
            expect.environment,
            DenyCode::EnvironmentIntegrityFailure,
            "environment",
        )?;
        check_binding(
            claims.cnf.as_ref().map(|c| &c.jkt),
            expect.executor,
            DenyCode::RuntimeIdentityMismatch,
            "executor key",
        )?;
        let ancestors = self.check_lineage(&claims, expect.ancestors, now)?;

        let subject = RevocationSubject {
            jti: &claims.jti,
            ancestors: &ancestors,
            principals: [&claims.sub, &claims.aud],
        };
        let remaining_uses = match state {
            StateChecks::Offline => None,
            StateChecks::Revocation(revocation) => {
                check_revocation(revocation, &subject)?;
                None
            }
            StateChecks::Consume { revocation, replay } => {
                check_revocation(revocation, &subject)?;
                let keep_until = UnixTime(claims.exp.saturating_add(self.options.skew_secs));
                Some(consume(replay, &claims, keep_until, &subject)?)
            }
        };
        Ok(VerifiedWrit {
            claims,
            kid,
            digest,
            remaining_uses,
        })
    }

    /// Presence, shape, header, key, signature and issuer: everything that makes a string a
    /// writ this verifier's issuer signed.
    pub(crate) fn authenticate<'w>(&self, writ: &'w str) -> Result<UnverifiedWrit<'w>, Denial> {
        let unverified = parse_unverified(writ)?;
        let Some(key) = self.keys.get(unverified.kid()) else {
            return Err(Denial::new(
                DenyCode::UnknownKey,
                format!("key `{}` is not trusted", short(unverified.kid())),
            ));
        };
        if !key.verify(unverified.signing_input(), unverified.signature()) {
            return Err(Denial::new(
                DenyCode::InvalidSignature,
                "signature does not verify",
            ));
        }
        if unverified.claims().iss != self.issuer {
            return Err(Denial::new(
                DenyCode::UnknownKey,
                format!(
                    "issuer `{}` is not the trusted `{}`",
                    short(&unverified.claims().iss),
                    self.issuer
                ),
            ));
        }
        Ok(unverified)
    }

    pub(crate) fn check_time(&self, claims: &Claims, now: UnixTime) -> Result<(), Denial> {
        let skew = self.options.skew_secs;
        let now = now.as_secs();
        if claims.nbf > now.saturating_add(skew) || claims.iat > now.saturating_add(skew) {
            return Err(Denial::new(
                DenyCode::NotYetValid,
                format!("valid from {}, now is {now}", claims.nbf.max(claims.iat)),
            ));
        }
        if now >= claims.exp.saturating_add(skew) {
            return Err(Denial::new(
                DenyCode::Expired,
                format!("expired at {}, now is {now}", claims.exp),
            ));
        }
        Ok(())
    }

    fn check_lineage(
        &self,
        claims: &Claims,
        ancestors: &[&str],
        now: UnixTime,
    ) -> Result<Vec<Jti>, Denial> {
        crate::lineage::check(self, claims, ancestors, now)
    }
}

fn check_scope(claims: &Claims, expect: &Expectation<'_>) -> Result<(), Denial> {
    let scope = &claims.scope;
    if scope.action != expect.action {
        return Err(Denial::new(
            DenyCode::ScopeMismatch,
            format!(
                "writ authorizes action `{}`, not `{}`",
                short(&scope.action),
                short(expect.action)
            ),
        ));
    }
    if scope.resource != expect.resource {
        return Err(Denial::new(
            DenyCode::ScopeMismatch,
            format!(
                "writ authorizes resource `{}`, not `{}`",
                short(&scope.resource),
                short(expect.resource)
            ),
        ));
    }
    match crate::canonical::args_digest(expect.args) {
        Ok(digest) if digest == scope.args_sha256 => Ok(()),
        Ok(digest) => Err(Denial::new(
            DenyCode::ScopeMismatch,
            format!(
                "arguments digest `{digest}` is not the authorized `{}`",
                scope.args_sha256
            ),
        )),
        Err(e) => Err(Denial::new(
            DenyCode::ScopeMismatch,
            format!("arguments: {e}"),
        )),
    }
}

fn check_policy(claims: &Claims, accepted: PolicyAcceptance<'_>) -> Result<(), Denial> {
    let digest = &claims.pol.digest;
    let ok = match accepted {
        PolicyAcceptance::Any => true,
        PolicyAcceptance::OneOf(digests) => digests.contains(digest),
        PolicyAcceptance::AnyExcept(retired) => !retired.contains(digest),
    };
    if ok {
        Ok(())
    } else {
        Err(Denial::new(
            DenyCode::PolicyMismatch,
            format!("policy set `{digest}` is not accepted"),
        ))
    }
}

/// A binding in the writ and the gate's local value must both be absent or both equal.
fn check_binding<T: PartialEq + std::fmt::Display>(
    in_writ: Option<&T>,
    local: Option<&T>,
    code: DenyCode,
    what: &'static str,
) -> Result<(), Denial> {
    match (in_writ, local) {
        (None, None) => Ok(()),
        (Some(bound), Some(local)) if bound == local => Ok(()),
        (Some(bound), Some(local)) => Err(Denial::new(
            code,
            format!("writ is bound to {what} `{bound}`, this gate has `{local}`"),
        )),
        (Some(bound), None) => Err(Denial::new(
            code,
            format!("writ is bound to {what} `{bound}`, which this gate cannot check"),
        )),
        (None, Some(_)) => Err(Denial::new(
            code,
            format!("this gate requires a writ bound to its {what}; the writ has none"),
        )),
    }
}

fn check_revocation(
    revocation: &dyn RevocationStatus,
    subject: &RevocationSubject<'_>,
) -> Result<(), Denial> {
    match catch_unwind(AssertUnwindSafe(|| revocation.check(subject))) {
        Ok(Ok(RevocationState::Valid)) => Ok(()),
        Ok(Ok(RevocationState::Revoked(what))) => Err(Denial::new(
            DenyCode::RevokedAuthorization,
            format!("{what} is revoked"),
        )),
        Ok(Err(e)) => Err(Denial::new(DenyCode::StatusUnavailable, e.to_string())),
        Err(_) => Err(Denial::new(
            DenyCode::StatusUnavailable,
            "revocation source failed",
        )),
    }
}

fn consume(
    replay: &dyn ReplayStore,
    claims: &Claims,
    keep_until: UnixTime,
    subject: &RevocationSubject<'_>,
) -> Result<u32, Denial> {
    match catch_unwind(AssertUnwindSafe(|| {
        replay.consume(&claims.jti, claims.uses, keep_until, subject)
    })) {
        Ok(Ok(Consumed::Fresh { remaining })) => Ok(remaining),
        Ok(Ok(Consumed::Exhausted)) => Err(Denial::new(
            DenyCode::ReplayDetected,
            format!(
                "writ `{}` has been used {} time(s) already",
                claims.jti, claims.uses
            ),
        )),
        Ok(Ok(Consumed::Revoked)) => Err(Denial::new(
            DenyCode::RevokedAuthorization,
            "writ was revoked before it could be consumed",
        )),
        Ok(Err(e)) => Err(Denial::new(DenyCode::StatusUnavailable, e.to_string())),
        Err(_) => Err(Denial::new(
            DenyCode::StatusUnavailable,
            "replay store failed",
        )),
    }
}

/// Attacker-chosen text in a detail is kept short.
pub(crate) fn short(text: &str) -> String {
    if text.chars().count() <= 64 {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(61).collect();
        s.push_str("...");
        s
    }
}
