//! writ-core owns the writ: the signed, short-lived, single-use authorization artifact that
//! writ's authority issues and its gates honour.
//!
//! It holds the format (a JWS compact serialization, EdDSA over Ed25519 only, see
//! [`Claims`]), keys and key ids ([`SigningKey`], [`VerifyingKey`], [`KeyId`], [`KeySet`]),
//! RFC 8785 canonical JSON ([`canonical`]), the environment measurement format
//! ([`Measurement`]), the delegation rules, and the fail-closed [`Verifier`], which turns
//! every failure into a [`Verdict::Deny`] carrying a stable [`DenyCode`].
//!
//! The crate is pure: it reads no files, clock or network. Time comes in as [`UnixTime`],
//! randomness as bytes, and state through the [`ReplayStore`] and [`RevocationStatus`]
//! traits (in-memory versions: [`MemoryReplayStore`], [`MemoryRevocations`]). Durable stores
//! live in `writ-store`; measuring a real machine lives in `writ-gate`; most programs want the
//! `writ` command line instead.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod approval;
pub mod canonical;
mod claims;
mod deny;
mod digest;
mod env;
mod error;
mod jws;
mod keys;
mod lineage;
mod pattern;
mod pop;
mod receipt;
mod state;
mod time;
mod verifier;

pub use approval::{
    ApprovalError, ApprovalObject, ApprovalVerdict, RequestTerms, APPROVAL_TYPE, REJECTION_TYPE,
};
pub use claims::{
    Approval, Claims, Confirmation, Delegation, Governance, Jti, Lineage, PolicyRef, Scope,
};
pub use deny::{Denial, DenyCode};
pub use digest::Sha256Digest;
pub use env::{MeasuredFile, Measurement};
pub use error::{Error, KeyError, WritError};
pub use jws::{parse_unverified, sign, UnverifiedWrit, MAX_WRIT_LEN, WRIT_TYP};
pub use keys::{Jwk, KeyId, KeySet, SigningKey, VerifyingKey};
pub use pattern::Pattern;
pub use pop::{
    sign_answer, sign_pop, verify_answer, verify_pop, ConsumeAnswer, PopClaims, CONSUMED_TYP,
    POP_TYP,
};
pub use receipt::{sign_receipt, verify_receipt, Receipt, ReceiptError, RECEIPT_TYP};
pub use state::{
    Consumed, MemoryReplayStore, MemoryRevocations, ReplayStore, RevocationState, RevocationStatus,
    RevocationSubject, StateError,
};
pub use time::UnixTime;
pub use verifier::{
    Expectation, PolicyAcceptance, StateChecks, Verdict, VerifiedWrit, Verifier, VerifierOptions,
    DEFAULT_SKEW_SECS, MAX_SKEW_SECS,
};

/// Entry points for fuzzing and benchmarks; not a stable interface.
#[doc(hidden)]
pub mod internal {
    pub use crate::jws::parse_unverified;
}
