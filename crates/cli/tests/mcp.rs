//! `writ mcp-gateway` end to end: the real filesystem MCP server (npm
//! `@modelcontextprotocol/server-filesystem`, installed by `.ci/run` under
//! `target/mcp-test`), a real MCP client (the official Python SDK, pip `mcp`) and a raw
//! JSON-RPC script for batches, against a running `writ serve`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::server::{register, start, Server};
use crate::support::{status, writ_cmd};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The filesystem server's entry point, where `.ci/run` installs it.
fn fs_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../target/mcp-test/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

/// Whether node, the filesystem server and the Python SDK are here; `.ci/run` installs them,
/// so CI always runs these tests.
fn prerequisites() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let sdk = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = node && sdk && fs_server().exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have node, @modelcontextprotocol/server-filesystem and the Python mcp SDK \
             (installed by .ci/run)"
        );
        eprintln!(
            "skipped: needs node, `npm install --prefix target/mcp-test \
             @modelcontextprotocol/server-filesystem` and `pip install mcp` (see .ci/run)"
        );
    }
    ok
}

struct Setup {
    server: Server,
    agent_token: PathBuf,
    /// XDG_CONFIG_HOME of the gate.
    cfg: tempfile::TempDir,
    /// The directory the filesystem server serves.
    data: PathBuf,
    _data: tempfile::TempDir,
}

/// The example policies, plus: agents may read through `fs`, and nobody writes through it.
fn apply_policy(server: &Server) {
    server.apply_examples_plus(
        r#"
@id("allow-fs-read")
permit (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:fs/read_file"
)
when { principal.role == "agent" };

@id("forbid-fs-write")
@reason("no writes through the fs server")
forbid (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:fs/write_file"
);
"#,
    );
}

fn setup() -> Setup {
    let server = start();
    let token = register(&server.d(), "mcp-agent", "agent");
    let agent_token = server.path("agent.token");
    std::fs::write(&agent_token, token).unwrap();
    apply_policy(&server);
    let cfg = tempfile::tempdir().unwrap();
    let out = writ_cmd()
        .args(["gate", "init", "--name", "gate-1", "--url", &server.url])
        .env("WRIT_TOKEN", server.admin_token())
        .env("XDG_CONFIG_HOME", cfg.path())
        .output()
        .unwrap();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let data_dir = tempfile::tempdir().unwrap();
    let data = std::fs::canonicalize(data_dir.path()).unwrap();
    std::fs::write(data.join("hello.txt"), "hello from writ\n").unwrap();
    Setup {
        server,
        agent_token,
        cfg,
        data,
        _data: data_dir,
    }
}

impl Setup {
    /// `python3 SCRIPT ARGS -- writ mcp-gateway --name fs … -- node server DATA`.
    fn drive(&self, script_name: &str, args: &[&str]) -> Output {
        let out = Command::new("python3")
            .arg(script(script_name))
            .args(args)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_writ"))
            .args(["mcp-gateway", "--name", "fs", "--token-file"])
            .arg(&self.agent_token)
            .arg("--")
            .arg("node")
            .arg(fs_server())
            .arg(&self.data)
            .env("XDG_CONFIG_HOME", self.cfg.path())
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_TOKEN_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        out
    }

    fn drive_json(&self, script_name: &str, args: &[&str]) -> Value {
        let out = self.drive(script_name, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            )
        })
    }

    /// Every log entry.
    fn log(&self) -> Vec<Value> {
        let out = writ_cmd()
            .args([
                "log",
                "tail",
                "-n",
                "100000",
                "--json",
                "--data-dir",
                &self.server.d(),
            ])
            .output()
            .unwrap();
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["entry"].clone())
            .collect()
    }

    /// Waits until the log holds `n` receipts (they are sent off the message path).
    fn receipts(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let receipts: Vec<Value> = self
                .log()
                .into_iter()
                .filter(|e| e["type"] == "receipt")
                .collect();
            if receipts.len() >= n {
                return receipts;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("fewer than {n} receipts in the log: {:#?}", self.log());
    }
}

fn decisions(log: &[Value], decision: &str) -> usize {
    log.iter()
        .filter(|e| e["type"] == "decision" && e["decision"] == decision)
        .count()
}

#[test]
fn the_python_sdk_reads_through_the_gateway_and_is_denied_a_write() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let seen = s.drive_json("client.py", &[s.data.to_str().unwrap()]);
    assert!(
        seen["tools"]
            .as_array()
            .unwrap()
            .contains(&"read_file".into()),
        "{seen}"
    );
    assert_eq!(seen["read"]["isError"], false, "{seen}");
    assert_eq!(seen["read"]["text"], "hello from writ\n");
    assert_eq!(seen["write"]["isError"], true, "{seen}");
    let text = seen["write"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("writ denied: missing_authorization: "),
        "{text}"
    );
    assert!(
        text.contains("forbid-fs-write"),
        "the policy is named: {text}"
    );
    assert!(
        !s.data.join("new.txt").exists(),
        "the server never saw the write"
    );

    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1, "{log:#?}");
}

#[test]
fn a_batch_is_split_between_the_server_and_the_gate() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let got = s.drive_json("raw.py", &["batch", s.data.to_str().unwrap()]);
    let read = &got["read"]["result"];
    assert_eq!(read["content"][0]["text"], "hello from writ\n", "{got}");
    assert_ne!(read["isError"], true, "{got}");
    let write = &got["write"]["result"];
    assert_eq!(write["isError"], true, "{got}");
    assert!(write["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("writ denied: missing_authorization: "));
    assert!(!s.data.join("batch.txt").exists());
    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1);
}

/// The latency a gate adds per `tools/call` (authorize, consume, receipt off the path):
/// `cargo test -p writ --test main mcp::bench -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: prints figures"]
fn bench_gateway_latency() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let direct = Command::new("python3")
        .arg(script("raw.py"))
        .args(["bench", "150", s.data.to_str().unwrap(), "--", "node"])
        .arg(fs_server())
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", stderr(&direct));
    let gated = s.drive("raw.py", &["bench", "150", s.data.to_str().unwrap()]);
    println!("direct: {}", String::from_utf8_lossy(&direct.stdout));
    println!("gated:  {}", String::from_utf8_lossy(&gated.stdout));
}
