//! writ-store through its public interface.

mod crash;
mod log;
mod principals;
mod replay;
