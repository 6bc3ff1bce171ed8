//! `POST /v1/consume` and `POST /v1/revocations`: single use, proof of possession, signed
//! answers, revocation that holds at once.

use axum::http::StatusCode;
use serde_json::{json, Value};
use writ_core::{sign_pop, verify_answer, KeySet, Sha256Digest, SigningKey, UnixTime};

use crate::authorize::{call, fixture, git_status, request, Fixture};

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub async fn issue(f: &Fixture, body: String) -> String {
    let (status, res) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["decision"], "permit", "{res}");
    res["writ"].as_str().unwrap().to_string()
}

pub fn consume_body(writ: &str, nonce: &str, pop: Option<String>) -> String {
    json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git", "args": git_status(), "nonce": nonce, "pop": pop}).to_string()
}

pub async fn consume(f: &Fixture, token: &str, body: String) -> (StatusCode, Value) {
    call(&f.app, "POST", "/v1/consume", Some(token), Some(body)).await
}

#[tokio::test]
async fn one_use_then_replay_detected_with_signed_answers() {
    let f = fixture();
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    // A wrong presentation (other arguments) is denied and burns nothing.
    let other = json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git", "args": {"argv": ["git", "push"]}, "nonce": "n0"});
    let (_, res) = consume(&f, &f.executor, other.to_string()).await;
    assert_eq!(res["code"], "scope_mismatch");
    let (status, res) = consume(&f, &f.executor, consume_body(&writ, "n1", None)).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["decision"], "permit", "{res}");
    let keys = KeySet::from_jwks_json(&f.authority.keys().to_jwks_json()).unwrap();
    let digest = Sha256Digest::of(writ.as_bytes());
    let answer = verify_answer(res["answer"].as_str().unwrap(), &keys, &digest, "n1").unwrap();
    assert_eq!(answer.decision, "permit");
    // A replayed answer does not satisfy a gate waiting for another nonce.
    assert!(verify_answer(res["answer"].as_str().unwrap(), &keys, &digest, "n2").is_err());

    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n2", None)).await;
    assert_eq!(res["decision"], "deny");
    assert_eq!(res["code"], "replay_detected");
    let answer = verify_answer(res["answer"].as_str().unwrap(), &keys, &digest, "n2").unwrap();
    assert_eq!(answer.code.as_deref(), Some("replay_detected"));

    // Every consumption is in the log.
    let (_, entries) = call(&f.app, "GET", "/v1/log/entries?from=0", None, None).await;
    let kinds: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "consumption").count(), 3);
}

#[tokio::test]
async fn only_the_audience_consumes_and_only_executors_ask() {
    let f = fixture();
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    let (status, _) = consume(&f, &f.agent, consume_body(&writ, "n", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another registered executor cannot consume a writ issued for gate-1.
    let gate2 = "writ_test_gate-2";
    let (status, res) = consume(&f, gate2, consume_body(&writ, "n", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["code"], "audience_mismatch");
    // And that attempt spent nothing: gate-1 still consumes it.
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n", None)).await;
    assert_eq!(res["decision"], "permit", "{res}");
    // A disabled executor's token stops working.
    f.authority.principals().disable("gate-2").unwrap();
    let (status, _) = consume(&f, gate2, consume_body(&writ, "n", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cnf_needs_proof_of_possession() {
    let f = fixture();
    let executor_key = SigningKey::from_seed(&[0x51; 32]);
    let jwk = serde_json::to_value(executor_key.verifying_key().to_jwk()).unwrap();
    let body = json!({"action": "exec", "resource": "/usr/bin/git", "args": git_status(), "audience": "gate-1", "executor_key": jwk});
    let writ = issue(&f, body.to_string()).await;
    let digest = Sha256Digest::of(writ.as_bytes());

    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n1", None)).await;
    assert_eq!(res["code"], "runtime_identity_mismatch");
    let thief = SigningKey::from_seed(&[0x52; 32]);
    let stolen = sign_pop(&thief, digest, "n2", UnixTime(now()));
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n2", Some(stolen))).await;
    assert_eq!(res["code"], "runtime_identity_mismatch", "{res}");
    let stale = sign_pop(&executor_key, digest, "n3", UnixTime(now() - 600));
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n3", Some(stale))).await;
    assert_eq!(res["code"], "runtime_identity_mismatch");
    // None of those burned the writ; the holder of the key consumes it.
    let pop = sign_pop(&executor_key, digest, "n4", UnixTime(now()));
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n4", Some(pop))).await;
    assert_eq!(res["decision"], "permit", "{res}");
}

#[tokio::test]
async fn revocation_holds_at_once() {
    let f = fixture();
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    let jti = writ_core::parse_unverified(&writ)
        .unwrap()
        .claims()
        .jti
        .to_string();
    let revoke = json!({"writ": jti, "reason": "incident 42"}).to_string();
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.agent),
        Some(revoke.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(revoke),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n", None)).await;
    assert_eq!(res["code"], "revoked_authorization");

    // Revoking the agent kills every writ it holds.
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"principal": "build-agent"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, res) = consume(&f, &f.executor, consume_body(&writ, "n", None)).await;
    assert_eq!(res["code"], "revoked_authorization");
    let bad = json!({"writ": "x", "principal": "y"}).to_string();
    assert_eq!(
        call(&f.app, "POST", "/v1/revocations", Some(&f.admin), Some(bad))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}
