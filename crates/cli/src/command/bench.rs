//! `writ bench`: what the authority sustains, measured over HTTP on loopback.

mod client;
mod cpu;
mod load;
mod quota;
mod report;
mod server;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::error::CliError;
use crate::exit::Exit;

use self::client::{classify, Conn, Outcome, Target};
use self::load::{Node, Pool};
use self::report::{
    Backend, ClosedStep, MultiReport, MultiSummary, OpenStep, Report, Section, Summary,
};

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Measure `POST /v1/authorize`: latency at fixed offered rates, throughput, CPU bound.
    #[command(long_about = AUTHORIZE_ABOUT)]
    Authorize(AuthorizeArgs),
}

const AUTHORIZE_ABOUT: &str = "\
Measure `POST /v1/authorize` over HTTP/1.1 on loopback.

By default this starts `writ serve` (this executable) on 127.0.0.1 in a temporary data dir \
with the per-principal rate limit off and the server's defaults otherwise: every decision is \
appended to the durable log (SQLite, synchronous=FULL, group commit) before it is answered. \
It registers an agent `bench-agent` and an executor `bench-gate`, and asks, again and again, \
for `git status` (`exec` of /usr/bin/git), which the example policy permits. Each answer must \
be HTTP 200 with \"decision\":\"permit\". The server is stopped (SIGTERM, then kill) and the \
directory removed at the end, also on failure. With --url, --token and --audience it measures \
a running authority instead (which then must permit that request).

The run has three parts, each reported:

OPEN LOOP, one step per --rates value (after a --warmup-secs warm-up at that rate). Requests \
are started on a fixed schedule, the i-th at start + i/rate, whether or not earlier ones were \
answered, over keep-alive connections (opened as needed, at most --max-in-flight requests \
out at once).
  offered/s   the rate requests were scheduled at.
  achieved/s  permits answered per second: permits / time from the first scheduled send to \
the last answer (at least --duration-secs). Below offered when the server falls behind.
  permits     answers with \"decision\":\"permit\".
  deny        HTTP 200 answers with any other decision (wrong for this request).
  errors      requests without a decision: connect or HTTP failure, timeout \
(--timeout-secs), or a status other than 200 (the JSON output splits them by kind).
  dropped     requests never sent because --max-in-flight were already out when they were \
due. The offered rate is never lowered; dropped requests are counted instead.
  p50 p90 p99 max   latency percentiles in ms of the answered requests, measured from each \
request's scheduled send time (not from when it actually left), so time spent queued behind \
a slow server counts (no coordinated omission). A thread of its own keeps the schedule; how \
late requests actually left (the client's own share of the latency) is `lag_ms` in --json.
  srv cpu     CPU cores the server process used during the step (user + system time / wall \
time; spawned server only).
  bench cpu   CPU cores this benchmark process used meanwhile (it shares the machine).
  other cpu   CPU cores every other process used meanwhile: load the benchmark competed \
with (from /proc/stat); figures taken while it is high are not the server's alone.

CLOSED LOOP, one step per --clients value: that many connections, each sending its next \
request as soon as the previous one was answered, for --duration-secs.
  clients, requests/s (answered requests per second), permits, deny, errors, p50 and p99 \
latency in ms from send to answer, and the same cpu columns.

BARE CPU BOUND, in this process on one thread for --cpu-secs: the example Cedar policy set \
deciding the same request (`evaluate`) and the writ for it: arguments digest, claims and \
Ed25519 signature (`sign`), in µs per decision. bound = cores × 1e6 / µs per decision: the \
permits per second the machine's cores could issue if they did nothing else (no HTTP, \
authentication, JSON or durable log).

SUMMARY: the highest offered rate whose p99 < --p99-goal-ms with achieved ≥ 95% of offered \
and no deny, error or dropped request; and that rate as a share of the bare CPU bound.

SEVERAL NODES ON POSTGRESQL (--database-url URL, --nodes N,…): one run measures, one after \
the other, `sqlite x1` (the spawned SQLite node above) and then `postgres xN` for each N of \
--nodes: N `writ serve` nodes on a fresh, empty schema of that database (its own for each N, \
dropped at the end), sharing one data dir (the first node creates it, the others start on it \
together: one issuer, one signing key). Requests go round-robin over the nodes, every \
connection bound to one node: the i-th open-loop request to node i mod N (--max-in-flight \
counts all nodes), closed-loop client c to node c mod N (with fewer clients than nodes some \
nodes idle). With --separate, each `postgres xN` with N > 1 is followed by its control, \
`separate xN`: N single-node authorities, each on its own schema and data dir, loaded the \
same way. Same processes, connections and cores, but nothing shared: no common log, lock or \
rows. What `postgres xN` loses against it is the cost of sharing; what both lose against \
`postgres x1` is the cost of running N nodes on one machine. With --node-cpus C every node \
runs in a cgroup of its own capped at C cores (a CFS quota), as if each had a machine of C \
cores to itself: with N × C plus PostgreSQL's share within the machine's cores, `postgres xN` \
against `postgres x1` then measures what the cluster adds, not how the nodes divide one \
machine. Each configuration is stopped before the next starts and gets a section headed \
`=== sqlite x1 (URL) ===`, `=== postgres x2 (URL, URL) ===` … with the tables above, where
  srv cpu     sums the N nodes (each node's share is `server_cores_by_node` in --json).
  pg cpu      CPU cores of every process named `postgres` on this machine: the PostgreSQL \
server's backends, WAL writer, checkpointer …, including work it did for others meanwhile \
(an upper bound of the nodes' share when others use the server); - for SQLite or a server \
elsewhere. other cpu excludes it.
  pg ours     of those, the backends at the other end of the nodes' own connections (a lower \
bound: shared work such as WAL writing is not in it); - where their sockets cannot be read \
(other users' /proc/PID/fd need privileges).
The SUMMARY then has a line per configuration in two tables: the sustained rate (as above) \
and the best closed-loop throughput (the step with most requests/s and no deny or error), \
each with its p99, its share of the bare CPU bound (`of bound`), and ratios: `vs sqlite` to \
sqlite x1, `vs x1` to postgres x1, `vs separate` to separate xN (no loss from sharing: \
1.00x). The closed-loop table adds the CPU cores used during that step, `busy` being every \
core in use: near the core count, the machine was the limit and the columns say who used it; \
well below, the nodes were \
waiting (for commits or the log's lock) rather than computing. Sustained \
rates can only be values of --rates; the closed-loop figures are finer. A run takes about \
(number of configurations: 1 + --nodes, plus the controls) × (number of --rates + number \
of --clients) × (--duration-secs + --warmup-secs) seconds: 4 × 9 × 6 s ≈ 4 minutes with the \
defaults, 6 × 9 × 6 s ≈ 5.5 minutes with --separate.

--json prints one JSON object with every figure instead of the tables (with --database-url: \
`configurations`, each with its `name`, `urls`, `open` and `closed`, and `summary` with a \
line per configuration). Progress goes to stderr. Exit status: 0 measured (whatever the \
figures), 64 usage error, 69 the server or the database could not be started or reached or \
refused the request, 70 internal error.";

/// `writ bench authorize`.
#[derive(Args)]
pub struct AuthorizeArgs {
    /// Offered rates of the open-loop steps, requests per second.
    #[arg(
        long,
        value_name = "PER_SEC,…",
        value_delimiter = ',',
        default_value = "500,1000,2000,3000,5000,8000",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    rates: Vec<u32>,
    /// Measured seconds of each open-loop and closed-loop step.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = positive_secs)]
    duration_secs: f64,
    /// Unmeasured seconds before each step, at the same load (0 for none).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = non_negative_secs)]
    warmup_secs: f64,
    /// Concurrent clients of the closed-loop steps.
    #[arg(
        long,
        value_name = "N,…",
        value_delimiter = ',',
        default_value = "1,16,64",
        value_parser = clap::value_parser!(u16).range(1..=4096)
    )]
    clients: Vec<u16>,
    /// Open loop: most requests out at once; one due beyond it is dropped (and counted).
    #[arg(long, value_name = "N", default_value = "256",
          value_parser = clap::value_parser!(u16).range(1..))]
    max_in_flight: u16,
    /// A request unanswered this long is an error (`timeout`).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    timeout_secs: f64,
    /// The p99 latency an offered rate must stay under to count as sustained.
    #[arg(long, value_name = "MS", default_value = "20", value_parser = positive_secs)]
    p99_goal_ms: f64,
    /// Seconds to measure the bare CPU bound for.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = positive_secs)]
    cpu_secs: f64,
    /// Measure a running authority at this base URL (http://) instead of starting one.
    #[arg(long, value_name = "URL", requires_all = ["token", "audience"])]
    url: Option<String>,
    /// With --url: an agent's bearer token.
    #[arg(long, value_name = "TOKEN", requires = "url")]
    token: Option<String>,
    /// With --url: the registered executor to name as audience.
    #[arg(long, value_name = "NAME", requires = "url")]
    audience: Option<String>,
    /// Also measure `writ serve` nodes sharing this PostgreSQL database (each node count on
    /// a fresh schema of its own, dropped afterwards), after the SQLite single node.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    database_url: Option<String>,
    /// With --database-url: the node counts to measure, one configuration each.
    #[arg(
        long,
        value_name = "N,…",
        value_delimiter = ',',
        default_value = "1,2,3",
        requires = "database_url",
        value_parser = clap::value_parser!(u8).range(1..=16)
    )]
    nodes: Vec<u8>,
    /// With --database-url: after `postgres xN` (N > 1), also measure `separate xN`, N
    /// single-node authorities on a schema each, to tell the cost of sharing one database
    /// from the cost of running N nodes on this machine.
    #[arg(long, requires = "database_url")]
    separate: bool,
    /// With --database-url: cap each spawned node (SQLite's too) at this many cores, in a
    /// cgroup of its own, so that N nodes on this machine behave like N machines of that size
    /// (needs a writable cgroup file system, usually root). PostgreSQL and the benchmark are
    /// not capped.
    #[arg(long, value_name = "CORES", requires = "database_url", value_parser = quota::parse_cores)]
    node_cpus: Option<f64>,
    /// Print one JSON object with every figure instead of tables.
    #[arg(long)]
    json: bool,
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("`{text}` is not a positive number (at most 86400)")),
    }
}

fn non_negative_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a number from 0 to 86400")),
    }
}

pub fn run(cmd: BenchCommand) -> Exit {
    match cmd {
        BenchCommand::Authorize(args) => {
            let printed = match &args.database_url {
                None => authorize(&args).map(|r| (r.to_json(), r.to_table())),
                Some(url) => authorize_nodes(&args, url).map(|r| (r.to_json(), r.to_table())),
            };
            match printed {
                Ok((json, table)) => {
                    if args.json {
                        println!("{json}");
                    } else {
                        print!("{table}");
                    }
                    Exit::Success
                }
                Err(e) => e.report(args.json),
            }
        }
    }
}

fn progress(text: &str) {
    eprintln!("writ bench: {text}");
}

fn new_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the runtime: {e}")))
}

/// Measures the nodes' load steps, or stops at Ctrl-C.
fn measure(
    runtime: &tokio::runtime::Runtime,
    args: &AuthorizeArgs,
    nodes: &Arc<[Node]>,
    meter: &Meter,
) -> Result<(Vec<OpenStep>, Vec<ClosedStep>), CliError> {
    runtime.block_on(async {
        tokio::select! {
            result = measure_load(args, nodes, meter) => result,
            _ = tokio::signal::ctrl_c() => Err(CliError::Internal("interrupted".into())),
        }
    })
}

fn bare_cpu_bound(args: &AuthorizeArgs) -> Result<cpu::CpuBound, CliError> {
    progress(&format!(
        "bare CPU bound: deciding and signing in process for {} s",
        args.cpu_secs
    ));
    cpu::measure(Duration::from_secs_f64(args.cpu_secs))
}

fn authorize(args: &AuthorizeArgs) -> Result<Report, CliError> {
    let runtime = new_runtime()?;
    // The server (if spawned) lives until the load is done; its drop stops it.
    let (spawned, target) = match (&args.url, &args.token, &args.audience) {
        (Some(url), Some(token), Some(audience)) => (None, Target::new(url, token, audience)?),
        (Some(_), _, _) => {
            return Err(CliError::Usage("--url needs --token and --audience".into()))
        }
        _ => {
            progress("starting `writ serve` in a temporary data dir");
            let spawned = server::Spawned::sqlite()?;
            let target = Target::new(&spawned.urls[0], &spawned.token, server::AUDIENCE)?;
            (Some(spawned), target)
        }
    };
    let url = target.url.clone();
    let meter = Meter {
        label: String::new(),
        pids: spawned
            .as_ref()
            .map(server::Spawned::pids)
            .unwrap_or_default(),
        postgres: false,
    };
    let nodes: Arc<[Node]> = Arc::new([Node::new(target)]);
    let (open, closed) = measure(&runtime, args, &nodes, &meter)?;
    // Stop the server before measuring CPU, so the two do not compete.
    drop(spawned);
    let cpu = bare_cpu_bound(args)?;
    let summary = Summary::of(&open, &cpu, args.p99_goal_ms);
    Ok(Report {
        url,
        spawned: !meter.pids.is_empty(),
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        max_in_flight: usize::from(args.max_in_flight),
        open,
        closed,
        cpu,
        summary,
    })
}

/// The SQLite single node, then N nodes on PostgreSQL for each N of --nodes, one after the
/// other (each stopped before the next starts), then the bare CPU bound.
fn authorize_nodes(args: &AuthorizeArgs, database_url: &str) -> Result<MultiReport, CliError> {
    let mut counts = args.nodes.clone();
    counts.sort_unstable();
    if counts.windows(2).any(|w| w[0] == w[1]) {
        return Err(CliError::Usage("--nodes lists a node count twice".into()));
    }
    // Checked before anything starts: a quota that cannot be set ends the run.
    let quota = args.node_cpus.map(quota::CpuQuota::new).transpose()?;
    let runtime = new_runtime()?;
    let mut configurations = vec![(Backend::Sqlite, 1)];
    for &n in &args.nodes {
        let n = usize::from(n);
        configurations.push((Backend::Postgres, n));
        if args.separate && n > 1 {
            configurations.push((Backend::Separate, n));
        }
    }
    let mut sections = Vec::new();
    for (backend, n) in configurations {
        let label = format!("{} x{n}", backend.as_str());
        // Each group is one authority (one issuer, one token); a configuration is one group
        // of N nodes, or N groups of one.
        let mut groups = match backend {
            Backend::Sqlite => {
                progress(&format!(
                    "{label}: starting `writ serve` in a temporary data dir"
                ));
                vec![server::Spawned::sqlite()?]
            }
            Backend::Postgres => {
                progress(&format!(
                    "{label}: starting {n} `writ serve` node(s) on a fresh schema"
                ));
                vec![server::Spawned::postgres(database_url, n)?]
            }
            Backend::Separate => {
                progress(&format!(
                    "{label}: starting {n} single `writ serve` nodes, each on a fresh schema"
                ));
                (0..n)
                    .map(|_| server::Spawned::postgres(database_url, 1))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if let Some(quota) = &quota {
            for group in &mut groups {
                group.confine(quota)?;
            }
            progress(&format!(
                "{label}: each node capped at {} core(s)",
                quota.cores()
            ));
        }
        for group in &groups {
            if let Some(schema) = group.schema() {
                progress(&format!(
                    "{label}: {} on schema {schema}",
                    group.urls.join(", ")
                ));
            }
        }
        let nodes = groups
            .iter()
            .flat_map(|group| group.urls.iter().map(move |url| (group, url)))
            .map(|(group, url)| Target::new(url, &group.token, server::AUDIENCE).map(Node::new))
            .collect::<Result<Arc<[Node]>, CliError>>()?;
        let meter = Meter {
            label: format!("{label}: "),
            pids: groups.iter().flat_map(server::Spawned::pids).collect(),
            postgres: backend != Backend::Sqlite,
        };
        let (open, closed) = measure(&runtime, args, &nodes, &meter)?;
        let urls = groups.iter().flat_map(|g| g.urls.clone()).collect();
        // Stopped (and their schemas dropped) before the next configuration starts.
        drop(groups);
        sections.push(Section::new(backend, urls, open, closed));
    }
    let cpu = bare_cpu_bound(args)?;
    let summary = MultiSummary::of(&sections, &cpu, args.p99_goal_ms);
    Ok(MultiReport {
        database: report::redact_url(database_url),
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        max_in_flight: usize::from(args.max_in_flight),
        node_cpus: args.node_cpus,
        configurations: sections,
        cpu,
        summary,
    })
}

/// What each step's CPU meter watches, and how progress lines name the configuration.
struct Meter {
    label: String,
    /// The spawned nodes (none for --url).
    pids: Vec<u32>,
    /// Whether to read the PostgreSQL server's CPU too.
    postgres: bool,
}

impl Meter {
    fn start(&self) -> report::CpuMeter {
        report::CpuMeter::start(&self.pids, self.postgres)
    }
}

/// One request first: an unreachable server or a refused token ends the run with its reason.
async fn preflight(target: &Target, pool: &Pool, timeout: Duration) -> Result<(), CliError> {
    let mut conn = match tokio::time::timeout(timeout, Conn::open(target)).await {
        Ok(Ok(conn)) => conn,
        _ => {
            return Err(CliError::Unavailable(format!(
                "cannot connect to the authority at {}",
                target.url
            )))
        }
    };
    let (status, body) = match tokio::time::timeout(timeout, conn.send(target)).await {
        Ok(Ok(answer)) => answer,
        _ => {
            return Err(CliError::Unavailable(format!(
                "no answer from the authority at {}",
                target.url
            )))
        }
    };
    match classify(status, &body) {
        Outcome::Permit => {
            pool.give(conn);
            Ok(())
        }
        _ => Err(CliError::Unavailable(format!(
            "the authority at {} did not permit the benchmark's request (HTTP {}): {}",
            target.url,
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ))),
    }
}

async fn measure_load(
    args: &AuthorizeArgs,
    nodes: &Arc<[Node]>,
    meter: &Meter,
) -> Result<(Vec<OpenStep>, Vec<ClosedStep>), CliError> {
    let timeout = Duration::from_secs_f64(args.timeout_secs);
    let duration = Duration::from_secs_f64(args.duration_secs);
    let warmup = Duration::from_secs_f64(args.warmup_secs);
    let max_in_flight = usize::from(args.max_in_flight);
    let label = &meter.label;
    for node in nodes.iter() {
        preflight(&node.target, &node.pool, timeout).await?;
    }

    let mut open = Vec::new();
    for &rate in &args.rates {
        progress(&format!(
            "{label}open loop: {rate}/s for {} s (+{} s warm-up)",
            args.duration_secs, args.warmup_secs
        ));
        if !warmup.is_zero() {
            load::open_loop(nodes, rate, warmup, max_in_flight, timeout).await;
        }
        let cpu = meter.start();
        let (tally, elapsed) = load::open_loop(nodes, rate, duration, max_in_flight, timeout).await;
        open.push(OpenStep::new(
            rate,
            tally,
            elapsed,
            cpu.stop(),
            load::idle(nodes),
        ));
    }

    let mut closed = Vec::new();
    for &clients in &args.clients {
        let clients = usize::from(clients);
        progress(&format!(
            "{label}closed loop: {clients} client(s) for {} s (+{} s warm-up)",
            args.duration_secs, args.warmup_secs
        ));
        if !warmup.is_zero() {
            load::closed_loop(nodes, clients, warmup, timeout).await;
        }
        let cpu = meter.start();
        let (tally, elapsed) = load::closed_loop(nodes, clients, duration, timeout).await;
        closed.push(ClosedStep::new(clients, tally, elapsed, cpu.stop()));
    }
    Ok((open, closed))
}
