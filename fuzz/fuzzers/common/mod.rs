//! The fixed verifier and gate that the verification targets share (the same issuer key and
//! expectation as `crates/core/tests/support`).

use std::sync::OnceLock;

use serde_json::{json, Value};
use writ_core::{
    Expectation, KeySet, MemoryReplayStore, MemoryRevocations, SigningKey, StateChecks, UnixTime,
    Verdict, Verifier,
};

pub const ISSUER: &str = "https://authority.example";
pub const NOW: UnixTime = UnixTime(1_800_000_000);

pub fn issuer_key() -> SigningKey {
    SigningKey::from_seed(&[0x11; 32])
}

fn fixture() -> &'static (Verifier, Value) {
    static FIXTURE: OnceLock<(Verifier, Value)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut keys = KeySet::new();
        keys.insert(issuer_key().verifying_key()).expect("one key");
        let args = json!({"argv": ["git", "status"], "cwd": "/work", "env": {"PATH": "/usr/bin"}});
        (Verifier::new(ISSUER, keys), args)
    })
}

/// Full verification, consuming against fresh in-memory state. A denial must consume nothing,
/// and a permit must be for this gate, this action and these arguments.
pub fn verify(writ: &str) -> Verdict {
    let (verifier, args) = fixture();
    let expect = Expectation::new("gate-1", "exec", "/usr/bin/git", args);
    let replay = MemoryReplayStore::new();
    let revocation = MemoryRevocations::new();
    let state = StateChecks::Consume {
        revocation: &revocation,
        replay: &replay,
    };
    let verdict = verifier.verify(writ, &expect, NOW, state);
    match &verdict {
        Verdict::Permit(verified) => {
            let claims = verified.claims();
            assert_eq!(claims.iss, ISSUER);
            assert_eq!(claims.aud, "gate-1");
            assert_eq!(
                (claims.scope.action.as_str(), claims.scope.resource.as_str()),
                ("exec", "/usr/bin/git")
            );
            assert_eq!(
                Ok(claims.scope.args_sha256),
                writ_core::canonical::args_digest(args)
            );
            assert!(
                claims.nbf <= NOW.0 + 5 && NOW.0 < claims.exp + 5,
                "permitted outside its lifetime"
            );
            assert_eq!(replay.len(), 1, "a permit consumed nothing");
        }
        Verdict::Deny(_) => assert!(replay.is_empty(), "a denied writ was consumed"),
    }
    verdict
}
