//! What the SQLite transparency log costs.
//!
//! * `append/{1,8,64}/log`: durable appends per second into [`SqliteLog`] (a file in a temp
//!   dir) from 1, 8 and 64 threads appending in a loop.
//! * `append/{1,8,64}/raw`: the baseline. The same entry bytes, from the same number of
//!   threads, into a plain table `(idx INTEGER PRIMARY KEY, data BLOB)` in its own file with
//!   the same settings (WAL, `synchronous=FULL`, the same busy timeout) and the same batching:
//!   one writer thread takes everything queued (up to 4096) into one `BEGIN IMMEDIATE`
//!   transaction, reads the size as the log does, and answers callers after the commit.
//!   What the log adds on top: the leaf and subtree hashes, their rows, and one signed
//!   checkpoint per batch.
//! * `proof/inclusion_1m`, `proof/consistency_1m`: `prove_inclusion(random index, None)` and
//!   `prove_consistency(random size1, None)` on a log of 1,000,000 entries. The log is built
//!   once through `append` by many threads and cached in `CARGO_TARGET_TMPDIR`
//!   (`target/tmp/writ-store-bench/`); set `WRIT_BENCH_REBUILD=1` to build it again.
//! * `proof/read_tx_size`, `proof/node_query`: where a proof's time goes. The first is
//!   `size()`, one read transaction with one query, as every proof opens; the second is one
//!   stored-hash lookup by `(level, idx)` at a random level and index, on a plain connection
//!   to the same file; a proof makes one per node it needs (the run prints how many, on
//!   average, and what each cost inside a proof, where they share pages).
//!
//! Goals: log ≥ 50% of raw appends/s at each concurrency; each proof under 100 µs. After
//! criterion's report the run prints a summary table and one JSON line, from the median of
//! criterion's samples.
//!
//! Run: `cargo bench -p writ-store --bench log` (add a criterion filter such as `append` or
//! `proof` to run a part).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use writ_log::{consistency_plan, inclusion_plan, Checkpoint, CompactRange, NoteSigner, Proof};
use writ_store::SqliteLog;

const ORIGIN: &str = "writ.bench/log";
const CONCURRENCY: [usize; 3] = [1, 8, 64];
/// Entries of the log the proofs run on.
const PROOF_LOG_SIZE: u64 = 1_000_000;
/// Threads that build it: each append waits for its batch, so batches are this large.
const BUILD_THREADS: usize = 512;
/// The raw writer's largest batch, as the log's.
const MAX_BATCH: usize = 4096;
/// Measured samples per append benchmark (each is a whole run of `iters` appends).
const APPEND_SAMPLES: usize = 10;
/// Measured samples per proof benchmark.
const PROOF_SAMPLES: usize = 100;

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[7; 32]).expect("bench key")
}

/// A canonical `note` entry of about 200 bytes, distinct per `seq`.
fn entry(seq: u64, thread: usize) -> Vec<u8> {
    format!(
        r#"{{"seq":{seq},"text":"deploy window opened by the on-call administrator for the payments service; change ticket OPS-4711, approved in the weekly review","thread":{thread},"type":"note"}}"#
    )
    .into_bytes()
}

/// A small entry, for building the large log quickly.
fn small_entry(seq: u64) -> Vec<u8> {
    format!(r#"{{"seq":{seq},"type":"note"}}"#).into_bytes()
}

/// SplitMix64: reproducible random indexes without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What the append benchmark drives.
trait Appender: Sync {
    fn append(&self, entry: Vec<u8>) -> u64;
}

impl Appender for SqliteLog {
    fn append(&self, entry: Vec<u8>) -> u64 {
        SqliteLog::append(self, entry).expect("log append")
    }
}

/// The baseline: a plain table behind the same group-commit writer as the log's.
struct RawLog {
    queue: Mutex<Option<Sender<RawRequest>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct RawRequest {
    entry: Vec<u8>,
    reply: SyncSender<u64>,
}

impl RawLog {
    fn create(path: &Path) -> Self {
        let conn = Connection::open(path).expect("open raw db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("WAL");
        conn.pragma_update(None, "synchronous", "FULL")
            .expect("synchronous");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS raw_entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);",
        )
        .expect("raw schema");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || run_raw_writer(conn, rx));
        Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }
}

impl Appender for RawLog {
    fn append(&self, entry: Vec<u8>) -> u64 {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let queue = self.queue.lock().expect("raw queue");
            queue
                .as_ref()
                .expect("raw log open")
                .send(RawRequest { entry, reply })
                .expect("raw writer running");
        }
        answer.recv().expect("raw writer answered")
    }
}

impl Drop for RawLog {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
    }
}

fn run_raw_writer(mut conn: Connection, queue: Receiver<RawRequest>) {
    while let Ok(first) = queue.recv() {
        let mut batch = VecDeque::from([first]);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push_back(next),
                Err(_) => break,
            }
        }
        let first_index = raw_commit(&mut conn, &batch).expect("raw commit");
        for (i, request) in batch.into_iter().enumerate() {
            let _ = request.reply.send(first_index + i as u64);
        }
    }
}

fn raw_commit(conn: &mut Connection, batch: &VecDeque<RawRequest>) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let size: i64 = tx.query_row(
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM raw_entries",
        [],
        |r| r.get(0),
    )?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO raw_entries (idx, data) VALUES (?1, ?2)")?;
        for (i, request) in batch.iter().enumerate() {
            insert.execute(params![size + i as i64, request.entry])?;
        }
    }
    tx.commit()?;
    Ok(u64::try_from(size).unwrap_or(0))
}

/// `total` appends spread over `threads` threads; the time from when all threads are ready
/// until the last append returned.
fn run_appends(target: &dyn Appender, threads: usize, total: u64, seq: &AtomicU64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let start = std::thread::scope(|s| {
        for t in 0..threads {
            let n = total / threads as u64 + u64::from((t as u64) < total % threads as u64);
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..n {
                    let bytes = entry(seq.fetch_add(1, Ordering::Relaxed), t);
                    black_box(target.append(bytes));
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

/// The median of the last `measured` samples: criterion's warm-up calls come first.
fn median(samples: &[f64], measured: usize) -> Option<f64> {
    let mut s = samples[samples.len().saturating_sub(measured)..].to_vec();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

fn bench_appends(c: &mut Criterion, dir: &Path) -> Vec<(usize, Option<f64>, Option<f64>)> {
    let mut results = Vec::new();
    for threads in CONCURRENCY {
        let log = SqliteLog::create(&dir.join(format!("log-{threads}.db")), ORIGIN, signer())
            .expect("create log");
        let raw = RawLog::create(&dir.join(format!("raw-{threads}.db")));
        let log_rates = RefCell::new(Vec::new());
        let raw_rates = RefCell::new(Vec::new());
        let log_seq = AtomicU64::new(0);
        let raw_seq = AtomicU64::new(0);
        {
            let mut group = c.benchmark_group("append");
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(APPEND_SAMPLES)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(4))
                .throughput(Throughput::Elements(1));
            for (name, target, rates, seq) in [
                ("log", &log as &dyn Appender, &log_rates, &log_seq),
                ("raw", &raw as &dyn Appender, &raw_rates, &raw_seq),
            ] {
                group.bench_function(BenchmarkId::new(threads.to_string(), name), |b| {
                    b.iter_custom(|iters| {
                        let elapsed = run_appends(target, threads, iters, seq);
                        rates
                            .borrow_mut()
                            .push(iters as f64 / elapsed.as_secs_f64().max(1e-9));
                        elapsed
                    })
                });
            }
            group.finish();
        }
        results.push((
            threads,
            median(&log_rates.borrow(), APPEND_SAMPLES),
            median(&raw_rates.borrow(), APPEND_SAMPLES),
        ));
        drop(log);
        let audit_log = SqliteLog::open(&dir.join(format!("log-{threads}.db"))).expect("reopen");
        let audit = audit_log.audit(None).expect("audit");
        assert_eq!(audit.finding, None, "the benchmarked log verifies");
    }
    results
}

/// The 1,000,000-entry log, from the cache or built now.
fn proof_log(cache_dir: &Path) -> (PathBuf, Option<Duration>) {
    std::fs::create_dir_all(cache_dir).expect("cache dir");
    let path = cache_dir.join("log-1m.db");
    let rebuild = std::env::var_os("WRIT_BENCH_REBUILD").is_some();
    if !rebuild {
        if let Ok(log) = SqliteLog::open(&path) {
            if log.size().ok() == Some(PROOF_LOG_SIZE) && log.origin() == ORIGIN {
                return (path, None);
            }
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    eprintln!(
        "building a log of {PROOF_LOG_SIZE} entries at {} ({BUILD_THREADS} appending threads)…",
        path.display()
    );
    let started = Instant::now();
    let log = SqliteLog::create(&path, ORIGIN, signer()).expect("create 1M log");
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..BUILD_THREADS {
            s.spawn(|| loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= PROOF_LOG_SIZE {
                    break;
                }
                log.append(small_entry(seq)).expect("append");
            });
        }
    });
    drop(log);
    let built = started.elapsed();
    eprintln!("built in {:.1} s", built.as_secs_f64());
    (path, Some(built))
}

struct ProofResults {
    build: Option<Duration>,
    inclusion_ns: Option<f64>,
    consistency_ns: Option<f64>,
    read_tx_ns: Option<f64>,
    node_ns: Option<f64>,
    inclusion_reads: f64,
    consistency_reads: f64,
}

/// Per-iteration nanoseconds of each sample, for the summary.
fn record(samples: &RefCell<Vec<f64>>, iters: u64, elapsed: Duration) -> Duration {
    samples
        .borrow_mut()
        .push(elapsed.as_nanos() as f64 / iters.max(1) as f64);
    elapsed
}

fn bench_proofs(c: &mut Criterion, cache_dir: &Path) -> ProofResults {
    let (path, build) = proof_log(cache_dir);
    let log = SqliteLog::open(&path).expect("open 1M log");
    let n = log.size().expect("size");
    assert_eq!(n, PROOF_LOG_SIZE);
    let latest = Checkpoint::open(
        log.latest_checkpoint().expect("checkpoint").as_bytes(),
        &[log.verifier().clone()],
    )
    .expect("latest checkpoint verifies");

    // The proofs are right before they are timed.
    let mut rng = SplitMix64(42);
    for _ in 0..20 {
        let index = rng.next() % n;
        let proof = log.prove_inclusion(index, None).expect("inclusion");
        assert_eq!(proof.root_hash, latest.root);
        Proof::Inclusion(proof)
            .verify()
            .expect("inclusion verifies");
        let size1 = 1 + rng.next() % n;
        let proof = log.prove_consistency(size1, None).expect("consistency");
        assert_eq!(proof.root2, latest.root);
        Proof::Consistency(proof)
            .verify()
            .expect("consistency verifies");
    }

    // Stored hashes each proof reads: the plan's nodes, plus the right edge of every tree
    // size whose root it reports, plus the leaf hash for inclusion.
    let mut rng = SplitMix64(7);
    let rounds = 10_000u64;
    let (mut inclusion_reads, mut consistency_reads) = (0u64, 0u64);
    for _ in 0..rounds {
        let index = rng.next() % n;
        inclusion_reads += inclusion_plan(index, n).expect("plan").nodes().count() as u64
            + CompactRange::nodes_for(n).len() as u64
            + 1;
        let size1 = 1 + rng.next() % n;
        consistency_reads += consistency_plan(size1, n).expect("plan").nodes().count() as u64
            + CompactRange::nodes_for(size1).len() as u64
            + CompactRange::nodes_for(n).len() as u64;
    }

    let raw = Connection::open(&path).expect("raw connection");
    let inclusion = RefCell::new(Vec::new());
    let consistency = RefCell::new(Vec::new());
    let read_tx = RefCell::new(Vec::new());
    let node = RefCell::new(Vec::new());
    {
        let mut group = c.benchmark_group("proof");
        group
            .sample_size(PROOF_SAMPLES)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        let mut rng = SplitMix64(1);
        group.bench_function("inclusion_1m", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let index = rng.next() % n;
                    black_box(log.prove_inclusion(index, None).expect("inclusion"));
                }
                record(&inclusion, iters, start.elapsed())
            })
        });
        group.bench_function("consistency_1m", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let size1 = 1 + rng.next() % n;
                    black_box(log.prove_consistency(size1, None).expect("consistency"));
                }
                record(&consistency, iters, start.elapsed())
            })
        });
        group.bench_function("read_tx_size", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(log.size().expect("size"));
                }
                record(&read_tx, iters, start.elapsed())
            })
        });
        group.bench_function("node_query", |b| {
            let mut stmt = raw
                .prepare_cached("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")
                .expect("node query");
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let level = rng.next() % 20;
                    let index = rng.next() % (n >> level);
                    let hash: Option<Vec<u8>> = stmt
                        .query_row(params![level as i64, index as i64], |r| r.get(0))
                        .optional()
                        .expect("node");
                    assert!(hash.is_some());
                    black_box(hash);
                }
                record(&node, iters, start.elapsed())
            })
        });
        group.finish();
    }
    ProofResults {
        build,
        inclusion_ns: median(&inclusion.into_inner(), PROOF_SAMPLES),
        consistency_ns: median(&consistency.into_inner(), PROOF_SAMPLES),
        read_tx_ns: median(&read_tx.into_inner(), PROOF_SAMPLES),
        node_ns: median(&node.into_inner(), PROOF_SAMPLES),
        inclusion_reads: inclusion_reads as f64 / rounds as f64,
        consistency_reads: consistency_reads as f64 / rounds as f64,
    }
}

fn fmt_opt(v: Option<f64>, scale: f64) -> String {
    v.map_or_else(|| "null".into(), |v| format!("{:.1}", v / scale))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("writ-store-bench");

    // Criterion's filter decides what runs; a part's setup (the 1M-entry log) is skipped
    // when the filter plainly names only the other part.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let names =
        |part: &str| !filter.is_empty() && (part.contains(&filter) || filter.starts_with(part));
    let (mut run_appends_part, mut run_proofs_part) = (names("append/"), names("proof/"));
    if !run_appends_part && !run_proofs_part {
        (run_appends_part, run_proofs_part) = (true, true);
    }
    let appends = if run_appends_part {
        bench_appends(&mut c, dir.path())
    } else {
        Vec::new()
    };
    let proofs = if run_proofs_part {
        Some(bench_proofs(&mut c, &cache_dir))
    } else {
        None
    };
    c.final_summary();

    let mut json = Vec::new();
    if !appends.is_empty() {
        println!("\nappends/s (median of criterion's samples; goal: log ≥ 50% of raw)");
        println!(
            "{:>8} {:>12} {:>12} {:>8}",
            "threads", "log", "raw", "log/raw"
        );
        for (threads, log, raw) in &appends {
            let ratio = match (log, raw) {
                (Some(l), Some(r)) if *r > 0.0 => Some(l / r),
                _ => None,
            };
            println!(
                "{threads:>8} {:>12} {:>12} {:>8}",
                fmt_opt(*log, 1.0),
                fmt_opt(*raw, 1.0),
                ratio.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0))
            );
            json.push(format!(
                r#""append_{threads}":{{"log_per_s":{},"raw_per_s":{},"ratio":{}}}"#,
                fmt_opt(*log, 1.0),
                fmt_opt(*raw, 1.0),
                ratio.map_or_else(|| "null".into(), |r| format!("{r:.3}"))
            ));
        }
    }
    if let Some(p) = &proofs {
        println!("\nproofs on {PROOF_LOG_SIZE} entries (median; goal: < 100 µs each)");
        if let Some(build) = p.build {
            println!("  built the log in {:.1} s", build.as_secs_f64());
        }
        println!(
            "  inclusion:   {} µs, {:.1} stored hashes read",
            fmt_opt(p.inclusion_ns, 1e3),
            p.inclusion_reads
        );
        println!(
            "  consistency: {} µs, {:.1} stored hashes read",
            fmt_opt(p.consistency_ns, 1e3),
            p.consistency_reads
        );
        println!(
            "  one read transaction with size(): {} µs; one stored-hash query: {} µs",
            fmt_opt(p.read_tx_ns, 1e3),
            fmt_opt(p.node_ns, 1e3)
        );
        if let (Some(tx), Some(inclusion), Some(consistency)) =
            (p.read_tx_ns, p.inclusion_ns, p.consistency_ns)
        {
            // A proof's hashes lie on one path, so they share pages and cost less than the
            // random lookups of `node_query`.
            println!(
                "  per stored hash inside a proof, after its read transaction: inclusion {:.2} µs, consistency {:.2} µs",
                (inclusion - tx) / p.inclusion_reads / 1e3,
                (consistency - tx) / p.consistency_reads / 1e3
            );
        }
        json.push(format!(
            r#""proof_1m":{{"inclusion_us":{},"consistency_us":{},"read_tx_us":{},"node_query_us":{},"inclusion_reads":{:.1},"consistency_reads":{:.1}}}"#,
            fmt_opt(p.inclusion_ns, 1e3),
            fmt_opt(p.consistency_ns, 1e3),
            fmt_opt(p.read_tx_ns, 1e3),
            fmt_opt(p.node_ns, 1e3),
            p.inclusion_reads,
            p.consistency_reads
        ));
    }
    if !json.is_empty() {
        println!("\n{{{}}}", json.join(","));
    }
}
