//! The verifier through its public interface: every denial code, the check order, and the
//! rule that a writ failing an earlier check is never consumed.

use serde_json::{json, Value};
use writ_core::{
    canonical, Confirmation, Consumed, Delegation, DenyCode, Expectation, Jti, Lineage,
    MemoryReplayStore, MemoryRevocations, PolicyAcceptance, ReplayStore, RevocationState,
    RevocationStatus, RevocationSubject, Sha256Digest, SigningKey, StateChecks, StateError,
    UnixTime, Verdict, VerifierOptions, MAX_WRIT_LEN,
};

use crate::support::*;

fn offline(writ: &str) -> Verdict {
    let args = args();
    verifier().verify(writ, &expectation(&args), NOW, StateChecks::Offline)
}

fn code(verdict: &Verdict) -> Option<DenyCode> {
    verdict.deny_code()
}

#[test]
fn valid_writ_is_permitted_with_its_claims() {
    let claims = claims();
    let writ = signed(&claims);
    let Verdict::Permit(verified) = offline(&writ) else {
        panic!("denied")
    };
    assert_eq!(verified.claims(), &claims);
    assert_eq!(verified.kid(), issuer_key().kid());
    assert_eq!(verified.digest(), Sha256Digest::of(writ.as_bytes()));
    assert_eq!(verified.remaining_uses(), None);
}

#[test]
fn missing_authorization() {
    assert_eq!(code(&offline("")), Some(DenyCode::MissingAuthorization));
}

#[test]
fn malformed_shapes() {
    let key = issuer_key();
    let good = signed(&claims());
    let payload = payload_text(&claims());
    let cases: Vec<(&str, String)> = vec![
        ("one part", "abc".into()),
        ("two parts", "abc.def".into()),
        ("four parts", format!("{good}.x")),
        ("padding", good.replacen('.', "=.", 1)),
        ("not base64", format!("!!{good}")),
        ("oversize", "a".repeat(MAX_WRIT_LEN + 1)),
        ("header not JSON", jws("{", &payload, &key)),
        ("header array", jws("[]", &payload, &key)),
        (
            "crit",
            jws(
                &format!(
                    r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}","crit":["exp"]}}"#,
                    key.kid()
                ),
                &payload,
                &key,
            ),
        ),
        (
            "jwk in header",
            jws(
                &format!(
                    r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}","jwk":{{}}}}"#,
                    key.kid()
                ),
                &payload,
                &key,
            ),
        ),
        (
            "jku",
            jws(
                &format!(
                    r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}","jku":"https://x"}}"#,
                    key.kid()
                ),
                &payload,
                &key,
            ),
        ),
        (
            "x5c",
            jws(
                &format!(
                    r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}","x5c":[]}}"#,
                    key.kid()
                ),
                &payload,
                &key,
            ),
        ),
        (
            "typ JWT",
            jws(
                &format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, key.kid()),
                &payload,
                &key,
            ),
        ),
        (
            "no typ",
            jws(
                &format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key.kid()),
                &payload,
                &key,
            ),
        ),
        (
            "no kid",
            jws(r#"{"alg":"EdDSA","typ":"writ+jwt"}"#, &payload, &key),
        ),
        (
            "no alg",
            jws(
                &format!(r#"{{"typ":"writ+jwt","kid":"{}"}}"#, key.kid()),
                &payload,
                &key,
            ),
        ),
        (
            "duplicate header key",
            jws(
                &format!(
                    r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{0}","kid":"{0}"}}"#,
                    key.kid()
                ),
                &payload,
                &key,
            ),
        ),
        (
            "duplicate claim",
            jws(
                &header_for(&key),
                &payload.replacen("{", r#"{"sub":"root","#, 1),
                &key,
            ),
        ),
        (
            "missing exp",
            jws(
                &header_for(&key),
                &payload.replace(&format!(r#""exp":{},"#, NOW.0 + 60), ""),
                &key,
            ),
        ),
        (
            "unknown claim",
            jws(
                &header_for(&key),
                &payload.replacen("{", r#"{"admin":true,"#, 1),
                &key,
            ),
        ),
        (
            "uses 0",
            jws(
                &header_for(&key),
                &payload.replace(r#""uses":1"#, r#""uses":0"#),
                &key,
            ),
        ),
        (
            "uppercase digest",
            jws(
                &header_for(&key),
                &payload.replace(
                    &claims().scope.args_sha256.to_hex(),
                    &claims().scope.args_sha256.to_hex().to_uppercase(),
                ),
                &key,
            ),
        ),
        ("short signature", good[..good.len() - 4].to_string()),
        ("claims not JSON", jws(&header_for(&key), "not json", &key)),
        (
            "aud array",
            jws(
                &header_for(&key),
                &payload.replace(r#""aud":"gate-1""#, r#""aud":["gate-1"]"#),
                &key,
            ),
        ),
    ];
    for (name, writ) in cases {
        assert_eq!(code(&offline(&writ)), Some(DenyCode::Malformed), "{name}");
    }
    // The hand-built JWS helper itself yields a valid writ when nothing is changed.
    assert!(offline(&jws(&header_for(&key), &payload, &key)).is_permit());
}

#[test]
fn unsupported_algorithm() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let key = issuer_key();
    let payload = URL_SAFE_NO_PAD.encode(payload_text(&claims()));
    // alg none: no signature at all.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"writ+jwt"}"#);
    assert_eq!(
        code(&offline(&format!("{header}.{payload}."))),
        Some(DenyCode::UnsupportedAlgorithm)
    );
    // HS256 keyed with the issuer's public key: the classic algorithm confusion.
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"HS256","typ":"writ+jwt","kid":"{}"}}"#,
        key.kid()
    ));
    let fake = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
    assert_eq!(code(&offline(&fake)), Some(DenyCode::UnsupportedAlgorithm));
    // Names that look close are still not EdDSA.
    for alg in ["eddsa", "Ed25519", "ES256", "RS256", ""] {
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"{alg}","typ":"writ+jwt","kid":"{}"}}"#,
            key.kid()
        ));
        let writ = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert_eq!(
            code(&offline(&writ)),
            Some(DenyCode::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn unknown_key_and_untrusted_issuer() {
    let stranger = untrusted_key();
    let writ = writ_core::sign(&claims(), &stranger).unwrap();
    assert_eq!(code(&offline(&writ)), Some(DenyCode::UnknownKey));

    let mut other_issuer = claims();
    other_issuer.iss = "https://evil.example".into();
    assert_eq!(
        code(&offline(&signed(&other_issuer))),
        Some(DenyCode::UnknownKey)
    );
}

#[test]
fn invalid_signature() {
    // Signed by a stranger under the trusted key's id.
    let forged = jws(
        &header_for(&issuer_key()),
        &payload_text(&claims()),
        &untrusted_key(),
    );
    assert_eq!(code(&offline(&forged)), Some(DenyCode::InvalidSignature));
    // A valid signature moved onto other claims.
    let good = signed(&claims());
    let mut other = claims();
    other.sub = "someone-else".into();
    let other = signed(&other);
    let spliced = format!(
        "{}.{}",
        &other[..other.rfind('.').unwrap()],
        good.rsplit('.').next().unwrap()
    );
    assert_eq!(code(&offline(&spliced)), Some(DenyCode::InvalidSignature));
}

#[test]
fn audience_mismatch() {
    let mut c = claims();
    c.aud = "gate-2".into();
    assert_eq!(
        code(&offline(&signed(&c))),
        Some(DenyCode::AudienceMismatch)
    );
}

#[test]
fn time_window_with_bounded_skew() {
    let writ = signed(&claims());
    let args = args();
    let at = |t: u64| {
        verifier().verify(
            &writ,
            &expectation(&args),
            UnixTime(t),
            StateChecks::Offline,
        )
    };
    // nbf = NOW, exp = NOW + 60, skew 5 s.
    assert_eq!(code(&at(NOW.0 - 6)), Some(DenyCode::NotYetValid));
    assert!(at(NOW.0 - 5).is_permit());
    assert!(at(NOW.0 + 64).is_permit());
    assert_eq!(code(&at(NOW.0 + 65)), Some(DenyCode::Expired));
    assert_eq!(code(&at(u64::MAX)), Some(DenyCode::Expired));

    let strict = verifier()
        .with_options(VerifierOptions { skew_secs: 0 })
        .unwrap();
    let verdict = strict.verify(
        &writ,
        &expectation(&args),
        UnixTime(NOW.0 + 60),
        StateChecks::Offline,
    );
    assert_eq!(code(&verdict), Some(DenyCode::Expired));
    assert!(verifier()
        .with_options(VerifierOptions { skew_secs: 301 })
        .is_none());

    // An `iat` in the future is not trusted either.
    let mut c = claims();
    c.iat = NOW.0 + 30;
    assert_eq!(code(&offline(&signed(&c))), Some(DenyCode::NotYetValid));
}

#[test]
fn scope_mismatch_on_action_resource_and_arguments() {
    let writ = signed(&claims());
    let args = args();
    let v = verifier();
    let mut expect = expectation(&args);
    expect.action = "tools/call";
    assert_eq!(
        code(&v.verify(&writ, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::ScopeMismatch)
    );
    let mut expect = expectation(&args);
    expect.resource = "/usr/bin/rm";
    assert_eq!(
        code(&v.verify(&writ, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::ScopeMismatch)
    );

    let other = json!({"argv": ["git", "push"], "cwd": "/work", "env": {"PATH": "/usr/bin"}});
    assert_eq!(
        code(&v.verify(&writ, &expectation(&other), NOW, StateChecks::Offline)),
        Some(DenyCode::ScopeMismatch)
    );
    // Same arguments in another key order are the same arguments.
    let reordered: Value = canonical::parse_strict(
        r#"{"env":{"PATH":"/usr/bin"},"cwd":"/work","argv":["git","status"]}"#,
    )
    .unwrap();
    assert!(v
        .verify(&writ, &expectation(&reordered), NOW, StateChecks::Offline)
        .is_permit());
    // Arguments that RFC 8785 cannot carry exactly never match.
    let inexact = canonical::parse_strict(r#"{"amount":9007199254740993}"#).unwrap();
    assert_eq!(
        code(&v.verify(&writ, &expectation(&inexact), NOW, StateChecks::Offline)),
        Some(DenyCode::ScopeMismatch)
    );
}

#[test]
fn amounts_are_bound_exactly() {
    let pay = json!({"payee": "acme", "amount": 25000});
    let writ = signed(&claims_for(&pay));
    let v = verifier();
    assert!(v
        .verify(&writ, &expectation(&pay), NOW, StateChecks::Offline)
        .is_permit());
    let more = json!({"payee": "acme", "amount": 25001});
    assert_eq!(
        code(&v.verify(&writ, &expectation(&more), NOW, StateChecks::Offline)),
        Some(DenyCode::ScopeMismatch)
    );
}

#[test]
fn policy_mismatch() {
    let writ = signed(&claims());
    let args = args();
    let v = verifier();
    let retired = [policy_digest()];
    let mut expect = expectation(&args);
    expect.policy = PolicyAcceptance::AnyExcept(&retired);
    assert_eq!(
        code(&v.verify(&writ, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::PolicyMismatch)
    );
    let current = [Sha256Digest::of(b"policy set v2")];
    expect.policy = PolicyAcceptance::OneOf(&current);
    assert_eq!(
        code(&v.verify(&writ, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::PolicyMismatch)
    );
    let both = [Sha256Digest::of(b"policy set v2"), policy_digest()];
    expect.policy = PolicyAcceptance::OneOf(&both);
    assert!(v
        .verify(&writ, &expect, NOW, StateChecks::Offline)
        .is_permit());
}

/// A binding holds both ways: a writ bound to `right` permits where the gate has `right`, and
/// is denied with `code` where the gate has `other` or nothing; an unbound writ is denied
/// where the gate has `right`.
fn assert_binding<T>(
    bind: fn(&mut writ_core::Claims, &T),
    set: for<'e> fn(&mut Expectation<'e>, &'e T),
    right: &T,
    other: &T,
    code: DenyCode,
) {
    let mut bound = claims();
    bind(&mut bound, right);
    let bound = signed(&bound);
    let unbound = signed(&claims());
    let args = args();
    let v = verifier();
    let verdict = |writ: &str, value: Option<&T>| {
        let mut e = expectation(&args);
        if let Some(value) = value {
            set(&mut e, value);
        }
        v.verify(writ, &e, NOW, StateChecks::Offline)
    };
    assert!(verdict(&bound, Some(right)).is_permit());
    assert_eq!(verdict(&bound, Some(other)).deny_code(), Some(code));
    assert_eq!(verdict(&bound, None).deny_code(), Some(code));
    assert_eq!(verdict(&unbound, Some(right)).deny_code(), Some(code));
}

#[test]
fn environment_binding_both_ways() {
    assert_binding(
        |c, d| c.env = Some(*d),
        |e, d| e.environment = Some(d),
        &Sha256Digest::of(b"measurement A"),
        &Sha256Digest::of(b"measurement B"),
        DenyCode::EnvironmentIntegrityFailure,
    );
}

#[test]
fn runtime_identity_binding_both_ways() {
    assert_binding(
        |c, k: &SigningKey| {
            c.cnf = Some(Confirmation {
                jkt: k.kid().clone(),
            })
        },
        |e, k| e.executor = Some(k.kid()),
        &SigningKey::from_seed(&[0x33; 32]),
        &SigningKey::from_seed(&[0x44; 32]),
        DenyCode::RuntimeIdentityMismatch,
    );
}

/// A root writ that may delegate `repo.test` and `repo.lint` on `git:org/*` to depth 2, and
/// one child of it.
fn delegation_tree() -> (writ_core::Claims, String, writ_core::Claims, String) {
    let mut root = claims();
    root.jti = Jti::from_bytes([1; 16]);
    root.exp = NOW.0 + 600;
    root.del = Some(Delegation {
        actions: vec!["repo.test".into(), "repo.lint".into()],
        resources: vec!["git:org/*".into()],
        max_depth: 2,
    });
    let root_writ = signed(&root);
    let mut child = claims();
    child.jti = Jti::from_bytes([2; 16]);
    child.scope.action = "repo.test".into();
    child.scope.resource = "git:org/app".into();
    child.lin = Some(Lineage {
        parent: root.jti,
        parent_sha256: Sha256Digest::of(root_writ.as_bytes()),
        root: root.jti,
        depth: 1,
    });
    let child_writ = signed(&child);
    (root, root_writ, child, child_writ)
}

fn verify_child(child_writ: &str, ancestors: &[&str]) -> Verdict {
    let args = args();
    let mut expect = Expectation::new(AUDIENCE, "repo.test", "git:org/app", &args);
    expect.ancestors = ancestors;
    verifier().verify(child_writ, &expect, NOW, StateChecks::Offline)
}

#[test]
fn lineage_chain_is_checked_link_by_link() {
    let (root, root_writ, child, child_writ) = delegation_tree();
    assert!(verify_child(&child_writ, &[]).is_permit());
    assert!(verify_child(&child_writ, &[&root_writ]).is_permit());

    let lineage = |c: &writ_core::Claims| {
        let w = signed(c);
        code(&verify_child(&w, &[&root_writ]))
    };
    // Wider than the parent's `del`.
    let mut wider = child.clone();
    wider.scope.action = "repo.push".into();
    let push = signed(&wider);
    let args = args();
    let mut expect = Expectation::new(AUDIENCE, "repo.push", "git:org/app", &args);
    let ancestors = [root_writ.as_str()];
    expect.ancestors = &ancestors;
    assert_eq!(
        code(&verifier().verify(&push, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::LineageInconsistency)
    );
    // Outliving the parent.
    let mut long = child.clone();
    long.exp = root.exp + 1;
    assert_eq!(lineage(&long), Some(DenyCode::LineageInconsistency));
    // Re-hashed link.
    let mut rehashed = child.clone();
    rehashed.lin.as_mut().unwrap().parent_sha256 = Sha256Digest::of(b"another parent");
    assert_eq!(lineage(&rehashed), Some(DenyCode::LineageInconsistency));
    // Depth that does not follow.
    let mut deep = child.clone();
    deep.lin.as_mut().unwrap().depth = 3;
    deep.lin.as_mut().unwrap().root = Jti::from_bytes([9; 16]);
    assert_eq!(lineage(&deep), Some(DenyCode::LineageInconsistency));
    // A child that asks for a `del` wider than its parent's.
    let mut greedy = child.clone();
    greedy.del = Some(Delegation {
        actions: vec!["*".into()],
        resources: vec!["git:org/*".into()],
        max_depth: 2,
    });
    assert_eq!(lineage(&greedy), Some(DenyCode::LineageInconsistency));
    // Structure alone: a writ that names itself as its parent.
    let mut selfish = child.clone();
    selfish.lin.as_mut().unwrap().parent = selfish.jti;
    assert_eq!(
        code(&verify_child(&signed(&selfish), &[])),
        Some(DenyCode::LineageInconsistency)
    );
    // Ancestors presented for a root writ.
    assert_eq!(
        code(&verifier().verify(&root_writ, &expectation(&args), NOW, StateChecks::Offline)),
        None
    );
    let mut expect = expectation(&args);
    expect.ancestors = &ancestors;
    assert_eq!(
        code(&verifier().verify(&root_writ, &expect, NOW, StateChecks::Offline)),
        Some(DenyCode::LineageInconsistency)
    );
}

#[test]
fn lineage_parent_failures_keep_their_codes() {
    let (mut root, _, child, _) = delegation_tree();
    // A forged parent.
    let forged = jws(
        &header_for(&issuer_key()),
        &payload_text(&root),
        &untrusted_key(),
    );
    let mut c = child.clone();
    c.lin.as_mut().unwrap().parent_sha256 = Sha256Digest::of(forged.as_bytes());
    assert_eq!(
        code(&verify_child(&signed(&c), &[&forged])),
        Some(DenyCode::InvalidSignature)
    );
    // An expired parent presented with a child that is itself still in its window: the
    // parent's expiry is checked before the link, and named as the parent's.
    root.iat = NOW.0 - 100;
    root.nbf = NOW.0 - 100;
    root.exp = NOW.0 - 50;
    let expired = signed(&root);
    let mut c = child.clone();
    c.lin.as_mut().unwrap().parent_sha256 = Sha256Digest::of(expired.as_bytes());
    let Verdict::Deny(denial) = verify_child(&signed(&c), &[&expired]) else {
        panic!("permitted")
    };
    assert_eq!(denial.code, DenyCode::Expired);
    assert!(
        denial.detail.starts_with("ancestor 1:"),
        "{}",
        denial.detail
    );
}

struct Failing;

impl RevocationStatus for Failing {
    fn check(&self, _: &RevocationSubject<'_>) -> Result<RevocationState, StateError> {
        Err(StateError("database unreachable".into()))
    }
}

impl ReplayStore for Failing {
    fn consume(
        &self,
        _: &Jti,
        _: u32,
        _: UnixTime,
        _: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError> {
        Err(StateError("database unreachable".into()))
    }
}

struct Panicking;

impl ReplayStore for Panicking {
    fn consume(
        &self,
        _: &Jti,
        _: u32,
        _: UnixTime,
        _: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError> {
        panic!("store bug")
    }
}

fn consume_with(
    writ: &str,
    revocation: &dyn RevocationStatus,
    replay: &dyn ReplayStore,
) -> Verdict {
    let args = args();
    verifier().verify(
        writ,
        &expectation(&args),
        NOW,
        StateChecks::Consume { revocation, replay },
    )
}

#[test]
fn revoked_authorization_for_writ_ancestor_and_principal() {
    let writ = signed(&claims());
    let replay = MemoryReplayStore::new();

    let revoked = MemoryRevocations::new();
    revoked.revoke_writ(claims().jti);
    assert_eq!(
        code(&consume_with(&writ, &revoked, &replay)),
        Some(DenyCode::RevokedAuthorization)
    );

    let revoked = MemoryRevocations::new();
    revoked.revoke_principal("build-agent");
    assert_eq!(
        code(&consume_with(&writ, &revoked, &replay)),
        Some(DenyCode::RevokedAuthorization)
    );

    let revoked = MemoryRevocations::new();
    revoked.revoke_principal(AUDIENCE);
    assert_eq!(
        code(&consume_with(&writ, &revoked, &replay)),
        Some(DenyCode::RevokedAuthorization)
    );

    // Revoking the root revokes the child, even when no ancestors are presented.
    let (root, _, _, child_writ) = delegation_tree();
    let revoked = MemoryRevocations::new();
    revoked.revoke_writ(root.jti);
    let args = args();
    let expect = Expectation::new(AUDIENCE, "repo.test", "git:org/app", &args);
    let verdict = verifier().verify(&child_writ, &expect, NOW, StateChecks::Revocation(&revoked));
    assert_eq!(code(&verdict), Some(DenyCode::RevokedAuthorization));

    // None of these denials spent the writ.
    assert!(replay.is_empty());
    assert!(consume_with(&writ, &MemoryRevocations::new(), &replay).is_permit());
}

#[test]
fn replay_detected_after_the_allowed_uses() {
    let writ = signed(&claims());
    let revocations = MemoryRevocations::new();
    let replay = MemoryReplayStore::new();
    let Verdict::Permit(first) = consume_with(&writ, &revocations, &replay) else {
        panic!("denied")
    };
    assert_eq!(first.remaining_uses(), Some(0));
    assert_eq!(
        code(&consume_with(&writ, &revocations, &replay)),
        Some(DenyCode::ReplayDetected)
    );

    let mut three = claims();
    three.uses = 3;
    three.jti = Jti::from_bytes([3; 16]);
    let three = signed(&three);
    for _ in 0..3 {
        assert!(consume_with(&three, &revocations, &replay).is_permit());
    }
    assert_eq!(
        code(&consume_with(&three, &revocations, &replay)),
        Some(DenyCode::ReplayDetected)
    );
}

#[test]
fn status_unavailable_when_state_fails() {
    let writ = signed(&claims());
    let replay = MemoryReplayStore::new();
    assert_eq!(
        code(&consume_with(&writ, &Failing, &replay)),
        Some(DenyCode::StatusUnavailable)
    );
    assert!(
        replay.is_empty(),
        "a failed revocation check must not consume"
    );
    assert_eq!(
        code(&consume_with(&writ, &MemoryRevocations::new(), &Failing)),
        Some(DenyCode::StatusUnavailable)
    );
    assert_eq!(
        code(&consume_with(&writ, &MemoryRevocations::new(), &Panicking)),
        Some(DenyCode::StatusUnavailable)
    );
}

#[test]
fn earlier_failures_never_consume() {
    let revocations = MemoryRevocations::new();
    let replay = MemoryReplayStore::new();
    let args = args();
    let good = claims();
    let mut wrong_aud = good.clone();
    wrong_aud.aud = "gate-2".into();
    let mut bound = good.clone();
    bound.env = Some(Sha256Digest::of(b"x"));
    let bad_writs = [
        signed(&wrong_aud),
        signed(&bound),
        jws(
            &header_for(&issuer_key()),
            &payload_text(&good),
            &untrusted_key(),
        ),
    ];
    for writ in &bad_writs {
        let verdict = verifier().verify(
            writ,
            &expectation(&args),
            NOW,
            StateChecks::Consume {
                revocation: &revocations,
                replay: &replay,
            },
        );
        assert!(!verdict.is_permit());
    }
    let other_args = json!({"argv": ["rm", "-rf", "/"]});
    let writ = signed(&good);
    let verdict = verifier().verify(
        &writ,
        &expectation(&other_args),
        NOW,
        StateChecks::Consume {
            revocation: &revocations,
            replay: &replay,
        },
    );
    assert_eq!(code(&verdict), Some(DenyCode::ScopeMismatch));
    assert!(
        replay.is_empty(),
        "no denied presentation may burn the writ"
    );
    // The good writ, presented properly, still has its one use.
    assert!(consume_with(&writ, &revocations, &replay).is_permit());
}

#[test]
fn the_first_failing_check_names_the_code() {
    // Wrong audience and wrong scope and expired: audience is checked first.
    let mut c = claims();
    c.aud = "gate-2".into();
    c.scope.action = "other".into();
    let writ = signed(&c);
    let args = args();
    let late = UnixTime(NOW.0 + 3600);
    assert_eq!(
        code(&verifier().verify(&writ, &expectation(&args), late, StateChecks::Offline)),
        Some(DenyCode::AudienceMismatch)
    );
    // Expired and wrong scope: time before scope.
    let mut c = claims();
    c.scope.action = "other".into();
    let writ = signed(&c);
    assert_eq!(
        code(&verifier().verify(&writ, &expectation(&args), late, StateChecks::Offline)),
        Some(DenyCode::Expired)
    );
    // Untrusted issuer and wrong audience: issuer (unknown_key) before audience.
    let mut c = claims();
    c.iss = "https://other".into();
    c.aud = "gate-2".into();
    assert_eq!(code(&offline(&signed(&c))), Some(DenyCode::UnknownKey));
    // Bad algorithm and bad typ together: the algorithm is named.
    let writ = jws(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload_text(&claims()),
        &issuer_key(),
    );
    assert_eq!(code(&offline(&writ)), Some(DenyCode::UnsupportedAlgorithm));
}
