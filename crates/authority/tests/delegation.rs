//! Delegation: a child writ issued on presentation of its parent, the lineage rules applied
//! with the codes DESIGN.md assigns, and revocation that reaches every descendant.

use axum::http::StatusCode;
use serde_json::{json, Value};
use writ_core::{parse_unverified, Sha256Digest};
use writ_store::Role;

use crate::admin::entry;
use crate::authorize::{call, fixture, git_status, Fixture};
use crate::consume::{consume, now};

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
