//! Bounds on what one request, and one principal, may take: a token bucket per principal,
//! a body size limit and a per-request timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Buckets kept at most; past this, idle buckets go first, then the least recently used.
const MAX_BUCKETS: usize = 10_000;

/// A per-principal token bucket: each principal may make `burst` requests at once, refilled
/// at `per_sec` a second. With `per_sec` 0 every request is allowed.
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    max_buckets: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// The tokens at `now`, refilled since `last` and capped at `burst`.
    fn refilled(&self, now: Instant, per_sec: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * per_sec).min(burst)
    }
}

impl RateLimiter {
    /// A limiter allowing `per_sec` requests a second on average and `burst` at once (at
    /// least 1) to each principal; `per_sec` 0 turns it off.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        Self::with_capacity(per_sec, burst, MAX_BUCKETS)
    }

    fn with_capacity(per_sec: u32, burst: u32, max_buckets: usize) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            max_buckets: max_buckets.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `principal`'s bucket at `now`; false when it is empty.
    pub(crate) fn allow(&self, principal: &str, now: Instant) -> bool {
        if self.per_sec <= 0.0 {
            return true;
        }
        // A poisoned map only holds counters: keep using it rather than refuse everyone.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(principal) {
            let tokens = bucket.refilled(now, self.per_sec, self.burst);
            bucket.last = now;
            if tokens >= 1.0 {
                bucket.tokens = tokens - 1.0;
                return true;
            }
            bucket.tokens = tokens;
            return false;
        }
        if buckets.len() >= self.max_buckets {
            self.evict(&mut buckets, now);
        }
        buckets.insert(
            principal.to_owned(),
            Bucket {
                tokens: self.burst - 1.0,
                last: now,
            },
        );
        true
    }

    /// Makes room for one more bucket. A bucket that has refilled completely says no more
    /// than a missing one, so those go first; if none has, the least recently used goes
    /// (its principal gets a fresh burst, the price of a bounded map).
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, b| b.refilled(now, self.per_sec, self.burst) < self.burst);
        if buckets.len() < self.max_buckets {
            return;
        }
        let oldest = buckets
            .iter()
            .min_by_key(|(_, b)| b.last)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            buckets.remove(&name);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Answers 503 `timeout` when the rest of the stack takes longer than `limit`. The handler's
/// future is dropped; store work already handed to a blocking thread may still finish (a
/// decision may be logged), but its answer, and any writ, is never sent.
pub(crate) async fn timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, limit_ms = limit.as_millis(), "request timed out");
            ApiError::Timeout.into_response()
        }
    }
}

/// Reads the whole body up to `max` bytes before any handler runs, so every route answers
/// 413 `payload_too_large` to a larger one, whether it announced its length or not.
pub(crate) async fn limit_body(State(max): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return too_large(max);
    }
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(max),
        Err(e) => {
            return ApiError::BadRequest(format!("body: {e}")).into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(max: usize) -> Response {
    ApiError::PayloadTooLarge(max).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    #[test]
    fn a_burst_then_the_average() {
        let limiter = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allow("a", t0));
        }
        assert!(!limiter.allow("a", t0));
        // Another principal has its own bucket.
        assert!(limiter.allow("b", t0));
        // Half a second refills one token at 2/s.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.allow("a", t1));
        assert!(!limiter.allow("a", t1));
        // Never more than the burst, however long the wait.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.allow("a", t2));
        }
        assert!(!limiter.allow("a", t2));
    }

    #[test]
    fn refused_requests_do_not_drain_the_bucket_further() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        assert!(limiter.allow("a", t0));
        for i in 1..10 {
            assert!(!limiter.allow("a", t0 + Duration::from_millis(i * 10)));
        }
        assert!(limiter.allow("a", t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn zero_per_second_is_off() {
        let limiter = RateLimiter::new(0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.allow("a", t0));
        }
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = RateLimiter::with_capacity(1, 2, 4);
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(limiter.allow(&format!("p{i}"), t0 + Duration::from_millis(i)));
            assert!(limiter.len() <= 4);
        }
        // Idle buckets go before busy ones: `busy` keeps its emptied bucket.
        let limiter = RateLimiter::with_capacity(1, 2, 2);
        assert!(limiter.allow("idle", t0));
        assert!(limiter.allow("busy", t0 + Duration::from_secs(5)));
        assert!(limiter.allow("busy", t0 + Duration::from_secs(5)));
        assert!(limiter.allow("new", t0 + Duration::from_secs(5)));
        assert!(!limiter.allow("busy", t0 + Duration::from_secs(5)));
        assert_eq!(limiter.len(), 2);
    }

    async fn status(app: Router, method: &str, body: Body, length: Option<usize>) -> StatusCode {
        let mut req = Request::builder().method(method).uri("/");
        if let Some(n) = length {
            req = req.header(header::CONTENT_LENGTH, n);
        }
        app.oneshot(req.body(body).unwrap()).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_slow_handler_times_out_with_503() {
        let app = |limit_ms| {
            Router::new()
                .route(
                    "/",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "late"
                    }),
                )
                .layer(axum::middleware::from_fn_with_state(
                    Duration::from_millis(limit_ms),
                    timeout,
                ))
        };
        let res = app(20)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "timeout");
        assert_eq!(
            status(app(5_000), "GET", Body::empty(), None).await,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_announced_or_not() {
        let app = Router::new()
            .route(
                "/",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(10usize, limit_body));
        assert_eq!(
            status(app.clone(), "POST", Body::from("0123456789"), Some(10)).await,
            StatusCode::OK
        );
        assert_eq!(
            status(app.clone(), "POST", Body::from("0123456789a"), Some(11)).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // Streamed without a length.
        let chunks = streamed(&["01234", "56789", "ab"]).await;
        assert_eq!(
            status(app.clone(), "POST", chunks, None).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let chunks = streamed(&["01234", "56789"]).await;
        assert_eq!(status(app, "POST", chunks, None).await, StatusCode::OK);
    }

    /// A body of `chunks`, its length unknown in advance.
    async fn streamed(chunks: &[&'static str]) -> Body {
        let (mut tx, body) =
            http_body_util::channel::Channel::<axum::body::Bytes, std::io::Error>::new(8);
        for c in chunks {
            tx.send_data(axum::body::Bytes::from_static(c.as_bytes()))
                .await
                .unwrap();
        }
        drop(tx);
        Body::new(body)
    }
}
