//! Scenario 4, "Money needs two people", driven through the binary against a running `writ
//! serve`: `writ request --wait`, `writ approvals list|show`, `writ approve`, `writ reject`,
//! and `writ principals add --approval-key` (docs/approvals.md). The example policy set
//! requires two approvals from `finance` for `pay` above 10,000 by an agent in `payments`.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use writ_core::{
    canonical, parse_unverified, ApprovalObject, ApprovalVerdict, Jwk, KeyId, RequestTerms,
    Sha256Digest, SigningKey, VerifyingKey,
};

use crate::support::server::*;
use crate::support::*;

/// A server with the payments cast: `finance-bot` (agent in payments), `payments-gate`
/// (executor), approvers `alice`, `bob` and `carol` in finance with approval keys, `dave`
/// (approver in finance, no key) and `erin` (approver outside finance, with a key).
struct Payments {
    server: Server,
    agent: String,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    erin: String,
    gate_key: PathBuf,
    gate_kid: KeyId,
}

/// `writ keys generate --out DIR` in the server's directory: the directory.
fn generate_key(server: &Server, name: &str) -> PathBuf {
    let dir = server.path(name);
    let out = run(&["keys", "generate", "--out", dir.to_str().unwrap()], None);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn public_key(dir: &std::path::Path) -> VerifyingKey {
    let text = std::fs::read_to_string(dir.join("public.jwk")).unwrap();
    VerifyingKey::from_jwk(&serde_json::from_str::<Jwk>(&text).unwrap()).unwrap()
}

fn pem(server: &Server, name: &str) -> String {
    server
        .path(name)
        .join("signing-key.pem")
        .to_str()
        .unwrap()
        .to_string()
}

/// `writ principals add NAME --role ROLE --group … [--approval-key DIR/public.jwk] --json`.
fn add(server: &Server, name: &str, role: &str, groups: &[&str], key: Option<&PathBuf>) -> Value {
    let d = server.d();
    let mut args = vec![
        "principals",
        "add",
        name,
        "--role",
        role,
        "--json",
        "--data-dir",
        &d,
    ];
    for g in groups {
        args.extend(["--group", g]);
    }
    let jwk = key.map(|k| k.join("public.jwk").to_str().unwrap().to_string());
    if let Some(jwk) = &jwk {
        args.extend(["--approval-key", jwk]);
    }
    let out = run(&args, None);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)
}

fn payments() -> Payments {
    payments_with(&[])
}

/// [`payments`] on a server started with extra flags.
fn payments_with(flags: &[&str]) -> Payments {
    let server = start_with(flags);
    let agent = add(&server, "finance-bot", "agent", &["payments"], None)["token"]
        .as_str()
        .unwrap()
        .to_string();
    add(&server, "payments-gate", "executor", &[], None);
    let mut tokens = Vec::new();
    for (name, groups, with_key) in [
        ("alice", "finance", true),
        ("bob", "finance", true),
        ("carol", "finance", true),
        ("dave", "finance", false),
        ("erin", "engineering", true),
    ] {
        let dir = with_key.then(|| generate_key(&server, &format!("{name}-key")));
        let added = add(&server, name, "approver", &[groups], dir.as_ref());
        if let Some(dir) = &dir {
            assert_eq!(
                added["approval_key_id"],
                json!(public_key(dir).kid().as_str())
            );
        }
        tokens.push(added["token"].as_str().unwrap().to_string());
    }
    let gate = generate_key(&server, "gate-key");
    let gate_kid = public_key(&gate).kid().clone();
    let [alice, bob, carol, dave, erin] = <[String; 5]>::try_from(tokens).unwrap();
    Payments {
        gate_key: gate.join("public.jwk"),
        gate_kid,
        server,
        agent,
        alice,
        bob,
        carol,
        dave,
        erin,
    }
}

/// `writ ARGS --url … --token TOKEN`, with no client settings from the environment.
fn command(server: &Server, token: &str, args: &[&str]) -> Command {
    let mut cmd = writ_cmd();
    cmd.args(args)
        .args(["--url", &server.url, "--token", token]);
    for var in [
        "WRIT_URL",
        "WRIT_TOKEN",
        "WRIT_TOKEN_FILE",
        "WRIT_CLIENT_CONFIG",
        "WRIT_APPROVER_KEY",
        "WRIT_ISSUER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", server.path("no-config"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `writ ARGS --url … --token TOKEN`.
fn call(server: &Server, token: &str, args: &[&str]) -> Output {
    command(server, token, args).output().unwrap()
}

fn pay_args(p: &Payments, amount: u64) -> Vec<String> {
    [
        "request",
        "--action",
        "pay",
        "--resource",
        "account:acme",
        "--args",
        &json!({"amount": amount, "currency": "EUR"}).to_string(),
        "--audience",
        "payments-gate",
        "--executor-key",
        p.gate_key.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts `writ request … --wait --json` as the agent, in the background.
fn request_and_wait(p: &Payments, amount: u64) -> Child {
    let mut args = pay_args(p, amount);
    args.extend(["--wait", "--wait-secs", "120", "--json"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    command(&p.server, &p.agent, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pending requests `writ approvals list --json` shows to `token`.
fn listed_to(server: &Server, token: &str) -> Vec<Value> {
    let out = call(server, token, &["approvals", "list", "--json"]);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)["requests"].as_array().unwrap().clone()
}

fn listed(p: &Payments, token: &str) -> Vec<Value> {
    listed_to(&p.server, token)
}

/// Waits until a pending request for `amount` is listed; returns it.
fn wait_listed(p: &Payments, amount: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = listed(p, &p.alice)
            .into_iter()
            .find(|r| r["args"]["amount"] == json!(amount) && r["state"] == "pending")
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "request for {amount} never listed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The request digest of a payment of `amount` bound to the gate key, as the writ will carry.
fn expected_digest(p: &Payments, amount: u64) -> (Sha256Digest, Sha256Digest) {
    let args = canonical::args_digest(&json!({"amount": amount, "currency": "EUR"})).unwrap();
    let terms = RequestTerms {
        action: "pay",
        resource: "account:acme",
        args_sha256: &args,
        aud: "payments-gate",
        cnf: Some(&p.gate_kid),
        env: None,
        uses: 1,
    };
    (args, terms.digest())
}

fn approve(p: &Payments, token: &str, key: &str, id: &str, extra: &[&str]) -> Output {
    let key = pem(&p.server, key);
    let mut args = vec!["approve", id, "--key", &key, "--json"];
    args.extend(extra);
    call(&p.server, token, &args)
}

fn code_of(out: &Output) -> String {
    stdout_json(out)["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_approvers_release_the_payment_writ_carrying_both() {
    let p = payments();
    let waiting = request_and_wait(&p, 25000);

    // The approvers see the exact terms and both digests.
    let shown = wait_listed(&p, 25000);
    let (args_sha256, request_sha256) = expected_digest(&p, 25000);
    let id = shown["request_id"].as_str().unwrap().to_string();
    assert_eq!(shown["principal"], "finance-bot");
    assert_eq!(shown["action"], "pay");
    assert_eq!(shown["resource"], "account:acme");
    assert_eq!(shown["args"], json!({"amount": 25000, "currency": "EUR"}));
    assert_eq!(shown["args_sha256"], json!(args_sha256.to_hex()));
    assert_eq!(shown["audience"], "payments-gate");
    assert_eq!(shown["uses"], 1);
    assert_eq!(shown["request_sha256"], json!(request_sha256.to_hex()));
    assert_eq!(shown["approvals_required"], 2);
    assert_eq!(shown["approver_group"], "finance");
    let expires = shown["expires_at"].as_u64().unwrap();

    let text = call(&p.server, &p.bob, &["approvals", "list"]);
    assert_eq!(status(&text), 0, "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains(&format!("request {id}")), "{text}");
    assert!(
        text.contains(r#"{"amount":25000,"currency":"EUR"}"#),
        "{text}"
    );
    assert!(text.contains(&request_sha256.to_hex()), "{text}");
    assert!(text.contains(p.gate_kid.as_str()), "{text}");
    assert!(text.contains("0/2 approvals from `finance`"), "{text}");
    assert!(!text.contains("MISMATCH"), "{text}");

    // A digest the approver did not mean to approve: nothing is signed or sent.
    let wrong = Sha256Digest::of(b"something else").to_hex();
    let out = approve(&p, &p.alice, "alice-key", &id, &["--sha256", &wrong]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "request_mismatch");
    assert_eq!(wait_listed(&p, 25000)["approvals"], json!([]));

    // The requester cannot approve its own request.
    let agent_key = generate_key(&p.server, "agent-key");
    let out = call(
        &p.server,
        &p.agent,
        &[
            "approve",
            &id,
            "--key",
            agent_key.join("signing-key.pem").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "self_approval", "{}", stderr(&out));

    // Approvers outside the group, or without a registered key, do not count.
    let out = approve(&p, &p.erin, "erin-key", &id, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "not_an_approver", "{}", stderr(&out));
    let out = approve(&p, &p.dave, "alice-key", &id, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "no_approval_key", "{}", stderr(&out));
    // A key that is not the approver's own: the signature does not verify.
    let out = approve(&p, &p.carol, "alice-key", &id, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "invalid_signature", "{}", stderr(&out));

    // An approval for another authority is refused.
    let out = approve(
        &p,
        &p.carol,
        "carol-key",
        &id,
        &["--issuer", "https://other.example"],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "wrong_authority", "{}", stderr(&out));

    // Alice approves (with the digest read out to her), once.
    let digest = request_sha256.to_hex();
    let out = approve(&p, &p.alice, "alice-key", &id, &["--sha256", &digest]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let out = approve(&p, &p.alice, "alice-key", &id, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "duplicate_approval", "{}", stderr(&out));
    let shown = wait_listed(&p, 25000);
    assert_eq!(shown["approvals"][0]["approver"], "alice");

    let out = call(&p.server, &p.bob, &["approvals", "show", &id]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1/2 approvals from `finance`: alice"));

    // Bob's approval is the quorum: the waiting requester gets its writ.
    let out = approve(&p, &p.bob, "bob-key", &id, &[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));

    let done = waiting.wait_with_output().unwrap();
    assert_eq!(status(&done), 0, "{}", stderr(&done));
    let answer = stdout_json(&done);
    assert_eq!(answer["decision"], "permit", "{answer}");
    assert_eq!(answer["request_id"], json!(id));
    let writ = answer["writ"].as_str().unwrap();
    let parsed = parse_unverified(writ).unwrap();
    let claims = parsed.claims();
    assert_eq!(RequestTerms::of_claims(claims).digest(), request_sha256);
    assert_eq!(claims.scope.args_sha256, args_sha256);
    assert_eq!(claims.uses, 1);
    assert!(
        claims.exp - claims.iat <= 60,
        "{} s",
        claims.exp - claims.iat
    );
    assert_eq!(claims.cnf.as_ref().unwrap().jkt, p.gate_kid);
    let approvals = &claims.gov.as_ref().expect("gov").approvals;
    let mut names: Vec<&str> = approvals.iter().map(|a| a.approver.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    // Each signature holds for this request and its terms, under the approver's own key:
    // `writ approve` signed for the authority's issuer (by default its URL) and the request's
    // expiry.
    for a in approvals {
        let object = ApprovalObject {
            verdict: ApprovalVerdict::Approve,
            authority: p.server.url.clone(),
            request_id: id.clone(),
            request_sha256,
            expires,
        };
        let key = public_key(&p.server.path(&format!("{}-key", a.approver)));
        assert_eq!(object.verify(&a.sig, &key), Ok(()), "{}", a.approver);
    }

    // The requester sees the settled request with its writ.
    let out = call(&p.server, &p.agent, &["approvals", "show", &id, "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["state"], "permit");

    // A third approval comes too late: the CLI refuses, and so does the authority.
    let out = approve(&p, &p.carol, "carol-key", &id, &[]);
    assert_ne!(status(&out), 0);
    assert_eq!(code_of(&out), "request_closed", "{}", stderr(&out));
    let carol =
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(pem(&p.server, "carol-key")).unwrap())
            .unwrap();
    let object = ApprovalObject {
        verdict: ApprovalVerdict::Approve,
        authority: p.server.url.clone(),
        request_id: id.clone(),
        request_sha256,
        expires,
    };
    let (code, body) = post(
        &format!("{}/v1/requests/{id}/approvals", p.server.url),
        Some(&p.carol),
        &json!({"approval": {"type": "writ-approval-v1", "authority": object.authority,
                "request_id": id, "request_sha256": request_sha256.to_hex(),
                "expires": expires}, "sig": object.sign(&carol)}),
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "request_closed");
    // No longer pending, so no longer listed.
    assert!(listed(&p, &p.alice)
        .iter()
        .all(|r| r["request_id"] != json!(id)));
}

#[test]
fn one_rejection_ends_the_request_and_the_waiting_requester_is_denied() {
    let p = payments();
    let waiting = request_and_wait(&p, 30000);
    let id = wait_listed(&p, 30000)["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = approve(&p, &p.alice, "alice-key", &id, &[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let key = pem(&p.server, "bob-key");
    let out = call(&p.server, &p.bob, &["reject", &id, "--key", &key]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rejected request"),
        "{}",
        stderr(&out)
    );

    let done = waiting.wait_with_output().unwrap();
    assert_eq!(status(&done), 77, "{}", stderr(&done));
    let answer = stdout_json(&done);
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert_eq!(answer["state"], "rejected", "{answer}");
    assert!(
        stderr(&done).contains("rejected by bob"),
        "{}",
        stderr(&done)
    );

    // Rejected is settled: no more approvals.
    let out = approve(&p, &p.carol, "carol-key", &id, &[]);
    assert_eq!(code_of(&out), "request_closed", "{}", stderr(&out));
}

#[test]
fn an_expired_request_ends_the_wait_and_takes_no_approval() {
    let p = payments_with(&["--approval-ttl-secs", "2"]);
    let started = Instant::now();
    let waiting = request_and_wait(&p, 40000);
    let id = wait_listed(&p, 40000)["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = waiting.wait_with_output().unwrap();
    assert_eq!(status(&done), 77, "{}", stderr(&done));
    assert!(started.elapsed() < Duration::from_secs(30));
    let answer = stdout_json(&done);
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert_eq!(answer["state"], "expired", "{answer}");
    assert!(stderr(&done).contains("expired"), "{}", stderr(&done));
    let out = approve(&p, &p.alice, "alice-key", &id, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert!(
        ["request_closed", "approval_expired"].contains(&code_of(&out).as_str()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_wait_the_request_id_is_printed_and_another_amount_is_another_request() {
    let p = payments();
    let mut args = pay_args(&p, 25000);
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = call(&p.server, &p.agent, &args);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    let first = stdout_json(&out);
    assert_eq!(first["decision"], "pending", "{first}");
    let id = first["request_id"].as_str().unwrap().to_string();
    assert!(stderr(&out).contains(&format!("writ approvals show {id} --wait")));
    let (_, digest) = expected_digest(&p, 25000);
    assert_eq!(first["request_sha256"], json!(digest.to_hex()));

    // Text: the id alone on standard output, for scripts.
    let args = pay_args(&p, 25001);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = call(&p.server, &p.agent, &args);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    let other = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_ne!(other, id);
    let shown = call(
        &p.server,
        &p.alice,
        &["approvals", "show", &other, "--json"],
    );
    assert_eq!(status(&shown), 0, "{}", stderr(&shown));
    let shown = stdout_json(&shown);
    let (_, other_digest) = expected_digest(&p, 25001);
    assert_eq!(shown["request_sha256"], json!(other_digest.to_hex()));
    assert_ne!(other_digest, digest);
    assert_eq!(shown["args"]["amount"], 25001);

    // An approval of the first request's digest is refused for the second.
    let out = approve(
        &p,
        &p.alice,
        "alice-key",
        &other,
        &["--sha256", &digest.to_hex()],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(code_of(&out), "request_mismatch");

    // Waiting later gives up after --wait-secs, still pending.
    let started = Instant::now();
    let out = call(
        &p.server,
        &p.agent,
        &["approvals", "show", &id, "--wait", "--wait-secs", "1"],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still awaits approvals"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Small payments need nobody.
    let args = pay_args(&p, 500);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = call(&p.server, &p.agent, &args);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
}

#[test]
fn approval_keys_are_for_approvers_and_listed_by_id() {
    let server = start();
    let d = server.d();
    let key = generate_key(&server, "k");
    let jwk = key.join("public.jwk");
    let out = run(
        &[
            "principals",
            "add",
            "bot",
            "--role",
            "agent",
            "--approval-key",
            jwk.to_str().unwrap(),
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("--role approver"), "{}", stderr(&out));

    add(&server, "alice", "approver", &["finance"], Some(&key));
    add(&server, "dave", "approver", &["finance"], None);
    let kid = public_key(&key).kid().to_string();
    let out = run(&["principals", "list", "--json", "--data-dir", &d], None);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let all = stdout_json(&out)["principals"].as_array().unwrap().clone();
    let alice = all.iter().find(|p| p["name"] == "alice").unwrap();
    assert_eq!(alice["approval_key_id"], json!(kid));
    let dave = all.iter().find(|p| p["name"] == "dave").unwrap();
    assert!(dave.get("approval_key_id").is_none());
    let out = run(&["principals", "list", "--data-dir", &d], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("approval key {kid}")), "{text}");
    assert!(text.contains("no approval key"), "{text}");

    // Without a key, or with a key file others may read, nothing is signed.
    let out = call(&server, "writ_x", &["approve", "abc", "--json"]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("WRIT_APPROVER_KEY"),
        "{}",
        stderr(&out)
    );
    let loose = server.path("loose.pem");
    std::fs::copy(key.join("signing-key.pem"), &loose).unwrap();
    let mut perms = std::fs::metadata(&loose).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&loose, perms).unwrap();
    let out = call(
        &server,
        "writ_x",
        &["approve", "abc", "--key", loose.to_str().unwrap()],
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    // A request id is one path segment.
    let out = call(&server, "writ_x", &["approvals", "show", "../v1/keys"]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
}

#[test]
fn the_commands_teach_in_their_help() {
    for (args, needle) in [
        (&["approvals", "list", "--help"][..], "writ approve"),
        (&["approvals", "show", "--help"][..], "--wait"),
        (&["approve", "--help"][..], "--sha256"),
        (&["reject", "--help"][..], "writ reject"),
        (&["request", "--help"][..], "writ approvals list"),
        (&["principals", "add", "--help"][..], "--approval-key"),
    ] {
        let out = run(args, None);
        assert_eq!(status(&out), 0, "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{args:?}: {text}");
    }
}

#[test]
fn a_gate_does_not_wait_it_names_the_request_to_approve() {
    let server = start();
    let agent = register(&server.d(), "build-agent", "agent");
    let key = generate_key(&server, "alice-key");
    let alice = add(&server, "alice", "approver", &["finance"], Some(&key))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let work = std::fs::canonicalize(server.dir.path())
        .unwrap()
        .join("work");
    std::fs::create_dir_all(work.join("bin")).unwrap();
    server.apply_examples_plus(&format!(
        "@id(\"approve-deploys\")\n@approvals(\"1\")\n@approvers(\"finance\")\n\
         permit (principal, action == Writ::Action::\"exec\", resource)\n\
         when {{ principal.role == \"agent\" && resource.path like \"{}/*\" }};\n",
        work.join("bin").display()
    ));
    let cfg = server.path("gate-config");
    let out = writ_cmd()
        .args(["gate", "init", "--name", "gate-1", "--url", &server.url])
        .args(["--pass-env", "PATH"])
        .env("WRIT_TOKEN", server.admin_token())
        .env("XDG_CONFIG_HOME", &cfg)
        .output()
        .unwrap();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let script = work.join("bin/deploy.sh");
    let marker = work.join("deployed");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let out = writ_cmd()
        .args(["exec", "--", "bin/deploy.sh"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("XDG_CONFIG_HOME", &cfg)
        .env("WRIT_TOKEN", &agent)
        .current_dir(&work)
        .output()
        .unwrap();
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert!(!marker.exists());
    let pending = listed_to(&server, &alice);
    assert_eq!(pending.len(), 1);
    let id = pending[0]["request_id"].as_str().unwrap();
    assert!(
        stderr(&out).contains(&format!("request {id} awaits approvals")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("writ approve {id}")),
        "{}",
        stderr(&out)
    );
}
