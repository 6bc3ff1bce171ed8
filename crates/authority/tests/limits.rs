//! Bounded requests: a rate limit per principal (429), a body size limit (413). The request
//! timeout is tested beside its middleware, with a handler that sleeps.

use axum::http::StatusCode;
use axum::Router;

use crate::authorize::{call, fixture_with, git_status, request};

/// A request the rate limit sees (it is authenticated) but that is refused before any store
/// work, so the test does not race the refill.
async fn cheap_call(app: &Router, token: &str) -> (StatusCode, serde_json::Value) {
    call(app, "POST", "/v1/authorize", Some(token), Some("{".into())).await
}

#[tokio::test]
async fn a_principal_over_its_burst_gets_429_and_others_do_not() {
    // One a second refills far slower than this test asks.
    let f = fixture_with(|c| {
        c.rate_limit_per_sec = 1;
        c.rate_limit_burst = 3;
    });
    for _ in 0..3 {
        let (status, body) = cheap_call(&f.app, &f.agent).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, body) = cheap_call(&f.app, &f.agent).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // A real authorization is refused too: nothing is decided, nothing is logged.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another principal has its own bucket: its request is decided (and logged).
    let (status, body) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.admin),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["log_index"].is_u64(), "{body}");
    // Unauthenticated calls are answered 401, not counted against anyone.
    let (status, _) = cheap_call(&f.app, "writ_test_nobody").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Refusals are counted.
    let (_, metrics) = call(&f.app, "GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("writ_rate_limited_total 2"), "{metrics}");
}

#[tokio::test]
async fn a_zero_rate_is_no_limit() {
    let f = fixture_with(|c| {
        c.rate_limit_per_sec = 0;
        c.rate_limit_burst = 1;
    });
    for _ in 0..20 {
        let (status, body) = cheap_call(&f.app, &f.agent).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let f = fixture_with(|c| c.max_body_bytes = 1024);
    let small = request("exec", "/usr/bin/git", git_status());
    let (status, body) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(small)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let big = serde_json::json!({
        "action": "exec",
        "resource": "/usr/bin/git",
        "args": git_status(),
        "audience": "gate-1",
        "purpose": "x".repeat(2048),
    })
    .to_string();
    let (status, body) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    // The same body fits under the default limit.
    let f = fixture_with(|_| {});
    let big = serde_json::json!({
        "action": "exec",
        "resource": "/usr/bin/git",
        "args": git_status(),
        "audience": "gate-1",
        "purpose": "x".repeat(2048),
    })
    .to_string();
    let (status, body) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(big)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
