//! The `writ` binary, driven as users and scripts drive it.

mod support;

mod bench;
mod client;
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
