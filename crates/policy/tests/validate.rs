//! Validation and loading: what is refused, and how findings are reported.

use writ_policy::{Error, PolicySet, SourceError, EXAMPLE_ENTITIES, EXAMPLE_SCHEMA};

use crate::support::SMALL_SCHEMA;

fn report(policies: &str) -> writ_policy::ValidationReport {
    PolicySet::parse(SMALL_SCHEMA, policies, "[]")
        .unwrap_or_else(|e| panic!("{e}"))
        .validate()
}

#[test]
fn strict_validation_errors_name_the_policy_and_line() {
    let r = report(
        "@id(\"ok\") permit (principal, action, resource);\n\
         @id(\"typo\") permit (principal, action, resource)\n  when { resource.pth == \"/x\" };\n",
    );
    assert!(!r.is_ok());
    assert_eq!(r.errors.len(), 1, "{r}");
    let e = &r.errors[0];
    assert_eq!(e.policy.as_deref(), Some("typo"));
    assert_eq!(e.file, "policies");
    assert_eq!(e.line, Some(3), "{r}");
    assert!(e.message.contains("pth"), "{r}");
    assert!(r.to_string().contains("policies:3:"), "{r}");
    // from_texts refuses what validate reports.
    match PolicySet::from_texts(
        SMALL_SCHEMA,
        "@id(\"typo\") permit (principal, action, resource) when { resource.pth == \"/x\" };",
        "[]",
    ) {
        Err(Error::Invalid(r)) => assert_eq!(r.errors.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn strict_mode_refuses_what_permissive_mode_would_allow() {
    // Comparing a string with a number is a type error only in strict mode.
    let r =
        report(r#"@id("mixed") permit (principal, action, resource) when { resource.path == 1 };"#);
    assert!(!r.is_ok(), "{r}");
}

#[test]
fn writ_rules_every_policy_has_an_id_and_readable_annotations() {
    let r = report(
        r#"
        permit (principal, action, resource);
        @id("bad-lifetime") @lifetime("soon") permit (principal, action, resource);
        @id("half-approval") @approvals("2") permit (principal, action, resource);
        @id("forbid-with-uses") @uses("2") forbid (principal, action, resource);
        "#,
    );
    let messages: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(r.errors.len(), 3, "{r}");
    assert!(
        messages[0].contains("policy0") && messages[0].contains("@id"),
        "{r}"
    );
    assert!(messages[1].contains("bad-lifetime"), "{r}");
    assert!(messages[2].contains("half-approval"), "{r}");
    assert_eq!(r.warnings.len(), 1, "{r}");
    assert!(r.warnings[0].message.contains("@uses"), "{r}");
}

#[test]
fn an_invalid_annotation_on_a_deciding_permit_denies() {
    let set = PolicySet::parse(
        SMALL_SCHEMA,
        r#"@id("bad") @uses("0") permit (principal, action, resource);"#,
        "[]",
    )
    .unwrap();
    let mut r = crate::support::request("exec", "/bin/x", serde_json::json!({"argv": []}));
    r.principal = crate::support::agent(&[]);
    let d = set.evaluate(&r, &writ_policy::Limits::default());
    assert!(
        matches!(&d, writ_policy::Decision::Deny { reasons } if reasons[0].code() == "invalid_annotation"),
        "{d}"
    );
}

#[test]
fn texts_that_do_not_parse_are_refused_with_a_location() {
    let err = PolicySet::parse(
        SMALL_SCHEMA,
        "@id(\"x\")\npermit (principal, action, resource)\nwhen { ",
        "[]",
    )
    .unwrap_err();
    assert_eq!(err.file(), "policies");
    assert!(
        matches!(&err, SourceError::Policies(m) if m.starts_with("3:")),
        "{err}"
    );

    let err = PolicySet::parse("namespace Writ { entity X = ; }", "", "[]").unwrap_err();
    assert!(matches!(err, SourceError::Schema(_)), "{err}");

    for entities in [
        "[",
        r#"[{"uid":{"type":"Writ::Group","id":"a"},"attrs":{},"parents":[]},]"#,
        r#"[{"uid":{"type":"Writ::Nope","id":"a"},"attrs":{},"parents":[]}]"#,
        r#"[{"uid":{"type":"Writ::Group","id":"a"},"attrs":{"x":1},"parents":[]}]"#,
        r#"[{"uid":{"type":"Writ::Group","id":"a"},"uid":{"type":"Writ::Group","id":"b"},"attrs":{},"parents":[]}]"#,
    ] {
        let err = PolicySet::parse(SMALL_SCHEMA, "", entities).unwrap_err();
        assert_eq!(err.file(), "entities", "{entities}: {err}");
    }
}

#[test]
fn templates_duplicate_ids_and_principal_entities_are_refused() {
    let err = PolicySet::parse(
        SMALL_SCHEMA,
        r#"@id("t") permit (principal == ?principal, action, resource);"#,
        "[]",
    )
    .unwrap_err();
    assert_eq!(err, SourceError::Template("t".into()));

    let err = PolicySet::parse(
        SMALL_SCHEMA,
        r#"@id("same") permit (principal, action, resource); @id("same") forbid (principal, action, resource);"#,
        "[]",
    )
    .unwrap_err();
    assert_eq!(err, SourceError::DuplicateId("same".into()));

    let err = PolicySet::parse(
        SMALL_SCHEMA,
        "",
        r#"[{"uid":{"type":"Writ::Principal","id":"build-agent"},"attrs":{"role":"admin"},"parents":[]}]"#,
    )
    .unwrap_err();
    assert!(matches!(err, SourceError::PrincipalEntity(_)), "{err}");
}

#[test]
fn a_schema_without_writ_types_is_reported() {
    let set = PolicySet::parse("entity User;", "", "").unwrap();
    let r = set.validate();
    assert_eq!(r.errors.len(), 2, "{r}");
    assert_eq!(r.warnings.len(), 1, "{r}");
}

#[test]
fn the_example_parts_also_parse_with_an_empty_policy_set() {
    let set = PolicySet::from_texts(EXAMPLE_SCHEMA, "", EXAMPLE_ENTITIES).unwrap();
    assert!(set.policy_ids().is_empty());
    let d = set.evaluate(
        &crate::support::git("status"),
        &writ_policy::Limits::default(),
    );
    assert_eq!(d.to_string(), "deny: no permit policy matched");
}
