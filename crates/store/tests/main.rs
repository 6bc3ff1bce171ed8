//! writ-store through its public interface.

mod behaviour;
mod consumption;
mod crash;
mod log;
mod nodes;
mod pg_log;
mod principals;
mod replay;
