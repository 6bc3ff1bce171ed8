//! Several `writ serve` processes on one PostgreSQL database act as one authority (DESIGN.md,
//! "Stores and scale"; SCENARIOS.md 7). These tests run when `WRIT_TEST_DATABASE_URL` is set
//! (CI sets it); each uses a fresh schema of its own.

use std::process::Child;

use serde_json::{json, Value};

use crate::support::server::{get, post};
use crate::support::{run, writ_cmd};

/// Three nodes on one database, sharing one data dir (issuer, keys, admin token).
struct Cluster {
    nodes: Vec<(Child, String)>,
    dir: tempfile::TempDir,
    admin: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn database() -> Option<String> {
    match std::env::var("WRIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(writ_store::postgres::scratch_url(&url).unwrap()),
        _ => {
            eprintln!("skipped: WRIT_TEST_DATABASE_URL is not set (PostgreSQL tests)");
            None
        }
    }
}

fn start_node(data: &std::path::Path, database: &str) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = writ_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-per-sec",
            "0",
        ])
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            database,
        ])
        .env("WRIT_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("writ serve says where it listens")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

impl Cluster {
    fn start(n: usize, database: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The first node makes the data dir; the others start on it together.
        let mut nodes = vec![start_node(&data, database)];
        let rest: Vec<_> = (1..n)
            .map(|_| {
                let (data, database) = (data.clone(), database.to_owned());
                std::thread::spawn(move || start_node(&data, &database))
            })
            .collect();
        nodes.extend(rest.into_iter().map(|t| t.join().unwrap()));
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self { nodes, dir, admin }
    }

    fn url(&self, node: usize) -> &str {
        &self.nodes[node].1
    }

    /// Registers a principal at `node`; its token.
    fn register(&self, node: usize, name: &str, role: &str, groups: &[&str]) -> String {
        let (status, body) = post(
            &format!("{}/v1/principals", self.url(node)),
            Some(&self.admin),
            &json!({"name": name, "role": role, "groups": groups}),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

fn git_args() -> Value {
    json!({"argv": ["git", "status"], "cwd": "/work", "env": {}})
}

fn authorize(url: &str, agent: &str) -> Value {
    let (status, body) = post(
        &format!("{url}/v1/authorize"),
        Some(agent),
        &json!({"action": "exec", "resource": "/usr/bin/git", "args": git_args(),
                "audience": "gate-1"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "permit", "{body}");
    body
}

fn consume(url: &str, gate: &str, writ: &str, nonce: &str) -> (u16, Value) {
    post(
        &format!("{url}/v1/consume"),
        Some(gate),
        &json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git",
                "args": git_args(), "nonce": nonce}),
    )
}

#[test]
fn three_nodes_on_one_database_act_as_one_authority() {
    let Some(database) = database() else { return };
    let cluster = Cluster::start(3, &database);
    let agent = cluster.register(0, "build-agent", "agent", &[]);
    // Registered at one node, known at every node.
    let gate = cluster.register(1, "gate-1", "executor", &[]);

    // Issued by A, consumed at B, a replay at C.
    let writ = authorize(cluster.url(0), &agent)["writ"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, first) = consume(cluster.url(1), &gate, &writ, "n1");
    assert_eq!(
        (status, first["decision"].as_str()),
        (200, Some("permit")),
        "{first}"
    );
    let (_, again) = consume(cluster.url(2), &gate, &writ, "n2");
    assert_eq!(again["code"], "replay_detected", "{again}");

    // Revoked at A, denied at C at once.
    let answer = authorize(cluster.url(1), &agent);
    let (status, body) = post(
        &format!("{}/v1/revocations", cluster.url(0)),
        Some(&cluster.admin),
        &json!({"writ": answer["jti"]}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, denied) = consume(
        cluster.url(2),
        &gate,
        answer["writ"].as_str().unwrap(),
        "n3",
    );
    assert_eq!(denied["code"], "revoked_authorization", "{denied}");

    let vkey = get(&format!("{}/v1/log/vkey", cluster.url(2)))
        .trim()
        .to_owned();
    let early = get(&format!("{}/v1/log/checkpoint", cluster.url(1)));

    // 200 rounds: consumers of one single-use writ spread over the three nodes race; exactly
    // one of them gets the use.
    for round in 0..200 {
        let writ = authorize(cluster.url(round % 3), &agent)["writ"]
            .as_str()
            .unwrap()
            .to_owned();
        let racers: Vec<_> = (0..6)
            .map(|k| {
                let (url, gate, writ) = (cluster.url(k % 3).to_owned(), gate.clone(), writ.clone());
                std::thread::spawn(move || consume(&url, &gate, &writ, &format!("r{round}-{k}")))
            })
            .collect();
        let mut permits = 0;
        for racer in racers {
            let (status, body) = racer.join().unwrap();
            assert_eq!(status, 200, "{body}");
            match body["decision"].as_str() {
                Some("permit") => permits += 1,
                _ => assert_eq!(body["code"], "replay_detected", "{body}"),
            }
        }
        assert_eq!(permits, 1, "round {round}");
    }

    // One log: at every node it verifies entry by entry against the same key, and extends
    // the checkpoint kept before the races (checked with the served consistency proof).
    let kept = cluster.dir.path().join("kept.checkpoint");
    std::fs::write(&kept, &early).unwrap();
    for k in 0..3 {
        let out = run(
            &[
                "log",
                "verify",
                "--url",
                cluster.url(k),
                "--vkey",
                &vkey,
                "--checkpoint",
                kept.to_str().unwrap(),
                "--entries",
            ],
            None,
        );
        assert_eq!(
            crate::support::status(&out),
            0,
            "node {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = &cluster.dir;
}

fn readyz(url: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(&format!("{url}/readyz"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The database stops mid-run: no permit and no consumption while it is down, and the nodes
/// serve again by themselves once it is back.
#[test]
fn while_the_database_is_down_nothing_is_permitted_and_service_resumes_after() {
    if database().is_none() {
        return;
    }
    let Some(pg) = crate::support::postgres::ThrowawayPg::start() else {
        panic!("PostgreSQL's initdb and pg_ctl are needed when WRIT_TEST_DATABASE_URL is set");
    };
    let cluster = Cluster::start(2, &pg.url());
    let agent = cluster.register(0, "build-agent", "agent", &[]);
    let gate = cluster.register(0, "gate-1", "executor", &[]);
    let kept = authorize(cluster.url(0), &agent)["writ"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(readyz(cluster.url(1)), 200);

    pg.down();
    for k in 0..2 {
        let url = cluster.url(k);
        let (status, body) = post(
            &format!("{url}/v1/authorize"),
            Some(&agent),
            &json!({"action": "exec", "resource": "/usr/bin/git", "args": git_args(),
                    "audience": "gate-1"}),
        );
        assert_eq!(status, 503, "node {k} during the outage: {body}");
        assert!(body.get("writ").is_none());
        let (status, body) = consume(url, &gate, &kept, &format!("down-{k}"));
        assert_ne!(body["decision"], "permit", "node {k}: {body}");
        assert!(
            status == 503 || body["code"] == "status_unavailable",
            "node {k}: {status} {body}"
        );
        assert_eq!(readyz(url), 503, "node {k} reports the outage");
    }

    pg.up();
    for k in 0..2 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while readyz(cluster.url(k)) != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "node {k} did not recover"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    // The writ was not spent during the outage: it is consumed now, once.
    let (_, body) = consume(cluster.url(1), &gate, &kept, "up-1");
    assert_eq!(body["decision"], "permit", "{body}");
    let (_, body) = consume(cluster.url(0), &gate, &kept, "up-0");
    assert_eq!(body["code"], "replay_detected", "{body}");
    let fresh = authorize(cluster.url(1), &agent);
    assert!(fresh["writ"].is_string());
}

/// 10,000 authorizations spread over three nodes while one is SIGKILLed: one gap-free log,
/// every writ a client received has its decision in it, and checkpoints taken from every node
/// are consistent with each other.
#[test]
fn a_node_killed_mid_run_loses_nothing_and_the_log_stays_one() {
    let Some(database) = database() else { return };
    let mut cluster = Cluster::start(3, &database);
    let agent = cluster.register(0, "build-agent", "agent", &[]);
    cluster.register(0, "gate-1", "executor", &[]);
    let vkey = get(&format!("{}/v1/log/vkey", cluster.url(0)))
        .trim()
        .to_owned();
    let urls: Vec<String> = (0..3).map(|k| cluster.url(k).to_owned()).collect();

    const TOTAL: usize = 10_000;
    const CLIENTS: usize = 12;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (urls, agent, done) = (urls.clone(), agent.clone(), done.clone());
            std::thread::spawn(move || {
                let agent_http: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(std::time::Duration::from_secs(10)))
                    .build()
                    .into();
                let mut received = Vec::new();
                let mut failed = 0usize;
                let mut dead = [false; 3];
                let mut k = c;
                while done.load(std::sync::atomic::Ordering::Relaxed) < TOTAL {
                    k += 1;
                    if dead[k % 3] {
                        continue;
                    }
                    let url = &urls[k % 3];
                    let res = agent_http
                        .post(&format!("{url}/v1/authorize"))
                        .header("Authorization", &format!("Bearer {agent}"))
                        .send_json(json!({"action": "exec", "resource": "/usr/bin/git",
                                          "args": git_args(), "audience": "gate-1"}));
                    match res {
                        Ok(mut r) if r.status().as_u16() == 200 => {
                            let body: Value = r.body_mut().read_json().unwrap();
                            received.push((
                                body["log_index"].as_u64().unwrap(),
                                body["writ"].as_str().unwrap().to_owned(),
                            ));
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        // The killed node: no answer, no writ; this client leaves it.
                        _ => {
                            failed += 1;
                            dead[k % 3] = true;
                        }
                    }
                }
                (received, failed)
            })
        })
        .collect();

    // Checkpoints from every node along the way; node 1 is killed a fifth of the way in.
    let mut checkpoints = Vec::new();
    while done.load(std::sync::atomic::Ordering::Relaxed) < TOTAL / 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for url in &urls {
        checkpoints.push(get(&format!("{url}/v1/log/checkpoint")));
    }
    let (victim, _) = &mut cluster.nodes[1];
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    while done.load(std::sync::atomic::Ordering::Relaxed) < TOTAL / 2 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for k in [0, 2] {
        checkpoints.push(get(&format!("{}/v1/log/checkpoint", urls[k])));
    }
    let mut received = Vec::new();
    let mut failed = 0;
    for client in clients {
        let (r, f) = client.join().unwrap();
        received.extend(r);
        failed += f;
    }
    eprintln!(
        "{} writs received, {failed} calls failed (the killed node)",
        received.len()
    );
    assert!(received.len() >= TOTAL, "{}", received.len());
    assert!(
        failed <= CLIENTS,
        "only calls to the killed node fail: {failed}"
    );

    // Every checkpoint taken is one the final log extends, at each surviving node.
    for (i, checkpoint) in checkpoints.iter().enumerate() {
        let kept = cluster.dir.path().join(format!("kept-{i}"));
        std::fs::write(&kept, checkpoint).unwrap();
        for k in [0, 2] {
            let out = run(
                &[
                    "log",
                    "verify",
                    "--url",
                    &urls[k],
                    "--vkey",
                    &vkey,
                    "--checkpoint",
                    kept.to_str().unwrap(),
                    "--entries",
                ],
                None,
            );
            assert_eq!(
                crate::support::status(&out),
                0,
                "checkpoint {i} at node {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // Gap-free indexes, and every writ received has its decision at the index it was told.
    let mut entries: Vec<(u64, Value)> = Vec::new();
    loop {
        let page: Value = serde_json::from_str(&get(&format!(
            "{}/v1/log/entries?from={}&limit=1000",
            urls[2],
            entries.len()
        )))
        .unwrap();
        let page = page["entries"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for e in page {
            entries.push((e["index"].as_u64().unwrap(), e["entry"].clone()));
        }
    }
    for (i, (index, _)) in entries.iter().enumerate() {
        assert_eq!(*index, i as u64, "gap or duplicate at {i}");
    }
    for (index, writ) in &received {
        let entry = &entries[usize::try_from(*index).unwrap()].1;
        assert_eq!(entry["decision"], "permit");
        assert_eq!(
            entry["writ_sha256"],
            writ_core::Sha256Digest::of(writ.as_bytes()).to_hex(),
            "the decision at {index}"
        );
    }
}

fn put(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .put(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap_or(Value::Null))
}

fn claims(writ: &str) -> Value {
    use base64::Engine as _;
    let payload = writ.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// What one node caches (the policy in force, retired digests, keys) follows what another
/// changed: a retired policy or a revoked key holds at every node at once, and a policy
/// applied at one node decides at the others within the refresh second.
#[test]
fn policy_and_key_changes_at_one_node_hold_at_the_others() {
    let Some(database) = database() else { return };
    let cluster = Cluster::start(3, &database);
    let agent = cluster.register(0, "build-agent", "agent", &[]);
    let gate = cluster.register(0, "gate-1", "executor", &[]);

    // A writ under the first policy set; then another set applied and the first retired, at
    // node A; the writ is refused at node C at once.
    let old = authorize(cluster.url(2), &agent);
    let old_digest = claims(old["writ"].as_str().unwrap())["pol"]["digest"].clone();
    let stricter = format!(
        "{}\n@id(\"no-git\")\n@reason(\"git is frozen\")\nforbid (principal, action == Writ::Action::\"exec\", resource)\nwhen {{ resource.path == \"/usr/bin/git\" }};\n",
        writ_policy::EXAMPLE_POLICIES
    );
    let (status, body) = put(
        &format!("{}/v1/policy", cluster.url(0)),
        &cluster.admin,
        &json!({"schema": writ_policy::EXAMPLE_SCHEMA, "policies": stricter,
                "entities": writ_policy::EXAMPLE_ENTITIES}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &format!("{}/v1/revocations", cluster.url(0)),
        Some(&cluster.admin),
        &json!({"policy": old_digest}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, denied) = consume(cluster.url(2), &gate, old["writ"].as_str().unwrap(), "p1");
    assert_eq!(denied["code"], "policy_mismatch", "{denied}");

    // The new set decides at node C within the refresh interval.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, body) = post(
            &format!("{}/v1/authorize", cluster.url(2)),
            Some(&agent),
            &json!({"action": "exec", "resource": "/usr/bin/git", "args": git_args(),
                    "audience": "gate-1"}),
        );
        if body["decision"] == "deny" {
            assert_eq!(body["reasons"][0]["policy"], "no-git", "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node C still permits: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A key revoked at node A: a writ it signed is refused at node B at once.
    let ls = json!({"argv": ["ls"], "cwd": "/work", "env": {}});
    let (status, answer) = post(
        &format!("{}/v1/authorize", cluster.url(1)),
        Some(&agent),
        &json!({"action": "exec", "resource": "/usr/bin/ls", "args": ls, "audience": "gate-1"}),
    );
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("permit")),
        "{answer}"
    );
    let writ = answer["writ"].as_str().unwrap();
    let kid: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            writ.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let (status, body) = post(
        &format!("{}/v1/revocations", cluster.url(0)),
        Some(&cluster.admin),
        &json!({"key": kid["kid"]}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, denied) = post(
        &format!("{}/v1/consume", cluster.url(1)),
        Some(&gate),
        &json!({"writ": writ, "action": "exec", "resource": "/usr/bin/ls", "args": ls,
                "nonce": "k1"}),
    );
    assert_eq!(denied["code"], "unknown_key", "{denied}");
}
