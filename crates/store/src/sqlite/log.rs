//! The transparency log in SQLite: entries, the perfect-subtree hashes proofs need, and one
//! signed checkpoint per committed batch.
//!
//! One writer thread owns appends. Callers queue entries; the writer takes everything queued,
//! commits it in one `BEGIN IMMEDIATE` transaction (one sync under `synchronous=FULL`),
//! signs the checkpoint for the new size inside it, and only then answers each caller with its
//! index (group commit). Another process appending to the same file is noticed by size and
//! the in-memory right edge is reloaded, so the file has one sequence whoever writes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use writ_core::{Consumed, RevocationSubject};
use writ_log::{
    consistency_plan, inclusion_plan, leaf_hash, Checkpoint, CompactRange, ConsistencyProof, Hash,
    InclusionProof, NodeId, NoteSigner, NoteVerifier,
};

use super::configure;
use crate::error::StoreError;
use crate::log::{
    is_canonical_entry, AppendCallback, ConsumeCallback, ConsumeJob, LogStore, Request, WriterQueue,
};

const LOG_SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_entries (
    idx  INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// Most entries one transaction takes; more wait for the next.
const MAX_BATCH: usize = 4096;

/// A transparency log stored in SQLite. Open it for reading with [`SqliteLog::open`], or with
/// its checkpoint key for appending with [`SqliteLog::open_writer`].
pub struct SqliteLog {
    path: PathBuf,
    origin: String,
    verifier: NoteVerifier,
    reader: Mutex<Connection>,
    writer: Option<WriterQueue>,
}

/// A request made ready inside the transaction: its entry bytes and, for a consumption, its
/// outcome; or why it failed (the rest of the batch goes on).
type Prepared = Result<(Vec<u8>, Option<Consumed>), StoreError>;

impl std::fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLog")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("writer", &self.writer.is_some())
            .finish()
    }
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM log_meta WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?)
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteLog {
    /// Creates a log in the database at `path` with its origin and checkpoint key, and signs
    /// the empty tree. Refused when the database already holds a log.
    pub fn create(path: &Path, origin: &str, signer: NoteSigner) -> Result<Self, StoreError> {
        let mut conn = open_connection(path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = meta(&tx, "origin")? {
            return Err(StoreError::LogExists(existing));
        }
        let empty = Checkpoint::new(origin, 0, CompactRange::new().root());
        let note = empty.sign(&signer)?;
        for (key, value) in [
            ("schema", LOG_SCHEMA_VERSION.to_string()),
            ("origin", origin.to_owned()),
            ("vkey", signer.verifier_key()),
        ] {
            tx.execute(
                "INSERT INTO log_meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.execute(
            "INSERT INTO log_checkpoints (size, note) VALUES (0, ?1)",
            params![note],
        )?;
        tx.commit()?;
        drop(conn);
        Self::open_writer(path, signer)
    }

    /// Opens an existing log for reading.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::NoLog);
        }
        // Reading never writes: the schema is created only by `create`.
        let conn = Connection::open(path)?;
        configure(&conn)?;
        let has_log: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_meta')",
            [],
            |r| r.get(0),
        )?;
        if !has_log {
            return Err(StoreError::NoLog);
        }
        let schema: i64 = meta(&conn, "schema")?
            .ok_or(StoreError::NoLog)?
            .parse()
            .unwrap_or(i64::MAX);
        if schema > LOG_SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: schema,
                supported: LOG_SCHEMA_VERSION,
            });
        }
        let origin = meta(&conn, "origin")?.ok_or(StoreError::NoLog)?;
        let vkey = meta(&conn, "vkey")?.ok_or(StoreError::NoLog)?;
        let verifier = NoteVerifier::from_vkey(&vkey)
            .map_err(|e| StoreError::Corrupt(format!("stored verifier key: {e}")))?;
        Ok(Self {
            path: path.to_owned(),
            origin,
            verifier,
            reader: Mutex::new(conn),
            writer: None,
        })
    }

    /// Opens an existing log for appending; `signer` must be the key it was created with.
    pub fn open_writer(path: &Path, signer: NoteSigner) -> Result<Self, StoreError> {
        let mut log = Self::open(path)?;
        let expected = log.verifier.to_vkey();
        if signer.verifier_key() != expected {
            return Err(StoreError::KeyMismatch {
                given: signer.verifier_key(),
                expected,
            });
        }
        let conn = open_connection(path)?;
        let origin = log.origin.clone();
        log.writer = Some(WriterQueue::start("writ-log-writer", move |rx| {
            run_writer(conn, origin, signer, rx)
        })?);
        Ok(log)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's origin (first line of its checkpoints).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The checkpoint verifier key, `name+hash+base64`.
    pub fn verifier_key(&self) -> String {
        self.verifier.to_vkey()
    }

    /// The checkpoint verifier.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// Appends one entry (its canonical bytes) and returns its index once it is durable.
    /// Concurrent callers share transactions.
    pub fn append(&self, entry: Vec<u8>) -> Result<u64, StoreError> {
        self.writer()?.append(entry)
    }

    /// Queues one entry and returns at once; the writer calls `then` with its index once it is
    /// durable (or with the error that kept it out). For callers that must not hold a thread
    /// while the group commit runs. An error returned here means `then` is never called.
    pub fn append_then(&self, entry: Vec<u8>, then: AppendCallback) -> Result<(), StoreError> {
        self.writer()?.append_then(entry, then)
    }

    /// Queues a consumption (see [`ConsumeJob`]) and returns at once; the writer calls `then`
    /// with the outcome and the entry's index once both are durable, in one transaction with
    /// the revocation check and the mark of the id in this database's replay tables. An
    /// error returned here means `then` is never called.
    pub fn consume_then(&self, job: ConsumeJob, then: ConsumeCallback) -> Result<(), StoreError> {
        self.writer()?.consume_then(job, then)
    }

    fn writer(&self) -> Result<&WriterQueue, StoreError> {
        self.writer
            .as_ref()
            .ok_or_else(|| StoreError::Writer("opened read-only".into()))
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.reader.lock().map_err(|_| StoreError::Poisoned)?;
        // One read transaction: a consistent snapshot while the writer goes on.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }

    /// Entries committed so far.
    pub fn size(&self) -> Result<u64, StoreError> {
        self.read(|tx| stored_size(tx))
    }

    /// The latest signed checkpoint (a C2SP signed note).
    pub fn latest_checkpoint(&self) -> Result<String, StoreError> {
        self.read(|tx| {
            tx.query_row(
                "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .ok_or(StoreError::NoLog)
        })
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.read(|tx| {
            let size = stored_size(tx)?;
            tx.query_row(
                "SELECT data FROM log_entries WHERE idx = ?1",
                params![to_sql(index)],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::OutOfRange { index, size })
        })
    }

    /// Up to `limit` entries from `from` on, with their indexes.
    pub fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT idx, data FROM log_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![to_sql(from), to_sql(limit)], |r| {
                Ok((
                    from_sql(r.get(0)?),
                    blob_or_text(r.get_ref(1)?).unwrap_or_default(),
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (default: the
    /// latest), from O(log n) stored hashes.
    pub fn prove_inclusion(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, StoreError> {
        self.read(|tx| {
            let current = stored_size(tx)?;
            let size = size.unwrap_or(current);
            if size > current {
                return Err(StoreError::OutOfRange {
                    index: size,
                    size: current,
                });
            }
            let plan = inclusion_plan(index, size)?;
            let hashes = plan.assemble(|n| node(tx, n))?;
            Ok(InclusionProof {
                tree_size: size,
                leaf_index: index,
                leaf_hash: node(tx, NodeId::leaf(index))?,
                root_hash: root_at(tx, size)?,
                hashes,
            })
        })
    }

    /// The consistency proof from `size1` to `size2` entries (default: the latest).
    pub fn prove_consistency(
        &self,
        size1: u64,
        size2: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        self.read(|tx| {
            let current = stored_size(tx)?;
            let size2 = size2.unwrap_or(current);
            if size2 > current {
                return Err(StoreError::OutOfRange {
                    index: size2,
                    size: current,
                });
            }
            let plan = consistency_plan(size1, size2)?;
            Ok(ConsistencyProof {
                size1,
                size2,
                root1: root_at(tx, size1)?,
                root2: root_at(tx, size2)?,
                hashes: plan.assemble(|n| node(tx, n))?,
            })
        })
    }

    /// Recomputes the whole tree from the stored entries and checks every stored hash and
    /// signed checkpoint against it, and, when given, consistency with a checkpoint an
    /// auditor kept. Reports the first thing that does not hold.
    pub fn audit(&self, kept: Option<&Checkpoint>) -> Result<Audit, StoreError> {
        self.read(|tx| audit(tx, &self.origin, &self.verifier, kept))
    }

    /// Stops the writer after the queued appends.
    pub fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close();
        }
    }
}

impl Drop for SqliteLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn stored_size(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn.query_row("SELECT MAX(idx) FROM log_entries", [], |r| r.get(0))?;
    Ok(max.map_or(0, |m| from_sql(m) + 1))
}

fn node(conn: &Connection, id: NodeId) -> Result<Hash, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")?;
    let bytes: Option<Vec<u8>> = stmt
        .query_row(params![i64::from(id.level), to_sql(id.index)], |r| r.get(0))
        .optional()?;
    let bytes = bytes.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "stored hash of level {} index {} is missing",
            id.level, id.index
        ))
    })?;
    Hash::from_slice(&bytes).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "stored hash of level {} index {} is not 32 bytes",
            id.level, id.index
        ))
    })
}

fn root_at(conn: &Connection, size: u64) -> Result<Hash, StoreError> {
    Ok(load_range(conn, size)?.root())
}

fn load_range(conn: &Connection, size: u64) -> Result<CompactRange, StoreError> {
    let hashes = CompactRange::nodes_for(size)
        .into_iter()
        .map(|n| node(conn, n))
        .collect::<Result<Vec<_>, _>>()?;
    CompactRange::from_parts(size, hashes)
        .ok_or_else(|| StoreError::Corrupt("right edge does not fit the size".into()))
}

fn run_writer(mut conn: Connection, origin: String, signer: NoteSigner, queue: Receiver<Request>) {
    let mut range: Option<CompactRange> = None;
    // Consumptions run here, so the replay tables must exist in this database.
    let mut schema_ready = false;
    while let Ok(first) = queue.recv() {
        let mut batch = VecDeque::from([first]);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push_back(next),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut work = Vec::with_capacity(batch.len());
        for request in batch {
            match request {
                Request::Append { entry, reply } => {
                    replies.push(Reply::Append(reply));
                    work.push(Work::Entry(entry));
                }
                Request::Consume { job, reply } => {
                    replies.push(Reply::Consume(reply));
                    work.push(Work::Consume(job));
                }
            }
        }
        if !schema_ready && work.iter().any(|w| matches!(w, Work::Consume(_))) {
            schema_ready = super::replay::ensure_schema(&conn).is_ok();
        }
        match commit(&mut conn, &mut range, &origin, &signer, work) {
            Ok((first_index, prepared)) => {
                let mut next = first_index;
                for (reply, outcome) in replies.into_iter().zip(prepared) {
                    let outcome = outcome.map(|(_, consumed)| {
                        let index = next;
                        next += 1;
                        (index, consumed)
                    });
                    reply.send(outcome);
                }
            }
            Err(e) => {
                // Nothing of the batch is acknowledged and no use is spent; the edge is
                // reloaded next time.
                range = None;
                let message = e.to_string();
                for reply in replies {
                    reply.send(Err(StoreError::Writer(message.clone())));
                }
            }
        }
    }
}

/// A queued request's payload, taken apart from its reply.
enum Work {
    Entry(Vec<u8>),
    Consume(ConsumeJob),
}

enum Reply {
    Append(AppendCallback),
    Consume(ConsumeCallback),
}

impl Reply {
    fn send(self, outcome: Result<(u64, Option<Consumed>), StoreError>) {
        match self {
            Reply::Append(reply) => reply(outcome.map(|(index, _)| index)),
            Reply::Consume(reply) => reply(outcome.and_then(|(index, consumed)| {
                consumed
                    .map(|c| (c, index))
                    .ok_or_else(|| StoreError::Writer("consumption without an outcome".into()))
            })),
        }
    }
}

/// Runs a consumption inside `tx`, in a savepoint so that its failure leaves the rest of the
/// batch alone, and returns its entry and outcome.
fn prepare_consumption(tx: &mut Transaction<'_>, job: ConsumeJob) -> Prepared {
    let sp = tx.savepoint()?;
    let subject = RevocationSubject {
        jti: &job.jti,
        ancestors: &job.ancestors,
        principals: [job.principals[0].as_str(), job.principals[1].as_str()],
    };
    let consumed = super::replay::consume_in(&sp, &job.jti, job.uses, job.keep_until, &subject)?;
    let entry = (job.entry)(consumed);
    if !is_canonical_entry(&entry) {
        // Dropping the savepoint rolls the mark back.
        return Err(StoreError::InvalidEntry);
    }
    sp.commit()?;
    Ok((entry, Some(consumed)))
}

fn commit(
    conn: &mut Connection,
    range: &mut Option<CompactRange>,
    origin: &str,
    signer: &NoteSigner,
    work: Vec<Work>,
) -> Result<(u64, Vec<Prepared>), StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let size = stored_size(&tx)?;
    let mut edge = match range.take() {
        Some(r) if r.size() == size => r,
        // First batch, an earlier failure, or another process appended: read the edge.
        _ => load_range(&tx, size)?,
    };
    let prepared: Vec<Prepared> = work
        .into_iter()
        .map(|w| match w {
            Work::Entry(entry) => Ok((entry, None)),
            Work::Consume(job) => prepare_consumption(&mut tx, job),
        })
        .collect();
    {
        let mut insert_entry =
            tx.prepare_cached("INSERT INTO log_entries (idx, data) VALUES (?1, ?2)")?;
        let mut insert_node =
            tx.prepare_cached("INSERT INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (index, (entry, _)) in (size..).zip(prepared.iter().flatten()) {
            insert_entry.execute(params![to_sql(index), entry])?;
            for (id, hash) in edge.append(leaf_hash(entry)) {
                insert_node.execute(params![
                    i64::from(id.level),
                    to_sql(id.index),
                    hash.as_bytes().as_slice()
                ])?;
            }
        }
    }
    // A batch whose every consumption failed appends nothing: no new checkpoint either.
    if edge.size() > size {
        let note = Checkpoint::new(origin, edge.size(), edge.root()).sign(signer)?;
        tx.execute(
            "INSERT INTO log_checkpoints (size, note) VALUES (?1, ?2)",
            params![to_sql(edge.size()), note],
        )?;
    }
    tx.commit()?;
    *range = Some(edge);
    Ok((size, prepared))
}

/// What `writ log verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Entries recomputed.
    pub size: u64,
    /// The recomputed root.
    pub root: Hash,
    /// Stored checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The first thing that does not hold, if any.
    pub finding: Option<AuditFinding>,
}

/// The first inconsistency an audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFinding {
    /// Entry `index` is missing: the indexes have a gap.
    MissingEntry(u64),
    /// Entry `index` does not hash to the leaf hash stored when it was appended.
    EntryAltered(u64),
    /// Entry `index` is not a canonical log entry.
    EntryMalformed(u64),
    /// A stored subtree hash does not match the entries below it.
    NodeAltered {
        /// Height of the subtree.
        level: u8,
        /// Its index at that height.
        index: u64,
    },
    /// A stored checkpoint's signature or text does not verify.
    CheckpointInvalid {
        /// The size it claims.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A signed checkpoint's root is not the root of the stored entries at its size.
    CheckpointMismatch(u64),
    /// A signed checkpoint covers more entries than the log holds: entries were removed.
    Truncated {
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// Entries present.
        entries: u64,
    },
    /// The log is not an extension of the checkpoint an auditor kept.
    Inconsistent {
        /// The kept checkpoint's size.
        size: u64,
        /// What differs.
        reason: String,
    },
}

impl std::fmt::Display for AuditFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditFinding::MissingEntry(i) => write!(f, "entry {i} is missing"),
            AuditFinding::EntryAltered(i) => write!(f, "entry {i} was altered: it does not match its stored leaf hash"),
            AuditFinding::EntryMalformed(i) => write!(f, "entry {i} is not a canonical log entry"),
            AuditFinding::NodeAltered { level, index } => {
                write!(f, "stored hash of level {level} index {index} does not match the entries below it")
            }
            AuditFinding::CheckpointInvalid { size, reason } => {
                write!(f, "stored checkpoint of size {size} is invalid: {reason}")
            }
            AuditFinding::CheckpointMismatch(size) => write!(
                f,
                "signed checkpoint of size {size} does not match the stored entries: entries before index {size} were rewritten"
            ),
            AuditFinding::Truncated { checkpoint_size, entries } => write!(
                f,
                "a signed checkpoint covers {checkpoint_size} entries but the log holds {entries}: entries from index {entries} on were removed"
            ),
            AuditFinding::Inconsistent { size, reason } => {
                write!(f, "the log is not consistent with the kept checkpoint of size {size}: {reason}")
            }
        }
    }
}

fn audit(
    conn: &Connection,
    origin: &str,
    verifier: &NoteVerifier,
    kept: Option<&Checkpoint>,
) -> Result<Audit, StoreError> {
    let verifiers = [verifier.clone()];
    let mut range = CompactRange::new();
    let mut finding: Option<AuditFinding> = None;
    let note = |f: AuditFinding, finding: &mut Option<AuditFinding>| {
        if finding.is_none() {
            *finding = Some(f);
        }
    };

    // Stored checkpoints are streamed by size; each is checked when the recomputation
    // reaches its size, so memory stays flat however many batches the log had.
    let mut checkpoint_stmt =
        conn.prepare("SELECT size, note FROM log_checkpoints ORDER BY size")?;
    let mut checkpoints = CheckpointCursor {
        rows: checkpoint_stmt.query([])?,
        next: None,
        checked: 0,
        verifiers: &verifiers,
        origin,
    };
    checkpoints.advance()?;
    let kept_size = kept.map(|k| k.size);
    let mut kept_root: Option<Hash> = None;
    checkpoints.check_at(0, range.root(), &mut finding)?;
    if kept_size == Some(0) {
        kept_root = Some(range.root());
    }

    let mut entries = conn.prepare("SELECT idx, data FROM log_entries ORDER BY idx")?;
    let mut stored_node =
        conn.prepare("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")?;
    let mut rows = entries.query([])?;
    let mut expected = 0u64;
    while let Some(row) = rows.next()? {
        let idx = from_sql(row.get(0)?);
        // A tampered row may hold another SQL type; that is a finding, not a failure.
        let data = blob_or_text(row.get_ref(1)?).unwrap_or_default();
        if idx != expected {
            note(AuditFinding::MissingEntry(expected), &mut finding);
            break;
        }
        for (i, (id, hash)) in range.append(leaf_hash(&data)).iter().enumerate() {
            let stored: Option<Vec<u8>> = stored_node
                .query_row(params![i64::from(id.level), to_sql(id.index)], |r| r.get(0))
                .optional()?;
            if stored.as_deref() != Some(hash.as_bytes().as_slice()) {
                let f = if i == 0 {
                    AuditFinding::EntryAltered(idx)
                } else {
                    AuditFinding::NodeAltered {
                        level: id.level,
                        index: id.index,
                    }
                };
                note(f, &mut finding);
            }
        }
        if !is_canonical_entry(&data) {
            note(AuditFinding::EntryMalformed(idx), &mut finding);
        }
        expected += 1;
        checkpoints.check_at(expected, range.root(), &mut finding)?;
        if kept_size == Some(expected) {
            kept_root = Some(range.root());
        }
    }
    let size = range.size();
    if let Some(checkpoint_size) = checkpoints.last_size()? {
        // A checkpoint beyond the entries: the largest one left names how many were removed.
        note(
            AuditFinding::Truncated {
                checkpoint_size,
                entries: size,
            },
            &mut finding,
        );
    }
    if let Some(kept) = kept {
        let reason = if kept.origin != origin {
            Some(format!(
                "origin `{}` is not this log's `{origin}`",
                kept.origin
            ))
        } else if kept.size > size {
            Some(format!("the log holds only {size} entries"))
        } else if kept_root != Some(kept.root) {
            Some("the entries it covers were rewritten (roots differ)".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            note(
                AuditFinding::Inconsistent {
                    size: kept.size,
                    reason,
                },
                &mut finding,
            );
        }
    }
    Ok(Audit {
        size,
        root: range.root(),
        checkpoints: checkpoints.checked,
        finding,
    })
}

/// The bytes of a BLOB or TEXT value; other SQL types hold no entry.
fn blob_or_text(value: rusqlite::types::ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// Stored checkpoints in size order, checked one by one as an audit reaches their sizes.
struct CheckpointCursor<'a, 'stmt> {
    rows: rusqlite::Rows<'stmt>,
    next: Option<(u64, String)>,
    checked: u64,
    verifiers: &'a [NoteVerifier],
    origin: &'a str,
}

impl CheckpointCursor<'_, '_> {
    fn advance(&mut self) -> Result<(), StoreError> {
        self.next = match self.rows.next()? {
            Some(row) => Some((from_sql(row.get(0)?), row.get(1)?)),
            None => None,
        };
        Ok(())
    }

    /// Checks every stored checkpoint of `size` against the recomputed `root`.
    fn check_at(
        &mut self,
        size: u64,
        root: Hash,
        finding: &mut Option<AuditFinding>,
    ) -> Result<(), StoreError> {
        while let Some((s, text)) = self.next.take_if(|(s, _)| *s == size) {
            self.checked += 1;
            let found = match Checkpoint::open(text.as_bytes(), self.verifiers) {
                Err(e) => Some(AuditFinding::CheckpointInvalid {
                    size: s,
                    reason: e.to_string(),
                }),
                Ok(cp) if cp.origin != self.origin || cp.size != s => {
                    Some(AuditFinding::CheckpointInvalid {
                        size: s,
                        reason: "origin or size differs from its record".into(),
                    })
                }
                Ok(cp) if cp.root != root => Some(AuditFinding::CheckpointMismatch(s)),
                Ok(_) => None,
            };
            if finding.is_none() {
                *finding = found;
            }
            self.advance()?;
        }
        Ok(())
    }

    /// The largest size among the checkpoints not reached, if any.
    fn last_size(&mut self) -> Result<Option<u64>, StoreError> {
        let mut last = None;
        while let Some((s, _)) = self.next.take() {
            last = Some(s);
            self.advance()?;
        }
        Ok(last)
    }
}

impl LogStore for SqliteLog {
    fn origin(&self) -> &str {
        SqliteLog::origin(self)
    }
    fn verifier_key(&self) -> String {
        SqliteLog::verifier_key(self)
    }
    fn verifier(&self) -> &NoteVerifier {
        SqliteLog::verifier(self)
    }
    fn append(&self, entry: Vec<u8>) -> Result<u64, StoreError> {
        SqliteLog::append(self, entry)
    }
    fn append_then(&self, entry: Vec<u8>, then: AppendCallback) -> Result<(), StoreError> {
        SqliteLog::append_then(self, entry, then)
    }
    fn consume_then(&self, job: ConsumeJob, then: ConsumeCallback) -> Result<(), StoreError> {
        SqliteLog::consume_then(self, job, then)
    }
    fn size(&self) -> Result<u64, StoreError> {
        SqliteLog::size(self)
    }
    fn latest_checkpoint(&self) -> Result<String, StoreError> {
        SqliteLog::latest_checkpoint(self)
    }
    fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        SqliteLog::entries(self, from, limit)
    }
    fn prove_inclusion(&self, index: u64, size: Option<u64>) -> Result<InclusionProof, StoreError> {
        SqliteLog::prove_inclusion(self, index, size)
    }
    fn prove_consistency(
        &self,
        size1: u64,
        size2: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        SqliteLog::prove_consistency(self, size1, size2)
    }
}
