//! writ-policy: the example set, decisions, digests, validation.

mod support;

mod cases;
mod digest;
mod evaluate;
mod validate;
