//! `writ log`: notes in, checkpoints and proofs out, and an auditor's offline checks.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::*;

fn log_cmd(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut argv = vec!["log", "--data-dir", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    run(&argv, stdin)
}

fn append_notes(dir: &Path, n: u64) {
    for i in 0..n {
        let note = format!(r#"{{"type":"note","text":"note {i}"}}"#);
        let out = log_cmd(dir, &["append", "-", "--json"], Some(&note));
        assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout_json(&out)["index"], i);
    }
}

fn save(dir: &Path, name: &str, out: &Output) -> std::path::PathBuf {
    assert_eq!(status(out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn notes_checkpoints_and_proofs_an_auditor_checks_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let audit = tmp.path().join("auditor");
    std::fs::create_dir(&audit).unwrap();
    append_notes(&data, 5);
    let vkey = save(&audit, "vkey", &log_cmd(&data, &["vkey"], None));
    let old = save(
        &audit,
        "old.checkpoint",
        &log_cmd(&data, &["checkpoint"], None),
    );
    append_notes_from(&data, 5, 12);
    let now = save(
        &audit,
        "now.checkpoint",
        &log_cmd(&data, &["checkpoint"], None),
    );
    let cp = stdout_json(&log_cmd(&data, &["checkpoint", "--json"], None));
    assert_eq!(cp["size"], 12);

    // The stored entry is the canonical JSON of the note.
    let got = log_cmd(&data, &["get", "--index", "7", "--json"], None);
    assert_eq!(
        stdout_json(&got)["entry"],
        serde_json::json!({"type": "note", "text": "note 7"})
    );

    let inclusion = save(
        &audit,
        "incl.json",
        &log_cmd(&data, &["prove", "--index", "7"], None),
    );
    let consistency = save(
        &audit,
        "cons.json",
        &log_cmd(&data, &["prove", "--from", "5"], None),
    );
    let proof: Value = serde_json::from_slice(&std::fs::read(&inclusion).unwrap()).unwrap();
    assert_eq!(proof["type"], "inclusion");
    assert_eq!(proof["tree_size"], 12);

    // No data dir at all: the auditor's machine.
    let check = |args: &[&str]| {
        let mut argv = vec!["log", "check-proof"];
        argv.extend_from_slice(args);
        writ_cmd()
            .args(&argv)
            .env_remove("WRIT_DATA_DIR")
            .env("HOME", audit.to_str().unwrap())
            .output()
            .unwrap()
    };
    let p = |p: &Path| p.to_str().unwrap().to_string();
    assert_eq!(status(&check(&[&p(&inclusion)])), 0);
    let anchored = check(&[
        &p(&inclusion),
        "--checkpoint",
        &p(&now),
        "--vkey",
        &p(&vkey),
        "--json",
    ]);
    assert_eq!(status(&anchored), 0);
    assert_eq!(stdout_json(&anchored)["valid"], true);
    let both = check(&[
        &p(&consistency),
        "--checkpoint",
        &p(&old),
        "--checkpoint",
        &p(&now),
        "--vkey",
        &p(&vkey),
    ]);
    assert_eq!(
        status(&both),
        0,
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    // The inclusion proof is for size 12: the old checkpoint does not sign its root.
    let wrong = check(&[
        &p(&inclusion),
        "--checkpoint",
        &p(&old),
        "--vkey",
        &p(&vkey),
        "--json",
    ]);
    assert_eq!(status(&wrong), 77);
    assert_eq!(stdout_json(&wrong)["code"], "checkpoint_mismatch");
    // Another log's key does not verify this checkpoint.
    let other = tmp.path().join("other");
    append_notes(&other, 1);
    let other_vkey = save(&audit, "other.vkey", &log_cmd(&other, &["vkey"], None));
    let forged = check(&[
        &p(&inclusion),
        "--checkpoint",
        &p(&now),
        "--vkey",
        &p(&other_vkey),
        "--json",
    ]);
    assert_eq!(stdout_json(&forged)["code"], "checkpoint_invalid");
    // A proof with one hash changed fails, and says why.
    let text = std::fs::read_to_string(&inclusion).unwrap();
    let first = proof["hashes"][0].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if first.starts_with('0') { "1" } else { "0" },
        &first[1..]
    );
    let bad = audit.join("bad.json");
    std::fs::write(&bad, text.replace(first, &flipped)).unwrap();
    let out = check(&[&p(&bad), "--json"]);
    assert_eq!(status(&out), 77);
    assert_eq!(stdout_json(&out)["code"], "proof_invalid");
    // A hash that is not 32 bytes is refused before any hashing.
    std::fs::write(&bad, text.replace(first, &first[..60])).unwrap();
    assert_eq!(
        stdout_json(&check(&[&p(&bad), "--json"]))["code"],
        "proof_malformed"
    );

    // The log verifies against the old checkpoint the auditor kept.
    let verified = log_cmd(
        &data,
        &[
            "verify",
            "--checkpoint",
            &p(&old),
            "--vkey",
            &p(&vkey),
            "--json",
        ],
        None,
    );
    assert_eq!(status(&verified), 0);
    assert_eq!(stdout_json(&verified)["size"], 12);
}

fn append_notes_from(dir: &Path, from: u64, to: u64) {
    for i in from..to {
        let note = format!(r#"{{"type":"note","text":"note {i}"}}"#);
        let out = log_cmd(dir, &["append", "-"], Some(&note));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), i.to_string());
    }
}

/// Builds a 10-entry log, keeps its checkpoint, tampers with the database, and returns what
/// `writ log verify` against the kept checkpoint says.
fn verify_after(tamper: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    append_notes(&data, 10);
    let kept = save(tmp.path(), "kept", &log_cmd(&data, &["checkpoint"], None));
    let vkey = save(tmp.path(), "vkey", &log_cmd(&data, &["vkey"], None));
    rusqlite::Connection::open(data.join("writ.db"))
        .unwrap()
        .execute_batch(tamper)
        .unwrap();
    let out = log_cmd(
        &data,
        &[
            "verify",
            "--checkpoint",
            kept.to_str().unwrap(),
            "--vkey",
            vkey.to_str().unwrap(),
        ],
        None,
    );
    (
        status(&out),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn verify_names_what_broke() {
    let (code, said) = verify_after(
        "UPDATE log_entries SET data = replace(data, 'note 4', 'note 5') WHERE idx = 4;",
    );
    assert_eq!(code, 77);
    assert!(said.contains("entry 4"), "{said}");
    let (code, said) = verify_after("DELETE FROM log_entries WHERE idx = 6;");
    assert_eq!(code, 77);
    assert!(said.contains("entry 6 is missing"), "{said}");
    let (code, said) = verify_after(
        "UPDATE log_entries SET idx = -1 WHERE idx = 2; UPDATE log_entries SET idx = 2 WHERE idx = 8; UPDATE log_entries SET idx = 8 WHERE idx = -1;",
    );
    assert_eq!(code, 77);
    assert!(said.contains("entry 2"), "{said}");
    let (code, said) = verify_after("DELETE FROM log_entries WHERE idx >= 7;");
    assert_eq!(code, 77);
    assert!(
        said.contains("removed") || said.contains("only 7"),
        "{said}"
    );
    let (code, _) = verify_after("");
    assert_eq!(code, 0);
}

#[test]
fn only_notes_are_appended_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for bad in [
        r#"{"type":"decision","decision":"permit"}"#,
        r#"{"text":"untyped"}"#,
        "[1]",
        "{",
        r#"{"type":"note","type":"note"}"#,
    ] {
        let out = log_cmd(&data, &["append", "-", "--json"], Some(bad));
        assert_eq!(status(&out), 64, "{bad}");
    }
    // Nothing was created by refused appends.
    assert_eq!(status(&log_cmd(&data, &["checkpoint"], None)), 64);
    append_notes(&data, 1);
    assert_eq!(status(&log_cmd(&data, &["get", "--index", "1"], None)), 64);
    let tail = log_cmd(&data, &["tail", "--json"], None);
    assert_eq!(stdout_json(&tail)["index"], 0);
    // The checkpoint key is the log's own, private, and not the writ-signing key.
    let key = data.join("log-checkpoint.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("PRIVATE+KEY+"));
}

#[test]
fn a_crash_between_key_and_database_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let init = log_cmd(
        &data,
        &["init", "--origin", "writ.test/crash", "--json"],
        None,
    );
    assert_eq!(status(&init), 0);
    let vkey = stdout_json(&init)["vkey"].as_str().unwrap().to_string();
    // As if the process died after writing the key and before creating the log.
    for file in ["writ.db", "writ.db-wal", "writ.db-shm"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    append_notes(&data, 1);
    let out = log_cmd(&data, &["vkey"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), vkey);
    // A second init never replaces the origin or the key.
    let again = log_cmd(&data, &["init", "--origin", "writ.test/other"], None);
    assert_eq!(status(&again), 64);
}

/// `tail -n N` prints N entries however many pages that takes.
#[test]
fn tail_prints_every_entry_asked_for_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let log = writ_store::SqliteLog::create(
        &dir.path().join("writ.db"),
        "writ.test/log",
        writ_log::NoteSigner::from_seed("writ.test/log", &[8; 32]).unwrap(),
    )
    .unwrap();
    for i in 0..2100u64 {
        log.append(format!(r#"{{"n":{i},"type":"note"}}"#).into_bytes())
            .unwrap();
    }
    drop(log);
    let out = log_cmd(dir.path(), &["tail", "-n", "2050", "--json"], None);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let indexes: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indexes, (50..2100).collect::<Vec<u64>>());
}
