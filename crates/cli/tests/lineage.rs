//! `writ lineage`: a writ's decision, consumption, execution and revocation, from the log of
//! a data dir and of a running authority.

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
    // An unknown writ is a usage error.
    let missing = run(
        &["lineage", "AAAAAAAAAAAAAAAAAAAAAA", "--data-dir", &d],
        None,
    );
    assert_eq!(status(&missing), 64);
}
