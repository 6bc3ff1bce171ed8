use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use writ_core::{canonical, Denial, DenyCode, Sha256Digest};

use super::*;
use crate::authorizer::{Action, Authorizer, Outcome, Permit, ReportError};

/// Permits the tools it names, denies the rest, and remembers every action it was asked.
struct Fake {
    allow: Vec<&'static str>,
    asked: Mutex<Vec<Action>>,
}

impl Fake {
    fn allowing(allow: &[&'static str]) -> Self {
        Self {
            allow: allow.to_vec(),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<Action> {
        self.asked.lock().unwrap().clone()
    }
}

impl Authorizer for Fake {
    fn authorize(&self, action: &Action) -> Result<Permit, Denial> {
        self.asked.lock().unwrap().push(action.clone());
        let tool = action.resource.rsplit('/').next().unwrap();
        if self.allow.contains(&tool) {
            Ok(Permit {
                writ: format!("writ-for-{tool}"),
                jti: format!("jti-{tool}"),
            })
        } else {
            Err(Denial::new(
                DenyCode::MissingAuthorization,
                format!("policy denies `{tool}`"),
            ))
        }
    }

    fn report(&self, _: &Permit, _: &Outcome) -> Result<(), ReportError> {
        Ok(())
    }
}

struct Panics;

impl Authorizer for Panics {
    fn authorize(&self, _: &Action) -> Result<Permit, Denial> {
        panic!("boom")
    }

    fn report(&self, _: &Permit, _: &Outcome) -> Result<(), ReportError> {
        Ok(())
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

fn call(id: Value, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": args}})
}

fn is_denial(answer: &Value, id: &Value, code: &str) -> bool {
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    answer["id"] == *id
        && answer["result"]["isError"] == json!(true)
        && text.starts_with(&format!("writ denied: {code}: "))
}

#[test]
fn messages_other_than_tools_call_pass_without_asking() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&[]);
    for message in [
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","id":"s-1","result":{"roots":[]}}),
        json!({"jsonrpc":"2.0","id":"s-2","error":{"code":-1,"message":"no"}}),
        json!(42),
        json!([]),
    ] {
        let step = gate.on_client_line(message.to_string(), &fake, Instant::now());
        assert_eq!(step.to_client, None, "{message}");
        let forwarded: Vec<Value> = step.to_server.iter().map(|l| parse(l)).collect();
        assert_eq!(forwarded, vec![message]);
    }
    assert!(fake.asked().is_empty());
    assert_eq!(gate.pending(), 0);
}

#[test]
fn a_permitted_call_is_forwarded_as_authorized_re_serialized() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let line = r#"{ "params" : { "arguments" : {"path":"/srv/a.txt", "n": 1.50}, "name":"read_file", "_meta":{"progressToken":7} },
        "method":"tools/call", "id":7, "jsonrpc":"2.0" }"#;
    let line = line.replace('\n', " ");
    let step = gate.on_client_line(&line, &fake, Instant::now());
    assert_eq!(step.to_client, None);
    let forwarded = step.to_server.concat();
    assert_ne!(forwarded, line, "never the original bytes");
    assert!(!forwarded.contains('\n'));
    assert_eq!(parse(&forwarded), parse(&line));
    assert_eq!(
        fake.asked(),
        vec![Action {
            action: "tools/call".into(),
            resource: "mcp:fs/read_file".into(),
            args: json!({"path": "/srv/a.txt", "n": 1.5}),
        }]
    );
    assert_eq!(
        parse(&forwarded)["params"]["arguments"],
        fake.asked()[0].args
    );
    assert_eq!(gate.pending(), 1);
}

#[test]
fn a_call_without_arguments_is_authorized_and_forwarded_with_empty_ones() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["list_allowed_directories"]);
    let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_allowed_directories"}}"#;
    let step = gate.on_client_line(line, &fake, Instant::now());
    assert_eq!(fake.asked()[0].args, json!({}));
    assert_eq!(parse(&step.to_server[0])["params"]["arguments"], json!({}));
}

#[test]
fn a_denied_call_is_answered_with_a_tool_error_and_never_forwarded() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let message = call(
        json!("w1"),
        "write_file",
        json!({"path": "/srv/x", "content": "x"}),
    );
    let step = gate.on_client_line(message.to_string(), &fake, Instant::now());
    assert!(step.to_server.is_empty());
    let answer = parse(&step.to_client.unwrap());
    assert!(
        is_denial(&answer, &json!("w1"), "missing_authorization"),
        "{answer}"
    );
    assert!(answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("policy denies `write_file`"));
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(fake.asked()[0].resource, "mcp:fs/write_file");
    assert_eq!(gate.pending(), 0);
}

#[test]
fn a_batch_forwards_the_permitted_and_answers_the_denied() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let batch = json!([
        call(json!(1), "read_file", json!({"path": "/a"})),
        call(json!(2), "write_file", json!({"path": "/b", "content": ""})),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
        call(json!(3), "read_file", json!({"path": "/c"})),
        call(json!(4), "delete_everything", json!({})),
    ]);
    let step = gate.on_client_line(batch.to_string(), &fake, Instant::now());
    let forwarded: Vec<Value> = step.to_server.iter().map(|l| parse(l)).collect();
    assert_eq!(
        forwarded,
        vec![batch[0].clone(), batch[2].clone(), batch[3].clone()]
    );
    let answers = parse(&step.to_client.unwrap());
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert!(is_denial(&answers[0], &json!(2), "missing_authorization"));
    assert!(is_denial(&answers[1], &json!(4), "missing_authorization"));
    assert_eq!(gate.pending(), 2);
}

#[test]
fn a_batch_of_denied_calls_forwards_nothing() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&[]);
    let batch = json!([
        call(json!(1), "a", json!({})),
        call(json!(2), "b", json!({}))
    ]);
    let step = gate.on_client_line(batch.to_string(), &fake, Instant::now());
    assert!(step.to_server.is_empty());
    assert_eq!(parse(&step.to_client.unwrap()).as_array().unwrap().len(), 2);
}

#[test]
fn invalid_utf8_gets_a_parse_error() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let line = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_\xff\"}}";
    let step = gate.on_client_line(line, &fake, Instant::now());
    assert!(step.to_server.is_empty());
    assert_eq!(
        parse(&step.to_client.unwrap())["error"]["code"],
        json!(-32700)
    );
    assert!(fake.asked().is_empty());
}

#[test]
fn malformed_json_gets_a_parse_error_and_nothing_is_forwarded() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    for line in [
        "{not json",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}} trailing"#,
        // Duplicate keys: two parsers could read two different calls.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"write_file"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"write_file"}}"#,
    ] {
        let step = gate.on_client_line(line, &fake, Instant::now());
        assert!(step.to_server.is_empty(), "{line}");
        let answer = parse(&step.to_client.unwrap());
        assert_eq!(answer["error"]["code"], json!(-32700), "{line}");
        assert_eq!(answer["id"], Value::Null);
    }
    assert!(fake.asked().is_empty());
}

#[test]
fn a_call_without_a_tool_name_gets_invalid_params() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    for params in [
        None,
        Some(json!({})),
        Some(json!({"name": 5})),
        Some(json!({"name": ""})),
        Some(json!(["read_file"])),
        Some(json!({"name": "read_file", "arguments": ["x"]})),
    ] {
        let mut message = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call"});
        if let Some(p) = params.clone() {
            message["params"] = p;
        }
        let step = gate.on_client_line(message.to_string(), &fake, Instant::now());
        assert!(step.to_server.is_empty(), "{params:?}");
        let answer = parse(&step.to_client.unwrap());
        assert_eq!(answer["error"]["code"], json!(-32602), "{params:?}");
        assert_eq!(answer["id"], json!(9));
    }
    assert!(fake.asked().is_empty());
}

#[test]
fn a_tools_call_notification_is_dropped_unasked() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file", "write_file"]);
    let line =
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"write_file","arguments":{}}}"#;
    let step = gate.on_client_line(line, &fake, Instant::now());
    assert_eq!(step, ClientStep::default());
    // Inside a batch too.
    let batch = format!(r#"[{line},{{"jsonrpc":"2.0","method":"notifications/initialized"}}]"#);
    let step = gate.on_client_line(&batch, &fake, Instant::now());
    assert_eq!(
        step.to_server,
        vec![json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string()]
    );
    assert_eq!(step.to_client, None);
    assert!(fake.asked().is_empty());
}

#[test]
fn odd_ids_and_methods_are_refused_for_calls() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    for (message, code) in [
        (call(Value::Null, "read_file", json!({})), -32600),
        (call(json!({"a": 1}), "read_file", json!({})), -32600),
        (json!({"jsonrpc": "2.0", "id": 3, "method": 7}), -32600),
    ] {
        let step = gate.on_client_line(message.to_string(), &fake, Instant::now());
        assert!(step.to_server.is_empty(), "{message}");
        assert_eq!(
            parse(&step.to_client.unwrap())["error"]["code"],
            json!(code)
        );
    }
    assert!(fake.asked().is_empty());
}

#[test]
fn an_id_still_pending_is_not_reused_for_a_call() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let line = call(json!(1), "read_file", json!({})).to_string();
    assert_eq!(
        gate.on_client_line(&line, &fake, Instant::now())
            .to_server
            .len(),
        1
    );
    let step = gate.on_client_line(&line, &fake, Instant::now());
    assert!(step.to_server.is_empty());
    assert_eq!(
        parse(&step.to_client.unwrap())["error"]["code"],
        json!(-32600)
    );
    assert_eq!(fake.asked().len(), 1, "no second writ is spent");
}

#[test]
fn a_panicking_authorizer_denies() {
    let gate = McpGate::new("fs");
    let line = call(json!(1), "read_file", json!({})).to_string();
    let step = gate.on_client_line(&line, &Panics, Instant::now());
    assert!(step.to_server.is_empty());
    assert!(is_denial(
        &parse(&step.to_client.unwrap()),
        &json!(1),
        "status_unavailable"
    ));
    assert_eq!(gate.pending(), 0);
}

#[test]
fn a_server_answer_passes_unchanged_and_settles_the_permit() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let start = Instant::now();
    let line = call(json!(7), "read_file", json!({"path": "/a"})).to_string();
    gate.on_client_line(&line, &fake, start);

    // A notification and an unrelated answer settle nothing.
    let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}}"#;
    let step = gate.on_server_line(note, start);
    assert_eq!((step.replaced, step.reports.len()), (None, 0));
    let other = r#"{"jsonrpc":"2.0","id":8,"result":{}}"#;
    assert!(gate.on_server_line(other, start).reports.is_empty());

    let result = json!({"content": [{"type": "text", "text": "hello"}]});
    let answer = format!(r#"{{"result": {result},  "id":7,"jsonrpc":"2.0"}}"#);
    let step = gate.on_server_line(&answer, start + Duration::from_millis(12));
    assert_eq!(step.replaced, None, "the server's bytes, unchanged");
    assert_eq!(
        step.reports,
        vec![CallReport {
            permit: Permit {
                writ: "writ-for-read_file".into(),
                jti: "jti-read_file".into()
            },
            outcome: Outcome {
                exit_status: None,
                signal: None,
                duration_ms: 12,
                stdout_sha256: canonical::digest(&result),
                stderr_sha256: Sha256Digest::of(b""),
            },
        }]
    );
    assert_eq!(gate.pending(), 0);
    // Answered once only.
    assert!(gate.on_server_line(&answer, start).reports.is_empty());
}

#[test]
fn tool_errors_and_protocol_errors_report_a_failure() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    let now = Instant::now();
    let batch = json!([
        call(json!(1), "read_file", json!({})),
        call(json!(2), "read_file", json!({})),
    ]);
    gate.on_client_line(batch.to_string(), &fake, now);
    let tool_error = json!({"content": [], "isError": true});
    let rpc_error = json!({"code": -32603, "message": "internal"});
    let answers = json!([
        {"jsonrpc": "2.0", "id": 2, "error": rpc_error},
        {"jsonrpc": "2.0", "id": 1, "result": tool_error},
    ]);
    let step = gate.on_server_line(answers.to_string(), now);
    assert_eq!(step.reports.len(), 2);
    assert_eq!(step.reports[0].outcome.exit_status, Some(1));
    assert_eq!(
        step.reports[0].outcome.stdout_sha256,
        canonical::digest(&rpc_error)
    );
    assert_eq!(step.reports[1].outcome.exit_status, Some(1));
    assert_eq!(
        step.reports[1].outcome.stdout_sha256,
        canonical::digest(&tool_error)
    );
}

#[test]
fn a_tool_filter_trims_tools_list_answers_only() {
    let gate = McpGate::new("fs").with_tool_filter(Box::new(|tool| tool.starts_with("read")));
    let fake = Fake::allowing(&[]);
    let list = r#"{"jsonrpc":"2.0","id":"l1","method":"tools/list"}"#;
    let step = gate.on_client_line(list, &fake, Instant::now());
    assert_eq!(parse(&step.to_server[0]), parse(list));
    let tools = json!({"tools": [
        {"name": "read_file", "inputSchema": {}},
        {"name": "write_file", "inputSchema": {}},
        {"inputSchema": {}},
    ], "nextCursor": "c"});
    let answer = json!({"jsonrpc": "2.0", "id": "l1", "result": tools}).to_string();
    let step = gate.on_server_line(&answer, Instant::now());
    let trimmed = parse(&step.replaced.unwrap());
    assert_eq!(
        trimmed["result"]["tools"],
        json!([{"name": "read_file", "inputSchema": {}}, {"inputSchema": {}}])
    );
    assert_eq!(trimmed["result"]["nextCursor"], "c");
    assert!(step.reports.is_empty());
    // The same answer to an id that was not a tools/list is not touched.
    let step = gate.on_server_line(&answer, Instant::now());
    assert_eq!(step.replaced, None);
}

#[test]
fn without_a_filter_tools_list_is_not_tracked() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&[]);
    gate.on_client_line(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        &fake,
        Instant::now(),
    );
    assert_eq!(gate.pending(), 0);
}

#[test]
fn unanswered_permits_can_be_drained() {
    let gate = McpGate::new("fs");
    let fake = Fake::allowing(&["read_file"]);
    gate.on_client_line(
        call(json!(1), "read_file", json!({})).to_string(),
        &fake,
        Instant::now(),
    );
    assert_eq!(gate.drain_unanswered().len(), 1);
    assert_eq!(gate.pending(), 0);
}
