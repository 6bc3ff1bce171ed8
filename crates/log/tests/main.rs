//! writ-log through its public interface.

mod checkpoint;
mod proofs;
