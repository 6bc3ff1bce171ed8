//! writ-log owns the evidence: an RFC 9162 Merkle tree over canonical log entries, its
//! inclusion and consistency proofs, and checkpoints signed as C2SP signed notes.
//!
//! It is pure. [`CompactRange`] keeps the right edge of the tree (O(log n) hashes) and says
//! which new subtree hashes an append completes; proof functions say *which* stored subtree
//! hashes a proof needs ([`ProofPlan`]) and assemble the proof from what the caller fetched,
//! so a proof over n entries costs O(log n) reads and never a rehash of entries. Storage lives
//! in `writ-store`; the `writ log` commands are what most people want.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod checkpoint;
mod entry;
mod error;
mod hash;
mod note;
mod proof;
mod tree;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use entry::{admin_note, canonical_entry, EntryError, ENTRY_TYPES};
pub use error::ProofError;
pub use hash::{leaf_hash, node_hash, Hash, EMPTY_ROOT};
pub use note::{NoteError, NoteSignature, NoteSigner, NoteVerifier, SignedNote};
pub use proof::{
    consistency_plan, inclusion_plan, verify_consistency, verify_inclusion, ConsistencyProof,
    InclusionProof, Proof, ProofPlan,
};
pub use tree::{root_from_range, CompactRange, NodeId};
