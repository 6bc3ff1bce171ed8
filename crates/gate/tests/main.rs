//! writ-gate through its public interface.

mod env;
