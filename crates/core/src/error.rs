//! Errors of writ-core. Denials are not errors: see [`crate::Denial`].

use crate::canonical::CanonicalError;

/// Any error of writ-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key could not be read, written or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A writ could not be built.
    #[error(transparent)]
    Writ(#[from] WritError),
    /// A JSON value could not be canonicalized.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

/// Why a key, a JWK or a JWKS was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The PKCS#8 PEM text is not an Ed25519 private key.
    #[error("not an Ed25519 PKCS#8 private key in PEM form")]
    Pkcs8,
    /// The JWK or JWKS is not valid JSON of the expected shape.
    #[error("invalid JWK: {0}")]
    Jwk(String),
    /// The JWK is not an Ed25519 OKP key.
    #[error("unsupported JWK: kty `{kty}`, crv `{crv}` (only OKP Ed25519 is accepted)")]
    Unsupported {
        /// The `kty` found.
        kty: String,
        /// The `crv` found.
        crv: String,
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    PublicKey,
    /// A JWK names a `kid` that is not its RFC 7638 thumbprint.
    #[error("JWK `kid` `{found}` is not its RFC 7638 thumbprint `{expected}`")]
    KidMismatch {
        /// The `kid` in the JWK.
        found: String,
        /// The thumbprint computed from the key.
        expected: String,
    },
    /// A public key set carries private key material.
    #[error("JWKS carries private key material (`d`)")]
    PrivateMaterial,
    /// The key set holds the same key twice.
    #[error("JWKS holds key `{0}` twice")]
    Duplicate(String),
}

/// Why a writ could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WritError {
    /// The claims break a rule of the format.
    #[error("invalid claims: {0}")]
    Claims(&'static str),
    /// The claims could not be serialized.
    #[error("claims could not be serialized")]
    Serialize,
}
