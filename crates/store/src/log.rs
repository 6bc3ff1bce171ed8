//! The transparency log as the authority writes it: appends and consumptions made durable
//! in batches, answered with their indexes; proofs and checkpoints for readers.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

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

/// What a log's writer thread is asked to do.
pub(crate) enum Request {
    Append {
        entry: Vec<u8>,
        reply: AppendCallback,
    },
    Consume {
        job: ConsumeJob,
        reply: ConsumeCallback,
    },
}

/// The front of a log's writer thread, the same for every backend: a queue in, and the
/// thread to wait for on close. The backend's thread batches what it receives.
pub(crate) struct WriterQueue {
    queue: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterQueue {
    /// Starts the thread `name` running `writer` over the queue.
    pub(crate) fn start(
        name: &str,
        writer: impl FnOnce(Receiver<Request>) + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || writer(rx))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Appends one entry and waits until it is durable; its index.
    pub(crate) fn append(&self, entry: Vec<u8>) -> Result<u64, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.append_then(
            entry,
            Box::new(move |result| {
                let _ = reply.send(result);
            }),
        )?;
        answer
            .recv()
            .map_err(|_| StoreError::Writer("writer thread stopped".into()))?
    }

    /// Queues one entry; `then` gets its index once durable. An error here means `then` is
    /// never called.
    pub(crate) fn append_then(
        &self,
        entry: Vec<u8>,
        then: AppendCallback,
    ) -> Result<(), StoreError> {
        // Only what the audit accepts is written, so no caller can make the log unverifiable.
        if !is_canonical_entry(&entry) {
            return Err(StoreError::InvalidEntry);
        }
        self.send(Request::Append { entry, reply: then })
    }

    /// Queues a consumption; `then` gets its outcome and entry index once both are durable.
    pub(crate) fn consume_then(
        &self,
        job: ConsumeJob,
        then: ConsumeCallback,
    ) -> Result<(), StoreError> {
        self.send(Request::Consume { job, reply: then })
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let queue = self.queue.lock().map_err(|_| StoreError::Poisoned)?;
        let queue = queue
            .as_ref()
            .ok_or_else(|| StoreError::Writer("log closed".into()))?;
        queue
            .send(request)
            .map_err(|_| StoreError::Writer("writer thread stopped".into()))
    }

    /// Stops the writer after the queued requests.
    pub(crate) fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
    }
}

/// Whether `data` is the canonical JSON of a typed log entry: the only thing either backend
/// writes, and what an audit expects to find.
pub(crate) fn is_canonical_entry(data: &[u8]) -> bool {
    std::str::from_utf8(data)
        .ok()
        .and_then(|text| writ_core::canonical::parse_strict(text).ok())
        .and_then(|value| writ_log::canonical_entry(&value).ok())
        .is_some_and(|canonical| canonical == data)
}
