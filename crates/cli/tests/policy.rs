//! `writ policy`: validate, test and digest a policy directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::support::*;

/// The example policy set shipped in writ-policy.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/examples")
}

/// A copy of the example set in a temporary directory, with `edit` applied to the policies.
fn copy_examples(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["writ.cedarschema", "policies.cedar", "entities.json"] {
        let text = std::fs::read_to_string(examples().join(name)).unwrap();
        let text = if name == "policies.cedar" {
            edit(text)
        } else {
            text
        };
        write(&dir.path().join(name), &text);
    }
    dir
}

fn policy(args: &[&str]) -> Output {
    let mut argv = vec!["policy"];
    argv.extend_from_slice(args);
    run(&argv, None)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn validate_prints_ok_the_digest_and_the_ids() {
    let dir = examples();
    let out = policy(&["validate", dir.to_str().unwrap()]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ok "), "{text}");
    assert!(text.contains("forbid-pipe-to-shell"), "{text}");

    let out = policy(&["validate", dir.to_str().unwrap(), "--json"]);
    assert_eq!(status(&out), 0);
    let json = stdout_json(&out);
    assert_eq!(json["valid"], true);
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);
    assert_eq!(json["policies"].as_array().unwrap().len(), 12);
    assert_eq!(json["warnings"], json!([]));
}

#[test]
fn validate_refuses_a_set_with_errors_with_exit_77_and_locations() {
    let dir =
        copy_examples(|p| p.replace("resource.server == \"docs\"", "resource.srv == \"docs\""));
    let out = policy(&["validate", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(status(&out), 77);
    let json = stdout_json(&out);
    assert_eq!(json["valid"], false);
    assert_eq!(json["code"], "policy_invalid");
    assert_eq!(json["errors"][0]["policy"], "allow-docs-tools");
    assert!(json["errors"][0]["line"].is_u64(), "{json}");
    let err = stderr(&out);
    assert!(err.contains("policies.cedar:"), "{err}");
    assert!(err.contains("allow-docs-tools"), "{err}");

    // A text that does not parse is refused the same way.
    let dir = copy_examples(|p| format!("{p}\npermit (principal, action"));
    let out = policy(&["validate", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(status(&out), 77);
    assert_eq!(stdout_json(&out)["code"], "policy_syntax");
}

#[test]
fn validate_and_digest_need_a_readable_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    for sub in ["validate", "digest"] {
        let out = policy(&[sub, missing.to_str().unwrap()]);
        assert_eq!(status(&out), 64, "{sub}: {}", stderr(&out));
    }
    // A directory without a schema.
    let out = policy(&["validate", tmp.path().to_str().unwrap(), "--json"]);
    assert_eq!(status(&out), 64);
    assert_eq!(stdout_json(&out)["code"], "usage");
}

#[test]
fn digest_is_stable_and_follows_the_policies() {
    let dir = examples();
    let a = policy(&["digest", dir.to_str().unwrap()]);
    let b = policy(&["digest", dir.to_str().unwrap(), "--json"]);
    assert_eq!(status(&a), 0);
    let hex = String::from_utf8_lossy(&a.stdout).trim().to_owned();
    assert_eq!(hex.len(), 64);
    assert_eq!(stdout_json(&b)["digest"], hex.as_str());
    let validated = stdout_json(&policy(&["validate", dir.to_str().unwrap(), "--json"]));
    assert_eq!(validated["digest"], hex.as_str());

    let changed = copy_examples(|p| p.replace("<= 10000", "<= 20000"));
    let c = policy(&["digest", changed.path().to_str().unwrap()]);
    assert_eq!(status(&c), 0);
    assert_ne!(String::from_utf8_lossy(&c.stdout).trim(), hex);
    let same = copy_examples(|p| p);
    let d = policy(&["digest", same.path().to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&d.stdout).trim(), hex);
}

#[test]
fn test_runs_the_example_cases() {
    let dir = examples();
    let cases = dir.join("cases.json");
    let out = policy(&["test", dir.to_str().unwrap(), cases.to_str().unwrap()]);
    assert_eq!(
        status(&out),
        0,
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" passed, 0 failed"), "{text}");

    let out = policy(&[
        "test",
        dir.to_str().unwrap(),
        cases.to_str().unwrap(),
        "--json",
    ]);
    let json = stdout_json(&out);
    assert_eq!(json["passed"], true);
    assert_eq!(json["failed"], 0);
    assert!(json["total"].as_u64().unwrap() > 20);
}

#[test]
fn test_fails_with_77_on_a_mismatch_and_names_it() {
    let dir = examples();
    let cases = json!([
        {"name": "git status", "expect": "permit",
         "request": {"principal": {"id": "a", "role": "agent"}, "action": "exec",
                     "resource": "/usr/bin/git", "args": {"argv": ["git", "status"]}}},
        {"name": "rm is surely fine", "expect": "permit",
         "request": {"principal": {"id": "a", "role": "agent"}, "action": "exec",
                     "resource": "/usr/bin/rm", "args": {"argv": ["rm", "-rf", "/"]}}}
    ])
    .to_string();
    let out = run(
        &["policy", "test", dir.to_str().unwrap(), "-", "--json"],
        Some(&cases),
    );
    assert_eq!(status(&out), 77);
    let json = stdout_json(&out);
    assert_eq!(json["passed"], false);
    assert_eq!(json["failed"], 1);
    assert_eq!(json["cases"][0]["passed"], true);
    let failed: &Value = &json["cases"][1];
    assert_eq!(failed["decision"]["decision"], "deny");
    assert_eq!(failed["decision"]["reasons"][0]["policy"], "forbid-rm");
    let err = stderr(&out);
    assert!(err.contains("rm is surely fine"), "{err}");

    // Tighter limits turn a passing lifetime expectation into a mismatch.
    let out = policy(&[
        "test",
        dir.to_str().unwrap(),
        dir.join("cases.json").to_str().unwrap(),
        "--max-lifetime",
        "10",
    ]);
    assert_eq!(status(&out), 77);
}

#[test]
fn test_refuses_a_malformed_cases_file_with_64() {
    let dir = examples();
    let out = run(
        &["policy", "test", dir.to_str().unwrap(), "-"],
        Some(r#"[{"name": "x", "expect": "permit"}]"#),
    );
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    let tmp = tempfile::tempdir().unwrap();
    let out = policy(&[
        "test",
        dir.to_str().unwrap(),
        tmp.path().join("missing.json").to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 64);
}
