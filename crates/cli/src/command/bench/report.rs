//! The figures of a run, as tables for people and as one JSON object for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cpu::CpuBound;
use super::stats::{cpu_time, machine_busy_time, Percentiles, Tally};

/// CPU cores a process used over a step.
pub struct CpuMeter {
    started: Instant,
    server: Option<(u32, Duration)>,
    own: Option<Duration>,
    machine: Option<Duration>,
}

/// What [`CpuMeter::stop`] measured: cores busy on average (1.0 = one core all the time).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuUse {
    /// The spawned server.
    pub server_cores: Option<f64>,
    /// This benchmark process.
    pub bench_cores: Option<f64>,
    /// Every other process on the machine (and the kernel's interrupt work): load the
    /// benchmark did not cause, which it competed with.
    pub other_cores: Option<f64>,
}

impl CpuMeter {
    /// Starts measuring this process and, if given, the server's.
    pub fn start(server_pid: Option<u32>) -> Self {
        CpuMeter {
            started: Instant::now(),
            server: server_pid.and_then(|pid| cpu_time(Some(pid)).map(|t| (pid, t))),
            own: cpu_time(None),
            machine: machine_busy_time(),
        }
    }

    /// The cores used since [`CpuMeter::start`].
    pub fn stop(self) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cores = |before: Duration, after: Option<Duration>| {
            after.map(|a| a.saturating_sub(before).as_secs_f64() / wall)
        };
        let server_cores = self
            .server
            .and_then(|(pid, before)| cores(before, cpu_time(Some(pid))));
        let bench_cores = self.own.and_then(|before| cores(before, cpu_time(None)));
        let machine_cores = self
            .machine
            .and_then(|before| cores(before, machine_busy_time()));
        CpuUse {
            server_cores,
            bench_cores,
            other_cores: machine_cores
                .map(|m| (m - server_cores.unwrap_or(0.0) - bench_cores.unwrap_or(0.0)).max(0.0)),
        }
    }
}

/// One open-loop step.
#[derive(Clone, Debug, Serialize)]
pub struct OpenStep {
    pub offered_per_sec: u32,
    /// From the first scheduled send to the last answer (at least the step's duration).
    pub elapsed_secs: f64,
    pub scheduled: u64,
    pub permits: u64,
    pub deny: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub dropped: u64,
    pub achieved_permits_per_sec: f64,
    pub latency_ms: Percentiles,
    /// How late requests left after their scheduled time (the client's own delay).
    pub lag_ms: Percentiles,
    /// Keep-alive connections open after the step.
    pub connections: usize,
    pub cpu: CpuUse,
}

impl OpenStep {
    pub fn new(rate: u32, mut tally: Tally, elapsed: Duration, cpu: CpuUse, conns: usize) -> Self {
        let errors = tally.error_count();
        let elapsed_secs = elapsed.as_secs_f64();
        OpenStep {
            offered_per_sec: rate,
            elapsed_secs,
            scheduled: tally.permits + tally.non_permits + errors + tally.dropped,
            permits: tally.permits,
            deny: tally.non_permits,
            errors,
            errors_by_kind: tally.error_labels(),
            dropped: tally.dropped,
            achieved_permits_per_sec: tally.permits as f64 / elapsed_secs.max(1e-9),
            latency_ms: tally.latency(),
            lag_ms: tally.lag(),
            connections: conns,
            cpu,
        }
    }

    /// Whether this rate was sustained: p99 under the goal, ≥ 95% achieved, nothing lost.
    fn sustained(&self, p99_goal_ms: f64) -> bool {
        self.permits > 0
            && self.latency_ms.p99 < p99_goal_ms
            && self.achieved_permits_per_sec >= 0.95 * f64::from(self.offered_per_sec)
            && self.deny == 0
            && self.errors == 0
            && self.dropped == 0
    }
}

/// One closed-loop step.
#[derive(Clone, Debug, Serialize)]
pub struct ClosedStep {
    pub clients: usize,
    pub elapsed_secs: f64,
    pub permits: u64,
    pub deny: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Answered requests (permits and denies) per second.
    pub throughput_per_sec: f64,
    pub latency_ms: Percentiles,
    pub cpu: CpuUse,
}

impl ClosedStep {
    pub fn new(clients: usize, mut tally: Tally, elapsed: Duration, cpu: CpuUse) -> Self {
        let elapsed_secs = elapsed.as_secs_f64();
        ClosedStep {
            clients,
            elapsed_secs,
            permits: tally.permits,
            deny: tally.non_permits,
            errors: tally.error_count(),
            errors_by_kind: tally.error_labels(),
            throughput_per_sec: (tally.permits + tally.non_permits) as f64 / elapsed_secs.max(1e-9),
            latency_ms: tally.latency(),
            cpu,
        }
    }
}

/// The headline.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub p99_goal_ms: f64,
    /// The highest offered rate sustained (see [`OpenStep::sustained`]); none if no rate was.
    pub sustained_per_sec: Option<u32>,
    /// The p99 at that rate.
    pub sustained_p99_ms: Option<f64>,
    /// That rate / the bare CPU bound.
    pub ratio_to_cpu_bound: Option<f64>,
}

impl Summary {
    pub fn of(open: &[OpenStep], cpu: &CpuBound, p99_goal_ms: f64) -> Self {
        let best = open
            .iter()
            .filter(|s| s.sustained(p99_goal_ms))
            .max_by_key(|s| s.offered_per_sec);
        Summary {
            p99_goal_ms,
            sustained_per_sec: best.map(|s| s.offered_per_sec),
            sustained_p99_ms: best.map(|s| s.latency_ms.p99),
            ratio_to_cpu_bound: best.map(|s| f64::from(s.offered_per_sec) / cpu.bound_per_sec),
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub url: String,
    /// Whether the benchmark started the server itself.
    pub spawned: bool,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub max_in_flight: usize,
    pub open: Vec<OpenStep>,
    pub closed: Vec<ClosedStep>,
    pub cpu: CpuBound,
    pub summary: Summary,
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

/// `12345.6` → `12,346`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// One JSON object: the run's settings, `open`, `closed`, `cpu` and `summary`.
    pub fn to_json(&self) -> String {
        // A report is plain numbers and strings; serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The tables.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "writ bench authorize: POST {}/v1/authorize{}, {} core(s)",
            self.url,
            if self.spawned {
                " (spawned writ serve: durable SQLite log, rate limit off)"
            } else {
                ""
            },
            self.cpu.cores
        );
        let _ = writeln!(
            t,
            "\nOpen loop: fixed offered rate, {} s per step after {} s warm-up, at most {} in \
             flight; latency from each request's scheduled send time",
            self.duration_secs, self.warmup_secs, self.max_in_flight
        );
        let _ = writeln!(
            t,
            "{:>10} {:>11} {:>8} {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9}",
            "offered/s",
            "achieved/s",
            "permits",
            "deny",
            "errors",
            "dropped",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "conns",
            "srv cpu",
            "bench cpu",
            "other cpu"
        );
        for s in &self.open {
            let _ = writeln!(
                t,
                "{:>10} {:>11.1} {:>8} {:>5} {:>6} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8} {:>9} {:>9}",
                s.offered_per_sec,
                s.achieved_permits_per_sec,
                s.permits,
                s.deny,
                s.errors,
                s.dropped,
                s.latency_ms.p50,
                s.latency_ms.p90,
                s.latency_ms.p99,
                s.latency_ms.max,
                s.connections,
                cores(s.cpu.server_cores),
                cores(s.cpu.bench_cores),
                cores(s.cpu.other_cores)
            );
        }
        let errors: Vec<String> = self
            .open
            .iter()
            .filter(|s| !s.errors_by_kind.is_empty())
            .map(|s| format!("{}/s: {:?}", s.offered_per_sec, s.errors_by_kind))
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(t, "  errors by kind: {}", errors.join("; "));
        }

        let _ = writeln!(
            t,
            "\nClosed loop: each client sends its next request when the previous is answered, {} s per step",
            self.duration_secs
        );
        let _ = writeln!(
            t,
            "{:>8} {:>11} {:>8} {:>5} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9}",
            "clients",
            "requests/s",
            "permits",
            "deny",
            "errors",
            "p50 ms",
            "p99 ms",
            "srv cpu",
            "bench cpu",
            "other cpu"
        );
        for s in &self.closed {
            let _ = writeln!(
                t,
                "{:>8} {:>11.1} {:>8} {:>5} {:>6} {:>8.2} {:>8.2} {:>8} {:>9} {:>9}",
                s.clients,
                s.throughput_per_sec,
                s.permits,
                s.deny,
                s.errors,
                s.latency_ms.p50,
                s.latency_ms.p99,
                cores(s.cpu.server_cores),
                cores(s.cpu.bench_cores),
                cores(s.cpu.other_cores)
            );
        }

        let errors: Vec<String> = self
            .closed
            .iter()
            .filter(|s| !s.errors_by_kind.is_empty())
            .map(|s| format!("{} client(s): {:?}", s.clients, s.errors_by_kind))
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(t, "  errors by kind: {}", errors.join("; "));
        }

        let c = &self.cpu;
        let _ = writeln!(
            t,
            "\nBare CPU bound (in process, one thread, {} decisions): evaluate {:.1} µs + sign \
             {:.1} µs = {:.1} µs per decision\n  → {} core(s) × {}/s = {} permits/s",
            c.iterations,
            c.evaluate_us,
            c.sign_us,
            c.decision_us,
            c.cores,
            thousands(1e6 / c.decision_us),
            thousands(c.bound_per_sec)
        );

        let s = &self.summary;
        match (
            s.sustained_per_sec,
            s.sustained_p99_ms,
            s.ratio_to_cpu_bound,
        ) {
            (Some(rate), Some(p99), Some(ratio)) => {
                let _ = writeln!(
                    t,
                    "\nSustained: {rate}/s with p99 {p99:.2} ms < {} ms, ≥ 95% achieved, no \
                     errors = {:.1}% of the bare CPU bound",
                    s.p99_goal_ms,
                    ratio * 100.0
                );
            }
            _ => {
                let _ = writeln!(
                    t,
                    "\nSustained: no offered rate met p99 < {} ms with ≥ 95% achieved and no errors",
                    s.p99_goal_ms
                );
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
