//! Properties of the writ format and the fail-closed verifier, over generated inputs:
//! tampering with any bit, truncation, re-signing with a foreign key, garbage input, claims
//! given twice, the serialization round trip, and counting of uses.
//!
//! Case counts are kept modest so the debug test suite stays fast; the exhaustive tests over
//! two fixed writs (the fixture, and one with every optional claim) cover every bit and every
//! prefix of them.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Number, Value};
use writ_core::internal::parse_unverified;
use writ_core::{
    canonical, sign, Approval, Claims, Confirmation, Delegation, DenyCode, Expectation, Governance,
    Jti, KeyId, Lineage, MemoryReplayStore, MemoryRevocations, PolicyRef, Sha256Digest, SigningKey,
    StateChecks, UnixTime, Verdict, Verifier, MAX_WRIT_LEN, WRIT_TYP,
};

use crate::support::*;

/// The fixture verifier, built once.
fn shared_verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(verifier)
}

/// Codes that say "this string is not a writ the trusted issuer signed": what any tampering
/// must end in, before a single claim is consulted.
const AUTHENTICATION_CODES: [DenyCode; 4] = [
    DenyCode::Malformed,
    DenyCode::UnsupportedAlgorithm,
    DenyCode::UnknownKey,
    DenyCode::InvalidSignature,
];

/// A writ's claims together with everything a gate must hold for it to be permitted.
#[derive(Clone, Debug)]
struct Scenario {
    claims: Claims,
    args: Value,
    environment: Option<Sha256Digest>,
    executor: Option<KeyId>,
}

impl Scenario {
    fn expectation(&self) -> Expectation<'_> {
        let mut expect = expectation(&self.args);
        expect.environment = self.environment.as_ref();
        expect.executor = self.executor.as_ref();
        expect
    }

    fn verify(&self, writ: &str) -> Verdict {
        shared_verifier().verify(writ, &self.expectation(), NOW, StateChecks::Offline)
    }
}

/// Verifies `writ` against a consuming gate with fresh state, and checks that a denial
/// consumed nothing.
fn verify_consuming(writ: &str, expect: &Expectation<'_>) -> Verdict {
    let replay = MemoryReplayStore::new();
    let revocation = MemoryRevocations::new();
    let verdict = shared_verifier().verify(
        writ,
        expect,
        NOW,
        StateChecks::Consume {
            revocation: &revocation,
            replay: &replay,
        },
    );
    if !verdict.is_permit() {
        assert!(replay.is_empty(), "a denied writ was consumed: {verdict:?}");
    }
    verdict
}

/// The compact JWS of `claims` under the protected header `header`, signed by `key`: built
/// by hand, so the header can name a key other than the signer.
fn compact_with_header(header: &str, claims: &Claims, key: &SigningKey) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    compact_of(header, &payload, key)
}

/// `base64url(header).base64url(payload).base64url(signature)`.
fn compact_of(header: &str, payload: &[u8], key: &SigningKey) -> String {
    let mut compact = URL_SAFE_NO_PAD.encode(header.as_bytes());
    compact.push('.');
    compact.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(compact.as_bytes());
    compact.push('.');
    compact.push_str(&URL_SAFE_NO_PAD.encode(signature));
    compact
}

fn trusted_header() -> String {
    format!(
        r#"{{"alg":"EdDSA","typ":"{WRIT_TYP}","kid":"{}"}}"#,
        issuer_key().kid()
    )
}

fn deny_code(verdict: &Verdict) -> Option<DenyCode> {
    verdict.deny_code()
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Arguments as a gate sees them: JSON whose numbers RFC 8785 represents exactly.
fn arb_args() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|i| json!(i)),
        (-1e15f64..1e15f64).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,16}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z]{1,8}", value, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .prop_filter("exact numbers only", |v| canonical::args_digest(v).is_ok())
}

fn arb_jti() -> impl Strategy<Value = Jti> {
    any::<[u8; 16]>().prop_map(Jti::from_bytes)
}

fn arb_digest() -> impl Strategy<Value = Sha256Digest> {
    any::<[u8; 32]>().prop_map(Sha256Digest::from_bytes)
}

/// A key id as an executor key's RFC 7638 thumbprint.
fn arb_kid() -> impl Strategy<Value = KeyId> {
    any::<[u8; 32]>().prop_map(|x| KeyId::thumbprint(&x))
}

/// A non-empty string of any characters.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![".{1,24}", "[a-z][a-z0-9.-]{0,15}"]
}

fn arb_patterns() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![Just("*".to_string()), "[a-z/*]{0,12}", ".{0,8}"],
        0..4,
    )
}

fn arb_delegation() -> impl Strategy<Value = Delegation> {
    (arb_patterns(), arb_patterns(), any::<u32>()).prop_map(|(actions, resources, max_depth)| {
        Delegation {
            actions,
            resources,
            max_depth,
        }
    })
}

fn arb_governance() -> impl Strategy<Value = Governance> {
    let approval = (arb_text(), any::<u64>(), "[A-Za-z0-9_-]{0,86}")
        .prop_map(|(approver, at, sig)| Approval { approver, at, sig });
    (
        proptest::option::of(".{0,24}"),
        proptest::option::of(".{0,12}"),
        prop::collection::vec(approval, 0..3),
    )
        .prop_map(|(purpose, ticket, approvals)| Governance {
            purpose,
            ticket,
            approvals,
        })
}

/// A `lin` whose structure the verifier accepts for a writ with id `jti` when no ancestors
/// are presented: depth 1 exactly when the parent is the root, and neither is the writ.
fn arb_lineage_for(jti: Jti) -> impl Strategy<Value = Lineage> {
    (arb_jti(), arb_jti(), arb_digest(), 1u32..8)
        .prop_map(|(parent, root, parent_sha256, depth)| {
            let root = if depth == 1 { parent } else { root };
            Lineage {
                parent,
                parent_sha256,
                root,
                depth,
            }
        })
        .prop_filter("structurally consistent", move |lin| {
            lin.parent != jti && lin.root != jti && ((lin.depth == 1) == (lin.parent == lin.root))
        })
}

/// Claims that the fixture verifier permits at `NOW`, with the gate state that goes with
/// them. Everything the verifier does not compare to the gate varies freely.
fn arb_permitted() -> impl Strategy<Value = Scenario> {
    let times = (0u64..=30, 0u64..=35, 0u64..=3600).prop_map(|(iat_back, nbf_back, ttl)| {
        // nbf and iat within [NOW - 30, NOW + 5]: at most the skew in the future.
        (NOW.0 + 5 - iat_back, NOW.0 + 5 - nbf_back, NOW.0 + 6 + ttl)
    });
    let identity = (
        arb_text(),
        arb_jti(),
        1u32..=u32::MAX,
        arb_digest(),
        prop::collection::vec(".{0,12}", 0..3),
    );
    let bindings = (
        proptest::option::of(arb_kid()),
        proptest::option::of(arb_digest()),
        proptest::option::of(arb_delegation()),
        proptest::option::of(arb_governance()),
        any::<bool>(),
    );
    (arb_args(), times, identity, bindings)
        .prop_flat_map(
            |(
                args,
                (iat, nbf, exp),
                (sub, jti, uses, pol, ids),
                (cnf, env, del, gov, with_lin),
            )| {
                let mut claims = claims_for(&args);
                claims.iat = iat;
                claims.nbf = nbf;
                claims.exp = exp;
                claims.sub = sub;
                claims.jti = jti;
                claims.uses = uses;
                claims.pol = PolicyRef { digest: pol, ids };
                claims.cnf = cnf.clone().map(|jkt| Confirmation { jkt });
                claims.env = env;
                claims.del = del;
                claims.gov = gov;
                let scenario = Scenario {
                    claims,
                    args,
                    environment: env,
                    executor: cnf,
                };
                let lin = if with_lin {
                    proptest::option::of(arb_lineage_for(jti)).boxed()
                } else {
                    Just(None).boxed()
                };
                (Just(scenario), lin)
            },
        )
        .prop_map(|(mut scenario, lin)| {
            scenario.claims.lin = lin;
            scenario
        })
}

/// Any claims `sign` accepts, with no regard to a verifier.
fn arb_claims() -> impl Strategy<Value = Claims> {
    let times = (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c)| {
        // nbf < exp and iat <= exp.
        let mut v = [a, b, c];
        v.sort_unstable();
        let exp = v[2].max(1);
        let nbf = v[1].min(exp - 1);
        let iat = if a % 2 == 0 { v[0] } else { exp };
        (iat, nbf, exp)
    });
    let who = (
        arb_text(),
        arb_text(),
        arb_text(),
        arb_jti(),
        1u32..=u32::MAX,
    );
    let scope = (
        arb_text(),
        arb_text(),
        arb_digest(),
        arb_digest(),
        prop::collection::vec(".{0,12}", 0..4),
    );
    let lineage = (arb_jti(), arb_digest(), arb_jti(), 1u32..=u32::MAX).prop_map(
        |(parent, parent_sha256, root, depth)| Lineage {
            parent,
            parent_sha256,
            root,
            depth,
        },
    );
    let optional = (
        proptest::option::of(arb_kid().prop_map(|jkt| Confirmation { jkt })),
        proptest::option::of(arb_digest()),
        proptest::option::of(lineage),
        proptest::option::of(arb_delegation()),
        proptest::option::of(arb_governance()),
    );
    (times, who, scope, optional).prop_map(
        |(
            (iat, nbf, exp),
            (iss, sub, aud, jti, uses),
            (action, resource, args_sha256, pol, ids),
            (cnf, env, lin, del, gov),
        )| Claims {
            iss,
            sub,
            aud,
            iat,
            nbf,
            exp,
            jti,
            scope: writ_core::Scope {
                action,
                resource,
                args_sha256,
            },
            pol: PolicyRef { digest: pol, ids },
            uses,
            cnf,
            env,
            lin,
            del,
            gov,
        },
    )
}

/// One change to a writ's claims that keeps them acceptable to `sign`.
#[derive(Clone, Debug)]
enum Edit {
    Iss(String),
    Sub(String),
    Aud(String),
    /// nbf, lifetime, and how long before nbf it was issued.
    Times(u64, u64, u64),
    Jti(Jti),
    Action(String),
    Resource(String),
    Args(Value),
    Policy(Sha256Digest, Vec<String>),
    Uses(u32),
    Cnf(Option<KeyId>),
    Env(Option<Sha256Digest>),
    Lin(Option<Lineage>),
    Del(Option<Delegation>),
    Gov(Option<Governance>),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    let lineage = (arb_jti(), arb_digest(), arb_jti(), 1u32..16).prop_map(
        |(parent, parent_sha256, root, depth)| Lineage {
            parent,
            parent_sha256,
            root,
            depth,
        },
    );
    prop_oneof![
        arb_text().prop_map(Edit::Iss),
        arb_text().prop_map(Edit::Sub),
        arb_text().prop_map(Edit::Aud),
        (NOW.0 - 1000..NOW.0 + 1000, 1u64..100_000, 0u64..100)
            .prop_map(|(n, l, b)| Edit::Times(n, l, b)),
        arb_jti().prop_map(Edit::Jti),
        arb_text().prop_map(Edit::Action),
        arb_text().prop_map(Edit::Resource),
        arb_args().prop_map(Edit::Args),
        (arb_digest(), prop::collection::vec(".{0,12}", 0..3))
            .prop_map(|(d, ids)| Edit::Policy(d, ids)),
        (1u32..=u32::MAX).prop_map(Edit::Uses),
        proptest::option::of(arb_kid()).prop_map(Edit::Cnf),
        proptest::option::of(arb_digest()).prop_map(Edit::Env),
        proptest::option::of(lineage).prop_map(Edit::Lin),
        proptest::option::of(arb_delegation()).prop_map(Edit::Del),
        proptest::option::of(arb_governance()).prop_map(Edit::Gov),
    ]
}

fn apply(claims: &mut Claims, edit: Edit) {
    match edit {
        Edit::Iss(v) => claims.iss = v,
        Edit::Sub(v) => claims.sub = v,
        Edit::Aud(v) => claims.aud = v,
        Edit::Times(nbf, lifetime, issued_before) => {
            claims.nbf = nbf;
            claims.exp = nbf + lifetime;
            claims.iat = nbf - issued_before;
        }
        Edit::Jti(v) => claims.jti = v,
        Edit::Action(v) => claims.scope.action = v,
        Edit::Resource(v) => claims.scope.resource = v,
        Edit::Args(v) => claims.scope.args_sha256 = canonical::args_digest(&v).expect("exact args"),
        Edit::Policy(digest, ids) => claims.pol = PolicyRef { digest, ids },
        Edit::Uses(v) => claims.uses = v,
        Edit::Cnf(v) => claims.cnf = v.map(|jkt| Confirmation { jkt }),
        Edit::Env(v) => claims.env = v,
        Edit::Lin(v) => claims.lin = v,
        Edit::Del(v) => claims.del = v,
        Edit::Gov(v) => claims.gov = v,
    }
}

/// Flips bit `bit` of byte `at`; `None` when the result is not UTF-8 (a gate receives text).
fn flip(writ: &str, at: usize, bit: u8) -> Option<String> {
    let mut bytes = writ.as_bytes().to_vec();
    bytes[at] ^= 1 << bit;
    String::from_utf8(bytes).ok()
}

// ---------------------------------------------------------------------------------------
// Exhaustive checks over fixed writs
// ---------------------------------------------------------------------------------------

/// A writ that uses every optional claim, and the gate state that permits it.
fn rich_scenario() -> Scenario {
    let args = args();
    let executor = SigningKey::from_seed(&[0x22; 32]).kid().clone();
    let environment = Sha256Digest::of(b"measurement");
    let mut claims = claims_for(&args);
    claims.uses = 3;
    claims.cnf = Some(Confirmation {
        jkt: executor.clone(),
    });
    claims.env = Some(environment);
    claims.lin = Some(Lineage {
        parent: Jti::from_bytes([1; 16]),
        parent_sha256: Sha256Digest::of(b"parent"),
        root: Jti::from_bytes([2; 16]),
        depth: 2,
    });
    claims.del = Some(Delegation {
        actions: vec!["exec".into()],
        resources: vec!["/usr/bin/*".into()],
        max_depth: 3,
    });
    claims.gov = Some(Governance {
        purpose: Some("release".into()),
        ticket: Some("OPS-1".into()),
        approvals: vec![Approval {
            approver: "alice".into(),
            at: NOW.0 - 10,
            sig: "c2ln".into(),
        }],
    });
    Scenario {
        claims,
        args,
        environment: Some(environment),
        executor: Some(executor),
    }
}

fn fixture_scenarios() -> [Scenario; 2] {
    let args = args();
    [
        Scenario {
            claims: claims_for(&args),
            args,
            environment: None,
            executor: None,
        },
        rich_scenario(),
    ]
}

#[test]
fn every_single_bit_flip_of_a_valid_writ_is_denied() {
    for scenario in fixture_scenarios() {
        let writ = signed(&scenario.claims);
        assert!(
            scenario.verify(&writ).is_permit(),
            "fixture must be permitted"
        );
        let mut tried = 0;
        for at in 0..writ.len() {
            for bit in 0..8 {
                let Some(tampered) = flip(&writ, at, bit) else {
                    continue;
                };
                tried += 1;
                let verdict = scenario.verify(&tampered);
                let code = deny_code(&verdict);
                assert!(
                    code.is_some_and(|c| AUTHENTICATION_CODES.contains(&c)),
                    "byte {at} bit {bit}: {verdict:?}"
                );
            }
        }
        assert!(tried >= writ.len() * 7, "most flips of ASCII stay UTF-8");
    }
}

#[test]
fn every_prefix_of_a_valid_writ_is_denied() {
    for scenario in fixture_scenarios() {
        let writ = signed(&scenario.claims);
        for len in 0..writ.len() {
            let expected = if len == 0 {
                DenyCode::MissingAuthorization
            } else {
                DenyCode::Malformed
            };
            let verdict = scenario.verify(&writ[..len]);
            assert_eq!(
                deny_code(&verdict),
                Some(expected),
                "prefix of {len}: {verdict:?}"
            );
        }
    }
}

#[test]
fn oversize_writs_are_malformed_even_when_validly_signed() {
    let mut claims = claims();
    claims.pol.ids = vec!["x".repeat(MAX_WRIT_LEN)];
    let writ = signed(&claims);
    assert!(writ.len() > MAX_WRIT_LEN);
    let verdict = verify_consuming(&writ, &expectation(&args()));
    assert_eq!(
        deny_code(&verdict),
        Some(DenyCode::Malformed),
        "{verdict:?}"
    );
    assert!(parse_unverified(&writ).is_err());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (a) Any single bit flip of a valid writ is denied before any claim is consulted.
    #[test]
    fn bit_flips_are_denied(scenario in arb_permitted(), at in any::<Index>(), bit in 0u8..8) {
        let writ = signed(&scenario.claims);
        prop_assert!(scenario.verify(&writ).is_permit(), "untampered writ must be permitted");
        let at = at.index(writ.len());
        if let Some(tampered) = flip(&writ, at, bit) {
            let verdict = scenario.verify(&tampered);
            let code = deny_code(&verdict);
            prop_assert!(
                code.is_some_and(|c| AUTHENTICATION_CODES.contains(&c)),
                "byte {} bit {}: {:?}", at, bit, verdict
            );
        }
    }

    /// (b) Truncation to any shorter length is denied as malformed (or missing, when empty).
    #[test]
    fn truncations_are_denied(scenario in arb_permitted(), len in any::<Index>()) {
        let writ = signed(&scenario.claims);
        let len = len.index(writ.len());
        let verdict = verify_consuming(&writ[..len], &scenario.expectation());
        let expected = if len == 0 { DenyCode::MissingAuthorization } else { DenyCode::Malformed };
        prop_assert_eq!(deny_code(&verdict), Some(expected), "prefix of {}: {:?}", len, verdict);
    }

    /// (c) Edited claims re-signed with a key the verifier does not trust are denied: as
    /// `unknown_key` under the signer's own kid, and as `invalid_signature` when the header
    /// names the trusted key.
    #[test]
    fn edited_claims_signed_by_a_foreign_key_are_denied(
        scenario in arb_permitted(),
        edits in prop::collection::vec(arb_edit(), 0..4),
    ) {
        let mut edited = scenario.claims.clone();
        for edit in edits {
            apply(&mut edited, edit);
        }
        let intruder = untrusted_key();
        let foreign = sign(&edited, &intruder).expect("edited claims stay signable");
        let verdict = verify_consuming(&foreign, &scenario.expectation());
        prop_assert_eq!(deny_code(&verdict), Some(DenyCode::UnknownKey), "{:?}", verdict);

        let forged = compact_with_header(&trusted_header(), &edited, &intruder);
        let verdict = verify_consuming(&forged, &scenario.expectation());
        prop_assert_eq!(deny_code(&verdict), Some(DenyCode::InvalidSignature), "{:?}", verdict);

        // The same bytes signed by the issuer are what a verifier would accept as authentic:
        // the forgery fails on the signature alone.
        let genuine = compact_with_header(&trusted_header(), &edited, &issuer_key());
        prop_assert!(shared_verifier()
            .verify(&genuine, &scenario.expectation(), NOW, StateChecks::Offline)
            .deny_code()
            .is_none_or(|c| c != DenyCode::InvalidSignature));
    }

    /// (d) Arbitrary text never makes the verifier panic, and is denied without consuming.
    #[test]
    fn arbitrary_text_is_denied(text in any::<String>()) {
        let verdict = verify_consuming(&text, &expectation(&args()));
        prop_assert!(!verdict.is_permit());
        prop_assert!(parse_unverified(&text).is_err());
    }

    /// (d) Three base64url-ish parts are denied, whatever they hold.
    #[test]
    fn arbitrary_three_part_text_is_denied(
        text in "[A-Za-z0-9_=+/-]{0,64}\\.[A-Za-z0-9_=+/-]{0,400}\\.[A-Za-z0-9_=+/-]{0,100}",
    ) {
        let verdict = verify_consuming(&text, &expectation(&args()));
        prop_assert!(!verdict.is_permit(), "{:?}", verdict);
    }

    /// (d) A genuine header for the trusted key, with an arbitrary payload and signature:
    /// denied, and never consumed.
    #[test]
    fn trusted_header_with_arbitrary_payload_is_denied(
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            arb_args().prop_map(|v| serde_json::to_vec(&v).expect("serializes")),
            arb_claims().prop_map(|c| serde_json::to_vec(&c).expect("serializes")),
        ],
        signature in prop::collection::vec(any::<u8>(), 0..70),
    ) {
        let compact = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(trusted_header()),
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&signature),
        );
        let verdict = verify_consuming(&compact, &expectation(&args()));
        prop_assert!(
            deny_code(&verdict).is_some_and(|c| AUTHENTICATION_CODES.contains(&c)),
            "{:?}", verdict
        );
    }

    /// A claim given twice, even with the same value and under a valid signature of the
    /// trusted key, is malformed: two parsers could read different claims.
    #[test]
    fn duplicate_claims_are_malformed(
        scenario in arb_permitted(),
        which in any::<Index>(),
        same_value in any::<bool>(),
    ) {
        let Value::Object(object) = serde_json::to_value(&scenario.claims).expect("serializes") else {
            return Err(TestCaseError::fail("claims are an object"));
        };
        let (name, value) = object.iter().nth(which.index(object.len())).expect("in range");
        let repeated = if same_value { value.clone() } else { json!("other") };
        // The repeated member goes first, so `serde_json`'s last-one-wins reading would keep
        // the genuine value.
        let payload = format!(
            "{{{}:{},{}",
            serde_json::to_string(name).expect("serializes"),
            repeated,
            &serde_json::to_string(&object).expect("serializes")[1..],
        );
        let genuine = compact_of(&trusted_header(), &serde_json::to_vec(&object).expect("serializes"), &issuer_key());
        prop_assert!(scenario.verify(&genuine).is_permit(), "without the duplicate it is permitted");
        let compact = compact_of(&trusted_header(), payload.as_bytes(), &issuer_key());
        let verdict = verify_consuming(&compact, &scenario.expectation());
        prop_assert_eq!(deny_code(&verdict), Some(DenyCode::Malformed), "{:?}", verdict);
    }

    /// (e) What `sign` writes, `parse_unverified` reads back unchanged, with a signature
    /// that verifies over the signing input.
    #[test]
    fn sign_then_parse_round_trips(claims in arb_claims()) {
        let key = issuer_key();
        let writ = sign(&claims, &key).expect("generated claims are valid");
        let parsed = parse_unverified(&writ).expect("a signed writ parses");
        prop_assert_eq!(parsed.claims(), &claims);
        prop_assert_eq!(parsed.kid(), key.kid().as_str());
        prop_assert_eq!(parsed.compact(), writ.as_str());
        prop_assert!(key.verifying_key().verify(parsed.signing_input(), parsed.signature()));
        prop_assert_eq!(parsed.digest(), Sha256Digest::of(writ.as_bytes()));
    }

    /// (f) A writ allowing `uses` executions permits exactly that many times, then is
    /// `replay_detected`; bad presentations in between are denied on their own ground and
    /// burn no use.
    #[test]
    fn uses_are_counted_exactly(
        uses in 1u32..=5,
        bad in prop::collection::vec(0u8..4, 0..8),
        extra in 1usize..3,
    ) {
        let args = args();
        let mut claims = claims_for(&args);
        claims.uses = uses;
        let writ = signed(&claims);
        let verifier = shared_verifier();
        let replay = MemoryReplayStore::new();
        let revocation = MemoryRevocations::new();
        let state = StateChecks::Consume { revocation: &revocation, replay: &replay };
        let other_args = json!({"argv": ["git", "push"]});

        let mut bad = bad.into_iter();
        let mut permits = 0;
        for round in 0..(uses as usize + extra) {
            // Zero or more bad presentations first: none may consume.
            for kind in bad.by_ref().take(round % 3) {
                let (expect, now, code) = match kind {
                    0 => (Expectation::new("gate-2", ACTION, RESOURCE, &args), NOW, DenyCode::AudienceMismatch),
                    1 => (expectation(&other_args), NOW, DenyCode::ScopeMismatch),
                    2 => (expectation(&args), UnixTime(NOW.0 + 3600), DenyCode::Expired),
                    _ => (expectation(&args), UnixTime(NOW.0 - 3600), DenyCode::NotYetValid),
                };
                let verdict = verifier.verify(&writ, &expect, now, state);
                prop_assert_eq!(deny_code(&verdict), Some(code), "{:?}", verdict);
            }
            let verdict = verifier.verify(&writ, &expectation(&args), NOW, state);
            if round < uses as usize {
                let Verdict::Permit(verified) = verdict else {
                    return Err(TestCaseError::fail(format!("use {} of {uses} denied: {verdict:?}", round + 1)));
                };
                permits += 1;
                prop_assert_eq!(verified.remaining_uses(), Some(uses - permits));
            } else {
                prop_assert_eq!(deny_code(&verdict), Some(DenyCode::ReplayDetected), "{:?}", verdict);
            }
        }
        prop_assert_eq!(permits, uses);
        prop_assert_eq!(replay.len(), 1);
    }
}
