//! Execution receipts: after a gate ran an action, it signs what happened (exit status,
//! duration, output digests) with its executor key, naming the writ it ran under. The
//! authority logs the receipt as it was signed, so an auditor can check it without trusting
//! the authority.
//!
//! A receipt is a JWS compact serialization, EdDSA only, `typ` `writ-receipt+jwt`, whose
//! header carries the executor's public `jwk` (as a proof of possession does).

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::keys::{Jwk, KeyId, SigningKey, VerifyingKey};
use crate::pop::{compact, split, Parts};

/// The `typ` of an execution receipt.
pub const RECEIPT_TYP: &str = "writ-receipt+jwt";

/// What a gate reports about one execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The writ's id.
    pub jti: String,
    /// SHA-256 of the compact writ.
    pub writ_sha256: Sha256Digest,
    /// The exit status; absent when the process was ended by a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// The signal that ended the process, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock duration of the execution, in milliseconds.
    pub duration_ms: u64,
    /// SHA-256 of everything written to stdout.
    pub stdout_sha256: Sha256Digest,
    /// SHA-256 of everything written to stderr.
    pub stderr_sha256: Sha256Digest,
    /// When the receipt was signed.
    pub iat: u64,
}

/// Why a receipt is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a compact JWS of the right size and shape.
    #[error("receipt is not a compact JWS")]
    Malformed,
    /// The header is not EdDSA, `writ-receipt+jwt` with a `jwk`.
    #[error("receipt must be EdDSA with typ writ-receipt+jwt and the executor's jwk")]
    Header,
    /// The signature does not verify under the key in the header.
    #[error("receipt signature does not verify")]
    Signature,
    /// The claims are missing, unknown or of the wrong type.
    #[error("receipt claims are invalid")]
    Claims,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptHeader {
    alg: String,
    typ: String,
    jwk: Jwk,
}

/// Signs `receipt` with the executor's key.
pub fn sign_receipt(key: &SigningKey, receipt: &Receipt) -> String {
    let header = ReceiptHeader {
        alg: "EdDSA".into(),
        typ: RECEIPT_TYP.into(),
        jwk: key.verifying_key().to_jwk(),
    };
    // Serializing these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(receipt).unwrap_or_default();
    compact(&header, &payload, key)
}

/// Checks a receipt's signature and returns it with the thumbprint of the key that signed it;
/// the caller decides whether that key is the executor's.
pub fn verify_receipt(token: &str) -> Result<(Receipt, KeyId), ReceiptError> {
    let Parts {
        header,
        payload,
        signature,
        input,
    } = split(token).ok_or(ReceiptError::Malformed)?;
    let header: ReceiptHeader =
        serde_json::from_slice(&header).map_err(|_| ReceiptError::Header)?;
    if header.alg != "EdDSA" || header.typ != RECEIPT_TYP {
        return Err(ReceiptError::Header);
    }
    let key = VerifyingKey::from_jwk(&header.jwk).map_err(|_| ReceiptError::Header)?;
    if !key.verify(input, &signature) {
        return Err(ReceiptError::Signature);
    }
    let receipt: Receipt = serde_json::from_slice(&payload).map_err(|_| ReceiptError::Claims)?;
    Ok((receipt, key.kid().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            jti: "j".into(),
            writ_sha256: Sha256Digest::of(b"writ"),
            exit_status: Some(0),
            signal: None,
            duration_ms: 12,
            stdout_sha256: Sha256Digest::of(b"out"),
            stderr_sha256: Sha256Digest::of(b""),
            iat: 1000,
        }
    }

    #[test]
    fn a_receipt_names_its_signer_and_resists_tampering() {
        let executor = SigningKey::from_seed(&[7; 32]);
        let token = sign_receipt(&executor, &receipt());
        let (back, kid) = verify_receipt(&token).unwrap();
        assert_eq!(back, receipt());
        assert_eq!(&kid, executor.kid());

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut changed = receipt();
        changed.exit_status = Some(1);
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&changed).unwrap(),
        );
        assert_eq!(
            verify_receipt(&parts.join(".")),
            Err(ReceiptError::Signature)
        );
        assert_eq!(verify_receipt("a.b"), Err(ReceiptError::Malformed));
        // A proof of possession is no receipt.
        let pop = crate::pop::sign_pop(
            &executor,
            Sha256Digest::of(b"writ"),
            "n",
            crate::UnixTime(1),
        );
        assert_eq!(verify_receipt(&pop), Err(ReceiptError::Header));
    }
}
