//! What a run of requests adds up to: counts, latencies and their percentiles, CPU time.

use std::collections::BTreeMap;
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
    // The command name is in parentheses and may hold spaces: count fields after it.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture writ runs on.
    Some(Duration::from_millis((utime + stime) * 10))
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
    Some(Duration::from_millis(busy * 10))
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
    }
}
