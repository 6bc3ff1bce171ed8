//! Proof of possession for consumption, in the manner of RFC 9449 (DPoP): the gate signs the
//! writ's digest, a fresh nonce and the time with the executor key the writ's `cnf` names,
//! and the authority answers with a signed verdict that echoes the nonce.
//!
//! Both are JWS compact serializations, EdDSA only, with their own `typ` so neither can be
//! taken for a writ: `writ-pop+jwt` (header carries the executor's public `jwk`, whose RFC 7638
//! thumbprint must equal `cnf.jkt`) and `writ-consumed+jwt` (signed by the authority's writ key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::deny::{Denial, DenyCode};
use crate::digest::Sha256Digest;
use crate::keys::{Jwk, KeyId, KeySet, SigningKey, VerifyingKey};
use crate::time::UnixTime;

/// `typ` of a proof of possession.
pub const POP_TYP: &str = "writ-pop+jwt";
/// `typ` of the authority's answer to a consumption.
pub const CONSUMED_TYP: &str = "writ-consumed+jwt";
/// Longest proof or answer accepted, in bytes.
const MAX_LEN: usize = 4096;

/// What a gate's proof of possession asserts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopClaims {
    /// SHA-256 of the compact writ being consumed.
    pub writ_sha256: Sha256Digest,
    /// The gate's fresh nonce (base64url), echoed in the answer.
    pub nonce: String,
    /// When the gate made the proof.
    pub iat: u64,
}

/// The authority's answer to `POST /v1/consume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeAnswer {
    /// `permit` (one use consumed) or `deny`.
    pub decision: String,
    /// The denial code when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The writ's id, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// SHA-256 of the compact writ.
    pub writ_sha256: Sha256Digest,
    /// The gate's nonce, echoed.
    pub nonce: String,
    /// When the authority answered.
    pub iat: u64,
    /// Uses left after this one, on permit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_uses: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PopHeader {
    alg: String,
    typ: String,
    jwk: Jwk,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerHeader {
    alg: String,
    typ: String,
    kid: String,
}

pub(crate) fn compact(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    let sig = key.sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    out
}

/// The decoded parts of a compact JWS and its signing input.
pub(crate) struct Parts<'a> {
    pub(crate) header: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: [u8; 64],
    pub(crate) input: &'a [u8],
}

pub(crate) fn split(token: &str) -> Option<Parts<'_>> {
    if token.len() > MAX_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(h).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()?;
    Some(Parts {
        header,
        payload,
        signature: sig,
        input: &token.as_bytes()[..h.len() + 1 + p.len()],
    })
}

/// A gate's proof of possession of `key` for the writ with digest `writ_sha256`.
pub fn sign_pop(key: &SigningKey, writ_sha256: Sha256Digest, nonce: &str, now: UnixTime) -> String {
    let header = PopHeader {
        alg: "EdDSA".into(),
        typ: POP_TYP.into(),
        jwk: key.verifying_key().to_jwk(),
    };
    let claims = PopClaims {
        writ_sha256,
        nonce: nonce.to_owned(),
        iat: now.as_secs(),
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
    compact(&header, &payload, key)
}

/// Checks a proof of possession: made by the key whose thumbprint is `jkt`, for this writ,
/// within `skew_secs` of `now`. Every failure is `runtime_identity_mismatch`.
pub fn verify_pop(
    pop: &str,
    jkt: &KeyId,
    writ_sha256: &Sha256Digest,
    now: UnixTime,
    skew_secs: u64,
) -> Result<PopClaims, Denial> {
    let fail = |why: &'static str| Denial::new(DenyCode::RuntimeIdentityMismatch, why);
    let Parts {
        header,
        payload,
        signature: sig,
        input,
    } = split(pop).ok_or_else(|| fail("proof of possession is not a compact JWS"))?;
    let header: PopHeader = serde_json::from_slice(&header)
        .map_err(|_| fail("proof of possession header is invalid"))?;
    if header.alg != "EdDSA" || header.typ != POP_TYP {
        return Err(fail(
            "proof of possession must be EdDSA with typ writ-pop+jwt",
        ));
    }
    let key = VerifyingKey::from_jwk(&header.jwk)
        .map_err(|_| fail("proof of possession key is invalid"))?;
    if key.kid() != jkt {
        return Err(fail(
            "proof of possession is by another key than the writ's cnf",
        ));
    }
    if !key.verify(input, &sig) {
        return Err(fail("proof of possession signature does not verify"));
    }
    let claims: PopClaims = serde_json::from_slice(&payload)
        .map_err(|_| fail("proof of possession claims are invalid"))?;
    if &claims.writ_sha256 != writ_sha256 {
        return Err(fail("proof of possession is for another writ"));
    }
    if claims.iat.abs_diff(now.as_secs()) > skew_secs {
        return Err(fail("proof of possession is not fresh"));
    }
    if claims.nonce.is_empty() || claims.nonce.len() > 256 {
        return Err(fail("proof of possession nonce is missing or too long"));
    }
    Ok(claims)
}

/// The authority's signed answer.
pub fn sign_answer(key: &SigningKey, answer: &ConsumeAnswer) -> String {
    let header = AnswerHeader {
        alg: "EdDSA".into(),
        typ: CONSUMED_TYP.into(),
        kid: key.kid().to_string(),
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(answer).unwrap_or_default();
    compact(&header, &payload, key)
}

/// Checks the authority's answer with the pinned key set: signed by a trusted key, for this
/// writ and this nonce. Anything else is an error, and the gate denies.
pub fn verify_answer(
    token: &str,
    keys: &KeySet,
    writ_sha256: &Sha256Digest,
    nonce: &str,
) -> Result<ConsumeAnswer, Denial> {
    let fail = |why: &'static str| Denial::new(DenyCode::StatusUnavailable, why);
    let Parts {
        header,
        payload,
        signature: sig,
        input,
    } = split(token).ok_or_else(|| fail("answer is not a compact JWS"))?;
    let header: AnswerHeader =
        serde_json::from_slice(&header).map_err(|_| fail("answer header is invalid"))?;
    if header.alg != "EdDSA" || header.typ != CONSUMED_TYP {
        return Err(fail("answer must be EdDSA with typ writ-consumed+jwt"));
    }
    let key = keys
        .get(&header.kid)
        .ok_or_else(|| fail("answer is signed by an unknown key"))?;
    if !key.verify(input, &sig) {
        return Err(fail("answer signature does not verify"));
    }
    let answer: ConsumeAnswer =
        serde_json::from_slice(&payload).map_err(|_| fail("answer claims are invalid"))?;
    if &answer.writ_sha256 != writ_sha256 || answer.nonce != nonce {
        return Err(fail("answer is for another writ or nonce"));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_binds_key_writ_and_time() {
        let executor = SigningKey::from_seed(&[1; 32]);
        let other = SigningKey::from_seed(&[2; 32]);
        let digest = Sha256Digest::of(b"writ");
        let now = UnixTime(1000);
        let pop = sign_pop(&executor, digest, "n1", now);
        assert!(verify_pop(&pop, executor.kid(), &digest, now, 5).is_ok());
        let code = |r: Result<PopClaims, Denial>| r.err().map(|d| d.code);
        let mismatch = Some(DenyCode::RuntimeIdentityMismatch);
        assert_eq!(
            code(verify_pop(&pop, other.kid(), &digest, now, 5)),
            mismatch
        );
        assert_eq!(
            code(verify_pop(
                &pop,
                executor.kid(),
                &Sha256Digest::of(b"x"),
                now,
                5
            )),
            mismatch
        );
        assert_eq!(
            code(verify_pop(&pop, executor.kid(), &digest, UnixTime(1006), 5)),
            mismatch
        );
        let stolen = sign_pop(&other, digest, "n1", now);
        assert_eq!(
            code(verify_pop(&stolen, executor.kid(), &digest, now, 5)),
            mismatch
        );
        let mut bad = pop.clone();
        bad.pop();
        bad.push(if pop.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            code(verify_pop(&bad, executor.kid(), &digest, now, 5)),
            mismatch
        );
    }

    #[test]
    fn answers_are_signed_and_echo_the_nonce() {
        let authority = SigningKey::from_seed(&[3; 32]);
        let mut keys = KeySet::new();
        keys.insert(authority.verifying_key()).unwrap();
        let digest = Sha256Digest::of(b"writ");
        let answer = ConsumeAnswer {
            decision: "permit".into(),
            code: None,
            jti: Some("j".into()),
            writ_sha256: digest,
            nonce: "n1".into(),
            iat: 5,
            remaining_uses: Some(0),
        };
        let token = sign_answer(&authority, &answer);
        assert_eq!(verify_answer(&token, &keys, &digest, "n1").unwrap(), answer);
        assert!(verify_answer(&token, &keys, &digest, "n2").is_err());
        let forged = sign_answer(&SigningKey::from_seed(&[4; 32]), &answer);
        assert!(verify_answer(&forged, &keys, &digest, "n1").is_err());
    }
}
