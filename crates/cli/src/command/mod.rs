//! One module per subcommand, each with its arguments and a `run`.

pub mod approvals;
pub mod bench;
pub mod env;
pub mod exec;
pub mod gate;
pub mod hook;
pub mod keys;
pub mod lineage;
pub mod log;
pub mod mcp_gateway;
pub mod policy;
pub mod principals;
pub mod request;
pub mod revoke;
pub mod serve;
pub mod verify;
