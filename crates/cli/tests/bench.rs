//! `writ bench authorize`: a tiny run against a spawned server, checked for shape and sanity.

use serde_json::Value;

use crate::support::*;

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn tiny_authorize_run_reports_sane_figures() {
    let out = run(
        &[
            "bench",
            "authorize",
            "--rates",
            "50",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0.2",
            "--clients",
            "1,2",
            "--cpu-secs",
            "0.3",
            "--json",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status(&out), 0, "stderr: {stderr}");
    let report = stdout_json(&out);
    assert_eq!(report["spawned"], true, "{report}");

    let open = report["open"].as_array().expect("open steps");
    assert_eq!(open.len(), 1, "{report}");
    let step = &open[0];
    assert_eq!(step["offered_per_sec"], 50);
    assert_eq!(step["scheduled"], 50);
    assert!(step["permits"].as_u64().unwrap() > 0, "{step}");
    assert_eq!(step["permits"], 50, "{step}");
    for zero in ["deny", "errors", "dropped"] {
        assert_eq!(step[zero], 0, "{zero}: {step}");
    }
    let achieved = number(&step["achieved_permits_per_sec"], "achieved");
    assert!(achieved > 25.0 && achieved <= 50.5, "{step}");
    let lat = &step["latency_ms"];
    let (p50, p90, p99, max) = (
        number(&lat["p50"], "p50"),
        number(&lat["p90"], "p90"),
        number(&lat["p99"], "p99"),
        number(&lat["max"], "max"),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{lat}");
    assert!(
        number(&step["cpu"]["server_cores"], "server cpu") >= 0.0,
        "{step}"
    );

    let closed = report["closed"].as_array().expect("closed steps");
    let clients: Vec<u64> = closed
        .iter()
        .map(|s| s["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, [1, 2], "{report}");
    for step in closed {
        assert!(step["permits"].as_u64().unwrap() > 0, "{step}");
        assert_eq!(step["deny"], 0, "{step}");
        assert_eq!(step["errors"], 0, "{step}");
        assert!(
            number(&step["throughput_per_sec"], "throughput") > 0.0,
            "{step}"
        );
        let lat = &step["latency_ms"];
        assert!(
            number(&lat["p50"], "p50") <= number(&lat["p99"], "p99"),
            "{lat}"
        );
    }

    let cpu = &report["cpu"];
    assert!(number(&cpu["evaluate_us"], "evaluate") > 0.0, "{cpu}");
    assert!(number(&cpu["sign_us"], "sign") > 0.0, "{cpu}");
    assert!(number(&cpu["decision_us"], "decision") > 0.0, "{cpu}");
    assert!(cpu["cores"].as_u64().unwrap() >= 1, "{cpu}");
    assert!(number(&cpu["bound_per_sec"], "bound") > 0.0, "{cpu}");

    // 50/s is far below anything a server sustains: it is the summary's rate.
    let summary = &report["summary"];
    assert_eq!(summary["p99_goal_ms"], 20.0, "{summary}");
    if p99 < 20.0 {
        assert_eq!(summary["sustained_per_sec"], 50, "{summary}");
        assert!(
            number(&summary["ratio_to_cpu_bound"], "ratio") > 0.0,
            "{summary}"
        );
    }
}

#[test]
fn help_teaches_the_figures() {
    let out = run(&["bench", "authorize", "--help"], None);
    assert_eq!(status(&out), 0);
    let help = String::from_utf8_lossy(&out.stdout);
    for figure in [
        "offered/s",
        "achieved/s",
        "dropped",
        "p99",
        "coordinated omission",
        "bound",
        "vs separate",
        "cost of sharing",
        "--node-cpus",
    ] {
        assert!(help.contains(figure), "--help lacks `{figure}`:\n{help}");
    }
}

#[test]
fn usage_errors_and_an_unreachable_server() {
    let out = run(&["bench", "authorize", "--rates", "0"], None);
    assert_eq!(status(&out), 64);
    for cores in ["0", "-1", "nan"] {
        let out = run(
            &[
                "bench",
                "authorize",
                "--database-url",
                "postgres://127.0.0.1:9/x",
                "--node-cpus",
                cores,
            ],
            None,
        );
        assert_eq!(status(&out), 64, "--node-cpus {cores}");
    }
    let out = run(&["bench", "authorize", "--node-cpus", "1"], None);
    assert_eq!(status(&out), 64, "--node-cpus without --database-url");
    let out = run(&["bench", "authorize", "--separate"], None);
    assert_eq!(status(&out), 64, "--separate without --database-url");
    let out = run(&["bench", "authorize", "--url", "http://127.0.0.1:9"], None);
    assert_eq!(status(&out), 64, "--url without --token and --audience");
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let out = run(
        &[
            "bench",
            "authorize",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "writ_x",
            "--audience",
            "gate-1",
            "--json",
        ],
        None,
    );
    assert_eq!(status(&out), 69, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["code"], "unavailable");
}

#[test]
fn nodes_on_postgres_are_compared_with_the_sqlite_node() {
    let database = match std::env::var("WRIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!("skipped: WRIT_TEST_DATABASE_URL is not set (PostgreSQL tests)");
            return;
        }
    };
    // Capped where this machine lets the test make cgroups (CI runs as root).
    let cgroups = cgroup_dir();
    let mut args = vec![
        "bench",
        "authorize",
        "--database-url",
        database.as_str(),
        "--nodes",
        "1,2,3",
        "--separate",
        "--rates",
        "20",
        "--duration-secs",
        "0.5",
        "--warmup-secs",
        "0",
        "--clients",
        "3",
        "--cpu-secs",
        "0.1",
        "--json",
    ];
    if cgroups.is_some() {
        args.extend(["--node-cpus", "1.5"]);
    }
    let out = run(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status(&out), 0, "stderr: {stderr}");
    let report = stdout_json(&out);
    if let Some(dir) = &cgroups {
        assert_eq!(report["node_cpus"], 1.5, "{report}");
        assert_eq!(
            stderr.matches("capped at 1.5 core(s)").count(),
            6,
            "{stderr}"
        );
        // Every node's cgroup is gone with its node.
        let left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("writ-bench-"))
            .collect();
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
    } else {
        assert!(report["node_cpus"].is_null(), "{report}");
    }

    let sections = report["configurations"].as_array().expect("configurations");
    let names: Vec<&str> = sections
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sqlite x1",
            "postgres x1",
            "postgres x2",
            "separate x2",
            "postgres x3",
            "separate x3"
        ],
        "{report}"
    );
    for (section, nodes) in sections.iter().zip([1u64, 1, 2, 2, 3, 3]) {
        assert_eq!(section["nodes"], nodes, "{section}");
        assert_eq!(
            section["urls"].as_array().unwrap().len() as u64,
            nodes,
            "{section}"
        );
        let postgres = section["backend"] != "sqlite";
        let open = section["open"].as_array().expect("open steps");
        assert_eq!(open.len(), 1, "{section}");
        let step = &open[0];
        assert_eq!(step["scheduled"], 10, "{step}");
        assert_eq!(step["permits"], 10, "every answer a permit: {step}");
        for zero in ["deny", "errors", "dropped"] {
            assert_eq!(step[zero], 0, "{zero}: {step}");
        }
        // Round-robin: every node got requests over a connection of its own.
        assert!(step["connections"].as_u64().unwrap() >= nodes, "{step}");
        let cpu = &step["cpu"];
        assert!(number(&cpu["server_cores"], "server cpu") >= 0.0, "{cpu}");
        if !postgres {
            // Only measured for nodes on PostgreSQL (and where its processes are visible).
            assert!(cpu.get("postgres_cores").is_none(), "{cpu}");
        }
        if nodes > 1 {
            assert_eq!(
                cpu["server_cores_by_node"].as_array().unwrap().len(),
                nodes as usize,
                "{cpu}"
            );
        }
        let closed = section["closed"].as_array().expect("closed steps");
        assert_eq!(closed.len(), 1, "{section}");
        let step = &closed[0];
        assert!(step["permits"].as_u64().unwrap() > 0, "{step}");
        assert_eq!(step["deny"], 0, "every answer a permit: {step}");
        assert_eq!(step["errors"], 0, "{step}");
    }

    let summary = report["summary"]["configurations"]
        .as_array()
        .expect("summary lines");
    assert_eq!(summary.len(), 6, "{report}");
    for (line, name) in summary.iter().zip(&names) {
        assert_eq!(line["name"], *name, "{line}");
        assert!(
            number(&line["closed_per_sec"], "closed-loop throughput") > 0.0,
            "{line}"
        );
        assert!(
            number(&line["closed_ratio_to_cpu_bound"], "share of the bound") > 0.0,
            "{line}"
        );
    }
    assert_eq!(summary[0]["closed_vs_sqlite"], 1.0, "{}", summary[0]);
    assert!(summary[0]["closed_vs_x1"].is_null(), "{}", summary[0]);
    assert_eq!(summary[1]["closed_vs_x1"], 1.0, "{}", summary[1]);
    assert!(
        number(&summary[4]["closed_vs_x1"], "x3 / x1") > 0.0,
        "{}",
        summary[4]
    );
    // Each shared configuration against its control, and only those.
    for (shared, control) in [(2, 3), (4, 5)] {
        let expected = number(&summary[shared]["closed_per_sec"], "shared")
            / number(&summary[control]["closed_per_sec"], "control");
        let got = number(&summary[shared]["closed_vs_separate"], "vs separate");
        assert!((got - expected).abs() < 1e-9, "{got} {expected}");
        assert!(
            summary[control]["closed_vs_x1"].is_null(),
            "{}",
            summary[control]
        );
    }
    for line in [0, 1, 3, 5] {
        assert!(
            summary[line]["closed_vs_separate"].is_null(),
            "{}",
            summary[line]
        );
    }
}

/// The cgroup directory `writ bench --node-cpus` makes node groups in, if this process may
/// make them there.
fn cgroup_dir() -> Option<std::path::PathBuf> {
    let v2 = std::path::Path::new("/sys/fs/cgroup");
    let v2_cpu = std::fs::read_to_string(v2.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"));
    let dir = if v2_cpu {
        v2.to_path_buf()
    } else {
        v2.join("cpu")
    };
    let probe = dir.join(format!("writ-bench-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let _ = std::fs::remove_dir(&probe);
    Some(dir)
}
