//! Prometheus metrics: decisions by outcome, denial codes, unauthenticated and rate-limited
//! calls, latencies and log size. They go to `/metrics`, never to the transparency log.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decision {
    endpoint: &'static str,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    endpoint: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: &'static str,
}

type LatencyFamily = Family<Endpoint, Histogram, fn() -> Histogram>;

/// The authority's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    decisions: Family<Decision, Counter>,
    denials: Family<Code, Counter>,
    unauthenticated: Counter,
    forbidden: Counter,
    rate_limited: Counter,
    latency: LatencyFamily,
    log_size: Gauge,
}

fn latency_histogram() -> Histogram {
    // 250 µs to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("writ");
        let decisions = Family::<Decision, Counter>::default();
        let denials = Family::<Code, Counter>::default();
        let unauthenticated = Counter::default();
        let forbidden = Counter::default();
        let rate_limited = Counter::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let log_size = Gauge::default();
        registry.register(
            "decisions",
            "Decisions by endpoint and outcome",
            decisions.clone(),
        );
        registry.register("denials", "Denials by endpoint and code", denials.clone());
        registry.register(
            "unauthenticated",
            "Calls without a valid bearer token",
            unauthenticated.clone(),
        );
        registry.register(
            "forbidden",
            "Authenticated calls the caller's role may not make",
            forbidden.clone(),
        );
        registry.register(
            "rate_limited",
            "Calls refused over their principal's rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer, by endpoint",
            latency.clone(),
        );
        registry.register(
            "log_size",
            "Entries in the transparency log",
            log_size.clone(),
        );
        Self {
            registry,
            decisions,
            denials,
            unauthenticated,
            forbidden,
            rate_limited,
            latency,
            log_size,
        }
    }

    /// Records one answered decision and its denial codes.
    pub(crate) fn decision<'a>(
        &self,
        endpoint: &'static str,
        decision: &str,
        codes: impl IntoIterator<Item = &'a str>,
        seconds: f64,
    ) {
        self.decisions
            .get_or_create(&Decision {
                endpoint,
                decision: decision.to_owned(),
            })
            .inc();
        for code in codes {
            self.denials
                .get_or_create(&Code {
                    endpoint,
                    code: code.to_owned(),
                })
                .inc();
        }
        self.latency
            .get_or_create(&Endpoint { endpoint })
            .observe(seconds);
    }

    pub(crate) fn unauthenticated(&self) {
        self.unauthenticated.inc();
    }

    pub(crate) fn forbidden(&self) {
        self.forbidden.inc();
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The text exposition, with the log size as of now.
    pub(crate) fn render(&self, log_size: u64) -> String {
        self.log_size
            .set(i64::try_from(log_size).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
