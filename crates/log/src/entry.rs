//! Log entries: the RFC 8785 canonical JSON of an object whose `type` names a governance event.

use serde_json::Value;

/// The entry types of DESIGN.md.
pub const ENTRY_TYPES: [&str; 8] = [
    "decision",
    "consumption",
    "approval",
    "receipt",
    "revocation",
    "policy",
    "key",
    "note",
];

/// Why a value is not a log entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is not a JSON object.
    #[error("a log entry is a JSON object")]
    NotAnObject,
    /// The entry has no string `type`, or one DESIGN.md does not define.
    #[error("a log entry needs a `type` among {ENTRY_TYPES:?}")]
    UnknownType,
    /// An administrator may append only `note` entries.
    #[error("an administrator may append only `note` entries, not `{0}`")]
    NotANote(String),
    /// The entry holds a number canonical JSON cannot carry exactly.
    #[error("{0}")]
    Canonical(#[from] writ_core::canonical::CanonicalError),
}

/// The canonical bytes of a governance event entry.
pub fn canonical_entry(value: &Value) -> Result<Vec<u8>, EntryError> {
    let Value::Object(map) = value else {
        return Err(EntryError::NotAnObject);
    };
    match map.get("type") {
        Some(Value::String(t)) if ENTRY_TYPES.contains(&t.as_str()) => {}
        _ => return Err(EntryError::UnknownType),
    }
    writ_core::canonical::check_exact(value)?;
    Ok(writ_core::canonical::to_canonical_vec(value))
}

/// The canonical bytes of an administrator's entry, which must be a `note`.
pub fn admin_note(value: &Value) -> Result<Vec<u8>, EntryError> {
    let bytes = canonical_entry(value)?;
    match value.get("type").and_then(Value::as_str) {
        Some("note") => Ok(bytes),
        Some(other) => Err(EntryError::NotANote(other.to_owned())),
        None => Err(EntryError::UnknownType),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_typed_objects_are_entries_and_admins_write_notes() {
        assert_eq!(
            admin_note(&json!({"type": "note", "text": "rotated keys", "by": "ops"})).unwrap(),
            br#"{"by":"ops","text":"rotated keys","type":"note"}"#.to_vec()
        );
        assert_eq!(
            admin_note(&json!({"type": "decision"})),
            Err(EntryError::NotANote("decision".into()))
        );
        assert_eq!(
            admin_note(&json!({"text": "x"})),
            Err(EntryError::UnknownType)
        );
        assert_eq!(
            canonical_entry(&json!({"type": "gossip"})),
            Err(EntryError::UnknownType)
        );
        assert_eq!(
            canonical_entry(&json!(["note"])),
            Err(EntryError::NotAnObject)
        );
        assert!(canonical_entry(&json!({"type": "decision"})).is_ok());
    }
}
