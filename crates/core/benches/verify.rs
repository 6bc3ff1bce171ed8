//! What a gate pays to verify a writ, next to what the signature alone costs.
//!
//! * `verify/full_verify_1kib_args`: `Verifier::verify` of a writ whose arguments are about
//!   1 KiB of JSON. The expectation holds the arguments as a `Value`, so every call
//!   canonicalizes (RFC 8785) and hashes them, then consumes one use against a
//!   `MemoryReplayStore` after a `MemoryRevocations` check (the writ allows `u32::MAX` uses).
//! * `verify/bare_ed25519_verify`: `VerifyingKey::verify`, the strict Ed25519 check the
//!   verifier itself calls, over the same writ's signing input and signature.
//!
//! Goal: full ≤ 1.2 × bare. After criterion's own report the run prints the ratio of the
//! two, from the median time per iteration of the samples criterion took.
//!
//! Run: `cargo bench -p writ-core --bench verify`.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion};
use serde_json::{json, Value};
use writ_core::internal::parse_unverified;
use writ_core::{
    canonical, sign, Claims, Expectation, Jti, KeySet, MemoryReplayStore, MemoryRevocations,
    PolicyRef, Scope, Sha256Digest, SigningKey, StateChecks, UnixTime, Verifier,
};

const ISSUER: &str = "https://authority.example";
const AUDIENCE: &str = "gate-1";
const ACTION: &str = "exec";
const RESOURCE: &str = "/usr/bin/git";
const NOW: UnixTime = UnixTime(1_800_000_000);

/// Arguments of a realistic command, about 1 KiB in canonical form.
fn args_1kib() -> Value {
    json!({
        "argv": [
            "git", "-C", "/srv/build/workspaces/payments-service", "commit", "--signoff",
            "--author", "Build Agent <build-agent@example.com>",
            "-m", "Bump the ledger client to 4.2.1 and regenerate the lock file after the audit of transitive dependencies"
        ],
        "cwd": "/srv/build/workspaces/payments-service",
        "env": {
            "CARGO_HOME": "/home/build-agent/.cargo",
            "CI": "true",
            "GIT_AUTHOR_EMAIL": "build-agent@example.com",
            "GIT_AUTHOR_NAME": "Build Agent",
            "GIT_COMMITTER_EMAIL": "build-agent@example.com",
            "GIT_COMMITTER_NAME": "Build Agent",
            "HOME": "/home/build-agent",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "SSH_AUTH_SOCK": "/run/user/1000/ssh-agent.sock",
            "TERM": "dumb",
            "TZ": "UTC",
            "USER": "build-agent"
        },
        "limits": {"cpu_seconds": 120, "memory_mb": 512, "nice": 10, "open_files": 1024},
        "labels": ["release", "payments", "automated", "ticket:OPS-4711", "owner:platform-team"],
        "stdin": null,
        "timeout_ms": 30000,
        "dry_run": false,
        "retry": {"attempts": 3, "backoff_factor": 1.5, "jitter": 0.25}
    })
}

fn claims_for(args: &Value) -> Claims {
    Claims {
        iss: ISSUER.into(),
        sub: "build-agent".into(),
        aud: AUDIENCE.into(),
        iat: NOW.0,
        nbf: NOW.0,
        exp: NOW.0 + 60,
        jti: Jti::from_bytes([0x42; 16]),
        scope: Scope {
            action: ACTION.into(),
            resource: RESOURCE.into(),
            args_sha256: canonical::args_digest(args).expect("bench args are exact"),
        },
        pol: PolicyRef {
            digest: Sha256Digest::of(b"policy set v1"),
            ids: vec!["allow-git".into()],
        },
        // Consumed once per iteration, for as many iterations as criterion takes.
        uses: u32::MAX,
        cnf: None,
        env: None,
        lin: None,
        del: None,
        gov: None,
    }
}

/// Wraps a routine with `iter_custom` and keeps each sample's time per iteration, so the
/// ratio of two benchmarks can be printed at the end of the run.
fn timed<'a, R>(
    samples: &'a RefCell<Vec<f64>>,
    mut routine: impl FnMut() -> R + 'a,
) -> impl FnMut(&mut Bencher<'_>) + 'a {
    move |b: &mut Bencher<'_>| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(routine());
            }
            let elapsed = start.elapsed();
            samples
                .borrow_mut()
                .push(elapsed.as_nanos() as f64 / iters as f64);
            elapsed
        })
    }
}

fn median(samples: &RefCell<Vec<f64>>) -> Option<f64> {
    let mut s = samples.borrow().clone();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

fn main() {
    let key = SigningKey::from_seed(&[0x11; 32]);
    let mut keys = KeySet::new();
    keys.insert(key.verifying_key()).expect("one key");
    let verifier = Verifier::new(ISSUER, keys);

    let args = args_1kib();
    let canonical_len = canonical::to_canonical_vec(&args).len();
    assert!(
        (960..=1100).contains(&canonical_len),
        "args are {canonical_len} bytes"
    );
    let writ = sign(&claims_for(&args), &key).expect("valid claims");

    let replay = MemoryReplayStore::new();
    let revocation = MemoryRevocations::new();
    let state = StateChecks::Consume {
        revocation: &revocation,
        replay: &replay,
    };
    let expect = Expectation::new(AUDIENCE, ACTION, RESOURCE, &args);
    assert!(
        verifier.verify(&writ, &expect, NOW, state).is_permit(),
        "bench writ must verify"
    );

    let parsed = parse_unverified(&writ).expect("bench writ parses");
    let public = key.verifying_key();
    let (signing_input, signature) = (parsed.signing_input(), parsed.signature());
    assert!(public.verify(signing_input, signature));

    let full = RefCell::new(Vec::new());
    let bare = RefCell::new(Vec::new());
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("verify");
        group.bench_function(
            "full_verify_1kib_args",
            timed(&full, || {
                let verdict = verifier.verify(black_box(&writ), black_box(&expect), NOW, state);
                assert!(verdict.is_permit());
                verdict
            }),
        );
        group.bench_function(
            "bare_ed25519_verify",
            timed(&bare, || {
                public.verify(black_box(signing_input), black_box(signature))
            }),
        );
        group.finish();
    }
    c.final_summary();

    if let (Some(full), Some(bare)) = (median(&full), median(&bare)) {
        println!(
            "\nwrit: {} bytes, canonical args: {canonical_len} bytes\n\
             full_verify_1kib_args: {:.2} µs   bare_ed25519_verify: {:.2} µs   \
             ratio full/bare: {:.3} (goal ≤ 1.2)",
            writ.len(),
            full / 1e3,
            bare / 1e3,
            full / bare,
        );
    }
}
