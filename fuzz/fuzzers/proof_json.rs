//! Proof files on arbitrary UTF-8: decoding and verifying never panic, and a proof that
//! decodes re-encodes to a file that decodes to the same proof.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(proof) = writ_log::Proof::from_json(text) {
        let _ = proof.verify();
        let again = writ_log::Proof::from_json(&proof.to_json()).expect("own output decodes");
        assert_eq!(again, proof);
    }
});
