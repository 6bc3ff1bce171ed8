//! `canonical::parse_strict` then `to_canonical_string`: the canonical form of anything that
//! parses must parse again and canonicalize to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_core::canonical::{parse_strict, to_canonical_string};

fuzz_target!(|text: &str| {
    if let Ok(value) = parse_strict(text) {
        let once = to_canonical_string(&value);
        let again = parse_strict(&once).expect("canonical output is strict JSON");
        assert_eq!(
            once,
            to_canonical_string(&again),
            "canonical form is not a fixed point"
        );
    }
});
