//! The transparency log as the authority writes it: appends and consumptions made durable
//! in batches, answered with their indexes; proofs and checkpoints for readers.

use writ_core::{Consumed, Jti, UnixTime};
use writ_log::{ConsistencyProof, InclusionProof, NoteVerifier};

use crate::error::StoreError;

/// What the writer does with an entry's outcome: its index once durable, or why not.
pub type AppendCallback = Box<dyn FnOnce(Result<u64, StoreError>) + Send>;

/// One consumption to make durable together with its log entry: the revocation check and
/// the mark of `jti` run inside the writer's transaction, and `entry` turns their outcome into
/// the canonical bytes of the `consumption` entry appended in that same transaction. So a use
/// is spent exactly when its entry is in the log.
pub struct ConsumeJob {
    /// The writ's id.
    pub jti: Jti,
    /// Uses the writ allows.
    pub uses: u32,
    /// Keep the mark at least until then.
    pub keep_until: UnixTime,
    /// The writ's ancestors' ids (parent first), asked about revocation.
    pub ancestors: Vec<Jti>,
    /// The principals the writ names (`sub`, `aud`), asked about revocation.
    pub principals: [String; 2],
    /// The entry for an outcome.
    pub entry: Box<dyn FnOnce(Consumed) -> Vec<u8> + Send>,
}

/// What the writer does with a consumption's outcome: what happened and the index of its
/// entry, once both are durable, or why neither is.
pub type ConsumeCallback = Box<dyn FnOnce(Result<(Consumed, u64), StoreError>) + Send>;

/// Where the log lives. One sequence whoever appends: every entry gets the next index, none
/// is acknowledged before it is durable with its checkpoint.
pub trait LogStore: Send + Sync {
    /// The log's origin line.
    fn origin(&self) -> &str;
    /// The checkpoint verifier key, in C2SP note form.
    fn verifier_key(&self) -> String;
    /// The checkpoint verifier.
    fn verifier(&self) -> &NoteVerifier;
    /// Appends `entry` and waits until it is durable; its index.
    fn append(&self, entry: Vec<u8>) -> Result<u64, StoreError>;
    /// Queues `entry`; `then` gets its index once durable.
    fn append_then(&self, entry: Vec<u8>, then: AppendCallback) -> Result<(), StoreError>;
    /// Queues a consumption; `then` gets its outcome and entry index once both are durable.
    fn consume_then(&self, job: ConsumeJob, then: ConsumeCallback) -> Result<(), StoreError>;
    /// How many entries the log holds.
    fn size(&self) -> Result<u64, StoreError>;
    /// The signed checkpoint of the latest size (a C2SP signed note).
    fn latest_checkpoint(&self) -> Result<String, StoreError>;
    /// Entries `from..from+limit`, with their indexes.
    fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The inclusion proof of entry `index` in the tree of `size` entries (default latest).
    fn prove_inclusion(&self, index: u64, size: Option<u64>) -> Result<InclusionProof, StoreError>;
    /// The consistency proof from `size1` to `size2` entries (default latest).
    fn prove_consistency(
        &self,
        size1: u64,
        size2: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError>;
}
