//! Administration at run time: applying and retiring policy sets, rotating and revoking
//! signing keys, and execution receipts.

use axum::http::StatusCode;
use serde_json::{json, Value};
use writ_core::{
    parse_unverified, sign_pop, sign_receipt, Receipt, Sha256Digest, SigningKey, UnixTime,
};

use crate::authorize::{call, fixture, fixture_with, git_status, request, Fixture};
use crate::consume::{consume, consume_body, issue, now};

/// The example policy set with `/usr/bin/cat` no longer among the agents' tools.
fn without_cat() -> Value {
    json!({
        "schema": writ_policy::EXAMPLE_SCHEMA,
        "policies": writ_policy::EXAMPLE_POLICIES.replace("\"/usr/bin/cat\", ", ""),
        "entities": writ_policy::EXAMPLE_ENTITIES,
    })
}

/// The log entry at `index`, as served.
pub async fn entry(f: &Fixture, index: u64) -> Value {
    let (_, res) = call(
        &f.app,
        "GET",
        &format!("/v1/log/entries?from={index}&limit=1"),
        None,
        None,
    )
    .await;
    res["entries"][0]["entry"].clone()
}

fn cat_args() -> Value {
    json!({"argv": ["cat", "README.md"], "cwd": "/work", "env": {}})
}

#[tokio::test]
async fn applying_a_policy_set_swaps_it_and_logs_its_text() {
    let mut f = fixture();
    let old = f.authority.policy().digest().to_hex();
    // Only admins apply; a set that does not validate changes nothing.
    let body = without_cat().to_string();
    let (status, _) = call(
        &f.app,
        "PUT",
        "/v1/policy",
        Some(&f.agent),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut broken = without_cat();
    broken["policies"] = json!("permit (principal, action == Writ::Action::\"nope\", resource);");
    let (status, res) = call(
        &f.app,
        "PUT",
        "/v1/policy",
        Some(&f.admin),
        Some(broken.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(f.authority.policy().digest().to_hex(), old);

    let cat = request("exec", "/usr/bin/cat", cat_args());
    let before = issue(&f, cat.clone()).await;
    let (status, applied) = call(&f.app, "PUT", "/v1/policy", Some(&f.admin), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    let new = applied["digest"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let logged = entry(&f, applied["log_index"].as_u64().unwrap()).await;
    assert_eq!(logged["type"], "policy");
    assert_eq!(logged["digest"], new);
    assert_eq!(logged["by"], "admin");
    assert!(!logged["source"]["policies"]
        .as_str()
        .unwrap()
        .contains("\"/usr/bin/cat\", "));

    // The new set decides from now on, and names itself in the writs it releases.
    let (_, denied) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(cat)).await;
    assert_eq!(denied["decision"], "deny", "{denied}");
    let git = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    assert_eq!(
        parse_unverified(&git).unwrap().claims().pol.digest.to_hex(),
        new
    );
    let (_, shown) = call(&f.app, "GET", "/v1/policy", None, None).await;
    assert_eq!(shown["error"]["code"], "unauthenticated");
    let (_, shown) = call(&f.app, "GET", "/v1/policy", Some(&f.admin), None).await;
    assert_eq!(shown["digest"], new);

    // It survives a restart, although the initial set is the example again.
    f.restart();
    assert_eq!(f.authority.policy().digest().to_hex(), new);

    // Retiring the old digest kills its writs; the set in force cannot be retired.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"policy": new}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"policy": old, "reason": "superseded"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let logged = entry(&f, res["log_index"].as_u64().unwrap()).await;
    assert_eq!(
        (logged["kind"].clone(), logged["target"].clone()),
        (json!("policy"), json!(old))
    );
    let body = json!({"writ": before, "action": "exec", "resource": "/usr/bin/cat",
        "args": cat_args(), "nonce": "n1"});
    let (_, res) = consume(&f, &f.executor.clone(), body.to_string()).await;
    assert_eq!(res["code"], "policy_mismatch", "{res}");
    // The retirement is durable.
    f.restart();
    let (_, shown) = call(&f.app, "GET", "/v1/policy", Some(&f.admin), None).await;
    assert_eq!(shown["retired"], json!([old]));
    // A retired set cannot be put back in force.
    let (status, _) = call(
        &f.app,
        "PUT",
        "/v1/policy",
        Some(&f.admin),
        Some(
            json!({"schema": writ_policy::EXAMPLE_SCHEMA, "policies": writ_policy::EXAMPLE_POLICIES,
                   "entities": writ_policy::EXAMPLE_ENTITIES})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn kids(f: &Fixture) -> Vec<String> {
    f.authority
        .keys()
        .iter()
        .map(|k| k.kid().to_string())
        .collect()
}

#[tokio::test]
async fn a_new_key_is_announced_before_it_signs_and_the_old_one_leaves_after_its_writs() {
    let f = fixture_with(|c| c.key_announce_secs = 3600);
    let first = kids(&f);
    assert_eq!(first.len(), 1);
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/keys/rotate",
        Some(&f.agent),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, rotated) = call(
        &f.app,
        "POST",
        "/v1/keys/rotate",
        Some(&f.admin),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["kid"].as_str().unwrap().to_string();
    let logged = entry(&f, rotated["log_index"].as_u64().unwrap()).await;
    assert_eq!(
        (logged["type"].clone(), logged["event"].clone()),
        (json!("key"), json!("added"))
    );
    assert_eq!(logged["kid"], new);
    // Published at once, but the old key still signs during the announcement.
    let (_, jwks) = call(&f.app, "GET", "/.well-known/jwks.json", None, None).await;
    assert!(jwks.to_string().contains(&new));
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    assert_eq!(parse_unverified(&writ).unwrap().kid(), first[0]);
    let (_, states) = call(&f.app, "GET", "/v1/keys", Some(&f.admin), None).await;
    let states: Vec<(Value, Value)> = states["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].clone(), k["state"].clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            (json!(first[0]), json!("active")),
            (json!(new), json!("announced"))
        ]
    );

    // Once active, the new key signs; the old one stays published until its writs expired.
    let activates = rotated["activates_at"].as_u64().unwrap();
    let linger = f.authority.config().max_lifetime_secs + writ_core::DEFAULT_SKEW_SECS;
    f.authority.maintain(activates + linger - 1).unwrap();
    assert_eq!(kids(&f).len(), 2);
    let size = f.authority.log().size().unwrap();
    f.authority.maintain(activates + linger).unwrap();
    assert_eq!(kids(&f), vec![new.clone()]);
    let retired = entry(&f, size).await;
    assert_eq!(
        (retired["event"].clone(), retired["kid"].clone()),
        (json!("retired"), json!(first[0]))
    );
    // Logged once.
    f.authority.maintain(activates + linger + 1).unwrap();
    assert_eq!(f.authority.log().size().unwrap(), size + 1);
}

#[tokio::test]
async fn the_next_key_signs_once_it_is_active() {
    let f = fixture_with(|c| c.key_announce_secs = 0);
    let (_, rotated) = call(
        &f.app,
        "POST",
        "/v1/keys/rotate",
        Some(&f.admin),
        Some("{}".into()),
    )
    .await;
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    assert_eq!(
        parse_unverified(&writ).unwrap().kid(),
        rotated["kid"].as_str().unwrap()
    );
    let (_, res) = consume(&f, &f.executor.clone(), consume_body(&writ, "n1", None)).await;
    assert_eq!(res["decision"], "permit", "{res}");
}

#[tokio::test]
async fn a_revoked_key_verifies_nothing_and_a_new_one_takes_over() {
    let f = fixture();
    let old = kids(&f)[0].clone();
    let writ = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"key": old, "reason": "leaked"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert!(!kids(&f).contains(&old));
    assert_eq!(kids(&f).len(), 1);
    let (_, res) = consume(&f, &f.executor.clone(), consume_body(&writ, "n1", None)).await;
    assert_eq!(res["code"], "unknown_key", "{res}");
    // Issuance goes on with the replacement key.
    let next = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    assert_ne!(parse_unverified(&next).unwrap().kid(), old);
    let (_, res) = consume(&f, &f.executor.clone(), consume_body(&next, "n2", None)).await;
    assert_eq!(res["decision"], "permit", "{res}");
    // An unknown key is not found; naming two things at once is refused.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"key": old}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"key": old, "principal": "build-agent"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn receipt_for(writ: &str, key: &SigningKey) -> String {
    let jti = parse_unverified(writ).unwrap().claims().jti.to_string();
    sign_receipt(
        key,
        &Receipt {
            jti,
            writ_sha256: Sha256Digest::of(writ.as_bytes()),
            exit_status: Some(0),
            signal: None,
            duration_ms: 7,
            stdout_sha256: Sha256Digest::of(b"clean\n"),
            stderr_sha256: Sha256Digest::of(b""),
            iat: now(),
        },
    )
}

#[tokio::test]
async fn receipts_are_logged_when_the_writs_executor_signed_them() {
    let f = fixture();
    let executor_key = SigningKey::from_seed(&[42; 32]);
    let mut body: Value =
        serde_json::from_str(&request("exec", "/usr/bin/git", git_status())).unwrap();
    body["executor_key"] = serde_json::to_value(executor_key.verifying_key().to_jwk()).unwrap();
    let writ = issue(&f, body.to_string()).await;
    let pop = sign_pop(
        &executor_key,
        Sha256Digest::of(writ.as_bytes()),
        "n1",
        UnixTime(now()),
    );
    let (_, res) = consume(
        &f,
        &f.executor.clone(),
        consume_body(&writ, "n1", Some(pop)),
    )
    .await;
    assert_eq!(res["decision"], "permit", "{res}");

    let post = |token: String, body: Value| {
        let app = f.app.clone();
        async move {
            call(
                &app,
                "POST",
                "/v1/receipts",
                Some(&token),
                Some(body.to_string()),
            )
            .await
        }
    };
    let good = receipt_for(&writ, &executor_key);
    let (status, _) = post(f.agent.clone(), json!({"writ": writ, "receipt": good})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Signed by another key than the writ's cnf.
    let forged = receipt_for(&writ, &SigningKey::from_seed(&[43; 32]));
    let (status, res) = post(f.executor.clone(), json!({"writ": writ, "receipt": forged})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(res["error"]["message"].as_str().unwrap().contains("cnf"));
    // For another writ.
    let other = issue(&f, request("exec", "/usr/bin/git", git_status())).await;
    let (status, _) = post(f.executor.clone(), json!({"writ": other, "receipt": good})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A writ this authority did not sign.
    let mut tampered = writ.clone();
    tampered.pop();
    tampered.push(if writ.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = post(
        f.executor.clone(),
        json!({"writ": tampered, "receipt": good}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, res) = post(f.executor.clone(), json!({"writ": writ, "receipt": good})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let logged = entry(&f, res["log_index"].as_u64().unwrap()).await;
    assert_eq!(logged["type"], "receipt");
    assert_eq!(logged["executor"], "gate-1");
    assert_eq!(logged["exit_status"], 0);
    assert_eq!(logged["executor_jkt"], executor_key.kid().as_str());
    assert_eq!(logged["receipt"], good);
    assert_eq!(
        logged["jti"],
        parse_unverified(&writ).unwrap().claims().jti.to_string()
    );
}

/// The OpenAPI document is generated from the routes: every route the service answers is
/// in it, with the method it answers to.
#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let f = fixture();
    let (status, doc) = call(&f.app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/v1/authorize"),
        ("post", "/v1/authorize/preview"),
        ("post", "/v1/consume"),
        ("post", "/v1/receipts"),
        ("post", "/v1/revocations"),
        ("get", "/v1/policy"),
        ("put", "/v1/policy"),
        ("get", "/v1/keys"),
        ("get", "/v1/principals"),
        ("post", "/v1/principals"),
        ("post", "/v1/keys/rotate"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/v1/log/checkpoint"),
        ("get", "/v1/log/vkey"),
        ("get", "/v1/log/proof/inclusion"),
        ("get", "/v1/log/proof/consistency"),
        ("get", "/v1/log/entries"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    // And nothing documented is unserved: each documented operation reaches a handler (no
    // 404 or 405 from the router).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let (status, _) = call(&f.app, &method.to_uppercase(), path, None, None).await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
        }
    }
    // Request bodies name their schemas, which list their fields.
    let authorize = &doc["components"]["schemas"]["AuthorizeRequest"]["properties"];
    for field in ["action", "resource", "args", "audience", "executor_key"] {
        assert!(authorize.get(field).is_some(), "{field}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn admins_register_principals_and_the_token_works_once_shown() {
    let f = fixture();
    let body = json!({"name": "gate-9", "role": "executor"}).to_string();
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/principals",
        Some(&f.agent),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/principals",
        Some(&f.admin),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let token = res["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("writ_"));
    // The new executor is an audience at once, and its token consumes.
    let mut request: Value =
        serde_json::from_str(&request("exec", "/usr/bin/git", git_status())).unwrap();
    request["audience"] = json!("gate-9");
    let writ = issue(&f, request.to_string()).await;
    let (_, answer) = consume(&f, &token, consume_body(&writ, "n1", None)).await;
    assert_eq!(answer["decision"], "permit", "{answer}");
    // A taken name is a conflict; a bad name or role is refused.
    let (status, _) = call(&f.app, "POST", "/v1/principals", Some(&f.admin), Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for bad in [
        json!({"name": "a b", "role": "agent"}),
        json!({"name": "x", "role": "root"}),
    ] {
        let (status, _) = call(
            &f.app,
            "POST",
            "/v1/principals",
            Some(&f.admin),
            Some(bad.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // The list never shows a token.
    let (_, list) = call(&f.app, "GET", "/v1/principals", Some(&f.admin), None).await;
    assert!(list["principals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "gate-9"));
    assert!(!list.to_string().contains(&token));
    assert!(!list.to_string().contains("token"));
}

#[tokio::test]
async fn a_preview_says_what_policy_would_decide_and_issues_nothing() {
    let f = fixture();
    let size = f.authority.log().size().unwrap();
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/authorize/preview",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["decision"], "permit");
    assert!(res.get("writ").is_none());
    let rm = json!({"argv": ["rm", "-rf", "./build"], "cwd": "/work", "env": {}});
    let (_, res) = call(
        &f.app,
        "POST",
        "/v1/authorize/preview",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/rm", rm)),
    )
    .await;
    assert_eq!(res["decision"], "deny");
    assert_eq!(res["reasons"][0]["policy"], "forbid-rm", "{res}");
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize/preview",
        Some(&f.executor),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing was issued, so nothing was logged.
    assert_eq!(f.authority.log().size().unwrap(), size);
}
