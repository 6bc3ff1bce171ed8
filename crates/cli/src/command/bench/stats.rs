//! What a run of requests adds up to: counts, latencies and their percentiles, CPU time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{Failure, Outcome};

/// Everything recorded while one step of the benchmark ran.
#[derive(Default)]
pub struct Tally {
    /// Latency of each answered request (HTTP 200), in µs: from its scheduled send time
    /// (open loop) or from when it was sent (closed loop) to the end of the answer.
    latencies_us: Vec<u64>,
    /// How late each request left after its scheduled time, in µs (open loop only).
    lags_us: Vec<u64>,
    pub permits: u64,
    pub non_permits: u64,
    pub errors: BTreeMap<Failure, u64>,
    /// Requests never sent: the in-flight cap was reached at their scheduled time.
    pub dropped: u64,
    /// When the last answer or failure came back.
    pub last_done: Option<Instant>,
}

impl Tally {
    /// Records one request's outcome, `latency` after it was due, which left `lag` late.
    pub fn record(
        &mut self,
        outcome: Outcome,
        latency: Duration,
        lag: Option<Duration>,
        at: Instant,
    ) {
        match outcome {
            Outcome::Permit => self.permits += 1,
            Outcome::NonPermit => self.non_permits += 1,
            Outcome::Failed(f) => *self.errors.entry(f).or_default() += 1,
        }
        if !matches!(outcome, Outcome::Failed(_)) {
            self.latencies_us.push(micros(latency));
        }
        if let Some(lag) = lag {
            self.lags_us.push(micros(lag));
        }
        self.last_done = Some(self.last_done.map_or(at, |t| t.max(at)));
    }

    /// Adds `other`'s records to these.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.lags_us.extend(other.lags_us);
        self.permits += other.permits;
        self.non_permits += other.non_permits;
        for (f, n) in other.errors {
            *self.errors.entry(f).or_default() += n;
        }
        self.dropped += other.dropped;
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Requests that got no decision.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `{"status_429": 3, …}`.
    pub fn error_labels(&self) -> BTreeMap<String, u64> {
        self.errors.iter().map(|(f, n)| (f.label(), *n)).collect()
    }

    /// Percentiles of the answered requests' latencies.
    pub fn latency(&mut self) -> Percentiles {
        Percentiles::of(&mut self.latencies_us)
    }

    /// Percentiles of the send lag.
    pub fn lag(&mut self) -> Percentiles {
        Percentiles::of(&mut self.lags_us)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Latency percentiles in milliseconds (nearest rank over every sample; 0 without samples).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(samples_us: &mut [u64]) -> Self {
        samples_us.sort_unstable();
        let at = |p: f64| -> f64 {
            if samples_us.is_empty() {
                return 0.0;
            }
            let n = samples_us.len();
            // Nearest rank: the smallest sample with at least p% of samples at or below it.
            let rank = ((p / 100.0) * n as f64).ceil() as usize;
            let i = rank.clamp(1, n) - 1;
            samples_us[i] as f64 / 1000.0
        };
        Percentiles {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: at(100.0),
        }
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    Some(ticks_time(Stat::parse(&text)?.own))
}

/// The PostgreSQL server's CPU time so far, from `/proc`.
pub struct PgSample {
    /// Every process named `postgres` on this machine, with that of their exited children
    /// (a backend that ends is counted by the postmaster that reaped it).
    pub total: Duration,
    /// The backends serving the given nodes' connections, by pid; `None` when their sockets
    /// cannot be read (other users' `/proc/PID/fd` need privileges).
    pub serving: Option<BTreeMap<u32, Duration>>,
}

/// The PostgreSQL server's CPU time so far, and its backends connected to `node_pids` (told
/// by matching both ends of each loopback TCP connection in `/proc/net/tcp*`). `None` when
/// no process named `postgres` is visible (a remote server, or none).
pub fn postgres_sample(node_pids: &[u32]) -> Option<PgSample> {
    let mut total = 0u64;
    let mut postgres = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(stat) = Stat::parse(&text).filter(|s| s.comm == "postgres") {
            total += stat.own + stat.children;
            postgres.push((pid, stat.own));
        }
    }
    if postgres.is_empty() {
        return None;
    }
    Some(PgSample {
        total: ticks_time(total),
        serving: serving_backends(node_pids, &postgres),
    })
}

/// Of the `postgres` processes (pid, CPU ticks), those at the other end of a TCP connection
/// of one of `node_pids`.
fn serving_backends(node_pids: &[u32], postgres: &[(u32, u64)]) -> Option<BTreeMap<u32, Duration>> {
    if node_pids.is_empty() {
        return None;
    }
    let connections = tcp_connections();
    // The far ends of the nodes' connections, as (local, remote) seen from there.
    let far_ends: BTreeSet<(&str, &str)> = node_pids
        .iter()
        .flat_map(|&pid| socket_inodes(pid).unwrap_or_default())
        .filter_map(|inode| connections.get(&inode))
        .map(|(local, remote)| (remote.as_str(), local.as_str()))
        .collect();
    let mut serving = BTreeMap::new();
    let mut readable = false;
    for &(pid, own) in postgres {
        let Some(inodes) = socket_inodes(pid) else {
            continue;
        };
        readable = true;
        let connected = inodes.iter().any(|inode| {
            connections
                .get(inode)
                .is_some_and(|(l, r)| far_ends.contains(&(l.as_str(), r.as_str())))
        });
        if connected {
            serving.insert(pid, ticks_time(own));
        }
    }
    readable.then_some(serving)
}

/// The socket inodes a process holds open, from `/proc/PID/fd`.
fn socket_inodes(pid: u32) -> Option<Vec<u64>> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

/// Every TCP socket of this network namespace: inode → (local, remote) address as written
/// in `/proc/net/tcp` and `/proc/net/tcp6`.
fn tcp_connections() -> BTreeMap<u64, (String, String)> {
    let mut connections = BTreeMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if let (Some(local), Some(remote), Some(Ok(inode))) = (
                fields.get(1),
                fields.get(2),
                fields.get(9).map(|i| i.parse::<u64>()),
            ) {
                if inode != 0 {
                    connections.insert(inode, (local.to_string(), remote.to_string()));
                }
            }
        }
    }
    connections
}

/// The fields of `/proc/PID/stat` the benchmark reads.
struct Stat<'a> {
    comm: &'a str,
    /// utime + stime, in clock ticks.
    own: u64,
    /// cutime + cstime: of children waited for, in clock ticks.
    children: u64,
}

impl<'a> Stat<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        // The command name is in parentheses and may hold spaces: count fields after it.
        let (head, rest) = text.rsplit_once(')')?;
        let (_, comm) = head.split_once('(')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 to 17 (utime stime cutime cstime) of proc(5); `rest` starts at field 3.
        let field = |i: usize| -> Option<u64> {
            let v: i64 = fields.get(i)?.parse().ok()?;
            Some(u64::try_from(v).unwrap_or(0))
        };
        Some(Stat {
            comm,
            own: field(11)? + field(12)?,
            children: field(13).unwrap_or(0) + field(14).unwrap_or(0),
        })
    }
}

/// Clock ticks as time: USER_HZ is 100 on every Linux architecture writ runs on.
fn ticks_time(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// CPU time the whole machine has been busy so far (every CPU, every process), from the
/// first line of `/proc/stat`: everything but idle and iowait.
pub fn machine_busy_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(ticks_time(busy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        samples.reverse();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let p = Percentiles::of(&mut []);
        assert_eq!(p.max, 0.0);
        let p = Percentiles::of(&mut [1500]);
        assert_eq!((p.p50, p.max), (1.5, 1.5));
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_time(None).is_some());
        assert!(machine_busy_time().is_some());
        // Whether or not PostgreSQL runs here, reading it must not fail loudly.
        let _ = postgres_sample(&[std::process::id()]);
    }

    #[test]
    fn stat_lines() {
        let line = "42 (postgres: idle) S 1 2 3 4 5 6 7 8 9 10 150 50 7 3 20 0 1 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(
            (stat.comm, stat.own, stat.children),
            ("postgres: idle", 200, 10)
        );
        let stat = Stat::parse("7 (postgres) S 1 2 3 4 5 6 7 8 9 10 1 2 -1 0").unwrap();
        assert_eq!((stat.comm, stat.own, stat.children), ("postgres", 3, 0));
        assert!(Stat::parse("garbage").is_none());
    }
}
