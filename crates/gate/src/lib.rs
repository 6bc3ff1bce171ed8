//! writ-gate owns the places where writ stops an action before it runs.
//!
//! Today it holds what every gate needs first: the environment spec ([`EnvSpec`], a TOML
//! file naming files to hash, variables to record, the host name, the executable, the
//! container image and the workload id) and [`measure`], which reads the machine and returns
//! writ-core's [`writ_core::Measurement`]. The writ format and verifier live in writ-core;
//! the `writ` command line (`writ env measure`) is what most people want.
//!
//! [`McpGate`] is the MCP gateway's message handling without I/O (`writ mcp-gateway` runs
//! it between a client and a server process).
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod authorizer;
mod config;
mod env;
mod error;
mod hook;
mod mcp;

pub use authorizer::{Action, Authorizer, Outcome, Permit, ReportError};
pub use config::{
    default_config_path, is_env_name, ConfigError, GateConfig, DEFAULT_PASS_ENV, GATE_CONFIG_FILE,
};
pub use env::{measure, EnvSpec, ValueSource};
pub use error::MeasureError;
pub use hook::{
    absolute_path, action_for, canonical_file, hook_output, parse_event, HookDecision, HookError,
    HookEvent, ToolKind, PRE_TOOL_USE,
};
pub use mcp::{
    CallReport, ClientStep, McpGate, ServerStep, SseEvent, SseParser, ToolFilter, INVALID_PARAMS,
    INVALID_REQUEST, PARSE_ERROR, TOOLS_CALL, TOOLS_LIST,
};
