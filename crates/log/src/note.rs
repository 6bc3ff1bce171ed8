//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys (signature type
//! `0x01`) only, in the verifier-key and private-key text forms of
//! `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a text ending in a newline, a blank line, and one or more signature
//! lines `— <key name> base64(key id || signature)`. The text is separated from the
//! signatures by the *last* blank line. Opening a note ([`SignedNote::open`]) checks the
//! format, ignores signatures from unknown keys, verifies every signature from a known key
//! (one failure refuses the whole note) and requires at least one of them.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use writ_core::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// The signature type byte of Ed25519 signatures.
const ED25519: u8 = 0x01;
/// The prefix of a signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// The prefix of a private key in the `golang.org/x/mod/sumdb/note` form.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Why a note, a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is longer than [`SignedNote::MAX_LEN`] bytes.
    #[error("note is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// The length of the note.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8")]
    InvalidUtf8,
    /// The note or text holds an ASCII control character other than newline.
    #[error("note holds control character U+{0:04X}")]
    ControlCharacter(u32),
    /// No blank line separates the text from the signatures.
    #[error("no blank line separates the note text from its signatures")]
    NoBlankLine,
    /// Nothing follows the last blank line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The last signature line does not end with a newline.
    #[error("last signature line does not end with a newline")]
    UnterminatedSignature,
    /// A line after the last blank line does not start with an em dash and a space.
    #[error("line {0} of the signatures is not a signature line")]
    NotASignatureLine(usize),
    /// The key name of a signature line is empty or holds a space or `+`.
    #[error("signature line {0} has an invalid key name")]
    SignatureKeyName(usize),
    /// A signature line has a key name but no signature after it.
    #[error("signature line {0} has no signature")]
    SignatureMissing(usize),
    /// The signature of a signature line is not standard padded base64.
    #[error("signature line {0} is not base64")]
    SignatureBase64(usize),
    /// The decoded signature is shorter than a key id and one byte.
    #[error("signature line {0} is too short to hold a key id and a signature")]
    SignatureTooShort(usize),
    /// The note has more than [`SignedNote::MAX_SIGNATURES`] signature lines.
    #[error("note has more than {0} signatures")]
    TooManySignatures(usize),
    /// Two verifiers with the same key name and key id but different keys were given.
    #[error("two different verifier keys are named {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A signature from a known key does not verify: the whole note is refused.
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature from a known key is present.
    #[error("note has no signature from a trusted key")]
    NoVerifiedSignature,
    /// A key name is empty or holds a Unicode space or `+`.
    #[error("key name `{0}` is empty or holds a space or `+`")]
    InvalidKeyName(String),
    /// A verifier key is not `<name>+<8 hex digits>+<base64>`.
    #[error("verifier key is not of the form <name>+<8 hex digits>+<base64 key>")]
    VerifierKeyFormat,
    /// A private key is not `PRIVATE+KEY+<name>+<8 hex digits>+<base64>`.
    #[error("private key is not of the form PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")]
    PrivateKeyFormat,
    /// The key is of a signature type other than Ed25519 (`0x01`).
    #[error("signature type 0x{0:02x} is not supported (only Ed25519, 0x01)")]
    UnsupportedSignatureType(u8),
    /// The key material is not 32 bytes after the signature type byte.
    #[error("key material is {0} bytes, not 32")]
    KeyLength(usize),
    /// The public key is not a valid Ed25519 point (or is of small order).
    #[error("public key is not a valid Ed25519 key")]
    PublicKey,
    /// The key id of a key text is not the one computed from its name and key.
    #[error("key id {found:08x} does not match {expected:08x} computed from the name and key")]
    KeyIdMismatch {
        /// The key id written in the key text.
        found: u32,
        /// The key id computed from the name and public key.
        expected: u32,
    },
    /// The text to sign is empty.
    #[error("text to sign is empty")]
    EmptyText,
    /// The text to sign does not end with a newline.
    #[error("text to sign does not end with a newline")]
    TextWithoutFinalNewline,
}

/// The key id of a key: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || signature type || public key)`.
fn key_id(name: &str, key_type: u8, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', key_type]);
    h.update(public);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Whether `name` is a valid key name: non-empty, with no Unicode space and no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

/// Reads exactly 8 hex digits (either case) as a key id.
fn parse_key_id(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Refuses ASCII control characters other than newline.
fn check_controls(text: &str) -> Result<(), NoteError> {
    match text.chars().find(|&c| c < ' ' && c != '\n') {
        Some(c) => Err(NoteError::ControlCharacter(u32::from(c))),
        None => Ok(()),
    }
}

/// Signs notes with an Ed25519 key under a key name.
///
/// `Debug` shows the name and key id only, never the seed.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
    seed: Zeroizing<[u8; 32]>,
}

impl NoteSigner {
    /// The signer for the Ed25519 key whose RFC 8032 private key (seed) is `seed`, under
    /// `name`. Callers supply the randomness.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_seed(seed);
        let key_id = key_id(name, ED25519, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
            seed: Zeroizing::new(*seed),
        })
    }

    /// Reads a private key in the `golang.org/x/mod/sumdb/note` form
    /// `PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || 32-byte seed)`. The key id must be
    /// the one of the derived public key.
    pub fn from_private_key_text(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(NoteError::PrivateKeyFormat)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::PrivateKeyFormat);
        };
        let found = parse_key_id(hex).ok_or(NoteError::PrivateKeyFormat)?;
        check_name(name)?;
        let raw = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| NoteError::PrivateKeyFormat)?,
        );
        let (&key_type, material) = raw.split_first().ok_or(NoteError::PrivateKeyFormat)?;
        if key_type != ED25519 {
            return Err(NoteError::UnsupportedSignatureType(key_type));
        }
        let seed: &[u8; 32] = material
            .try_into()
            .map_err(|_| NoteError::KeyLength(material.len()))?;
        let signer = Self::from_seed(name, seed)?;
        if signer.key_id != found {
            return Err(NoteError::KeyIdMismatch {
                found,
                expected: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The private key in the `golang.org/x/mod/sumdb/note` form
    /// `PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || seed)`; zeroized on drop.
    pub fn to_private_key_text(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 33]);
        raw[0] = ED25519;
        raw[1..].copy_from_slice(self.seed.as_slice());
        // Reserve everything up front so the buffer never reallocates (and leaves copies).
        let mut text = Zeroizing::new(String::with_capacity(
            PRIVATE_PREFIX.len() + self.name.len() + 10 + 44,
        ));
        text.push_str(PRIVATE_PREFIX);
        text.push_str(&self.name);
        text.push('+');
        text.push_str(&format!("{:08x}", self.key_id));
        text.push('+');
        STANDARD.encode_string(raw.as_slice(), &mut text);
        text
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key text `<name>+<key id hex>+base64(0x01 || public key)`.
    pub fn verifier_key(&self) -> String {
        vkey_text(&self.name, self.key_id, self.key.verifying_key().as_bytes())
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` and returns the signed note: the text, a blank line and one signature
    /// line. The text must be non-empty, end with a newline and hold no ASCII control
    /// character other than newline; the note must fit in [`SignedNote::MAX_LEN`].
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() {
            return Err(NoteError::EmptyText);
        }
        if !text.ends_with('\n') {
            return Err(NoteError::TextWithoutFinalNewline);
        }
        check_controls(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&signature);
        let mut note = String::with_capacity(text.len() + self.name.len() + 100);
        note.push_str(text);
        note.push('\n');
        note.push_str(SIG_PREFIX);
        note.push_str(&self.name);
        note.push(' ');
        STANDARD.encode_string(&raw, &mut note);
        note.push('\n');
        if note.len() > SignedNote::MAX_LEN {
            return Err(NoteError::TooLong {
                len: note.len(),
                max: SignedNote::MAX_LEN,
            });
        }
        Ok(note)
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

fn vkey_text(name: &str, key_id: u32, public: &[u8; 32]) -> String {
    let mut raw = [0u8; 33];
    raw[0] = ED25519;
    raw[1..].copy_from_slice(public);
    format!("{name}+{key_id:08x}+{}", STANDARD.encode(raw))
}

/// A trusted Ed25519 key under a key name, read from a verifier key text.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a verifier key `<name>+<key id hex>+base64(0x01 || 32-byte public key)`, as
    /// it is (no surrounding whitespace). The key id must be the one computed from the
    /// name and key; signature types other than Ed25519 are refused.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::VerifierKeyFormat);
        };
        let found = parse_key_id(hex).ok_or(NoteError::VerifierKeyFormat)?;
        check_name(name)?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::VerifierKeyFormat)?;
        let (&key_type, material) = raw.split_first().ok_or(NoteError::VerifierKeyFormat)?;
        if key_type != ED25519 {
            return Err(NoteError::UnsupportedSignatureType(key_type));
        }
        let public: &[u8; 32] = material
            .try_into()
            .map_err(|_| NoteError::KeyLength(material.len()))?;
        let expected = key_id(name, key_type, public);
        if found != expected {
            return Err(NoteError::KeyIdMismatch { found, expected });
        }
        let key = VerifyingKey::from_bytes(public).map_err(|_| NoteError::PublicKey)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: found,
            key,
        })
    }

    /// The verifier for an Ed25519 public key under `name`.
    pub fn from_public_key(name: &str, key: &VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, ED25519, key.as_bytes()),
            key: key.clone(),
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The verifier key text `<name>+<key id hex>+base64(0x01 || public key)`.
    pub fn to_vkey(&self) -> String {
        vkey_text(&self.name, self.key_id, self.key.as_bytes())
    }

    /// Whether `signature` (without the key id) is this key's signature of `text`.
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        <&[u8; 64]>::try_from(signature).is_ok_and(|sig| self.key.verify(text, sig))
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({})", self.to_vkey())
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

/// Who signed a note: a key name and key id. Displayed as `<name>+<key id hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}

impl fmt::Display for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}", self.name, self.key_id)
    }
}

/// A note whose signatures were checked: its text (with its final newline) and who signed
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    verified: Vec<NoteSignature>,
    unverified: Vec<NoteSignature>,
}

impl SignedNote {
    /// The longest note [`SignedNote::open`] reads, in bytes.
    pub const MAX_LEN: usize = 1 << 20;
    /// The most signature lines [`SignedNote::open`] reads (the spec asks for at least 16;
    /// `golang.org/x/mod/sumdb/note` allows 100).
    pub const MAX_SIGNATURES: usize = 100;

    /// Opens a signed note against trusted keys.
    ///
    /// The note must be valid UTF-8 with no ASCII control character but newline; the text
    /// ends at the last blank line, and every line after it must be a signature line
    /// ending in a newline. Signatures from keys not in `verifiers` (by key name *and* key
    /// id) are ignored; every signature from a known key must verify, and at least one
    /// must be present.
    pub fn open(note: impl AsRef<[u8]>, verifiers: &[NoteVerifier]) -> Result<Self, NoteError> {
        let note = note.as_ref();
        if note.len() > Self::MAX_LEN {
            return Err(NoteError::TooLong {
                len: note.len(),
                max: Self::MAX_LEN,
            });
        }
        let note = std::str::from_utf8(note).map_err(|_| NoteError::InvalidUtf8)?;
        check_controls(note)?;
        let split = note.rfind("\n\n").ok_or(NoteError::NoBlankLine)?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::UnterminatedSignature);
        };

        let mut verified: Vec<NoteSignature> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        let mut unverified_lines: Vec<&str> = Vec::new();
        for (index, line) in sigs.split('\n').enumerate() {
            let number = index + 1;
            if number > Self::MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures(Self::MAX_SIGNATURES));
            }
            let body = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(NoteError::NotASignatureLine(number))?;
            let (name, b64) = match body.split_once(' ') {
                Some((name, b64)) if !b64.is_empty() => (name, b64),
                _ => return Err(NoteError::SignatureMissing(number)),
            };
            if !is_valid_name(name) {
                return Err(NoteError::SignatureKeyName(number));
            }
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::SignatureBase64(number))?;
            if raw.len() < 5 {
                return Err(NoteError::SignatureTooShort(number));
            }
            let (id, signature) = raw.split_at(4);
            let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);

            let mut known = verifiers
                .iter()
                .filter(|v| v.name == name && v.key_id == key_id);
            let Some(verifier) = known.next() else {
                // Unknown (name, key id): ignored, but listed once per distinct line.
                if !unverified_lines.contains(&line) {
                    unverified_lines.push(line);
                    unverified.push(NoteSignature {
                        name: name.to_owned(),
                        key_id,
                    });
                }
                continue;
            };
            if known.any(|other| other.key != verifier.key) {
                return Err(NoteError::AmbiguousVerifier {
                    name: name.to_owned(),
                    key_id,
                });
            }
            // Every signature from a known key is checked, repeated ones too.
            if !verifier.verify(text.as_bytes(), signature) {
                return Err(NoteError::InvalidSignature {
                    name: name.to_owned(),
                    key_id,
                });
            }
            let signer = NoteSignature {
                name: name.to_owned(),
                key_id,
            };
            if !verified.contains(&signer) {
                verified.push(signer);
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature);
        }
        Ok(Self {
            text: text.to_owned(),
            verified,
            unverified,
        })
    }

    /// The note text, including its final newline (not the blank separator line).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The note text, owned.
    pub fn into_text(self) -> String {
        self.text
    }

    /// The known keys whose signatures verified, in note order, each once.
    pub fn verified_signers(&self) -> &[NoteSignature] {
        &self.verified
    }

    /// The signatures from unknown keys, which were ignored, in note order.
    pub fn unverified_signers(&self) -> &[NoteSignature] {
        &self.unverified
    }

    /// Whether `verifier`'s key signed the note (and its signature verified).
    pub fn is_signed_by(&self, verifier: &NoteVerifier) -> bool {
        self.verified
            .iter()
            .any(|s| s.name == verifier.name && s.key_id == verifier.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_seed() {
        let signer = NoteSigner::from_seed("example.com/log", &[0x5a; 32]).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("example.com/log"), "{debug}");
        let private = signer.to_private_key_text();
        let b64 = private.rsplit('+').next().unwrap();
        assert!(!debug.contains(b64), "{debug}");
        assert!(!debug.contains("5a"), "{debug}");
        assert!(!debug.contains("90"), "{debug}");
    }

    #[test]
    fn key_id_hex_refuses_signs_and_short_forms() {
        assert_eq!(parse_key_id("c74f20a3"), Some(0xc74f20a3));
        assert_eq!(parse_key_id("C74F20A3"), Some(0xc74f20a3));
        assert_eq!(parse_key_id("+74f20a3"), None);
        assert_eq!(parse_key_id("74f20a3"), None);
        assert_eq!(parse_key_id("0c74f20a3"), None);
    }

    #[test]
    fn names_follow_the_spec() {
        assert!(is_valid_name("example.com/log"));
        assert!(is_valid_name("é"));
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{3000}b", "a\tb"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
