//! writ-gate through its public interface.

mod config;
mod env;
