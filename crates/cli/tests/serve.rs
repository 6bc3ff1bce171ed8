//! `writ serve` over real HTTP on loopback: scenario 1 of SCENARIOS.md, up to the decision.

use serde_json::{json, Value};
use writ_core::{Expectation, KeySet, StateChecks, Verdict, Verifier};

use crate::support::server::*;
use crate::support::*;

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

/// What one client saw before the server died under it.
#[derive(Default)]
struct Seen {
    /// (decision log index, writ) for every writ received.
    writs: Vec<(u64, String)>,
    /// (consumption log index, writ) for every consumption acknowledged as a permit.
    consumed: Vec<(u64, String)>,
}

/// Asks for writs and consumes each at once, until the server stops answering.
fn request_and_consume(
    url: &str,
    agent: &str,
    gate: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> Seen {
    let body = json!({"action": "exec", "resource": "/usr/bin/git", "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}}, "audience": "gate-1"});
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(2)))
        .build()
        .into();
    let call = |path: &str, token: &str, body: &Value| -> Option<Value> {
        http.post(format!("{url}{path}"))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(body)
            .ok()?
            .body_mut()
            .read_json::<Value>()
            .ok()
    };
    let mut seen = Seen::default();
    let mut nonce = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(v) = call("/v1/authorize", agent, &body) else {
            break;
        };
        let Some(writ) = v["writ"].as_str() else {
            continue;
        };
        seen.writs
            .push((v["log_index"].as_u64().unwrap(), writ.to_string()));
        nonce += 1;
        let consume = json!({"writ": writ, "action": body["action"], "resource": body["resource"],
            "args": body["args"], "nonce": format!("n{nonce}")});
        let Some(answer) = call("/v1/consume", gate, &consume) else {
            break;
        };
        if answer["decision"] == "permit" {
            seen.consumed
                .push((answer["log_index"].as_u64().unwrap(), writ.to_string()));
        }
    }
    seen
}

/// Promises 2 and 3 of DESIGN.md under `kill -9`: clients request and consume writs while the
/// server is killed, four times over; after each restart every writ a client received has its
/// decision in the log, every acknowledged consumption is still consumed (and logged), and the
/// log extends a checkpoint taken before.
#[test]
fn kill_9_loses_no_decision_and_no_consumption_that_was_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let (mut child, _) = start_on(&data);
    let _ = child.kill();
    let _ = child.wait();
    let agent = register(d, "build-agent", "agent");
    let gate = register(d, "gate-1", "executor");
    // The clients go as fast as they can: no rate limit in this test.
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("writ.toml"))
        .unwrap();
    std::io::Write::write_all(&mut config, b"\n[limits]\nrate_limit_per_sec = 0\n").unwrap();
    let kept = tmp.path().join("kept.checkpoint");
    let vkey = tmp.path().join("vkey");
    std::fs::write(
        &kept,
        &run(&["log", "checkpoint", "--data-dir", d], None).stdout,
    )
    .unwrap();
    std::fs::write(&vkey, &run(&["log", "vkey", "--data-dir", d], None).stdout).unwrap();

    let mut seen = Seen::default();
    for round in 0..4u64 {
        let (mut child, url) = start_on(&data);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (url, agent, gate, stop) =
                    (url.clone(), agent.clone(), gate.clone(), stop.clone());
                std::thread::spawn(move || request_and_consume(&url, &agent, &gate, &stop))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(150 + 70 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            let got = c.join().unwrap();
            seen.writs.extend(got.writs);
            seen.consumed.extend(got.consumed);
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
    assert!(seen.writs.len() > 10, "clients received writs");
    assert!(seen.consumed.len() > 5, "clients consumed writs");

    // The log as it stands after the last kill, read from the data dir.
    let out = run(
        &["log", "tail", "-n", "1000000", "--json", "--data-dir", d],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let entries: std::collections::HashMap<u64, Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap();
            (e["index"].as_u64().unwrap(), e["entry"].clone())
        })
        .collect();
    let digest = |writ: &str| writ_core::Sha256Digest::of(writ.as_bytes()).to_hex();
    // Every writ any client received has its decision in the log.
    for (index, writ) in &seen.writs {
        let entry = entries.get(index).unwrap_or_else(|| {
            panic!(
                "decision {index} missing; log has {} entries",
                entries.len()
            )
        });
        assert_eq!(entry["type"], "decision");
        assert_eq!(entry["writ_sha256"], digest(writ));
    }
    // Every acknowledged consumption is in the log ...
    for (index, writ) in &seen.consumed {
        let entry = &entries[index];
        assert_eq!(entry["type"], "consumption");
        assert_eq!(entry["decision"], "permit");
        assert_eq!(entry["writ_sha256"], digest(writ));
    }
    // ... and still holds: a restarted server refuses the writ as spent.
    let (_child, url) = start_on(&data);
    let mut server = Server {
        child: _child,
        url,
        dir: tempfile::tempdir().unwrap(),
    };
    for (i, (_, writ)) in seen.consumed.iter().enumerate() {
        let (code, answer) = post(
            &format!("{}/v1/consume", server.url),
            Some(&gate),
            &json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git",
                    "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}},
                    "nonce": format!("after-{i}")}),
        );
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["code"], "replay_detected", "{answer}");
    }
    let _ = server.child.kill();
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
