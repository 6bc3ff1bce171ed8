//! The figures of a run, as tables for people and as one JSON object for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cpu::CpuBound;
use super::stats::{cpu_time, machine_busy_time, postgres_sample, Percentiles, PgSample, Tally};

/// CPU cores the processes of interest used over a step.
pub struct CpuMeter {
    started: Instant,
    servers: Vec<(u32, Duration)>,
    own: Option<Duration>,
    machine: Option<Duration>,
    postgres: Option<PgSample>,
}

/// What [`CpuMeter::stop`] measured: cores busy on average (1.0 = one core all the time).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuUse {
    /// The spawned server nodes, together.
    pub server_cores: Option<f64>,
    /// Each spawned node, in start order (with more than one node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_cores_by_node: Vec<f64>,
    /// This benchmark process.
    pub bench_cores: Option<f64>,
    /// Every process named `postgres` on this machine: the PostgreSQL server (with nodes on
    /// PostgreSQL only), including whatever work it did for others meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_cores: Option<f64>,
    /// Of those, the backends serving the nodes' own connections (not the server's shared
    /// processes: WAL writer, checkpointer …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_serving_cores: Option<f64>,
    /// Every other process on the machine (and the kernel's interrupt work): load the
    /// benchmark did not cause, which it competed with.
    pub other_cores: Option<f64>,
}

impl CpuUse {
    /// All of the machine's busy cores: servers, PostgreSQL, benchmark and the rest.
    pub fn busy_cores(&self) -> Option<f64> {
        self.other_cores.map(|other| {
            other
                + self.server_cores.unwrap_or(0.0)
                + self.bench_cores.unwrap_or(0.0)
                + self.postgres_cores.unwrap_or(0.0)
        })
    }
}

impl CpuMeter {
    /// Starts measuring this process, the given server processes, and the PostgreSQL
    /// server's processes if `postgres`.
    pub fn start(server_pids: &[u32], postgres: bool) -> Self {
        CpuMeter {
            started: Instant::now(),
            servers: server_pids
                .iter()
                .filter_map(|&pid| cpu_time(Some(pid)).map(|t| (pid, t)))
                .collect(),
            own: cpu_time(None),
            machine: machine_busy_time(),
            postgres: if postgres {
                postgres_sample(server_pids)
            } else {
                None
            },
        }
    }

    /// The cores used since [`CpuMeter::start`].
    pub fn stop(self) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cores = |before: Duration, after: Option<Duration>| {
            after.map(|a| a.saturating_sub(before).as_secs_f64() / wall)
        };
        let by_node: Vec<Option<f64>> = self
            .servers
            .iter()
            .map(|&(pid, before)| cores(before, cpu_time(Some(pid))))
            .collect();
        let server_cores = by_node.iter().flatten().copied().reduce(|a, b| a + b);
        let bench_cores = self.own.and_then(|before| cores(before, cpu_time(None)));
        let pids: Vec<u32> = self.servers.iter().map(|&(pid, _)| pid).collect();
        let (postgres_cores, postgres_serving_cores) = match self.postgres {
            Some(before) => {
                let after = postgres_sample(&pids);
                let serving = match (
                    &before.serving,
                    after.as_ref().and_then(|a| a.serving.as_ref()),
                ) {
                    // A backend unseen before was born during the step.
                    (Some(before), Some(after)) => Some(
                        after
                            .iter()
                            .map(|(pid, t)| {
                                t.saturating_sub(before.get(pid).copied().unwrap_or_default())
                            })
                            .sum::<Duration>()
                            .as_secs_f64()
                            / wall,
                    ),
                    _ => None,
                };
                (cores(before.total, after.map(|a| a.total)), serving)
            }
            None => (None, None),
        };
        let machine_cores = self
            .machine
            .and_then(|before| cores(before, machine_busy_time()));
        CpuUse {
            server_cores,
            server_cores_by_node: if by_node.len() > 1 {
                by_node.iter().map(|c| c.unwrap_or(0.0)).collect()
            } else {
                Vec::new()
            },
            bench_cores,
            postgres_cores,
            postgres_serving_cores,
            other_cores: machine_cores.map(|m| {
                (m - server_cores.unwrap_or(0.0)
                    - bench_cores.unwrap_or(0.0)
                    - postgres_cores.unwrap_or(0.0))
                .max(0.0)
            }),
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

/// The open-loop table (with a `pg cpu` column if `pg`) and its errors by kind.
fn write_open(t: &mut String, open: &[OpenStep], pg: bool) {
    let _ = write!(
        t,
        "{:>10} {:>11} {:>8} {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
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
    );
    cpu_header(t, pg);
    for s in open {
        let _ = write!(
            t,
            "{:>10} {:>11.1} {:>8} {:>5} {:>6} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8}",
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
        );
        cpu_cells(t, &s.cpu, pg);
    }
    let errors: Vec<String> = open
        .iter()
        .filter(|s| !s.errors_by_kind.is_empty())
        .map(|s| format!("{}/s: {:?}", s.offered_per_sec, s.errors_by_kind))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(t, "  errors by kind: {}", errors.join("; "));
    }
}

/// The CPU columns every step table ends with (the PostgreSQL ones if `pg`), and the line's end.
fn cpu_header(t: &mut String, pg: bool) {
    if pg {
        let _ = write!(t, " {:>7} {:>7}", "pg cpu", "pg ours");
    }
    let _ = writeln!(t, " {:>9} {:>9}", "bench cpu", "other cpu");
}

/// A step's CPU cells under [`cpu_header`].
fn cpu_cells(t: &mut String, cpu: &CpuUse, pg: bool) {
    if pg {
        let _ = write!(
            t,
            " {:>7} {:>7}",
            cores(cpu.postgres_cores),
            cores(cpu.postgres_serving_cores)
        );
    }
    let _ = writeln!(
        t,
        " {:>9} {:>9}",
        cores(cpu.bench_cores),
        cores(cpu.other_cores)
    );
}

/// The closed-loop table (with a `pg cpu` column if `pg`) and its errors by kind.
fn write_closed(t: &mut String, closed: &[ClosedStep], pg: bool) {
    let _ = write!(
        t,
        "{:>8} {:>11} {:>8} {:>5} {:>6} {:>8} {:>8} {:>8}",
        "clients", "requests/s", "permits", "deny", "errors", "p50 ms", "p99 ms", "srv cpu",
    );
    cpu_header(t, pg);
    for s in closed {
        let _ = write!(
            t,
            "{:>8} {:>11.1} {:>8} {:>5} {:>6} {:>8.2} {:>8.2} {:>8}",
            s.clients,
            s.throughput_per_sec,
            s.permits,
            s.deny,
            s.errors,
            s.latency_ms.p50,
            s.latency_ms.p99,
            cores(s.cpu.server_cores),
        );
        cpu_cells(t, &s.cpu, pg);
    }
    let errors: Vec<String> = closed
        .iter()
        .filter(|s| !s.errors_by_kind.is_empty())
        .map(|s| format!("{} client(s): {:?}", s.clients, s.errors_by_kind))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(t, "  errors by kind: {}", errors.join("; "));
    }
}

/// Both loops' tables under their headings.
fn write_steps(
    t: &mut String,
    settings: (f64, f64, usize),
    open: &[OpenStep],
    closed: &[ClosedStep],
    pg: bool,
) {
    let (duration_secs, warmup_secs, max_in_flight) = settings;
    let _ = writeln!(
        t,
        "\nOpen loop: fixed offered rate, {duration_secs} s per step after {warmup_secs} s \
         warm-up, at most {max_in_flight} in flight; latency from each request's scheduled \
         send time"
    );
    write_open(t, open, pg);
    let _ = writeln!(
        t,
        "\nClosed loop: each client sends its next request when the previous is answered, \
         {duration_secs} s per step"
    );
    write_closed(t, closed, pg);
}

fn write_cpu_bound(t: &mut String, c: &CpuBound) {
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
        write_steps(
            &mut t,
            (self.duration_secs, self.warmup_secs, self.max_in_flight),
            &self.open,
            &self.closed,
            false,
        );
        write_cpu_bound(&mut t, &self.cpu);

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

/// Which database a configuration's nodes share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One node on the embedded SQLite database (the default).
    Sqlite,
    /// N nodes on one PostgreSQL schema.
    Postgres,
    /// N single-node authorities on PostgreSQL, each on its own schema: the processes,
    /// connections and cores of `postgres xN` with nothing shared between the nodes. The
    /// control that tells the cost of sharing from the cost of running N nodes on one machine.
    Separate,
}

impl Backend {
    /// `sqlite`, `postgres`: how configurations are named.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Separate => "separate",
        }
    }
}

/// One configuration of a multi-node run: its nodes and what they sustained.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    /// `sqlite x1`, `postgres x3` ….
    pub name: String,
    pub backend: Backend,
    pub nodes: usize,
    /// Each node's base URL; requests went round-robin over them.
    pub urls: Vec<String>,
    pub open: Vec<OpenStep>,
    pub closed: Vec<ClosedStep>,
}

impl Section {
    pub fn new(
        backend: Backend,
        urls: Vec<String>,
        open: Vec<OpenStep>,
        closed: Vec<ClosedStep>,
    ) -> Self {
        Section {
            name: format!("{} x{}", backend.as_str(), urls.len()),
            backend,
            nodes: urls.len(),
            urls,
            open,
            closed,
        }
    }
}

/// One configuration's headline figures, and how they compare with the others'.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigSummary {
    pub name: String,
    /// The highest offered rate sustained (see [`OpenStep::sustained`]).
    pub sustained_per_sec: Option<u32>,
    pub sustained_p99_ms: Option<f64>,
    /// That rate / the bare CPU bound.
    pub sustained_ratio_to_cpu_bound: Option<f64>,
    /// That rate / the SQLite single node's.
    pub sustained_vs_sqlite: Option<f64>,
    /// That rate / the one-node PostgreSQL configuration's (PostgreSQL only).
    pub sustained_vs_x1: Option<f64>,
    /// That rate / `separate xN`'s, for `postgres xN` measured with its control: what
    /// sharing one database costs, all else equal (1.00x: nothing).
    pub sustained_vs_separate: Option<f64>,
    /// The highest closed-loop throughput of a step with no deny or error (requests/s).
    pub closed_per_sec: Option<f64>,
    /// Its clients and p99.
    pub closed_clients: Option<usize>,
    pub closed_p99_ms: Option<f64>,
    pub closed_ratio_to_cpu_bound: Option<f64>,
    pub closed_vs_sqlite: Option<f64>,
    pub closed_vs_x1: Option<f64>,
    pub closed_vs_separate: Option<f64>,
    /// CPU use during that closed-loop step: where the machine's cores went at saturation.
    pub closed_cpu: Option<CpuUse>,
}

/// The headline of a multi-node run.
#[derive(Clone, Debug, Serialize)]
pub struct MultiSummary {
    pub p99_goal_ms: f64,
    pub cpu_bound_per_sec: f64,
    pub configurations: Vec<ConfigSummary>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

impl MultiSummary {
    pub fn of(sections: &[Section], cpu: &CpuBound, p99_goal_ms: f64) -> Self {
        struct Best<'a> {
            sustained: Option<&'a OpenStep>,
            closed: Option<&'a ClosedStep>,
        }
        let bests: Vec<Best> = sections
            .iter()
            .map(|s| Best {
                sustained: s
                    .open
                    .iter()
                    .filter(|o| o.sustained(p99_goal_ms))
                    .max_by_key(|o| o.offered_per_sec),
                closed: s
                    .closed
                    .iter()
                    .filter(|c| c.permits > 0 && c.deny == 0 && c.errors == 0)
                    .max_by(|a, b| a.throughput_per_sec.total_cmp(&b.throughput_per_sec)),
            })
            .collect();
        let sustained = |b: &Best| b.sustained.map(|o| f64::from(o.offered_per_sec));
        let closed = |b: &Best| b.closed.map(|c| c.throughput_per_sec);
        let find = |backend: Backend, nodes: usize| {
            sections
                .iter()
                .position(|s| s.backend == backend && s.nodes == nodes)
                .map(|i| &bests[i])
        };
        let sqlite = find(Backend::Sqlite, 1);
        let x1 = find(Backend::Postgres, 1);
        let bound = Some(cpu.bound_per_sec);
        let configurations = sections
            .iter()
            .zip(&bests)
            .map(|(section, best)| {
                let shared = section.backend == Backend::Postgres;
                let x1 = x1.filter(|_| shared);
                let separate = find(Backend::Separate, section.nodes).filter(|_| shared);
                ConfigSummary {
                    name: section.name.clone(),
                    sustained_per_sec: best.sustained.map(|o| o.offered_per_sec),
                    sustained_p99_ms: best.sustained.map(|o| o.latency_ms.p99),
                    sustained_ratio_to_cpu_bound: ratio(sustained(best), bound),
                    sustained_vs_sqlite: ratio(sustained(best), sqlite.and_then(sustained)),
                    sustained_vs_x1: ratio(sustained(best), x1.and_then(sustained)),
                    sustained_vs_separate: ratio(sustained(best), separate.and_then(sustained)),
                    closed_per_sec: closed(best),
                    closed_clients: best.closed.map(|c| c.clients),
                    closed_p99_ms: best.closed.map(|c| c.latency_ms.p99),
                    closed_ratio_to_cpu_bound: ratio(closed(best), bound),
                    closed_vs_sqlite: ratio(closed(best), sqlite.and_then(closed)),
                    closed_vs_x1: ratio(closed(best), x1.and_then(closed)),
                    closed_vs_separate: ratio(closed(best), separate.and_then(closed)),
                    closed_cpu: best.closed.map(|c| c.cpu.clone()),
                }
            })
            .collect();
        MultiSummary {
            p99_goal_ms,
            cpu_bound_per_sec: cpu.bound_per_sec,
            configurations,
        }
    }
}

/// Everything a multi-node run measured: the SQLite single node, then N PostgreSQL nodes
/// for each N asked for, then the bare CPU bound.
#[derive(Clone, Debug, Serialize)]
pub struct MultiReport {
    /// The PostgreSQL database, without its password.
    pub database: String,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub max_in_flight: usize,
    /// Each node's CPU quota in cores (--node-cpus), if capped.
    pub node_cpus: Option<f64>,
    pub configurations: Vec<Section>,
    pub cpu: CpuBound,
    pub summary: MultiSummary,
}

fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{ms:.2}"))
}

impl MultiReport {
    /// One JSON object: the settings, `configurations` (each with `open` and `closed`),
    /// `cpu` and `summary`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A section of tables per configuration, the CPU bound, and the comparison.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "writ bench authorize: POST /v1/authorize on spawned writ serve nodes (durable log, \
             rate limit off): SQLite single node, then PostgreSQL ({}) with {} node(s) on a \
             fresh schema each; {} core(s)",
            self.database,
            self.configurations
                .iter()
                .filter(|s| s.backend == Backend::Postgres)
                .map(|s| s.nodes.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.cpu.cores
        );
        if let Some(cores) = self.node_cpus {
            let _ = writeln!(
                t,
                "each node capped at {cores} core(s) (a cgroup CPU quota); PostgreSQL and the \
                 benchmark are not"
            );
        }
        if self
            .configurations
            .iter()
            .any(|s| s.backend == Backend::Separate)
        {
            let _ = writeln!(
                t,
                "separate xN: the control for postgres xN, N single-node authorities on a schema \
                 each (same processes and cores, nothing shared)"
            );
        }
        for section in &self.configurations {
            let _ = writeln!(
                t,
                "\n=== {} ({}) ===",
                section.name,
                section.urls.join(", ")
            );
            write_steps(
                &mut t,
                (self.duration_secs, self.warmup_secs, self.max_in_flight),
                &section.open,
                &section.closed,
                true,
            );
        }
        write_cpu_bound(&mut t, &self.cpu);

        let s = &self.summary;
        let _ = writeln!(
            t,
            "\n=== SUMMARY ===\nSustained open-loop rate: the highest offered rate with p99 < {} ms, \
             ≥ 95% achieved, no deny, error or dropped request",
            s.p99_goal_ms
        );
        let _ = writeln!(
            t,
            "{:<14} {:>11} {:>8} {:>9} {:>10} {:>7} {:>12}",
            "configuration",
            "sustained/s",
            "p99 ms",
            "of bound",
            "vs sqlite",
            "vs x1",
            "vs separate"
        );
        for c in &s.configurations {
            let _ = writeln!(
                t,
                "{:<14} {:>11} {:>8} {:>9} {:>10} {:>7} {:>12}",
                c.name,
                c.sustained_per_sec
                    .map_or_else(|| "none".into(), |r| r.to_string()),
                millis(c.sustained_p99_ms),
                percent(c.sustained_ratio_to_cpu_bound),
                times(c.sustained_vs_sqlite),
                times(c.sustained_vs_x1),
                times(c.sustained_vs_separate)
            );
        }
        let _ = writeln!(
            t,
            "\nClosed-loop throughput: the best step without deny or error, and the CPU cores \
             used during it"
        );
        let _ = writeln!(
            t,
            "{:<14} {:>11} {:>7} {:>8} {:>9} {:>10} {:>7} {:>12} {:>8} {:>7} {:>7} {:>9} {:>9} {:>6}",
            "configuration",
            "requests/s",
            "clients",
            "p99 ms",
            "of bound",
            "vs sqlite",
            "vs x1",
            "vs separate",
            "srv cpu",
            "pg cpu",
            "pg ours",
            "bench cpu",
            "other cpu",
            "busy"
        );
        for c in &s.configurations {
            let cpu = c.closed_cpu.clone().unwrap_or_default();
            let _ = writeln!(
                t,
                "{:<14} {:>11} {:>7} {:>8} {:>9} {:>10} {:>7} {:>12} {:>8} {:>7} {:>7} {:>9} {:>9} {:>6}",
                c.name,
                c.closed_per_sec
                    .map_or_else(|| "none".into(), |r| format!("{r:.1}")),
                c.closed_clients
                    .map_or_else(|| "-".into(), |n| n.to_string()),
                millis(c.closed_p99_ms),
                percent(c.closed_ratio_to_cpu_bound),
                times(c.closed_vs_sqlite),
                times(c.closed_vs_x1),
                times(c.closed_vs_separate),
                cores(cpu.server_cores),
                cores(cpu.postgres_cores),
                cores(cpu.postgres_serving_cores),
                cores(cpu.bench_cores),
                cores(cpu.other_cores),
                cores(cpu.busy_cores())
            );
        }
        let _ = writeln!(
            t,
            "  of bound: share of the bare CPU bound ({} permits/s); vs sqlite: / sqlite x1; \
             vs x1: / postgres x1; vs separate: / separate xN, the same nodes sharing \
             nothing; busy: all cores in use, of {}",
            thousands(s.cpu_bound_per_sec),
            self.cpu.cores
        );
        t
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; `password=…` likewise.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let (from, to) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
                out.replace_range(from..to, "***");
            }
        }
    }
    let mut redacted = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let value = i + "password=".len();
        redacted.push_str(&rest[..value]);
        redacted.push_str("***");
        let end = rest[value..]
            .find(['&', ' '])
            .map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::{redact_url, thousands};

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://writ:s3cret@db:5432/writ"),
            "postgres://writ:***@db:5432/writ"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=x&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db user=writ password=x dbname=writ"),
            "host=db user=writ password=*** dbname=writ"
        );
    }
}
