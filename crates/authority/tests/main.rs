//! The authority through its HTTP interface, in process (`Router::oneshot`).

mod authorize;
mod consume;
