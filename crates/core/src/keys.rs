//! Ed25519 keys, their RFC 7638 key ids, JWKs and key sets.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::digest::Sha256Digest;
use crate::error::KeyError;

/// A key id: the RFC 7638 JWK thumbprint of an Ed25519 public key, base64url.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The RFC 7638 thumbprint of an Ed25519 public key.
    pub fn thumbprint(public: &[u8; 32]) -> Self {
        // RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
        let input = format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(public)
        );
        KeyId(URL_SAFE_NO_PAD.encode(Sha256Digest::of(input.as_bytes()).as_bytes()))
    }

    /// Wraps a key id read from a header or claim (not checked against any key).
    pub fn new(text: impl Into<String>) -> Self {
        KeyId(text.into())
    }

    /// The base64url text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// An Ed25519 private key. Zeroized on drop; `Debug` shows only its key id.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    kid: KeyId,
}

impl SigningKey {
    /// The key whose RFC 8032 private key (seed) is `seed`. Callers supply the randomness.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let kid = KeyId::thumbprint(inner.verifying_key().as_bytes());
        Self { inner, kid }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let inner = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Pkcs8)?;
        let kid = KeyId::thumbprint(inner.verifying_key().as_bytes());
        Ok(Self { inner, kid })
    }

    /// The PKCS#8 PEM text of this key; the buffer is zeroized on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.inner
            .to_pkcs8_pem(Default::default())
            .map_err(|_| KeyError::Pkcs8)
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: self.inner.verifying_key(),
            kid: self.kid.clone(),
        }
    }

    /// The key id (RFC 7638 thumbprint of the public key).
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// Signs `message` (pure Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.inner.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key and its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: ed25519_dalek::VerifyingKey,
    kid: KeyId,
}

impl VerifyingKey {
    /// Reads a 32-byte encoded Ed25519 point; weak (small-order) keys are refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let inner =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::PublicKey)?;
        if inner.is_weak() {
            return Err(KeyError::PublicKey);
        }
        Ok(Self {
            inner,
            kid: KeyId::thumbprint(bytes),
        })
    }

    /// The 32-byte encoded point.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.inner.as_bytes()
    }

    /// The key id.
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// Strict Ed25519 verification (RFC 8032 §5.1.7 with canonical `S` and no small-order
    /// `R` or key): the one signature check every writ and benchmark uses.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.inner.verify_strict(message, &signature).is_ok()
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.as_bytes()),
            kid: Some(self.kid.clone()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
            d: None,
        }
    }

    /// Reads a public JWK. A `kid`, if present, must be the RFC 7638 thumbprint; private
    /// material is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            return Err(KeyError::Unsupported {
                kty: jwk.kty.clone(),
                crv: jwk.crv.clone(),
            });
        }
        if jwk.d.is_some() {
            return Err(KeyError::PrivateMaterial);
        }
        if let Some(alg) = &jwk.alg {
            if alg != "EdDSA" {
                return Err(KeyError::Jwk(format!("`alg` `{alg}` is not EdDSA")));
            }
        }
        if let Some(use_) = &jwk.use_ {
            if use_ != "sig" {
                return Err(KeyError::Jwk(format!("`use` `{use_}` is not sig")));
            }
        }
        let raw = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .map_err(|_| KeyError::Jwk("`x` is not base64url".into()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Jwk("`x` is not 32 bytes".into()))?;
        let key = Self::from_bytes(&bytes)?;
        if let Some(kid) = &jwk.kid {
            if kid != &key.kid {
                return Err(KeyError::KidMismatch {
                    found: kid.to_string(),
                    expected: key.kid.to_string(),
                });
            }
        }
        Ok(key)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.kid)
    }
}

/// A JSON Web Key for an Ed25519 key (RFC 8037). Unknown members are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id (RFC 7638 thumbprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<KeyId>,
    /// `EdDSA` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig` when present.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Private key material; never accepted in a key set.
    #[serde(default, skip_serializing)]
    pub d: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwksDocument {
    keys: Vec<Jwk>,
}

/// The keys a verifier trusts, by key id.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<KeyId, VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; a key already present is refused.
    pub fn insert(&mut self, key: VerifyingKey) -> Result<(), KeyError> {
        if self.keys.contains_key(key.kid()) {
            return Err(KeyError::Duplicate(key.kid().to_string()));
        }
        self.keys.insert(key.kid().clone(), key);
        Ok(())
    }

    /// Reads a JWKS document (`{"keys":[…]}`). Every key must be a valid public Ed25519 JWK.
    pub fn from_jwks_json(text: &str) -> Result<Self, KeyError> {
        crate::canonical::parse_strict(text).map_err(|e| KeyError::Jwk(e.to_string()))?;
        let doc: JwksDocument =
            serde_json::from_str(text).map_err(|e| KeyError::Jwk(e.to_string()))?;
        let mut set = Self::new();
        for jwk in &doc.keys {
            set.insert(VerifyingKey::from_jwk(jwk)?)?;
        }
        Ok(set)
    }

    /// The JWKS document of this set.
    pub fn to_jwks_json(&self) -> String {
        let doc = JwksDocument {
            keys: self.keys.values().map(VerifyingKey::to_jwk).collect(),
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        // Key ids are short; a linear scan avoids allocating a KeyId for the lookup.
        self.keys
            .iter()
            .find(|(id, _)| id.as_str() == kid)
            .map(|(_, k)| k)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, by key id.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC8032: &str = include_str!("../../../testdata/rfc8032.json");

    #[test]
    fn rfc8032_section_7_1_vectors() {
        let doc: serde_json::Value = serde_json::from_str(RFC8032).unwrap();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 5);
        for v in vectors {
            let hex_field = |name: &str| hex::decode(v[name].as_str().unwrap()).unwrap();
            let seed: [u8; 32] = hex_field("secret_key").try_into().unwrap();
            let key = SigningKey::from_seed(&seed);
            let public = key.verifying_key();
            assert_eq!(
                public.as_bytes().as_slice(),
                hex_field("public_key"),
                "{}",
                v["name"]
            );
            let message = hex_field("message");
            let signature: [u8; 64] = hex_field("signature").try_into().unwrap();
            assert_eq!(key.sign(&message), signature, "{}", v["name"]);
            assert!(public.verify(&message, &signature), "{}", v["name"]);
            let mut bad = signature;
            bad[63] ^= 0x01;
            assert!(!public.verify(&message, &bad), "{}", v["name"]);
        }
    }

    #[test]
    fn debug_never_shows_secret_material() {
        let key = SigningKey::from_seed(&[7u8; 32]);
        let text = format!("{key:?}");
        assert!(text.contains(key.kid().as_str()));
        assert!(!text.contains("07"), "{text}");
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(!text.contains(pem.lines().nth(1).unwrap()));
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = SigningKey::from_seed(&[9u8; 32]);
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.kid(), key.kid());
        assert_eq!(back.sign(b"m"), key.sign(b"m"));
        assert_eq!(
            SigningKey::from_pkcs8_pem("nonsense").unwrap_err(),
            KeyError::Pkcs8
        );
    }

    #[test]
    fn jwks_round_trip_and_refusals() {
        let a = SigningKey::from_seed(&[1u8; 32]).verifying_key();
        let b = SigningKey::from_seed(&[2u8; 32]).verifying_key();
        let mut set = KeySet::new();
        set.insert(a.clone()).unwrap();
        set.insert(b.clone()).unwrap();
        assert_eq!(
            set.insert(a.clone()),
            Err(KeyError::Duplicate(a.kid().to_string()))
        );
        let back = KeySet::from_jwks_json(&set.to_jwks_json()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.get(a.kid().as_str()), Some(&a));

        let x = URL_SAFE_NO_PAD.encode(a.as_bytes());
        let wrong_kid =
            format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"nope"}}]}}"#);
        assert!(matches!(
            KeySet::from_jwks_json(&wrong_kid),
            Err(KeyError::KidMismatch { .. })
        ));
        let private = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","d":"AA"}}]}}"#);
        assert_eq!(
            KeySet::from_jwks_json(&private).unwrap_err(),
            KeyError::PrivateMaterial
        );
        let ec = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}"#;
        assert!(matches!(
            KeySet::from_jwks_json(ec),
            Err(KeyError::Unsupported { .. })
        ));
        let dup = format!(r#"{{"keys":[{{"kty":"OKP","kty":"OKP","crv":"Ed25519","x":"{x}"}}]}}"#);
        assert!(matches!(
            KeySet::from_jwks_json(&dup),
            Err(KeyError::Jwk(_))
        ));
        // A small-order point is not a key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = URL_SAFE_NO_PAD.encode(identity);
        let weak = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{weak}"}}]}}"#);
        assert_eq!(
            KeySet::from_jwks_json(&weak).unwrap_err(),
            KeyError::PublicKey
        );
    }
}
