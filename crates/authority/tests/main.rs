//! The authority through its HTTP interface, in process (`Router::oneshot`).

mod admin;
mod approvals;
mod authorize;
mod consume;
mod delegation;
mod limits;
