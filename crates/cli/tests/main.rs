//! The `writ` binary, driven as users and scripts drive it.

mod support;

mod approvals;
mod bench;
mod client;
mod cluster;
mod env;
mod exec;
mod hook;
mod keys;
mod lineage;
mod log;
mod mcp;
mod policy;
mod principals;
mod serve;
mod serve_config;
mod tls;
mod verify;
