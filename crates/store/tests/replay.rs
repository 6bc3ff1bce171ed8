//! The SQLite replay store: atomic, durable, shared between processes and threads.

use std::sync::{Arc, Barrier};

use writ_core::{
    Consumed, Jti, ReplayStore, RevocationState, RevocationStatus, RevocationSubject, UnixTime,
};
use writ_store::SqliteReplayStore;

fn subject<'a>(jti: &'a Jti, ancestors: &'a [Jti]) -> RevocationSubject<'a> {
    RevocationSubject {
        jti,
        ancestors,
        principals: ["agent", "gate-1"],
    }
}

const KEEP: UnixTime = UnixTime(2_000_000_000);

#[test]
fn consumes_each_use_once_and_remembers_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.db");
    let one = Jti::from_bytes([1; 16]);
    let three = Jti::from_bytes([3; 16]);
    {
        let store = SqliteReplayStore::open(&path).unwrap();
        assert_eq!(
            store.consume(&one, 1, KEEP, &subject(&one, &[])),
            Ok(Consumed::Fresh { remaining: 0 })
        );
        assert_eq!(
            store.consume(&one, 1, KEEP, &subject(&one, &[])),
            Ok(Consumed::Exhausted)
        );
        assert_eq!(
            store.consume(&three, 3, KEEP, &subject(&three, &[])),
            Ok(Consumed::Fresh { remaining: 2 })
        );
    }
    // A new process (here: a new connection) sees every acknowledged use.
    let store = SqliteReplayStore::open(&path).unwrap();
    assert_eq!(
        store.consume(&one, 1, KEEP, &subject(&one, &[])),
        Ok(Consumed::Exhausted)
    );
    assert_eq!(
        store.consume(&three, 3, KEEP, &subject(&three, &[])),
        Ok(Consumed::Fresh { remaining: 1 })
    );
    assert_eq!(
        store.consume(&three, 3, KEEP, &subject(&three, &[])),
        Ok(Consumed::Fresh { remaining: 0 })
    );
    assert_eq!(
        store.consume(&three, 3, KEEP, &subject(&three, &[])),
        Ok(Consumed::Exhausted)
    );
    assert_eq!(store.consumed_count().unwrap(), 2);
}

#[test]
fn revocation_is_read_inside_the_consuming_transaction() {
    let store = SqliteReplayStore::open_in_memory().unwrap();
    let root = Jti::from_bytes([7; 16]);
    let child = Jti::from_bytes([8; 16]);
    let ancestors = [root];
    assert_eq!(
        store.check(&subject(&child, &ancestors)),
        Ok(RevocationState::Valid)
    );
    store.revoke_writ(&root).unwrap();
    assert!(matches!(
        store.check(&subject(&child, &ancestors)),
        Ok(RevocationState::Revoked(_))
    ));
    assert_eq!(
        store.consume(&child, 1, KEEP, &subject(&child, &ancestors)),
        Ok(Consumed::Revoked)
    );
    // Revoked consumption records nothing.
    assert_eq!(store.consumed_count().unwrap(), 0);

    let other = Jti::from_bytes([9; 16]);
    store.revoke_principal("gate-1").unwrap();
    assert!(matches!(
        store.check(&subject(&other, &[])),
        Ok(RevocationState::Revoked(_))
    ));
    assert_eq!(
        store.consume(&other, 1, KEEP, &subject(&other, &[])),
        Ok(Consumed::Revoked)
    );
}

#[test]
fn purge_forgets_only_expired_ids() {
    let store = SqliteReplayStore::open_in_memory().unwrap();
    let old = Jti::from_bytes([1; 16]);
    let new = Jti::from_bytes([2; 16]);
    store
        .consume(&old, 1, UnixTime(100), &subject(&old, &[]))
        .unwrap();
    store
        .consume(&new, 1, UnixTime(300), &subject(&new, &[]))
        .unwrap();
    assert_eq!(store.purge(UnixTime(200)).unwrap(), 1);
    assert_eq!(store.consumed_count().unwrap(), 1);
    assert_eq!(
        store.consume(&new, 1, UnixTime(300), &subject(&new, &[])),
        Ok(Consumed::Exhausted)
    );
}

#[test]
fn racing_connections_consume_a_single_use_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.db");
    SqliteReplayStore::open(&path).unwrap();
    const THREADS: usize = 6;
    for round in 0..20u8 {
        let jti = Jti::from_bytes([round; 16]);
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let store = SqliteReplayStore::open(&path).unwrap();
                    barrier.wait();
                    store.consume(&jti, 1, KEEP, &subject(&jti, &[])).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Consumed> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let fresh = outcomes
            .iter()
            .filter(|c| matches!(c, Consumed::Fresh { .. }))
            .count();
        assert_eq!(fresh, 1, "round {round}: {outcomes:?}");
    }
}

#[test]
fn an_unopenable_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    assert!(SqliteReplayStore::open(&dir.path().join("missing").join("replay.db")).is_err());
    // A file that is not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 4096]).unwrap();
    assert!(SqliteReplayStore::open(&junk).is_err());
}
