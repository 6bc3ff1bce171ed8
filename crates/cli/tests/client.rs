//! The `writ` command as a client of a running authority, over real HTTP on loopback:
//! `writ request`, `writ revoke`, `writ policy apply|show`, `writ keys rotate|list`, and
//! `writ log … --url`.

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{json, Value};

use crate::support::server::*;
use crate::support::*;

/// Runs `writ ARGS` with `env` set, every other WRIT_* variable and any user client config
/// out of the way.
fn writ_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let config_home = tempfile::tempdir().unwrap();
    let mut cmd = writ_cmd();
    for var in [
        "WRIT_URL",
        "WRIT_TOKEN",
        "WRIT_TOKEN_FILE",
        "WRIT_CA_CERT",
        "WRIT_CLIENT_CONFIG",
        "WRIT_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", config_home.path())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const GIT_STATUS: &str = r#"{"argv":["git","status"],"cwd":"/work","env":{}}"#;

/// A server with `build-agent`, executor `gate-1` (and its token) and the admin token.
struct Setup {
    server: Server,
    agent: String,
    gate: String,
    admin: String,
}

impl Setup {
    fn new() -> Self {
        let server = start();
        let d = server.d();
        let agent = register(&d, "build-agent", "agent");
        let gate = register(&d, "gate-1", "executor");
        let admin = server.admin_token();
        Setup {
            server,
            agent,
            gate,
            admin,
        }
    }

    fn url(&self) -> &str {
        &self.server.url
    }

    /// `writ ARGS` as `token`, the server named by WRIT_URL / WRIT_TOKEN.
    fn as_(&self, token: &str, args: &[&str]) -> Output {
        writ_env(args, &[("WRIT_URL", self.url()), ("WRIT_TOKEN", token)])
    }

    /// `writ request` as the agent for `resource` with `args`, plus `extra`.
    fn request(&self, resource: &str, args: &str, extra: &[&str]) -> Output {
        let mut argv = vec![
            "request",
            "--action",
            "exec",
            "--resource",
            resource,
            "--args",
            args,
            "--audience",
            "gate-1",
        ];
        argv.extend_from_slice(extra);
        self.as_(&self.agent, &argv)
    }

    /// A writ for `git status`, from `writ request --json`: the whole answer.
    fn permit(&self, extra: &[&str]) -> Value {
        let mut argv = vec!["--json"];
        argv.extend_from_slice(extra);
        let out = self.request("/usr/bin/git", GIT_STATUS, &argv);
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        let answer = stdout_json(&out);
        assert_eq!(answer["decision"], "permit", "{answer}");
        answer
    }

    /// Consumes `writ` for `git status` as the executor: `(http status, answer)`.
    fn consume(&self, writ: &str, nonce: &str) -> (u16, Value) {
        let body = json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git",
                          "args": serde_json::from_str::<Value>(GIT_STATUS).unwrap(),
                          "nonce": nonce});
        post(
            &format!("{}/v1/consume", self.url()),
            Some(&self.gate),
            &body,
        )
    }

    /// Checks, with `writ log prove --url` and `writ log check-proof`, that the entry at
    /// `index` is in the log under a checkpoint that the data dir's own key signed.
    fn assert_logged(&self, index: u64) {
        let vkey = self.server.path("trusted.vkey");
        if !vkey.exists() {
            let out = writ_env(&["log", "vkey", "--data-dir", &self.server.d()], &[]);
            assert_eq!(status(&out), 0, "{}", stderr(&out));
            std::fs::write(&vkey, &out.stdout).unwrap();
        }
        let checkpoint = self.server.path(&format!("checkpoint-{index}"));
        let out = writ_env(&["log", "--url", self.url(), "checkpoint"], &[]);
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        std::fs::write(&checkpoint, &out.stdout).unwrap();
        let proof = self.server.path(&format!("proof-{index}.json"));
        let out = writ_env(
            &[
                "log",
                "prove",
                "--url",
                self.url(),
                "--index",
                &index.to_string(),
            ],
            &[],
        );
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        std::fs::write(&proof, &out.stdout).unwrap();
        // The proof may be of a later tree than the checkpoint fetched before it: prove
        // against the checkpoint's size.
        let size = checkpoint_size(&checkpoint);
        let out = writ_env(
            &[
                "log",
                "prove",
                "--url",
                self.url(),
                "--index",
                &index.to_string(),
                "--size",
                &size.to_string(),
            ],
            &[],
        );
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        std::fs::write(&proof, &out.stdout).unwrap();
        let out = writ_env(
            &[
                "log",
                "check-proof",
                proof.to_str().unwrap(),
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--vkey",
                vkey.to_str().unwrap(),
                "--json",
            ],
            &[],
        );
        assert_eq!(status(&out), 0, "entry {index}: {}", stderr(&out));
        assert_eq!(stdout_json(&out)["valid"], true);
    }
}

fn checkpoint_size(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().nth(1).unwrap().parse().unwrap()
}

fn claims_of(writ: &str) -> writ_core::Claims {
    writ_core::parse_unverified(writ.trim())
        .expect("a writ")
        .claims()
        .clone()
}

#[test]
fn a_permit_is_printed_bound_to_the_caller_and_logged() {
    let s = Setup::new();
    // Text: the writ alone on stdout, the jti and log index on stderr.
    let out = s.request(
        "/usr/bin/git",
        GIT_STATUS,
        &["--purpose", "check the tree", "--ticket", "DEV-1"],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let writ = stdout(&out).trim().to_string();
    let claims = claims_of(&writ);
    assert_eq!(claims.sub, "build-agent");
    assert_eq!(claims.aud, "gate-1");
    assert_eq!(claims.scope.action, "exec");
    assert_eq!(claims.scope.resource, "/usr/bin/git");
    let gov = claims.gov.as_ref().expect("purpose and ticket kept");
    assert_eq!(gov.purpose.as_deref(), Some("check the tree"));
    assert!(
        stderr(&out).contains(&claims.jti.to_string()),
        "{}",
        stderr(&out)
    );

    // --json: the whole answer; --out: the writ in a 0600 file; --args @FILE.
    let args_file = s.server.path("args.json");
    std::fs::write(&args_file, GIT_STATUS).unwrap();
    let out_file = s.server.path("writ.jws");
    let at_args = format!("@{}", args_file.display());
    let answer = s.permit(&["--out", out_file.to_str().unwrap()]);
    let saved = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(saved.trim(), answer["writ"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = s.request("/usr/bin/git", &at_args, &[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));

    // The token file works as well as the token; flags beat the environment.
    let token_file = s.server.path("agent.token");
    std::fs::write(&token_file, format!("{}\n", s.agent)).unwrap();
    let out = writ_env(
        &[
            "request",
            "--action",
            "exec",
            "--resource",
            "/usr/bin/git",
            "--args",
            GIT_STATUS,
            "--audience",
            "gate-1",
            "--url",
            s.url(),
        ],
        &[
            ("WRIT_URL", "http://127.0.0.1:1"),
            ("WRIT_TOKEN_FILE", token_file.to_str().unwrap()),
        ],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));

    // Every writ returned has its decision in the log, with a proof that checks.
    s.assert_logged(answer["log_index"].as_u64().unwrap());
    let index = answer["log_index"].as_u64().unwrap().to_string();
    let out = writ_env(
        &["log", "get", "--url", s.url(), "--index", &index, "--json"],
        &[],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let entry = &stdout_json(&out)["entry"];
    assert_eq!(entry["type"], "decision");
    assert_eq!(entry["principal"], "build-agent");
    assert_eq!(
        entry["writ_sha256"],
        writ_core::Sha256Digest::of(answer["writ"].as_str().unwrap().as_bytes()).to_hex()
    );
}

#[test]
fn denials_exit_77_with_their_reasons() {
    let s = Setup::new();
    // A forbid wins over the permit for git.
    let push = r#"{"argv":["git","push","origin","main"],"cwd":"/work","env":{}}"#;
    let out = s.request("/usr/bin/git", push, &[]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("forbid-git-push"), "{}", stderr(&out));
    let out = s.request(
        "/usr/bin/rm",
        r#"{"argv":["rm","-rf","./build"],"cwd":"/work","env":{}}"#,
        &["--json"],
    );
    assert_eq!(status(&out), 77);
    let answer = stdout_json(&out);
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["reasons"][0]["code"], "forbid");
    assert_eq!(answer["reasons"][0]["policy"], "forbid-rm");
    assert!(stderr(&out).contains("deleting files is not for agents"));
    s.assert_logged(answer["log_index"].as_u64().unwrap());

    // No permit matches.
    let out = s.request(
        "/usr/bin/python3",
        r#"{"argv":["python3","x.py"],"cwd":"/work","env":{}}"#,
        &["--json"],
    );
    assert_eq!(status(&out), 77);
    assert_eq!(stdout_json(&out)["reasons"][0]["code"], "no_permit");
    assert!(stderr(&out).contains("no_permit"), "{}", stderr(&out));

    // An action the schema does not know.
    let out = s.as_(
        &s.agent,
        &[
            "request",
            "--action",
            "teleport",
            "--resource",
            "/usr/bin/git",
            "--args",
            "{}",
            "--audience",
            "gate-1",
            "--json",
        ],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["reasons"][0]["code"], "unknown_action");

    // An audience that is no registered executor: an agent is not one, nor is a stranger.
    for audience in ["build-agent", "nobody"] {
        let out = s.as_(
            &s.agent,
            &[
                "request",
                "--action",
                "exec",
                "--resource",
                "/usr/bin/git",
                "--args",
                GIT_STATUS,
                "--audience",
                audience,
                "--json",
            ],
        );
        assert_eq!(status(&out), 77, "{}", stderr(&out));
        let answer = stdout_json(&out);
        assert_eq!(answer["decision"], "deny");
        assert!(
            answer["reasons"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("not a registered executor"),
            "{answer}"
        );
    }
}

#[test]
fn who_asks_is_the_token_never_the_body() {
    let s = Setup::new();
    // No token: a usage error saying how to give one; nothing is sent.
    let out = writ_env(
        &[
            "request",
            "--action",
            "exec",
            "--resource",
            "/usr/bin/git",
            "--args",
            GIT_STATUS,
            "--audience",
            "gate-1",
        ],
        &[("WRIT_URL", s.url())],
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("WRIT_TOKEN"), "{}", stderr(&out));
    // No URL: the same.
    let out = writ_env(
        &[
            "request",
            "--action",
            "exec",
            "--resource",
            "/usr/bin/git",
            "--args",
            GIT_STATUS,
            "--audience",
            "gate-1",
        ],
        &[("WRIT_TOKEN", &s.agent)],
    );
    assert_eq!(status(&out), 64);
    assert!(stderr(&out).contains("WRIT_URL"), "{}", stderr(&out));
    // A token the authority does not know: refused, exit 77, and it says so.
    let out = s.as_(
        "writ_not-a-real-token",
        &[
            "request",
            "--action",
            "exec",
            "--resource",
            "/usr/bin/git",
            "--args",
            GIT_STATUS,
            "--audience",
            "gate-1",
            "--json",
        ],
    );
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["code"], "unauthenticated");
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));
    // An agent may not revoke.
    let out = s.as_(&s.agent, &["revoke", "--principal", "gate-1"]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));

    // A body naming another principal is refused outright (only a raw client can send it).
    let body = json!({"action": "exec", "resource": "/usr/bin/git",
                      "args": serde_json::from_str::<Value>(GIT_STATUS).unwrap(),
                      "audience": "gate-1", "principal": "admin"});
    let (code, answer) = post(&format!("{}/v1/authorize", s.url()), Some(&s.agent), &body);
    assert_eq!(code, 400, "{answer}");
    // Without it, the writ's subject is the caller, whoever the context claims to be.
    let out = s.request(
        "/usr/bin/git",
        GIT_STATUS,
        &["--context", r#"{"principal":"admin","sub":"admin"}"#],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(claims_of(&stdout(&out)).sub, "build-agent");

    // Nothing listens: exit 69.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = writ_env(
        &[
            "request",
            "--action",
            "exec",
            "--resource",
            "/usr/bin/git",
            "--args",
            GIT_STATUS,
            "--audience",
            "gate-1",
        ],
        &[
            ("WRIT_URL", &format!("http://127.0.0.1:{port}")),
            ("WRIT_TOKEN", &s.agent),
        ],
    );
    assert_eq!(status(&out), 69, "{}", stderr(&out));
    // A token is never sent in clear off loopback.
    let out = writ_env(
        &["revoke", "--writ", "x"],
        &[("WRIT_URL", "http://writ.example.com"), ("WRIT_TOKEN", "t")],
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
}

#[test]
fn the_client_config_file_names_the_server() {
    let s = Setup::new();
    let dir = s.server.path("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("agent.token"), &s.agent).unwrap();
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!("url = \"{}\"\ntoken_file = \"agent.token\"\n", s.url()),
    )
    .unwrap();
    let argv = [
        "request",
        "--action",
        "exec",
        "--resource",
        "/usr/bin/git",
        "--args",
        GIT_STATUS,
        "--audience",
        "gate-1",
    ];
    let out = writ_env(&argv, &[("WRIT_CLIENT_CONFIG", config.to_str().unwrap())]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    // The default place: $XDG_CONFIG_HOME/writ/client.toml.
    let xdg = s.server.path("xdg");
    std::fs::create_dir_all(xdg.join("writ")).unwrap();
    std::fs::write(
        xdg.join("writ/client.toml"),
        format!(
            "url = \"{}\"\ntoken_file = \"{}\"\n",
            s.url(),
            dir.join("agent.token").display()
        ),
    )
    .unwrap();
    let out = writ_env(&argv, &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    // Unknown keys are refused.
    std::fs::write(&config, "url = \"http://127.0.0.1:1\"\ntokn = \"x\"\n").unwrap();
    let out = writ_env(&argv, &[("WRIT_CLIENT_CONFIG", config.to_str().unwrap())]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("tokn"), "{}", stderr(&out));
    // A named config file must exist.
    let missing = dir.join("missing.toml");
    let out = writ_env(&argv, &[("WRIT_CLIENT_CONFIG", missing.to_str().unwrap())]);
    assert_eq!(status(&out), 64);
}

#[test]
fn revoked_replayed_and_unbound_writs_are_denied_at_consumption() {
    let s = Setup::new();
    // Consumed once: permit; twice: replay.
    let answer = s.permit(&[]);
    let writ = answer["writ"].as_str().unwrap();
    let (code, first) = s.consume(writ, "n-1");
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["decision"], "permit", "{first}");
    let (_, second) = s.consume(writ, "n-2");
    assert_eq!(second["code"], "replay_detected", "{second}");

    // Revoked before use: revoked_authorization.
    let answer = s.permit(&[]);
    let jti = answer["jti"].as_str().unwrap();
    let out = s.as_(
        &s.admin,
        &[
            "revoke",
            "--writ",
            jti,
            "--reason",
            "went off script",
            "--json",
        ],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let revocation = stdout_json(&out)["log_index"].as_u64().unwrap();
    let (_, denied) = s.consume(answer["writ"].as_str().unwrap(), "n-3");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["code"], "revoked_authorization", "{denied}");
    s.assert_logged(revocation);
    let out = writ_env(
        &[
            "log",
            "get",
            "--url",
            s.url(),
            "--index",
            &revocation.to_string(),
            "--json",
        ],
        &[],
    );
    let entry = &stdout_json(&out)["entry"];
    assert_eq!(entry["type"], "revocation");
    assert_eq!(entry["reason"], "went off script");

    // Revoking a principal: text output names it.
    let answer = s.permit(&[]);
    let out = s.as_(&s.admin, &["revoke", "--principal", "build-agent"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("build-agent"));
    let (_, denied) = s.consume(answer["writ"].as_str().unwrap(), "n-4");
    assert_eq!(denied["code"], "revoked_authorization", "{denied}");
    // Exactly one target.
    let out = s.as_(&s.admin, &["revoke", "--writ", "a", "--principal", "b"]);
    assert_eq!(status(&out), 64);
    let out = s.as_(&s.admin, &["revoke"]);
    assert_eq!(status(&out), 64);
}

#[test]
fn a_writ_bound_to_the_executor_key_needs_proof_of_possession() {
    let s = Setup::new();
    let keys = s.server.path("gate-key");
    let out = writ_env(
        &[
            "keys",
            "generate",
            "--out",
            keys.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let kid = stdout_json(&out)["kid"].as_str().unwrap().to_string();
    // From the PEM private key (its public half is sent) or from the public JWK.
    for key in ["signing-key.pem", "public.jwk"] {
        let path = keys.join(key);
        let answer = s.permit(&["--executor-key", path.to_str().unwrap()]);
        let writ = answer["writ"].as_str().unwrap();
        let claims = claims_of(writ);
        assert_eq!(claims.cnf.as_ref().unwrap().jkt.as_str(), kid);
        let (_, denied) = s.consume(writ, "n-pop");
        assert_eq!(denied["code"], "runtime_identity_mismatch", "{denied}");
    }
    // An environment measurement, as `writ env measure` prints it, is bound by digest.
    let spec = s.server.path("env.toml");
    std::fs::write(&spec, "env = [\"WRIT_TEST_STAGE\"]\n").unwrap();
    let out = writ_env(
        &["env", "measure", "--spec", spec.to_str().unwrap()],
        &[("WRIT_TEST_STAGE", "ci")],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let measured = stdout_json(&out);
    let measurement = s.server.path("env.json");
    std::fs::write(&measurement, &out.stdout).unwrap();
    let answer = s.permit(&["--environment", measurement.to_str().unwrap()]);
    let claims = claims_of(answer["writ"].as_str().unwrap());
    assert_eq!(
        claims.env.unwrap().to_hex(),
        measured["digest"].as_str().unwrap()
    );
    // A measurement whose digest does not match its body is refused before sending.
    let mut tampered = measured.clone();
    tampered["measurement"]["env"]["WRIT_TEST_STAGE"] = json!("prod");
    std::fs::write(&measurement, tampered.to_string()).unwrap();
    let out = s.request(
        "/usr/bin/git",
        GIT_STATUS,
        &["--environment", measurement.to_str().unwrap()],
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
}

#[test]
fn an_applied_policy_set_decides_and_a_revoked_digest_denies_its_writs() {
    let s = Setup::new();
    let old = s.permit(&[]);
    let old_digest = claims_of(old["writ"].as_str().unwrap()).pol.digest.to_hex();

    // A changed set: echo is allowed too.
    let dir = s.server.path("policy-v2");
    std::fs::create_dir(&dir).unwrap();
    for name in ["writ.cedarschema", "policies.cedar", "entities.json"] {
        let from = s.server.data().join("policy").join(name);
        if from.exists() {
            std::fs::copy(&from, dir.join(name)).unwrap();
        }
    }
    let mut policies = std::fs::read_to_string(dir.join("policies.cedar")).unwrap();
    policies.push_str(
        "\n@id(\"allow-echo\")\npermit (principal, action == Writ::Action::\"exec\", resource)\n\
         when { principal.role == \"agent\" && resource.path == \"/usr/bin/echo\" };\n",
    );
    std::fs::write(dir.join("policies.cedar"), &policies).unwrap();

    // A set that does not validate is refused here, never sent (the URL goes nowhere).
    let broken = s.server.path("policy-broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(
        dir.join("writ.cedarschema"),
        broken.join("writ.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        broken.join("policies.cedar"),
        "@id(\"x\")\npermit (principal, action == Writ::Action::\"no-such-action\", resource);\n",
    )
    .unwrap();
    let out = writ_env(
        &["policy", "apply", broken.to_str().unwrap()],
        &[("WRIT_URL", "http://127.0.0.1:1"), ("WRIT_TOKEN", &s.admin)],
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));

    // An agent may not apply.
    let out = s.as_(&s.agent, &["policy", "apply", dir.to_str().unwrap()]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));

    let out = s.as_(
        &s.admin,
        &["policy", "apply", dir.to_str().unwrap(), "--json"],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let applied = stdout_json(&out);
    let new_digest = applied["digest"].as_str().unwrap().to_string();
    assert_ne!(new_digest, old_digest);
    assert!(applied["policy_ids"]
        .as_array()
        .unwrap()
        .contains(&json!("allow-echo")));
    s.assert_logged(applied["log_index"].as_u64().unwrap());
    // The new set decides at once.
    let echo = s.request(
        "/usr/bin/echo",
        r#"{"argv":["echo","hi"],"cwd":"/work","env":{}}"#,
        &[],
    );
    assert_eq!(status(&echo), 0, "{}", stderr(&echo));
    assert_eq!(claims_of(&stdout(&echo)).pol.digest.to_hex(), new_digest);

    // Retiring the old digest denies the writ issued under it.
    let out = s.as_(
        &s.admin,
        &["revoke", "--policy", &old_digest, "--reason", "replaced"],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let (_, denied) = s.consume(old["writ"].as_str().unwrap(), "n-pol");
    assert_eq!(denied["code"], "policy_mismatch", "{denied}");

    // `writ policy show` names the set in force and the retired one, and writes its files.
    let shown = s.server.path("shown");
    let out = s.as_(
        &s.admin,
        &["policy", "show", "--json", "--out", shown.to_str().unwrap()],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let set = stdout_json(&out);
    assert_eq!(set["digest"], new_digest.as_str());
    assert!(set["retired"]
        .as_array()
        .unwrap()
        .contains(&json!(old_digest)));
    assert_eq!(
        std::fs::read_to_string(shown.join("policies.cedar")).unwrap(),
        policies
    );
}

#[test]
fn a_rotated_key_is_announced_in_the_jwks() {
    let s = Setup::new();
    let out = s.as_(&s.admin, &["keys", "rotate", "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let rotated = stdout_json(&out);
    let kid = rotated["kid"].as_str().unwrap().to_string();
    let jwks = get(&format!("{}/.well-known/jwks.json", s.url()));
    let keys = writ_core::KeySet::from_jwks_json(&jwks).unwrap();
    assert!(keys.get(&kid).is_some(), "{jwks}");
    s.assert_logged(rotated["log_index"].as_u64().unwrap());
    let out = s.as_(&s.admin, &["keys", "list", "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let list = stdout_json(&out);
    let states: Vec<(&str, &str)> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(kid.as_str(), "announced")) || states.contains(&(kid.as_str(), "active")),
        "{list}"
    );
    let out = s.as_(&s.admin, &["keys", "list"]);
    assert!(stdout(&out).contains(&kid));
    // Not for agents.
    let out = s.as_(&s.agent, &["keys", "rotate"]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));

    // Revoking the key that signed a writ kills the writ.
    let answer = s.permit(&[]);
    let writ = answer["writ"].as_str().unwrap();
    let signer = keys
        .iter()
        .map(|k| k.kid().as_str().to_string())
        .find(|k| *k != kid)
        .expect("the first key");
    assert!(writ_core::KeySet::from_jwks_json(&jwks)
        .unwrap()
        .get(&signer)
        .is_some());
    let out = s.as_(&s.admin, &["revoke", "--key", &signer, "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    s.assert_logged(stdout_json(&out)["log_index"].as_u64().unwrap());
    let (_, denied) = s.consume(writ, "n-key");
    assert_eq!(denied["decision"], "deny", "{denied}");
    assert_eq!(denied["code"], "unknown_key", "{denied}");
}

#[test]
fn an_auditor_verifies_the_served_log_with_her_own_key() {
    let s = Setup::new();
    let trusted = s.server.path("trusted.vkey");
    let out = writ_env(&["log", "vkey", "--data-dir", &s.server.d()], &[]);
    std::fs::write(&trusted, &out.stdout).unwrap();
    // The served key is the data dir's.
    let out = writ_env(&["log", "vkey", "--url", s.url()], &[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), std::fs::read_to_string(&trusted).unwrap());
    // A checkpoint kept now...
    let kept = s.server.path("kept.checkpoint");
    let out = writ_env(&["log", "checkpoint"], &[("WRIT_URL", s.url())]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    std::fs::write(&kept, &out.stdout).unwrap();
    // ...then the log grows.
    for _ in 0..3 {
        s.permit(&[]);
    }
    let url = s.url();
    let verify = |extra: &[&str]| {
        let mut argv = vec!["log", "verify", "--url", url, "--json"];
        argv.extend_from_slice(extra);
        writ_env(&argv, &[])
    };
    let t = trusted.to_str().unwrap();
    let k = kept.to_str().unwrap();
    let out = verify(&["--vkey", t]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let out = verify(&["--vkey", t, "--checkpoint", k, "--entries"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["valid"], true);
    assert_eq!(report["consistent_with"], checkpoint_size(&kept));
    assert_eq!(report["entries_checked"], true);
    // A served log proves nothing with the key it serves: --vkey is required.
    let out = verify(&[]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("--vkey"));
    // Another log's key: the served checkpoint does not verify.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().to_str().unwrap();
    let init = writ_env(&["log", "init", "--data-dir", o, "--json"], &[]);
    let other_vkey = stdout_json(&init)["vkey"].as_str().unwrap().to_string();
    let out = verify(&["--vkey", &other_vkey]);
    assert_eq!(status(&out), 77);
    assert_eq!(stdout_json(&out)["code"], "checkpoint_invalid");
    // A kept checkpoint of a log that was rewritten: same size, another root. Forge one by
    // signing with the data dir's own key a checkpoint of the current size and a wrong root.
    let signer_text = std::fs::read_to_string(s.server.data().join("log-checkpoint.key")).unwrap();
    let signer = writ_log::NoteSigner::from_private_key_text(signer_text.trim()).unwrap();
    let forged = writ_log::Checkpoint::new(
        signer.name(),
        checkpoint_size(&kept),
        writ_log::Hash([7; 32]),
    )
    .sign(&signer)
    .unwrap();
    let forged_path = s.server.path("forged.checkpoint");
    std::fs::write(&forged_path, forged).unwrap();
    let out = verify(&["--vkey", t, "--checkpoint", forged_path.to_str().unwrap()]);
    assert_eq!(status(&out), 77, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["code"], "log_inconsistent");
    // A consistency proof served with --url checks offline.
    let proof = s.server.path("consistency.json");
    let out = writ_env(
        &[
            "log",
            "prove",
            "--url",
            url,
            "--from",
            &checkpoint_size(&kept).to_string(),
        ],
        &[],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    std::fs::write(&proof, &out.stdout).unwrap();
    let out = writ_env(
        &[
            "log",
            "check-proof",
            proof.to_str().unwrap(),
            "--checkpoint",
            k,
            "--vkey",
            t,
        ],
        &[("WRIT_URL", url)],
    );
    assert_eq!(status(&out), 0, "{}", stderr(&out));

    // tail and get read the same entries as the data dir holds.
    let remote = writ_env(&["log", "tail", "-n", "3", "--url", url], &[]);
    assert_eq!(status(&remote), 0, "{}", stderr(&remote));
    let lines: Vec<String> = stdout(&remote).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3);
    let index = lines[0].split('\t').next().unwrap().to_string();
    let local = writ_env(
        &["log", "get", "--index", &index, "--data-dir", &s.server.d()],
        &[],
    );
    assert_eq!(stdout(&local).trim(), lines[0]);
    let out = writ_env(&["log", "get", "--index", "999999", "--url", url], &[]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    // Writing through --url is not a thing.
    let out = writ_env(&["log", "append", "-", "--url", url], &[]);
    assert_eq!(status(&out), 64);
}
