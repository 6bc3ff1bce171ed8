//! Why a policy set or a cases file could not be read.

use crate::validate::ValidationReport;

/// Why a policy set or a cases file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// One of the three texts of a policy set does not parse.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The policy set parses but does not validate against its schema.
    #[error("the policy set does not validate: {0}")]
    Invalid(ValidationReport),
    /// A decision cases file is not what [`parse_cases`](crate::parse_cases) reads.
    #[error("cases: {0}")]
    Cases(String),
}

/// Why the schema, policies or entities text of a policy set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The schema is not Cedar schema syntax, or is not a consistent schema.
    #[error("schema: {0}")]
    Schema(String),
    /// The policies are not Cedar policy syntax.
    #[error("policies: {0}")]
    Policies(String),
    /// The policies hold a template; writ evaluates static policies only.
    #[error("policies: `{0}` is a template; writ takes static policies only")]
    Template(String),
    /// Two policies carry the same `@id`.
    #[error("policies: the id `{0}` is used twice")]
    DuplicateId(String),
    /// The entities are not JSON, or do not conform to the schema.
    #[error("entities: {0}")]
    Entities(String),
    /// The entities define a principal: principals come from the authority's registry.
    #[error(
        "entities: `{0}` is a principal; principals come from the authority's registry, \
         not from entities.json"
    )]
    PrincipalEntity(String),
}

impl SourceError {
    /// Which of the three files it is about: `schema`, `policies` or `entities`.
    pub fn file(&self) -> &'static str {
        match self {
            SourceError::Schema(_) => "schema",
            SourceError::Policies(_) | SourceError::Template(_) | SourceError::DuplicateId(_) => {
                "policies"
            }
            SourceError::Entities(_) | SourceError::PrincipalEntity(_) => "entities",
        }
    }
}
