//! The example policy set shipped with writ (`examples/` in this crate), for `writ serve` to
//! write into a fresh data directory and for tests.

/// `writ.cedarschema`: the writ schema.
pub const EXAMPLE_SCHEMA: &str = include_str!("../examples/writ.cedarschema");
/// `policies.cedar`: shell commands, file writes inside a workspace, payments under a limit,
/// and forbids that always win.
pub const EXAMPLE_POLICIES: &str = include_str!("../examples/policies.cedar");
/// `entities.json`: the groups the policies name.
pub const EXAMPLE_ENTITIES: &str = include_str!("../examples/entities.json");
/// `cases.json`: decision cases exercising every example policy.
pub const EXAMPLE_CASES: &str = include_str!("../examples/cases.json");
