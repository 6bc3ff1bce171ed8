//! Interoperability: writs made by other JOSE implementations verify (or are refused) here,
//! and writs made here verify with other JOSE implementations.
//!
//! - `pyjwt_writs.json` was made once by PyJWT (`testdata/interop/generate_pyjwt.py`).
//! - The `jsonwebtoken` crate verifies writs from `writ_core::sign`.
//! - `writ_core_writ.json` is a writ made here, for `verify_with_pyjwt.py` to check.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{
    decode, decode_header, errors::ErrorKind, jwk, Algorithm, DecodingKey, Validation,
};
use serde_json::{json, Value};
use writ_core::{
    canonical, sign, Claims, Expectation, Jti, KeySet, PolicyRef, Scope, Sha256Digest, SigningKey,
    StateChecks, UnixTime, Verdict, Verifier, WRIT_TYP,
};

use crate::support::*;

const PYJWT_WRITS: &str = include_str!("../../../testdata/interop/pyjwt_writs.json");
const WRIT_CORE_WRIT: &str = include_str!("../../../testdata/interop/writ_core_writ.json");

fn str_of<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
}

/// Runs a fixture's expectation (`{audience, action, resource, args, now}`) offline.
fn verify_offline(verifier: &Verifier, writ: &str, expect: &Value) -> Verdict {
    let args = &expect["args"];
    let expectation = Expectation::new(
        str_of(expect, "audience"),
        str_of(expect, "action"),
        str_of(expect, "resource"),
        args,
    );
    let now = UnixTime(expect["now"].as_u64().expect("`now` is seconds"));
    verifier.verify(writ, &expectation, now, StateChecks::Offline)
}

#[test]
fn pyjwt_writs_get_the_recorded_decision() {
    let doc: Value = serde_json::from_str(PYJWT_WRITS).unwrap();
    let keys = KeySet::from_jwks_json(&doc["jwks"].to_string()).expect("PyJWT fixture JWKS");
    let verifier = Verifier::new(str_of(&doc, "issuer"), keys);

    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 5, "the fixture lost cases");
    let mut permits = 0;
    for case in cases {
        let description = str_of(case, "description");
        let verdict = verify_offline(&verifier, str_of(case, "writ"), &case["expect"]);
        match str_of(case, "decision") {
            "permit" => {
                permits += 1;
                let Verdict::Permit(verified) = &verdict else {
                    panic!("{description}: expected permit, got {verdict:?}");
                };
                assert!(
                    case["code"].is_null(),
                    "{description}: a permit has no code"
                );
                assert_eq!(
                    verified.claims().iss,
                    str_of(&doc, "issuer"),
                    "{description}"
                );
            }
            "deny" => {
                let code = verdict.deny_code().map(|c| c.as_str());
                assert_eq!(code, case["code"].as_str(), "{description}: {verdict:?}");
            }
            other => panic!("{description}: unknown decision `{other}`"),
        }
    }
    assert!(permits >= 1, "the fixture has no valid writ");
}

/// Claims valid now by the wall clock, since jsonwebtoken checks `exp` and `nbf` against it.
fn claims_valid_now() -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Claims {
        iat: now,
        nbf: now,
        exp: now + 60,
        ..claims()
    }
}

fn jsonwebtoken_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "nbf"]);
    validation.validate_nbf = true;
    validation.leeway = writ_core::DEFAULT_SKEW_SECS;
    validation
}

#[test]
fn jsonwebtoken_verifies_writs_signed_by_writ_core() {
    let key = issuer_key();
    let claims = claims_valid_now();
    let writ = sign(&claims, &key).unwrap();

    // The public JWK exactly as writ publishes it.
    let jwk_json = serde_json::to_string(&key.verifying_key().to_jwk()).unwrap();
    let jwk: jwk::Jwk = serde_json::from_str(&jwk_json).expect("jsonwebtoken reads writ's JWK");
    let decoding_key = DecodingKey::from_jwk(&jwk).unwrap();

    let header = decode_header(&writ).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some(WRIT_TYP));
    assert_eq!(header.kid.as_deref(), Some(key.kid().as_str()));
    assert!(header.extras.is_empty(), "{:?}", header.extras);

    let validation = jsonwebtoken_validation();
    let typed = decode::<Claims>(&writ, &decoding_key, &validation).expect("jsonwebtoken verifies");
    assert_eq!(typed.claims, claims);
    let untyped = decode::<Value>(&writ, &decoding_key, &validation).unwrap();
    assert_eq!(untyped.claims, serde_json::to_value(&claims).unwrap());

    // And writ's own verifier agrees.
    let args = args();
    let now = UnixTime(claims.iat);
    assert!(verifier()
        .verify(&writ, &expectation(&args), now, StateChecks::Offline)
        .is_permit());
}

#[test]
fn jsonwebtoken_finds_the_key_in_writs_jwks_by_kid() {
    let key = issuer_key();
    let mut keys = KeySet::new();
    keys.insert(key.verifying_key()).unwrap();
    keys.insert(untrusted_key().verifying_key()).unwrap();
    let set: jwk::JwkSet = serde_json::from_str(&keys.to_jwks_json()).unwrap();

    let writ = sign(&claims_valid_now(), &key).unwrap();
    let kid = decode_header(&writ).unwrap().kid.unwrap();
    let jwk = set
        .find(&kid)
        .expect("the writ's kid names a key in the set");
    let decoding_key = DecodingKey::from_jwk(jwk).unwrap();
    decode::<Claims>(&writ, &decoding_key, &jsonwebtoken_validation()).unwrap();
}

#[test]
fn jsonwebtoken_refuses_what_it_should() {
    let validation = jsonwebtoken_validation();
    let claims = claims_valid_now();
    let writ = sign(&claims, &issuer_key()).unwrap();
    let other = untrusted_key().verifying_key().to_jwk();
    let wrong_key = DecodingKey::from_ed_components(&other.x).unwrap();
    let err = decode::<Claims>(&writ, &wrong_key, &validation).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSignature);

    let right_key =
        DecodingKey::from_ed_components(&issuer_key().verifying_key().to_jwk().x).unwrap();
    let other_gate = Claims {
        aud: "gate-2".into(),
        ..claims.clone()
    };
    let err = decode::<Claims>(
        &sign(&other_gate, &issuer_key()).unwrap(),
        &right_key,
        &validation,
    )
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidAudience);

    let expired = Claims {
        iat: 1_000,
        nbf: 1_000,
        exp: 1_060,
        ..claims
    };
    let err = decode::<Claims>(
        &sign(&expired, &issuer_key()).unwrap(),
        &right_key,
        &validation,
    )
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ExpiredSignature);
}

/// The writ in `writ_core_writ.json`: fixed key, fixed claims, deterministic Ed25519, so the
/// committed file is exactly what `sign` makes. Kept apart from `support` so that only a
/// change of the wire format changes it.
fn writ_core_fixture() -> Value {
    let key = SigningKey::from_seed(&[0x5a; 32]);
    let args = json!({"argv": ["git", "status", "--short"], "cwd": "/work", "timeout": 30});
    let now = 1_800_000_000;
    let claims = Claims {
        iss: "https://authority.example".into(),
        sub: "build-agent".into(),
        aud: "gate-1".into(),
        iat: now,
        nbf: now,
        exp: now + 60,
        jti: Jti::from_bytes(*b"writ-core-interp"),
        scope: Scope {
            action: "exec".into(),
            resource: "/usr/bin/git".into(),
            args_sha256: canonical::args_digest(&args).unwrap(),
        },
        pol: PolicyRef {
            digest: Sha256Digest::of(b"policy set v1"),
            ids: vec!["allow-git".into()],
        },
        uses: 1,
        cnf: None,
        env: None,
        lin: None,
        del: None,
        gov: None,
    };
    let mut keys = KeySet::new();
    keys.insert(key.verifying_key()).unwrap();
    json!({
        "description": "a writ signed by writ_core::sign; testdata/interop/verify_with_pyjwt.py checks it with PyJWT",
        "issuer": claims.iss,
        "jwks": serde_json::from_str::<Value>(&keys.to_jwks_json()).unwrap(),
        "writ": sign(&claims, &key).unwrap(),
        "claims": claims,
        "expect": {
            "audience": claims.aud,
            "action": claims.scope.action,
            "resource": claims.scope.resource,
            "args": args,
            "now": now,
        },
    })
}

#[test]
fn writ_core_fixture_for_pyjwt_is_current() {
    let fresh = writ_core_fixture();
    let committed: Value = serde_json::from_str(WRIT_CORE_WRIT).unwrap();
    assert!(
        committed == fresh,
        "testdata/interop/writ_core_writ.json is stale; replace it with:\n{}",
        serde_json::to_string_pretty(&fresh).unwrap()
    );
    let keys = KeySet::from_jwks_json(&committed["jwks"].to_string()).unwrap();
    let verifier = Verifier::new(str_of(&committed, "issuer"), keys);
    let verdict = verify_offline(&verifier, str_of(&committed, "writ"), &committed["expect"]);
    assert!(verdict.is_permit(), "{verdict:?}");
}
