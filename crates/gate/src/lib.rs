//! writ-gate owns the places where writ stops an action before it runs.
//!
//! Today it holds what every gate needs first: the environment spec ([`EnvSpec`], a TOML
//! file naming files to hash, variables to record, the host name, the executable, the
//! container image and the workload id) and [`measure`], which reads the machine and returns
//! writ-core's [`writ_core::Measurement`]. The writ format and verifier live in writ-core;
//! the `writ` command line (`writ env measure`) is what most people want.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod env;
mod error;

pub use env::{measure, EnvSpec, ValueSource};
pub use error::MeasureError;
