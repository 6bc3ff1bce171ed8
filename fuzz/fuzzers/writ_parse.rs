//! `parse_unverified` on arbitrary UTF-8: never panics, whatever it answers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = writ_core::internal::parse_unverified(text);
});
