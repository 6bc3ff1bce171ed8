//! writ-store through its public interface.

mod consumption;
mod crash;
mod log;
mod principals;
mod replay;
