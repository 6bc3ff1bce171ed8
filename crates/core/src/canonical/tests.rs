use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const RFC8785: &str = include_str!("../../../../testdata/rfc8785.json");

fn vectors() -> Value {
    serde_json::from_str(RFC8785).expect("testdata/rfc8785.json is JSON")
}

#[test]
fn rfc8785_appendix_b_numbers() {
    let doc = vectors();
    let samples = doc["numbers"].as_array().expect("numbers");
    assert_eq!(samples.len(), 26);
    for sample in samples {
        let bits = u64::from_str_radix(sample["ieee754_hex"].as_str().unwrap(), 16).unwrap();
        let f = f64::from_bits(bits);
        match Number::from_f64(f) {
            Some(n) => {
                assert!(sample["valid"].as_bool().unwrap(), "{sample}");
                let got = to_canonical_string(&Value::Number(n));
                assert_eq!(got, sample["canonical"].as_str().unwrap(), "{sample}");
            }
            // NaN and Infinity have no JSON value at all: refused.
            None => assert!(!sample["valid"].as_bool().unwrap(), "{sample}"),
        }
    }
}

#[test]
fn rfc8785_examples() {
    let doc = vectors();
    for example in doc["examples"].as_array().unwrap() {
        let value = parse_strict(example["input"].as_str().unwrap()).unwrap();
        assert_eq!(
            to_canonical_string(&value),
            example["canonical"].as_str().unwrap(),
            "{}",
            example["name"]
        );
    }
}

#[test]
fn non_finite_number_text_is_refused() {
    assert!(matches!(
        parse_strict("[1e400]"),
        Err(CanonicalError::Syntax(_))
    ));
    assert!(matches!(
        parse_strict("[NaN]"),
        Err(CanonicalError::Syntax(_))
    ));
}

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    assert_eq!(
        parse_strict(r#"{"a":1,"a":2}"#),
        Err(CanonicalError::DuplicateKey("a".into()))
    );
    assert_eq!(
        parse_strict(r#"{"x":[{"amount":1,"amount":25000}]}"#),
        Err(CanonicalError::DuplicateKey("amount".into()))
    );
    // The same key spelled with an escape is the same key.
    assert!(matches!(
        parse_strict(r#"{"a":1,"\u0061":2}"#),
        Err(CanonicalError::DuplicateKey(_))
    ));
}

#[test]
fn trailing_data_is_refused() {
    assert!(matches!(
        parse_strict(r#"{} {}"#),
        Err(CanonicalError::Syntax(_))
    ));
    assert!(matches!(
        parse_strict(r#"{"a":1}x"#),
        Err(CanonicalError::Syntax(_))
    ));
}

#[test]
fn integers_beyond_2_pow_53_are_refused_in_arguments() {
    assert!(args_digest(&json!({"amount": 9007199254740992u64})).is_ok());
    assert!(args_digest(&json!({"amount": -9007199254740992i64})).is_ok());
    for text in [
        r#"{"amount":9007199254740993}"#,
        r#"{"amount":-9007199254740993}"#,
        r#"{"amount":18446744073709551615}"#,
        r#"{"amount":9007199254740994.0}"#,
        r#"{"deep":[[{"amount":1e300}]]}"#,
        // Fraction or exponent text for 2^53 + 1 rounds to 2^53: refused, or it would share
        // a digest with the integer 9007199254740992.
        r#"{"amount":9007199254740993.0}"#,
        r#"{"amount":9.007199254740993e15}"#,
        r#"{"amount":-9007199254740993.0}"#,
        r#"{"amount":9007199254740992.0}"#,
    ] {
        let value = parse_strict(text).unwrap();
        assert!(
            matches!(args_digest(&value), Err(CanonicalError::InexactNumber(_))),
            "{text}"
        );
    }
    // Fractions are exact in the sense RFC 8785 needs: one double, one text.
    assert!(args_digest(&json!({"amount": 25000.5})).is_ok());
}

#[test]
fn key_order_is_utf16_whatever_the_input_order() {
    // Build the map in reverse order; canonical output must not depend on map order.
    let mut map = Map::new();
    for key in ["z", "b", "a", "\u{e9}", "\u{1F600}", "\u{FB33}"] {
        map.insert(key.to_string(), Value::Null);
    }
    assert_eq!(
        to_canonical_string(&Value::Object(map)),
        "{\"a\":null,\"b\":null,\"z\":null,\"\u{e9}\":null,\"\u{1F600}\":null,\"\u{FB33}\":null}"
    );
}

#[test]
fn digest_distinguishes_amounts() {
    let a = args_digest(&json!({"amount": 25000})).unwrap();
    let b = args_digest(&json!({"amount": 25001})).unwrap();
    assert_ne!(a, b);
    // Key order and whitespace do not change the digest.
    let c = args_digest(&parse_strict(r#"{ "payee":"acme", "amount":25000 }"#).unwrap());
    let d = args_digest(&parse_strict(r#"{"amount":25000,"payee":"acme"}"#).unwrap());
    assert_eq!(c, d);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn canonical_form_is_a_fixed_point(value in arb_json()) {
        let once = to_canonical_string(&value);
        let reparsed = parse_strict(&once).expect("canonical output parses");
        let twice = to_canonical_string(&reparsed);
        prop_assert_eq!(&once, &twice);
    }

    #[test]
    fn parse_strict_never_panics(text in ".*") {
        let _ = parse_strict(&text);
    }
}
