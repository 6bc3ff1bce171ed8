//! Crash safety of the SQLite log (DESIGN.md promises 2 and 3): a child process appends from
//! several threads and is killed with SIGKILL at random moments; after every kill the log
//! still verifies, never shrinks, and holds every entry whose append was acknowledged.
//!
//! The child is this test binary run again (`--exact crash::child_appender`) with
//! [`ENV_DB`] set. Each of its writer threads writes `index<TAB>hex(entry)\n` to its own side
//! file only after `append` returned, with one `write` per line, so a kill can tear at most
//! the last line of a file.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use writ_log::{Checkpoint, NoteSigner};
use writ_store::SqliteLog;

const ORIGIN: &str = "writ.test/crash";
/// The database the child appends to; unset in the parent, where the child test does nothing.
const ENV_DB: &str = "WRIT_CRASH_CHILD_DB";
/// The side files' path prefix: writer `w` writes `PREFIX.w`.
const ENV_ACKS: &str = "WRIT_CRASH_CHILD_ACKS";
/// The round, so every entry of every round is distinct.
const ENV_ROUND: &str = "WRIT_CRASH_CHILD_ROUND";
/// Overrides the seed of the kill times.
const ENV_SEED: &str = "WRIT_CRASH_SEED";

const WRITERS: u64 = 4;
const ROUNDS: u64 = 32;
const SEED: u64 = 0x5eed_c0de_2024_0001;
/// Each writer starts at most one append per `PACE`, so a machine with a fast disk does not
/// grow the log (and the audit after every kill) past the test's time budget.
const PACE: Duration = Duration::from_millis(2);
/// A child the parent failed to kill stops by itself after this long.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[9; 32]).unwrap()
}

/// A canonical `note` entry (keys sorted, integers only), unique per round, writer and seq.
fn entry(round: u64, writer: u64, seq: u64) -> Vec<u8> {
    format!(r#"{{"round":{round},"seq":{seq},"type":"note","writer":{writer}}}"#).into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: enough randomness for kill times, and reproducible from the seed.
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

fn side_file(prefix: &Path, writer: u64) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!(".{writer}"));
    PathBuf::from(name)
}

/// The child: appends from [`WRITERS`] threads until it is killed. Passes at once when run
/// as an ordinary test.
#[test]
fn child_appender() {
    let Some(db) = std::env::var_os(ENV_DB) else {
        return;
    };
    let acks = PathBuf::from(std::env::var_os(ENV_ACKS).expect("side file prefix"));
    let round: u64 = std::env::var(ENV_ROUND)
        .expect("round")
        .parse()
        .expect("round is a number");
    let log = Arc::new(SqliteLog::open_writer(Path::new(&db), signer()).unwrap());
    let deadline = Instant::now() + CHILD_LIMIT;
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let log = log.clone();
            let path = side_file(&acks, writer);
            std::thread::spawn(move || {
                let mut side = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                let mut seq = 0u64;
                let mut next = Instant::now();
                while next < deadline {
                    if let Some(early) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(early);
                    }
                    next = Instant::now() + PACE;
                    let bytes = entry(round, writer, seq);
                    let line = hex(&bytes);
                    let index = log.append(bytes).unwrap();
                    side.write_all(format!("{index}\t{line}\n").as_bytes())
                        .unwrap();
                    seq += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Reads the acknowledged `(index, hex)` lines of one side file; a torn last line (no
/// newline) is ignored, any other malformed line fails the test.
fn read_acks(path: &Path) -> Vec<(u64, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        // The child was killed before this writer opened its file.
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            let (index, bytes) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("{}: malformed line {line:?}", path.display()));
            let index = index
                .parse()
                .unwrap_or_else(|_| panic!("{}: malformed index {line:?}", path.display()));
            (index, bytes.to_owned())
        })
        .collect()
}

#[test]
fn acknowledged_appends_survive_sigkill_at_random_moments() {
    let started = Instant::now();
    let seed = std::env::var(ENV_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("writ.db");
    drop(SqliteLog::create(&db, ORIGIN, signer()).unwrap());
    let exe = std::env::current_exe().unwrap();

    // Every index ever acknowledged, with the hex of its bytes.
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut previous_size = 0u64;
    let mut rounds_with_acks = 0u64;
    for round in 0..ROUNDS {
        let mut rng = SplitMix64(seed ^ round.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let wait = Duration::from_millis(20 + rng.next() % 131);
        let prefix = dir.path().join(format!("acks-{round}"));
        let stderr_path = dir.path().join(format!("child-{round}.err"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::child_appender",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(ENV_DB, &db)
            .env(ENV_ACKS, &prefix)
            .env(ENV_ROUND, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        // SIGKILL on Unix.
        let kill = child.kill();
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        kill.unwrap_or_else(|e| {
            panic!("round {round}: the child ended before the kill ({status}): {e}\n{stderr}")
        });
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "round {round}: the child was not killed by SIGKILL ({status})\n{stderr}"
            );
        }
        assert!(
            !stderr.contains("panicked"),
            "round {round}: the child panicked\n{stderr}"
        );

        let log = SqliteLog::open(&db).unwrap();
        let audit = log.audit(None).unwrap();
        assert_eq!(
            audit.finding, None,
            "round {round} (seed {seed}): {audit:?}"
        );
        let size = log.size().unwrap();
        assert_eq!(audit.size, size, "round {round}");
        assert!(
            size >= previous_size,
            "round {round} (seed {seed}): the log shrank from {previous_size} to {size}"
        );
        let latest = Checkpoint::open(
            log.latest_checkpoint().unwrap().as_bytes(),
            &[log.verifier().clone()],
        )
        .unwrap();
        assert_eq!(
            (latest.size, latest.root),
            (size, audit.root),
            "round {round}: the latest checkpoint is not the committed tree"
        );

        let mut new_acks = 0usize;
        for writer in 0..WRITERS {
            for (index, bytes) in read_acks(&side_file(&prefix, writer)) {
                if let Some(earlier) = acked.insert(index, bytes.clone()) {
                    panic!(
                        "round {round}: index {index} acknowledged twice: {earlier} and {bytes}"
                    );
                }
                new_acks += 1;
            }
        }
        if new_acks > 0 {
            rounds_with_acks += 1;
        }
        let entries = log.entries(0, size).unwrap();
        assert_eq!(entries.len() as u64, size, "round {round}");
        for (index, bytes) in &acked {
            assert!(
                *index < size,
                "round {round} (seed {seed}): acknowledged index {index} is beyond the log's {size} entries"
            );
            let (stored_index, stored) = &entries[*index as usize];
            assert_eq!(stored_index, index);
            assert_eq!(
                &hex(stored),
                bytes,
                "round {round} (seed {seed}): acknowledged entry {index} differs"
            );
        }
        previous_size = size;
    }
    assert!(
        rounds_with_acks > 0 && !acked.is_empty(),
        "no append was ever acknowledged: the test tested nothing"
    );
    eprintln!(
        "crash: {ROUNDS} SIGKILLs (seed {seed}), {} entries in the log, {} acknowledged, \
         {rounds_with_acks} rounds acknowledged appends, {:.1} s",
        previous_size,
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
