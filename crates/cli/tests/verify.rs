//! `writ verify`: every case the issue names, through the binary.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use writ_core::{Claims, Confirmation, Delegation, Jti, Lineage, Sha256Digest, SigningKey};

use crate::support::*;

fn hand_jws(header: &str, payload: &str, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}"}}"#,
        key.kid()
    )
}

#[test]
fn valid_writ_permits_and_prints_claims() {
    let authority = Authority::new();
    let claims = claims();
    let token = authority.sign(&claims);
    let json = assert_permitted(&verify(&authority, &token, &[]));
    assert_eq!(json["claims"]["jti"], claims.jti.to_string());
    assert_eq!(
        json["claims"]["scope"]["args_sha256"],
        claims.scope.args_sha256.to_hex()
    );
    assert_eq!(json["consumed"], false);
    // Offline verification never consumes: the same writ verifies again.
    assert_permitted(&verify(&authority, &token, &[]));
    // Without --json: a one-line summary on stdout, exit 0.
    let argv = Call::default().argv(&authority, "-");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv, Some(&format!("{token}\n")));
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("permit:"));
}

#[test]
fn one_flipped_bit_anywhere_denies() {
    let authority = Authority::new();
    let token = authority.sign(&claims());
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x20] {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= bit;
            let Ok(text) = String::from_utf8(flipped) else {
                continue;
            };
            // Whitespace at the ends is trimmed from the argument, as from standard input.
            if text.trim() != text || text.starts_with('-') {
                continue;
            }
            let out = verify(&authority, &text, &[]);
            assert_eq!(
                status(&out),
                77,
                "bit {bit:#x} of byte {i} still permits: {text}"
            );
            assert_eq!(stdout_json(&out)["decision"], "deny");
        }
    }
}

#[test]
fn algorithm_attacks_are_unsupported_algorithm() {
    let authority = Authority::new();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims()).unwrap());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"writ+jwt"}"#)
    );
    assert_denied(&verify(&authority, &none, &[]), "unsupported_algorithm");

    // HS256 whose HMAC key is the authority's public key, as a confused verifier would use.
    use sha2_hmac::hs256;
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"HS256","typ":"writ+jwt","kid":"{}"}}"#,
        authority.key.kid()
    ));
    let input = format!("{header}.{payload}");
    let mac = hs256(authority.key.verifying_key().as_bytes(), input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
    assert_denied(&verify(&authority, &hs, &[]), "unsupported_algorithm");
}

/// HMAC-SHA-256 (RFC 2104) from the test's own SHA-256, only to forge the attacker's token.
mod sha2_hmac {
    pub fn hs256(key: &[u8], message: &[u8]) -> [u8; 32] {
        use writ_core::Sha256Digest;
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let inner: Vec<u8> = k
            .iter()
            .map(|b| b ^ 0x36)
            .chain(message.iter().copied())
            .collect();
        let inner = Sha256Digest::of(&inner);
        let outer: Vec<u8> = k
            .iter()
            .map(|b| b ^ 0x5c)
            .chain(inner.as_bytes().iter().copied())
            .collect();
        *Sha256Digest::of(&outer).as_bytes()
    }
}

#[test]
fn malformed_headers_and_claims() {
    let authority = Authority::new();
    let key = &authority.key;
    let payload = serde_json::to_string(&claims()).unwrap();
    let crit = format!(
        r#"{{"alg":"EdDSA","typ":"writ+jwt","kid":"{}","crit":["exp"]}}"#,
        key.kid()
    );
    let jwt_typ = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, key.kid());
    let exp = claims().exp;
    let cases = [
        ("crit header", hand_jws(&crit, &payload, key)),
        ("wrong typ", hand_jws(&jwt_typ, &payload, key)),
        (
            "duplicate claim",
            hand_jws(
                &header(key),
                &payload.replacen('{', r#"{"aud":"gate-1","#, 1),
                key,
            ),
        ),
        (
            "missing exp",
            hand_jws(
                &header(key),
                &payload.replace(&format!(r#""exp":{exp},"#), ""),
                key,
            ),
        ),
    ];
    for (name, token) in cases {
        let out = verify(&authority, &token, &[]);
        assert_denied(&out, "malformed");
        assert!(
            !stdout_json(&out)["reason"].as_str().unwrap().is_empty(),
            "{name}"
        );
    }
}

#[test]
fn other_issuer_is_unknown_key() {
    let authority = Authority::new();
    let mut c = claims();
    c.iss = "https://rogue.example".into();
    assert_denied(&verify(&authority, &authority.sign(&c), &[]), "unknown_key");
    let stranger = SigningKey::from_seed(&[0x77; 32]);
    let token = writ_core::sign(&claims(), &stranger).unwrap();
    assert_denied(&verify(&authority, &token, &[]), "unknown_key");
}

#[test]
fn expired_beyond_skew() {
    let authority = Authority::new();
    let mut c = claims();
    c.iat -= 120;
    c.nbf -= 120;
    c.exp = now() - 6;
    assert_denied(&verify(&authority, &authority.sign(&c), &[]), "expired");
    // Inside the skew allowance it still holds; with a larger allowance, so does the first.
    let mut c2 = c.clone();
    c2.exp = now() - 1;
    assert_permitted(&verify(&authority, &authority.sign(&c2), &[]));
    assert_permitted(&verify(&authority, &authority.sign(&c), &["--skew", "60"]));
    let out = verify(&authority, &authority.sign(&c), &["--skew", "301"]);
    assert_eq!(status(&out), 64);
}

#[test]
fn not_yet_valid() {
    let authority = Authority::new();
    let mut c = claims();
    c.nbf = now() + 30;
    c.iat = c.nbf;
    c.exp = c.nbf + 60;
    assert_denied(
        &verify(&authority, &authority.sign(&c), &[]),
        "not_yet_valid",
    );
}

#[test]
fn other_arguments_action_or_resource_is_scope_mismatch() {
    let authority = Authority::new();
    let token = authority.sign(&claims());
    let base = |action: &str, resource: &str, args: &str| {
        Call {
            action: action.into(),
            resource: resource.into(),
            args: args.to_string(),
            ..Call::default()
        }
        .verify(&authority, &token, &[])
    };
    let args = call_args().to_string();
    assert_permitted(&base("exec", "/usr/bin/git", &args));
    let other = args.replace("status", "push");
    assert_denied(&base("exec", "/usr/bin/git", &other), "scope_mismatch");
    assert_denied(&base("tools/call", "/usr/bin/git", &args), "scope_mismatch");
    assert_denied(&base("exec", "/bin/rm", &args), "scope_mismatch");
    // Arguments from a file, in another key order, are the same arguments.
    let file = authority.path("args.json");
    write(
        &file,
        r#"{ "env": {"PATH": "/usr/bin"}, "cwd": "/work", "argv": ["git", "status"] }"#,
    );
    assert_permitted(&base(
        "exec",
        "/usr/bin/git",
        &format!("@{}", file.display()),
    ));
}

#[test]
fn other_audience_is_audience_mismatch() {
    let authority = Authority::new();
    let mut c = claims();
    c.aud = "gate-2".into();
    assert_denied(
        &verify(&authority, &authority.sign(&c), &[]),
        "audience_mismatch",
    );
}

#[test]
fn retired_policy_is_policy_mismatch() {
    let authority = Authority::new();
    let token = authority.sign(&claims());
    let current = writ_core::Sha256Digest::of(b"policies v2").to_hex();
    assert_denied(
        &verify(&authority, &token, &["--policy-digest", &current]),
        "policy_mismatch",
    );
    let accepted = claims().pol.digest.to_hex();
    assert_permitted(&verify(
        &authority,
        &token,
        &["--policy-digest", &current, "--policy-digest", &accepted],
    ));
    let out = verify(&authority, &token, &["--policy-digest", "ABC"]);
    assert_eq!(status(&out), 64);
}

#[test]
fn other_environment_is_environment_integrity_failure() {
    let authority = Authority::new();
    let measured = authority.path("tool.conf");
    write(&measured, "safe = true\n");
    let spec = authority.path("env.toml");
    write(
        &spec,
        &format!(
            "files = [\"{}\"]\nenv = [\"WRIT_TEST_ENV_VALUE\"]\n",
            measured.display()
        ),
    );
    let out = run(
        &["env", "measure", "--spec", spec.to_str().unwrap(), "--json"],
        None,
    );
    assert_eq!(status(&out), 0);
    let digest = stdout_json(&out)["digest"].as_str().unwrap().to_string();

    let mut c = claims();
    c.env = Some(writ_core::Sha256Digest::from_hex(&digest).unwrap());
    let token = authority.sign(&c);
    let spec_arg = spec.to_str().unwrap();
    assert_permitted(&verify(&authority, &token, &["--env-spec", spec_arg]));
    // No measurement to compare with.
    assert_denied(
        &verify(&authority, &token, &[]),
        "environment_integrity_failure",
    );
    // The environment changed.
    write(&measured, "safe = false\n");
    assert_denied(
        &verify(&authority, &token, &["--env-spec", spec_arg]),
        "environment_integrity_failure",
    );
    // The measured file is gone.
    std::fs::remove_file(&measured).unwrap();
    assert_denied(
        &verify(&authority, &token, &["--env-spec", spec_arg]),
        "environment_integrity_failure",
    );
    // A gate with an environment spec denies writs not bound to an environment.
    write(&measured, "safe = true\n");
    let unbound = authority.sign(&claims());
    assert_denied(
        &verify(&authority, &unbound, &["--env-spec", spec_arg]),
        "environment_integrity_failure",
    );
}

#[test]
fn cnf_without_or_with_another_executor_key_is_runtime_identity_mismatch() {
    let authority = Authority::new();
    let keys = authority.path("executor");
    let out = run(
        &[
            "keys",
            "generate",
            "--out",
            keys.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(status(&out), 0);
    let kid = stdout_json(&out)["kid"].as_str().unwrap().to_string();
    let other = authority.path("other");
    assert_eq!(
        status(&run(
            &["keys", "generate", "--out", other.to_str().unwrap()],
            None
        )),
        0
    );

    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: writ_core::KeyId::new(kid),
    });
    let token = authority.sign(&c);
    let pem = keys.join("signing-key.pem");
    let jwk = keys.join("public.jwk");
    assert_permitted(&verify(
        &authority,
        &token,
        &["--holder-key", pem.to_str().unwrap()],
    ));
    assert_permitted(&verify(
        &authority,
        &token,
        &["--holder-key", jwk.to_str().unwrap()],
    ));
    assert_denied(
        &verify(&authority, &token, &[]),
        "runtime_identity_mismatch",
    );
    let other_pem = other.join("signing-key.pem");
    assert_denied(
        &verify(
            &authority,
            &token,
            &["--holder-key", other_pem.to_str().unwrap()],
        ),
        "runtime_identity_mismatch",
    );
    let unbound = authority.sign(&claims());
    assert_denied(
        &verify(
            &authority,
            &unbound,
            &["--holder-key", pem.to_str().unwrap()],
        ),
        "runtime_identity_mismatch",
    );
}

#[test]
fn second_use_with_replay_db_is_replay_detected() {
    let authority = Authority::new();
    let db = authority.path("replay.db");
    let db = db.to_str().unwrap();
    let token = authority.sign(&claims());
    let json = assert_permitted(&verify(&authority, &token, &["--replay-db", db]));
    assert_eq!(json["consumed"], true);
    assert_eq!(json["remaining_uses"], 0);
    assert_denied(
        &verify(&authority, &token, &["--replay-db", db]),
        "replay_detected",
    );
    // Checking without the store still works and still consumes nothing.
    assert_permitted(&verify(&authority, &token, &[]));
}

#[test]
fn concurrent_processes_consume_a_single_use_once() {
    let authority = Authority::new();
    let db = authority.path("replay.db");
    for round in 0..5u8 {
        let mut c = claims();
        c.jti = writ_core::Jti::from_bytes([round; 16]);
        let token = authority.sign(&c);
        let mut argv = Call::default().argv(&authority, &token);
        argv.extend([
            "--replay-db".into(),
            db.display().to_string(),
            "--json".into(),
        ]);
        let children: Vec<_> = (0..6)
            .map(|_| {
                writ_cmd()
                    .args(&argv)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let permits = outs.iter().filter(|o| status(o) == 0).count();
        assert_eq!(permits, 1, "round {round}");
        for out in outs.iter().filter(|o| status(o) != 0) {
            assert_denied(out, "replay_detected");
        }
    }
}

#[test]
fn a_writ_failing_an_earlier_check_is_not_consumed() {
    let authority = Authority::new();
    let db = authority.path("replay.db");
    let db = db.to_str().unwrap();
    let token = authority.sign(&claims());
    let wrong_args = r#"{"argv":["rm","-rf","/"],"cwd":"/","env":{}}"#;
    let out = Call {
        args: wrong_args.to_string(),
        ..Call::default()
    }
    .verify(&authority, &token, &["--replay-db", db]);
    assert_denied(&out, "scope_mismatch");
    let other_gate = Call {
        audience: "gate-2".into(),
        ..Call::default()
    }
    .verify(&authority, &token, &["--replay-db", db]);
    assert_denied(&other_gate, "audience_mismatch");
    let mut stranger = claims();
    stranger.sub = "forged".into();
    let forged = format!(
        "{}.{}",
        &authority.sign(&stranger)[..authority.sign(&stranger).rfind('.').unwrap()],
        token.rsplit('.').next().unwrap()
    );
    assert_denied(
        &verify(&authority, &forged, &["--replay-db", db]),
        "invalid_signature",
    );
    // Still unspent.
    assert_permitted(&verify(&authority, &token, &["--replay-db", db]));
}

#[test]
fn unreachable_replay_store_is_status_unavailable() {
    let authority = Authority::new();
    let token = authority.sign(&claims());
    let db = authority.path("no-such-dir/replay.db");
    let out = verify(&authority, &token, &["--replay-db", db.to_str().unwrap()]);
    let json = stdout_json(&out);
    assert_eq!(json["decision"], "deny");
    assert_eq!(json["code"], "status_unavailable");
    assert_eq!(status(&out), 69);
}

#[test]
fn missing_token_is_missing_authorization() {
    let authority = Authority::new();
    assert_denied(&verify(&authority, "", &[]), "missing_authorization");
    let mut argv = Call::default().argv(&authority, "-");
    argv.push("--json".into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv, Some("\n"));
    assert_denied(&out, "missing_authorization");
}

#[test]
fn usage_errors_exit_64() {
    let authority = Authority::new();
    let token = authority.sign(&claims());
    // Missing required flag.
    let out = run(&["verify", &token, "--issuer", ISSUER], None);
    assert_eq!(status(&out), 64);
    // Unknown subcommand.
    assert_eq!(status(&run(&["frobnicate"], None)), 64);
    // Invalid --args JSON, and duplicate keys in it.
    for bad in ["{", r#"{"a":1,"a":2}"#] {
        let out = Call {
            args: bad.to_string(),
            ..Call::default()
        }
        .verify(&authority, &token, &[]);
        assert_eq!(status(&out), 64, "{bad}");
        assert_eq!(stdout_json(&out)["code"], "usage");
    }
    // Unreadable JWKS.
    let mut argv = Call::default().argv(&authority, &token);
    argv[3] = "/nonexistent/jwks.json".into();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv, None);
    assert_eq!(status(&out), 64);
    // Help teaches and succeeds.
    let out = run(&["verify", "--help"], None);
    assert_eq!(status(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--replay-db"));
}

#[test]
fn json_claims_are_the_signed_claims() {
    let authority = Authority::new();
    let claims = claims();
    let json = assert_permitted(&verify(&authority, &authority.sign(&claims), &[]));
    let expected: Value = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["claims"], expected);
}

// ---- `--chain`: a delegated writ with its ancestors, child first ----

/// A depth-3 chain of claims: root → child → leaf, the leaf for `call_args()` at `gate-1`.
struct ChainClaims {
    root: Claims,
    child: Claims,
    leaf: Claims,
}

fn chain_claims() -> ChainClaims {
    let base = claims();
    let mut root = base.clone();
    root.jti = Jti::from_bytes([0xA0; 16]);
    root.sub = "alice".into();
    root.aud = "orchestrator".into();
    root.scope.action = "delegate".into();
    root.scope.resource = "project:writ".into();
    root.exp = base.exp + 60;
    root.del = Some(Delegation {
        actions: vec!["exec".into(), "tools/*".into()],
        resources: vec!["/usr/bin/*".into()],
        max_depth: 2,
    });
    let mut child = base.clone();
    child.jti = Jti::from_bytes([0xA1; 16]);
    child.sub = "alice".into();
    child.aud = "sub-agent".into();
    child.scope.action = "tools/plan".into();
    child.scope.resource = "/usr/bin/plan".into();
    child.exp = base.exp + 30;
    child.del = Some(Delegation {
        actions: vec!["exec".into()],
        resources: vec!["/usr/bin/*".into()],
        max_depth: 2,
    });
    let mut leaf = base;
    leaf.jti = Jti::from_bytes([0xA2; 16]);
    ChainClaims { root, child, leaf }
}

/// `child`'s `lin` for a parent signed as `parent_token`.
fn link(child: &mut Claims, parent: &Claims, parent_token: &str) {
    let (depth, root) = match &parent.lin {
        Some(l) => (l.depth + 1, l.root),
        None => (1, parent.jti),
    };
    child.lin = Some(Lineage {
        parent: parent.jti,
        parent_sha256: Sha256Digest::of(parent_token.as_bytes()),
        root,
        depth,
    });
}

/// Signs the chain with consistent links: tokens leaf first.
fn sign_chain(authority: &Authority, c: &ChainClaims) -> Vec<String> {
    let mut c = ChainClaims {
        root: c.root.clone(),
        child: c.child.clone(),
        leaf: c.leaf.clone(),
    };
    let root = authority.sign(&c.root);
    link(&mut c.child, &c.root, &root);
    let child = authority.sign(&c.child);
    link(&mut c.leaf, &c.child, &child);
    vec![authority.sign(&c.leaf), child, root]
}

/// Writes `tokens` to files (leaf first) and returns `--chain FILE...`.
fn chain_flags(authority: &Authority, tokens: &[String]) -> Vec<String> {
    let mut flags = vec!["--chain".to_string()];
    for (i, token) in tokens.iter().enumerate() {
        let path = authority.path(&format!("link-{i}-{}.writ", now_nanos()));
        write(&path, &format!("{token}\n"));
        flags.push(path.display().to_string());
    }
    flags
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `writ verify --chain FILE... --json` for `call`, without a positional writ.
fn verify_chain_for(
    call: &Call,
    authority: &Authority,
    tokens: &[String],
    extra: &[&str],
) -> std::process::Output {
    let mut argv = call.argv(authority, "-");
    argv.remove(1); // no positional writ
    argv.extend(chain_flags(authority, tokens));
    argv.push("--json".into());
    argv.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(&argv, None)
}

fn verify_chain(authority: &Authority, tokens: &[String]) -> std::process::Output {
    verify_chain_for(&Call::default(), authority, tokens, &[])
}

fn assert_chain_denied(out: &std::process::Output, code: &str) {
    assert_denied(out, code);
    assert_eq!(stdout_json(out)["chain"], Value::Null);
}

#[test]
fn chain_of_three_verifies_and_lists_every_link() {
    let authority = Authority::new();
    let c = chain_claims();
    let tokens = sign_chain(&authority, &c);
    let json = assert_permitted(&verify_chain(&authority, &tokens));
    let chain = json["chain"].as_array().expect("chain array");
    assert_eq!(chain.len(), 3, "{json}");
    for (link, (token, (claims, depth))) in
        chain.iter().zip(
            tokens
                .iter()
                .zip([(&c.leaf, 2), (&c.child, 1), (&c.root, 0)]),
        )
    {
        assert_eq!(link["jti"], claims.jti.to_string());
        assert_eq!(link["sub"], claims.sub);
        assert_eq!(link["aud"], claims.aud);
        assert_eq!(link["depth"], depth);
        assert_eq!(link["exp"], claims.exp);
        assert_eq!(link["kid"], authority.key.kid().as_str());
        assert_eq!(
            link["writ_sha256"],
            Sha256Digest::of(token.as_bytes()).to_hex()
        );
    }
    assert_eq!(json["claims"]["jti"], c.leaf.jti.to_string());
    assert_eq!(json["consumed"], false);

    // The same as the writ plus --ancestor, parent first (which prints no chain).
    let parent = authority.path("parent.writ");
    let root = authority.path("root.writ");
    write(&parent, &tokens[1]);
    write(&root, &tokens[2]);
    let json = assert_permitted(&verify(
        &authority,
        &tokens[0],
        &[
            "--ancestor",
            parent.to_str().unwrap(),
            "--ancestor",
            root.to_str().unwrap(),
        ],
    ));
    assert!(json.get("chain").is_none());

    // Text output names the chain.
    let mut argv = Call::default().argv(&authority, "-");
    argv.remove(1);
    argv.extend(chain_flags(&authority, &tokens));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv, None);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("permit:"), "{text}");
    assert!(text.contains("chain: 3 link(s)"), "{text}");

    // With a replay store the leaf is consumed once; the ancestors spend nothing.
    let db = authority.path("replay.db");
    let db = db.to_str().unwrap();
    let json = assert_permitted(&verify_chain_for(
        &Call::default(),
        &authority,
        &tokens,
        &["--replay-db", db],
    ));
    assert_eq!(json["consumed"], true);
    assert_chain_denied(
        &verify_chain_for(&Call::default(), &authority, &tokens, &["--replay-db", db]),
        "replay_detected",
    );
}

#[test]
fn chain_is_verified_for_the_exact_action() {
    let authority = Authority::new();
    let tokens = sign_chain(&authority, &chain_claims());
    let other = Call {
        args: r#"{"argv":["git","push"],"cwd":"/work","env":{"PATH":"/usr/bin"}}"#.into(),
        ..Call::default()
    };
    assert_chain_denied(
        &verify_chain_for(&other, &authority, &tokens, &[]),
        "scope_mismatch",
    );
    let other_gate = Call {
        audience: "gate-2".into(),
        ..Call::default()
    };
    assert_chain_denied(
        &verify_chain_for(&other_gate, &authority, &tokens, &[]),
        "audience_mismatch",
    );
}

#[test]
fn chain_conflicts_with_token_and_ancestor() {
    let authority = Authority::new();
    let tokens = sign_chain(&authority, &chain_claims());
    let flags = chain_flags(&authority, &tokens);
    // TOKEN and --chain.
    let mut argv = Call::default().argv(&authority, &tokens[0]);
    argv.extend(flags.iter().cloned());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_eq!(status(&run(&argv, None)), 64);
    // --ancestor and --chain.
    let mut argv = Call::default().argv(&authority, "-");
    argv.remove(1);
    argv.extend(["--ancestor".to_string(), flags[2].clone()]);
    argv.extend(flags.iter().cloned());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_eq!(status(&run(&argv, None)), 64);
    // Neither a writ nor --chain.
    let mut argv = Call::default().argv(&authority, "-");
    argv.remove(1);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_eq!(status(&run(&argv, None)), 64);
    // The action flags stay required with --chain.
    let jwks = authority.jwks();
    let chain_only: Vec<&str> = ["verify", "--jwks", jwks.to_str().unwrap()]
        .into_iter()
        .chain(["--issuer", ISSUER, "--audience", AUDIENCE])
        .chain(flags.iter().map(String::as_str))
        .collect();
    assert_eq!(status(&run(&chain_only, None)), 64);
    // An unreadable chain file.
    let mut argv = Call::default().argv(&authority, "-");
    argv.remove(1);
    argv.extend(["--chain".into(), "/nonexistent/leaf.writ".into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_eq!(status(&run(&argv, None)), 64);
}

#[test]
fn chain_out_of_order_short_or_rehashed_is_lineage_inconsistency() {
    let authority = Authority::new();
    let c = chain_claims();
    let tokens = sign_chain(&authority, &c);
    let [leaf, child, root] = [&tokens[0], &tokens[1], &tokens[2]].map(String::clone);

    // Swapped: root before child.
    assert_chain_denied(
        &verify_chain(&authority, &[leaf.clone(), root.clone(), child.clone()]),
        "lineage_inconsistency",
    );
    // Reversed (root first): the root is checked as the leaf, and it is not for this gate
    // (audience comes before lineage in the verification order).
    assert_chain_denied(
        &verify_chain(&authority, &[root.clone(), child.clone(), leaf.clone()]),
        "audience_mismatch",
    );
    // A root that is for this exact call, presented with "ancestors": it has no `lin`.
    let mut as_leaf = c.root.clone();
    as_leaf.aud = AUDIENCE.into();
    as_leaf.scope = c.leaf.scope.clone();
    assert_chain_denied(
        &verify_chain(&authority, &[authority.sign(&as_leaf), child.clone()]),
        "lineage_inconsistency",
    );
    // Dropped: the middle link, the root, or every ancestor.
    assert_chain_denied(
        &verify_chain(&authority, &[leaf.clone(), root.clone()]),
        "lineage_inconsistency",
    );
    assert_chain_denied(
        &verify_chain(&authority, &[leaf.clone(), child.clone()]),
        "lineage_inconsistency",
    );
    let out = verify_chain(&authority, std::slice::from_ref(&leaf));
    assert_chain_denied(&out, "lineage_inconsistency");
    // An extra link past the root.
    assert_chain_denied(
        &verify_chain(&authority, &[leaf, child, root.clone(), root.clone()]),
        "lineage_inconsistency",
    );

    // Re-hashed: the child names the root's jti but the digest of another writ.
    let mut other_root = c.root.clone();
    other_root.jti = Jti::from_bytes([0xB0; 16]);
    other_root.sub = "mallory".into();
    let other_root = authority.sign(&other_root);
    let mut child = c.child.clone();
    link(&mut child, &c.root, &other_root);
    let child_token = authority.sign(&child);
    let mut leaf = c.leaf.clone();
    link(&mut leaf, &child, &child_token);
    let leaf_token = authority.sign(&leaf);
    assert_chain_denied(
        &verify_chain(&authority, &[leaf_token.clone(), child_token.clone(), root]),
        "lineage_inconsistency",
    );
    // … and the writ it does hash to is not the root it names.
    assert_chain_denied(
        &verify_chain(&authority, &[leaf_token, child_token, other_root.clone()]),
        "lineage_inconsistency",
    );
    // A root alone verifies: a chain of one undelegated writ.
    let json = assert_permitted(&verify_chain(&authority, &[authority.sign(&claims())]));
    assert_eq!(json["chain"].as_array().unwrap().len(), 1);
    assert_eq!(json["chain"][0]["depth"], 0);
}

/// A change to a consistent chain, before it is signed.
type Mutation = Box<dyn Fn(&mut ChainClaims)>;

#[test]
fn chain_wider_deeper_or_longer_lived_than_the_parent_is_lineage_inconsistency() {
    let authority = Authority::new();
    let cases: Vec<(&str, Call, Mutation)> = vec![
        (
            "action outside the parent's del",
            Call {
                action: "tools/call".into(),
                ..Call::default()
            },
            Box::new(|c| c.leaf.scope.action = "tools/call".into()),
        ),
        (
            "resource outside the parent's del",
            Call {
                resource: "/bin/rm".into(),
                ..Call::default()
            },
            Box::new(|c| c.leaf.scope.resource = "/bin/rm".into()),
        ),
        (
            "middle link's action outside the root's del",
            Call::default(),
            Box::new(|c| c.child.scope.action = "payments/send".into()),
        ),
        (
            "child del wider than the root's",
            Call::default(),
            Box::new(|c| {
                c.child.del.as_mut().unwrap().resources = vec!["*".into()];
            }),
        ),
        (
            "depth over max_depth",
            Call::default(),
            Box::new(|c| {
                c.root.del.as_mut().unwrap().max_depth = 1;
                c.child.del.as_mut().unwrap().max_depth = 1;
            }),
        ),
        (
            "parent allows no delegation",
            Call::default(),
            Box::new(|c| c.child.del = None),
        ),
        (
            "leaf outlives its parent",
            Call::default(),
            Box::new(|c| c.leaf.exp = c.child.exp + 1),
        ),
        (
            "child outlives the root",
            Call::default(),
            Box::new(|c| c.child.exp = c.root.exp + 1),
        ),
    ];
    for (name, call, mutate) in cases {
        let mut c = chain_claims();
        mutate(&mut c);
        let tokens = sign_chain(&authority, &c);
        let out = verify_chain_for(&call, &authority, &tokens, &[]);
        assert_eq!(
            stdout_json(&out)["code"],
            "lineage_inconsistency",
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_chain_denied(&out, "lineage_inconsistency");
    }
}

#[test]
fn chain_with_a_forged_parent_is_unknown_key_or_invalid_signature() {
    let authority = Authority::new();
    let c = chain_claims();

    // The middle link signed by a key the verifier does not trust, hashes consistent.
    let stranger = SigningKey::from_seed(&[0x77; 32]);
    let root = authority.sign(&c.root);
    let mut child = c.child.clone();
    link(&mut child, &c.root, &root);
    let child_token = writ_core::sign(&child, &stranger).unwrap();
    let mut leaf = c.leaf.clone();
    link(&mut leaf, &child, &child_token);
    let out = verify_chain(
        &authority,
        &[authority.sign(&leaf), child_token, root.clone()],
    );
    assert_chain_denied(&out, "unknown_key");
    assert!(stdout_json(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("ancestor 1"));

    // The root with one signature character changed; the child hashes the forged text.
    let sig_at = root.rfind('.').unwrap() + 10;
    let mut forged = root.into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let mut child = c.child.clone();
    link(&mut child, &c.root, &forged);
    let child_token = authority.sign(&child);
    let mut leaf = c.leaf.clone();
    link(&mut leaf, &child, &child_token);
    let out = verify_chain(&authority, &[authority.sign(&leaf), child_token, forged]);
    assert_chain_denied(&out, "invalid_signature");
    assert!(stdout_json(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("ancestor 2"));
}

#[test]
fn chain_with_an_expired_parent_is_expired() {
    let authority = Authority::new();
    // The middle link expired (beyond the skew); the leaf itself is live.
    let mut c = chain_claims();
    c.child.iat -= 120;
    c.child.nbf -= 120;
    c.child.exp = now() - 10;
    let out = verify_chain(&authority, &sign_chain(&authority, &c));
    assert_chain_denied(&out, "expired");
    assert!(stdout_json(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("ancestor 1"));
    // The root expired.
    let mut c = chain_claims();
    c.root.iat -= 120;
    c.root.nbf -= 120;
    c.root.exp = now() - 10;
    let out = verify_chain(&authority, &sign_chain(&authority, &c));
    assert_chain_denied(&out, "expired");
    assert!(stdout_json(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("ancestor 2"));
}
