//! Full `Verifier::verify` on arbitrary UTF-8: never panics, never consumes on a denial, and
//! permits only writs for the fixed gate (see `common`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = common::verify(text);
});
