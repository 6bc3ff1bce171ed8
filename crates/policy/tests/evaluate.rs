//! Decisions: fail-closed on errors, annotations within limits, delegation, approvals.

use serde_json::json;
use writ_core::Delegation;
use writ_policy::{Approver, Decision, Limits, PolicySet, Reason, Request};

use crate::support::*;

fn small(policies: &str) -> PolicySet {
    PolicySet::from_texts(SMALL_SCHEMA, policies, "[]").unwrap_or_else(|e| panic!("{e}"))
}

fn exec(n: i64) -> Request {
    let mut r = request("exec", "/bin/x", json!({"argv": ["x"], "n": n}));
    r.principal = agent(&[]);
    r
}

#[test]
fn an_evaluation_error_denies_even_when_a_plain_permit_matches() {
    let set = small(
        r#"
        @id("allow-all") permit (principal, action, resource);
        @id("overflows") permit (principal, action, resource)
          when { context.args has n && context.args.n * 1000000000000 > 0 };
        "#,
    );
    assert!(set.evaluate(&exec(1), &Limits::default()).is_permit());
    let d = set.evaluate(&exec(100_000_000), &Limits::default());
    let Decision::Deny { reasons } = &d else {
        panic!("{d}")
    };
    assert_eq!(reasons.len(), 1, "{d}");
    assert!(
        matches!(&reasons[0], Reason::EvaluationError { policy, detail } if policy == "overflows" && detail.contains("overflow")),
        "{d}"
    );
}

#[test]
fn a_forbid_that_fails_denies() {
    let set = small(
        r#"
        @id("allow-all") permit (principal, action, resource);
        @id("forbid-big") forbid (principal, action, resource)
          when { context.args has n && context.args.n * 1000000000000 > 5 };
        "#,
    );
    // Cedar alone would skip the failing forbid and allow.
    let d = set.evaluate(&exec(100_000_000), &Limits::default());
    assert_eq!(d.as_str(), "deny", "{d}");
    assert_eq!(d.policy_ids(), ["forbid-big"]);
    assert!(set.evaluate(&exec(0), &Limits::default()).is_permit());
}

#[test]
fn forbids_are_listed_in_source_order_with_their_reason() {
    let set = small(
        r#"
        @id("allow-all") permit (principal, action, resource);
        @id("b") @reason("second") forbid (principal, action, resource);
        @id("a") forbid (principal, action, resource);
        "#,
    );
    let d = set.evaluate(&exec(0), &Limits::default());
    assert_eq!(
        d,
        Decision::Deny {
            reasons: vec![
                Reason::Forbid {
                    policy: "b".into(),
                    message: Some("second".into())
                },
                Reason::Forbid {
                    policy: "a".into(),
                    message: None
                },
            ]
        }
    );
    assert_eq!(
        d.to_string(),
        "deny: forbidden by `b`: second; forbidden by `a`"
    );
}

#[test]
fn lifetime_and_uses_come_from_annotations_within_limits() {
    let set = small(
        r#"
        @id("long") @lifetime("3600") @uses("50") permit (principal, action, resource);
        @id("short") @lifetime("20") permit (principal, action, resource) when { context.args has n };
        "#,
    );
    let limits = Limits::default();
    // Alone: both capped at the maxima.
    let mut r = exec(0);
    r.args = json!({"argv": ["x"]});
    assert!(matches!(
        set.evaluate(&r, &limits),
        Decision::Permit {
            lifetime_secs: 300,
            uses: 10,
            ..
        }
    ));
    // Two deciding policies: the smallest of each.
    assert!(matches!(
        set.evaluate(&exec(1), &limits),
        Decision::Permit {
            lifetime_secs: 20,
            uses: 10,
            ..
        }
    ));
    // Tighter limits win over any annotation.
    let tight = Limits {
        default_lifetime_secs: 60,
        max_lifetime_secs: 15,
        max_uses: 2,
    };
    assert!(matches!(
        set.evaluate(&exec(1), &tight),
        Decision::Permit {
            lifetime_secs: 15,
            uses: 2,
            ..
        }
    ));
    // Without annotations: the default lifetime and one use, the default capped too.
    let plain = small(r#"@id("plain") permit (principal, action, resource);"#);
    assert!(matches!(
        plain.evaluate(&exec(1), &limits),
        Decision::Permit {
            lifetime_secs: 60,
            uses: 1,
            ..
        }
    ));
    assert!(matches!(
        plain.evaluate(&exec(1), &tight),
        Decision::Permit {
            lifetime_secs: 15,
            uses: 1,
            ..
        }
    ));
}

#[test]
fn delegation_is_granted_only_when_every_deciding_permit_grants_the_same() {
    let d = example().evaluate(&git("status"), &Limits::default());
    let Decision::Permit { delegation, .. } = &d else {
        panic!("{d}")
    };
    assert_eq!(
        delegation.as_ref(),
        Some(&Delegation {
            actions: vec!["exec".into()],
            resources: vec!["/usr/bin/git".into(), "/usr/bin/ls".into()],
            max_depth: 1
        })
    );
    let set = small(
        r#"
        @id("d") @delegate_actions("exec") @delegate_resources("/bin/*") @delegate_depth("2")
        permit (principal, action, resource);
        @id("plain") permit (principal, action, resource) when { context.args has n };
        "#,
    );
    let mut r = exec(0);
    r.args = json!({"argv": ["x"]});
    assert!(matches!(
        set.evaluate(&r, &Limits::default()),
        Decision::Permit {
            delegation: Some(Delegation { max_depth: 2, .. }),
            ..
        }
    ));
    assert!(matches!(
        set.evaluate(&exec(0), &Limits::default()),
        Decision::Permit {
            delegation: None,
            ..
        }
    ));
}

#[test]
fn pending_unless_a_plain_permit_matches_and_released_by_a_quorum() {
    let set = small(
        r#"
        @id("two-ops") @approvals("2") @approvers("ops") @uses("2")
        permit (principal, action, resource);
        @id("three-sec") @approvals("3") @approvers("security")
        permit (principal, action, resource) when { context.args has n };
        @id("plain") permit (principal, action, resource) when { context.args has n && context.args.n == 7 };
        "#,
    );
    let limits = Limits::default();
    let mut only_ops = exec(0);
    only_ops.args = json!({"argv": ["x"]});
    assert_eq!(
        set.evaluate(&only_ops, &limits),
        Decision::Pending {
            policy_ids: vec!["two-ops".into()],
            approvals_required: 2,
            approver_group: "ops".into(),
            lifetime_secs: 60,
            uses: 2,
        }
    );
    // Two approval policies: the strictest rule is the one to meet.
    assert_eq!(
        set.evaluate(&exec(1), &limits),
        Decision::Pending {
            policy_ids: vec!["two-ops".into(), "three-sec".into()],
            approvals_required: 3,
            approver_group: "security".into(),
            lifetime_secs: 60,
            uses: 2,
        }
    );
    // A plain permit alongside: permit, by the plain policy alone.
    assert!(matches!(
        set.evaluate(&exec(7), &limits),
        Decision::Permit { ref policy_ids, uses: 1, .. } if policy_ids == &["plain"]
    ));
    let ops = |id: &str| Approver {
        id: id.into(),
        groups: vec!["ops".into()],
    };
    assert!(matches!(
        set.evaluate_with_approvals(&only_ops, &limits, &[ops("a"), ops("b")]),
        Decision::Permit { uses: 2, .. }
    ));
    assert_eq!(
        set.evaluate_with_approvals(&only_ops, &limits, &[ops("a"), ops("a")])
            .as_str(),
        "pending"
    );
    assert_eq!(
        set.evaluate_with_approvals(&only_ops, &limits, &[ops("a"), ops("build-agent")])
            .as_str(),
        "pending",
        "the requester's own approval does not count"
    );
}

#[test]
fn requests_the_schema_does_not_describe_are_denied() {
    let set = example();
    let limits = Limits::default();
    let code = |r: &Request| match set.evaluate(r, &limits) {
        Decision::Deny { reasons } => reasons[0].code(),
        d => panic!("{d}"),
    };
    let mut r = git("status");
    r.action = "exec ".into();
    assert_eq!(code(&r), "unknown_action");
    r.action = "Writ::Action::\"exec\"".into();
    assert_eq!(code(&r), "unknown_action");
    let mut r = git("status");
    r.resource = "usr/bin/git".into();
    assert_eq!(code(&r), "unknown_resource");
    let mut r = git("status");
    r.context = json!("purpose");
    assert_eq!(code(&r), "invalid_request");
    let mut r = git("status");
    r.context = json!({"purpose": 7});
    assert_eq!(code(&r), "invalid_request");
    let mut r = git("status");
    r.context = json!({"args_json": "{}"});
    assert_eq!(code(&r), "invalid_request");
    let mut r = git("status");
    r.args = json!(["git", "status"]);
    assert_eq!(code(&r), "invalid_request");
    let mut r = git("status");
    r.args = json!({"cwd": "/workspace"});
    assert_eq!(
        code(&r),
        "invalid_request",
        "a required argument is missing"
    );
    // Undeclared context and null members are dropped, declared ones are typed.
    let mut r = git("status");
    r.context = json!({"purpose": "ci", "ticket": null, "trace": {"id": 1.5}, "env": {"hostname": "h", "env": {"A": null}}});
    assert!(set.evaluate(&r, &limits).is_permit());
    assert_eq!(code(&pay(json!(1.0))), "invalid_request");
    assert_eq!(code(&pay(json!(-9007199254740993i64))), "invalid_request");
    assert!(set.evaluate(&pay(json!(9000)), &limits).is_permit());
}

#[test]
fn arguments_are_also_readable_as_canonical_json() {
    let set = small(
        r#"
        @id("exact-argv") permit (principal, action, resource)
          when { context.args_json == "{\"argv\":[\"x\",\"y\"],\"env\":{\"A\":\"1\"}}" };
        "#,
    );
    let mut r = exec(0);
    r.args = json!({"env": {"A": "1"}, "argv": ["x", "y"]});
    assert!(set.evaluate(&r, &Limits::default()).is_permit());
    r.args = json!({"env": {"A": "1"}, "argv": ["y", "x"]});
    assert!(!set.evaluate(&r, &Limits::default()).is_permit());
}

#[test]
fn resources_from_the_entities_keep_their_parents() {
    let schema = SMALL_SCHEMA.replace(
        "entity File { path: String };",
        "entity Dir; entity File in [Dir] { path: String };",
    );
    let entities = r#"[{"uid":{"type":"Writ::File","id":"/bin/x"},"attrs":{"path":"/bin/x"},"parents":[{"type":"Writ::Dir","id":"bin"}]}]"#;
    let set = PolicySet::from_texts(
        &schema,
        r#"@id("in-bin") permit (principal, action, resource in Writ::Dir::"bin");"#,
        entities,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(set.evaluate(&exec(0), &Limits::default()).is_permit());
    let mut other = exec(0);
    other.resource = "/bin/y".into();
    assert!(!set.evaluate(&other, &Limits::default()).is_permit());
}

#[test]
fn json_escapes_are_plain_data() {
    // Cedar's JSON format reads `__entity` and `__extn` objects as entity references and
    // extension values; writ's arguments never are.
    let set = small(
        r#"@id("allow-all") permit (principal, action, resource);
           @id("no-n") forbid (principal, action, resource) when { context.args has n };"#,
    );
    let mut r = exec(0);
    r.args = json!({"argv": ["x"], "n": {"__entity": {"type": "Writ::Group", "id": "admins"}}});
    let d = set.evaluate(&r, &Limits::default());
    assert!(
        matches!(&d, Decision::Deny { reasons } if reasons[0].code() == "invalid_request"),
        "{d}"
    );
    r.args = json!({"argv": [{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}]});
    assert_eq!(set.evaluate(&r, &Limits::default()).as_str(), "deny");
}

#[test]
fn resource_types_writ_cannot_fill_are_warned_about_and_denied_unless_defined() {
    let schema = SMALL_SCHEMA.replace(
        "entity File { path: String };",
        "entity File { path: String, owner: String };",
    );
    let entities = r#"[{"uid":{"type":"Writ::File","id":"/bin/x"},"attrs":{"path":"/bin/x","owner":"root"},"parents":[]}]"#;
    let set = PolicySet::parse(
        &schema,
        r#"@id("allow-all") permit (principal, action, resource) when { resource.owner == "root" };"#,
        entities,
    )
    .unwrap();
    let report = set.validate();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.warnings.len(), 1, "{report}");
    assert!(
        report.warnings[0].message.contains("Writ::File"),
        "{report}"
    );
    assert!(set.evaluate(&exec(0), &Limits::default()).is_permit());
    let mut other = exec(0);
    other.resource = "/bin/y".into();
    let d = set.evaluate(&other, &Limits::default());
    assert!(
        matches!(&d, Decision::Deny { reasons } if reasons[0].code() == "invalid_request"),
        "{d}"
    );
}

#[test]
fn a_principal_type_writ_cannot_fill_is_an_error() {
    let schema = SMALL_SCHEMA.replace(
        "entity Principal in [Group] { role: String };",
        "entity Principal { role: Long };",
    );
    let set = PolicySet::parse(&schema, "", "[]").unwrap();
    let report = set.validate();
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(
        report.errors[0].message.contains("Writ::Principal"),
        "{report}"
    );
    let d = set.evaluate(&exec(0), &Limits::default());
    assert!(
        matches!(&d, Decision::Deny { reasons } if reasons[0].code() == "invalid_request"),
        "{d}"
    );
}
