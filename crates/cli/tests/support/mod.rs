//! Running the binary, and a trusted authority to sign writs with.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod postgres;
pub mod server;

use serde_json::{json, Value};
use writ_core::{canonical, sign, Claims, Jti, KeySet, PolicyRef, Scope, Sha256Digest, SigningKey};

pub const ISSUER: &str = "https://writ.example";
pub const AUDIENCE: &str = "gate-1";

pub fn writ_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_writ"))
}

/// Runs `writ ARGS` with `stdin` and returns its output.
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = writ_cmd()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("writ runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn status(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An authority: its key and a JWKS file in a temporary directory.
pub struct Authority {
    pub dir: tempfile::TempDir,
    pub key: SigningKey,
}

impl Authority {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_seed(&[0x21; 32]);
        let mut set = KeySet::new();
        set.insert(key.verifying_key()).unwrap();
        std::fs::write(dir.path().join("jwks.json"), set.to_jwks_json()).unwrap();
        Authority { dir, key }
    }

    pub fn jwks(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn sign(&self, claims: &Claims) -> String {
        sign(claims, &self.key).unwrap()
    }
}

pub fn call_args() -> Value {
    json!({"argv": ["git", "status"], "cwd": "/work", "env": {"PATH": "/usr/bin"}})
}

/// A valid single-use writ's claims, issued now, for `call_args()`.
pub fn claims() -> Claims {
    let now = now();
    let mut jti = [0u8; 16];
    jti[..8].copy_from_slice(&now.to_be_bytes());
    jti[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    Claims {
        iss: ISSUER.into(),
        sub: "build-agent".into(),
        aud: AUDIENCE.into(),
        iat: now,
        nbf: now,
        exp: now + 60,
        jti: Jti::from_bytes(jti),
        scope: Scope {
            action: "exec".into(),
            resource: "/usr/bin/git".into(),
            args_sha256: canonical::args_digest(&call_args()).unwrap(),
        },
        pol: PolicyRef {
            digest: Sha256Digest::of(b"policies v1"),
            ids: vec!["allow-git".into()],
        },
        uses: 1,
        cnf: None,
        env: None,
        lin: None,
        del: None,
        gov: None,
    }
}

/// What a `writ verify` run expects: the gate's audience and the action it is about to run.
pub struct Call {
    pub audience: String,
    pub action: String,
    pub resource: String,
    pub args: String,
}

impl Default for Call {
    fn default() -> Self {
        Call {
            audience: AUDIENCE.into(),
            action: "exec".into(),
            resource: "/usr/bin/git".into(),
            args: call_args().to_string(),
        }
    }
}

impl Call {
    /// The `writ verify` argument vector for `token` (`-` reads standard input).
    pub fn argv<'a>(&'a self, authority: &'a Authority, token: &'a str) -> Vec<String> {
        [
            "verify",
            token,
            "--jwks",
            authority.jwks().to_str().unwrap(),
            "--issuer",
            ISSUER,
            "--audience",
            &self.audience,
            "--action",
            &self.action,
            "--resource",
            &self.resource,
            "--args",
            &self.args,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Runs `writ verify TOKEN --json` for this call, plus `extra` flags.
    pub fn verify(&self, authority: &Authority, token: &str, extra: &[&str]) -> Output {
        let mut argv = self.argv(authority, token);
        argv.push("--json".into());
        argv.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run(&argv, None)
    }
}

/// `writ verify TOKEN --json` with the standard expectation plus `extra` flags.
pub fn verify(authority: &Authority, token: &str, extra: &[&str]) -> Output {
    Call::default().verify(authority, token, extra)
}

/// Asserts a denial with `code`: exit 77, the code on stderr and in the JSON.
pub fn assert_denied(out: &Output, code: &str) {
    let json = stdout_json(out);
    assert_eq!(json["decision"], "deny", "{json}");
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["claims"], Value::Null);
    assert_eq!(status(out), 77, "{json}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(code), "stderr: {stderr}");
}

pub fn assert_permitted(out: &Output) -> Value {
    let json = stdout_json(out);
    assert_eq!(
        json["decision"],
        "permit",
        "{json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["code"], Value::Null);
    assert_eq!(status(out), 0);
    json
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
