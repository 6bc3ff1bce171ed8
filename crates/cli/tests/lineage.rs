//! `writ lineage`: a writ's decision, consumption, execution and revocation, drawn as its
//! delegation tree, from the log of a data dir and of a running authority. (The tree model and
//! the drawings of deeper trees are unit-tested in `src/command/lineage/`.)

use serde_json::{json, Value};
use writ_core::{
    parse_unverified, sign_pop, sign_receipt, Receipt, Sha256Digest, SigningKey, UnixTime,
};

use crate::support::server::*;
use crate::support::*;

#[test]
fn lineage_shows_decision_consumption_execution_and_revocation() {
    let server = start();
    let d = server.d();
    let agent = register(&d, "build-agent", "agent");
    let gate = register(&d, "gate-1", "executor");
    let admin = server.admin_token();
    let executor_key = SigningKey::from_seed(&[5; 32]);
    let args = json!({"argv": ["git", "status"], "cwd": "/work", "env": {}});
    let (_, answer) = post(
        &format!("{}/v1/authorize", server.url),
        Some(&agent),
        &json!({"action": "exec", "resource": "/usr/bin/git", "args": args,
                "audience": "gate-1", "executor_key": executor_key.verifying_key().to_jwk()}),
    );
    let writ = answer["writ"].as_str().unwrap().to_string();
    let jti = parse_unverified(&writ).unwrap().claims().jti.to_string();
    let digest = Sha256Digest::of(writ.as_bytes());
    let pop = sign_pop(&executor_key, digest, "n1", UnixTime(now()));
    let (_, consumed) = post(
        &format!("{}/v1/consume", server.url),
        Some(&gate),
        &json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git", "args": args,
                "nonce": "n1", "pop": pop}),
    );
    assert_eq!(consumed["decision"], "permit", "{consumed}");
    let receipt = sign_receipt(
        &executor_key,
        &Receipt {
            jti: jti.clone(),
            writ_sha256: digest,
            exit_status: Some(0),
            signal: None,
            duration_ms: 3,
            stdout_sha256: Sha256Digest::of(b"On branch main\n"),
            stderr_sha256: Sha256Digest::of(b""),
            iat: now(),
        },
    );
    let (code, _) = post(
        &format!("{}/v1/receipts", server.url),
        Some(&gate),
        &json!({"writ": writ, "receipt": receipt}),
    );
    assert_eq!(code, 200);
    let (code, _) = post(
        &format!("{}/v1/revocations", server.url),
        Some(&admin),
        &json!({"writ": jti, "reason": "done"}),
    );
    assert_eq!(code, 200);
    // Another writ's entries stay out of this one's story.
    post(
        &format!("{}/v1/authorize", server.url),
        Some(&agent),
        &json!({"action": "exec", "resource": "/usr/bin/git", "args": args, "audience": "gate-1"}),
    );

    let local = run(&["lineage", &jti, "--json", "--data-dir", &d], None);
    assert_eq!(
        status(&local),
        0,
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let remote = run(&["lineage", &jti, "--json", "--url", &server.url], None);
    assert_eq!(
        status(&remote),
        0,
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let story = stdout_json(&local);
    assert_eq!(story, stdout_json(&remote));
    assert_eq!(story["jti"], jti);
    assert_eq!(story["decision"]["index"], answer["log_index"]);
    assert_eq!(story["decision"]["entry"]["decision"], "permit");
    assert_eq!(story["decision"]["entry"]["writ_sha256"], digest.to_hex());
    let kinds = |key: &str| -> Vec<Value> {
        story[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry"]["type"].clone())
            .collect()
    };
    assert_eq!(kinds("consumptions"), vec![json!("consumption")]);
    assert_eq!(story["consumptions"][0]["index"], consumed["log_index"]);
    assert_eq!(kinds("receipts"), vec![json!("receipt")]);
    assert_eq!(story["receipts"][0]["entry"]["exit_status"], 0);
    assert_eq!(kinds("revocations"), vec![json!("revocation")]);
    // The tree: an undelegated writ is its own root, revoked by its own revocation.
    assert_eq!(story["root_initiator"], "build-agent");
    assert_eq!(story["revoked_by"], jti);
    let root = &story["root"];
    assert_eq!(root["jti"], jti);
    assert_eq!(root["depth"], 0);
    assert_eq!(root["children"], json!([]));
    assert_eq!(root["decision"], story["decision"]);
    assert_eq!(root["receipts"], story["receipts"]);
    let as_format = run(
        &["lineage", &jti, "--format", "json", "--data-dir", &d],
        None,
    );
    assert_eq!(stdout_json(&as_format), story);

    let text = run(&["lineage", &jti, "--data-dir", &d], None);
    let text = String::from_utf8(text.stdout).unwrap();
    for needle in [
        "permit build-agent exec on /usr/bin/git",
        "consumed by gate-1",
        "executed by gate-1: exit 0",
        "revoked (writ",
    ] {
        assert!(text.contains(needle), "`{needle}` missing in:\n{text}");
    }
    assert!(text.starts_with("root initiator: build-agent\n"), "{text}");
    assert!(text.contains(&format!("* writ {jti}: ")), "{text}");

    let dot = run(
        &["lineage", &jti, "--format", "dot", "--data-dir", &d],
        None,
    );
    assert_eq!(status(&dot), 0);
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    assert!(dot.contains("build-agent\\nexec /usr/bin/git"), "{dot}");
    assert!(dot.contains("color=red"), "{dot}");
    let mermaid = run(
        &["lineage", &jti, "--format", "mermaid", "--url", &server.url],
        None,
    );
    assert_eq!(status(&mermaid), 0);
    let mermaid = String::from_utf8(mermaid.stdout).unwrap();
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(
        mermaid.contains("build-agent<br/>exec /usr/bin/git"),
        "{mermaid}"
    );
    // --json is --format json: naming both is a usage error.
    let both = run(
        &[
            "lineage",
            &jti,
            "--json",
            "--format",
            "dot",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(status(&both), 64);

    // An unknown writ is a usage error.
    let missing = run(
        &["lineage", "AAAAAAAAAAAAAAAAAAAAAA", "--data-dir", &d],
        None,
    );
    assert_eq!(status(&missing), 64);
}

/// A real tree over HTTP: a root writ, two children asked for with `writ request --parent`,
/// one revoked; `writ lineage` draws it from the log.
#[test]
fn lineage_draws_a_delegation_tree_issued_by_a_running_server() {
    let server = start();
    let d = server.d();
    let agent = register(&d, "build-agent", "agent");
    let helper = register(&d, "helper-agent", "agent");
    register(&d, "gate-1", "executor");
    let request = |token: &str, resource: &str, argv: &[&str], parent: Option<&std::path::Path>| {
        let args = json!({"argv": argv, "cwd": "/work", "env": {}}).to_string();
        let mut cmd = vec![
            "request",
            "--action",
            "exec",
            "--resource",
            resource,
            "--args",
            &args,
            "--audience",
            "gate-1",
            "--json",
            "--url",
            &server.url,
            "--token",
            token,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        if let Some(p) = parent {
            cmd.push("--parent".into());
            cmd.push(p.to_str().unwrap().into());
        }
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        stdout_json(&run(&refs, None))
    };
    let root = request(&agent, "/usr/bin/git", &["git", "status"], None);
    let root_file = server.path("root.writ");
    std::fs::write(&root_file, root["writ"].as_str().unwrap()).unwrap();
    let a = request(&helper, "/usr/bin/ls", &["ls"], Some(&root_file));
    let b = request(&helper, "/usr/bin/git", &["git", "log"], Some(&root_file));
    let wide = request(&helper, "/usr/bin/cat", &["cat", "x"], Some(&root_file));
    assert_eq!(a["decision"], "permit", "{a}");
    assert_eq!(b["decision"], "permit", "{b}");
    assert_eq!(wide["decision"], "deny", "{wide}");
    assert_eq!(
        wide["reasons"][0]["denial"], "lineage_inconsistency",
        "{wide}"
    );
    let (code, _) = post(
        &format!("{}/v1/revocations", server.url),
        Some(&server.admin_token()),
        &json!({"writ": a["jti"]}),
    );
    assert_eq!(code, 200);

    let out = run(
        &[
            "lineage",
            b["jti"].as_str().unwrap(),
            "--json",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let tree = stdout_json(&out);
    assert_eq!(tree["root_initiator"], "build-agent");
    assert_eq!(tree["root"]["jti"], root["jti"]);
    let children = tree["root"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "{tree:#}");
    let by_jti = |jti: &Value| children.iter().find(|c| &c["jti"] == jti).unwrap().clone();
    assert_eq!(by_jti(&a["jti"])["revoked_by"], a["jti"]);
    assert_eq!(by_jti(&b["jti"])["revoked_by"], Value::Null);
    assert_eq!(by_jti(&b["jti"])["depth"], 1);
    assert!(children
        .iter()
        .any(|c| c["decision"]["entry"]["decision"] == "deny"));
    let dot = run(
        &[
            "lineage",
            b["jti"].as_str().unwrap(),
            "--format",
            "dot",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&dot.stdout).contains("delegated"));
}
