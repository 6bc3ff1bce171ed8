//! Human approvals: an approver's Ed25519 signature over the canonical JSON of
//! `{"type":"writ-approval-v1","authority":…,"request_id":…,"request_sha256":…,"expires":…}`.
//!
//! The request digest covers exactly what the writ will carry (action, resource, argument
//! digest, audience, `cnf`, `env`, `uses`), so an approval is for these terms and no others,
//! and anyone holding the writ can recompute it from the writ's claims. A rejection is the same
//! object with `type` `writ-rejection-v1`, so it is as attributable as an approval.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::canonical;
use crate::claims::Claims;
use crate::digest::Sha256Digest;
use crate::keys::{KeyId, SigningKey, VerifyingKey};

/// The `type` of an approval object.
pub const APPROVAL_TYPE: &str = "writ-approval-v1";
/// The `type` of a rejection object.
pub const REJECTION_TYPE: &str = "writ-rejection-v1";

/// Approve or reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalVerdict {
    /// Counts towards the quorum.
    #[serde(rename = "writ-approval-v1")]
    Approve,
    /// Ends the request.
    #[serde(rename = "writ-rejection-v1")]
    Reject,
}

impl ApprovalVerdict {
    /// The object's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalVerdict::Approve => APPROVAL_TYPE,
            ApprovalVerdict::Reject => REJECTION_TYPE,
        }
    }
}

/// What an approver signs. Unknown fields are refused: the signature covers these five and
/// nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalObject {
    /// Approve or reject.
    #[serde(rename = "type")]
    pub verdict: ApprovalVerdict,
    /// The authority's `iss`.
    pub authority: String,
    /// The pending request's id.
    pub request_id: String,
    /// The request digest ([`RequestTerms::digest`]).
    pub request_sha256: Sha256Digest,
    /// After this time (seconds since the epoch) the approval counts for nothing.
    pub expires: u64,
}

impl ApprovalObject {
    /// The bytes signed: RFC 8785 canonical JSON.
    pub fn signing_input(&self) -> Vec<u8> {
        canonical::to_canonical_vec(&json!({
            "type": self.verdict.as_str(),
            "authority": self.authority,
            "request_id": self.request_id,
            "request_sha256": self.request_sha256.to_hex(),
            "expires": self.expires,
        }))
    }

    /// Signs with the approver's key: the signature, base64url without padding.
    pub fn sign(&self, key: &SigningKey) -> String {
        URL_SAFE_NO_PAD.encode(key.sign(&self.signing_input()))
    }

    /// Whether `sig` (base64url) is `key`'s signature over this object.
    pub fn verify(&self, sig: &str, key: &VerifyingKey) -> Result<(), ApprovalError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ApprovalError::Signature)?;
        let sig: [u8; 64] = bytes.try_into().map_err(|_| ApprovalError::Signature)?;
        if key.verify(&self.signing_input(), &sig) {
            Ok(())
        } else {
            Err(ApprovalError::Signature)
        }
    }
}

/// Why an approval does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The signature is not base64url of 64 bytes, or does not verify under the key.
    #[error("the approval signature does not verify under the approver's key")]
    Signature,
}

/// The terms of a requested writ that approvers approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTerms<'a> {
    /// `scope.action`.
    pub action: &'a str,
    /// `scope.resource`.
    pub resource: &'a str,
    /// `scope.args_sha256`.
    pub args_sha256: &'a Sha256Digest,
    /// `aud`.
    pub aud: &'a str,
    /// `cnf.jkt`, when bound.
    pub cnf: Option<&'a KeyId>,
    /// `env`, when bound.
    pub env: Option<&'a Sha256Digest>,
    /// `uses`.
    pub uses: u32,
}

impl<'a> RequestTerms<'a> {
    /// The terms a writ carries.
    pub fn of_claims(claims: &'a Claims) -> Self {
        Self {
            action: &claims.scope.action,
            resource: &claims.scope.resource,
            args_sha256: &claims.scope.args_sha256,
            aud: &claims.aud,
            cnf: claims.cnf.as_ref().map(|c| &c.jkt),
            env: claims.env.as_ref(),
            uses: claims.uses,
        }
    }

    /// SHA-256 of the RFC 8785 canonical JSON of `{"action","resource","args_sha256","aud",
    /// "cnf","env","uses"}`, where `cnf` is the `jkt` (or null) and `env` the hex digest (or
    /// null).
    pub fn digest(&self) -> Sha256Digest {
        canonical::digest(&json!({
            "action": self.action,
            "resource": self.resource,
            "args_sha256": self.args_sha256.to_hex(),
            "aud": self.aud,
            "cnf": self.cnf.map(KeyId::as_str),
            "env": self.env.map(Sha256Digest::to_hex),
            "uses": self.uses,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> ApprovalObject {
        ApprovalObject {
            verdict: ApprovalVerdict::Approve,
            authority: "https://writ.example".into(),
            request_id: "r1".into(),
            request_sha256: Sha256Digest::of(b"terms"),
            expires: 1_900_000_000,
        }
    }

    #[test]
    fn the_signing_input_is_the_canonical_object_of_the_design() {
        let o = object();
        let text = String::from_utf8(o.signing_input()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"authority\":\"https://writ.example\",\"expires\":1900000000,\
                 \"request_id\":\"r1\",\"request_sha256\":\"{}\",\"type\":\"writ-approval-v1\"}}",
                Sha256Digest::of(b"terms").to_hex()
            )
        );
    }

    #[test]
    fn a_signature_holds_for_its_object_only() {
        let key = SigningKey::from_seed(&[7; 32]);
        let o = object();
        let sig = o.sign(&key);
        assert_eq!(o.verify(&sig, &key.verifying_key()), Ok(()));

        let other = SigningKey::from_seed(&[8; 32]);
        assert!(o.verify(&sig, &other.verifying_key()).is_err());
        for changed in [
            ApprovalObject {
                verdict: ApprovalVerdict::Reject,
                ..object()
            },
            ApprovalObject {
                authority: "https://other".into(),
                ..object()
            },
            ApprovalObject {
                request_id: "r2".into(),
                ..object()
            },
            ApprovalObject {
                request_sha256: Sha256Digest::of(b"other"),
                ..object()
            },
            ApprovalObject {
                expires: o.expires + 1,
                ..object()
            },
        ] {
            assert!(changed.verify(&sig, &key.verifying_key()).is_err());
        }
        assert!(o.verify("not base64!", &key.verifying_key()).is_err());
        assert!(o.verify("AAAA", &key.verifying_key()).is_err());
    }

    #[test]
    fn the_object_reads_back_and_refuses_unknown_fields() {
        let o = object();
        let text = String::from_utf8(o.signing_input()).unwrap();
        let back: ApprovalObject = serde_json::from_str(&text).unwrap();
        assert_eq!(back, o);
        let extra = text.replacen('{', "{\"uses\":9,", 1);
        assert!(serde_json::from_str::<ApprovalObject>(&extra).is_err());
        let wrong_type = text.replace("writ-approval-v1", "writ-approval-v2");
        assert!(serde_json::from_str::<ApprovalObject>(&wrong_type).is_err());
    }

    #[test]
    fn every_term_changes_the_digest() {
        let args = Sha256Digest::of(b"args");
        let env = Sha256Digest::of(b"env");
        let kid = KeyId::new("k");
        let base = RequestTerms {
            action: "pay",
            resource: "payee:acme",
            args_sha256: &args,
            aud: "payments-gate",
            cnf: Some(&kid),
            env: Some(&env),
            uses: 1,
        };
        let d = base.digest();
        let other_args = Sha256Digest::of(b"args2");
        let variants = [
            RequestTerms {
                action: "pay2",
                ..base.clone()
            },
            RequestTerms {
                resource: "payee:evil",
                ..base.clone()
            },
            RequestTerms {
                args_sha256: &other_args,
                ..base.clone()
            },
            RequestTerms {
                aud: "other-gate",
                ..base.clone()
            },
            RequestTerms {
                cnf: None,
                ..base.clone()
            },
            RequestTerms {
                env: None,
                ..base.clone()
            },
            RequestTerms {
                uses: 2,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.digest(), d);
        }
    }
}
