//! The writ's JWS compact serialization (RFC 7515): EdDSA over Ed25519 (RFC 8037) only.
//!
//! Parsing is the first half of verification. It decides only what can be decided without a
//! key: presence, shape, header and claims, in the order DESIGN.md gives.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::claims::Claims;
use crate::deny::{Denial, DenyCode};
use crate::digest::Sha256Digest;
use crate::error::WritError;
use crate::keys::SigningKey;

/// The `typ` header of every writ.
pub const WRIT_TYP: &str = "writ+jwt";

/// The longest compact writ accepted, in bytes. Writs are small (arguments travel as a
/// digest); anything larger is refused before it is decoded.
pub const MAX_WRIT_LEN: usize = 16 * 1024;

/// Header parameters that would let the token choose its own key or extend the rules.
const FORBIDDEN_HEADER: [&str; 7] = ["crit", "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256"];

/// Signs `claims` with `key` and returns the compact writ. The header is exactly
/// `{"alg":"EdDSA","typ":"writ+jwt","kid":…}`.
pub fn sign(claims: &Claims, key: &SigningKey) -> Result<String, WritError> {
    check_claims(claims).map_err(WritError::Claims)?;
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"{WRIT_TYP}","kid":"{}"}}"#,
        key.kid()
    );
    let payload = serde_json::to_vec(claims).map_err(|_| WritError::Serialize)?;
    Ok(sign_compact(header.as_bytes(), &payload, key))
}

/// JWS compact serialization of `payload` under the protected `header`, signed with `key`.
pub(crate) fn sign_compact(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 90);
    URL_SAFE_NO_PAD.encode_string(header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    let signature = key.sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    out
}

/// Rules on claim values that hold for every writ, signed or received.
fn check_claims(claims: &Claims) -> Result<(), &'static str> {
    if claims.uses == 0 {
        return Err("`uses` must be at least 1");
    }
    if claims.exp <= claims.nbf {
        return Err("`exp` must be after `nbf`");
    }
    if claims.iat > claims.exp {
        return Err("`iat` must not be after `exp`");
    }
    if claims.iss.is_empty() || claims.sub.is_empty() || claims.aud.is_empty() {
        return Err("`iss`, `sub` and `aud` must not be empty");
    }
    if claims.scope.action.is_empty() || claims.scope.resource.is_empty() {
        return Err("`scope.action` and `scope.resource` must not be empty");
    }
    if let Some(lin) = &claims.lin {
        if lin.depth == 0 {
            return Err("`lin.depth` must be at least 1");
        }
    }
    Ok(())
}

/// A writ whose shape, header and claims are valid, and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedWrit<'a> {
    compact: &'a str,
    signing_input_len: usize,
    kid: String,
    claims: Claims,
    signature: [u8; 64],
}

impl<'a> UnverifiedWrit<'a> {
    /// The key id the header names.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The claims, as yet unauthenticated.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// `header.payload`, the bytes the signature covers.
    pub fn signing_input(&self) -> &'a [u8] {
        &self.compact.as_bytes()[..self.signing_input_len]
    }

    /// The 64-byte Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The compact serialization.
    pub fn compact(&self) -> &'a str {
        self.compact
    }

    /// SHA-256 of the compact serialization (what `lin.parent_sha256` and the log record).
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(self.compact.as_bytes())
    }

    pub(crate) fn into_claims(self) -> Claims {
        self.claims
    }
}

/// Parses a compact writ without checking its signature. Every failure is a [`Denial`]
/// with the code DESIGN.md assigns to it.
pub fn parse_unverified(compact: &str) -> Result<UnverifiedWrit<'_>, Denial> {
    if compact.is_empty() {
        return Err(Denial::new(
            DenyCode::MissingAuthorization,
            "no writ was presented",
        ));
    }
    if compact.len() > MAX_WRIT_LEN {
        return Err(malformed(format!(
            "writ is longer than {MAX_WRIT_LEN} bytes"
        )));
    }
    let mut parts = compact.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "not a JWS compact serialization (three base64url parts)",
        ));
    };

    let kid = parse_header(header_b64)?;

    let payload = decode(payload_b64, "payload")?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| malformed(format!("claims: {}", strip_position(&e.to_string()))))?;
    check_claims(&claims).map_err(malformed)?;

    let signature: [u8; 64] = decode(signature_b64, "signature")?
        .try_into()
        .map_err(|_| malformed("signature is not 64 bytes"))?;

    Ok(UnverifiedWrit {
        compact,
        signing_input_len: header_b64.len() + 1 + payload_b64.len(),
        kid,
        claims,
        signature,
    })
}

/// Checks the protected header and returns its `kid`.
fn parse_header(header_b64: &str) -> Result<String, Denial> {
    let header = decode(header_b64, "header")?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|e| malformed(format!("header: {}", strip_position(&e.to_string()))))?;
    // The algorithm is judged first, so `none` and HS256 are named as what they are.
    match &header.alg {
        None => return Err(malformed("header has no `alg`")),
        Some(Value::String(alg)) if alg == "EdDSA" => {}
        Some(Value::String(alg)) => {
            return Err(Denial::new(
                DenyCode::UnsupportedAlgorithm,
                format!("`alg` `{}` is not EdDSA", truncate(alg)),
            ))
        }
        Some(_) => return Err(malformed("`alg` is not a string")),
    }
    if let Some(other) = header.unknown {
        return Err(if FORBIDDEN_HEADER.contains(&other.as_str()) {
            malformed(format!("header parameter `{other}` is not allowed"))
        } else {
            malformed(format!("unknown header parameter `{}`", truncate(&other)))
        });
    }
    match &header.typ {
        Some(Value::String(typ)) if typ == WRIT_TYP => {}
        Some(_) => return Err(malformed(format!("`typ` is not `{WRIT_TYP}`"))),
        None => {
            return Err(malformed(format!(
                "header has no `typ` (`{WRIT_TYP}` required)"
            )))
        }
    }
    match header.kid {
        Some(Value::String(kid)) => Ok(kid),
        Some(_) => Err(malformed("`kid` is not a string")),
        None => Err(malformed("header has no `kid`")),
    }
}

/// The protected header as read: the three parameters a writ may carry, and the first other
/// parameter found. Values are kept raw so that a wrong type is told apart from a wrong value.
#[derive(Default)]
struct Header {
    alg: Option<Value>,
    typ: Option<Value>,
    kid: Option<Value>,
    unknown: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> serde::de::Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        use serde::de::Error as _;
        let mut header = Header::default();
        let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::with_capacity(4);
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if seen.contains(&name) {
                return Err(A::Error::custom(format_args!(
                    "duplicate key `{}`",
                    truncate(&name)
                )));
            }
            let slot = match name.as_ref() {
                "alg" => Some(&mut header.alg),
                "typ" => Some(&mut header.typ),
                "kid" => Some(&mut header.kid),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = Some(map.next_value::<Value>()?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if header.unknown.is_none() {
                        header.unknown = Some(name.to_string());
                    }
                }
            }
            seen.push(name);
        }
        Ok(header)
    }
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, Denial> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(format!("{what} is not unpadded base64url")))
}

fn malformed(detail: impl Into<std::borrow::Cow<'static, str>>) -> Denial {
    Denial::new(DenyCode::Malformed, detail)
}

/// serde_json appends "at line 1 column N"; the position of a base64-decoded blob helps nobody.
fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string()
}

/// Attacker-chosen text in a detail is kept short.
fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC8037: &str = include_str!("../../../testdata/rfc8037_jws.json");

    #[test]
    fn reproduces_rfc8037_appendix_a4_byte_for_byte() {
        let v: Value = serde_json::from_str(RFC8037).unwrap();
        let mut seed = [0u8; 32];
        hex::decode_to_slice(v["A.1_private_key_hex"].as_str().unwrap(), &mut seed).unwrap();
        let key = SigningKey::from_seed(&seed);
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            v["A.1_public_key_hex"].as_str().unwrap()
        );
        assert_eq!(
            key.kid().as_str(),
            v["A.3_thumbprint"]["base64url"].as_str().unwrap()
        );
        let signing = &v["A.4_signing"];
        let jws = sign_compact(
            signing["protected_header_json"]
                .as_str()
                .unwrap()
                .as_bytes(),
            signing["payload_text"].as_str().unwrap().as_bytes(),
            &key,
        );
        assert_eq!(jws, signing["jws_compact"].as_str().unwrap());
        assert_eq!(jws, v["A.5_validation"]["jws_compact"].as_str().unwrap());
        assert_eq!(
            jws.rsplit('.').next().unwrap(),
            signing["signature_b64u"].as_str().unwrap()
        );
    }
}
