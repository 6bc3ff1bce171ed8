//! The example set and small builders.
#![allow(dead_code)]

use serde_json::{json, Value};
use writ_policy::{
    PolicySet, Principal, Request, EXAMPLE_ENTITIES, EXAMPLE_POLICIES, EXAMPLE_SCHEMA,
};

pub fn example() -> PolicySet {
    PolicySet::from_texts(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, EXAMPLE_ENTITIES)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn agent(groups: &[&str]) -> Principal {
    Principal {
        id: "build-agent".into(),
        role: "agent".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

pub fn request(action: &str, resource: &str, args: Value) -> Request {
    Request {
        principal: agent(&["agents", "payments"]),
        action: action.into(),
        resource: resource.into(),
        args,
        context: json!({}),
    }
}

pub fn git(sub: &str) -> Request {
    request(
        "exec",
        "/usr/bin/git",
        json!({"argv": ["git", sub], "cwd": "/workspace"}),
    )
}

pub fn pay(amount: Value) -> Request {
    request(
        "pay",
        "account:acme",
        json!({"amount": amount, "currency": "EUR"}),
    )
}

/// A minimal schema for sets written in tests: exec on files, with integer arguments.
pub const SMALL_SCHEMA: &str = r#"
namespace Writ {
  entity Group in [Group];
  entity Principal in [Group] { role: String };
  entity File { path: String };
  action "exec" appliesTo {
    principal: [Principal],
    resource: [File],
    context: { args: { argv: Set<String>, n?: Long }, args_json: String },
  };
}
"#;
