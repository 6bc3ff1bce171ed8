//! `writ hook claude-code`: Claude Code's PreToolUse hook, fed the recorded events of
//! `testdata/hooks/`, in front of a running authority, a dead one, a silent one and none.
//!
//! Every answer must be one of the two Claude Code acts on: exit 0 with
//! `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":…,
//! "permissionDecisionReason":…}}` on stdout, or exit 2 with the reason on stderr.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server::{self, Server};
use crate::support::{status, writ_cmd};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/hooks")
}

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(testdata().join(name)).unwrap()
}

fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A user's config home with a gate config for the authority at `url`, the gate's key
/// generated, its token and the pinned JWKS written.
struct GateHome {
    home: tempfile::TempDir,
}

impl GateHome {
    fn new(url: &str, issuer: &str, executor_token: &str, jwks: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("writ");
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("gate-key");
        let out = writ_cmd()
            .args(["keys", "generate", "--out", keys.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        write_secret(&dir.join("gate-1.token"), executor_token);
        std::fs::write(dir.join("jwks.json"), jwks).unwrap();
        let config = format!(
            "authority_url = \"{url}\"\nissuer = \"{issuer}\"\nexecutor = \"gate-1\"\n\
             executor_key = \"gate-key/signing-key.pem\"\n\
             executor_token_file = \"gate-1.token\"\njwks = \"jwks.json\"\n"
        );
        std::fs::write(dir.join("gate.toml"), config).unwrap();
        GateHome { home }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }
}

/// A running authority with `build-agent` and `gate-1`, and a gate config for it.
struct Setup {
    server: Server,
    gate: GateHome,
    agent_token: String,
}

fn setup() -> Setup {
    let server = server::start();
    let agent_token = server::register(&server.d(), "build-agent", "agent");
    let gate_token = server::register(&server.d(), "gate-1", "executor");
    let jwks = server::get(&format!("{}/.well-known/jwks.json", server.url));
    let gate = GateHome::new(&server.url, &server.url, &gate_token, &jwks);
    Setup {
        server,
        gate,
        agent_token,
    }
}

/// Runs `writ hook claude-code EXTRA…` with `event` on stdin, as Claude Code would: the
/// config home, the agent's token in the environment, nothing else of ours.
fn hook(config_home: &Path, agent_token: Option<&str>, extra: &[&str], event: &[u8]) -> Output {
    let mut cmd = writ_cmd();
    cmd.args(["hook", "claude-code"])
        .args(extra)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env_remove("WRIT_TOKEN")
        .env_remove("WRIT_TOKEN_FILE")
        .env_remove("WRIT_URL")
        .env_remove("WRIT_CLIENT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = agent_token {
        cmd.env("WRIT_TOKEN", token);
    }
    let mut child = cmd.spawn().unwrap();
    // The hook may answer without reading everything (a broken pipe is its business).
    let _ = child.stdin.take().unwrap().write_all(event);
    child.wait_with_output().unwrap()
}

/// The hook's answer, checked to be exactly the documented shape with exit 0: the decision
/// and the reason.
fn answer(out: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status(out), 0, "stderr: {stderr}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    let top = json.as_object().unwrap();
    assert_eq!(top.len(), 1, "{json}");
    let specific = json["hookSpecificOutput"].as_object().unwrap();
    let mut keys: Vec<&str> = specific.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "hookEventName",
            "permissionDecision",
            "permissionDecisionReason"
        ]
    );
    assert_eq!(specific["hookEventName"], "PreToolUse");
    let decision = specific["permissionDecision"].as_str().unwrap().to_string();
    assert!(decision == "allow" || decision == "deny", "{json}");
    let reason = specific["permissionDecisionReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!reason.is_empty());
    (decision, reason)
}

fn assert_denied(out: &Output, fragment: &str) -> String {
    let (decision, reason) = answer(out);
    assert_eq!(decision, "deny", "{reason}");
    assert!(reason.contains(fragment), "`{fragment}` not in: {reason}");
    reason
}

#[test]
fn recorded_events_get_the_documented_answers() {
    let s = setup();
    let cases: Value =
        serde_json::from_slice(&std::fs::read(testdata().join("cases.json")).unwrap()).unwrap();
    let cases = cases.as_array().unwrap();
    // Every recorded event has a case.
    let mut files: Vec<String> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "cases.json" && name != "README.md")
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases
        .iter()
        .map(|c| c["file"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(files, listed);

    for case in cases {
        let file = case["file"].as_str().unwrap();
        let out = hook(s.gate.path(), Some(&s.agent_token), &[], &recorded(file));
        let (decision, reason) = answer(&out);
        let context = format!("{file} ({}): {reason}", case["description"]);
        assert_eq!(decision, case["decision"].as_str().unwrap(), "{context}");
        if let (Some(action), Some(resource)) = (case["action"].as_str(), case["resource"].as_str())
        {
            assert!(
                reason.contains(&format!("`{action}` on `{resource}`")),
                "{context}"
            );
        }
        if let Some(fragment) = case["reason_contains"].as_str() {
            assert!(reason.contains(fragment), "{context}");
        }
        if decision == "allow" {
            assert!(reason.contains("by writ "), "{context}");
        }
    }
}

#[test]
fn an_mcp_tool_runs_once_policy_permits_it() {
    let s = setup();
    let event = recorded("mcp_fs_read_file.json");
    assert_denied(
        &hook(s.gate.path(), Some(&s.agent_token), &[], &event),
        "`tools/call` on `mcp:fs/read_file`",
    );

    // The example set plus a permit for the fs server's read_file, applied as admin.
    s.server.apply_examples_plus(
        "@id(\"allow-fs-read\")\npermit (principal, action == Writ::Action::\"tools/call\", \
         resource)\nwhen { principal.role == \"agent\" && resource.server == \"fs\" && \
         resource.name == \"read_file\" };\n",
    );

    let (decision, reason) = answer(&hook(s.gate.path(), Some(&s.agent_token), &[], &event));
    assert_eq!(decision, "allow", "{reason}");
    assert!(reason.contains("`tools/call` on `mcp:fs/read_file` by writ "));
}

#[test]
fn with_the_authority_stopped_nothing_runs() {
    let mut s = setup();
    let event = recorded("bash_npm_test.json");
    let (decision, reason) = answer(&hook(s.gate.path(), Some(&s.agent_token), &[], &event));
    assert_eq!(decision, "allow", "{reason}");

    s.server.child.kill().unwrap();
    s.server.child.wait().unwrap();
    for file in [
        "bash_npm_test.json",
        "write_project_file.json",
        "mcp_fs_read_file.json",
    ] {
        let out = hook(s.gate.path(), Some(&s.agent_token), &[], &recorded(file));
        assert_denied(&out, "status_unavailable");
    }
}

#[test]
fn a_silent_authority_is_denied_at_the_deadline() {
    // Accepts connections (the kernel's backlog does) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = {
        let keys = tempfile::tempdir().unwrap();
        let out = writ_cmd()
            .args(["keys", "generate", "--out", keys.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(status(&out), 0);
        std::fs::read_to_string(keys.path().join("jwks.json")).unwrap()
    };
    let gate = GateHome::new(&url, &url, "executor-token-0123456789abcdef", &jwks);
    let started = Instant::now();
    let out = hook(
        gate.path(),
        Some("agent-token-0123456789abcdef"),
        &["--timeout-ms", "700"],
        &recorded("bash_npm_test.json"),
    );
    assert_denied(&out, "no decision within 700 ms");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
}

#[test]
fn no_gate_config_denies_and_says_how_to_make_one() {
    let empty = tempfile::tempdir().unwrap();
    let out = hook(
        empty.path(),
        Some("agent-token-0123456789abcdef"),
        &[],
        &recorded("bash_npm_test.json"),
    );
    let reason = assert_denied(&out, "writ gate init");
    assert!(reason.contains("gate.toml"), "{reason}");
}

#[test]
fn no_agent_token_denies() {
    let s = setup();
    let out = hook(s.gate.path(), None, &[], &recorded("bash_npm_test.json"));
    assert_denied(&out, "WRIT_TOKEN");
}

#[test]
fn a_wrong_agent_token_denies() {
    let s = setup();
    let out = hook(
        s.gate.path(),
        Some("not-the-agent-token-0123456789"),
        &[],
        &recorded("bash_npm_test.json"),
    );
    assert_denied(&out, "denied");
}

#[test]
fn malformed_input_denies_without_a_config() {
    // Not even the config is needed to refuse these; none of them may let a tool run.
    let empty = tempfile::tempdir().unwrap();
    let oversize = {
        let mut e = recorded("write_project_file.json");
        e.truncate(e.len() - 1);
        e.extend(vec![b' '; 1 << 20]);
        e
    };
    for input in [
        b"".to_vec(),
        b"\xff\xfe not utf-8".to_vec(),
        b"[]".to_vec(),
        recorded("malformed_truncated.json"),
        recorded("malformed_tool_input_string.json"),
        oversize,
    ] {
        let out = hook(empty.path(), None, &[], &input);
        assert_denied(&out, "writ: denied");
    }
}

#[test]
fn a_bad_command_line_blocks_with_status_2() {
    let empty = tempfile::tempdir().unwrap();
    for extra in [
        &["--timeout-ms", "soon"][..],
        &["--no-such-flag"],
        &["--timeout-ms", "0"],
    ] {
        let out = hook(empty.path(), None, extra, &recorded("bash_npm_test.json"));
        assert_eq!(status(&out), 2, "{extra:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("writ: denied"), "{stderr}");
    }
}

#[test]
fn a_path_is_asked_about_where_it_really_leads() {
    let s = setup();
    let project = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(project.path()).unwrap();
    std::fs::create_dir_all(root.join("app/src")).unwrap();
    let mut event: Value = serde_json::from_slice(&recorded("write_relative_escape.json")).unwrap();
    event["cwd"] = Value::from(root.join("app").to_str().unwrap());
    event["tool_input"]["file_path"] = Value::from("src/../../outside.txt");
    let out = hook(
        s.gate.path(),
        Some(&s.agent_token),
        &[],
        event.to_string().as_bytes(),
    );
    let outside = root.join("outside.txt");
    assert_denied(
        &out,
        &format!("`Write` on `{}` (missing_authorization)", outside.display()),
    );
}

#[test]
fn an_answer_that_cannot_be_written_blocks_with_status_2() {
    let empty = tempfile::tempdir().unwrap();
    let mut child = writ_cmd()
        .args(["hook", "claude-code"])
        .env("XDG_CONFIG_HOME", empty.path())
        .env("HOME", empty.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads the answer: writing it fails with a broken pipe.
    drop(child.stdout.take());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&recorded("bash_npm_test.json"))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(status(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writ: denied"), "{stderr}");
}
