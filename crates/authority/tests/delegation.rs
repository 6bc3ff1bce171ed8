//! Delegation: a child writ issued on presentation of its parent, the lineage rules applied
//! with the codes DESIGN.md assigns, and revocation that reaches every descendant.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use writ_core::{parse_unverified, Sha256Digest};
use writ_store::Role;

use crate::admin::entry;
use crate::authorize::{call, fixture, fixture_with, git_status, Fixture};
use crate::consume::{consume, consume_body, now};

fn register(f: &Fixture, name: &str) -> String {
    let token = format!("writ_test_{name}");
    f.authority
        .principals()
        .add(
            name,
            Role::Agent,
            &[],
            &Sha256Digest::of(token.as_bytes()),
            0,
        )
        .unwrap();
    token
}

fn ls() -> Value {
    json!({"argv": ["ls"], "cwd": "/work", "env": {}})
}

fn body(resource: &str, args: Value, parent: Option<&str>) -> String {
    json!({"action": "exec", "resource": resource, "args": args, "audience": "gate-1",
           "parent": parent})
    .to_string()
}

async fn ask(f: &Fixture, token: &str, body: String) -> Value {
    let (status, res) = call(&f.app, "POST", "/v1/authorize", Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    res
}

fn parent_denial(res: &Value) -> &str {
    assert_eq!(res["decision"], "deny", "{res}");
    assert_eq!(res["reasons"][0]["code"], "parent", "{res}");
    res["reasons"][0]["denial"].as_str().unwrap()
}

#[tokio::test]
async fn a_child_is_narrower_than_its_parent_and_carries_its_lineage() {
    let f = fixture();
    let helper = register(&f, "helper-agent");
    let root = ask(&f, &f.agent, body("/usr/bin/git", git_status(), None)).await;
    let root_writ = root["writ"].as_str().unwrap();
    let root_claims = parse_unverified(root_writ).unwrap().claims().clone();
    assert!(
        root_claims.del.is_some(),
        "the example permit delegates git and ls"
    );

    // Another agent presents it for `ls`, which the parent's `del` allows.
    let child = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(root_writ))).await;
    assert_eq!(child["decision"], "permit", "{child}");
    let child_writ = child["writ"].as_str().unwrap();
    let claims = parse_unverified(child_writ).unwrap().claims().clone();
    let lin = claims.lin.clone().unwrap();
    assert_eq!(lin.parent, root_claims.jti);
    assert_eq!(lin.root, root_claims.jti);
    assert_eq!(lin.depth, 1);
    assert_eq!(lin.parent_sha256, Sha256Digest::of(root_writ.as_bytes()));
    assert_eq!(claims.sub, "helper-agent");
    assert!(claims.exp <= root_claims.exp);
    let logged = entry(&f, child["log_index"].as_u64().unwrap()).await;
    assert_eq!(logged["parent"], root_claims.jti.to_string());
    assert_eq!(logged["root"], root_claims.jti.to_string());
    assert_eq!(logged["depth"], 1);

    // Wider than `del` (cat is allowed by policy, not by the parent): lineage_inconsistency,
    // and the denial is logged with its parent.
    let cat = json!({"argv": ["cat", "x"], "cwd": "/work", "env": {}});
    let wide = ask(&f, &helper, body("/usr/bin/cat", cat, Some(root_writ))).await;
    assert_eq!(parent_denial(&wide), "lineage_inconsistency");
    assert_eq!(
        entry(&f, wide["log_index"].as_u64().unwrap()).await["parent"],
        root_claims.jti.to_string()
    );
    // Deeper than the parent's `del.max_depth` (1): a grandchild is refused.
    let deep = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(child_writ))).await;
    assert_eq!(parent_denial(&deep), "lineage_inconsistency");
    // A forged parent.
    // One character inside the signature changed (not the last, whose spare bits would make
    // the encoding itself invalid).
    let mut forged = root_writ.as_bytes().to_vec();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let res = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(&forged))).await;
    assert_eq!(parent_denial(&res), "invalid_signature");
    // An expired parent (asked after its expiry).
    let caller = f
        .authority
        .principals()
        .get("helper-agent")
        .unwrap()
        .unwrap();
    let request = serde_json::from_str(&body("/usr/bin/ls", ls(), Some(root_writ))).unwrap();
    let late = f
        .authority
        .authorize(&caller, &request, root_claims.exp + 1)
        .unwrap();
    let late = serde_json::to_value(late).unwrap();
    assert_eq!(parent_denial(&late), "expired");
}

#[tokio::test]
async fn revoking_a_writ_revokes_everything_issued_under_it() {
    let f = fixture();
    let helper = register(&f, "helper-agent");
    let root = ask(&f, &f.agent, body("/usr/bin/git", git_status(), None)).await;
    let root_writ = root["writ"].as_str().unwrap().to_string();
    let root_jti = parse_unverified(&root_writ)
        .unwrap()
        .claims()
        .jti
        .to_string();
    let first = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(&root_writ))).await;
    let second = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(&root_writ))).await;
    let other_root = ask(&f, &f.agent, body("/usr/bin/git", git_status(), None)).await;
    let sibling_tree = ask(
        &f,
        &helper,
        body("/usr/bin/ls", ls(), other_root["writ"].as_str()),
    )
    .await;

    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"writ": root_jti}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A child asked for after the revocation is refused at issuance...
    let late = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(&root_writ))).await;
    assert_eq!(parent_denial(&late), "revoked_authorization");
    // ...and children issued before it die at consumption, as the root does.
    let consume_ls = |writ: &str, nonce: &str| {
        json!({"writ": writ, "action": "exec", "resource": "/usr/bin/ls", "args": ls(),
               "nonce": nonce})
        .to_string()
    };
    for (i, child) in [&first, &second].iter().enumerate() {
        let (_, res) = consume(
            &f,
            &f.executor.clone(),
            consume_ls(child["writ"].as_str().unwrap(), &format!("n{i}")),
        )
        .await;
        assert_eq!(res["code"], "revoked_authorization", "{res}");
    }
    // The other tree is untouched.
    let (_, res) = consume(
        &f,
        &f.executor.clone(),
        consume_ls(sibling_tree["writ"].as_str().unwrap(), "n9"),
    )
    .await;
    assert_eq!(res["decision"], "permit", "{res}");
    let _ = now();
}

/// The `jti` of a compact writ.
fn jti_of(writ: &str) -> String {
    parse_unverified(writ).unwrap().claims().jti.to_string()
}

/// Puts in force the example policy set with its dev-tools permit delegating three levels
/// deep instead of the default one.
async fn delegate_three_deep(f: &Fixture) {
    let grant = r#"@delegate_resources("/usr/bin/git,/usr/bin/ls")"#;
    assert!(
        writ_policy::EXAMPLE_POLICIES.contains(grant),
        "the example permit no longer delegates git and ls"
    );
    let policies = writ_policy::EXAMPLE_POLICIES.replacen(
        grant,
        &format!("{grant}\n@delegate_depth(\"3\")"),
        1,
    );
    let set = json!({
        "schema": writ_policy::EXAMPLE_SCHEMA,
        "policies": policies,
        "entities": writ_policy::EXAMPLE_ENTITIES,
    });
    let (status, res) = call(
        &f.app,
        "PUT",
        "/v1/policy",
        Some(&f.admin),
        Some(set.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
}

/// A child `ls` writ asked for by `token` under `parent`; it must be permitted.
async fn child_of(f: &Fixture, token: &str, parent: &str) -> String {
    let res = ask(f, token, body("/usr/bin/ls", ls(), Some(parent))).await;
    assert_eq!(res["decision"], "permit", "{res}");
    res["writ"].as_str().unwrap().to_string()
}

/// What the authority answers gate-1 consuming the `ls` writ `writ`.
async fn consume_ls(f: &Fixture, writ: &str, nonce: &str) -> Value {
    let body = json!({"writ": writ, "action": "exec", "resource": "/usr/bin/ls", "args": ls(),
                      "nonce": nonce})
    .to_string();
    let (status, res) = consume(f, &f.executor, body).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    res
}

async fn revoke_writ(f: &Fixture, jti: &str) {
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/revocations",
        Some(&f.admin),
        Some(json!({"writ": jti}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
}

#[tokio::test]
async fn revoking_a_middle_writ_kills_its_subtree_three_deep_and_spares_the_rest() {
    let f = fixture();
    delegate_three_deep(&f).await;
    let helper = register(&f, "helper-agent");
    let root = ask(&f, &f.agent, body("/usr/bin/git", git_status(), None)).await;
    assert_eq!(root["decision"], "permit", "{root}");
    let root = root["writ"].as_str().unwrap().to_string();
    let root_claims = parse_unverified(&root).unwrap().claims().clone();
    assert_eq!(root_claims.del.as_ref().unwrap().max_depth, 3);

    // root → a, b; a → a1, a2; a1 → a1x (depth 3, the deepest the policy allows).
    let a = child_of(&f, &helper, &root).await;
    let b = child_of(&f, &helper, &root).await;
    let a1 = child_of(&f, &helper, &a).await;
    let a2 = child_of(&f, &helper, &a).await;
    let a1x = child_of(&f, &helper, &a1).await;
    for (writ, parent, depth) in [
        (&a, &root, 1),
        (&b, &root, 1),
        (&a1, &a, 2),
        (&a2, &a, 2),
        (&a1x, &a1, 3),
    ] {
        let lin = parse_unverified(writ)
            .unwrap()
            .claims()
            .lin
            .clone()
            .unwrap();
        assert_eq!(lin.depth, depth);
        assert_eq!(lin.parent.to_string(), jti_of(parent));
        assert_eq!(lin.root, root_claims.jti);
    }
    // A fourth level is over `del.max_depth`.
    let deep = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(&a1x))).await;
    assert_eq!(parent_denial(&deep), "lineage_inconsistency");

    revoke_writ(&f, &jti_of(&a)).await;

    // `a` and every descendant, the grandchild three deep included, may no longer run...
    for (name, writ) in [("a", &a), ("a1", &a1), ("a2", &a2), ("a1x", &a1x)] {
        let res = consume_ls(&f, writ, &format!("n-{name}")).await;
        assert_eq!(res["decision"], "deny", "{name}: {res}");
        assert_eq!(res["code"], "revoked_authorization", "{name}: {res}");
    }
    // ...nor delegate any more, at any depth.
    for parent in [&a, &a1, &a2, &a1x] {
        let late = ask(&f, &helper, body("/usr/bin/ls", ls(), Some(parent))).await;
        assert_eq!(parent_denial(&late), "revoked_authorization");
    }
    // The revocation does not reach up or sideways: `b` still delegates, and the root, `b`
    // and `b`'s new child all run.
    let b1 = child_of(&f, &helper, &b).await;
    let (status, res) = consume(&f, &f.executor, consume_body(&root, "n-root", None)).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["decision"], "permit", "root: {res}");
    for (name, writ) in [("b", &b), ("b1", &b1)] {
        let res = consume_ls(&f, writ, &format!("n-{name}")).await;
        assert_eq!(res["decision"], "permit", "{name}: {res}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_issued_while_its_parent_is_revoked_never_runs() {
    const ROUNDS: usize = 100;
    let f = fixture_with(|c| c.rate_limit_per_sec = 0);
    let helper = register(&f, "helper-agent");
    let mut issued = 0;
    for round in 0..ROUNDS {
        let parent = ask(&f, &f.agent, body("/usr/bin/git", git_status(), None)).await;
        assert_eq!(parent["decision"], "permit", "{parent}");
        let parent = parent["writ"].as_str().unwrap().to_string();
        assert!(parse_unverified(&parent).unwrap().claims().del.is_some());

        // Both requests leave together; which one the authority sees first is up to it.
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let revoke = tokio::spawn({
            let (app, admin, start) = (f.app.clone(), f.admin.clone(), start.clone());
            let revoke = json!({"writ": jti_of(&parent)}).to_string();
            async move {
                start.wait().await;
                call(&app, "POST", "/v1/revocations", Some(&admin), Some(revoke)).await
            }
        });
        let child = tokio::spawn({
            let (app, helper, start) = (f.app.clone(), helper.clone(), start.clone());
            let ask = body("/usr/bin/ls", ls(), Some(&parent));
            async move {
                start.wait().await;
                call(&app, "POST", "/v1/authorize", Some(&helper), Some(ask)).await
            }
        });
        let (status, res) = revoke.await.unwrap();
        assert_eq!(status, StatusCode::OK, "round {round}: {res}");
        let (status, child) = child.await.unwrap();
        assert_eq!(status, StatusCode::OK, "round {round}: {child}");

        match child["decision"].as_str() {
            // Issued before the revocation committed, or while it did: dead all the same.
            Some("permit") => {
                issued += 1;
                let writ = child["writ"].as_str().unwrap();
                let res = consume_ls(&f, writ, &format!("n{round}")).await;
                assert_eq!(res["decision"], "deny", "round {round}: {res}");
                assert_eq!(res["code"], "revoked_authorization", "round {round}: {res}");
            }
            // Refused only because the parent was already revoked.
            Some("deny") => assert_eq!(parent_denial(&child), "revoked_authorization"),
            _ => panic!("round {round}: {child}"),
        }
    }
    println!("{issued} of {ROUNDS} rounds issued a child despite the racing revocation; none of them ran");
}
