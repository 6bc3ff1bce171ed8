//! writ-store through its public interface.

mod log;
mod replay;
