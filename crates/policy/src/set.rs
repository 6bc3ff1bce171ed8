//! A policy set: the schema, the policies and the entities, read, versioned and validated.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy as cedar;
use serde_json::{json, Value};
use writ_core::{canonical, Sha256Digest};

use crate::annotations::{self, Grant};
use crate::error::{Error, SourceError};
use crate::evaluate::{entity, group_uid, uid};
use crate::request::ResourceKind;
use crate::shape::ContextShapes;
use crate::validate::{describe, Issue, ValidationReport};

/// The Cedar namespace writ's requests live in.
pub const NAMESPACE: &str = "Writ";
/// The entity type of the principal that asks.
pub(crate) const PRINCIPAL_TYPE: &str = "Writ::Principal";
/// The entity type of the principal's groups.
pub(crate) const GROUP_TYPE: &str = "Writ::Group";
/// The entity type of actions.
pub(crate) const ACTION_TYPE: &str = "Writ::Action";

/// The `format` member of the object a policy set's digest covers.
pub const SOURCE_FORMAT: &str = "writ-policy-set-v1";

/// The usual file names of a policy set's three parts in a directory.
pub const SCHEMA_FILE: &str = "writ.cedarschema";
/// See [`SCHEMA_FILE`].
pub const POLICIES_FILE: &str = "policies.cedar";
/// See [`SCHEMA_FILE`].
pub const ENTITIES_FILE: &str = "entities.json";

/// A Cedar schema, a set of static Cedar policies and the entities they may refer to, with
/// the digest that versions them.
///
/// Built from the three texts (reading files is the caller's job); [`PolicySet::from_texts`]
/// also requires the policies to validate against the schema in strict mode.
///
/// The digest is the SHA-256 of the RFC 8785 canonical JSON of [`PolicySet::source`]:
///
/// ```json
/// {"entities": <entities.json, as JSON>, "format": "writ-policy-set-v1",
///  "policies": "<policies.cedar, verbatim>", "schema": "<writ.cedarschema, verbatim>"}
/// ```
///
/// The schema and policy texts count byte for byte (comments, whitespace and line endings
/// included), since they are what the log keeps to replay a decision; the entities count as
/// JSON values, so their layout does not matter. Identical inputs always give the same digest.
pub struct PolicySet {
    schema_text: String,
    policies_text: String,
    entities_json: Value,
    digest: Sha256Digest,
    schema: cedar::Schema,
    schema_warnings: Vec<Issue>,
    pub(crate) policies: cedar::PolicySet,
    pub(crate) rules: Vec<Rule>,
    pub(crate) rule_index: HashMap<String, usize>,
    pub(crate) entities: cedar::Entities,
    pub(crate) actions: HashSet<String>,
    pub(crate) shapes: ContextShapes,
    /// The entity types whose entities, as writ builds them for requests, conform to the
    /// schema (checked once, here, rather than per request).
    pub(crate) conforming: HashSet<String>,
    /// Why the others do not: (is it an error, the finding).
    misfits: Vec<(bool, Issue)>,
}

/// What writ knows about one policy, in source order.
pub(crate) struct Rule {
    pub(crate) id: String,
    /// Whether the id came from `@id` (rather than Cedar's `policyN`).
    pub(crate) named: bool,
    pub(crate) effect: cedar::Effect,
    /// For permits: what the annotations grant, or why they cannot be read.
    pub(crate) grant: Result<Grant, String>,
    /// For forbids: `@reason`.
    pub(crate) reason: Option<String>,
    /// Permit-only annotations found on a forbid.
    pub(crate) misplaced: Vec<&'static str>,
}

impl PolicySet {
    /// Reads a policy set and validates it (strict mode, plus writ's rules: every policy
    /// has an `@id`, annotations are well formed). Any validation error is an
    /// [`Error::Invalid`] carrying the whole report.
    pub fn from_texts(schema: &str, policies: &str, entities: &str) -> Result<Self, Error> {
        let set = Self::parse(schema, policies, entities)?;
        let report = set.validate();
        if report.is_ok() {
            Ok(set)
        } else {
            Err(Error::Invalid(report))
        }
    }

    /// Reads a policy set without validating it: for tools that report every finding
    /// (`writ policy validate`). Evaluation stays fail-closed on an unvalidated set, but an
    /// authority should only apply what [`PolicySet::from_texts`] accepts.
    ///
    /// `entities` is a Cedar entities JSON array; an empty text means no entities.
    pub fn parse(schema: &str, policies: &str, entities: &str) -> Result<Self, SourceError> {
        let (cedar_schema, warnings) = cedar::Schema::from_cedarschema_str(schema)
            .map_err(|e| SourceError::Schema(describe(&e, schema)))?;
        let schema_warnings = warnings
            .map(|w| Issue::new("schema", w.to_string()).at(&w, schema))
            .collect();
        let (fragment, _) = cedar::SchemaFragment::from_cedarschema_str(schema)
            .map_err(|e| SourceError::Schema(describe(&e, schema)))?;
        let fragment_json = fragment
            .to_json_value()
            .map_err(|e| SourceError::Schema(describe(&e, schema)))?;
        let shapes = ContextShapes::from_schema_json(&fragment_json, NAMESPACE);
        let actions = cedar_schema
            .actions()
            .filter(|a| a.type_name().to_string() == ACTION_TYPE)
            .map(|a| a.id().unescaped().to_owned())
            .collect();

        let (cedar_policies, rules) = read_policies(policies)?;
        let rule_index = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();

        let entities_json = if entities.trim().is_empty() {
            json!([])
        } else {
            canonical::parse_strict(entities).map_err(|e| SourceError::Entities(e.to_string()))?
        };
        canonical::check_exact(&entities_json).map_err(|e| SourceError::Entities(e.to_string()))?;
        let cedar_entities =
            cedar::Entities::from_json_value(entities_json.clone(), Some(&cedar_schema))
                .map_err(|e| SourceError::Entities(describe(&e, entities)))?;
        if let Some(principal) = cedar_entities
            .iter()
            .find(|e| e.uid().type_name().to_string() == PRINCIPAL_TYPE)
        {
            return Err(SourceError::PrincipalEntity(principal.uid().to_string()));
        }

        let (conforming, misfits) = conformance(&cedar_schema);
        let source = source_value(schema, policies, &entities_json);
        Ok(PolicySet {
            schema_text: schema.to_owned(),
            policies_text: policies.to_owned(),
            entities_json,
            digest: canonical::digest(&source),
            schema: cedar_schema,
            schema_warnings,
            policies: cedar_policies,
            rules,
            rule_index,
            entities: cedar_entities,
            actions,
            shapes,
            conforming,
            misfits,
        })
    }

    /// The digest that versions this set (the writ's `pol.digest`).
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// What the digest covers, for the log's `policy` entry: `{"entities", "format",
    /// "policies", "schema"}` (see [`PolicySet`]).
    pub fn source(&self) -> Value {
        source_value(&self.schema_text, &self.policies_text, &self.entities_json)
    }

    /// The policy ids, in source order.
    pub fn policy_ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// The actions the schema declares in the `Writ` namespace.
    pub fn actions(&self) -> Vec<&str> {
        let mut actions: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        actions.sort_unstable();
        actions
    }

    /// The schema text.
    pub fn schema_text(&self) -> &str {
        &self.schema_text
    }

    /// The policies text.
    pub fn policies_text(&self) -> &str {
        &self.policies_text
    }

    /// The entities, as the JSON the digest covers.
    pub fn entities_json(&self) -> &Value {
        &self.entities_json
    }

    /// Validates the policies against the schema with Cedar's strict validator, and checks
    /// writ's own rules: every policy has an `@id`; a permit's annotations are well formed;
    /// permit-only annotations on a forbid (ignored) are warned about; the schema declares
    /// the `Writ::Principal` and `Writ::Group` types writ builds requests from.
    pub fn validate(&self) -> ValidationReport {
        let mut report = ValidationReport {
            errors: Vec::new(),
            warnings: self.schema_warnings.clone(),
        };
        let result = cedar::Validator::new(self.schema.clone())
            .validate(&self.policies, cedar::ValidationMode::Strict);
        for e in result.validation_errors() {
            report.errors.push(
                Issue::new("policies", without_policy_prefix(&e.to_string()))
                    .policy(e.policy_id().to_string())
                    .at(e, &self.policies_text),
            );
        }
        for w in result.validation_warnings() {
            report.warnings.push(
                Issue::new("policies", without_policy_prefix(&w.to_string()))
                    .policy(w.policy_id().to_string())
                    .at(w, &self.policies_text),
            );
        }
        for (n, rule) in self.rules.iter().enumerate() {
            if !rule.named {
                report.errors.push(
                    Issue::new(
                        "policies",
                        format!(
                            "policy {} of the file has no `@id(\"…\")` annotation; writ names \
                             policies in decisions and writs by it",
                            n + 1
                        ),
                    )
                    .policy(&rule.id),
                );
            }
            if let Err(detail) = &rule.grant {
                report
                    .errors
                    .push(Issue::new("policies", detail.clone()).policy(&rule.id));
            }
            for key in &rule.misplaced {
                report.warnings.push(
                    Issue::new(
                        "policies",
                        format!("`@{key}` means nothing on a forbid policy and is ignored"),
                    )
                    .policy(&rule.id),
                );
            }
        }
        let types: HashSet<String> = self.schema.entity_types().map(|t| t.to_string()).collect();
        for required in [PRINCIPAL_TYPE, GROUP_TYPE] {
            if !types.contains(required) {
                report.errors.push(Issue::new(
                    "schema",
                    format!("the schema declares no `{required}`: writ builds every request's principal from it"),
                ));
            }
        }
        for (is_error, issue) in &self.misfits {
            if *is_error {
                report.errors.push(issue.clone());
            } else {
                report.warnings.push(issue.clone());
            }
        }
        if self.actions.is_empty() {
            report.warnings.push(Issue::new(
                "schema",
                format!("the schema declares no action in namespace `{NAMESPACE}`: every request is denied"),
            ));
        }
        report
    }

    pub(crate) fn schema(&self) -> &cedar::Schema {
        &self.schema
    }
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("digest", &self.digest)
            .field("policy_ids", &self.policy_ids())
            .finish_non_exhaustive()
    }
}

/// Cedar's validation messages open with "for policy `ID`, "; an [`Issue`] names the policy
/// on its own.
fn without_policy_prefix(message: &str) -> String {
    message
        .strip_prefix("for policy `")
        .and_then(|rest| rest.split_once("`, "))
        .map_or(message, |(_, rest)| rest)
        .to_owned()
}

/// Checks the entities writ builds for requests (a principal in a group, one resource of
/// each kind) against the schema's declaration of their types.
fn conformance(schema: &cedar::Schema) -> (HashSet<String>, Vec<(bool, Issue)>) {
    let declared: HashSet<String> = schema.entity_types().map(|t| t.to_string()).collect();
    let mut conforming = HashSet::new();
    let mut misfits = Vec::new();
    let mut samples: Vec<(&str, Result<cedar::Entity, String>)> = Vec::new();
    if let (Some(principal), Some(group)) = (uid(PRINCIPAL_TYPE, "sample"), group_uid("sample")) {
        samples.push((
            PRINCIPAL_TYPE,
            entity(principal, [("role", "agent")], HashSet::from([group])),
        ));
    }
    for (id, kind) in ResourceKind::samples() {
        if let Some(resource) = uid(kind.type_name(), id) {
            samples.push((
                kind.type_name(),
                entity(resource, kind.attrs(id), HashSet::new()),
            ));
        }
    }
    for (type_name, sample) in samples {
        if !declared.contains(type_name) {
            continue;
        }
        let checked = sample.and_then(|e| {
            cedar::Entities::empty()
                .add_entities([e], Some(schema))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        match checked {
            Ok(()) => {
                conforming.insert(type_name.to_owned());
            }
            Err(e) if type_name == PRINCIPAL_TYPE => misfits.push((
                true,
                Issue::new(
                    "schema",
                    format!(
                        "`{type_name}` must have exactly the attribute `role: String` and be \
                         allowed in `{GROUP_TYPE}`: every request would be denied ({e})"
                    ),
                ),
            )),
            Err(e) => misfits.push((
                false,
                Issue::new(
                    "schema",
                    format!(
                        "`{type_name}` does not fit the entities writ builds for requests, so \
                         requests on one that entities.json does not define are denied ({e})"
                    ),
                ),
            )),
        }
    }
    (conforming, misfits)
}

fn source_value(schema: &str, policies: &str, entities: &Value) -> Value {
    json!({
        "entities": entities,
        "format": SOURCE_FORMAT,
        "policies": policies,
        "schema": schema,
    })
}

/// Parses the policies, names each by its `@id`, and reads writ's annotations.
fn read_policies(text: &str) -> Result<(cedar::PolicySet, Vec<Rule>), SourceError> {
    let parsed =
        cedar::PolicySet::from_str(text).map_err(|e| SourceError::Policies(describe(&e, text)))?;
    if let Some(template) = parsed.templates().next() {
        let id = template
            .annotation(annotations::ID)
            .map_or_else(|| template.id().to_string(), str::to_owned);
        return Err(SourceError::Template(id));
    }
    // Cedar names the policies of a text `policy0`, `policy1`, … in source order.
    let mut ordered: Vec<(usize, &cedar::Policy)> = parsed
        .policies()
        .map(|p| {
            let id: &str = p.id().as_ref();
            let n = id
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (n, p)
        })
        .collect();
    ordered.sort_by_key(|(n, _)| *n);

    let mut set = cedar::PolicySet::new();
    let mut rules = Vec::with_capacity(ordered.len());
    let mut seen = HashSet::new();
    for (_, policy) in ordered {
        let named_id = policy
            .annotation(annotations::ID)
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let id = named_id.map_or_else(|| policy.id().to_string(), str::to_owned);
        if !seen.insert(id.clone()) {
            return Err(SourceError::DuplicateId(id));
        }
        let effect = policy.effect();
        let (grant, reason, misplaced) = match effect {
            cedar::Effect::Permit => (
                annotations::read_grant(|key| policy.annotation(key)),
                None,
                Vec::new(),
            ),
            cedar::Effect::Forbid => (
                Ok(Grant::default()),
                policy.annotation(annotations::REASON).map(str::to_owned),
                annotations::PERMIT_ONLY
                    .iter()
                    .copied()
                    .filter(|key| policy.annotation(key).is_some())
                    .collect(),
            ),
        };
        set.add(policy.new_id(cedar::PolicyId::new(&id)))
            .map_err(|e| SourceError::Policies(e.to_string()))?;
        rules.push(Rule {
            id,
            named: named_id.is_some(),
            effect,
            grant,
            reason,
            misplaced,
        });
    }
    Ok((set, rules))
}
