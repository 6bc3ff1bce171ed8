//! The `writ` binary, driven as users and scripts drive it.

mod support;

mod env;
mod keys;
mod log;
mod policy;
mod principals;
mod serve;
mod verify;
