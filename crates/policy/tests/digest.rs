//! The digest: stable for identical inputs, different when anything changes.

use writ_core::{canonical, Sha256Digest};
use writ_policy::{PolicySet, EXAMPLE_ENTITIES, EXAMPLE_POLICIES, EXAMPLE_SCHEMA, SOURCE_FORMAT};

use crate::support::example;

fn digest(schema: &str, policies: &str, entities: &str) -> Sha256Digest {
    PolicySet::parse(schema, policies, entities)
        .unwrap_or_else(|e| panic!("{e}"))
        .digest()
}

#[test]
fn is_stable_and_covers_the_documented_object() {
    let a = example();
    let b = example();
    assert_eq!(a.digest(), b.digest());
    let source = a.source();
    assert_eq!(source["format"], SOURCE_FORMAT);
    assert_eq!(source["schema"], EXAMPLE_SCHEMA);
    assert_eq!(source["policies"], EXAMPLE_POLICIES);
    assert_eq!(
        source["entities"],
        serde_json::from_str::<serde_json::Value>(EXAMPLE_ENTITIES).unwrap()
    );
    assert_eq!(
        a.digest(),
        Sha256Digest::of(canonical::to_canonical_string(&source).as_bytes())
    );
}

#[test]
fn changes_when_any_policy_changes() {
    let base = example().digest();
    // Every policy's text, one at a time: its id, its effect, a condition.
    let edits = [
        ("@id(\"allow-dev-tools\")", "@id(\"allow-dev-tools-2\")"),
        ("\"/usr/bin/cargo\"", "\"/usr/bin/make\""),
        ("<= 10000", "<= 10001"),
        ("@approvals(\"2\")", "@approvals(\"3\")"),
        ("@lifetime(\"600\")", "@lifetime(\"601\")"),
        ("resource.server == \"docs\"", "resource.server == \"wiki\""),
        ("deleting files is not for agents\")\nforbid (\n  principal,\n  action == Writ::Action::\"exec\"",
         "deleting files is not for agents!\")\nforbid (\n  principal,\n  action == Writ::Action::\"exec\""),
    ];
    let mut seen = vec![base];
    for (from, to) in edits {
        assert!(EXAMPLE_POLICIES.contains(from), "{from}");
        let changed = EXAMPLE_POLICIES.replacen(from, to, 1);
        let d = digest(EXAMPLE_SCHEMA, &changed, EXAMPLE_ENTITIES);
        assert!(!seen.contains(&d), "{from} -> {to}");
        seen.push(d);
    }
    // A comment or whitespace counts too: the text is what the log keeps.
    let d = digest(
        EXAMPLE_SCHEMA,
        &format!("{EXAMPLE_POLICIES}\n"),
        EXAMPLE_ENTITIES,
    );
    assert_ne!(d, base);
    // The schema counts.
    let d = digest(
        &EXAMPLE_SCHEMA.replace("memo?: String", "memo?: String, note?: String"),
        EXAMPLE_POLICIES,
        EXAMPLE_ENTITIES,
    );
    assert_ne!(d, base);
}

#[test]
fn entities_count_as_json_values() {
    let base = example().digest();
    let compact: serde_json::Value = serde_json::from_str(EXAMPLE_ENTITIES).unwrap();
    let d = digest(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, &compact.to_string());
    assert_eq!(d, base, "layout of entities.json does not matter");
    let more = EXAMPLE_ENTITIES.replacen(
        "{ \"uid\": { \"type\": \"Writ::Group\", \"id\": \"agents\" }, \"attrs\": {}, \"parents\": [] },",
        "{ \"uid\": { \"type\": \"Writ::Group\", \"id\": \"agents\" }, \"attrs\": {}, \"parents\": [] },\n  { \"uid\": { \"type\": \"Writ::Group\", \"id\": \"ops\" }, \"attrs\": {}, \"parents\": [] },",
        1,
    );
    assert_ne!(more, EXAMPLE_ENTITIES);
    assert_ne!(digest(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, &more), base);
}
