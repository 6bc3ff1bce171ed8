//! RFC 8785 JSON Canonicalization Scheme (JCS), and the strict JSON reading that feeds it.
//!
//! A writ binds its arguments by `args_sha256`, the SHA-256 of their canonical JSON. Two
//! things make that binding unambiguous: [`parse_strict`] refuses duplicate object keys (two
//! parsers could pick different values), and [`args_digest`] refuses numbers that RFC 8785
//! cannot carry exactly (integers beyond ±2^53), so one digest never covers two amounts.
//! Number text follows ECMAScript's `Number.prototype.toString`, done by `ryu-js`; string
//! escaping is `serde_json`'s, which matches RFC 8785 §3.2.2.2.

use std::cmp::Ordering;
use std::fmt;
use std::io::Write;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serializer as _;
use serde_json::{Map, Number, Value};
use sha2::{Digest as _, Sha256};

use crate::digest::Sha256Digest;

/// The largest integer magnitude RFC 8785 (IEEE 754 double) carries exactly: 2^53.
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Why JSON could not be read or canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// The text is not JSON (or has trailing data, or nests too deep).
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// An object has the same key twice.
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
    /// A number cannot be represented exactly (an integer beyond ±2^53).
    #[error("number `{0}` cannot be represented exactly in canonical JSON (beyond ±2^53)")]
    InexactNumber(String),
}

/// Reads JSON text, refusing duplicate keys at any depth and any trailing data.
pub fn parse_strict(text: &str) -> Result<Value, CanonicalError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut de).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix(DUPLICATE_PREFIX) {
            Some(rest) => CanonicalError::DuplicateKey(
                rest.split(" at line ").next().unwrap_or(rest).to_string(),
            ),
            None => CanonicalError::Syntax(msg),
        }
    })?;
    de.end()
        .map_err(|e| CanonicalError::Syntax(e.to_string()))?;
    Ok(value)
}

/// The RFC 8785 canonical form of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    write_value(value, &mut out);
    // INVARIANT: every byte written is either ASCII punctuation, ryu-js output or a
    // serde_json-escaped UTF-8 string, so the buffer is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// The RFC 8785 canonical form of `value`, as bytes.
pub fn to_canonical_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out);
    out
}

/// Refuses any number RFC 8785 cannot represent exactly: integers beyond ±2^53, and numbers
/// written with a fraction or exponent whose value is integral and at least 2^53 (they may
/// have been rounded there). Non-finite numbers cannot occur in a `serde_json::Value`.
pub fn check_exact(value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => check_number(n),
        Value::Array(items) => items.iter().try_for_each(check_exact),
        Value::Object(map) => map.values().try_for_each(check_exact),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// `args_sha256`: SHA-256 of the canonical JSON of `args`, after [`check_exact`].
pub fn args_digest(args: &Value) -> Result<Sha256Digest, CanonicalError> {
    check_exact(args)?;
    Ok(digest(args))
}

/// SHA-256 of the canonical JSON of `value`, with no number restriction.
pub fn digest(value: &Value) -> Sha256Digest {
    // Streamed into the hash: the canonical text is never held in memory.
    let mut hasher = Sha256::new();
    write_value(value, &mut hasher);
    Sha256Digest::from_bytes(hasher.finalize().into())
}

fn check_number(n: &Number) -> Result<(), CanonicalError> {
    let exact = if let Some(u) = n.as_u64() {
        u <= MAX_EXACT_INTEGER
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs() <= MAX_EXACT_INTEGER
    } else if let Some(f) = n.as_f64() {
        // A number written with a fraction or exponent arrives as a double. An integral
        // double at or past 2^53 may stand for several integers (`9007199254740993.0`
        // rounds to 2^53), so it is refused; only integer text may reach 2^53 itself.
        f.is_finite() && (f.fract() != 0.0 || f.abs() < MAX_EXACT_INTEGER as f64)
    } else {
        false
    };
    if exact {
        Ok(())
    } else {
        Err(CanonicalError::InexactNumber(n.to_string()))
    }
}

fn write_value<W: Write>(value: &Value, out: &mut W) {
    match value {
        Value::Null => put(out, b"null"),
        Value::Bool(true) => put(out, b"true"),
        Value::Bool(false) => put(out, b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            put(out, b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                write_value(item, out);
            }
            put(out, b"]");
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object<W: Write>(map: &Map<String, Value>, out: &mut W) {
    // RFC 8785 §3.2.3: members sorted by their names as arrays of UTF-16 code units.
    // Sorted here rather than trusting the map's order, which serde_json's `preserve_order`
    // feature would change to insertion order.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| utf16_cmp(a.0, b.0));
    put(out, b"{");
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            put(out, b",");
        }
        write_string(key, out);
        put(out, b":");
        write_value(item, out);
    }
    put(out, b"}");
}

/// Writes to a `Vec` or a hasher, neither of which can fail.
fn put<W: Write>(out: &mut W, bytes: &[u8]) {
    let _ = out.write_all(bytes);
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        // For ASCII, UTF-16 code units and bytes order alike.
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_string<W: Write>(s: &str, out: &mut W) {
    let mut ser = serde_json::Serializer::new(&mut *out);
    // Writing to a Vec or a hasher cannot fail.
    let _ = (&mut ser).serialize_str(s);
}

fn write_number<W: Write>(n: &Number, out: &mut W) {
    if let Some(u) = n.as_u64() {
        if u <= MAX_EXACT_INTEGER {
            put(out, itoa::Buffer::new().format(u).as_bytes());
            return;
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_EXACT_INTEGER {
            put(out, itoa::Buffer::new().format(i).as_bytes());
            return;
        }
    }
    // Everything else is an IEEE 754 double, as RFC 8785 §3.2.2.3 treats all numbers.
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        put(out, b"0"); // ECMAScript prints -0 as 0.
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    put(out, buf.format_finite(f).as_bytes());
}

const DUPLICATE_PREFIX: &str = "writ-duplicate-key:";

/// Builds a `serde_json::Value` like serde_json does, but fails on a repeated object key.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "{DUPLICATE_PREFIX}{key}"
                )));
            }
            let item = access.next_value_seed(StrictValue)?;
            map.insert(key, item);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests;
