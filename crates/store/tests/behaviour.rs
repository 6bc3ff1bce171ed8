//! One contract per store trait, run on every backend, so SQLite and PostgreSQL cannot drift
//! (issue 7, point 5).
//!
//! Each contract takes the trait object and asserts everything a caller may rely on: results,
//! orderings and the error variant for each refusal. Each runs once on SQLite (a fresh file)
//! and once on PostgreSQL, in a fresh schema of the server named by
//! [`ENV_DATABASE_URL`]; without it the PostgreSQL half says it was skipped and passes.

use std::sync::Arc;

use serde_json::json;
use writ_core::{
    ApprovalVerdict, Jti, ReplayStore, RevocationState, RevocationSubject, Sha256Digest,
    SigningKey, UnixTime,
};
use writ_store::postgres::{
    scratch_url, PgApprovals, PgPolicies, PgPrincipals, PgRevocations, PgSigningKeys,
};
use writ_store::{
    ApprovalRequest, ApprovalStore, KeyStore, PgDatabase, PolicyStore, PolicyTexts, PrincipalStore,
    RequestState, RevocationStore, Role, SqliteApprovals, SqlitePolicies, SqlitePrincipals,
    SqliteReplayStore, SqliteSigningKeys, StoreError, Vote,
};

/// The PostgreSQL server the PostgreSQL halves use (CI sets it), e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const ENV_DATABASE_URL: &str = "WRIT_TEST_DATABASE_URL";

/// A fresh schema of the test server, connected once per node; `None` (after saying so) when
/// no server is configured.
pub fn pg_nodes(test: &str, nodes: usize) -> Option<Vec<Arc<PgDatabase>>> {
    let base = std::env::var(ENV_DATABASE_URL)
        .ok()
        .filter(|url| !url.is_empty());
    let Some(base) = base else {
        println!("{test}: skipped: {ENV_DATABASE_URL} is not set");
        return None;
    };
    let url = scratch_url(&base).unwrap();
    Some(
        (0..nodes)
            .map(|_| PgDatabase::connect(&url).unwrap())
            .collect(),
    )
}

/// One node on a fresh schema of the test server.
fn pg(test: &str) -> Option<Arc<PgDatabase>> {
    pg_nodes(test, 1).and_then(|mut nodes| nodes.pop())
}

fn sqlite_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    (dir, path)
}

// ---------------------------------------------------------------------------------------
// Principals

fn principals(s: &dyn PrincipalStore) {
    let token = Sha256Digest::of(b"writ_token-1");
    assert_eq!(s.list().unwrap(), vec![]);
    assert_eq!(s.get("build-agent").unwrap(), None);

    let p = s
        .add(
            "build-agent",
            Role::Agent,
            &["ci".into(), "ops".into()],
            &token,
            100,
        )
        .unwrap();
    assert_eq!(
        (
            p.name.as_str(),
            p.role,
            &p.groups[..],
            p.disabled,
            p.created_at
        ),
        (
            "build-agent",
            Role::Agent,
            &["ci".into(), "ops".into()][..],
            false,
            100
        )
    );
    assert_eq!(s.get("build-agent").unwrap(), Some(p.clone()));
    assert_eq!(s.authenticate(&token).unwrap(), Some(p.clone()));
    assert_eq!(s.authenticate(&Sha256Digest::of(b"other")).unwrap(), None);

    // A taken name, and a taken token (which SQLite reports as the new name existing).
    assert!(matches!(
        s.add("build-agent", Role::Admin, &[], &Sha256Digest::of(b"x"), 1),
        Err(StoreError::PrincipalExists(name)) if name == "build-agent"
    ));
    assert!(matches!(
        s.add("second", Role::Agent, &[], &token, 1),
        Err(StoreError::PrincipalExists(name)) if name == "second"
    ));
    assert_eq!(s.get("second").unwrap(), None);
    assert_eq!(s.get("build-agent").unwrap(), Some(p.clone()));

    // Names and groups: 1 to 128 of letters, digits and `._-@:/`.
    let long = "a".repeat(129);
    for bad in ["bad name", "", long.as_str(), "ünï", "semi;colon"] {
        assert!(
            matches!(
                s.add(bad, Role::Agent, &[], &Sha256Digest::of(bad.as_bytes()), 1),
                Err(StoreError::InvalidName(name)) if name == bad
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        s.add("fine", Role::Agent, &["ok".into(), "not ok".into()], &Sha256Digest::of(b"g"), 1),
        Err(StoreError::InvalidName(name)) if name == "not ok"
    ));
    assert_eq!(s.get("fine").unwrap(), None);

    // Listing is by name, in byte order (upper case before lower, `-` before `.`).
    let names = [
        "Zed",
        "a.bot",
        "B-bot",
        "a-bot",
        "a.b_c-d@e:f/g",
        &"m".repeat(128),
    ];
    for (i, name) in names.iter().enumerate() {
        let role = Role::ALL[i % Role::ALL.len()];
        let added = s
            .add(
                name,
                role,
                &[],
                &Sha256Digest::of(name.as_bytes()),
                200 + i as u64,
            )
            .unwrap();
        assert_eq!(s.get(name).unwrap(), Some(added));
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.push("build-agent".into());
    expected.sort();
    let listed = s.list().unwrap();
    assert_eq!(
        listed.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(listed.contains(&p));

    // Disabling: the token stops working at once; disabling again still finds it.
    assert!(s.disable("build-agent").unwrap());
    assert!(s.disable("build-agent").unwrap());
    assert!(!s.disable("nobody").unwrap());
    assert_eq!(s.authenticate(&token).unwrap(), None);
    let disabled = s.get("build-agent").unwrap().unwrap();
    assert!(disabled.disabled);
    assert_eq!(
        disabled,
        writ_store::Principal {
            disabled: true,
            ..p.clone()
        }
    );
    // Its token stays taken.
    assert!(matches!(
        s.add("third", Role::Agent, &[], &token, 1),
        Err(StoreError::PrincipalExists(_))
    ));

    // Approval keys: set for a known principal (any, even disabled), replaced, read back.
    let k1 = SigningKey::from_seed(&[1; 32]).verifying_key();
    let k2 = SigningKey::from_seed(&[2; 32]).verifying_key();
    assert_eq!(s.approval_key("Zed").unwrap(), None);
    assert!(matches!(
        s.set_approval_key("nobody", &k1),
        Err(StoreError::UnknownPrincipal(name)) if name == "nobody"
    ));
    assert_eq!(s.approval_key("nobody").unwrap(), None);
    s.set_approval_key("Zed", &k1).unwrap();
    assert_eq!(s.approval_key("Zed").unwrap(), Some(k1.clone()));
    s.set_approval_key("Zed", &k2).unwrap();
    assert_eq!(s.approval_key("Zed").unwrap(), Some(k2));
    s.set_approval_key("build-agent", &k1).unwrap();
    assert_eq!(s.approval_key("build-agent").unwrap(), Some(k1));
    assert_eq!(s.approval_key("a.bot").unwrap(), None);
}

#[test]
fn principals_on_sqlite() {
    let (_dir, path) = sqlite_file();
    principals(&SqlitePrincipals::open(&path).unwrap());
}

#[test]
fn principals_on_postgres() {
    if let Some(db) = pg("principals_on_postgres") {
        principals(&PgPrincipals::new(db));
    }
}

// ---------------------------------------------------------------------------------------
// Signing keys

fn keys(s: &dyn KeyStore) {
    assert!(s.list().unwrap().is_empty());
    let k0 = SigningKey::from_seed(&[10; 32]);
    let k1 = SigningKey::from_seed(&[11; 32]);
    let k2 = SigningKey::from_seed(&[12; 32]);
    s.add(&k1, 100, 200).unwrap();
    s.add(&k2, 150, 300).unwrap();
    s.add(&k0, 50, 100).unwrap();
    // Adding a key that is there changes nothing.
    s.add(&k1, 999, 999).unwrap();

    let summary = |s: &dyn KeyStore| {
        s.list()
            .unwrap()
            .into_iter()
            .map(|k| {
                (
                    k.key.kid().as_str().to_owned(),
                    k.announced_at,
                    k.activates_at,
                    k.removed_at,
                    k.revoked_at,
                )
            })
            .collect::<Vec<_>>()
    };
    let kid = |k: &SigningKey| k.kid().as_str().to_owned();
    // Oldest activation first.
    assert_eq!(
        summary(s),
        vec![
            (kid(&k0), 50, 100, None, None),
            (kid(&k1), 100, 200, None, None),
            (kid(&k2), 150, 300, None, None),
        ]
    );
    // The private key survives the round trip.
    let listed = s.list().unwrap();
    assert_eq!(listed[1].key.verifying_key(), k1.verifying_key());
    assert_eq!(listed[1].key.sign(b"m"), k1.sign(b"m"));

    assert!(s.mark_removed(&kid(&k0), 400).unwrap());
    assert!(!s.mark_removed(&kid(&k0), 401).unwrap());
    assert!(!s.mark_removed("no-such-kid", 400).unwrap());
    assert!(s.revoke(&kid(&k2), 500).unwrap());
    assert!(!s.revoke(&kid(&k2), 501).unwrap());
    assert!(!s.revoke("no-such-kid", 500).unwrap());
    // Removed and revoked are independent.
    assert!(s.revoke(&kid(&k0), 600).unwrap());
    assert_eq!(
        summary(s),
        vec![
            (kid(&k0), 50, 100, Some(400), Some(600)),
            (kid(&k1), 100, 200, None, None),
            (kid(&k2), 150, 300, None, Some(500)),
        ]
    );
}

#[test]
fn keys_on_sqlite() {
    let (_dir, path) = sqlite_file();
    keys(&SqliteSigningKeys::open(&path).unwrap());
}

#[test]
fn keys_on_postgres() {
    if let Some(db) = pg("keys_on_postgres") {
        keys(&PgSigningKeys::new(db));
    }
}

// ---------------------------------------------------------------------------------------
// Policies

fn texts(n: u8) -> (Sha256Digest, PolicyTexts) {
    let texts = PolicyTexts {
        schema: format!("schema {n}"),
        policies: format!("permit(principal, action, resource); // {n}"),
        entities: format!("[{{\"n\": {n}, \"é\": \"ü\"}}]"),
    };
    (Sha256Digest::of(&[n]), texts)
}

fn policies(s: &dyn PolicyStore) {
    assert_eq!(s.in_force().unwrap(), None);
    assert!(s.retired().unwrap().is_empty());
    let (d1, t1) = texts(1);
    let (d2, t2) = texts(2);
    let (d3, _) = texts(3);

    s.apply(&d1, &t1, 100).unwrap();
    assert_eq!(s.in_force().unwrap(), Some((d1, t1.clone())));
    assert!(matches!(
        s.retire(&d1, 110),
        Err(StoreError::InForce(hex)) if hex == d1.to_hex()
    ));
    assert!(s.retired().unwrap().is_empty());

    s.apply(&d2, &t2, 200).unwrap();
    assert_eq!(s.in_force().unwrap(), Some((d2, t2.clone())));
    // Applying a known digest again puts it back in force with the texts first stored.
    let other = PolicyTexts {
        schema: "changed".into(),
        ..t1.clone()
    };
    s.apply(&d1, &other, 300).unwrap();
    assert_eq!(s.in_force().unwrap(), Some((d1, t1.clone())));
    s.apply(&d2, &t2, 400).unwrap();

    assert!(s.retire(&d1, 500).unwrap());
    assert!(!s.retire(&d1, 501).unwrap());
    assert_eq!(s.retired().unwrap(), vec![d1]);
    assert!(matches!(
        s.apply(&d1, &t1, 600),
        Err(StoreError::Retired(hex)) if hex == d1.to_hex()
    ));
    assert_eq!(s.in_force().unwrap(), Some((d2, t2.clone())));

    // A digest never applied can be retired, and is refused from then on.
    assert!(s.retire(&d3, 700).unwrap());
    let mut expected = vec![d1, d3];
    expected.sort_by_key(|d| d.to_hex());
    assert_eq!(s.retired().unwrap(), expected);
    assert!(matches!(
        s.apply(&d3, &texts(3).1, 800),
        Err(StoreError::Retired(_))
    ));
    assert!(matches!(s.retire(&d2, 900), Err(StoreError::InForce(_))));
    assert_eq!(s.in_force().unwrap(), Some((d2, t2)));
}

#[test]
fn policies_on_sqlite() {
    let (_dir, path) = sqlite_file();
    policies(&SqlitePolicies::open(&path).unwrap());
}

#[test]
fn policies_on_postgres() {
    if let Some(db) = pg("policies_on_postgres") {
        policies(&PgPolicies::new(db));
    }
}

// ---------------------------------------------------------------------------------------
// Approvals

pub fn request(id: &str, created_at: u64, expires_at: u64) -> ApprovalRequest {
    ApprovalRequest {
        id: id.into(),
        principal: "bot".into(),
        request: json!({
            "action": "pay",
            "resource": {"amount": 12.5, "to": "Zoë", "tags": ["a", null, true]},
        }),
        request_sha256: Sha256Digest::of(id.as_bytes()),
        approvals_required: 2,
        approver_group: "finance".into(),
        created_at,
        expires_at,
        state: RequestState::Pending,
        outcome: None,
        votes: Vec::new(),
    }
}

pub fn vote(approver: &str, sig: &str, at: u64) -> Vote {
    Vote {
        approver: approver.into(),
        verdict: ApprovalVerdict::Approve,
        at,
        expires: at + 600,
        sig: sig.into(),
    }
}

fn approvals(s: &dyn ApprovalStore) {
    assert_eq!(s.get("r1").unwrap(), None);
    assert!(s.list(RequestState::Pending).unwrap().is_empty());

    // What `create` stores is a pending request without votes, whatever it is given.
    s.create(&ApprovalRequest {
        state: RequestState::Permit,
        outcome: Some(json!({"no": "thanks"})),
        votes: vec![vote("mallory", "sig-m", 1)],
        ..request("r1", 100, 1000)
    })
    .unwrap();
    assert_eq!(s.get("r1").unwrap(), Some(request("r1", 100, 1000)));
    assert!(s.create(&request("r1", 1, 2)).is_err());
    assert_eq!(s.get("r1").unwrap(), Some(request("r1", 100, 1000)));
    s.create(&request("r2", 50, 5000)).unwrap();
    s.create(&request("R0", 100, 900)).unwrap();
    s.create(&request("r0", 100, 1000)).unwrap();

    // Votes: one per approver, one use per signature (on any request).
    s.vote("r1", &vote("alice", "s1", 200)).unwrap();
    assert!(matches!(
        s.vote("r1", &vote("alice", "s2", 201)),
        Err(StoreError::DuplicateVote(who)) if who == "alice"
    ));
    assert!(matches!(
        s.vote("r1", &vote("bob", "s1", 202)),
        Err(StoreError::DuplicateVote(who)) if who == "bob"
    ));
    assert!(matches!(
        s.vote("r2", &vote("alice", "s1", 203)),
        Err(StoreError::DuplicateVote(_))
    ));
    s.vote("r1", &vote("bob", "s3", 150)).unwrap();
    s.vote("r1", &vote("Carol", "s4", 200)).unwrap();
    let reject = Vote {
        verdict: ApprovalVerdict::Reject,
        ..vote("dave", "s5", 200)
    };
    s.vote("r1", &reject).unwrap();
    s.vote("r2", &vote("alice", "s6", 210)).unwrap();
    assert!(matches!(
        s.vote("nope", &vote("carol", "s7", 200)),
        Err(StoreError::UnknownRequest(id)) if id == "nope"
    ));

    // Votes come oldest first, then by approver in byte order.
    let r1 = s.get("r1").unwrap().unwrap();
    assert_eq!(r1.state, RequestState::Pending);
    assert_eq!(
        r1.votes,
        vec![
            vote("bob", "s3", 150),
            vote("Carol", "s4", 200),
            vote("alice", "s1", 200),
            reject.clone(),
        ]
    );

    // Listing: oldest first, then by id in byte order.
    let ids = |list: Vec<ApprovalRequest>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list(RequestState::Pending).unwrap()),
        ["r2", "R0", "r0", "r1"]
    );
    let listed = s.list(RequestState::Pending).unwrap();
    assert_eq!(listed[3], r1);
    assert_eq!(listed[0].votes, vec![vote("alice", "s6", 210)]);
    assert!(listed[1].votes.is_empty());
    assert!(s.list(RequestState::Permit).unwrap().is_empty());

    // What a pending request needs can change; an unknown one is not an error.
    s.require("r2", 3, "finance-leads").unwrap();
    let r2 = s.get("r2").unwrap().unwrap();
    assert_eq!(
        (r2.approvals_required, r2.approver_group.as_str()),
        (3, "finance-leads")
    );
    s.require("nope", 3, "x").unwrap();

    // Due: pending and expired by `now` (inclusive).
    let mut due = s.due(999).unwrap();
    due.sort();
    assert_eq!(due, ["R0"]);
    let mut due = s.due(1000).unwrap();
    due.sort();
    assert_eq!(due, ["R0", "r0", "r1"]);

    // Settling: once; every later settlement, vote or requirement change is refused.
    let outcome = json!({"decision": "permit", "writ": {"jti": "x"}});
    assert!(s.settle("r1", RequestState::Permit, &outcome).unwrap());
    assert!(!s.settle("r1", RequestState::Deny, &json!({})).unwrap());
    assert!(!s.settle("nope", RequestState::Deny, &json!({})).unwrap());
    assert!(matches!(
        s.vote("r1", &vote("erin", "s8", 300)),
        Err(StoreError::RequestClosed(state)) if state == "permit"
    ));
    // Closed is reported before duplicate.
    assert!(matches!(
        s.vote("r1", &vote("alice", "s1", 300)),
        Err(StoreError::RequestClosed(_))
    ));
    s.require("r1", 9, "nobody").unwrap();
    let settled = s.get("r1").unwrap().unwrap();
    assert_eq!(
        settled,
        ApprovalRequest {
            state: RequestState::Permit,
            outcome: Some(outcome),
            ..r1
        }
    );
    assert_eq!(s.list(RequestState::Permit).unwrap(), vec![settled]);

    assert!(s.settle("r0", RequestState::Expired, &json!(null)).unwrap());
    assert!(s
        .settle("R0", RequestState::Rejected, &json!("no"))
        .unwrap());
    assert!(matches!(
        s.vote("R0", &vote("frank", "s9", 300)),
        Err(StoreError::RequestClosed(state)) if state == "rejected"
    ));
    assert_eq!(s.get("r0").unwrap().unwrap().outcome, Some(json!(null)));
    assert_eq!(ids(s.list(RequestState::Expired).unwrap()), ["r0"]);
    assert_eq!(ids(s.list(RequestState::Rejected).unwrap()), ["R0"]);
    assert_eq!(ids(s.list(RequestState::Pending).unwrap()), ["r2"]);
    assert!(s.due(u64::MAX).unwrap().iter().all(|id| id == "r2"));
    assert!(s
        .settle("r2", RequestState::Deny, &json!({"why": "policy"}))
        .unwrap());
    assert!(s.due(u64::MAX).unwrap().is_empty());
}

#[test]
fn approvals_on_sqlite() {
    let (_dir, path) = sqlite_file();
    approvals(&SqliteApprovals::open(&path).unwrap());
}

#[test]
fn approvals_on_postgres() {
    if let Some(db) = pg("approvals_on_postgres") {
        approvals(&PgApprovals::new(db));
    }
}

// ---------------------------------------------------------------------------------------
// Revocations

fn jti(n: u8) -> Jti {
    Jti::from_bytes([n; 16])
}

fn check(s: &dyn RevocationStore, id: &Jti, ancestors: &[Jti], who: [&str; 2]) -> RevocationState {
    s.check(&RevocationSubject {
        jti: id,
        ancestors,
        principals: who,
    })
    .unwrap()
}

/// `consume` spends one use of a writ kept until the given time (the trait has no consume:
/// the log writer does it), so `purge` has something to forget.
fn revocations(s: &dyn RevocationStore, consume: &dyn Fn(&Jti, UnixTime)) {
    let who = ["agent-c", "gate"];
    let (root, child, grandchild, other) = (jti(1), jti(2), jti(3), jti(4));
    for id in [&root, &child, &grandchild, &other] {
        assert_eq!(check(s, id, &[], who), RevocationState::Valid);
    }
    assert!(s.ancestry(&root).unwrap().is_empty());

    s.record_link(&child, &root, "agent-b", "agent-a").unwrap();
    s.record_link(&grandchild, &child, "agent-c", "agent-b")
        .unwrap();
    // The first link recorded for a writ holds.
    s.record_link(&grandchild, &other, "x", "y").unwrap();
    assert_eq!(
        s.ancestry(&grandchild).unwrap(),
        vec![
            (child, "agent-b".to_owned(), "agent-a".to_owned()),
            (grandchild, "agent-c".to_owned(), "agent-b".to_owned()),
        ]
    );
    assert_eq!(
        s.ancestry(&child).unwrap(),
        vec![(child, "agent-b".to_owned(), "agent-a".to_owned())]
    );
    assert!(s.ancestry(&root).unwrap().is_empty());
    assert_eq!(check(s, &grandchild, &[], who), RevocationState::Valid);

    // Revoking the root revokes everything recorded below it, and nothing else.
    s.revoke_writ(&root).unwrap();
    s.revoke_writ(&root).unwrap();
    assert_eq!(
        check(s, &root, &[], who),
        RevocationState::Revoked(format!("writ `{root}`"))
    );
    for id in [&child, &grandchild] {
        assert_eq!(
            check(s, id, &[], who),
            RevocationState::Revoked(format!("an ancestor of writ `{id}`"))
        );
    }
    assert_eq!(check(s, &other, &[], who), RevocationState::Valid);
    // Ancestors the writ itself names count too, recorded or not.
    assert_eq!(
        check(s, &other, &[jti(9), root], who),
        RevocationState::Revoked(format!("writ `{root}`"))
    );
    assert_eq!(check(s, &other, &[jti(9)], who), RevocationState::Valid);

    // A revoked principal revokes every writ naming it, as initiator or executor.
    s.revoke_principal("agent-x").unwrap();
    s.revoke_principal("agent-x").unwrap();
    assert_eq!(check(s, &other, &[], who), RevocationState::Valid);
    for names in [["agent-x", "gate"], ["agent-c", "agent-x"]] {
        assert_eq!(
            check(s, &other, &[], names),
            RevocationState::Revoked("principal `agent-x`".into())
        );
    }

    // Purge forgets consumed ids kept until before `now`.
    assert_eq!(s.purge(UnixTime(1_000)).unwrap(), 0);
    consume(&jti(20), UnixTime(100));
    consume(&jti(21), UnixTime(300));
    consume(&jti(22), UnixTime(300));
    assert_eq!(s.purge(UnixTime(100)).unwrap(), 0);
    assert_eq!(s.purge(UnixTime(200)).unwrap(), 1);
    assert_eq!(s.purge(UnixTime(200)).unwrap(), 0);
    assert_eq!(s.purge(UnixTime(301)).unwrap(), 2);
}

#[test]
fn revocations_on_sqlite() {
    let (_dir, path) = sqlite_file();
    let s = SqliteReplayStore::open(&path).unwrap();
    let consume = |id: &Jti, keep: UnixTime| {
        let subject = RevocationSubject {
            jti: id,
            ancestors: &[],
            principals: ["a", "b"],
        };
        s.consume(id, 1, keep, &subject).unwrap();
    };
    revocations(&s, &consume);
}

#[test]
fn revocations_on_postgres() {
    let Some(db) = pg("revocations_on_postgres") else {
        return;
    };
    let consume = |id: &Jti, keep: UnixTime| {
        let (id, keep) = (id.as_bytes().to_vec(), keep.as_secs() as i64);
        db.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO consumed (jti, spent, keep_until) VALUES ($1, 1, $2)",
                    &[&id, &keep],
                )
                .await?;
            Ok(())
        })
        .unwrap();
    };
    revocations(&PgRevocations::new(db.clone()), &consume);
}
