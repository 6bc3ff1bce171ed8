//! Shared fixtures: a trusted issuer, a well-formed writ, and helpers to vary it.
#![allow(dead_code)]

use serde_json::{json, Value};
use writ_core::{
    canonical, sign, Claims, Expectation, Jti, KeySet, PolicyRef, Scope, Sha256Digest, SigningKey,
    UnixTime, Verifier,
};

pub const ISSUER: &str = "https://authority.example";
pub const AUDIENCE: &str = "gate-1";
pub const ACTION: &str = "exec";
pub const RESOURCE: &str = "/usr/bin/git";
pub const NOW: UnixTime = UnixTime(1_800_000_000);

/// The issuer's signing key (fixed seed, so failures reproduce).
pub fn issuer_key() -> SigningKey {
    SigningKey::from_seed(&[0x11; 32])
}

/// A key nobody trusts.
pub fn untrusted_key() -> SigningKey {
    SigningKey::from_seed(&[0x66; 32])
}

pub fn policy_digest() -> Sha256Digest {
    Sha256Digest::of(b"policy set v1")
}

pub fn args() -> Value {
    json!({"argv": ["git", "status"], "cwd": "/work", "env": {"PATH": "/usr/bin"}})
}

/// Claims of a valid single-use writ for `args()`, issued at `NOW`.
pub fn claims() -> Claims {
    claims_for(&args())
}

pub fn claims_for(args: &Value) -> Claims {
    Claims {
        iss: ISSUER.into(),
        sub: "build-agent".into(),
        aud: AUDIENCE.into(),
        iat: NOW.0,
        nbf: NOW.0,
        exp: NOW.0 + 60,
        jti: Jti::from_bytes([0x42; 16]),
        scope: Scope {
            action: ACTION.into(),
            resource: RESOURCE.into(),
            args_sha256: canonical::args_digest(args).expect("fixture args are exact"),
        },
        pol: PolicyRef {
            digest: policy_digest(),
            ids: vec!["allow-git".into()],
        },
        uses: 1,
        cnf: None,
        env: None,
        lin: None,
        del: None,
        gov: None,
    }
}

pub fn signed(claims: &Claims) -> String {
    sign(claims, &issuer_key()).expect("fixture claims are valid")
}

pub fn verifier() -> Verifier {
    let mut keys = KeySet::new();
    keys.insert(issuer_key().verifying_key()).expect("one key");
    Verifier::new(ISSUER, keys)
}

/// The expectation that `claims()` satisfies.
pub fn expectation(args: &Value) -> Expectation<'_> {
    Expectation::new(AUDIENCE, ACTION, RESOURCE, args)
}

/// A JWS built by hand from raw header and payload JSON, signed by `key`: for tokens that
/// `sign` refuses to make.
pub fn jws(header: &str, payload: &str, key: &SigningKey) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The header `sign` writes, for `key`.
pub fn header_for(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}"}}"#,
        key.kid()
    )
}

/// The payload JSON of `claims()` as text, for hand edits.
pub fn payload_text(claims: &Claims) -> String {
    serde_json::to_string(claims).expect("claims serialize")
}
