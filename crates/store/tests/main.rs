//! writ-store through its public interface.

mod replay;
