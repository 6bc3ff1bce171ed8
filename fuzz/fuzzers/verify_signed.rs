//! Arbitrary bytes as the payload of a writ that the trusted issuer really signed, so every
//! check after the signature (claims, time, scope, policy, bindings, lineage, state) sees
//! fuzzed claims. Never panics; what is permitted is for the fixed gate (see `common`).
#![no_main]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use writ_core::WRIT_TYP;

fuzz_target!(|payload: &[u8]| {
    let key = common::issuer_key();
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"{WRIT_TYP}","kid":"{}"}}"#,
        key.kid()
    );
    let mut writ = URL_SAFE_NO_PAD.encode(header);
    writ.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut writ);
    let signature = key.sign(writ.as_bytes());
    writ.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut writ);
    let _ = common::verify(&writ);
});
