//! `writ bench`: what the authority sustains, measured over HTTP on loopback.

mod client;
mod cpu;
mod load;
mod report;
mod server;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::error::CliError;
use crate::exit::Exit;

use self::client::{classify, Conn, Outcome, Target};
use self::load::Pool;
use self::report::{ClosedStep, OpenStep, Report, Summary};

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

--json prints one JSON object with every figure instead of the tables. Progress goes to \
stderr. Exit status: 0 measured (whatever the figures), 64 usage error, 69 the server could \
not be started or reached or refused the request, 70 internal error.";

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
        BenchCommand::Authorize(args) => match authorize(&args) {
            Ok(report) => {
                if args.json {
                    println!("{}", report.to_json());
                } else {
                    print!("{}", report.to_table());
                }
                Exit::Success
            }
            Err(e) => e.report(args.json),
        },
    }
}

fn progress(text: &str) {
    eprintln!("writ bench: {text}");
}

fn authorize(args: &AuthorizeArgs) -> Result<Report, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the runtime: {e}")))?;
    // The server (if spawned) lives until the load is done; its drop stops it.
    let (spawned, target) = match (&args.url, &args.token, &args.audience) {
        (Some(url), Some(token), Some(audience)) => (None, Target::new(url, token, audience)?),
        (Some(_), _, _) => {
            return Err(CliError::Usage("--url needs --token and --audience".into()))
        }
        _ => {
            progress("starting `writ serve` in a temporary data dir");
            let spawned = server::Spawned::start()?;
            let target = Target::new(&spawned.url, &spawned.token, server::AUDIENCE)?;
            (Some(spawned), target)
        }
    };
    let server_pid = spawned.as_ref().map(server::Spawned::pid);
    let target = Arc::new(target);
    let (open, closed) = runtime.block_on(async {
        tokio::select! {
            result = measure_load(args, &target, server_pid) => result,
            _ = tokio::signal::ctrl_c() => Err(CliError::Internal("interrupted".into())),
        }
    })?;
    // Stop the server before measuring CPU, so the two do not compete.
    drop(spawned);
    progress(&format!(
        "bare CPU bound: deciding and signing in process for {} s",
        args.cpu_secs
    ));
    let cpu = cpu::measure(Duration::from_secs_f64(args.cpu_secs))?;
    let summary = Summary::of(&open, &cpu, args.p99_goal_ms);
    Ok(Report {
        url: target.url.clone(),
        spawned: server_pid.is_some(),
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        max_in_flight: usize::from(args.max_in_flight),
        open,
        closed,
        cpu,
        summary,
    })
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
    target: &Arc<Target>,
    server_pid: Option<u32>,
) -> Result<(Vec<OpenStep>, Vec<ClosedStep>), CliError> {
    let pool = Pool::default();
    let timeout = Duration::from_secs_f64(args.timeout_secs);
    let duration = Duration::from_secs_f64(args.duration_secs);
    let warmup = Duration::from_secs_f64(args.warmup_secs);
    let max_in_flight = usize::from(args.max_in_flight);
    preflight(target, &pool, timeout).await?;

    let mut open = Vec::new();
    for &rate in &args.rates {
        progress(&format!(
            "open loop: {rate}/s for {} s (+{} s warm-up)",
            args.duration_secs, args.warmup_secs
        ));
        if !warmup.is_zero() {
            load::open_loop(target, &pool, rate, warmup, max_in_flight, timeout).await;
        }
        let cpu = report::CpuMeter::start(server_pid);
        let (tally, elapsed) =
            load::open_loop(target, &pool, rate, duration, max_in_flight, timeout).await;
        open.push(OpenStep::new(rate, tally, elapsed, cpu.stop(), pool.idle()));
    }

    let mut closed = Vec::new();
    for &clients in &args.clients {
        let clients = usize::from(clients);
        progress(&format!(
            "closed loop: {clients} client(s) for {} s (+{} s warm-up)",
            args.duration_secs, args.warmup_secs
        ));
        if !warmup.is_zero() {
            load::closed_loop(target, &pool, clients, warmup, timeout).await;
        }
        let cpu = report::CpuMeter::start(server_pid);
        let (tally, elapsed) = load::closed_loop(target, &pool, clients, duration, timeout).await;
        closed.push(ClosedStep::new(clients, tally, elapsed, cpu.stop()));
    }
    Ok((open, closed))
}
