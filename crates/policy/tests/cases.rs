//! The example set validates, and its cases file holds.

use std::collections::BTreeSet;

use writ_policy::{parse_cases, run_cases, Expected, Limits, EXAMPLE_CASES};

use crate::support::example;

#[test]
fn the_example_set_validates_without_warnings() {
    let set = example();
    let report = set.validate();
    assert!(report.is_ok(), "{report}");
    assert!(report.warnings.is_empty(), "{report}");
    assert_eq!(set.policy_ids().len(), 12);
    assert_eq!(
        set.actions(),
        ["Bash", "Edit", "Write", "exec", "pay", "tools/call"]
    );
}

#[test]
fn every_example_case_holds() {
    let set = example();
    let cases = parse_cases(EXAMPLE_CASES).unwrap();
    let results = run_cases(&set, &cases, &Limits::default());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(results.len(), cases.len());
}

#[test]
fn the_cases_exercise_every_example_policy_and_outcome() {
    let set = example();
    let cases = parse_cases(EXAMPLE_CASES).unwrap();
    let results = run_cases(&set, &cases, &Limits::default());
    let named: BTreeSet<&str> = results
        .iter()
        .flat_map(|r| r.decision.policy_ids())
        .collect();
    for id in set.policy_ids() {
        assert!(named.contains(id), "no case reaches `{id}`");
    }
    for expected in [Expected::Permit, Expected::Deny, Expected::Pending] {
        assert!(cases.iter().any(|c| c.expect == expected));
    }
    let codes: BTreeSet<&str> = results
        .iter()
        .filter_map(|r| match &r.decision {
            writ_policy::Decision::Deny { reasons } => Some(reasons.iter().map(|r| r.code())),
            _ => None,
        })
        .flatten()
        .collect();
    for code in [
        "forbid",
        "no_permit",
        "unknown_action",
        "unknown_resource",
        "invalid_request",
    ] {
        assert!(codes.contains(code), "no case denies with `{code}`");
    }
}

#[test]
fn a_wrong_expectation_is_a_mismatch() {
    let set = example();
    let mut cases = parse_cases(EXAMPLE_CASES).unwrap();
    cases.truncate(1);
    cases[0].expect = Expected::Deny;
    cases[0].lifetime_secs = Some(1);
    let results = run_cases(&set, &cases, &Limits::default());
    assert!(!results[0].passed());
    assert_eq!(
        results[0].mismatches.len(),
        2,
        "{:?}",
        results[0].mismatches
    );
    assert!(results[0].to_string().starts_with("FAIL"));
}

#[test]
fn cases_files_are_read_strictly() {
    for bad in [
        "{}",
        "[{\"name\":\"x\"}]",
        "[{\"name\":\"x\",\"name\":\"y\"}]",
        r#"[{"name":"x","request":{"principal":{"id":"a","role":"agent"},"action":"exec","resource":"/x"},"expect":"maybe"}]"#,
        r#"[{"name":"x","request":{"principal":{"id":"a","role":"agent"},"action":"exec","resource":"/x"},"expect":"deny","typo":1}]"#,
    ] {
        assert!(
            matches!(parse_cases(bad), Err(writ_policy::Error::Cases(_))),
            "{bad}"
        );
    }
}
