//! The transparency log in PostgreSQL: one sequence for every node on the database.
//!
//! Each node has one writer thread. Callers queue entries and consumptions; the writer commits
//! them in batches (group commit), each one PostgreSQL transaction that first takes the log's
//! advisory lock, so the batches of all nodes take turns. Once the lock is held the batch takes
//! everything its node has queued (so what arrived while another node held the lock joins
//! it), reads the size the cluster reached, reloads the in-memory right edge when another node
//! appended since, appends with the next indexes, stores the subtree hashes and the signed
//! checkpoint of the new size, and commits; only then are callers answered. A node that dies
//! mid-batch loses its connection, so its transaction rolls back and the lock passes on: the
//! indexes stay gap-free. A failed batch fails all its callers and the writer goes on with the
//! next one. Reads go straight to the database, so every node sees the cluster's log.
//!
//! The lock key is derived from the schema (`current_schema()`), the same on every node and
//! version: logs in different schemas of one database do not wait for each other.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};
use writ_core::{Consumed, RevocationSubject};
use writ_log::{
    consistency_plan, inclusion_plan, leaf_hash, Checkpoint, CompactRange, ConsistencyProof, Hash,
    InclusionProof, NodeId, NoteSigner, NoteVerifier,
};

use super::{from_sql, to_sql, PgClient, PgDatabase, STATEMENT_TIMEOUT};
use crate::error::StoreError;
use crate::log::{is_canonical_entry, Request, WriterQueue};
use crate::log::{AppendCallback, ConsumeCallback, ConsumeJob, LogStore};
use crate::sqlite::{Audit, AuditFinding};

/// Most requests one transaction takes; more wait for the next.
const MAX_BATCH: usize = 4096;

/// Most consumptions one transaction takes. Each runs in a savepoint, and a backend caches
/// at most 64 subtransaction ids (`PGPROC_MAX_CACHED_SUBXIDS`); past that every other
/// session's snapshots slow down while the batch is open.
const MAX_CONSUMES: usize = 64;

/// Entries an audit reads per query.
const AUDIT_CHUNK: i64 = 4096;

/// Takes the log's lock for the rest of the transaction. The idle timeout set with it bounds
/// how long a node that stalls mid-batch (or is cut off) can hold the lock: the server ends
/// its session and the next node goes on.
const LOCK_SQL: &str = "SELECT set_config('idle_in_transaction_session_timeout', $2, true), \
     pg_advisory_xact_lock($1)";

/// The log's size and its right edge: for each one bit `level` of the size, the stored hash
/// of the perfect subtree `(size >> level) - 1` at that level (see `CompactRange::nodes_for`).
const HEAD_SQL: &str = "WITH s AS (SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM log_entries) \
     SELECT s.n, l.level, \
         (SELECT h.hash FROM log_nodes h WHERE h.level = l.level AND h.idx = (s.n >> l.level) - 1) \
     FROM s LEFT JOIN generate_series(0, 62) AS l(level) ON (s.n >> l.level) & 1 = 1";

/// Stored hashes by node id: a scalar subquery per id, so each is one index lookup however
/// large the table. Missing ones come back NULL.
const NODES_SQL: &str = "SELECT q.level, q.idx, \
         (SELECT n.hash FROM log_nodes n WHERE n.level = q.level AND n.idx = q.idx) \
     FROM unnest($1::int4[], $2::int8[]) AS q(level, idx)";

/// A transparency log stored in PostgreSQL and shared by every node on the database. Open it
/// for reading with [`PgLog::open`], or with its checkpoint key for appending with
/// [`PgLog::open_or_create`] (what a node starting up wants), [`PgLog::create`] or
/// [`PgLog::open_writer`].
pub struct PgLog {
    db: Arc<PgDatabase>,
    origin: String,
    verifier: NoteVerifier,
    lock_key: i64,
    writer: Option<WriterQueue>,
}

/// A request made ready inside the transaction: its entry bytes and, for a consumption, its
/// outcome; or why it failed (the rest of the batch goes on).
type Prepared = Result<(Vec<u8>, Option<Consumed>), StoreError>;

impl std::fmt::Debug for PgLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLog")
            .field("origin", &self.origin)
            .field("writer", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

/// What `log_meta` says, if a log exists.
struct Meta {
    origin: String,
    vkey: String,
}

async fn read_meta(client: &impl GenericClient) -> Result<Option<Meta>, StoreError> {
    let rows = client
        .query(
            "SELECT key, value FROM log_meta WHERE key IN ('origin', 'vkey')",
            &[],
        )
        .await?;
    let mut origin = None;
    let mut vkey = None;
    for row in rows {
        let key: String = row.try_get(0)?;
        let value: String = row.try_get(1)?;
        match key.as_str() {
            "origin" => origin = Some(value),
            _ => vkey = Some(value),
        }
    }
    match (origin, vkey) {
        (Some(origin), Some(vkey)) => Ok(Some(Meta { origin, vkey })),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(
            "log_meta holds only one of origin and key".into(),
        )),
    }
}

/// The advisory lock key of the log in the connection's schema: a fixed derivation, the same
/// on every node and every version, so logs in different schemas of one database do not
/// wait for each other.
async fn lock_key(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT COALESCE(current_schema(), '')", &[])
        .await?;
    let schema: String = row.try_get(0)?;
    let digest = leaf_hash(format!("writ log sequencer\n{schema}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    Ok(i64::from_be_bytes(first))
}

fn idle_timeout() -> String {
    STATEMENT_TIMEOUT.as_millis().to_string()
}

/// How a node starts its log.
#[derive(Clone, Copy)]
enum Start {
    Create,
    Open,
    OpenOrCreate,
}

impl PgLog {
    /// Creates the log in `db` with its origin and checkpoint key, and signs the empty tree.
    /// Refused when the database already holds a log.
    pub fn create(
        db: Arc<PgDatabase>,
        origin: &str,
        signer: NoteSigner,
    ) -> Result<Self, StoreError> {
        Self::start(db, origin, signer, Start::Create)
    }

    /// Opens the existing log of `db` for appending; `signer` must be the key it was created
    /// with.
    pub fn open_writer(db: Arc<PgDatabase>, signer: NoteSigner) -> Result<Self, StoreError> {
        Self::start(db, "", signer, Start::Open)
    }

    /// Opens the log of `db` for appending, creating it with `origin` and `signer`'s key if
    /// the database holds none: one step under the log's lock, so nodes starting together
    /// create one log and the others open it. Refused when the log has another origin
    /// ([`StoreError::LogExists`]) or another key ([`StoreError::KeyMismatch`]).
    pub fn open_or_create(
        db: Arc<PgDatabase>,
        origin: &str,
        signer: NoteSigner,
    ) -> Result<Self, StoreError> {
        Self::start(db, origin, signer, Start::OpenOrCreate)
    }

    fn start(
        db: Arc<PgDatabase>,
        origin: &str,
        signer: NoteSigner,
        how: Start,
    ) -> Result<Self, StoreError> {
        let signer = Arc::new(signer);
        let given = signer.verifier_key();
        let wanted = origin.to_owned();
        let sign_with = signer.clone();
        let (meta, lock_key) = db.run(move |mut client| async move {
            let key = lock_key(&client).await?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                .await?;
            let meta = match (read_meta(&tx).await?, how) {
                (Some(existing), Start::Create) => {
                    return Err(StoreError::LogExists(existing.origin))
                }
                (Some(existing), Start::OpenOrCreate) if existing.origin != wanted => {
                    return Err(StoreError::LogExists(existing.origin))
                }
                (Some(existing), _) => existing,
                (None, Start::Open) => return Err(StoreError::NoLog),
                (None, _) => {
                    let note = Checkpoint::new(wanted.as_str(), 0, CompactRange::new().root())
                        .sign(&sign_with)?;
                    let vkey = sign_with.verifier_key();
                    tx.execute(
                        "INSERT INTO log_meta (key, value) VALUES ('origin', $1), ('vkey', $2)",
                        &[&wanted, &vkey],
                    )
                    .await?;
                    tx.execute(
                        "INSERT INTO log_checkpoints (size, note) VALUES (0, $1)",
                        &[&note],
                    )
                    .await?;
                    Meta {
                        origin: wanted,
                        vkey,
                    }
                }
            };
            tx.commit().await?;
            Ok((meta, key))
        })?;
        if meta.vkey != given {
            return Err(StoreError::KeyMismatch {
                given,
                expected: meta.vkey,
            });
        }
        let mut log = Self::with_meta(db, meta, lock_key)?;
        let writer_db = log.db.clone();
        let origin = log.origin.clone();
        log.writer = Some(WriterQueue::start("writ-pg-log-writer", move |rx| {
            run_writer(writer_db, origin, signer, lock_key, rx)
        })?);
        Ok(log)
    }

    /// Opens the log of `db` for reading.
    pub fn open(db: Arc<PgDatabase>) -> Result<Self, StoreError> {
        let (meta, lock_key) = db.run(|client| async move {
            let meta = read_meta(&client).await?.ok_or(StoreError::NoLog)?;
            Ok((meta, lock_key(&client).await?))
        })?;
        Self::with_meta(db, meta, lock_key)
    }

    fn with_meta(db: Arc<PgDatabase>, meta: Meta, lock_key: i64) -> Result<Self, StoreError> {
        let verifier = NoteVerifier::from_vkey(&meta.vkey)
            .map_err(|e| StoreError::Corrupt(format!("stored verifier key: {e}")))?;
        Ok(Self {
            db,
            origin: meta.origin,
            verifier,
            lock_key,
            writer: None,
        })
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

    /// The advisory lock key batches take (for tests and operators looking at `pg_locks`).
    #[doc(hidden)]
    pub fn lock_key(&self) -> i64 {
        self.lock_key
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

    /// Entries committed so far, by every node.
    pub fn size(&self) -> Result<u64, StoreError> {
        self.db
            .run(|client| async move { stored_size(&client).await })
    }

    /// The latest signed checkpoint (a C2SP signed note).
    pub fn latest_checkpoint(&self) -> Result<String, StoreError> {
        self.db.run(|client| async move {
            let row = client
                .query_opt(
                    "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                    &[],
                )
                .await?
                .ok_or(StoreError::NoLog)?;
            Ok(row.try_get(0)?)
        })
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.db.run(move |client| async move {
            let row = client
                .query_opt(
                    "SELECT data FROM log_entries WHERE idx = $1",
                    &[&to_sql(index)],
                )
                .await?;
            match row {
                Some(row) => Ok(row.try_get(0)?),
                None => Err(StoreError::OutOfRange {
                    index,
                    size: stored_size(&client).await?,
                }),
            }
        })
    }

    /// Up to `limit` entries from `from` on, with their indexes.
    pub fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.db.run(move |client| async move {
            let rows = client
                .query(
                    "SELECT idx, data FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                    &[&to_sql(from), &to_sql(limit)],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((from_sql(r.try_get(0)?), r.try_get(1)?)))
                .collect()
        })
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (default: the
    /// latest), from O(log n) stored hashes fetched in one query.
    pub fn prove_inclusion(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, StoreError> {
        self.db.run(move |client| async move {
            // Stored hashes never change, so a size read once fixes every one the proof needs.
            let size = checked_size(&client, size).await?;
            let plan = inclusion_plan(index, size)?;
            let edge = CompactRange::nodes_for(size);
            let leaf = NodeId::leaf(index);
            let ids: Vec<NodeId> = plan
                .nodes()
                .chain(edge.iter().copied())
                .chain([leaf])
                .collect();
            let hashes = fetch_nodes(&client, &ids).await?;
            let get = |n: NodeId| stored(&hashes, n);
            Ok(InclusionProof {
                tree_size: size,
                leaf_index: index,
                leaf_hash: get(leaf)?,
                root_hash: range_from(size, &edge, &hashes)?.root(),
                hashes: plan.assemble(get)?,
            })
        })
    }

    /// The consistency proof from `size1` to `size2` entries (default: the latest).
    pub fn prove_consistency(
        &self,
        size1: u64,
        size2: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        self.db.run(move |client| async move {
            let size2 = checked_size(&client, size2).await?;
            let plan = consistency_plan(size1, size2)?;
            let edge1 = CompactRange::nodes_for(size1);
            let edge2 = CompactRange::nodes_for(size2);
            let ids: Vec<NodeId> = plan
                .nodes()
                .chain(edge1.iter().copied())
                .chain(edge2.iter().copied())
                .collect();
            let hashes = fetch_nodes(&client, &ids).await?;
            Ok(ConsistencyProof {
                size1,
                size2,
                root1: range_from(size1, &edge1, &hashes)?.root(),
                root2: range_from(size2, &edge2, &hashes)?.root(),
                hashes: plan.assemble(|n| stored(&hashes, n))?,
            })
        })
    }

    /// Recomputes the whole tree from the stored entries and checks every stored hash and
    /// signed checkpoint against it, and, when given, consistency with a checkpoint an
    /// auditor kept. Reads one snapshot, so nodes appending meanwhile do not disturb it.
    /// Reports the first thing that does not hold.
    pub fn audit(&self, kept: Option<&Checkpoint>) -> Result<Audit, StoreError> {
        let origin = self.origin.clone();
        let verifier = self.verifier.clone();
        let kept = kept.cloned();
        self.db.run(move |mut client| async move {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let audit = audit(&tx, &origin, &verifier, kept.as_ref()).await?;
            tx.commit().await?;
            Ok(audit)
        })
    }

    /// Stops the writer after the queued requests.
    pub fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close();
        }
    }
}

impl Drop for PgLog {
    fn drop(&mut self) {
        self.close();
    }
}

async fn stored_size(client: &impl GenericClient) -> Result<u64, StoreError> {
    let row = client
        .query_one("SELECT MAX(idx) FROM log_entries", &[])
        .await?;
    let max: Option<i64> = row.try_get(0)?;
    Ok(max.map_or(0, |m| from_sql(m) + 1))
}

/// `size`, or the current size when `None`; an error past the end of the log.
async fn checked_size(client: &impl GenericClient, size: Option<u64>) -> Result<u64, StoreError> {
    let current = stored_size(client).await?;
    match size {
        None => Ok(current),
        Some(size) if size <= current => Ok(size),
        Some(size) => Err(StoreError::OutOfRange {
            index: size,
            size: current,
        }),
    }
}

/// The stored hashes of `ids` that exist.
async fn fetch_nodes(
    client: &impl GenericClient,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Vec<u8>>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let levels: Vec<i32> = ids.iter().map(|n| i32::from(n.level)).collect();
    let indexes: Vec<i64> = ids.iter().map(|n| to_sql(n.index)).collect();
    let statement = client.prepare_cached(NODES_SQL).await?;
    let rows = client.query(&statement, &[&levels, &indexes]).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let hash: Option<Vec<u8>> = row.try_get(2)?;
        if let Some(hash) = hash {
            let level = u8::try_from(row.try_get::<_, i32>(0)?).unwrap_or(u8::MAX);
            let index = from_sql(row.try_get(1)?);
            out.insert(NodeId { level, index }, hash);
        }
    }
    Ok(out)
}

fn stored(hashes: &HashMap<NodeId, Vec<u8>>, id: NodeId) -> Result<Hash, StoreError> {
    let bytes = hashes.get(&id).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "stored hash of level {} index {} is missing",
            id.level, id.index
        ))
    })?;
    Hash::from_slice(bytes).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "stored hash of level {} index {} is not 32 bytes",
            id.level, id.index
        ))
    })
}

/// The right edge of `size` entries from the fetched hashes of `edge` (its
/// [`CompactRange::nodes_for`]).
fn range_from(
    size: u64,
    edge: &[NodeId],
    hashes: &HashMap<NodeId, Vec<u8>>,
) -> Result<CompactRange, StoreError> {
    let parts = edge
        .iter()
        .map(|n| stored(hashes, *n))
        .collect::<Result<Vec<_>, _>>()?;
    CompactRange::from_parts(size, parts)
        .ok_or_else(|| StoreError::Corrupt("right edge does not fit the size".into()))
}

/// The size the cluster reached and the stored hashes of its right edge.
fn read_head(rows: &[Row]) -> Result<(u64, HashMap<NodeId, Vec<u8>>), StoreError> {
    let mut size = None;
    let mut hashes = HashMap::new();
    for row in rows {
        let n = from_sql(row.try_get(0)?);
        size = Some(n);
        let level: Option<i32> = row.try_get(1)?;
        let hash: Option<Vec<u8>> = row.try_get(2)?;
        if let (Some(level), Some(hash)) = (level.and_then(|l| u8::try_from(l).ok()), hash) {
            let index = (n >> level) - 1;
            hashes.insert(NodeId { level, index }, hash);
        }
    }
    let size = size.ok_or_else(|| StoreError::Corrupt("no log size".into()))?;
    Ok((size, hashes))
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

/// The writer's side of the queue, shared with the batch task that drains it once it holds
/// the lock.
struct Queue {
    requests: Receiver<Request>,
    /// A consumption past [`MAX_CONSUMES`], first in the next batch.
    carry: Option<Request>,
}

fn split(request: Request) -> (Work, Reply) {
    match request {
        Request::Append { entry, reply } => (Work::Entry(entry), Reply::Append(reply)),
        Request::Consume { job, reply } => (Work::Consume(job), Reply::Consume(reply)),
    }
}

/// Moves what is queued into the batch, up to the limits.
fn drain(queue: &Mutex<Queue>, work: &mut Vec<Work>, replies: &mut Vec<Reply>) {
    let Ok(mut queue) = queue.lock() else {
        return;
    };
    let mut consumes = work
        .iter()
        .filter(|w| matches!(w, Work::Consume(_)))
        .count();
    while work.len() < MAX_BATCH {
        let request = match queue.carry.take() {
            Some(request) => request,
            None => match queue.requests.try_recv() {
                Ok(request) => request,
                Err(_) => break,
            },
        };
        if matches!(request, Request::Consume { .. }) {
            if consumes == MAX_CONSUMES {
                queue.carry = Some(request);
                break;
            }
            consumes += 1;
        }
        let (w, reply) = split(request);
        work.push(w);
        replies.push(reply);
    }
}

/// The same failure for every caller of a failed batch.
fn failure(e: &StoreError) -> StoreError {
    match e {
        StoreError::Postgres(message) => StoreError::Postgres(message.clone()),
        other => StoreError::Writer(other.to_string()),
    }
}

fn run_writer(
    db: Arc<PgDatabase>,
    origin: String,
    signer: Arc<NoteSigner>,
    lock_key: i64,
    queue: Receiver<Request>,
) {
    let origin: Arc<str> = origin.into();
    let queue = Arc::new(Mutex::new(Queue {
        requests: queue,
        carry: None,
    }));
    let mut range: Option<CompactRange> = None;
    loop {
        // INVARIANT: no batch task runs here, so waiting with the queue locked blocks nobody.
        let first = {
            let Ok(mut q) = queue.lock() else { break };
            match q.carry.take() {
                Some(request) => request,
                None => match q.requests.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                },
            }
        };
        let (work, reply) = split(first);
        let mut replies = vec![reply];
        let edge = range.take();
        let (origin, signer, batch_queue) = (origin.clone(), signer.clone(), queue.clone());
        let result = db.run(move |mut client| async move {
            let mut more = Vec::new();
            let result = commit(
                &mut client,
                Sequencer {
                    range: edge,
                    origin: &origin,
                    signer: &signer,
                    lock_key,
                },
                work,
                &batch_queue,
                &mut more,
            )
            .await;
            if result.is_err() {
                // The connection may be dead without the pool knowing yet (it checks only
                // whether the driver noticed): never hand it to the next batch.
                drop(deadpool_postgres::Object::take(client));
            }
            Ok((more, result))
        });
        let result = match result {
            Ok((more, result)) => {
                replies.extend(more);
                result
            }
            Err(e) => {
                // No connection: what is queued fails with this request, as one batch would.
                drain(&queue, &mut Vec::new(), &mut replies);
                Err(e)
            }
        };
        match result {
            Ok(committed) => {
                range = Some(committed.range);
                let mut next = committed.first;
                for (reply, outcome) in replies.into_iter().zip(committed.prepared) {
                    let outcome = outcome.map(|(_, consumed)| {
                        let index = next;
                        next += 1;
                        (index, consumed)
                    });
                    reply.send(outcome);
                }
            }
            Err(e) => {
                // Nothing of the batch is acknowledged and no use is spent (the transaction
                // rolled back, or its connection is gone); the edge is reloaded next time, so
                // the writer goes on by itself once the database answers again.
                for reply in replies {
                    reply.send(Err(failure(&e)));
                }
            }
        }
    }
}

/// A committed batch: the new right edge, the index of its first entry, and each request's
/// outcome in queue order.
struct Committed {
    range: CompactRange,
    first: u64,
    prepared: Vec<Prepared>,
}

/// Runs a consumption inside `tx`, in a savepoint so that its failure leaves the rest of the
/// batch alone, and returns its entry and outcome.
///
/// The savepoint is sent together with the consumption's first statement, and kept rather
/// than released on success (the next job's savepoint of the same name nests inside it; the
/// commit keeps them all): two round trips fewer per consumption while the batch holds the
/// log's lock. A failed job rolls back to its own savepoint, the latest of that name.
async fn prepare_consumption(tx: &PgClient, job: ConsumeJob) -> Prepared {
    let subject = RevocationSubject {
        jti: &job.jti,
        ancestors: &job.ancestors,
        principals: [job.principals[0].as_str(), job.principals[1].as_str()],
    };
    let (_, consumed) = tokio::join!(
        biased;
        tx.batch_execute("SAVEPOINT writ_consume"),
        super::replay::consume_in(tx, &job.jti, job.uses, job.keep_until, &subject),
    );
    // INVARIANT: when the savepoint failed, so did the consumption's statements (the
    // transaction is aborted), and the error below fails the whole batch.
    let outcome = consumed.and_then(|consumed| {
        let entry = (job.entry)(consumed);
        if is_canonical_entry(&entry) {
            Ok((entry, Some(consumed)))
        } else {
            Err(StoreError::InvalidEntry)
        }
    });
    if outcome.is_err() {
        // The mark, if made, goes with the savepoint.
        tx.batch_execute("ROLLBACK TO SAVEPOINT writ_consume")
            .await?;
    }
    outcome
}

/// What a batch needs to extend the log.
struct Sequencer<'a> {
    /// The right edge after this node's last batch, if known.
    range: Option<CompactRange>,
    origin: &'a str,
    signer: &'a NoteSigner,
    lock_key: i64,
}

/// Commits one batch: `first`, then whatever is queued once the lock is held (so requests
/// that arrive while another node holds it join this batch). The replies of requests taken
/// from the queue go to `replies`, in order, whatever the outcome.
async fn commit(
    client: &mut PgClient,
    log: Sequencer<'_>,
    first: Work,
    queue: &Mutex<Queue>,
    replies: &mut Vec<Reply>,
) -> Result<Committed, StoreError> {
    let mut work = vec![first];
    let mut taken = false;
    let result = commit_batch(client, log, &mut work, queue, replies, &mut taken).await;
    if result.is_err() && !taken {
        // Failed before taking the queue: what waits fails with it, as one batch.
        drain(queue, &mut work, replies);
    }
    result
}

async fn commit_batch(
    client: &mut PgClient,
    log: Sequencer<'_>,
    work: &mut Vec<Work>,
    queue: &Mutex<Queue>,
    replies: &mut Vec<Reply>,
    taken: &mut bool,
) -> Result<Committed, StoreError> {
    let (lock, head) = tokio::try_join!(
        client.prepare_cached(LOCK_SQL),
        client.prepare_cached(HEAD_SQL)
    )?;
    let timeout = idle_timeout();
    let lock_params: [&(dyn ToSql + Sync); 2] = [&log.lock_key, &timeout];
    // One round trip, pipelined in this order (`biased`): the transaction starts, takes the
    // lock, and reads the head by a statement that starts once the lock is held. The
    // transaction is driven by hand rather than through a `Transaction`, whose start and
    // commit would each take a round trip of their own while the lock is held or awaited; on
    // any error the caller discards the connection, which rolls it back.
    // INVARIANT: read committed, so every statement after the lock sees what the previous
    // holder committed (its commit is visible before its lock is released).
    let (_, _, head) = tokio::try_join!(
        biased;
        client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
        client.execute(&lock, &lock_params),
        client.query(&head, &[]),
    )?;
    let (size, stored_edge) = read_head(&head)?;
    let mut edge = match log.range {
        Some(r) if r.size() == size => r,
        // First batch, an earlier failure, or another node appended: the stored edge.
        _ => range_from(size, &CompactRange::nodes_for(size), &stored_edge)?,
    };
    drain(queue, work, replies);
    *taken = true;
    let mut prepared: Vec<Prepared> = Vec::with_capacity(work.len());
    for w in work.drain(..) {
        prepared.push(match w {
            Work::Entry(entry) => Ok((entry, None)),
            Work::Consume(job) => prepare_consumption(client, job).await,
        });
    }
    // A batch whose every consumption failed appends nothing: no new checkpoint either.
    if prepared.iter().any(Result::is_ok) {
        let mut indexes = Vec::new();
        let mut entries: Vec<&[u8]> = Vec::new();
        let (mut levels, mut node_indexes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
        for (index, (entry, _)) in (size..).zip(prepared.iter().flatten()) {
            indexes.push(to_sql(index));
            entries.push(entry);
            for (id, hash) in edge.append(leaf_hash(entry)) {
                levels.push(i32::from(id.level));
                node_indexes.push(to_sql(id.index));
                hashes.push(hash.as_bytes().to_vec());
            }
        }
        let new_size = to_sql(edge.size());
        let note = Checkpoint::new(log.origin, edge.size(), edge.root()).sign(log.signer)?;
        let (insert_entries, insert_nodes, insert_checkpoint) = tokio::try_join!(
            client.prepare_cached(
                "INSERT INTO log_entries (idx, data) SELECT * FROM unnest($1::int8[], $2::bytea[])"
            ),
            client.prepare_cached(
                "INSERT INTO log_nodes (level, idx, hash) \
                 SELECT * FROM unnest($1::int4[], $2::int8[], $3::bytea[])"
            ),
            client.prepare_cached("INSERT INTO log_checkpoints (size, note) VALUES ($1, $2)"),
        )?;
        // One round trip for the three and the commit: they are pipelined on the connection.
        // INVARIANT: every statement's own result is checked (`try_join`): PostgreSQL answers
        // COMMIT of a failed transaction with a rollback, not an error.
        let entry_rows: [&(dyn ToSql + Sync); 2] = [&indexes, &entries];
        let node_rows: [&(dyn ToSql + Sync); 3] = [&levels, &node_indexes, &hashes];
        let checkpoint_row: [&(dyn ToSql + Sync); 2] = [&new_size, &note];
        tokio::try_join!(
            biased;
            client.execute(&insert_entries, &entry_rows),
            client.execute(&insert_nodes, &node_rows),
            client.execute(&insert_checkpoint, &checkpoint_row),
            client.batch_execute("COMMIT"),
        )?;
    } else {
        client.batch_execute("COMMIT").await?;
    }
    Ok(Committed {
        range: edge,
        first: size,
        prepared,
    })
}

/// One entry recomputed by an audit: the subtrees it completed and the root after it.
struct Recomputed {
    index: u64,
    completed: Vec<(NodeId, Hash)>,
    canonical: bool,
    root: Hash,
}

fn check_checkpoint(
    size: u64,
    text: &str,
    root: Hash,
    origin: &str,
    verifiers: &[NoteVerifier],
) -> Option<AuditFinding> {
    match Checkpoint::open(text.as_bytes(), verifiers) {
        Err(e) => Some(AuditFinding::CheckpointInvalid {
            size,
            reason: e.to_string(),
        }),
        Ok(cp) if cp.origin != origin || cp.size != size => Some(AuditFinding::CheckpointInvalid {
            size,
            reason: "origin or size differs from its record".into(),
        }),
        Ok(cp) if cp.root != root => Some(AuditFinding::CheckpointMismatch(size)),
        Ok(_) => None,
    }
}

/// Stored checkpoints with sizes in `[from, to]`, by size.
async fn checkpoints_between(
    client: &impl GenericClient,
    from: u64,
    to: u64,
) -> Result<HashMap<u64, Vec<String>>, StoreError> {
    let rows = client
        .query(
            "SELECT size, note FROM log_checkpoints WHERE size BETWEEN $1 AND $2",
            &[&to_sql(from), &to_sql(to)],
        )
        .await?;
    let mut out: HashMap<u64, Vec<String>> = HashMap::new();
    for row in rows {
        out.entry(from_sql(row.try_get(0)?))
            .or_default()
            .push(row.try_get(1)?);
    }
    Ok(out)
}

async fn audit(
    client: &impl GenericClient,
    origin: &str,
    verifier: &NoteVerifier,
    kept: Option<&Checkpoint>,
) -> Result<Audit, StoreError> {
    let verifiers = [verifier.clone()];
    let mut range = CompactRange::new();
    let mut finding: Option<AuditFinding> = None;
    let note = |f: Option<AuditFinding>, finding: &mut Option<AuditFinding>| {
        if finding.is_none() {
            *finding = f;
        }
    };
    let mut checked = 0u64;
    let kept_size = kept.map(|k| k.size);
    let mut kept_root: Option<Hash> = None;

    for text in checkpoints_between(client, 0, 0)
        .await?
        .remove(&0)
        .unwrap_or_default()
    {
        checked += 1;
        note(
            check_checkpoint(0, &text, range.root(), origin, &verifiers),
            &mut finding,
        );
    }
    if kept_size == Some(0) {
        kept_root = Some(range.root());
    }

    // Entries are read in chunks; the stored hashes and checkpoints each chunk reaches are
    // fetched with it, so memory stays flat however long the log is.
    let mut expected = 0u64;
    'chunks: loop {
        let rows = client
            .query(
                "SELECT idx, data FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&to_sql(expected), &AUDIT_CHUNK],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        let mut chunk = Vec::with_capacity(rows.len());
        let mut gap = None;
        let mut next = expected;
        for row in &rows {
            let index = from_sql(row.try_get(0)?);
            if index != next {
                gap = Some(next);
                break;
            }
            let data: Vec<u8> = row.try_get(1)?;
            let completed = range.append(leaf_hash(&data));
            chunk.push(Recomputed {
                index,
                completed,
                canonical: is_canonical_entry(&data),
                root: range.root(),
            });
            next += 1;
        }
        let ids: Vec<NodeId> = chunk
            .iter()
            .flat_map(|r| r.completed.iter().map(|(id, _)| *id))
            .collect();
        let stored = fetch_nodes(client, &ids).await?;
        let mut checkpoints = checkpoints_between(client, expected + 1, next).await?;
        for r in chunk {
            for (i, (id, hash)) in r.completed.iter().enumerate() {
                if stored.get(id).map(Vec::as_slice) != Some(hash.as_bytes().as_slice()) {
                    let f = if i == 0 {
                        AuditFinding::EntryAltered(r.index)
                    } else {
                        AuditFinding::NodeAltered {
                            level: id.level,
                            index: id.index,
                        }
                    };
                    note(Some(f), &mut finding);
                }
            }
            if !r.canonical {
                note(Some(AuditFinding::EntryMalformed(r.index)), &mut finding);
            }
            let size = r.index + 1;
            for text in checkpoints.remove(&size).unwrap_or_default() {
                checked += 1;
                note(
                    check_checkpoint(size, &text, r.root, origin, &verifiers),
                    &mut finding,
                );
            }
            if kept_size == Some(size) {
                kept_root = Some(r.root);
            }
        }
        expected = next;
        if let Some(missing) = gap {
            note(Some(AuditFinding::MissingEntry(missing)), &mut finding);
            break 'chunks;
        }
    }
    let size = range.size();
    let beyond = client
        .query_one(
            "SELECT MAX(size) FROM log_checkpoints WHERE size > $1",
            &[&to_sql(size)],
        )
        .await?;
    if let Some(checkpoint_size) = beyond.try_get::<_, Option<i64>>(0)? {
        // A checkpoint beyond the entries: the largest one names how many were removed.
        note(
            Some(AuditFinding::Truncated {
                checkpoint_size: from_sql(checkpoint_size),
                entries: size,
            }),
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
                Some(AuditFinding::Inconsistent {
                    size: kept.size,
                    reason,
                }),
                &mut finding,
            );
        }
    }
    Ok(Audit {
        size,
        root: range.root(),
        checkpoints: checked,
        finding,
    })
}

impl LogStore for PgLog {
    fn origin(&self) -> &str {
        PgLog::origin(self)
    }
    fn verifier_key(&self) -> String {
        PgLog::verifier_key(self)
    }
    fn verifier(&self) -> &NoteVerifier {
        PgLog::verifier(self)
    }
    fn append(&self, entry: Vec<u8>) -> Result<u64, StoreError> {
        PgLog::append(self, entry)
    }
    fn append_then(&self, entry: Vec<u8>, then: AppendCallback) -> Result<(), StoreError> {
        PgLog::append_then(self, entry, then)
    }
    fn consume_then(&self, job: ConsumeJob, then: ConsumeCallback) -> Result<(), StoreError> {
        PgLog::consume_then(self, job, then)
    }
    fn size(&self) -> Result<u64, StoreError> {
        PgLog::size(self)
    }
    fn latest_checkpoint(&self) -> Result<String, StoreError> {
        PgLog::latest_checkpoint(self)
    }
    fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        PgLog::entries(self, from, limit)
    }
    fn prove_inclusion(&self, index: u64, size: Option<u64>) -> Result<InclusionProof, StoreError> {
        PgLog::prove_inclusion(self, index, size)
    }
    fn prove_consistency(
        &self,
        size1: u64,
        size2: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        PgLog::prove_consistency(self, size1, size2)
    }
}
