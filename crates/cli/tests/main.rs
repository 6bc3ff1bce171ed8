//! The `writ` binary, driven as users and scripts drive it.

mod support;

mod bench;
mod client;
mod env;
mod keys;
mod log;
mod policy;
mod principals;
mod serve;
mod serve_config;
mod tls;
mod verify;
