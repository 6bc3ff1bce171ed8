//! The verifier's view of state: replay (consumption) and revocation, behind traits so the
//! verifier stays pure. In-memory versions live here; durable ones in `writ-store`.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use crate::claims::Jti;
use crate::time::UnixTime;

/// State could not be read or written: the verifier denies with `status_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state unavailable: {0}")]
pub struct StateError(pub String);

/// What revocation is asked about one writ.
#[derive(Debug, Clone, Copy)]
pub struct RevocationSubject<'a> {
    /// The writ's id.
    pub jti: &'a Jti,
    /// Its ancestors' ids (parent first, root last), as far as they are known.
    pub ancestors: &'a [Jti],
    /// The principals it names: the initiator (`sub`) and the executor (`aud`).
    pub principals: [&'a str; 2],
}

/// The answer of a revocation source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationState {
    /// Nothing the writ depends on is revoked.
    Valid,
    /// Something is revoked; the string says what (a `jti` or a principal).
    Revoked(String),
}

/// Revocation status of writs, their ancestors and principals.
pub trait RevocationStatus {
    /// Whether anything `subject` depends on is revoked.
    fn check(&self, subject: &RevocationSubject<'_>) -> Result<RevocationState, StateError>;
}

/// The outcome of one consumption attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// This use was recorded; `remaining` uses are left.
    Fresh {
        /// Uses left after this one.
        remaining: u32,
    },
    /// Every allowed use has already been spent.
    Exhausted,
    /// The store found the writ revoked inside the consuming transaction.
    Revoked,
}

/// Atomic check-and-consume of writ ids.
pub trait ReplayStore {
    /// Records one use of `jti`, which allows `uses` in all, unless they are spent. The record
    /// must be kept at least until `keep_until`. Implementations that also hold revocations
    /// check `subject` in the same transaction and answer [`Consumed::Revoked`].
    fn consume(
        &self,
        jti: &Jti,
        uses: u32,
        keep_until: UnixTime,
        subject: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError>;
}

/// An in-memory replay store: for tests and single-process gates without durability.
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    used: Mutex<HashMap<Jti, (u32, UnixTime)>>,
}

impl MemoryReplayStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets records whose `keep_until` is before `now`.
    pub fn purge(&self, now: UnixTime) -> Result<usize, StateError> {
        let mut used = self.used.lock().map_err(|_| poisoned())?;
        let before = used.len();
        used.retain(|_, (_, keep_until)| *keep_until >= now);
        Ok(before - used.len())
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.used.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn consume(
        &self,
        jti: &Jti,
        uses: u32,
        keep_until: UnixTime,
        _subject: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError> {
        let mut used = self.used.lock().map_err(|_| poisoned())?;
        let entry = used.entry(*jti).or_insert((0, keep_until));
        if entry.0 >= uses {
            return Ok(Consumed::Exhausted);
        }
        entry.0 += 1;
        entry.1 = entry.1.max(keep_until);
        Ok(Consumed::Fresh {
            remaining: uses - entry.0,
        })
    }
}

/// In-memory revocations of writ ids and principals.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    writs: RwLock<HashSet<Jti>>,
    principals: RwLock<HashSet<String>>,
}

impl MemoryRevocations {
    /// Nothing revoked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes a writ and, through lineage, its descendants.
    pub fn revoke_writ(&self, jti: Jti) {
        if let Ok(mut writs) = self.writs.write() {
            writs.insert(jti);
        }
    }

    /// Revokes every writ that names `principal`.
    pub fn revoke_principal(&self, principal: &str) {
        if let Ok(mut principals) = self.principals.write() {
            principals.insert(principal.to_owned());
        }
    }
}

impl RevocationStatus for MemoryRevocations {
    fn check(&self, subject: &RevocationSubject<'_>) -> Result<RevocationState, StateError> {
        let writs = self.writs.read().map_err(|_| poisoned())?;
        if let Some(id) = std::iter::once(subject.jti)
            .chain(subject.ancestors)
            .find(|id| writs.contains(id))
        {
            return Ok(RevocationState::Revoked(format!("writ `{id}`")));
        }
        let principals = self.principals.read().map_err(|_| poisoned())?;
        if let Some(p) = subject.principals.iter().find(|p| principals.contains(**p)) {
            return Ok(RevocationState::Revoked(format!("principal `{p}`")));
        }
        Ok(RevocationState::Valid)
    }
}

fn poisoned() -> StateError {
    StateError("in-memory state lock poisoned".into())
}
