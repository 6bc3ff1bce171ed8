//! `writ gate init` and `writ exec` against a running `writ serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use writ_core::{Sha256Digest, SigningKey};

use crate::support::server::{register, start, Server};
use crate::support::{status, writ_cmd};

struct Setup {
    server: Server,
    agent: String,
    /// XDG_CONFIG_HOME of the gate.
    cfg: tempfile::TempDir,
    /// The working directory; scripts in `bin/` are permitted, others are not.
    work: PathBuf,
    _work: tempfile::TempDir,
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example policies, plus: agents may exec anything under `bin`.
fn apply_policy(server: &Server, bin: &Path) {
    server.apply_examples_plus(&format!(
        "@id(\"allow-test-bin\")\npermit (principal, action == Writ::Action::\"exec\", \
         resource)\nwhen {{ principal.role == \"agent\" && resource.path like \"{}/*\" }};\n",
        bin.display()
    ));
}

fn setup_with(env_spec: bool) -> Setup {
    let server = start();
    let agent = register(&server.d(), "build-agent", "agent");
    let work_dir = tempfile::tempdir().unwrap();
    let work = std::fs::canonicalize(work_dir.path()).unwrap();
    std::fs::create_dir(work.join("bin")).unwrap();
    std::fs::create_dir(work.join("other")).unwrap();
    apply_policy(&server, &work.join("bin"));
    let cfg = tempfile::tempdir().unwrap();
    let mut init = writ_cmd();
    init.args(["gate", "init", "--name", "gate-1", "--url", &server.url])
        .args(["--pass-env", "PATH,HOME"])
        .env("WRIT_TOKEN", server.admin_token())
        .env("XDG_CONFIG_HOME", cfg.path());
    if env_spec {
        let spec = work.join("env.toml");
        std::fs::write(&spec, "# only the executable, which `writ exec` adds\n").unwrap();
        init.args(["--env-spec", spec.to_str().unwrap()]);
    }
    let out = init.output().unwrap();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    Setup {
        server,
        agent,
        cfg,
        work,
        _work: work_dir,
    }
}

fn setup() -> Setup {
    setup_with(false)
}

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const HOME: &str = "/home/tester";

impl Setup {
    /// A script at `rel` (under the work dir).
    fn script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.work.join(rel);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// `writ exec ARGS` in `cwd`, as the agent, with exactly PATH and HOME (and `extra`).
    fn exec_in(&self, cwd: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
        writ_cmd()
            .arg("exec")
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", HOME)
            .env("XDG_CONFIG_HOME", self.cfg.path())
            .env("WRIT_TOKEN", &self.agent)
            .envs(extra.iter().copied())
            .current_dir(cwd)
            .output()
            .unwrap()
    }

    fn exec(&self, args: &[&str]) -> Output {
        self.exec_in(&self.work, args, &[])
    }

    /// The args `writ exec` binds for `argv` run in `cwd`.
    fn args(&self, argv: &[&str], cwd: &Path, home: &str) -> Value {
        json!({"argv": argv, "cwd": cwd, "env": {"PATH": PATH, "HOME": home}})
    }

    fn gate_file(&self, name: &str) -> PathBuf {
        self.cfg.path().join("writ").join(name)
    }

    /// A writ requested as the agent, as `writ request` would; `extra` are more flags.
    fn request(&self, resource: &Path, args: &Value, extra: &[&str]) -> PathBuf {
        let out_file = self
            .work
            .join(format!("writ-{}.jws", rand_suffix(&args.to_string())));
        let out = writ_cmd()
            .args(["request", "--action", "exec", "--audience", "gate-1"])
            .args(["--resource", resource.to_str().unwrap()])
            .args(["--args", &args.to_string()])
            .args(["--url", &self.server.url, "--token", &self.agent])
            .args(["--out", out_file.to_str().unwrap()])
            .args(extra)
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_TOKEN_FILE")
            .output()
            .unwrap();
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        out_file
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
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["entry"].clone())
            .collect()
    }
}

fn rand_suffix(seed: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Sha256Digest::of(format!("{seed}{nanos}").as_bytes()).to_hex()[..12].to_string()
}

fn assert_denied(out: &Output, code: &str) {
    assert_eq!(status(out), 77, "{}", stderr(out));
    assert!(
        stderr(out).contains(&format!("writ: denied: {code}: ")),
        "expected {code}: {}",
        stderr(out)
    );
}

#[test]
fn gate_init_writes_a_private_config_once() {
    let s = setup();
    let config = std::fs::read_to_string(s.gate_file("gate.toml")).unwrap();
    assert!(config.contains("executor = \"gate-1\""), "{config}");
    assert!(
        config.contains(&format!("issuer = \"{}\"", s.server.url)),
        "{config}"
    );
    for name in ["gate.toml", "gate.key.pem", "gate.token"] {
        let mode = std::fs::metadata(s.gate_file(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    // The pinned keys are the authority's.
    let served = crate::support::server::get(&format!("{}/.well-known/jwks.json", s.server.url));
    let pinned = std::fs::read_to_string(s.gate_file("gate.jwks.json")).unwrap();
    let kids = |text: &str| {
        writ_core::KeySet::from_jwks_json(text)
            .unwrap()
            .iter()
            .map(|k| k.kid().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids(&served), kids(&pinned));

    // No second init over it without --force; --force with a taken name is refused too.
    let again = |force: bool, name: &str| {
        let mut cmd = writ_cmd();
        cmd.args(["gate", "init", "--name", name, "--url", &s.server.url])
            .env("WRIT_TOKEN", s.server.admin_token())
            .env("XDG_CONFIG_HOME", s.cfg.path());
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let out = again(false, "gate-2");
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = again(true, "gate-1");
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already has a principal"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(s.gate_file("gate.toml")).unwrap(),
        config
    );
    // An agent's token cannot register a gate.
    let out = writ_cmd()
        .args([
            "gate",
            "init",
            "--name",
            "gate-3",
            "--url",
            &s.server.url,
            "--force",
        ])
        .env("WRIT_TOKEN", &s.agent)
        .env("XDG_CONFIG_HOME", s.cfg.path())
        .output()
        .unwrap();
    assert_eq!(status(&out), 77, "{}", stderr(&out));
}

#[test]
fn an_allowed_command_runs_with_its_output_status_and_receipt() {
    let s = setup();
    s.script(
        "bin/hello.sh",
        "echo \"hello $1, FOO=${FOO-unset} HOME=$HOME\"; echo oops >&2; exit 3",
    );
    let out = s.exec_in(&s.work, &["--", "bin/hello.sh", "world"], &[("FOO", "bar")]);
    assert_eq!(status(&out), 3, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("hello world, FOO=unset HOME={HOME}\n")
    );
    assert_eq!(stderr(&out), "oops\n");

    let log = s.log();
    let consumed = log
        .iter()
        .find(|e| e["type"] == "consumption" && e["decision"] == "permit")
        .expect("a consumption");
    let jti = consumed["jti"].as_str().unwrap();
    let receipt = log
        .iter()
        .find(|e| e["type"] == "receipt" && e["jti"] == jti)
        .unwrap_or_else(|| panic!("a receipt for {jti}: {log:?}"));
    assert_eq!(receipt["exit_status"], 3);
    assert_eq!(receipt["executor"], "gate-1");
    let permit = log
        .iter()
        .find(|e| e["decision"] == "permit" && e["jti"] == jti && e["type"] != "consumption")
        .unwrap();
    assert_eq!(permit["policy_ids"], json!(["allow-test-bin"]));

    // Killed by a signal: 128 + its number, as a shell reports it.
    s.script("bin/killed.sh", "kill -TERM $$");
    let out = s.exec(&["--", "bin/killed.sh"]);
    assert_eq!(status(&out), 128 + 15, "{}", stderr(&out));
    let receipt = s
        .log()
        .into_iter()
        .rev()
        .find(|e| e["type"] == "receipt")
        .unwrap();
    assert_eq!(receipt["signal"], 15, "{receipt}");

    // A binary found through the gate's PATH, resolved to its canonical path (a policy
    // names /usr/bin/cat).
    let file = s.work.join("note.txt");
    std::fs::write(&file, "from a file\n").unwrap();
    let out = s.exec(&["--", "cat", "note.txt"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "from a file\n");
}

#[test]
fn a_denied_command_never_starts() {
    let s = setup();
    let marker = s.work.join("created");
    s.script("other/make.sh", &format!("touch {}", marker.display()));
    let out = s.exec(&["--", "other/make.sh"]);
    assert_denied(&out, "missing_authorization");
    assert!(!marker.exists());

    // The example policy forbids rm, and says which policy forbade it.
    let keep = s.work.join("keep");
    std::fs::write(&keep, "x").unwrap();
    let out = s.exec(&["--", "rm", "-f", "keep"]);
    assert_denied(&out, "missing_authorization");
    assert!(stderr(&out).contains("forbid-rm"), "{}", stderr(&out));
    assert!(keep.exists());
    assert!(out.stdout.is_empty());
}

#[test]
fn a_writ_for_anything_else_is_denied() {
    let s = setup();
    let marker = s.work.join("ran");
    let script = s.script(
        "bin/mark.sh",
        &format!("echo \"$@\" >> {}", marker.display()),
    );
    let other = s.script(
        "bin/other.sh",
        &format!("echo \"$@\" >> {}", marker.display()),
    );
    let sub = s.work.join("other");
    let cmd = script.to_str().unwrap();
    let args = s.args(&[cmd, "a"], &s.work, HOME);
    let key = s.gate_file("gate.key.pem");
    let key = ["--executor-key", key.to_str().unwrap()];
    let writ = s.request(&script, &args, &key);
    let w = writ.to_str().unwrap();

    // Other argv, cwd, environment, executable: scope_mismatch; nothing runs and the writ
    // is not burnt.
    let out = s.exec(&["--writ", w, "--", cmd, "b"]);
    assert_denied(&out, "scope_mismatch");
    let out = s.exec_in(&sub, &["--writ", w, "--", cmd, "a"], &[]);
    assert_denied(&out, "scope_mismatch");
    let out = s.exec_in(
        &s.work,
        &["--writ", w, "--", cmd, "a"],
        &[("HOME", "/root")],
    );
    assert_denied(&out, "scope_mismatch");
    let for_other = s.request(&other, &args, &key);
    let out = s.exec(&["--writ", for_other.to_str().unwrap(), "--", cmd, "a"]);
    assert_denied(&out, "scope_mismatch");
    assert!(!marker.exists());

    // The right command runs, once.
    let out = s.exec(&["--writ", w, "--", cmd, "a"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "a\n");
    let out = s.exec(&["--writ", w, "--", cmd, "a"]);
    assert_denied(&out, "replay_detected");

    // A writ bound to another executor key, or to none: runtime_identity_mismatch.
    let stranger = s.work.join("stranger.pem");
    std::fs::write(
        &stranger,
        SigningKey::from_seed(&[9; 32])
            .to_pkcs8_pem()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let writ = s.request(
        &script,
        &args,
        &["--executor-key", stranger.to_str().unwrap()],
    );
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", cmd, "a"]);
    assert_denied(&out, "runtime_identity_mismatch");
    let writ = s.request(&script, &args, &[]);
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", cmd, "a"]);
    assert_denied(&out, "runtime_identity_mismatch");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "a\n");
}

#[test]
fn with_an_env_spec_a_swapped_executable_is_caught() {
    let s = setup_with(true);
    let marker = s.work.join("ran");
    let body = format!("echo \"$@\" >> {}", marker.display());
    let script = s.script("bin/mark.sh", &body);

    // Requested by the gate itself: the measurement carries the executable.
    let out = s.exec(&["--", "bin/mark.sh", "online"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "online\n");

    // A writ bound to this file's content...
    let measurement = |content: &[u8]| json!({"executable": {"path": script, "sha256": Sha256Digest::of(content).to_hex()}});
    let env_file = s.work.join("measurement.json");
    std::fs::write(
        &env_file,
        measurement(format!("#!/bin/sh\n{body}\n").as_bytes()).to_string(),
    )
    .unwrap();
    let args = s.args(&["bin/mark.sh", "x"], &s.work, HOME);
    let key = s.gate_file("gate.key.pem");
    let key = key.to_str().unwrap();
    let bound = [
        "--executor-key",
        key,
        "--environment",
        env_file.to_str().unwrap(),
    ];
    let writ = s.request(&script, &args, &bound);
    // ...does not run another file swapped in at the same path.
    s.script(
        "bin/mark.sh",
        &format!("{body}; echo swapped >> {}", marker.display()),
    );
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", "bin/mark.sh", "x"]);
    assert_denied(&out, "environment_integrity_failure");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "online\n");

    // Put back, the same writ runs.
    s.script("bin/mark.sh", &body);
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", "bin/mark.sh", "x"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "online\nx\n");

    // A writ bound to no environment is refused by a gate that measures.
    let writ = s.request(&script, &args, &["--executor-key", key]);
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", "bin/mark.sh", "x"]);
    assert_denied(&out, "environment_integrity_failure");
}

#[test]
fn with_the_authority_stopped_nothing_runs() {
    let mut s = setup();
    let marker = s.work.join("ran");
    let script = s.script(
        "bin/mark.sh",
        &format!("echo \"$@\" >> {}", marker.display()),
    );
    let args = s.args(&["bin/mark.sh", "a"], &s.work, HOME);
    let key = s.gate_file("gate.key.pem");
    let writ = s.request(&script, &args, &["--executor-key", key.to_str().unwrap()]);

    s.server.child.kill().unwrap();
    s.server.child.wait().unwrap();
    let out = s.exec(&["--", "bin/mark.sh", "a"]);
    assert_eq!(status(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writ: denied: status_unavailable: "),
        "{}",
        stderr(&out)
    );
    // A valid writ in hand does not help: it cannot be consumed.
    let out = s.exec(&["--writ", writ.to_str().unwrap(), "--", "bin/mark.sh", "a"]);
    assert_eq!(status(&out), 69, "{}", stderr(&out));
    assert!(!marker.exists());
}
