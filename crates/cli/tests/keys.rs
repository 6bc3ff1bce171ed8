//! `writ keys`: files, modes, key ids, and no overwriting.

use std::os::unix::fs::PermissionsExt;

use writ_core::{Jwk, KeySet, SigningKey, VerifyingKey};

use crate::support::*;

#[test]
fn generate_writes_a_private_pem_0600_and_public_jwk_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("keys");
    let out = run(
        &[
            "keys",
            "generate",
            "--out",
            out_dir.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = stdout_json(&out);
    let kid = report["kid"].as_str().unwrap();

    let pem_path = out_dir.join("signing-key.pem");
    let mode = std::fs::metadata(&pem_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(key.kid().as_str(), kid);

    let jwk: Jwk =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("public.jwk")).unwrap())
            .unwrap();
    assert!(jwk.d.is_none());
    let public = VerifyingKey::from_jwk(&jwk).unwrap();
    // kid is the RFC 7638 thumbprint of the public key.
    assert_eq!(public.kid().as_str(), kid);
    assert_eq!(
        writ_core::KeyId::thumbprint(public.as_bytes()).as_str(),
        kid
    );

    let set = KeySet::from_jwks_json(&std::fs::read_to_string(out_dir.join("jwks.json")).unwrap())
        .unwrap();
    assert!(set.get(kid).is_some());

    // Neither stdout nor stderr ever carries the private key.
    let body = pem.lines().nth(1).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(body));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(body));

    // A second run into the same directory refuses to overwrite.
    let again = run(
        &["keys", "generate", "--out", out_dir.to_str().unwrap()],
        None,
    );
    assert_eq!(status(&again), 64);
    assert_eq!(std::fs::read_to_string(&pem_path).unwrap(), pem);
}

#[test]
fn two_generated_keys_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(
        &[
            "keys",
            "generate",
            "--out",
            dir.path().join("a").to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let b = run(
        &[
            "keys",
            "generate",
            "--out",
            dir.path().join("b").to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_ne!(stdout_json(&a)["kid"], stdout_json(&b)["kid"]);
}

#[test]
fn inspect_prints_the_kid_of_pem_and_jwk() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "keys",
            "generate",
            "--out",
            dir.path().to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let kid = stdout_json(&out)["kid"].clone();
    for file in ["signing-key.pem", "public.jwk"] {
        let out = run(
            &[
                "keys",
                "inspect",
                dir.path().join(file).to_str().unwrap(),
                "--json",
            ],
            None,
        );
        assert_eq!(status(&out), 0);
        assert_eq!(stdout_json(&out)["kid"], kid);
        assert!(stdout_json(&out)["jwk"].get("d").is_none());
    }
    let junk = dir.path().join("junk");
    write(&junk, "not a key");
    assert_eq!(
        status(&run(&["keys", "inspect", junk.to_str().unwrap()], None)),
        64
    );
}
