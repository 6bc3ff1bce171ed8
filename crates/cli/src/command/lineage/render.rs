//! Drawing a lineage tree: an indented text tree, JSON, Graphviz DOT and Mermaid.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::tree::{Entry, Node, Tree};

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    }
}

fn prefix(v: &Value, n: usize) -> String {
    s(v).chars().take(n).collect()
}

fn list(entries: &[Entry]) -> Vec<Value> {
    entries
        .iter()
        .map(|(i, e)| json!({"index": i, "entry": e}))
        .collect()
}

/// A node's own fields (no children).
fn fields(node: &Node) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("jti".into(), json!(node.jti));
    m.insert("depth".into(), json!(node.depth));
    m.insert(
        "decision".into(),
        json!({"index": node.decision.0, "entry": node.decision.1}),
    );
    m.insert("approvals".into(), json!(list(&node.approvals)));
    m.insert("consumptions".into(), json!(list(&node.consumptions)));
    m.insert("receipts".into(), json!(list(&node.receipts)));
    m.insert("revocations".into(), json!(list(&node.revocations)));
    m.insert("revoked_by".into(), json!(node.revoked_by));
    m
}

fn node_json(node: &Node) -> Value {
    let mut m = fields(node);
    m.insert(
        "children".into(),
        Value::Array(node.children.iter().map(node_json).collect()),
    );
    Value::Object(m)
}

/// `{"root_initiator", "root": node}`, plus the fields of the writ asked about (`jti`,
/// `depth`, `decision`, `consumptions`, `receipts`, `revocations`, `revoked_by`) at the top.
pub fn json(tree: &Tree, jti: &str) -> Value {
    let mut m = tree.root.find(jti).map(fields).unwrap_or_default();
    m.insert("root_initiator".into(), json!(tree.root_initiator));
    m.insert("root".into(), node_json(&tree.root));
    Value::Object(m)
}

/// The codes of a decision's `reasons` (`[{"code", …}]`), comma-separated.
fn reasons(d: &Value) -> String {
    d["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    r["code"]
                        .as_str()
                        .map_or_else(|| r.to_string(), str::to_owned)
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The one-line summary of a writ's decision.
fn summary(node: &Node) -> String {
    let (index, d) = &node.decision;
    let mut line = format!(
        "[{index}] {} {} {} on {} for {} (policy {} {})",
        s(&d["decision"]),
        s(&d["principal"]),
        s(&d["action"]),
        s(&d["resource"]),
        s(&d["audience"]),
        prefix(&d["policy_digest"], 12),
        d["policy_ids"],
    );
    if node.denied() {
        let _ = write!(line, ": {}", reasons(d));
    } else {
        let _ = write!(line, ", expires {}", d["exp"]);
        let _ = write!(
            line,
            "; {} consumed, {} executed",
            node.consumptions.len(),
            node.receipts.len()
        );
    }
    match &node.revoked_by {
        Some(by) if node.jti.as_deref() == Some(by.as_str()) => line.push_str("; REVOKED"),
        Some(by) => {
            let _ = write!(line, "; REVOKED (with {by})");
        }
        None if !node.revocations.is_empty() => line.push_str("; REVOKED (principal)"),
        None => {}
    }
    line
}

/// An indented tree, one line per writ with its entries below it. `jti` is marked `*`.
pub fn text(tree: &Tree, jti: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "root initiator: {}",
        tree.root_initiator.as_deref().unwrap_or("?")
    );
    text_node(&mut out, &tree.root, jti, "", "");
    out
}

fn text_node(out: &mut String, node: &Node, jti: &str, first: &str, rest: &str) {
    let name = match &node.jti {
        Some(j) if j == jti => format!("* writ {j}"),
        Some(j) => format!("writ {j}"),
        None => "denied request".to_owned(),
    };
    let _ = writeln!(out, "{first}{name}: {}", summary(node));
    let bar = if node.children.is_empty() {
        "   "
    } else {
        "│  "
    };
    for (i, a) in &node.approvals {
        let _ = writeln!(out, "{rest}{bar}[{i}] {}", approval_label(*i, a).join(": "));
    }
    for (i, c) in &node.consumptions {
        let code = c["code"]
            .as_str()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{rest}{bar}[{i}] consumed by {}: {}{code}",
            s(&c["executor"]),
            s(&c["decision"])
        );
    }
    for (i, r) in &node.receipts {
        let _ = writeln!(
            out,
            "{rest}{bar}[{i}] executed by {}: exit {}, {} ms, stdout sha256 {}",
            s(&r["executor"]),
            r["exit_status"],
            r["duration_ms"],
            prefix(&r["stdout_sha256"], 12)
        );
    }
    for (i, r) in &node.revocations {
        let _ = writeln!(
            out,
            "{rest}{bar}[{i}] revoked ({} `{}`) by {}{}",
            s(&r["kind"]),
            s(&r["target"]),
            s(&r["by"]),
            r["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    let n = node.children.len();
    for (k, child) in node.children.iter().enumerate() {
        let (f, r) = if k + 1 == n {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        text_node(
            out,
            child,
            jti,
            &format!("{rest}{f}"),
            &format!("{rest}{r}"),
        );
    }
}

/// The lines of a writ's label: id prefix, principal, action on resource, decision.
fn label(node: &Node) -> Vec<String> {
    let d = &node.decision.1;
    let id = match &node.jti {
        Some(j) => j.chars().take(8).collect::<String>(),
        None => "denied request".to_owned(),
    };
    let mut lines = vec![
        id,
        s(&d["principal"]),
        format!("{} {}", s(&d["action"]), s(&d["resource"])),
        format!("{} [{}]", s(&d["decision"]), node.decision.0),
    ];
    if node.denied() {
        lines.push(reasons(d));
    }
    if let Some(by) = &node.revoked_by {
        if node.jti.as_deref() == Some(by.as_str()) {
            lines.push("REVOKED".into());
        } else {
            lines.push(format!(
                "REVOKED with {}",
                by.chars().take(8).collect::<String>()
            ));
        }
    } else if !node.revocations.is_empty() {
        lines.push("REVOKED (principal)".into());
    }
    lines
}

/// A request's pending decision or one of its approval entries.
fn approval_label(i: u64, a: &Value) -> Vec<String> {
    if a["type"] == "decision" {
        return vec![
            format!("pending [{i}]"),
            format!(
                "{} approvals from {}, request {}",
                a["approvals_required"],
                s(&a["approver_group"]),
                s(&a["request_id"])
            ),
        ];
    }
    match a["event"].as_str() {
        Some("expired") => vec![format!("approval request expired [{i}]")],
        event => vec![
            format!("{} [{i}]", event.unwrap_or("approval")),
            format!(
                "by {} (key {})",
                s(&a["approver"]),
                prefix(&a["approver_kid"], 12)
            ),
        ],
    }
}

fn consumption_label(i: u64, c: &Value) -> Vec<String> {
    vec![
        format!("consumed [{i}]"),
        format!("{}: {}", s(&c["executor"]), s(&c["decision"])),
    ]
}

fn receipt_label(i: u64, r: &Value) -> Vec<String> {
    vec![
        format!("executed [{i}]"),
        format!("{}: exit {}", s(&r["executor"]), r["exit_status"]),
        format!("{} ms", r["duration_ms"]),
    ]
}

fn revocation_label(i: u64, r: &Value) -> Vec<String> {
    let mut l = vec![
        format!("revoked [{i}]"),
        format!("{} {}", s(&r["kind"]), s(&r["target"])),
        format!("by {}", s(&r["by"])),
    ];
    if let Some(reason) = r["reason"].as_str() {
        l.push(reason.to_owned());
    }
    l
}

/// A DOT quoted string: backslashes and quotes escaped, line breaks as `\n` (centred lines).
fn dot_str(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (k, line) in lines.iter().enumerate() {
        if k > 0 {
            out.push_str("\\n");
        }
        for ch in line.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => {}
                c if c.is_control() => out.push(' '),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

/// Graphviz: writs as boxes (revoked red, denied dashed), "delegated" edges parent → child,
/// consumptions, executions and revocations as nodes hanging off their writ.
pub fn dot(tree: &Tree, jti: &str) -> String {
    let mut out = String::from(
        "digraph lineage {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    let _ = writeln!(
        out,
        "  label={}; labelloc=t;",
        dot_str(&[format!(
            "lineage of {jti}, root initiator {}",
            tree.root_initiator.as_deref().unwrap_or("?")
        )])
    );
    let mut counter = 0;
    dot_node(&mut out, &tree.root, jti, None, &mut counter);
    out.push_str("}\n");
    out
}

fn dot_node(out: &mut String, node: &Node, jti: &str, parent: Option<&str>, n: &mut usize) {
    let id = format!("w{n}");
    *n += 1;
    let mut attrs = vec![format!("label={}", dot_str(&label(node)))];
    let mut style = Vec::new();
    if node.revoked() {
        attrs.push("color=red, fontcolor=red".into());
    }
    if node.denied() {
        style.push("dashed");
    }
    if node.jti.as_deref() == Some(jti) {
        style.push("bold");
    }
    if !style.is_empty() {
        attrs.push(format!("style=\"{}\"", style.join(",")));
    }
    let _ = writeln!(out, "  {id} [{}];", attrs.join(", "));
    if let Some(p) = parent {
        let dashed = if node.denied() { ", style=dashed" } else { "" };
        let _ = writeln!(out, "  {p} -> {id} [label=\"delegated\"{dashed}];");
    }
    let hang = |out: &mut String, kind: &str, i: u64, shape: &str, lines: Vec<String>, extra| {
        let _ = writeln!(
            out,
            "  {id}_{kind}{i} [shape={shape}, label={}{extra}];",
            dot_str(&lines)
        );
        let _ = writeln!(
            out,
            "  {id} -> {id}_{kind}{i} [style=dotted, arrowhead=none{extra}];"
        );
    };
    for (i, a) in &node.approvals {
        hang(out, "a", *i, "component", approval_label(*i, a), "");
    }
    for (i, c) in &node.consumptions {
        hang(out, "c", *i, "ellipse", consumption_label(*i, c), "");
    }
    for (i, r) in &node.receipts {
        hang(out, "x", *i, "note", receipt_label(*i, r), "");
    }
    for (i, r) in &node.revocations {
        hang(
            out,
            "r",
            *i,
            "octagon",
            revocation_label(*i, r),
            ", color=red, fontcolor=red",
        );
    }
    for child in &node.children {
        dot_node(out, child, jti, Some(&id), n);
    }
}

/// A Mermaid quoted label: quotes, `#`, `&`, `<`, `>` as entity codes, lines joined by `<br/>`.
fn mermaid_str(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (k, line) in lines.iter().enumerate() {
        if k > 0 {
            out.push_str("<br/>");
        }
        for ch in line.chars() {
            match ch {
                '"' => out.push_str("#quot;"),
                '#' => out.push_str("#35;"),
                '&' => out.push_str("#amp;"),
                '<' => out.push_str("#lt;"),
                '>' => out.push_str("#gt;"),
                '\n' => out.push_str("<br/>"),
                c if c.is_control() => out.push(' '),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

/// Mermaid `flowchart TD` with the same content as the DOT drawing.
pub fn mermaid(tree: &Tree, jti: &str) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut classes: Vec<(String, &'static str)> = Vec::new();
    let mut counter = 0;
    mermaid_node(&mut out, &tree.root, jti, None, &mut counter, &mut classes);
    out.push_str("  classDef revoked stroke:#d00,color:#d00;\n");
    out.push_str("  classDef denied stroke-dasharray:5 5;\n");
    out.push_str("  classDef asked stroke-width:3px;\n");
    for class in ["revoked", "denied", "asked"] {
        let ids: Vec<&str> = classes
            .iter()
            .filter(|(_, c)| *c == class)
            .map(|(id, _)| id.as_str())
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {class};", ids.join(","));
        }
    }
    out
}

fn mermaid_node(
    out: &mut String,
    node: &Node,
    jti: &str,
    parent: Option<&str>,
    n: &mut usize,
    classes: &mut Vec<(String, &'static str)>,
) {
    let id = format!("w{n}");
    *n += 1;
    let _ = writeln!(out, "  {id}[{}]", mermaid_str(&label(node)));
    if let Some(p) = parent {
        let arrow = if node.denied() { "-.->" } else { "-->" };
        let _ = writeln!(out, "  {p} {arrow}|delegated| {id}");
    }
    if node.revoked() {
        classes.push((id.clone(), "revoked"));
    }
    if node.denied() {
        classes.push((id.clone(), "denied"));
    }
    if node.jti.as_deref() == Some(jti) {
        classes.push((id.clone(), "asked"));
    }
    for (i, a) in &node.approvals {
        let _ = writeln!(
            out,
            "  {id}_a{i}[[{}]]\n  {id} -.- {id}_a{i}",
            mermaid_str(&approval_label(*i, a))
        );
    }
    for (i, c) in &node.consumptions {
        let _ = writeln!(
            out,
            "  {id}_c{i}([{}])\n  {id} -.- {id}_c{i}",
            mermaid_str(&consumption_label(*i, c))
        );
    }
    for (i, r) in &node.receipts {
        let _ = writeln!(
            out,
            "  {id}_x{i}[/{}/]\n  {id} -.- {id}_x{i}",
            mermaid_str(&receipt_label(*i, r))
        );
    }
    for (i, r) in &node.revocations {
        let _ = writeln!(
            out,
            "  {id}_r{i}{{{{{}}}}}\n  {id} -.- {id}_r{i}",
            mermaid_str(&revocation_label(*i, r))
        );
        classes.push((format!("{id}_r{i}"), "revoked"));
    }
    for child in &node.children {
        mermaid_node(out, child, jti, Some(&id), n, classes);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::{build, tests::entries};
    use super::*;

    fn tree() -> Tree {
        build(entries(), "A1").unwrap()
    }

    #[test]
    fn text_draws_an_indented_tree() {
        let t = text(&tree(), "A1");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "root initiator: orchestrator");
        assert!(lines[1].starts_with("writ R: [1] permit orchestrator repo.test on repo:writ"));
        assert!(t.contains("├─ writ A: [3] permit sub-1"), "{t}");
        assert!(t.contains("REVOKED\n"), "{t}");
        assert!(t.contains("│  ├─ * writ A1: [5] permit sub-3"), "{t}");
        assert!(
            t.contains("1 consumed, 1 executed; REVOKED (with A)"),
            "{t}"
        );
        assert!(t.contains("[6] consumed by gate-1: permit"), "{t}");
        assert!(t.contains("[7] executed by gate-1: exit 0"), "{t}");
        assert!(
            t.contains("revoked (writ `A`) by security: incident \"42\""),
            "{t}"
        );
        assert!(t.contains("└─ writ B: [4] permit sub-2"), "{t}");
        assert!(
            t.contains(
                "   └─ denied request: [10] deny sub-2 repo.push on repo:writ for gate-1 \
                 (policy ? null): lineage_inconsistency\n"
            ),
            "{t}"
        );
        assert!(!t.contains("writ X"));
    }

    #[test]
    fn json_is_the_tree_with_the_asked_writ_on_top() {
        let j = json(&tree(), "A1");
        assert_eq!(j["root_initiator"], "orchestrator");
        assert_eq!(j["jti"], "A1");
        assert_eq!(j["decision"]["index"], 5);
        assert_eq!(j["revoked_by"], "A");
        assert_eq!(j["consumptions"][0]["index"], 6);
        let root = &j["root"];
        assert_eq!(root["jti"], "R");
        assert_eq!(root["revoked_by"], Value::Null);
        let a = &root["children"][0];
        assert_eq!(a["jti"], "A");
        assert_eq!(a["depth"], 1);
        assert_eq!(a["revocations"][0]["entry"]["reason"], "incident \"42\"");
        assert_eq!(a["children"][1]["jti"], "A2");
        assert_eq!(a["children"][1]["revoked_by"], "A");
        let denied = &root["children"][1]["children"][0];
        assert_eq!(denied["jti"], Value::Null);
        assert_eq!(denied["decision"]["entry"]["decision"], "deny");
        assert_eq!(denied["children"], json!([]));
    }

    #[test]
    fn labels_are_escaped() {
        let lines = vec!["a \"b\" \\ c\nd".to_owned(), "<x> & #1".to_owned()];
        assert_eq!(dot_str(&lines), r#""a \"b\" \\ c\nd\n<x> & #1""#);
        assert_eq!(
            mermaid_str(&lines),
            "\"a #quot;b#quot; \\ c<br/>d<br/>#lt;x#gt; #amp; #35;1\""
        );
    }

    #[test]
    fn dot_marks_revoked_and_denied_writs() {
        let d = dot(&tree(), "A1");
        assert!(d.starts_with("digraph lineage {"));
        assert!(d.contains("w0 -> w1 [label=\"delegated\"];"), "{d}");
        assert!(
            d.contains("w4 -> w5 [label=\"delegated\", style=dashed];"),
            "{d}"
        );
        let line = |id: &str| {
            d.lines()
                .find(|l| l.starts_with(&format!("  {id} [")))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(line("w1").contains("color=red"), "{d}");
        assert!(line("w2").contains("color=red"), "{d}");
        assert!(line("w2").contains("bold"), "{d}");
        assert!(!line("w0").contains("color=red"), "{d}");
        assert!(line("w5").contains("dashed"), "{d}");
        assert!(d.contains("w2_c6 [shape=ellipse"), "{d}");
        assert!(d.contains("w2_x7 [shape=note"), "{d}");
        assert!(d.contains("w1_r11 [shape=octagon"), "{d}");
        assert!(d.contains(r#"incident \"42\""#), "{d}");
        assert!(d.contains("deny [10]\\nlineage_inconsistency"), "{d}");
    }

    /// Graphviz itself parses and lays out the drawing. CI installs it (`.ci/run`) and this
    /// test fails there without it; elsewhere it is skipped when `dot` is missing.
    #[test]
    fn graphviz_renders_the_dot_output() {
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
                eprintln!("skipped: Graphviz `dot` is not installed ({e})");
                return;
            }
        };
        let source = dot(&tree(), "A1");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(source.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}\n{source}");
        assert!(stderr.trim().is_empty(), "warnings: {stderr}");
        let svg = String::from_utf8(out.stdout).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        // 6 writs (one a denied request), 1 consumption, 1 receipt, 1 revocation.
        assert_eq!(svg.matches("class=\"node\"").count(), 9, "{svg}");
        assert_eq!(svg.matches("delegated").count(), 5, "{svg}");
        assert!(svg.contains("incident &quot;42&quot;"), "{svg}");
    }

    #[test]
    fn mermaid_is_a_flowchart() {
        let m = mermaid(&tree(), "A1");
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], "flowchart TD");
        assert!(m.contains("w0 -->|delegated| w1"), "{m}");
        assert!(m.contains("w4 -.->|delegated| w5"), "{m}");
        assert!(m.contains("w2_c6([\"consumed [6]"), "{m}");
        assert!(m.contains("w1_r11{{\"revoked [11]"), "{m}");
        assert!(m.contains("incident #quot;42#quot;"), "{m}");
        assert!(m.contains("class w1,w1_r11,w2,w3 revoked;"), "{m}");
        assert!(m.contains("class w5 denied;"), "{m}");
        assert!(m.contains("class w2 asked;"), "{m}");
        // Every line after the header is indented; brackets balance on node lines.
        for l in &lines[1..] {
            assert!(l.starts_with("  "), "{l}");
        }
    }

    #[test]
    fn approvals_show_in_every_format() {
        let mut released = serde_json::json!({"type": "decision", "decision": "permit",
            "jti": "P", "principal": "finance-bot", "action": "pay", "resource": "account:acme",
            "audience": "payments-gate", "policy_ids": ["approve-large-payments"], "exp": 9,
            "request_id": "req-1"});
        released["approvals"] = serde_json::json!([{"approver": "alice"}]);
        let entries = vec![
            (
                0,
                serde_json::json!({"type": "decision", "decision": "pending",
                "principal": "finance-bot", "request_id": "req-1", "approvals_required": 2,
                "approver_group": "finance"}),
            ),
            (
                1,
                serde_json::json!({"type": "approval", "event": "approved",
                "request_id": "req-1", "approver": "alice", "approver_kid": "kid-alice"}),
            ),
            (
                2,
                serde_json::json!({"type": "approval", "event": "approved",
                "request_id": "req-1", "approver": "bob", "approver_kid": "kid-bob"}),
            ),
            (3, released),
        ];
        let tree = build(entries, "P").unwrap();
        let t = text(&tree, "P");
        assert!(
            t.contains("[0] pending [0]: 2 approvals from finance, request req-1"),
            "{t}"
        );
        assert!(t.contains("[2] approved [2]: by bob (key kid-bob)"), "{t}");
        let j = json(&tree, "P");
        assert_eq!(j["approvals"].as_array().unwrap().len(), 3);
        assert_eq!(j["approvals"][1]["entry"]["approver"], "alice");
        let d = dot(&tree, "P");
        assert!(
            d.contains("w0_a1 [shape=component") && d.contains("by alice"),
            "{d}"
        );
        let m = mermaid(&tree, "P");
        assert!(m.contains("w0_a2[[") && m.contains("w0 -.- w0_a2"), "{m}");
    }
}
