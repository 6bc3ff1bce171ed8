//! `writ verify`: every case the issue names, through the binary.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use writ_core::{Confirmation, SigningKey};

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
