//! `writ serve` over real HTTP on loopback: scenario 1 of SCENARIOS.md, up to the decision.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::{json, Value};
use writ_core::{Expectation, KeySet, StateChecks, Verdict, Verifier};

use crate::support::*;

/// A running `writ serve` on an ephemeral port; killed on drop.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = start_on(&dir.path().join("data"));
    Server { child, url, dir }
}

/// Registers `build-agent` and `gate-1` in `data`; returns the agent's token.
fn register_agent_and_gate(data: &str) -> String {
    let out = run(
        &[
            "principals",
            "add",
            "build-agent",
            "--role",
            "agent",
            "--json",
            "--data-dir",
            data,
        ],
        None,
    );
    let token = stdout_json(&out)["token"].as_str().unwrap().to_string();
    let gate = run(
        &[
            "principals",
            "add",
            "gate-1",
            "--role",
            "executor",
            "--data-dir",
            data,
        ],
        None,
    );
    assert_eq!(status(&gate), 0);
    token
}

fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut res = req.send_json(body).unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap_or(Value::Null))
}

fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

#[test]
fn first_minute_on_a_laptop() {
    let server = start();
    let data = server.dir.path().join("data");
    let d = data.to_str().unwrap();
    // The data dir holds what DESIGN.md promises, secrets at 0600.
    use std::os::unix::fs::PermissionsExt;
    for secret in ["admin.token", "issuer-key.pem", "log-checkpoint.key"] {
        assert_eq!(
            std::fs::metadata(data.join(secret))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600,
            "{secret}"
        );
    }
    let agent = register_agent_and_gate(d);

    let ask = |resource: &str, argv: Value| json!({"action": "exec", "resource": resource, "args": {"argv": argv, "cwd": "/work", "env": {}}, "audience": "gate-1"});
    let authorize = format!("{}/v1/authorize", server.url);
    let (code, permit) = post(
        &authorize,
        Some(&agent),
        &ask("/usr/bin/git", json!(["git", "status"])),
    );
    assert_eq!(code, 200, "{permit}");
    assert_eq!(permit["decision"], "permit", "{permit}");
    let (code, deny) = post(
        &authorize,
        Some(&agent),
        &ask("/usr/bin/rm", json!(["rm", "-rf", "./build"])),
    );
    assert_eq!(code, 200);
    assert_eq!(deny["decision"], "deny");
    assert!(
        deny["reasons"][0]["policy"]
            .as_str()
            .unwrap()
            .contains("rm"),
        "{deny}"
    );
    let (code, _) = post(
        &authorize,
        None,
        &ask("/usr/bin/git", json!(["git", "status"])),
    );
    assert_eq!(code, 401);

    // The writ verifies with the JWKS the server serves.
    let keys =
        KeySet::from_jwks_json(&get(&format!("{}/.well-known/jwks.json", server.url))).unwrap();
    let issuer = format!("http://{}", server.url.trim_start_matches("http://"));
    let args = json!({"argv": ["git", "status"], "cwd": "/work", "env": {}});
    let now = writ_core::UnixTime(now());
    let verdict = Verifier::new(issuer, keys).verify(
        permit["writ"].as_str().unwrap(),
        &Expectation::new("gate-1", "exec", "/usr/bin/git", &args),
        now,
        StateChecks::Offline,
    );
    assert!(matches!(verdict, Verdict::Permit(_)), "{verdict:?}");

    // Both decisions are in the log, with proofs that verify against the served checkpoint.
    let checkpoint_path = server.dir.path().join("checkpoint");
    std::fs::write(
        &checkpoint_path,
        get(&format!("{}/v1/log/checkpoint", server.url)),
    )
    .unwrap();
    let vkey_path = server.dir.path().join("vkey");
    std::fs::write(&vkey_path, get(&format!("{}/v1/log/vkey", server.url))).unwrap();
    for decision in [&permit, &deny] {
        let index = decision["log_index"].as_u64().unwrap();
        let proof = get(&format!(
            "{}/v1/log/proof/inclusion?index={index}",
            server.url
        ));
        let proof_path = server.dir.path().join(format!("proof-{index}.json"));
        std::fs::write(&proof_path, proof).unwrap();
        let out = run(
            &[
                "log",
                "check-proof",
                proof_path.to_str().unwrap(),
                "--checkpoint",
                checkpoint_path.to_str().unwrap(),
                "--vkey",
                vkey_path.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    // `writ log verify` holds while the server runs.
    assert_eq!(status(&run(&["log", "verify", "--data-dir", d], None)), 0);
}

#[test]
fn plain_http_is_for_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(status(&out), 64);
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// Starts `writ serve` on `data` (already initialized or not), returning the child and URL.
fn start_on(data: &std::path::Path) -> (Child, String) {
    let mut child = writ_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env("WRIT_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("writ serve says where it listens")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

#[test]
fn kill_9_loses_no_decision_that_was_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let (mut child, _) = start_on(&data);
    let _ = child.kill();
    let _ = child.wait();
    let agent = register_agent_and_gate(d);
    let kept = tmp.path().join("kept.checkpoint");
    let vkey = tmp.path().join("vkey");
    std::fs::write(
        &kept,
        &run(&["log", "checkpoint", "--data-dir", d], None).stdout,
    )
    .unwrap();
    std::fs::write(&vkey, &run(&["log", "vkey", "--data-dir", d], None).stdout).unwrap();

    let body = json!({"action": "exec", "resource": "/usr/bin/git", "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}}, "audience": "gate-1"});
    let mut received: Vec<(u64, String)> = Vec::new();
    for round in 0..4u64 {
        let (mut child, url) = start_on(&data);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (url, agent, body, stop) =
                    (url.clone(), agent.clone(), body.clone(), stop.clone());
                std::thread::spawn(move || {
                    let agent_http: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(std::time::Duration::from_secs(2)))
                        .build()
                        .into();
                    let mut got = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let Ok(mut res) = agent_http
                            .post(format!("{url}/v1/authorize"))
                            .header("Authorization", &format!("Bearer {agent}"))
                            .send_json(&body)
                        else {
                            break;
                        };
                        let Ok(v) = res.body_mut().read_json::<Value>() else {
                            break;
                        };
                        if let Some(writ) = v["writ"].as_str() {
                            got.push((v["log_index"].as_u64().unwrap(), writ.to_string()));
                        }
                    }
                    got
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(150 + 70 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            received.extend(c.join().unwrap());
        }
        // After every kill: the log verifies and extends the checkpoint kept before.
        let out = run(
            &[
                "log",
                "verify",
                "--data-dir",
                d,
                "--checkpoint",
                kept.to_str().unwrap(),
                "--vkey",
                vkey.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(
            status(&out),
            0,
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(received.len() > 10, "clients received writs");
    // Every writ any client received has its decision in the log.
    for (index, writ) in &received {
        let out = run(
            &[
                "log",
                "get",
                "--index",
                &index.to_string(),
                "--json",
                "--data-dir",
                d,
            ],
            None,
        );
        let entry = &stdout_json(&out)["entry"];
        assert_eq!(entry["type"], "decision");
        assert_eq!(
            entry["writ_sha256"],
            writ_core::Sha256Digest::of(writ.as_bytes()).to_hex()
        );
    }
}

/// Whether PyJWT is importable here; `.ci/run` installs it, so CI always runs the test below.
fn pyjwt_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_served_writ_verifies_with_pyjwt_and_the_served_jwks() {
    if !pyjwt_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have PyJWT (installed by .ci/run)"
        );
        eprintln!("PyJWT is not installed here: `pip install pyjwt cryptography` to run this test");
        return;
    }
    let server = start();
    let data = server.dir.path().join("data");
    let d = data.to_str().unwrap();
    let agent = register_agent_and_gate(d);
    let body = json!({"action": "exec", "resource": "/usr/bin/git", "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}}, "audience": "gate-1"});
    let (_, permit) = post(&format!("{}/v1/authorize", server.url), Some(&agent), &body);
    let writ_file = server.dir.path().join("writ");
    std::fs::write(&writ_file, permit["writ"].as_str().unwrap()).unwrap();
    let jwks_file = server.dir.path().join("jwks.json");
    std::fs::write(
        &jwks_file,
        get(&format!("{}/.well-known/jwks.json", server.url)),
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/interop/verify_served_writ.py"
    );
    let out = std::process::Command::new("python3")
        .args([
            script,
            writ_file.to_str().unwrap(),
            jwks_file.to_str().unwrap(),
            &server.url,
            "gate-1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "build-agent");
    assert_eq!(claims["jti"], permit["jti"]);
    // A tampered writ fails in PyJWT too.
    let mut tampered = permit["writ"].as_str().unwrap().to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    std::fs::write(&writ_file, tampered).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            script,
            writ_file.to_str().unwrap(),
            jwks_file.to_str().unwrap(),
            &server.url,
            "gate-1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
