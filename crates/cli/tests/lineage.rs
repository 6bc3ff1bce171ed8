//! `writ lineage`: a writ's decision, consumption, execution and revocation, drawn as its
//! delegation tree, from the log of a data dir and of a running authority. (The tree model and
//! the drawings of deeper trees are unit-tested in `src/command/lineage/`.)

use serde_json::{json, Value};
use writ_core::{
    parse_unverified, sign_pop, sign_receipt, Receipt, Sha256Digest, SigningKey, UnixTime,
};

use crate::support::server::*;
use crate::support::*;

#[test]
fn lineage_shows_decision_consumption_execution_and_revocation() {
    let server = start();
    let d = server.d();
    let agent = register(&d, "build-agent", "agent");
    let gate = register(&d, "gate-1", "executor");
    let admin = server.admin_token();
    let executor_key = SigningKey::from_seed(&[5; 32]);
    let args = json!({"argv": ["git", "status"], "cwd": "/work", "env": {}});
    let (_, answer) = post(
        &format!("{}/v1/authorize", server.url),
        Some(&agent),
        &json!({"action": "exec", "resource": "/usr/bin/git", "args": args,
                "audience": "gate-1", "executor_key": executor_key.verifying_key().to_jwk()}),
    );
    let writ = answer["writ"].as_str().unwrap().to_string();
    let jti = parse_unverified(&writ).unwrap().claims().jti.to_string();
    let digest = Sha256Digest::of(writ.as_bytes());
    let pop = sign_pop(&executor_key, digest, "n1", UnixTime(now()));
    let (_, consumed) = post(
        &format!("{}/v1/consume", server.url),
        Some(&gate),
        &json!({"writ": writ, "action": "exec", "resource": "/usr/bin/git", "args": args,
                "nonce": "n1", "pop": pop}),
    );
    assert_eq!(consumed["decision"], "permit", "{consumed}");
    let receipt = sign_receipt(
        &executor_key,
        &Receipt {
            jti: jti.clone(),
            writ_sha256: digest,
            exit_status: Some(0),
            signal: None,
            duration_ms: 3,
            stdout_sha256: Sha256Digest::of(b"On branch main\n"),
            stderr_sha256: Sha256Digest::of(b""),
            iat: now(),
        },
    );
    let (code, _) = post(
        &format!("{}/v1/receipts", server.url),
        Some(&gate),
        &json!({"writ": writ, "receipt": receipt}),
    );
    assert_eq!(code, 200);
    let (code, _) = post(
        &format!("{}/v1/revocations", server.url),
        Some(&admin),
        &json!({"writ": jti, "reason": "done"}),
    );
    assert_eq!(code, 200);
    // Another writ's entries stay out of this one's story.
    post(
        &format!("{}/v1/authorize", server.url),
        Some(&agent),
        &json!({"action": "exec", "resource": "/usr/bin/git", "args": args, "audience": "gate-1"}),
    );

    let local = run(&["lineage", &jti, "--json", "--data-dir", &d], None);
    assert_eq!(
        status(&local),
        0,
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let remote = run(&["lineage", &jti, "--json", "--url", &server.url], None);
    assert_eq!(
        status(&remote),
        0,
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let story = stdout_json(&local);
    assert_eq!(story, stdout_json(&remote));
    assert_eq!(story["jti"], jti);
    assert_eq!(story["decision"]["index"], answer["log_index"]);
    assert_eq!(story["decision"]["entry"]["decision"], "permit");
    assert_eq!(story["decision"]["entry"]["writ_sha256"], digest.to_hex());
    let kinds = |key: &str| -> Vec<Value> {
        story[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry"]["type"].clone())
            .collect()
    };
    assert_eq!(kinds("consumptions"), vec![json!("consumption")]);
    assert_eq!(story["consumptions"][0]["index"], consumed["log_index"]);
    assert_eq!(kinds("receipts"), vec![json!("receipt")]);
    assert_eq!(story["receipts"][0]["entry"]["exit_status"], 0);
    assert_eq!(kinds("revocations"), vec![json!("revocation")]);
    // The tree: an undelegated writ is its own root, revoked by its own revocation.
    assert_eq!(story["root_initiator"], "build-agent");
    assert_eq!(story["revoked_by"], jti);
    let root = &story["root"];
    assert_eq!(root["jti"], jti);
    assert_eq!(root["depth"], 0);
    assert_eq!(root["children"], json!([]));
    assert_eq!(root["decision"], story["decision"]);
    assert_eq!(root["receipts"], story["receipts"]);
    let as_format = run(
        &["lineage", &jti, "--format", "json", "--data-dir", &d],
        None,
    );
    assert_eq!(stdout_json(&as_format), story);

    let text = run(&["lineage", &jti, "--data-dir", &d], None);
    let text = String::from_utf8(text.stdout).unwrap();
    for needle in [
        "permit build-agent exec on /usr/bin/git",
        "consumed by gate-1",
        "executed by gate-1: exit 0",
        "revoked (writ",
    ] {
        assert!(text.contains(needle), "`{needle}` missing in:\n{text}");
    }
    assert!(text.starts_with("root initiator: build-agent\n"), "{text}");
    assert!(text.contains(&format!("* writ {jti}: ")), "{text}");

    let dot = run(
        &["lineage", &jti, "--format", "dot", "--data-dir", &d],
        None,
    );
    assert_eq!(status(&dot), 0);
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    assert!(dot.contains("build-agent\\nexec /usr/bin/git"), "{dot}");
    assert!(dot.contains("color=red"), "{dot}");
    let mermaid = run(
        &["lineage", &jti, "--format", "mermaid", "--url", &server.url],
        None,
    );
    assert_eq!(status(&mermaid), 0);
    let mermaid = String::from_utf8(mermaid.stdout).unwrap();
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(
        mermaid.contains("build-agent<br/>exec /usr/bin/git"),
        "{mermaid}"
    );
    // --json is --format json: naming both is a usage error.
    let both = run(
        &[
            "lineage",
            &jti,
            "--json",
            "--format",
            "dot",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(status(&both), 64);

    // An unknown writ is a usage error.
    let missing = run(
        &["lineage", "AAAAAAAAAAAAAAAAAAAAAA", "--data-dir", &d],
        None,
    );
    assert_eq!(status(&missing), 64);
}

/// A real tree over HTTP: a root writ, two children asked for with `writ request --parent`,
/// one revoked; `writ lineage` draws it from the log.
#[test]
fn lineage_draws_a_delegation_tree_issued_by_a_running_server() {
    let server = start();
    let d = server.d();
    let agent = register(&d, "build-agent", "agent");
    let helper = register(&d, "helper-agent", "agent");
    register(&d, "gate-1", "executor");
    let request = |token: &str, resource: &str, argv: &[&str], parent: Option<&std::path::Path>| {
        let args = json!({"argv": argv, "cwd": "/work", "env": {}}).to_string();
        let mut cmd = vec![
            "request",
            "--action",
            "exec",
            "--resource",
            resource,
            "--args",
            &args,
            "--audience",
            "gate-1",
            "--json",
            "--url",
            &server.url,
            "--token",
            token,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        if let Some(p) = parent {
            cmd.push("--parent".into());
            cmd.push(p.to_str().unwrap().into());
        }
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        stdout_json(&run(&refs, None))
    };
    let root = request(&agent, "/usr/bin/git", &["git", "status"], None);
    let root_file = server.path("root.writ");
    std::fs::write(&root_file, root["writ"].as_str().unwrap()).unwrap();
    let a = request(&helper, "/usr/bin/ls", &["ls"], Some(&root_file));
    let b = request(&helper, "/usr/bin/git", &["git", "log"], Some(&root_file));
    let wide = request(&helper, "/usr/bin/cat", &["cat", "x"], Some(&root_file));
    assert_eq!(a["decision"], "permit", "{a}");
    assert_eq!(b["decision"], "permit", "{b}");
    assert_eq!(wide["decision"], "deny", "{wide}");
    assert_eq!(
        wide["reasons"][0]["denial"], "lineage_inconsistency",
        "{wide}"
    );
    let (code, _) = post(
        &format!("{}/v1/revocations", server.url),
        Some(&server.admin_token()),
        &json!({"writ": a["jti"]}),
    );
    assert_eq!(code, 200);

    let out = run(
        &[
            "lineage",
            b["jti"].as_str().unwrap(),
            "--json",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let tree = stdout_json(&out);
    assert_eq!(tree["root_initiator"], "build-agent");
    assert_eq!(tree["root"]["jti"], root["jti"]);
    let children = tree["root"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "{tree:#}");
    let by_jti = |jti: &Value| children.iter().find(|c| &c["jti"] == jti).unwrap().clone();
    assert_eq!(by_jti(&a["jti"])["revoked_by"], a["jti"]);
    assert_eq!(by_jti(&b["jti"])["revoked_by"], Value::Null);
    assert_eq!(by_jti(&b["jti"])["depth"], 1);
    assert!(children
        .iter()
        .any(|c| c["decision"]["entry"]["decision"] == "deny"));
    let dot = run(
        &[
            "lineage",
            b["jti"].as_str().unwrap(),
            "--format",
            "dot",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&dot.stdout).contains("delegated"));
}

/// `writ request --json` (as `token`, for gate-1) against `server`, under the writ in `parent`.
fn request_exec(
    server: &Server,
    token: &str,
    resource: &str,
    argv: &[&str],
    parent: Option<&std::path::Path>,
) -> Value {
    let args = json!({"argv": argv, "cwd": "/work", "env": {}}).to_string();
    let mut cmd = vec![
        "request",
        "--action",
        "exec",
        "--resource",
        resource,
        "--args",
        &args,
        "--audience",
        "gate-1",
        "--json",
        "--url",
        &server.url,
        "--token",
        token,
    ];
    let parent = parent.map(|p| p.to_str().unwrap().to_owned());
    if let Some(p) = &parent {
        cmd.extend(["--parent", p]);
    }
    stdout_json(&run(&cmd, None))
}

/// Renders DOT `source` to SVG with Graphviz; `None` (the test part skipped) when `dot` is not
/// installed outside CI. Under CI (`.ci/run` installs Graphviz) a missing `dot` fails.
fn graphviz_svg(source: &str) -> Option<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Graphviz `dot` is required under CI: {e}"
            );
            eprintln!("skipped: Graphviz rendering (`dot` is not installed: {e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{source}");
    assert!(stderr.trim().is_empty(), "Graphviz warnings: {stderr}");
    Some(String::from_utf8(out.stdout).unwrap())
}

/// One node of a `writ lineage --json` tree, flattened: its key (the jti, or `denied` for a
/// request that issued no writ), its parent's key, and the node itself.
fn flatten<'a>(
    node: &'a Value,
    parent: Option<String>,
    out: &mut Vec<(String, Option<String>, &'a Value)>,
) {
    let key = node["jti"].as_str().unwrap_or("denied").to_owned();
    out.push((key.clone(), parent, node));
    for child in node["children"].as_array().unwrap() {
        flatten(child, Some(key.clone()), out);
    }
}

/// A node expected in a lineage tree: key (as `flatten`), parent key, depth, number of
/// children, principal, `revoked_by`.
type Expected<'a> = (
    &'a str,
    Option<&'a str>,
    u64,
    usize,
    &'a str,
    Option<&'a str>,
);

/// Issue 6's depth-3 tree, issued by a running server through `writ request --parent` by
/// several agents: root → A, B; A → A1, A2; A1 → A1x; plus a child of B wider than B's `del`
/// (denied). A1x is consumed, then A is revoked. `writ lineage` draws it all: JSON checked node
/// by node, DOT rendered by Graphviz, Mermaid with one `delegated` edge per child.
#[test]
fn lineage_of_a_depth_three_tree_as_json_and_graphviz() {
    let server = start();
    let d = server.d();
    let orchestrator = register(&d, "orchestrator", "agent");
    let planner = register(&d, "planner-agent", "agent");
    let worker = register(&d, "worker-agent", "agent");
    let leaf = register(&d, "leaf-agent", "agent");
    let gate = register(&d, "gate-1", "executor");
    let admin = server.admin_token();

    // The example set, its dev-tools permit delegating three deep instead of one.
    let grant = r#"@delegate_resources("/usr/bin/git,/usr/bin/ls")"#;
    assert!(
        writ_policy::EXAMPLE_POLICIES.contains(grant),
        "the example permit no longer delegates git and ls"
    );
    let policies = writ_policy::EXAMPLE_POLICIES.replacen(
        grant,
        &format!("{grant}\n@delegate_depth(\"3\")"),
        1,
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .put(&format!("{}/v1/policy", server.url))
        .header("Authorization", &format!("Bearer {admin}"))
        .send_json(json!({
            "schema": writ_policy::EXAMPLE_SCHEMA,
            "policies": policies,
            "entities": writ_policy::EXAMPLE_ENTITIES,
        }))
        .unwrap();
    let code = res.status().as_u16();
    assert_eq!(code, 200, "{}", res.body_mut().read_to_string().unwrap());

    // The tree. Each permitted writ is kept in a file, for `--parent`.
    let issue = |name: &str, token: &str, resource: &str, argv: &[&str], parent: Option<&str>| {
        let parent = parent.map(|p| server.path(&format!("{p}.writ")));
        let answer = request_exec(&server, token, resource, argv, parent.as_deref());
        assert_eq!(answer["decision"], "permit", "{name}: {answer}");
        let writ = answer["writ"].as_str().unwrap();
        std::fs::write(server.path(&format!("{name}.writ")), writ).unwrap();
        let jti = parse_unverified(writ).unwrap().claims().jti.to_string();
        assert_eq!(answer["jti"], jti, "{name}: {answer}");
        (answer, jti)
    };
    let (root, root_jti) = issue(
        "root",
        &orchestrator,
        "/usr/bin/git",
        &["git", "status"],
        None,
    );
    let root_writ = root["writ"].as_str().unwrap();
    let root_del = parse_unverified(root_writ).unwrap().claims().del.clone();
    assert_eq!(root_del.unwrap().max_depth, 3, "the policy edit took");
    let (_, a) = issue("a", &planner, "/usr/bin/ls", &["ls"], Some("root"));
    let (_, b) = issue("b", &planner, "/usr/bin/git", &["git", "log"], Some("root"));
    let (_, a1) = issue("a1", &worker, "/usr/bin/ls", &["ls"], Some("a"));
    let (_, a2) = issue("a2", &worker, "/usr/bin/ls", &["ls"], Some("a"));
    let (a1x_answer, a1x) = issue("a1x", &leaf, "/usr/bin/ls", &["ls"], Some("a1"));
    let a1x_writ = a1x_answer["writ"].as_str().unwrap().to_string();
    let lin = parse_unverified(&a1x_writ)
        .unwrap()
        .claims()
        .lin
        .clone()
        .unwrap();
    assert_eq!(lin.depth, 3);
    assert_eq!(lin.parent.to_string(), a1);
    // `cat` is not in the `del` B inherited: denied, and logged as B's child.
    let wide = request_exec(
        &server,
        &worker,
        "/usr/bin/cat",
        &["cat", "x"],
        Some(&server.path("b.writ")),
    );
    assert_eq!(wide["decision"], "deny", "{wide}");
    assert_eq!(
        wide["reasons"][0]["denial"], "lineage_inconsistency",
        "{wide}"
    );

    // gate-1 runs A1x once; then A is revoked, and its subtree with it.
    let (code, consumed) = post(
        &format!("{}/v1/consume", server.url),
        Some(&gate),
        &json!({"writ": a1x_writ, "action": "exec", "resource": "/usr/bin/ls",
                "args": {"argv": ["ls"], "cwd": "/work", "env": {}}, "nonce": "n-a1x"}),
    );
    assert_eq!(code, 200, "{consumed}");
    assert_eq!(consumed["decision"], "permit", "{consumed}");
    let (code, revoked) = post(
        &format!("{}/v1/revocations", server.url),
        Some(&admin),
        &json!({"writ": a, "reason": "planner compromised"}),
    );
    assert_eq!(code, 200, "{revoked}");

    // ---- JSON, from the data dir (and the same from the running authority).
    // (A jti is base64url and may begin with `-`: it goes after `--` on the command line.)
    let out = run(&["lineage", "--json", "--data-dir", &d, "--", &a1x], None);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let tree = stdout_json(&out);
    let remote = run(
        &["lineage", "--json", "--url", &server.url, "--", &a1x],
        None,
    );
    assert_eq!(
        status(&remote),
        0,
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    assert_eq!(stdout_json(&remote), tree);

    assert_eq!(tree["root_initiator"], "orchestrator", "{tree:#}");
    assert_eq!(tree["root"]["jti"], root_jti, "{tree:#}");
    // The asked writ's own fields on top.
    assert_eq!(tree["jti"], a1x);
    assert_eq!(tree["depth"], 3);
    assert_eq!(tree["revoked_by"], a);
    assert_eq!(
        tree["consumptions"].as_array().unwrap().len(),
        1,
        "{tree:#}"
    );

    let mut nodes = Vec::new();
    flatten(&tree["root"], None, &mut nodes);
    let expected: Vec<Expected> = vec![
        (&root_jti, None, 0, 2, "orchestrator", None),
        (&a, Some(&root_jti), 1, 2, "planner-agent", Some(&a)),
        (&b, Some(&root_jti), 1, 1, "planner-agent", None),
        (&a1, Some(&a), 2, 1, "worker-agent", Some(&a)),
        (&a2, Some(&a), 2, 0, "worker-agent", Some(&a)),
        (&a1x, Some(&a1), 3, 0, "leaf-agent", Some(&a)),
        ("denied", Some(&b), 2, 0, "worker-agent", None),
    ];
    assert_eq!(nodes.len(), expected.len(), "{tree:#}");
    for (key, parent, depth, children, principal, revoked_by) in &expected {
        let (_, got_parent, node) = nodes
            .iter()
            .find(|(k, _, _)| k == key)
            .unwrap_or_else(|| panic!("node {key} missing in {tree:#}"));
        assert_eq!(got_parent.as_deref(), *parent, "parent of {key}");
        assert_eq!(node["depth"], *depth, "depth of {key}");
        assert_eq!(
            node["children"].as_array().unwrap().len(),
            *children,
            "children of {key}"
        );
        let decision = &node["decision"]["entry"];
        assert_eq!(decision["type"], "decision", "{key}");
        assert_eq!(decision["principal"], *principal, "{key}");
        assert_eq!(node["revoked_by"], json!(revoked_by), "revoked_by of {key}");
        let verdict = if *key == "denied" { "deny" } else { "permit" };
        assert_eq!(decision["decision"], verdict, "{key}");
        if let Some(p) = parent {
            assert_eq!(decision["parent"], *p, "{key}");
        }
        // Only A1x ran; only A's own revocation entry hangs on A.
        let consumptions = node["consumptions"].as_array().unwrap();
        let revocations = node["revocations"].as_array().unwrap();
        if *key == a1x {
            assert_eq!(consumptions.len(), 1, "{key}");
            assert_eq!(consumptions[0]["index"], consumed["log_index"]);
            assert_eq!(consumptions[0]["entry"]["type"], "consumption");
            assert_eq!(consumptions[0]["entry"]["decision"], "permit");
            assert_eq!(consumptions[0]["entry"]["executor"], "gate-1");
            assert_eq!(consumptions[0]["entry"]["jti"], a1x);
        } else {
            assert_eq!(consumptions.len(), 0, "{key}");
        }
        if *key == a {
            assert_eq!(revocations.len(), 1, "{key}");
            assert_eq!(revocations[0]["entry"]["kind"], "writ");
            assert_eq!(revocations[0]["entry"]["target"], a);
            assert_eq!(revocations[0]["entry"]["reason"], "planner compromised");
        } else {
            assert_eq!(revocations.len(), 0, "{key}");
        }
    }
    let denied = nodes.iter().find(|(k, _, _)| k == "denied").unwrap().2;
    assert_eq!(denied["jti"], Value::Null);
    assert_eq!(denied["decision"]["entry"]["resource"], "/usr/bin/cat");
    assert_eq!(denied["decision"]["index"], wide["log_index"], "{denied:#}");
    // Children in log order: A before B, A1 before A2.
    let kids = |n: &Value| -> Vec<Value> {
        n["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["jti"].clone())
            .collect()
    };
    assert_eq!(kids(&tree["root"]), vec![json!(a), json!(b)]);
    assert_eq!(
        kids(&tree["root"]["children"][0]),
        vec![json!(a1), json!(a2)]
    );

    // The label of each writ: its first line is the jti's first 8 characters, its second the
    // principal; the denied request's first line says so.
    let prefix = |jti: &str| jti.chars().take(8).collect::<String>();
    let labelled: Vec<(String, Option<String>)> = nodes
        .iter()
        .map(|(k, p, _)| {
            let id = if k == "denied" {
                "denied request".to_owned()
            } else {
                prefix(k)
            };
            (id, p.as_deref().map(prefix))
        })
        .collect();

    // ---- DOT, rendered by Graphviz.
    let dot = run(
        &["lineage", "--format", "dot", "--data-dir", &d, "--", &a1x],
        None,
    );
    assert_eq!(status(&dot), 0, "{}", String::from_utf8_lossy(&dot.stderr));
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    if let Some(svg) = graphviz_svg(&dot) {
        assert!(svg.contains("<svg"), "{svg}");
        // Graphviz writes `-` in text as `&#45;`.
        let svg = svg.replace("&#45;", "-");
        for (id, _) in &labelled {
            assert!(
                svg.contains(id.as_str()),
                "`{id}` missing in the SVG:\n{svg}"
            );
        }
        for (_, _, _, _, principal, _) in &expected {
            assert!(svg.contains(principal), "`{principal}` missing in the SVG");
        }
        assert!(
            svg.contains(&format!("REVOKED with {}", prefix(&a))),
            "{svg}"
        );
        assert!(svg.contains("planner compromised"), "{svg}");
        // 7 writ boxes (one a denied request), 1 consumption, 1 revocation; 6 delegations.
        assert_eq!(svg.matches("class=\"node\"").count(), 9, "{svg}");
        assert_eq!(svg.matches(">delegated<").count(), 6, "{svg}");
        eprintln!("graphviz rendered the lineage: {} bytes of SVG", svg.len());
    }

    // ---- Mermaid: one `delegated` edge per child, dotted for the denied request.
    let mermaid = run(
        &[
            "lineage",
            "--format",
            "mermaid",
            "--data-dir",
            &d,
            "--",
            &a1x,
        ],
        None,
    );
    assert_eq!(
        status(&mermaid),
        0,
        "{}",
        String::from_utf8_lossy(&mermaid.stderr)
    );
    let mermaid = String::from_utf8(mermaid.stdout).unwrap();
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    // Mermaid node id → the first line of its label.
    let ids: std::collections::HashMap<&str, &str> = mermaid
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.trim_start().split_once("[\"")?;
            Some((id, rest.split(['<', '"']).next()?))
        })
        .collect();
    let mut edges = Vec::new();
    for line in mermaid.lines().filter(|l| l.contains("|delegated|")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [from, arrow, to] = parts[..] else {
            panic!("odd edge `{line}` in:\n{mermaid}")
        };
        edges.push((ids[from].to_owned(), arrow.to_owned(), ids[to].to_owned()));
    }
    edges.sort();
    let mut want: Vec<(String, String, String)> = labelled
        .iter()
        .filter_map(|(id, parent)| {
            let arrow = if id == "denied request" {
                "-.->|delegated|"
            } else {
                "-->|delegated|"
            };
            Some((parent.clone()?, arrow.to_owned(), id.clone()))
        })
        .collect();
    want.sort();
    assert_eq!(edges, want, "{mermaid}");
}

/// Writ and request ids are base64url: a fifth of a percent start with `-`, and must still be
/// taken as ids, not flags.
#[test]
fn an_id_starting_with_a_hyphen_is_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["lineage", "-XkUUXNGjOLMz9LNN1ExQ", "--data-dir", d],
        vec![
            "approvals",
            "show",
            "-XkUUXNGjOLMz9LNN1ExQ",
            "--url",
            "http://127.0.0.1:9",
        ],
        vec![
            "approve",
            "-XkUUXNGjOLMz9LNN1ExQ",
            "--key",
            "/nonexistent",
            "--url",
            "http://127.0.0.1:9",
        ],
        vec![
            "revoke",
            "--writ",
            "-XkUUXNGjOLMz9LNN1ExQ",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ],
    ] {
        let out = run(&args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("unexpected argument") && !stderr.contains("unexpected value"),
            "{args:?}: {stderr}"
        );
        assert_ne!(status(&out), 0, "{args:?}");
    }
}
