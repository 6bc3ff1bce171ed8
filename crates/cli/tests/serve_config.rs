//! `writ serve` settings: `writ.toml` over the defaults, flags over `writ.toml`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::support::server::{post, register_agent_and_gate};
use crate::support::*;
use crate::tls::serve;

/// `exp - iat` of a writ (its claims, unverified).
fn lifetime(writ: &str) -> u64 {
    let payload = writ.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap()
}

/// Asks for `git status` (the example policy asks for 30 s) and returns the writ.
fn git_status_writ(url: &str, agent: &str) -> String {
    let body = json!({"action": "exec", "resource": "/usr/bin/git", "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}}, "audience": "gate-1"});
    let (code, answer) = post(&format!("{url}/v1/authorize"), Some(agent), &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["decision"], "permit", "{answer}");
    answer["writ"].as_str().unwrap().to_string()
}

#[test]
fn the_config_file_bounds_writs_and_a_flag_overrides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let d = data.to_str().unwrap();
    // Written by hand before the first start: no --listen needed, the file says where.
    std::fs::write(
        data.join("writ.toml"),
        "issuer = \"https://writ.example\"\nlisten = \"127.0.0.1:0\"\n\n[writs]\ndefault_lifetime_secs = 10\nmax_lifetime_secs = 20\nmax_uses = 2\n",
    )
    .unwrap();
    let server = serve(&["--data-dir", d], &[]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let agent = register_agent_and_gate(d);
    // The policy asks for 30 s; the file caps it at 20.
    assert_eq!(lifetime(&git_status_writ(&server.url, &agent)), 20);
    drop(server);

    // A flag wins over the file.
    let server = serve(&["--data-dir", d, "--max-lifetime-secs", "15"], &[]);
    assert_eq!(lifetime(&git_status_writ(&server.url, &agent)), 15);
    drop(server);

    // The hand-written file was kept as it was, and named the issuer.
    let text = std::fs::read_to_string(data.join("writ.toml")).unwrap();
    assert!(text.contains("max_uses = 2"), "{text}");
    let jwks = std::fs::read_to_string(data.join("jwks.json")).unwrap();
    assert!(jwks.contains("keys"));
}

#[test]
fn first_start_writes_a_commented_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let server = serve(&["--listen", "127.0.0.1:0", "--data-dir", d], &[]);
    drop(server);
    let text = std::fs::read_to_string(data.join("writ.toml")).unwrap();
    for key in [
        "issuer = \"http://127.0.0.1:",
        "# [tls]",
        "# max_lifetime_secs = 300",
        "# rate_limit_per_sec = 100",
        "# announce_secs = 60",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
    // Uncommenting a key is all it takes.
    std::fs::write(
        data.join("writ.toml"),
        text.replace("# [writs]", "[writs]")
            .replace("# default_lifetime_secs = 60", "default_lifetime_secs = 20")
            .replace("# max_lifetime_secs = 300", "max_lifetime_secs = 25"),
    )
    .unwrap();
    let server = serve(&["--listen", "127.0.0.1:0", "--data-dir", d], &[]);
    let agent = register_agent_and_gate(d);
    assert_eq!(lifetime(&git_status_writ(&server.url, &agent)), 25);
}

#[test]
fn bad_config_files_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let d = data.to_str().unwrap();
    // Each case must fail before it listens; one that starts after all is stopped, and fails.
    let serve_status = |extra: &[&str]| {
        let mut child = writ_cmd()
            .args(["serve", "--data-dir", d])
            .args(extra)
            .env("WRIT_LOG", "error")
            .env_remove("WRIT_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("writ serve {extra:?} started");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            status(&out),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let listen = ["--listen", "127.0.0.1:0"];
    for (text, says) in [
        (
            "issuer = \"https://writ.example\"\n[writs]\nmax_use = 3\n",
            "max_use",
        ),
        ("issuer = \"https://writ.example\"\nport = 7070\n", "port"),
        ("[writs]\nmax_uses = 3\n", "issuer"),
        (
            "issuer = \"https://writ.example\"\n[writs]\nmax_uses = 0\n",
            "writs.max_uses",
        ),
        (
            "issuer = \"https://writ.example\"\n[writs]\ndefault_lifetime_secs = 600\n",
            "writs.default_lifetime_secs",
        ),
        (
            "issuer = \"https://writ.example\"\n[limits]\nrequest_timeout_ms = 0\n",
            "limits.request_timeout_ms",
        ),
        (
            "issuer = \"https://writ.example\"\nlisten = \"0.0.0.0:0\"\n",
            "loopback",
        ),
    ] {
        std::fs::write(data.join("writ.toml"), text).unwrap();
        // The file's own `listen` is checked when no flag overrides it.
        let extra: &[&str] = if says == "loopback" { &[] } else { &listen };
        let (code, stderr) = serve_status(extra);
        assert_eq!(code, 64, "{text}: {stderr}");
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
    // A bad flag value is named too, whatever the file says.
    std::fs::write(
        data.join("writ.toml"),
        "issuer = \"https://writ.example\"\n",
    )
    .unwrap();
    let (code, stderr) = serve_status(&["--listen", "127.0.0.1:0", "--max-uses", "0"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("writs.max_uses"), "{stderr}");
    // A config file named on the command line must exist.
    let missing = tmp.path().join("nowhere.toml");
    let (code, stderr) = serve_status(&[
        "--listen",
        "127.0.0.1:0",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    // Nothing was created by any of these.
    assert!(!data.join("writ.db").exists());
}
