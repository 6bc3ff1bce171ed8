//! Consumptions marked and logged in one transaction of the log writer.

use std::sync::mpsc;

use writ_core::{Consumed, Jti, ReplayStore, RevocationSubject, UnixTime};
use writ_log::NoteSigner;
use writ_store::{ConsumeJob, LogStore, SqliteLog, SqliteReplayStore, StoreError};

fn signer() -> NoteSigner {
    NoteSigner::from_seed("writ.test/log", &[7; 32]).unwrap()
}

/// A single-use consumption of `jti` whose entry is `entry` of the outcome (shared with the
/// PostgreSQL log tests).
pub(crate) fn job(
    jti: Jti,
    entry: impl FnOnce(Consumed) -> Vec<u8> + Send + 'static,
) -> ConsumeJob {
    ConsumeJob {
        jti,
        uses: 1,
        keep_until: UnixTime(u64::MAX / 4),
        ancestors: Vec::new(),
        principals: ["agent".into(), "gate".into()],
        entry: Box::new(entry),
    }
}

pub(crate) fn entry_for(c: Consumed) -> Vec<u8> {
    let outcome = match c {
        Consumed::Fresh { .. } => "fresh",
        Consumed::Exhausted => "exhausted",
        Consumed::Revoked => "revoked",
    };
    format!(r#"{{"outcome":"{outcome}","type":"consumption"}}"#).into_bytes()
}

/// Runs `job` through `log`'s writer and waits for its outcome and index.
pub(crate) fn consume(log: &dyn LogStore, job: ConsumeJob) -> Result<(Consumed, u64), StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    log.consume_then(
        job,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.recv().unwrap()
}

#[test]
fn a_use_is_spent_exactly_when_its_entry_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("writ.db");
    let log = SqliteLog::create(&db, "writ.test/log", signer()).unwrap();
    let replay = SqliteReplayStore::open(&db).unwrap();
    let jti = Jti::from_bytes([1; 16]);

    // An entry that is not canonical fails the job: nothing is spent, nothing logged.
    let failed = consume(
        &log,
        job(jti, |_| b"{ \"type\": \"consumption\" }".to_vec()),
    );
    assert!(
        matches!(failed, Err(StoreError::InvalidEntry)),
        "{failed:?}"
    );
    assert_eq!(replay.consumed_count().unwrap(), 0);
    assert_eq!(log.size().unwrap(), 0);

    let (first, index) = consume(&log, job(jti, entry_for)).unwrap();
    assert_eq!(first, Consumed::Fresh { remaining: 0 });
    assert_eq!(log.entry(index).unwrap(), entry_for(first));
    let (second, index) = consume(&log, job(jti, entry_for)).unwrap();
    assert_eq!(second, Consumed::Exhausted);
    assert_eq!(log.entry(index).unwrap(), entry_for(second));
    // The replay store sees the same mark (one database).
    let subject = RevocationSubject {
        jti: &jti,
        ancestors: &[],
        principals: ["agent", "gate"],
    };
    assert_eq!(
        replay.consume(&jti, 1, UnixTime(u64::MAX / 4), &subject),
        Ok(Consumed::Exhausted)
    );

    // A revocation committed through the replay store holds in the writer's transaction.
    let other = Jti::from_bytes([2; 16]);
    replay.revoke_principal("gate").unwrap();
    let (revoked, _) = consume(&log, job(other, entry_for)).unwrap();
    assert_eq!(revoked, Consumed::Revoked);
    assert_eq!(log.audit(None).unwrap().finding, None);
}

#[test]
fn consumptions_and_appends_share_batches_with_gap_free_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("writ.db");
    let log = std::sync::Arc::new(SqliteLog::create(&db, "writ.test/log", signer()).unwrap());
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut indexes = Vec::new();
                for i in 0..20u8 {
                    if i % 2 == 0 {
                        let entry = format!(r#"{{"n":{i},"t":{t},"type":"note"}}"#).into_bytes();
                        indexes.push(log.append(entry).unwrap());
                    } else {
                        let mut id = [0u8; 16];
                        id[0] = t;
                        id[1] = i;
                        // A failing job in the middle must not disturb the others.
                        let (_, index) =
                            consume(&*log, job(Jti::from_bytes(id), entry_for)).unwrap();
                        indexes.push(index);
                        assert!(consume(&*log, job(Jti::from_bytes(id), |_| Vec::new())).is_err());
                    }
                }
                indexes
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..160).collect::<Vec<u64>>());
    assert_eq!(log.size().unwrap(), 160);
    assert_eq!(log.audit(None).unwrap().finding, None);
}
