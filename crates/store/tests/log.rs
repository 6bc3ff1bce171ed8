//! The SQLite transparency log: group commit, durability, proofs against signed checkpoints,
//! and audits that name what was tampered with.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection};
use writ_log::{Checkpoint, NoteSigner, Proof};
use writ_store::{AuditFinding, SqliteLog, StoreError};

const ORIGIN: &str = "writ.test/log";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[5; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    format!(r#"{{"n":{i},"type":"note"}}"#).into_bytes()
}

fn filled(path: &Path, n: u64) -> SqliteLog {
    let log = SqliteLog::create(path, ORIGIN, signer()).unwrap();
    for i in 0..n {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    log
}

fn latest(log: &SqliteLog) -> Checkpoint {
    Checkpoint::open(
        log.latest_checkpoint().unwrap().as_bytes(),
        &[log.verifier().clone()],
    )
    .unwrap()
}

#[test]
fn create_once_with_a_fixed_origin_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    let log = SqliteLog::create(&path, ORIGIN, signer()).unwrap();
    let empty = latest(&log);
    assert_eq!((empty.origin.as_str(), empty.size), (ORIGIN, 0));
    drop(log);
    assert!(matches!(
        SqliteLog::create(&path, "other", signer()),
        Err(StoreError::LogExists(_))
    ));
    let other = NoteSigner::from_seed(ORIGIN, &[6; 32]).unwrap();
    assert!(matches!(
        SqliteLog::open_writer(&path, other),
        Err(StoreError::KeyMismatch { .. })
    ));
    assert!(matches!(
        SqliteLog::open(&dir.path().join("none.db")),
        Err(StoreError::NoLog)
    ));
    let reader = SqliteLog::open(&path).unwrap();
    assert!(matches!(
        reader.append(entry(0)),
        Err(StoreError::Writer(_))
    ));
}

#[test]
fn concurrent_appends_get_distinct_gap_free_indexes_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    let log = Arc::new(SqliteLog::create(&path, ORIGIN, signer()).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..25u64)
                    .map(|i| (log.append(entry(t * 100 + i)).unwrap(), t * 100 + i))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, u64)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    acked.sort();
    assert_eq!(
        acked.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
    // Fewer checkpoints than appends: callers shared transactions.
    let checkpoints: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM log_checkpoints", [], |r| r.get(0))
        .unwrap();
    assert!(checkpoints <= 201);
    drop(log);

    let log = SqliteLog::open(&path).unwrap();
    assert_eq!(log.size().unwrap(), 200);
    for (index, n) in acked {
        assert_eq!(log.entry(index).unwrap(), entry(n));
    }
    let audit = log.audit(None).unwrap();
    assert_eq!(audit.finding, None, "{audit:?}");
    assert_eq!(audit.size, 200);
    assert_eq!(audit.root, latest(&log).root);
}

#[test]
fn proofs_verify_against_signed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    let log = filled(&path, 37);
    let old = latest(&log);
    for i in 37..70 {
        log.append(entry(i)).unwrap();
    }
    let now = latest(&log);
    for index in [0, 1, 17, 36, 69] {
        let proof = log.prove_inclusion(index, None).unwrap();
        assert_eq!(proof.root_hash, now.root);
        assert_eq!(
            proof.leaf_hash,
            writ_log::leaf_hash(&log.entry(index).unwrap())
        );
        Proof::Inclusion(proof).verify().unwrap();
    }
    let at_old = log.prove_inclusion(5, Some(37)).unwrap();
    assert_eq!(at_old.root_hash, old.root);
    let consistency = log.prove_consistency(37, None).unwrap();
    assert_eq!((consistency.root1, consistency.root2), (old.root, now.root));
    Proof::Consistency(consistency).verify().unwrap();
    assert!(log.prove_inclusion(70, None).is_err());
    assert!(log.prove_consistency(71, None).is_err());
    assert!(log.prove_consistency(0, None).is_err());
}

/// Runs `tamper` on the raw database of a 40-entry log, then audits it against a checkpoint
/// kept before.
fn audit_after(tamper: impl FnOnce(&Connection)) -> Option<AuditFinding> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    let log = filled(&path, 40);
    let kept = latest(&log);
    drop(log);
    tamper(&Connection::open(&path).unwrap());
    let log = SqliteLog::open(&path).unwrap();
    log.audit(Some(&kept)).unwrap().finding
}

#[test]
fn audits_name_what_was_tampered_with() {
    assert_eq!(audit_after(|_| {}), None);
    // One byte of a stored entry.
    let changed = audit_after(|c| {
        c.execute(
            "UPDATE log_entries SET data = ?1 WHERE idx = 13",
            params![entry(1013)],
        )
        .unwrap();
    });
    assert_eq!(changed, Some(AuditFinding::EntryAltered(13)));
    // One entry deleted.
    let deleted = audit_after(|c| {
        c.execute("DELETE FROM log_entries WHERE idx = 7", [])
            .unwrap();
    });
    assert_eq!(deleted, Some(AuditFinding::MissingEntry(7)));
    // Two entries swapped.
    let swapped = audit_after(|c| {
        c.execute("UPDATE log_entries SET idx = -1 WHERE idx = 3", [])
            .unwrap();
        c.execute("UPDATE log_entries SET idx = 3 WHERE idx = 9", [])
            .unwrap();
        c.execute("UPDATE log_entries SET idx = 9 WHERE idx = -1", [])
            .unwrap();
    });
    assert_eq!(swapped, Some(AuditFinding::EntryAltered(3)));
    // A stored interior hash.
    let node = audit_after(|c| {
        c.execute(
            "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1",
            [],
        )
        .unwrap();
    });
    assert_eq!(node, Some(AuditFinding::NodeAltered { level: 2, index: 1 }));
}

#[test]
fn truncation_and_rewrites_fail_against_a_kept_checkpoint() {
    // Truncate to 30 and re-append 10 different entries with the real key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    let log = filled(&path, 40);
    let kept = latest(&log);
    drop(log);
    {
        let c = Connection::open(&path).unwrap();
        c.execute("DELETE FROM log_entries WHERE idx >= 30", [])
            .unwrap();
        c.execute("DELETE FROM log_nodes WHERE (idx + 1) << level > 30", [])
            .unwrap();
        c.execute("DELETE FROM log_checkpoints WHERE size > 30", [])
            .unwrap();
    }
    let log = SqliteLog::open_writer(&path, signer()).unwrap();
    for i in 0..10 {
        log.append(entry(5000 + i)).unwrap();
    }
    let self_check = log.audit(None).unwrap();
    assert_eq!(
        self_check.finding, None,
        "the rewritten log is consistent with itself"
    );
    assert!(matches!(
        log.audit(Some(&kept)).unwrap().finding,
        Some(AuditFinding::Inconsistent { size: 40, .. })
    ));
    drop(log);

    // Truncation alone, with the stored checkpoints left: the log names the removed range.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    drop(filled(&path, 40));
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM log_entries WHERE idx >= 35", [])
        .unwrap();
    let log = SqliteLog::open(&path).unwrap();
    assert_eq!(
        log.audit(None).unwrap().finding,
        Some(AuditFinding::Truncated {
            checkpoint_size: 40,
            entries: 35
        })
    );

    // The whole log rewritten and re-signed with the same key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writ.db");
    drop(filled(&path, 40));
    std::fs::remove_file(&path).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    let forged = SqliteLog::create(&path, ORIGIN, signer()).unwrap();
    for i in 0..45 {
        forged.append(entry(if i == 20 { 999 } else { i })).unwrap();
    }
    assert_eq!(forged.audit(None).unwrap().finding, None);
    assert!(matches!(
        forged.audit(Some(&kept)).unwrap().finding,
        Some(AuditFinding::Inconsistent { size: 40, .. })
    ));
}
