//! Signed notes and checkpoints on arbitrary bytes: opening never panics, and nothing opens
//! without a real signature by the one trusted key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_log::{Checkpoint, NoteSigner, SignedNote};

fuzz_target!(|bytes: &[u8]| {
    let signer = NoteSigner::from_seed("fuzz.example/log", &[7; 32]).expect("valid name");
    let verifiers = [signer.verifier()];
    if let Ok(note) = SignedNote::open(bytes, &verifiers) {
        assert!(note.is_signed_by(&verifiers[0]));
    }
    let _ = Checkpoint::open(bytes, &verifiers);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = Checkpoint::parse(text);
    }
});
