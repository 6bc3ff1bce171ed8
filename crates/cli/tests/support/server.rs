//! A running `writ serve` on loopback, its principals, and raw HTTP calls to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use super::{run, status, stdout_json, writ_cmd};

/// A running `writ serve` on an ephemeral port; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The data dir.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The data dir, as an argument.
    pub fn d(&self) -> String {
        self.data().to_str().unwrap().to_string()
    }

    /// The admin token `writ serve` wrote at first start.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A file in the server's temporary directory (beside the data dir).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Starts `writ serve` on a fresh data dir.
pub fn start() -> Server {
    start_with(&[])
}

/// Starts `writ serve` on a fresh data dir with extra flags (e.g. `--rate-limit-per-sec 0`).
pub fn start_with(flags: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = start_on_with(&dir.path().join("data"), flags);
    Server { child, url, dir }
}

/// Starts `writ serve` on `data` (already initialized or not), returning the child and URL.
pub fn start_on(data: &Path) -> (Child, String) {
    start_on_with(data, &[])
}

fn start_on_with(data: &Path, flags: &[&str]) -> (Child, String) {
    let mut child = writ_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .args(flags)
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

/// Registers principal `name` with `role` in `data`; returns its token.
pub fn register(data: &str, name: &str, role: &str) -> String {
    let out = run(
        &[
            "principals",
            "add",
            name,
            "--role",
            role,
            "--json",
            "--data-dir",
            data,
        ],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)["token"].as_str().unwrap().to_string()
}

/// Registers `build-agent` and `gate-1` in `data`; returns the agent's token.
pub fn register_agent_and_gate(data: &str) -> String {
    let token = register(data, "build-agent", "agent");
    register(data, "gate-1", "executor");
    token
}

/// `POST url` with a JSON body (and a bearer token): the status and the JSON answer.
pub fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
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

/// `GET url`: the body text.
pub fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

impl Server {
    /// Applies writ's example policy set plus `extra` Cedar policies, as the admin, through
    /// `writ policy apply`.
    pub fn apply_examples_plus(&self, extra: &str) {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/examples");
        let dir = tempfile::tempdir_in(self.dir.path()).unwrap();
        for name in ["writ.cedarschema", "entities.json"] {
            std::fs::copy(examples.join(name), dir.path().join(name)).unwrap();
        }
        let mut policies = std::fs::read_to_string(examples.join("policies.cedar")).unwrap();
        policies.push('\n');
        policies.push_str(extra);
        std::fs::write(dir.path().join("policies.cedar"), policies).unwrap();
        let out = writ_cmd()
            .args(["policy", "apply", dir.path().to_str().unwrap()])
            .args(["--url", &self.url, "--token", &self.admin_token()])
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_TOKEN_FILE")
            .output()
            .unwrap();
        assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
}
