//! Human approvals through the HTTP interface: a pending decision, signed approvals, a
//! quorum that releases exactly one writ, and every way an approval must not count.

use axum::http::StatusCode;
use serde_json::{json, Value};
use writ_core::{
    parse_unverified, ApprovalObject, ApprovalVerdict, RequestTerms, Sha256Digest, SigningKey,
};
use writ_store::{Role, SqlitePrincipals};

use crate::authorize::{call, fixture, fixture_with, Fixture, ISSUER};

struct Approver {
    token: String,
    key: SigningKey,
}

struct Team {
    /// An agent in `payments`.
    bot: String,
    alice: Approver,
    bob: Approver,
    carol: Approver,
    /// In `finance-leads`, a child group of `finance` in the example entities.
    lead: Approver,
    /// An approver outside finance.
    outsider: Approver,
    /// An approver in finance with no approval key.
    keyless: String,
}

fn add(store: &SqlitePrincipals, name: &str, role: Role, groups: &[&str]) -> String {
    let token = format!("writ_test_{name}");
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    store
        .add(name, role, &groups, &Sha256Digest::of(token.as_bytes()), 1)
        .unwrap();
    token
}

fn approver(store: &SqlitePrincipals, name: &str, groups: &[&str], seed: u8) -> Approver {
    let token = add(store, name, Role::Approver, groups);
    let key = SigningKey::from_seed(&[seed; 32]);
    store.set_approval_key(name, &key.verifying_key()).unwrap();
    Approver { token, key }
}

fn team(f: &Fixture) -> Team {
    let store = SqlitePrincipals::open(&f.dir.path().join("writ.db")).unwrap();
    Team {
        bot: add(&store, "finance-bot", Role::Agent, &["payments"]),
        alice: approver(&store, "alice", &["finance"], 1),
        bob: approver(&store, "bob", &["finance"], 2),
        carol: approver(&store, "carol", &["finance"], 3),
        lead: approver(&store, "lena", &["finance-leads"], 4),
        outsider: approver(&store, "oscar", &["engineering"], 5),
        keyless: add(&store, "kim", Role::Approver, &["finance"]),
    }
}

fn pay(amount: u64) -> String {
    json!({
        "action": "pay",
        "resource": "account:acme",
        "args": {"amount": amount, "currency": "EUR", "memo": "invoice 42"},
        "audience": "gate-1",
    })
    .to_string()
}

/// Asks for a payment that needs approval; the answer is 202 pending.
async fn ask(f: &Fixture, team: &Team, amount: u64) -> Value {
    let (status, body) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&team.bot),
        Some(pay(amount)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["decision"], "pending", "{body}");
    assert_eq!(body["approvals_required"], 2);
    assert_eq!(body["approver_group"], "finance");
    assert!(body.get("writ").is_none());
    body
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(
    verdict: ApprovalVerdict,
    authority: &str,
    id: &str,
    digest: &str,
    expires: u64,
    key: &SigningKey,
) -> String {
    let object = ApprovalObject {
        verdict,
        authority: authority.into(),
        request_id: id.into(),
        request_sha256: Sha256Digest::from_hex(digest).unwrap(),
        expires,
    };
    let sig = object.sign(key);
    json!({"approval": object, "sig": sig}).to_string()
}

/// The approval `who` would send for `pending` (a 202 body or a request view).
fn approval(pending: &Value, key: &SigningKey) -> String {
    signed(
        ApprovalVerdict::Approve,
        ISSUER,
        pending["request_id"].as_str().unwrap(),
        pending["request_sha256"].as_str().unwrap(),
        now() + 600,
        key,
    )
}

async fn vote(f: &Fixture, token: &str, id: &str, body: String) -> (StatusCode, Value) {
    call(
        &f.app,
        "POST",
        &format!("/v1/requests/{id}/approvals"),
        Some(token),
        Some(body),
    )
    .await
}

/// `GET /v1/requests/{id}` as `token` (no wait).
async fn request_view(f: &Fixture, token: &str, id: &str) -> Value {
    call(
        &f.app,
        "GET",
        &format!("/v1/requests/{id}"),
        Some(token),
        None,
    )
    .await
    .1
}

fn id(pending: &Value) -> &str {
    pending["request_id"].as_str().unwrap()
}

async fn entry(f: &Fixture, index: u64) -> Value {
    let (_, entries) = call(
        &f.app,
        "GET",
        &format!("/v1/log/entries?from={index}&limit=1"),
        None,
        None,
    )
    .await;
    entries["entries"][0]["entry"].clone()
}

async fn all_entries(f: &Fixture) -> Vec<Value> {
    let (_, entries) = call(
        &f.app,
        "GET",
        "/v1/log/entries?from=0&limit=1000",
        None,
        None,
    )
    .await;
    entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].clone())
        .collect()
}

#[tokio::test]
async fn two_of_three_release_exactly_one_writ_carrying_both_approvals() {
    let f = fixture();
    let t = team(&f);
    let pending = ask(&f, &t, 25_000).await;
    let rid = id(&pending).to_owned();
    let logged = entry(&f, pending["log_index"].as_u64().unwrap()).await;
    assert_eq!(logged["decision"], "pending");
    assert_eq!(logged["request_id"], rid.as_str());
    assert_eq!(logged["request_sha256"], pending["request_sha256"]);

    // Approvers see the exact terms.
    let (status, list) = call(&f.app, "GET", "/v1/requests", Some(&t.alice.token), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let shown = &list["requests"][0];
    assert_eq!(shown["request_id"], rid.as_str());
    assert_eq!(
        shown["args"],
        json!({"amount": 25000, "currency": "EUR", "memo": "invoice 42"})
    );
    assert_eq!(
        shown["args_sha256"],
        writ_core::canonical::args_digest(&shown["args"])
            .unwrap()
            .to_hex()
    );
    assert_eq!(shown["request_sha256"], pending["request_sha256"]);
    assert_eq!(shown["state"], "pending");
    // Agents do not list requests.
    let (status, _) = call(&f.app, "GET", "/v1/requests", Some(&t.bot), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, after_one) =
        vote(&f, &t.alice.token, &rid, approval(&pending, &t.alice.key)).await;
    assert_eq!(status, StatusCode::OK, "{after_one}");
    assert_eq!(after_one["state"], "pending");
    assert_eq!(after_one["approvals"].as_array().unwrap().len(), 1);

    // The second approval is through a sub-group of finance: quorum.
    let (status, settled) = vote(&f, &t.lead.token, &rid, approval(&pending, &t.lead.key)).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!(settled["state"], "permit", "{settled}");
    assert!(
        settled.get("writ").is_none(),
        "only the requester receives the writ"
    );

    // The third approval comes too late.
    let (status, late) = vote(&f, &t.bob.token, &rid, approval(&pending, &t.bob.key)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{late}");
    assert_eq!(late["error"]["code"], "request_closed");

    // The requester gets the writ; it carries both approvals, each verifiable.
    let (status, mine) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let writ = mine["writ"].as_str().expect("the requester sees the writ");
    let claims = parse_unverified(writ).unwrap().claims().clone();
    assert_eq!(claims.sub, "finance-bot");
    assert_eq!(claims.uses, 1);
    assert!(claims.exp - claims.iat <= 60);
    let gov = claims.gov.clone().expect("gov");
    let approvers: Vec<&str> = gov.approvals.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(approvers, ["alice", "lena"]);
    let digest = RequestTerms::of_claims(&claims).digest();
    assert_eq!(digest.to_hex(), pending["request_sha256"].as_str().unwrap());
    for (a, key) in gov.approvals.iter().zip([&t.alice.key, &t.lead.key]) {
        // The object is rebuilt from the writ and the `approval` entry (request id, expires).
        let logged = all_entries(&f)
            .await
            .into_iter()
            .find(|e| e["type"] == "approval" && e["approver"] == a.approver.as_str())
            .unwrap();
        let object = ApprovalObject {
            verdict: ApprovalVerdict::Approve,
            authority: claims.iss.clone(),
            request_id: rid.clone(),
            request_sha256: digest,
            expires: logged["expires"].as_u64().unwrap(),
        };
        object.verify(&a.sig, &key.verifying_key()).unwrap();
        assert_eq!(logged["sig"], a.sig.as_str());
    }

    // Exactly one writ: one permit decision for this request in the log.
    let entries = all_entries(&f).await;
    let permits: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["type"] == "decision" && e["decision"] == "permit" && e["request_id"] == rid.as_str()
        })
        .collect();
    assert_eq!(permits.len(), 1);
    assert_eq!(permits[0]["jti"], claims.jti.to_string());
    assert_eq!(
        permits[0]["writ_sha256"],
        Sha256Digest::of(writ.as_bytes()).to_hex()
    );
    assert_eq!(permits[0]["approvals"].as_array().unwrap().len(), 2);
    let approvals = entries.iter().filter(|e| e["type"] == "approval").count();
    assert_eq!(approvals, 2, "the refused third approval is not logged");
}

#[tokio::test]
async fn approvals_that_must_not_count_are_refused_with_their_codes() {
    let f = fixture();
    let t = team(&f);
    let pending = ask(&f, &t, 25_000).await;
    let rid = id(&pending).to_owned();
    let digest = pending["request_sha256"].as_str().unwrap().to_owned();
    let other = ask(&f, &t, 25_001).await;
    assert_ne!(
        other["request_sha256"], pending["request_sha256"],
        "25,001 is other terms"
    );
    let later = now() + 600;
    let approve = ApprovalVerdict::Approve;

    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        // The requester approving itself.
        (
            "self",
            &t.bot,
            approval(&pending, &t.alice.key),
            StatusCode::FORBIDDEN,
            "self_approval",
        ),
        // An approver outside the group.
        (
            "outsider",
            &t.outsider.token,
            approval(&pending, &t.outsider.key),
            StatusCode::FORBIDDEN,
            "not_an_approver",
        ),
        // An approver without a registered key.
        (
            "keyless",
            &t.keyless,
            approval(&pending, &t.alice.key),
            StatusCode::FORBIDDEN,
            "no_approval_key",
        ),
        // A principal that is no approver at all.
        (
            "executor",
            &f.executor,
            approval(&pending, &t.alice.key),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        // Signed for another request, sent to this one.
        (
            "other request",
            &t.alice.token,
            approval(&other, &t.alice.key),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request_mismatch",
        ),
        // This request's id with the other request's terms.
        (
            "other terms",
            &t.alice.token,
            signed(
                approve,
                ISSUER,
                &rid,
                other["request_sha256"].as_str().unwrap(),
                later,
                &t.alice.key,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request_mismatch",
        ),
        // Signed for another authority.
        (
            "other authority",
            &t.alice.token,
            signed(
                approve,
                "https://evil.example",
                &rid,
                &digest,
                later,
                &t.alice.key,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_authority",
        ),
        // Expired before it arrived.
        (
            "expired approval",
            &t.alice.token,
            signed(approve, ISSUER, &rid, &digest, now() - 1, &t.alice.key),
            StatusCode::UNPROCESSABLE_ENTITY,
            "approval_expired",
        ),
        // Signed with somebody else's key (bob's approval sent by alice).
        (
            "stolen",
            &t.alice.token,
            approval(&pending, &t.bob.key),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_signature",
        ),
    ];
    for (name, token, body, status, code) in cases {
        let (got, answer) = vote(&f, token, &rid, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {answer}"
        );
    }
    // A body that is not the approval object at all.
    let (got, _) = vote(
        &f,
        &t.alice.token,
        &rid,
        json!({"approval": {"type": "writ-approval-v1"}, "sig": "x"}).to_string(),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    let (got, _) = vote(
        &f,
        &t.alice.token,
        "no-such-request",
        approval(&pending, &t.alice.key),
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);

    // None of them counted or was logged.
    let (_, view) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.alice.token),
        None,
    )
    .await;
    assert_eq!(view["approvals"], json!([]));
    assert_eq!(view["state"], "pending");
    assert!(all_entries(&f)
        .await
        .iter()
        .all(|e| e["type"] != "approval"));

    // An approval counts once: the same approver again, and the same signed body replayed.
    let first = approval(&pending, &t.alice.key);
    let (got, _) = vote(&f, &t.alice.token, &rid, first.clone()).await;
    assert_eq!(got, StatusCode::OK);
    let (got, answer) = vote(&f, &t.alice.token, &rid, first).await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_approval"))
    );
    let again = signed(approve, ISSUER, &rid, &digest, later + 1, &t.alice.key);
    let (got, answer) = vote(&f, &t.alice.token, &rid, again).await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_approval"))
    );
    let (_, view) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(
        view["state"], "pending",
        "one approver twice is not a quorum of two"
    );
    assert_eq!(view["approvals"].as_array().unwrap().len(), 1);

    // Others may not look at the request.
    let (got, _) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&f.agent),
        None,
    )
    .await;
    assert_eq!(got, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn one_rejection_ends_the_request() {
    let f = fixture();
    let t = team(&f);
    let pending = ask(&f, &t, 30_000).await;
    let rid = id(&pending).to_owned();
    let (got, _) = vote(&f, &t.alice.token, &rid, approval(&pending, &t.alice.key)).await;
    assert_eq!(got, StatusCode::OK);
    let reject = signed(
        ApprovalVerdict::Reject,
        ISSUER,
        &rid,
        pending["request_sha256"].as_str().unwrap(),
        now() + 600,
        &t.carol.key,
    );
    let (got, view) = vote(&f, &t.carol.token, &rid, reject).await;
    assert_eq!(got, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "rejected");
    assert_eq!(view["rejected_by"], "carol");
    let (got, answer) = vote(&f, &t.bob.token, &rid, approval(&pending, &t.bob.key)).await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_closed"))
    );
    let (_, mine) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(mine["state"], "rejected");
    assert!(mine.get("writ").is_none());
    let entries = all_entries(&f).await;
    assert!(entries
        .iter()
        .any(|e| e["type"] == "approval" && e["event"] == "rejected" && e["approver"] == "carol"));
    assert!(!entries
        .iter()
        .any(|e| e["type"] == "decision" && e["decision"] == "permit"));
}

#[tokio::test]
async fn an_expired_request_takes_no_approval_and_is_logged() {
    let f = fixture_with(|c| c.approval_ttl_secs = 30);
    let t = team(&f);
    let pending = ask(&f, &t, 40_000).await;
    let rid = id(&pending).to_owned();
    assert!(pending["expires_at"].as_u64().unwrap() <= now() + 30);
    // Time passes (the upkeep task does this every second).
    f.authority.expire_requests(now() + 31).unwrap();
    let (_, view) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(view["state"], "expired");
    let (got, answer) = vote(&f, &t.alice.token, &rid, approval(&pending, &t.alice.key)).await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_closed"))
    );
    assert!(all_entries(&f).await.iter().any(|e| e["type"] == "approval"
        && e["event"] == "expired"
        && e["request_id"] == rid.as_str()));
    // The default is 15 minutes.
    assert_eq!(
        writ_authority::AuthorityConfig::new("x").approval_ttl_secs,
        900
    );
}

#[tokio::test]
async fn approvals_survive_a_restart() {
    let mut f = fixture();
    let t = team(&f);
    let pending = ask(&f, &t, 25_000).await;
    let rid = id(&pending).to_owned();
    let (got, _) = vote(&f, &t.alice.token, &rid, approval(&pending, &t.alice.key)).await;
    assert_eq!(got, StatusCode::OK);
    f.restart();
    let (_, view) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(view["state"], "pending");
    assert_eq!(view["approvals"][0]["approver"], "alice");
    let (got, view) = vote(&f, &t.bob.token, &rid, approval(&pending, &t.bob.key)).await;
    assert_eq!(got, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "permit");
}

#[tokio::test]
async fn the_requester_waits_with_a_long_poll() {
    let f = fixture();
    let t = team(&f);
    let pending = ask(&f, &t, 25_000).await;
    let rid = id(&pending).to_owned();
    let app = f.app.clone();
    let bot = t.bot.clone();
    let path = format!("/v1/requests/{rid}?wait=8");
    let waiter = tokio::spawn(async move { call(&app, "GET", &path, Some(&bot), None).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the long poll waits while pending");
    for a in [&t.alice, &t.bob] {
        let (got, _) = vote(&f, &a.token, &rid, approval(&pending, &a.key)).await;
        assert_eq!(got, StatusCode::OK);
    }
    let (got, view) = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("the long poll answers once settled")
        .unwrap();
    assert_eq!(got, StatusCode::OK);
    assert_eq!(view["state"], "permit");
    assert!(view["writ"].as_str().is_some());
    // A wait on a settled request answers at once.
    let (_, again) = call(
        &f.app,
        "GET",
        &format!("/v1/requests/{rid}?wait=30"),
        Some(&t.bot),
        None,
    )
    .await;
    assert_eq!(again["writ"], view["writ"]);
}

/// Policy is evaluated again at quorum: a set applied in between rules.
#[tokio::test]
async fn a_policy_change_between_request_and_quorum_is_honoured() {
    let f = fixture();
    let t = team(&f);
    let first = ask(&f, &t, 25_000).await;
    let second = ask(&f, &t, 26_000).await;

    // The new set asks for three approvals.
    let stricter = writ_policy::EXAMPLE_POLICIES.replace(
        "@id(\"approve-large-payments\")\n@approvals(\"2\")",
        "@id(\"approve-large-payments\")\n@approvals(\"3\")",
    );
    assert_ne!(stricter, writ_policy::EXAMPLE_POLICIES);
    apply(&f, &stricter).await;
    for a in [&t.alice, &t.bob] {
        let (got, _) = vote(&f, &a.token, id(&first), approval(&first, &a.key)).await;
        assert_eq!(got, StatusCode::OK);
    }
    let view = request_view(&f, &t.bot, id(&first)).await;
    assert_eq!(view["state"], "pending", "two are no longer enough: {view}");
    assert_eq!(view["approvals_required"], 3);
    let (_, view) = vote(
        &f,
        &t.carol.token,
        id(&first),
        approval(&first, &t.carol.key),
    )
    .await;
    assert_eq!(view["state"], "permit", "{view}");

    // The next set forbids such payments: at quorum the request is denied.
    let forbidding = format!(
        "{stricter}\n@id(\"freeze\")\n@reason(\"payments frozen\")\nforbid (principal, action == Writ::Action::\"pay\", resource);\n"
    );
    apply(&f, &forbidding).await;
    // The second request still counts two (what it asked for): at two it is decided again.
    for a in [&t.alice, &t.bob] {
        let (got, _) = vote(&f, &a.token, id(&second), approval(&second, &a.key)).await;
        assert_eq!(got, StatusCode::OK);
    }
    let view = request_view(&f, &t.bot, id(&second)).await;
    assert_eq!(view["state"], "deny", "{view}");
    assert_eq!(view["reasons"][0]["policy"], "freeze");
    assert!(view.get("writ").is_none());
    let entries = all_entries(&f).await;
    assert!(entries.iter().any(|e| e["type"] == "decision"
        && e["decision"] == "deny"
        && e["request_id"] == second["request_id"]));
}

async fn apply(f: &Fixture, policies: &str) {
    let body = json!({
        "schema": writ_policy::EXAMPLE_SCHEMA,
        "policies": policies,
        "entities": writ_policy::EXAMPLE_ENTITIES,
    });
    let (got, answer) = call(
        &f.app,
        "PUT",
        "/v1/policy",
        Some(&f.admin),
        Some(body.to_string()),
    )
    .await;
    assert_eq!(got, StatusCode::OK, "{answer}");
}

/// Approvals racing to the quorum release one writ, never two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_release_one_writ() {
    let f = fixture();
    let t = team(&f);
    for round in 0..10 {
        let pending = ask(&f, &t, 20_000 + round).await;
        let rid = id(&pending).to_owned();
        let mut tasks = Vec::new();
        for a in [&t.alice, &t.bob, &t.carol, &t.lead] {
            let (app, token, body, path) = (
                f.app.clone(),
                a.token.clone(),
                approval(&pending, &a.key),
                format!("/v1/requests/{rid}/approvals"),
            );
            tasks.push(tokio::spawn(async move {
                call(&app, "POST", &path, Some(&token), Some(body)).await
            }));
        }
        let mut taken = 0;
        for task in tasks {
            let (got, answer) = task.await.unwrap();
            match got {
                StatusCode::OK => taken += 1,
                StatusCode::CONFLICT => assert_eq!(answer["error"]["code"], "request_closed"),
                other => panic!("{other}: {answer}"),
            }
        }
        assert_eq!(
            taken, 2,
            "round {round}: the quorum is two, the rest come too late"
        );
        let permits = all_entries(&f)
            .await
            .into_iter()
            .filter(|e| e["decision"] == "permit" && e["request_id"] == rid.as_str())
            .count();
        assert_eq!(permits, 1, "round {round}");
    }
}

/// Two authority nodes on one PostgreSQL database: approvals given at either count, and when
/// the last two arrive at both nodes at once, exactly one writ is issued and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_reaching_the_quorum_together_issue_one_writ() {
    let Ok(base) = std::env::var("WRIT_TEST_DATABASE_URL") else {
        eprintln!("skipped: WRIT_TEST_DATABASE_URL is not set (PostgreSQL tests)");
        return;
    };
    let url = writ_store::postgres::scratch_url(&base).unwrap();
    let node = |seed: u8| {
        let db = writ_store::PgDatabase::connect(&url).unwrap();
        let signer = writ_log::NoteSigner::from_seed("writ.test/log", &[3; 32]).unwrap();
        let log = writ_store::postgres::PgLog::open_or_create(db.clone(), "writ.test/log", signer)
            .unwrap();
        let policy = writ_policy::PolicySet::from_texts(
            writ_policy::EXAMPLE_SCHEMA,
            writ_policy::EXAMPLE_POLICIES,
            writ_policy::EXAMPLE_ENTITIES,
        )
        .unwrap();
        let authority = std::sync::Arc::new(
            writ_authority::Authority::new(
                writ_authority::AuthorityConfig::new(ISSUER),
                SigningKey::from_seed(&[seed; 32]),
                writ_authority::Stores::postgres(db, log),
                policy,
            )
            .unwrap(),
        );
        (writ_authority::router(authority.clone()), authority)
    };
    let (a, authority) = node(9);
    let (b, _) = node(10);
    let principals = authority.principals();
    let add = |name: &str, role: Role, groups: &[&str]| {
        let token = format!("writ_test_{name}");
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        principals
            .add(name, role, &groups, &Sha256Digest::of(token.as_bytes()), 1)
            .unwrap();
        token
    };
    let bot = add("finance-bot", Role::Agent, &["payments"]);
    add("gate-1", Role::Executor, &[]);
    let approvers: Vec<Approver> = (0..3u8)
        .map(|k| {
            let name = format!("approver-{k}");
            let token = add(&name, Role::Approver, &["finance"]);
            let key = SigningKey::from_seed(&[40 + k; 32]);
            principals
                .set_approval_key(&name, &key.verifying_key())
                .unwrap();
            Approver { token, key }
        })
        .collect();

    for round in 0..10u64 {
        let (status, pending) = call(
            &a,
            "POST",
            "/v1/authorize",
            Some(&bot),
            Some(pay(30_000 + round)),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
        let rid = id(&pending).to_owned();
        // One approval at node B, then the last two at both nodes at once.
        let (got, _) = vote_at(&b, &approvers[0], &rid, &pending).await;
        assert_eq!(got, StatusCode::OK);
        let racers: Vec<_> = [(&a, &approvers[1]), (&b, &approvers[2])]
            .into_iter()
            .map(|(app, who)| {
                let (app, token, body, path) = (
                    app.clone(),
                    who.token.clone(),
                    approval(&pending, &who.key),
                    format!("/v1/requests/{rid}/approvals"),
                );
                tokio::spawn(
                    async move { call(&app, "POST", &path, Some(&token), Some(body)).await },
                )
            })
            .collect();
        for racer in racers {
            let (got, answer) = racer.await.unwrap();
            assert!(
                got == StatusCode::OK || answer["error"]["code"] == "request_closed",
                "{got}: {answer}"
            );
        }
        let (_, view) = call(&b, "GET", &format!("/v1/requests/{rid}"), Some(&bot), None).await;
        assert_eq!(view["state"], "permit", "{view}");
        let (_, entries) = call(&a, "GET", "/v1/log/entries?from=0&limit=1000", None, None).await;
        let permits: Vec<&Value> = entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["entry"])
            .filter(|e| e["decision"] == "permit" && e["request_id"] == rid.as_str())
            .collect();
        assert_eq!(permits.len(), 1, "round {round}: {permits:?}");
        assert_eq!(permits[0]["jti"], view["jti"]);
    }
}

async fn vote_at(
    app: &axum::Router,
    who: &Approver,
    rid: &str,
    pending: &Value,
) -> (StatusCode, Value) {
    call(
        app,
        "POST",
        &format!("/v1/requests/{rid}/approvals"),
        Some(&who.token),
        Some(approval(pending, &who.key)),
    )
    .await
}

/// A node that settled a request and died before its decision was durable: the settlement is
/// shown as pending (no writ leaves unlogged) until the grace period is over, then any look at
/// the request logs the decision and hands out the writ.
#[tokio::test]
async fn a_settlement_whose_decision_was_never_logged_is_logged_before_its_writ_leaves() {
    let f = fixture();
    let t = team(&f);
    let store = writ_store::SqliteApprovals::open(&f.dir.path().join("writ.db")).unwrap();
    let settle_unlogged = |rid: &str, settled_at: u64| {
        let entry = json!({"type": "decision", "decision": "permit", "principal": "finance-bot",
                           "request_id": rid, "jti": format!("jti-{rid}"), "at": settled_at});
        let outcome = json!({"decision": "permit", "writ": format!("writ-{rid}"),
                             "jti": format!("jti-{rid}"), "expires_at": 9, "log_index": 0,
                             "reasons": [], "unlogged_entry": entry, "settled_at": settled_at});
        assert!(store
            .settle(rid, writ_store::RequestState::Permit, &outcome)
            .unwrap());
    };

    // Settled just now by a node that may still be logging it: shown as pending, no writ.
    let fresh = ask(&f, &t, 25_000).await;
    settle_unlogged(id(&fresh), now());
    let view = request_view(&f, &t.bot, id(&fresh)).await;
    assert_eq!(view["state"], "pending", "{view}");
    assert!(view.get("writ").is_none());

    // Settled long ago and never logged: logged now, then handed out.
    let stalled = ask(&f, &t, 26_000).await;
    settle_unlogged(id(&stalled), 1);
    let view = request_view(&f, &t.bot, id(&stalled)).await;
    assert_eq!(view["state"], "permit", "{view}");
    assert_eq!(view["writ"], format!("writ-{}", id(&stalled)));
    let logged = entry(&f, view["log_index"].as_u64().unwrap()).await;
    assert_eq!(logged["request_id"], stalled["request_id"]);
    assert_eq!(logged["decision"], "permit");
    let entries = all_entries(&f).await;
    assert!(
        !entries
            .iter()
            .any(|e| e["request_id"] == fresh["request_id"] && e["decision"] == "permit"),
        "the fresh settlement is left to its own node"
    );
}
