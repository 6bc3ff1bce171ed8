//! Offering load: open loop (requests leave on a fixed schedule, whatever the answers do)
//! and closed loop (each client waits for its answer before it asks again), spread
//! round-robin over one or more authority nodes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::{classify, Conn, Outcome, Target};
use super::stats::Tally;

/// Idle keep-alive connections, kept from one step to the next.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl Pool {
    fn take(&self) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Keeps `conn` for later requests, if it can take more.
    pub fn give(&self, conn: Conn) {
        if conn.reusable() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }

    /// Connections open and idle.
    pub fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One authority node under load: where its requests go, and its idle connections (a
/// connection belongs to one node).
#[derive(Clone)]
pub struct Node {
    pub target: Arc<Target>,
    pub pool: Pool,
}

impl Node {
    pub fn new(target: Target) -> Self {
        Node {
            target: Arc::new(target),
            pool: Pool::default(),
        }
    }
}

/// Idle connections over every node.
pub fn idle(nodes: &[Node]) -> usize {
    nodes.iter().map(|n| n.pool.idle()).sum()
}

/// One request on a pooled (or new) connection: its outcome and when it ended.
async fn one(target: &Target, pool: &Pool, timeout: Duration) -> (Outcome, Instant) {
    let mut conn = match pool.take() {
        Some(conn) => conn,
        None => match tokio::time::timeout(timeout, Conn::open(target)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(failure)) => return (Outcome::Failed(failure), Instant::now()),
            Err(_) => {
                return (
                    Outcome::Failed(super::client::Failure::Timeout),
                    Instant::now(),
                )
            }
        },
    };
    let outcome = match tokio::time::timeout(timeout, conn.send(target)).await {
        Ok(Ok((status, body))) => classify(status, &body),
        Ok(Err(failure)) => Outcome::Failed(failure),
        Err(_) => Outcome::Failed(super::client::Failure::Timeout),
    };
    let done = Instant::now();
    // A connection whose request failed or timed out is not trusted again.
    if !matches!(outcome, Outcome::Failed(_)) {
        pool.give(conn);
    }
    (outcome, done)
}

/// Open loop: `rate` requests per second for `duration`, the i-th due at `start + i/rate`
/// (and sent to node i mod N) whatever happened to the earlier ones. A request due while
/// `max_in_flight` are out is dropped (counted, never sent late). Latency counts from the due time, so a stalled server
/// shows as latency rather than as a lower offered rate (no coordinated omission).
///
/// The schedule is kept by a thread of its own that sleeps until each due time (the async
/// timer only wakes on millisecond ticks) and spawns the request onto this runtime.
pub async fn open_loop(
    nodes: &Arc<[Node]>,
    rate: u32,
    duration: Duration,
    max_in_flight: usize,
    timeout: Duration,
) -> (Tally, Duration) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let runtime = tokio::runtime::Handle::current();
    let start = Instant::now();
    let due = move |i: u64| {
        let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
        start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    };
    let (scheduled_tx, scheduled_rx) = tokio::sync::oneshot::channel();
    {
        let (nodes, tally, in_flight) = (nodes.clone(), tally.clone(), in_flight.clone());
        std::thread::spawn(move || {
            let mut dropped = 0u64;
            let mut i = 0u64;
            while i < total {
                let wait = due(i).saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                let now = Instant::now();
                while i < total && due(i) <= now {
                    let scheduled = due(i);
                    let node = &nodes[usize::try_from(i % nodes.len() as u64).unwrap_or(0)];
                    i += 1;
                    if in_flight.load(Ordering::Relaxed) >= max_in_flight {
                        dropped += 1;
                        continue;
                    }
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let (target, pool, tally, in_flight) = (
                        node.target.clone(),
                        node.pool.clone(),
                        tally.clone(),
                        in_flight.clone(),
                    );
                    // Detached: completion is tracked by `in_flight`.
                    drop(runtime.spawn(async move {
                        let lag = Instant::now().saturating_duration_since(scheduled);
                        let (outcome, done) = one(&target, &pool, timeout).await;
                        tally.lock().unwrap_or_else(PoisonError::into_inner).record(
                            outcome,
                            done.saturating_duration_since(scheduled),
                            Some(lag),
                            done,
                        );
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                    }));
                }
            }
            let _ = scheduled_tx.send(dropped);
        });
    }
    let dropped = scheduled_rx.await.unwrap_or_default();
    // Every request has a timeout, so this ends.
    while in_flight.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    tally.dropped = dropped;
    let elapsed = tally
        .last_done
        .map_or(duration, |t| t.saturating_duration_since(start))
        .max(duration);
    (tally, elapsed)
}

/// Closed loop: `clients` connections, each sending its next request as soon as the previous
/// one is answered, until `duration` has passed. Client c talks to node c mod N.
pub async fn closed_loop(
    nodes: &[Node],
    clients: usize,
    duration: Duration,
    timeout: Duration,
) -> (Tally, Duration) {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for c in 0..clients {
        let node = &nodes[c % nodes.len()];
        let (target, pool) = (node.target.clone(), node.pool.clone());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let (outcome, done) = one(&target, &pool, timeout).await;
                tally.record(outcome, done.saturating_duration_since(sent), None, done);
                if matches!(outcome, Outcome::Failed(_)) {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(tally) = joined {
            all.merge(tally);
        }
    }
    let elapsed = all
        .last_done
        .map_or(duration, |t| t.saturating_duration_since(start))
        .max(Duration::from_millis(1));
    (all, elapsed)
}
