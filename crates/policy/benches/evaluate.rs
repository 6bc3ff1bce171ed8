//! What a decision costs: the example policy set deciding typical requests.
//!
//! * `evaluate/permit_exec`: `git status` through `writ exec` (a permit, with delegation).
//! * `evaluate/deny_forbid`: `git push` (a forbid wins over a permit).
//! * `evaluate/pending_payment`: a payment that needs approvals.
//! * `evaluate/from_texts`: reading and validating the example set (what applying a set costs).
//!
//! Run: `cargo bench -p writ-policy --bench evaluate`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use writ_policy::{
    Limits, PolicySet, Principal, Request, EXAMPLE_ENTITIES, EXAMPLE_POLICIES, EXAMPLE_SCHEMA,
};

fn request(action: &str, resource: &str, args: serde_json::Value) -> Request {
    Request {
        principal: Principal {
            id: "build-agent".into(),
            role: "agent".into(),
            groups: vec!["agents".into(), "payments".into()],
        },
        action: action.into(),
        resource: resource.into(),
        args,
        context: json!({"purpose": "ci", "ticket": "DEV-1"}),
    }
}

fn bench(c: &mut Criterion) {
    let Ok(set) = PolicySet::from_texts(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, EXAMPLE_ENTITIES) else {
        panic!("the example set validates");
    };
    let limits = Limits::default();
    let env = json!({"PATH": "/usr/bin", "HOME": "/home/agent", "LANG": "C.UTF-8"});
    let cases = [
        (
            "permit_exec",
            request(
                "exec",
                "/usr/bin/git",
                json!({"argv": ["git", "status"], "cwd": "/workspace", "env": env}),
            ),
        ),
        (
            "deny_forbid",
            request(
                "exec",
                "/usr/bin/git",
                json!({"argv": ["git", "push"], "cwd": "/workspace", "env": env}),
            ),
        ),
        (
            "pending_payment",
            request(
                "pay",
                "account:acme",
                json!({"amount": 25000, "currency": "EUR"}),
            ),
        ),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (name, req) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(set.evaluate(black_box(req), &limits)))
        });
    }
    group.bench_function("from_texts", |b| {
        b.iter(|| {
            black_box(
                PolicySet::from_texts(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, EXAMPLE_ENTITIES).is_ok(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
