//! Several authority nodes on one PostgreSQL database: each node is its own [`PgDatabase`]
//! (own runtime, own connection pool), and they race for the same rows. Every check-then-write
//! must hold across them: one settlement per request, one vote per approver, one principal
//! per name, never a retired policy set in force.
//!
//! Skipped (and saying so) without `WRIT_TEST_DATABASE_URL`.

use std::sync::{Arc, Barrier};
use std::thread;

use serde_json::json;
use writ_core::Sha256Digest;
use writ_store::postgres::{PgApprovals, PgPolicies, PgPrincipals};
use writ_store::{
    ApprovalStore, PgDatabase, PolicyStore, PolicyTexts, PrincipalStore, RequestState, Role,
    StoreError,
};

use crate::behaviour::{pg_nodes, request, vote};

const ROUNDS: usize = 25;

/// The same store at two nodes on one fresh schema, or `None` (after saying so).
fn two_nodes<S>(test: &str, open: impl Fn(Arc<PgDatabase>) -> S) -> Option<Vec<Arc<S>>> {
    let nodes = pg_nodes(test, 2)?;
    Some(nodes.into_iter().map(|db| Arc::new(open(db))).collect())
}

/// Runs `a` and `b` on two threads released at the same moment; their results.
fn race<S, A, B, RA, RB>(stores: &[Arc<S>], a: A, b: B) -> (RA, RB)
where
    S: ?Sized + Send + Sync + 'static,
    A: FnOnce(&S) -> RA + Send + 'static,
    B: FnOnce(&S) -> RB + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let (sa, sb) = (stores[0].clone(), stores[1].clone());
    let (ba, bb) = (barrier.clone(), barrier);
    let ha = thread::spawn(move || {
        ba.wait();
        a(&sa)
    });
    let hb = thread::spawn(move || {
        bb.wait();
        b(&sb)
    });
    (ha.join().unwrap(), hb.join().unwrap())
}

#[test]
fn two_nodes_settle_one_request_once() {
    let Some(stores) = two_nodes("two_nodes_settle_one_request_once", PgApprovals::new) else {
        return;
    };
    for round in 0..ROUNDS {
        let id = format!("settle-{round}");
        stores[0].create(&request(&id, 100, 1000)).unwrap();
        let (ia, ib) = (id.clone(), id.clone());
        let (a, b) = race(
            &stores,
            move |s| {
                s.settle(&ia, RequestState::Permit, &json!({"by": "a"}))
                    .unwrap()
            },
            move |s| {
                s.settle(&ib, RequestState::Expired, &json!({"by": "b"}))
                    .unwrap()
            },
        );
        assert!(
            a ^ b,
            "round {round}: exactly one settlement wins ({a}, {b})"
        );
        // Both nodes see the winner's state and outcome.
        let (state, by) = if a {
            (RequestState::Permit, "a")
        } else {
            (RequestState::Expired, "b")
        };
        for s in &stores {
            let r = s.get(&id).unwrap().unwrap();
            assert_eq!((r.state, r.outcome), (state, Some(json!({"by": by}))));
        }
    }
}

#[test]
fn one_approver_voting_at_two_nodes_counts_once() {
    let Some(stores) = two_nodes(
        "one_approver_voting_at_two_nodes_counts_once",
        PgApprovals::new,
    ) else {
        return;
    };
    for round in 0..ROUNDS {
        let id = format!("vote-{round}");
        stores[0].create(&request(&id, 100, 1000)).unwrap();
        // The same approver with two signatures, then two approvers with one signature.
        let (ia, ib) = (id.clone(), id.clone());
        let (sa, sb) = (format!("sig-{round}-a"), format!("sig-{round}-b"));
        let (a, b) = race(
            &stores,
            move |s| s.vote(&ia, &vote("alice", &sa, 200)),
            move |s| s.vote(&ib, &vote("alice", &sb, 201)),
        );
        let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "round {round}: {a:?} {b:?}");
        assert!(
            [&a, &b]
                .iter()
                .any(|r| matches!(r, Err(StoreError::DuplicateVote(who)) if who == "alice")),
            "round {round}: {a:?} {b:?}"
        );
        let (ia, ib) = (id.clone(), id.clone());
        let sig = format!("sig-{round}-shared");
        let sig2 = sig.clone();
        let (a, b) = race(
            &stores,
            move |s| s.vote(&ia, &vote("bob", &sig, 300)),
            move |s| s.vote(&ib, &vote("carol", &sig2, 300)),
        );
        assert_eq!(
            [&a, &b].iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {a:?} {b:?}"
        );
        assert!([&a, &b]
            .iter()
            .any(|r| matches!(r, Err(StoreError::DuplicateVote(_)))));
        let votes = stores[1].get(&id).unwrap().unwrap().votes;
        assert_eq!(votes.len(), 2, "round {round}: {votes:?}");
    }
}

#[test]
fn a_vote_racing_a_settlement_lands_before_it_or_not_at_all() {
    let Some(stores) = two_nodes(
        "a_vote_racing_a_settlement_lands_before_it_or_not_at_all",
        PgApprovals::new,
    ) else {
        return;
    };
    for round in 0..ROUNDS {
        let id = format!("close-{round}");
        stores[0].create(&request(&id, 100, 1000)).unwrap();
        let (ia, ib) = (id.clone(), id.clone());
        let sig = format!("sig-close-{round}");
        let (voted, settled) = race(
            &stores,
            move |s| s.vote(&ia, &vote("alice", &sig, 200)),
            move |s| s.settle(&ib, RequestState::Rejected, &json!({})).unwrap(),
        );
        assert!(settled);
        let votes = stores[0].get(&id).unwrap().unwrap().votes;
        match voted {
            Ok(()) => assert_eq!(votes.len(), 1, "round {round}"),
            Err(StoreError::RequestClosed(state)) => {
                assert_eq!(state, "rejected");
                assert!(votes.is_empty(), "round {round}: {votes:?}");
            }
            Err(e) => panic!("round {round}: {e}"),
        }
    }
}

#[test]
fn two_nodes_register_one_name_once() {
    let Some(stores) = two_nodes("two_nodes_register_one_name_once", PgPrincipals::new) else {
        return;
    };
    for round in 0..ROUNDS {
        let name = format!("agent-{round}");
        let (ta, tb) = (
            Sha256Digest::of(format!("{name}-a").as_bytes()),
            Sha256Digest::of(format!("{name}-b").as_bytes()),
        );
        let (na, nb) = (name.clone(), name.clone());
        let (a, b) = race(
            &stores,
            move |s| s.add(&na, Role::Agent, &[], &ta, 1),
            move |s| s.add(&nb, Role::Executor, &[], &tb, 2),
        );
        assert_eq!(
            [&a, &b].iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {a:?} {b:?}"
        );
        let (winner, loser) = match (&a, &b) {
            (Ok(p), Err(e)) => (p, e),
            (Err(e), Ok(p)) => (p, e),
            _ => unreachable!(),
        };
        assert!(
            matches!(loser, StoreError::PrincipalExists(n) if *n == name),
            "round {round}: {loser:?}"
        );
        // Only the winner's token authenticates, at either node.
        let (won, lost) = if a.is_ok() { (ta, tb) } else { (tb, ta) };
        for s in &stores {
            assert_eq!(s.get(&name).unwrap().as_ref(), Some(winner));
            assert_eq!(s.authenticate(&won).unwrap().as_ref(), Some(winner));
            assert_eq!(s.authenticate(&lost).unwrap(), None);
        }
    }
}

#[test]
fn apply_and_retire_racing_never_leave_a_retired_set_in_force() {
    let Some(stores) = two_nodes(
        "apply_and_retire_racing_never_leave_a_retired_set_in_force",
        PgPolicies::new,
    ) else {
        return;
    };
    let texts = |n: usize| PolicyTexts {
        schema: String::new(),
        policies: format!("// {n}"),
        entities: "[]".into(),
    };
    let (mut applied_first, mut retired_first) = (0, 0);
    for round in 0..ROUNDS {
        // Something else is in force, so the contested digest may be retired.
        let filler = Sha256Digest::of(format!("filler-{round}").as_bytes());
        stores[0].apply(&filler, &texts(1000 + round), 1).unwrap();
        let contested = Sha256Digest::of(format!("contested-{round}").as_bytes());
        let (a, b) = race(
            &stores,
            move |s| s.apply(&contested, &texts(round), 2),
            move |s| s.retire(&contested, 2),
        );
        match (&a, &b) {
            // Applied first: then it was in force and could not be retired.
            (Ok(()), Err(StoreError::InForce(hex))) if *hex == contested.to_hex() => {
                applied_first += 1;
            }
            // Retired first: then it could not be applied.
            (Err(StoreError::Retired(hex)), Ok(true)) if *hex == contested.to_hex() => {
                retired_first += 1;
            }
            _ => panic!("round {round}: apply {a:?}, retire {b:?}"),
        }
        for s in &stores {
            let (in_force, _) = s.in_force().unwrap().unwrap();
            assert!(!s.retired().unwrap().contains(&in_force), "round {round}");
        }
    }
    println!("apply won {applied_first} times, retire won {retired_first} times");
}
