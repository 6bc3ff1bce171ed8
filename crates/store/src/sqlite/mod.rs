//! SQLite-backed stores.

mod replay;

pub use replay::SqliteReplayStore;
