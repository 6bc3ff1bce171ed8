//! `POST /v1/authorize` and what it promises: the caller is who authenticated, every
//! decision is logged before it is answered, and a writ verifies with the served JWKS.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use writ_authority::{router, Authority, AuthorityConfig, Stores};
use writ_core::{
    canonical, Expectation, KeySet, Sha256Digest, SigningKey, StateChecks, UnixTime, Verdict,
    Verifier,
};
use writ_log::{Checkpoint, NoteSigner, Proof};
use writ_store::{Role, SqliteLog, SqlitePrincipals};

pub const ISSUER: &str = "https://writ.test";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub app: Router,
    pub authority: Arc<Authority>,
    pub agent: String,
    pub executor: String,
    pub admin: String,
}

fn token(store: &SqlitePrincipals, name: &str, role: Role, groups: &[String]) -> String {
    let token = format!("writ_test_{name}");
    store
        .add(name, role, groups, &Sha256Digest::of(token.as_bytes()), 1)
        .unwrap();
    token
}

pub fn fixture() -> Fixture {
    fixture_with(|_| {})
}

/// A fixture whose configuration `configure` adjusts.
pub fn fixture_with(configure: impl FnOnce(&mut AuthorityConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("writ.db");
    let principals = SqlitePrincipals::open(&db).unwrap();
    let agent = token(&principals, "build-agent", Role::Agent, &[]);
    let executor = token(&principals, "gate-1", Role::Executor, &[]);
    token(&principals, "gate-2", Role::Executor, &[]);
    let admin = token(&principals, "admin", Role::Admin, &[]);
    drop(principals);
    SqliteLog::create(&db, "writ.test/log", log_signer()).unwrap();
    let mut config = AuthorityConfig::new(ISSUER);
    configure(&mut config);
    let authority = start(&db, config);
    Fixture {
        dir,
        app: router(authority.clone()),
        authority,
        agent,
        executor,
        admin,
    }
}

fn log_signer() -> NoteSigner {
    NoteSigner::from_seed("writ.test/log", &[3; 32]).unwrap()
}

/// An authority over the stores in `db`, as `writ serve` starts one (again).
pub fn start(db: &std::path::Path, config: AuthorityConfig) -> Arc<Authority> {
    let policy = writ_policy::PolicySet::from_texts(
        writ_policy::EXAMPLE_SCHEMA,
        writ_policy::EXAMPLE_POLICIES,
        writ_policy::EXAMPLE_ENTITIES,
    )
    .unwrap();
    let stores = Stores::sqlite(db, SqliteLog::open_writer(db, log_signer()).unwrap()).unwrap();
    Arc::new(Authority::new(config, SigningKey::from_seed(&[9; 32]), stores, policy).unwrap())
}

impl Fixture {
    /// The authority started again on the same stores; the old one, idle, is dropped.
    pub fn restart(&mut self) {
        let config = self.authority.config().clone();
        self.app = Router::new();
        self.authority = start(&self.dir.path().join("writ.db"), config);
        self.app = router(self.authority.clone());
    }
}

pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(body.map(Body::from).unwrap_or_default())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

pub fn git_status() -> Value {
    json!({"argv": ["git", "status"], "cwd": "/work", "env": {}})
}

pub fn request(action: &str, resource: &str, args: Value) -> String {
    json!({"action": action, "resource": resource, "args": args, "audience": "gate-1"}).to_string()
}

/// The decision entry at `index` is in the log, and its inclusion proof verifies against the
/// signed checkpoint the log serves.
async fn assert_logged(f: &Fixture, index: u64) -> Value {
    let (_, entries) = call(
        &f.app,
        "GET",
        &format!("/v1/log/entries?from={index}&limit=1"),
        None,
        None,
    )
    .await;
    let entry = entries["entries"][0]["entry"].clone();
    assert_eq!(entry["type"], "decision");
    let (status, proof) = call(
        &f.app,
        "GET",
        &format!("/v1/log/proof/inclusion?index={index}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let proof = Proof::from_json(&proof.to_string()).unwrap();
    proof.verify().unwrap();
    let checkpoint = Checkpoint::open(
        f.authority.log().latest_checkpoint().unwrap().as_bytes(),
        &[f.authority.log().verifier().clone()],
    )
    .unwrap();
    let Proof::Inclusion(p) = proof else {
        panic!("inclusion")
    };
    assert_eq!(p.root_hash, checkpoint.root);
    assert_eq!(
        p.leaf_hash,
        writ_log::leaf_hash(&canonical::to_canonical_vec(&entry))
    );
    entry
}

#[tokio::test]
async fn permit_is_logged_and_verifies_with_the_served_jwks() {
    let f = fixture();
    let (status, body) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "permit", "{body}");
    let writ = body["writ"].as_str().unwrap();
    let entry = assert_logged(&f, body["log_index"].as_u64().unwrap()).await;
    assert_eq!(entry["decision"], "permit");
    assert_eq!(entry["jti"], body["jti"]);
    assert_eq!(
        entry["writ_sha256"],
        Sha256Digest::of(writ.as_bytes()).to_hex()
    );
    assert_eq!(entry["principal"], "build-agent");

    let (_, jwks) = call(&f.app, "GET", "/.well-known/jwks.json", None, None).await;
    let keys = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
    let args = git_status();
    let now = UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let verdict = Verifier::new(ISSUER, keys).verify(
        writ,
        &Expectation::new("gate-1", "exec", "/usr/bin/git", &args),
        now,
        StateChecks::Offline,
    );
    let Verdict::Permit(verified) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(verified.claims().sub, "build-agent");
    assert!(verified.claims().exp - verified.claims().iat <= 300);
}

#[tokio::test]
async fn denials_name_why_and_are_logged() {
    let f = fixture();
    let cases = [
        request("exec", "/usr/bin/rm", json!({"argv": ["rm", "-rf", "./build"], "cwd": "/work", "env": {}})),
        request("exec", "/usr/bin/python3", json!({"argv": ["python3"], "cwd": "/work", "env": {}})),
        request("teleport", "/usr/bin/git", git_status()),
        json!({"action": "exec", "resource": "/usr/bin/git", "args": git_status(), "audience": "nobody"}).to_string(),
        json!({"action": "exec", "resource": "/usr/bin/git", "args": git_status(), "audience": "build-agent"}).to_string(),
        request("exec", "/usr/bin/git", json!({"argv": ["git", "status"], "amount": 9007199254740993u64})),
    ];
    for body in cases {
        let (status, res) = call(
            &f.app,
            "POST",
            "/v1/authorize",
            Some(&f.agent),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}: {res}");
        assert_eq!(res["decision"], "deny", "{body}: {res}");
        assert!(res.get("writ").is_none());
        let reasons = res["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty(), "{body}");
        let entry = assert_logged(&f, res["log_index"].as_u64().unwrap()).await;
        assert_eq!(entry["decision"], "deny");
        assert_eq!(entry["reasons"], res["reasons"]);
    }
}

#[tokio::test]
async fn the_caller_is_who_authenticated() {
    let f = fixture();
    let body = request("exec", "/usr/bin/git", git_status());
    let (status, res) = call(&f.app, "POST", "/v1/authorize", None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(res["error"]["code"], "unauthenticated");
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some("writ_forged"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An executor does not ask for writs.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.executor),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A body that names a principal is refused.
    let claims_other = json!({"action": "exec", "resource": "/usr/bin/git", "args": git_status(), "audience": "gate-1", "sub": "admin"});
    let (status, res) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(claims_other.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    // Duplicate keys are refused before anything else.
    let dup = r#"{"action":"exec","resource":"/usr/bin/git","args":{"argv":["git","status"]},"audience":"gate-1","audience":"gate-2"}"#;
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(dup.into()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // None of these reached the transparency log, which holds only the first key and the
    // policy in force.
    assert_eq!(f.authority.log().size().unwrap(), 2);
    // A disabled principal's token stops working at once.
    f.authority.principals().disable("build-agent").unwrap();
    let (status, _) = call(&f.app, "POST", "/v1/authorize", Some(&f.agent), Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn health_and_log_endpoints() {
    let f = fixture();
    assert_eq!(
        call(&f.app, "GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, ready) = call(&f.app, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["log_size"], 2);
    // A new authority logs its first signing key, then the policy set in force with its
    // digest and full text.
    let (_, entries) = call(&f.app, "GET", "/v1/log/entries?from=0", None, None).await;
    let key = &entries["entries"][0]["entry"];
    assert_eq!(key["type"], "key");
    assert_eq!(key["event"], "added");
    assert_eq!(
        key["kid"],
        f.authority.keys().iter().next().unwrap().kid().as_str()
    );
    let policy = &entries["entries"][1]["entry"];
    assert_eq!(policy["type"], "policy");
    assert_eq!(policy["digest"], f.authority.policy().digest().to_hex());
    assert!(policy["source"].to_string().contains("forbid"));
    let (status, _) = call(&f.app, "GET", "/v1/log/proof/inclusion?index=5", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, vkey) = call(&f.app, "GET", "/v1/log/vkey", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(vkey.as_str().unwrap().starts_with("writ.test/log+"));
}

#[tokio::test]
async fn metrics_count_decisions_denials_and_unauthenticated_calls() {
    let f = fixture();
    // An executor may not ask for writs: 403, counted, and not in the transparency log.
    let (status, _) = call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.executor),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    let rm = json!({"argv": ["rm", "-rf", "./build"], "cwd": "/work", "env": {}});
    call(
        &f.app,
        "POST",
        "/v1/authorize",
        Some(&f.agent),
        Some(request("exec", "/usr/bin/rm", rm)),
    )
    .await;
    call(
        &f.app,
        "POST",
        "/v1/authorize",
        None,
        Some(request("exec", "/usr/bin/git", git_status())),
    )
    .await;
    let (status, text) = call(&f.app, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    for line in [
        r#"writ_decisions_total{endpoint="authorize",decision="permit"} 1"#,
        r#"writ_decisions_total{endpoint="authorize",decision="deny"} 1"#,
        r#"writ_denials_total{endpoint="authorize",code="forbid"} 1"#,
        "writ_unauthenticated_total 1",
        "writ_forbidden_total 1",
        "writ_log_size 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(
        text.contains("writ_request_duration_seconds_count{endpoint=\"authorize\"} 2"),
        "{text}"
    );
}
