//! `writ principals`: tokens shown once, stored as digests, disabled at once.

use crate::support::*;

#[test]
fn add_list_disable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let out = run(
        &[
            "principals",
            "add",
            "build-agent",
            "--role",
            "agent",
            "--group",
            "ci",
            "--json",
            "--data-dir",
            d,
        ],
        None,
    );
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let token = stdout_json(&out)["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("writ_") && token.len() > 40);
    let plain = run(
        &[
            "principals",
            "add",
            "gate-1",
            "--role",
            "executor",
            "--data-dir",
            d,
        ],
        None,
    );
    assert_eq!(status(&plain), 0);
    assert!(String::from_utf8_lossy(&plain.stdout)
        .trim()
        .starts_with("writ_"));
    assert_eq!(
        status(&run(
            &[
                "principals",
                "add",
                "build-agent",
                "--role",
                "agent",
                "--data-dir",
                d
            ],
            None
        )),
        64
    );
    assert_eq!(
        status(&run(
            &["principals", "add", "x", "--role", "root", "--data-dir", d],
            None
        )),
        64
    );

    let list = stdout_json(&run(
        &["principals", "list", "--json", "--data-dir", d],
        None,
    ));
    let names: Vec<&str> = list["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build-agent", "gate-1"]);
    assert!(
        !list.to_string().contains(&token),
        "the token is never listed"
    );

    assert_eq!(
        status(&run(
            &["principals", "disable", "build-agent", "--data-dir", d],
            None
        )),
        0
    );
    assert_eq!(
        status(&run(
            &["principals", "disable", "nobody", "--data-dir", d],
            None
        )),
        64
    );
    let list = stdout_json(&run(
        &["principals", "list", "--json", "--data-dir", d],
        None,
    ));
    assert_eq!(list["principals"][0]["disabled"], true);
}
