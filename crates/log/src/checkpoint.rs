//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the origin, tree size and
//! root hash of a log, as the text of a signed note.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::hash::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier, SignedNote};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around the checkpoint was refused.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    Unterminated,
    /// The checkpoint text has fewer than three lines.
    #[error("checkpoint text has {0} lines, at least 3 expected")]
    TooFewLines(usize),
    /// The checkpoint text holds an ASCII control character other than newline.
    #[error("checkpoint text holds control character U+{0:04X}")]
    ControlCharacter(u32),
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The origin holds a newline (only when writing a checkpoint).
    #[error("checkpoint origin holds a newline")]
    OriginNewline,
    /// The size line is not a decimal number without leading zeros.
    #[error("checkpoint tree size `{0}` is not a decimal number without leading zeros")]
    SizeFormat(String),
    /// The size does not fit in 64 bits.
    #[error("checkpoint tree size `{0}` does not fit in 64 bits")]
    SizeTooLarge(String),
    /// The root hash line is not standard padded base64.
    #[error("checkpoint root hash is not base64")]
    RootBase64,
    /// The root hash is not 32 bytes.
    #[error("checkpoint root hash is {0} bytes, not 32")]
    RootLength(usize),
    /// An extension line is empty (or, when writing, holds a newline).
    #[error("checkpoint extension line {0} is empty or holds a newline")]
    InvalidExtension(usize),
    /// The checkpoint comes from another log.
    #[error("checkpoint origin `{found}` is not the expected `{expected}`")]
    OriginMismatch {
        /// The origin the caller expects.
        expected: String,
        /// The origin of the checkpoint.
        found: String,
    },
}

/// A checkpoint: the log's origin, its tree size and the root hash at that size, with
/// optional opaque extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The unique identifier of the log (first line); non-empty.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 9162 root hash of the tree at `size`.
    pub root: Hash,
    /// Extension lines, each non-empty, without their newline. Not recommended.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `origin\nsize\nbase64(root)\n`, then each extension line and a
    /// newline. The fields are written as they are; [`Checkpoint::validate`] says whether
    /// the result parses back.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.as_bytes())
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Reads a checkpoint text (the text of a signed note, final newline included). The
    /// size is ASCII decimal without leading zeros, the root exactly 32 bytes of standard
    /// padded base64, the origin and extension lines non-empty.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        check_controls(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Unterminated)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines(lines.len()));
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(size)?;
        let raw = STANDARD
            .decode(root)
            .map_err(|_| CheckpointError::RootBase64)?;
        let root = Hash::from_slice(&raw).ok_or(CheckpointError::RootLength(raw.len()))?;
        if let Some(index) = extensions.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::InvalidExtension(index + 1));
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Checks that [`Checkpoint::to_text`] gives a text that parses back to `self`: the
    /// origin is non-empty, and neither it nor an extension line holds a newline or other
    /// control character; extension lines are non-empty.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if self.origin.contains('\n') {
            return Err(CheckpointError::OriginNewline);
        }
        check_controls(&self.origin)?;
        for (index, line) in self.extensions.iter().enumerate() {
            if line.is_empty() || line.contains('\n') {
                return Err(CheckpointError::InvalidExtension(index + 1));
            }
            check_controls(line)?;
        }
        Ok(())
    }

    /// Signs the checkpoint as a signed note. The spec recommends a key name equal to the
    /// origin; that is left to the caller.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        self.validate()?;
        Ok(signer.sign(&self.to_text())?)
    }

    /// Opens a signed checkpoint: the note must verify against `verifiers` (see
    /// [`SignedNote::open`]) and its text must be a checkpoint.
    pub fn open(
        note: impl AsRef<[u8]>,
        verifiers: &[NoteVerifier],
    ) -> Result<Self, CheckpointError> {
        Self::from_note(&SignedNote::open(note, verifiers)?)
    }

    /// Reads the checkpoint in the text of an opened note.
    pub fn from_note(note: &SignedNote) -> Result<Self, CheckpointError> {
        Self::parse(note.text())
    }

    /// Checks that the checkpoint comes from the log named `expected`.
    pub fn check_origin(&self, expected: &str) -> Result<(), CheckpointError> {
        if self.origin == expected {
            Ok(())
        } else {
            Err(CheckpointError::OriginMismatch {
                expected: expected.to_owned(),
                found: self.origin.clone(),
            })
        }
    }
}

fn check_controls(text: &str) -> Result<(), CheckpointError> {
    match text.chars().find(|&c| c < ' ' && c != '\n') {
        Some(c) => Err(CheckpointError::ControlCharacter(u32::from(c))),
        None => Ok(()),
    }
}

/// ASCII decimal, no sign, no leading zeros (`0` alone for the empty tree).
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(CheckpointError::SizeFormat(line.to_owned()));
    }
    line.parse()
        .map_err(|_| CheckpointError::SizeTooLarge(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_canonical_decimal() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("31700353"), Ok(31_700_353));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "00", "01", "+1", "-1", " 1", "1 ", "1_000", "0x10", "١"] {
            assert!(
                matches!(parse_size(bad), Err(CheckpointError::SizeFormat(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(CheckpointError::SizeTooLarge(_))
        ));
    }
}
