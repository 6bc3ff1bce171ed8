//! Integration tests of writ-core through its public interface, one module per area.

mod support;

mod interop;
mod properties;
mod verifier;
