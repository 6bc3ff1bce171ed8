//! The PostgreSQL transparency log shared by several nodes: one gap-free sequence whoever
//! appends, a tree that verifies, checkpoints signed by the log key, consumptions spent once
//! across nodes, and batches that fail without leaving a gap.
//!
//! Each node is its own [`PgDatabase`] (own runtime, own pool) on a fresh schema of the
//! server named by `WRIT_TEST_DATABASE_URL`; without it every test says it was skipped.
//! `pg_log_append_throughput` prints entries/s for one and two writers (`--nocapture`).

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use writ_core::{Consumed, Jti};
use writ_log::{leaf_hash, Checkpoint, NoteSigner};
use writ_store::postgres::{scratch_url, PgLog, PgRevocations};
use writ_store::{PgDatabase, RevocationStore, StoreError};

use crate::consumption::{consume, entry_for, job};

const ENV_DATABASE_URL: &str = "WRIT_TEST_DATABASE_URL";
const ORIGIN: &str = "writ.test/pg-log";

/// A fresh schema and its URL, or `None` (after saying so) when no server is configured.
fn scratch(test: &str) -> Option<String> {
    match std::env::var(ENV_DATABASE_URL) {
        Ok(base) if !base.is_empty() => Some(scratch_url(&base).unwrap()),
        _ => {
            println!("{test}: skipped: {ENV_DATABASE_URL} is not set");
            None
        }
    }
}

/// `n` nodes on one fresh schema.
fn nodes(url: &str, n: usize) -> Vec<Arc<PgDatabase>> {
    (0..n).map(|_| PgDatabase::connect(url).unwrap()).collect()
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[9; 32]).unwrap()
}

fn entry(n: u64) -> Vec<u8> {
    format!(r#"{{"n":{n},"type":"note"}}"#).into_bytes()
}

fn latest(log: &PgLog) -> Checkpoint {
    Checkpoint::open(
        log.latest_checkpoint().unwrap().as_bytes(),
        &[log.verifier().clone()],
    )
    .unwrap()
}

/// Every entry's inclusion proof against the latest signed checkpoint, and consistency proofs
/// between the `kept` checkpoints (any order) and the latest, each root the signed one.
fn verify_tree(log: &PgLog, kept: &[Checkpoint]) -> Checkpoint {
    let head = latest(log);
    assert_eq!(head.size, log.size().unwrap());
    let entries = log.entries(0, head.size).unwrap();
    assert_eq!(entries.len() as u64, head.size);
    for (i, data) in entries {
        let proof = log.prove_inclusion(i, None).unwrap();
        proof.verify().unwrap();
        assert_eq!(proof.leaf_hash, leaf_hash(&data));
        assert_eq!((proof.tree_size, proof.root_hash), (head.size, head.root));
    }
    let mut chain: Vec<&Checkpoint> = kept.iter().chain([&head]).collect();
    chain.sort_by_key(|c| c.size);
    // A consistency proof is defined from a non-empty tree on.
    chain.retain(|c| c.size > 0);
    for pair in chain.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let proof = log.prove_consistency(old.size, Some(new.size)).unwrap();
        proof.verify().unwrap();
        assert_eq!((proof.root1, proof.root2), (old.root, new.root));
    }
    // Every stored checkpoint verifies under the log key and matches the recomputed tree.
    let audit = log.audit(kept.first()).unwrap();
    assert_eq!(audit.finding, None, "{audit:?}");
    assert_eq!((audit.size, audit.root), (head.size, head.root));
    head
}

#[test]
fn pg_log_appends_are_gap_free_from_zero_under_a_fixed_origin_and_key() {
    let Some(url) = scratch("pg_log_appends_are_gap_free_from_zero_under_a_fixed_origin_and_key")
    else {
        return;
    };
    let db = nodes(&url, 1).remove(0);
    assert!(matches!(PgLog::open(db.clone()), Err(StoreError::NoLog)));
    assert!(matches!(
        PgLog::open_writer(db.clone(), signer()),
        Err(StoreError::NoLog)
    ));
    let log = PgLog::create(db.clone(), ORIGIN, signer()).unwrap();
    let empty = latest(&log);
    assert_eq!((empty.origin.as_str(), empty.size), (ORIGIN, 0));
    for i in 0..50 {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    assert_eq!(log.size().unwrap(), 50);
    assert_eq!(log.entry(7).unwrap(), entry(7));
    assert!(matches!(
        log.entry(50),
        Err(StoreError::OutOfRange {
            index: 50,
            size: 50
        })
    ));
    assert_eq!(
        log.entries(48, 10).unwrap(),
        vec![(48, entry(48)), (49, entry(49))]
    );
    assert!(matches!(
        log.append(b"{ \"type\": \"note\" }".to_vec()),
        Err(StoreError::InvalidEntry)
    ));
    assert!(matches!(
        log.prove_inclusion(0, Some(51)),
        Err(StoreError::OutOfRange { .. })
    ));
    verify_tree(&log, &[empty]);

    // Origin and key are fixed at creation.
    assert!(matches!(
        PgLog::create(db.clone(), ORIGIN, signer()),
        Err(StoreError::LogExists(_))
    ));
    assert!(matches!(
        PgLog::open_or_create(db.clone(), "writ.test/other", signer()),
        Err(StoreError::LogExists(o)) if o == ORIGIN
    ));
    let other = NoteSigner::from_seed(ORIGIN, &[10; 32]).unwrap();
    assert!(matches!(
        PgLog::open_or_create(db.clone(), ORIGIN, other),
        Err(StoreError::KeyMismatch { .. })
    ));
    let other = NoteSigner::from_seed(ORIGIN, &[10; 32]).unwrap();
    assert!(matches!(
        PgLog::open_writer(db.clone(), other),
        Err(StoreError::KeyMismatch { .. })
    ));
    // Reopened, the sequence goes on; a reader cannot append.
    drop(log);
    let log = PgLog::open_or_create(db.clone(), ORIGIN, signer()).unwrap();
    assert_eq!(log.append(entry(50)).unwrap(), 50);
    let reader = PgLog::open(db).unwrap();
    assert_eq!(reader.size().unwrap(), 51);
    assert!(matches!(
        reader.append(entry(0)),
        Err(StoreError::Writer(_))
    ));
}

#[test]
fn pg_log_nodes_starting_together_create_one_log() {
    let Some(url) = scratch("pg_log_nodes_starting_together_create_one_log") else {
        return;
    };
    let dbs = nodes(&url, 4);
    let barrier = Arc::new(Barrier::new(dbs.len()));
    let logs: Vec<PgLog> = dbs
        .into_iter()
        .map(|db| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                PgLog::open_or_create(db, ORIGIN, signer()).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log.append(entry(i as u64)).unwrap(), i as u64);
    }
    let audit = logs[0].audit(None).unwrap();
    assert_eq!(audit.finding, None);
    // One signed empty tree, then one checkpoint per append.
    assert_eq!((audit.size, audit.checkpoints), (4, 5));
}

/// `threads` clients of each of `logs` appending `per_thread` entries each, at once; every
/// entry's index, and checkpoints sampled while they run.
fn append_from_all(
    logs: &[Arc<PgLog>],
    threads: usize,
    per_thread: u64,
) -> (BTreeMap<u64, u64>, Vec<Checkpoint>, Duration) {
    let start = Arc::new(Barrier::new(logs.len() * threads + 1));
    let mut handles = Vec::new();
    for (w, log) in logs.iter().enumerate() {
        for t in 0..threads {
            let (log, start) = (log.clone(), start.clone());
            handles.push(thread::spawn(move || {
                start.wait();
                (0..per_thread)
                    .map(|i| {
                        let n = ((w * 1000 + t) as u64) * 1_000_000 + i;
                        (log.append(entry(n)).unwrap(), n)
                    })
                    .collect::<Vec<_>>()
            }));
        }
    }
    let sampler = {
        let logs = logs.to_vec();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let handle = thread::spawn(move || {
            let mut kept = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Each node's view in turn: all are checkpoints of one log.
                kept.push(latest(&logs[i % logs.len()]));
                i += 1;
                thread::sleep(Duration::from_millis(20));
            }
            kept
        });
        (done, handle)
    };
    start.wait();
    let began = Instant::now();
    let mut indexes = BTreeMap::new();
    for h in handles {
        for (index, n) in h.join().unwrap() {
            assert!(indexes.insert(index, n).is_none(), "index {index} twice");
        }
    }
    let elapsed = began.elapsed();
    sampler.0.store(true, std::sync::atomic::Ordering::Relaxed);
    (indexes, sampler.1.join().unwrap(), elapsed)
}

#[test]
fn pg_log_two_writers_share_one_gap_free_sequence_that_verifies() {
    let Some(url) = scratch("pg_log_two_writers_share_one_gap_free_sequence_that_verifies") else {
        return;
    };
    let logs: Vec<Arc<PgLog>> = nodes(&url, 2)
        .into_iter()
        .map(|db| Arc::new(PgLog::open_or_create(db, ORIGIN, signer()).unwrap()))
        .collect();
    let (threads, per_thread) = (8, 40);
    let (indexes, kept, _) = append_from_all(&logs, threads, per_thread);
    let total = 2 * threads as u64 * per_thread;
    // Every index exactly once, none missing, each holding what its caller appended.
    assert_eq!(
        indexes.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    for (index, data) in logs[1].entries(0, total).unwrap() {
        assert_eq!(data, entry(indexes[&index]));
    }
    assert!(kept.len() >= 2, "{} checkpoints sampled", kept.len());
    for log in &logs {
        verify_tree(log, &kept);
    }
    // The batches of both nodes are in one chain of signed checkpoints.
    let audit = logs[0].audit(None).unwrap();
    assert!(audit.checkpoints > 2, "{audit:?}");
}

#[test]
fn pg_log_racing_consumptions_of_a_single_use_writ_spend_it_once() {
    let Some(url) = scratch("pg_log_racing_consumptions_of_a_single_use_writ_spend_it_once") else {
        return;
    };
    let logs: Vec<Arc<PgLog>> = nodes(&url, 2)
        .into_iter()
        .map(|db| Arc::new(PgLog::open_or_create(db, ORIGIN, signer()).unwrap()))
        .collect();
    let (rounds, racers) = (20u8, 8usize);
    for round in 0..rounds {
        let jti = Jti::from_bytes([round; 16]);
        let barrier = Arc::new(Barrier::new(racers));
        let outcomes: Vec<(Consumed, u64)> = (0..racers)
            .map(|r| {
                let (log, barrier) = (logs[r % 2].clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    consume(&*log, job(jti, entry_for)).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let fresh = outcomes
            .iter()
            .filter(|(c, _)| matches!(c, Consumed::Fresh { remaining: 0 }))
            .count();
        assert_eq!(fresh, 1, "round {round}: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|(c, _)| matches!(c, Consumed::Fresh { .. } | Consumed::Exhausted)));
        for (c, index) in outcomes {
            assert_eq!(logs[0].entry(index).unwrap(), entry_for(c));
        }
    }
    let total = u64::from(rounds) * racers as u64;
    assert_eq!(logs[1].size().unwrap(), total);
    verify_tree(&logs[1], &[]);
}

#[test]
fn pg_log_consumption_honours_revocations_and_rolls_back_failed_jobs() {
    let Some(url) = scratch("pg_log_consumption_honours_revocations_and_rolls_back_failed_jobs")
    else {
        return;
    };
    let dbs = nodes(&url, 2);
    let log = PgLog::open_or_create(dbs[0].clone(), ORIGIN, signer()).unwrap();
    // Revocations committed at the other node.
    let revocations = PgRevocations::new(dbs[1].clone());

    // An entry that is not canonical fails the job: nothing spent, no index taken.
    let jti = Jti::from_bytes([1; 16]);
    let failed = consume(
        &log,
        job(jti, |_| b"{ \"type\": \"consumption\" }".to_vec()),
    );
    assert!(
        matches!(failed, Err(StoreError::InvalidEntry)),
        "{failed:?}"
    );
    assert_eq!(log.size().unwrap(), 0);
    assert_eq!(
        consume(&log, job(jti, entry_for)).unwrap(),
        (Consumed::Fresh { remaining: 0 }, 0)
    );

    let revoked = Jti::from_bytes([2; 16]);
    revocations.revoke_writ(&revoked).unwrap();
    let (outcome, index) = consume(&log, job(revoked, entry_for)).unwrap();
    assert_eq!((outcome, index), (Consumed::Revoked, 1));
    assert_eq!(log.entry(1).unwrap(), entry_for(Consumed::Revoked));

    // A revoked ancestor and a revoked principal hold too.
    let child = Jti::from_bytes([3; 16]);
    let mut under_revoked = job(child, entry_for);
    under_revoked.ancestors = vec![revoked];
    assert_eq!(consume(&log, under_revoked).unwrap().0, Consumed::Revoked);
    revocations.revoke_principal("gate").unwrap();
    let (outcome, _) = consume(&log, job(Jti::from_bytes([4; 16]), entry_for)).unwrap();
    assert_eq!(outcome, Consumed::Revoked);
    assert_eq!(log.size().unwrap(), 4);
    verify_tree(&log, &[]);
}

#[test]
fn pg_log_consumptions_and_appends_share_batches_without_gaps() {
    let Some(url) = scratch("pg_log_consumptions_and_appends_share_batches_without_gaps") else {
        return;
    };
    let logs: Vec<Arc<PgLog>> = nodes(&url, 2)
        .into_iter()
        .map(|db| Arc::new(PgLog::open_or_create(db, ORIGIN, signer()).unwrap()))
        .collect();
    // Queued all at once, so batches are full: more consumptions than one batch takes, with
    // appends and failing jobs between them, from both nodes.
    let (tx, rx) = mpsc::channel();
    let mut expected_ok = 0u64;
    for i in 0..300u64 {
        let log = &logs[(i % 2) as usize];
        let tx = tx.clone();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&i.to_be_bytes());
        match i % 3 {
            0 => {
                log.append_then(
                    entry(i),
                    Box::new(move |r| tx.send((i, r.map(|index| (None, index)))).unwrap()),
                )
                .unwrap();
                expected_ok += 1;
            }
            1 => {
                log.consume_then(
                    job(Jti::from_bytes(id), entry_for),
                    Box::new(move |r| tx.send((i, r.map(|(c, index)| (Some(c), index)))).unwrap()),
                )
                .unwrap();
                expected_ok += 1;
            }
            _ => {
                // Fails alone: its mark rolls back, it takes no index, the batch goes on.
                log.consume_then(
                    job(Jti::from_bytes(id), |_| Vec::new()),
                    Box::new(move |r| tx.send((i, r.map(|(c, index)| (Some(c), index)))).unwrap()),
                )
                .unwrap();
            }
        }
    }
    drop(tx);
    let mut indexes = Vec::new();
    for (i, result) in rx {
        match (i % 3, result) {
            (0, Ok((None, index))) => indexes.push(index),
            (1, Ok((Some(Consumed::Fresh { remaining: 0 }), index))) => indexes.push(index),
            (2, Err(StoreError::InvalidEntry)) => {}
            other => panic!("request {i}: {other:?}"),
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..expected_ok).collect::<Vec<_>>());
    verify_tree(&logs[0], &[]);
}

/// A connection of the test's own, outside any node, to hold the log's lock.
struct Session {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Session {
    fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
        });
        Self { runtime, client }
    }

    fn execute(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) {
        self.runtime
            .block_on(self.client.execute(sql, params))
            .unwrap();
    }

    fn count(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(self.client.query_one(sql, &[]))
            .unwrap()
            .get(0)
    }

    /// The backends waiting for advisory lock `key`.
    fn waiting_for(&self, key: i64) -> Vec<i32> {
        let (high, low) = ((key >> 32) & 0xffff_ffff, key & 0xffff_ffff);
        self.runtime
            .block_on(self.client.query(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                 AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 1",
                &[&high, &low],
            ))
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

#[test]
fn pg_log_a_batch_cut_off_mid_transaction_leaves_no_gap() {
    let Some(url) = scratch("pg_log_a_batch_cut_off_mid_transaction_leaves_no_gap") else {
        return;
    };
    let db = nodes(&url, 1).remove(0);
    let log = PgLog::open_or_create(db, ORIGIN, signer()).unwrap();
    for i in 0..3 {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    // Another "node" holds the sequencer lock; the writer's batch waits for it inside its
    // transaction, and its connection is then cut, as when a node dies mid-batch.
    let other = Session::connect(&url);
    other.execute("BEGIN", &[]);
    other.execute("SELECT pg_advisory_xact_lock($1)", &[&log.lock_key()]);
    let (tx, rx) = mpsc::sync_channel(4);
    for i in 100..103 {
        let tx = tx.clone();
        log.append_then(
            entry(i),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )
        .unwrap();
    }
    let began = Instant::now();
    let writer = loop {
        if let Some(pid) = other.waiting_for(log.lock_key()).pop() {
            break pid;
        }
        assert!(
            began.elapsed() < Duration::from_secs(4),
            "writer never waited"
        );
        thread::sleep(Duration::from_millis(10));
    };
    other.execute("SELECT pg_terminate_backend($1)", &[&writer]);
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(first, Err(StoreError::Postgres(_))), "{first:?}");
    other.execute("ROLLBACK", &[]);
    // Whatever of the three was not in the cut batch went on after it, from index 3.
    let mut acked: Vec<u64> = (0..2)
        .filter_map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().ok())
        .collect();
    // The writer recovers by itself: the next append takes the next index.
    let next = log.append(entry(3)).unwrap();
    acked.sort_unstable();
    assert_eq!(acked, (3..next).collect::<Vec<_>>());
    assert_eq!(log.size().unwrap(), next + 1);
    verify_tree(&log, &[]);
}

/// The batch's inserts and its COMMIT go out together, and PostgreSQL answers the COMMIT of a
/// failed transaction with a rollback, not an error: the batch must still fail, and leave no
/// entry, subtree hash or checkpoint behind.
#[test]
fn pg_log_a_batch_whose_insert_fails_leaves_nothing_and_acknowledges_nothing() {
    let Some(url) =
        scratch("pg_log_a_batch_whose_insert_fails_leaves_nothing_and_acknowledges_nothing")
    else {
        return;
    };
    let db = nodes(&url, 1).remove(0);
    let log = PgLog::open_or_create(db, ORIGIN, signer()).unwrap();
    for i in 0..3 {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    let before = log.latest_checkpoint().unwrap();
    let other = Session::connect(&url);
    let nodes_before = other.count("SELECT count(*) FROM log_nodes");
    // The checkpoint of size 4 is already taken: the next batch's last insert fails after its
    // entry and subtree hashes went in.
    other.execute(
        "INSERT INTO log_checkpoints (size, note) VALUES (4, 'planted')",
        &[],
    );
    let failed = log.append(entry(3));
    assert!(matches!(failed, Err(StoreError::Postgres(_))), "{failed:?}");
    assert_eq!(log.size().unwrap(), 3);
    assert_eq!(other.count("SELECT count(*) FROM log_entries"), 3);
    assert_eq!(other.count("SELECT count(*) FROM log_nodes"), nodes_before);
    other.execute("DELETE FROM log_checkpoints WHERE size = 4", &[]);
    assert_eq!(log.latest_checkpoint().unwrap(), before);
    // The writer goes on from the same index.
    assert_eq!(log.append(entry(3)).unwrap(), 3);
    verify_tree(&log, &[]);
}

#[test]
fn pg_log_audit_names_an_altered_entry() {
    let Some(url) = scratch("pg_log_audit_names_an_altered_entry") else {
        return;
    };
    let db = nodes(&url, 1).remove(0);
    let log = PgLog::open_or_create(db, ORIGIN, signer()).unwrap();
    for i in 0..10 {
        log.append(entry(i)).unwrap();
    }
    let kept = latest(&log);
    assert_eq!(log.audit(Some(&kept)).unwrap().finding, None);
    let other = Session::connect(&url);
    other.execute(
        "UPDATE log_entries SET data = $1 WHERE idx = 4",
        &[&entry(40)],
    );
    let audit = log.audit(Some(&kept)).unwrap();
    assert_eq!(
        audit.finding,
        Some(writ_store::AuditFinding::EntryAltered(4)),
        "{audit:?}"
    );
    other.execute("DELETE FROM log_entries WHERE idx = 9", &[]);
    other.execute(
        "UPDATE log_entries SET data = $1 WHERE idx = 4",
        &[&entry(4)],
    );
    let audit = log.audit(None).unwrap();
    assert!(
        matches!(
            audit.finding,
            Some(writ_store::AuditFinding::Truncated {
                checkpoint_size: 10,
                entries: 9
            })
        ),
        "{audit:?}"
    );
}

/// Appends/s through one writer and through two writers on one database, with the same
/// clients (threads appending in a loop) spread over the writers; printed for `--nocapture`.
/// Run it alone for figures: other tests share the server and the cores.
#[test]
fn pg_log_append_throughput() {
    const ENTRIES: usize = 6400;
    for clients in [32usize, 128] {
        for writers in [1usize, 2] {
            let Some(url) = scratch("pg_log_append_throughput") else {
                return;
            };
            let logs: Vec<Arc<PgLog>> = nodes(&url, writers)
                .into_iter()
                .map(|db| Arc::new(PgLog::open_or_create(db, ORIGIN, signer()).unwrap()))
                .collect();
            let per_client = (ENTRIES / clients) as u64;
            let (indexes, _, elapsed) = append_from_all(&logs, clients / writers, per_client);
            let total = indexes.len() as u64;
            assert_eq!(indexes.keys().last(), Some(&(total - 1)));
            let batches = logs[0].audit(None).unwrap().checkpoints - 1;
            println!(
                "pg_log_append_throughput: {writers} writer(s), {clients} clients: {total} \
                 entries in {:.2} s = {:.0} entries/s, {batches} batches ({:.1} entries/batch)",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64(),
                total as f64 / batches as f64,
            );
        }
    }
}

/// Consumptions/s (each a fresh single-use id, with its entry) through one and two writers,
/// 32 clients in all; printed for `--nocapture`.
#[test]
fn pg_log_consume_throughput() {
    const CLIENTS: usize = 32;
    const PER_CLIENT: u64 = 60;
    for writers in [1usize, 2] {
        let Some(url) = scratch("pg_log_consume_throughput") else {
            return;
        };
        let logs: Vec<Arc<PgLog>> = nodes(&url, writers)
            .into_iter()
            .map(|db| Arc::new(PgLog::open_or_create(db, ORIGIN, signer()).unwrap()))
            .collect();
        let start = Arc::new(Barrier::new(CLIENTS + 1));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (log, start) = (logs[c % writers].clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..PER_CLIENT {
                        let mut id = [0u8; 16];
                        id[..8].copy_from_slice(&(c as u64).to_be_bytes());
                        id[8..].copy_from_slice(&i.to_be_bytes());
                        let (c, _) = consume(&*log, job(Jti::from_bytes(id), entry_for)).unwrap();
                        assert_eq!(c, Consumed::Fresh { remaining: 0 });
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        let elapsed = began.elapsed();
        let total = CLIENTS as u64 * PER_CLIENT;
        assert_eq!(logs[0].size().unwrap(), total);
        let batches = logs[0].audit(None).unwrap().checkpoints - 1;
        println!(
            "pg_log_consume_throughput: {writers} writer(s), {CLIENTS} clients: {total} \
             consumptions in {:.2} s = {:.0}/s, {batches} batches ({:.1} per batch)",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            total as f64 / batches as f64,
        );
    }
}
