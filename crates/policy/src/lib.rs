//! writ-policy owns writ's policy: Cedar schemas and policy sets, versioned by digest, and
//! the decision a policy set reaches for a request: permit (with the writ's lifetime, uses
//! and delegation), deny with reasons, or pending with an approval rule.
//!
//! A [`PolicySet`] is built from three texts, a Cedar schema, Cedar policies and an entities
//! JSON array ([`PolicySet::from_texts`] validates them in Cedar's strict mode;
//! [`PolicySet::digest`] versions them). [`PolicySet::evaluate`] turns a [`Request`] into a
//! [`Decision`], fail-closed: an unknown action or resource type, arguments the schema does
//! not describe, or any evaluation error is a [`Decision::Deny`] with a [`Reason`], never an
//! error that could be mistaken for a permit. [`run_cases`] checks a set against decision
//! cases. The example set in this crate's `examples/` ([`EXAMPLE_SCHEMA`] …) shows the
//! schema writ's requests follow.
//!
//! The crate is pure: it reads no files and no clock. Reading a policy directory, applying a
//! set and logging it is the authority's and the `writ` command's job; most users want
//! `writ policy validate | test | digest` instead.
//!
//! # How a request becomes a Cedar request
//!
//! - principal: `Writ::Principal::"<id>"` with attribute `role` and its groups as parents
//!   (`Writ::Group::"<group>"`); entities.json may define groups, never principals.
//! - action: `Writ::Action::"<action>"`; an action the schema does not declare is denied.
//! - resource, by the form of the string: `/abs/path` → `Writ::File {path}`,
//!   `mcp:<server>/<tool>` → `Writ::Tool {id, server, name}`, `shell:<name>` →
//!   `Writ::Shell {id, name}`, `account:<name>` → `Writ::Account {id, name}`; any other form,
//!   or a type the action does not apply to, is denied. An entity of that uid in
//!   entities.json (with its parents) is used instead of the built one.
//! - context: the request's context object (`purpose`, `ticket`, `env`, `lineage`, …) plus
//!   `args`, the JSON arguments, and `args_json`, their RFC 8785 canonical JSON as a string.
//!
//! # Limits of the JSON → Cedar mapping
//!
//! Cedar records are closed and Cedar has no maps, floats or null. So at every record only
//! the attributes the action's context type declares are kept (a strictly validated policy
//! cannot read any other), `null` members count as absent, JSON arrays become sets (order and
//! repeats are lost: match on order through `args_json`), objects become records (Cedar's
//! `__entity` / `__extn` JSON escapes are plain keys here, never entity references), and
//! numbers must be integers that fit Cedar's `Long` where a declared attribute holds them: a
//! fraction (`12.5`, even `1.0`), a missing required attribute, or a kind that does not match
//! the declared type denies the request (`invalid_request`). Numbers beyond ±2^53 anywhere in
//! the arguments or context deny too, as the writ's `args_sha256` could not bind them
//! exactly. Undeclared values, maps with free keys (such as `writ exec`'s environment)
//! included, stay readable as text in `context.args_json`.
//!
//! The entities writ builds (a principal with its `role` and groups, a resource with the
//! attributes above) are checked against the schema once, when the set is read; a schema
//! whose types they do not fit is reported by [`PolicySet::validate`], and such requests are
//! denied.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod annotations;
mod cases;
mod decision;
mod error;
mod evaluate;
mod example;
mod request;
mod set;
mod shape;
mod validate;

pub use cases::{parse_cases, run_cases, Case, CaseResult, Expected};
pub use decision::{Approver, Decision, Limits, Reason};
pub use error::{Error, SourceError};
pub use example::{EXAMPLE_CASES, EXAMPLE_ENTITIES, EXAMPLE_POLICIES, EXAMPLE_SCHEMA};
pub use request::{Principal, Request};
pub use set::{PolicySet, ENTITIES_FILE, NAMESPACE, POLICIES_FILE, SCHEMA_FILE, SOURCE_FORMAT};
pub use validate::{Issue, ValidationReport};
