//! Signed notes and checkpoints against the C2SP and Go examples, and round trips.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use writ_log::{
    Checkpoint, CheckpointError, Hash, NoteError, NoteSigner, NoteVerifier, SignedNote,
};

const EXAMPLES: &str = include_str!("../../../testdata/checkpoint_examples.json");
const SUMDB_NOTE: &str = include_str!("../../../testdata/checkpoint_example.txt");
const SUMDB_VKEY: &str = include_str!("../../../testdata/checkpoint_example.vkey");

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";

fn cases() -> Vec<Value> {
    let doc: Value = serde_json::from_str(EXAMPLES).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn case(id: &str) -> Value {
    cases().into_iter().find(|c| c["id"] == id).unwrap()
}

fn note_bytes(case: &Value) -> Vec<u8> {
    let bytes = hex::decode(case["note"]["hex"].as_str().unwrap()).unwrap();
    match case["note"]["text"].as_str() {
        Some(text) => assert_eq!(text.as_bytes(), bytes, "{}", case["id"]),
        None => assert!(std::str::from_utf8(&bytes).is_err(), "{}", case["id"]),
    }
    bytes
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn signer(name: &str, byte: u8) -> NoteSigner {
    NoteSigner::from_seed(name, &[byte; 32]).unwrap()
}

/// The error each invalid example must get (the case ids are the examples').
fn expected_error(id: &str) -> fn(&NoteError) -> bool {
    match id {
        "sumdb-checkpoint-size-changed"
        | "sumdb-checkpoint-root-changed"
        | "sumdb-checkpoint-sig-changed"
        | "go-note-invalid-signature" => |e| matches!(e, NoteError::InvalidSignature { .. }),
        "sumdb-checkpoint-unknown-key-name" | "go-note-two-sigs-none-known" => {
            |e| matches!(e, NoteError::NoVerifiedSignature)
        }
        // go-note-malformed-5 also has a key name with a space, but the missing final
        // newline is found first (as in Go).
        "sumdb-checkpoint-no-final-newline" | "go-note-malformed-2" | "go-note-malformed-5" => {
            |e| matches!(e, NoteError::UnterminatedSignature)
        }
        "sumdb-checkpoint-no-blank-line" | "go-note-malformed-0" => {
            |e| matches!(e, NoteError::NoBlankLine)
        }
        "sumdb-checkpoint-wrong-vkey-id" => |e| {
            matches!(
                e,
                NoteError::KeyIdMismatch {
                    found: 0x033de0af,
                    expected: 0x033de0ae
                }
            )
        },
        "go-note-malformed-1" => |e| matches!(e, NoteError::NoSignatures),
        "go-note-malformed-3" => |e| matches!(e, NoteError::ControlCharacter(0x01)),
        "go-note-malformed-4" => |e| matches!(e, NoteError::InvalidUtf8),
        "go-note-malformed-6" => |e| matches!(e, NoteError::NotASignatureLine(2)),
        other => panic!("no expected error for invalid example {other}"),
    }
}

/// Opens a note the way a caller does: verifier keys first, then the note.
fn open(case: &Value) -> Result<SignedNote, NoteError> {
    let verifiers = strings(&case["verifier_keys"])
        .iter()
        .map(|k| NoteVerifier::from_vkey(k))
        .collect::<Result<Vec<_>, _>>()?;
    SignedNote::open(note_bytes(case), &verifiers)
}

#[test]
fn every_example_gets_its_labelled_verdict() {
    let cases = cases();
    assert_eq!(cases.len(), 23);
    let (mut valid, mut invalid, mut format_only) = (0, 0, 0);
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let is_checkpoint = case["kind"] == "checkpoint";
        match case["expect"]["valid"].as_bool() {
            Some(true) => {
                valid += 1;
                let note = open(case).unwrap_or_else(|e| panic!("{id}: {e}"));
                let verified: Vec<String> = note
                    .verified_signers()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                assert_eq!(
                    verified,
                    strings(&case["expect"]["verified_signers"]),
                    "{id}"
                );
                let unverified: Vec<String> = note
                    .unverified_signers()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                assert_eq!(
                    unverified,
                    strings(&case["expect"]["unverified_signers"]),
                    "{id}"
                );
                let text = std::str::from_utf8(&note_bytes(case)).unwrap().to_owned();
                assert!(text.starts_with(note.text()), "{id}");
                if is_checkpoint {
                    let verifiers: Vec<NoteVerifier> = strings(&case["verifier_keys"])
                        .iter()
                        .map(|k| NoteVerifier::from_vkey(k).unwrap())
                        .collect();
                    let cp = Checkpoint::open(&text, &verifiers).unwrap();
                    check_fields(&cp, &case["checkpoint"], id);
                }
            }
            Some(false) => {
                invalid += 1;
                let err = open(case).map(|_| ()).expect_err(id);
                assert!(expected_error(id)(&err), "{id}: unexpected error {err:?}");
                assert!(!err.to_string().is_empty());
            }
            None => {
                format_only += 1;
                judge_format_only(case, id);
            }
        }
    }
    assert_eq!((valid, invalid, format_only), (5, 16, 2));
}

fn check_fields(cp: &Checkpoint, expect: &Value, id: &str) {
    assert_eq!(cp.origin, expect["origin"].as_str().unwrap(), "{id}");
    assert_eq!(cp.size, expect["tree_size"].as_u64().unwrap(), "{id}");
    let root = STANDARD
        .decode(expect["root_hash_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(cp.root.as_bytes().as_slice(), root, "{id}");
    if let Some(hex) = expect["root_hash_hex"].as_str() {
        assert_eq!(cp.root, Hash::from_hex(hex).unwrap(), "{id}");
    }
    assert!(cp.extensions.is_empty(), "{id}");
}

/// No verifier key is published for these: the note must be well formed (opening with no
/// trusted key fails only for want of a trusted signature), its signature line must parse
/// (a co-signature we append over the expected text verifies next to it), and the text
/// must be what the case describes.
fn judge_format_only(case: &Value, id: &str) {
    let note = String::from_utf8(note_bytes(case)).unwrap();
    assert_eq!(
        SignedNote::open(&note, &[]).unwrap_err(),
        NoteError::NoVerifiedSignature,
        "{id}"
    );
    let split = note.rfind("\n\n").unwrap();
    let expected_text = &note[..split + 1];
    let witness = signer("witness.example/w", 42);
    let cosigned = witness.sign(expected_text).unwrap();
    let own_line = &cosigned[expected_text.len() + 1..];
    let both = format!("{note}{own_line}");
    let opened = SignedNote::open(&both, &[witness.verifier()]).unwrap();
    assert_eq!(opened.text(), expected_text, "{id}");
    assert_eq!(opened.verified_signers().len(), 1, "{id}");
    assert_eq!(opened.unverified_signers().len(), 1, "{id}");
    let original = &opened.unverified_signers()[0];
    match id {
        "c2sp-tlog-checkpoint-example" => {
            // Its key id is sum.golang.org's, not one of its own key name.
            assert_eq!(original.to_string(), "example.com/behind-the-sofa+033de0ae");
            let cp = Checkpoint::from_note(&opened).unwrap();
            check_fields(&cp, &case["checkpoint"], id);
            cp.check_origin("example.com/behind-the-sofa").unwrap();
            assert_eq!(cp.to_text(), expected_text);
        }
        "c2sp-signed-note-intro-example" => {
            assert_eq!(original.name(), "quasimodo.example/salvatore");
            assert_eq!(
                opened.text(),
                "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n\
                 ed \u{e8} subito sera.\n"
            );
            // The blank line inside the text leaves it too short to be a checkpoint.
            assert!(Checkpoint::from_note(&opened).is_err());
        }
        other => panic!("unknown format-only example {other}"),
    }
}

#[test]
fn real_sumdb_checkpoint_verifies() {
    let verifier = NoteVerifier::from_vkey(SUMDB_VKEY.trim_end()).unwrap();
    assert_eq!(verifier.name(), "sum.golang.org");
    assert_eq!(verifier.key_id(), 0x033de0ae);
    assert_eq!(verifier.to_vkey(), SUMDB_VKEY.trim_end());
    let cp = Checkpoint::open(SUMDB_NOTE, std::slice::from_ref(&verifier)).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, 31_700_353);
    assert_eq!(
        cp.root.to_hex(),
        "a88352d464458561f076451ea8b1283f8c843244c1073c41906c0642556555cb"
    );
    assert!(cp.extensions.is_empty());
    cp.check_origin("go.sum database tree").unwrap();
    assert_eq!(
        cp.check_origin("sum.golang.org").unwrap_err(),
        CheckpointError::OriginMismatch {
            expected: "sum.golang.org".into(),
            found: "go.sum database tree".into()
        }
    );
    let note = SignedNote::open(SUMDB_NOTE, std::slice::from_ref(&verifier)).unwrap();
    assert!(note.is_signed_by(&verifier));
    assert_eq!(cp.to_text(), note.text());

    // The file as written, with its final newline, is the note; without it, not.
    assert!(matches!(
        Checkpoint::open(SUMDB_NOTE.trim_end(), std::slice::from_ref(&verifier)),
        Err(CheckpointError::Note(NoteError::UnterminatedSignature))
    ));
    // A vkey is read as it is: surrounding whitespace is not part of it.
    assert!(NoteVerifier::from_vkey(SUMDB_VKEY).is_err());
    // Another key under the same name (different key id) is not trusted.
    let impostor = NoteVerifier::from_vkey(&signer("sum.golang.org", 1).verifier_key()).unwrap();
    assert_eq!(
        Checkpoint::open(SUMDB_NOTE, &[impostor]).unwrap_err(),
        CheckpointError::Note(NoteError::NoVerifiedSignature)
    );
}

#[test]
fn go_example_keys_compute_the_same_ids_and_signatures() {
    let peter = NoteSigner::from_private_key_text(PETER_SKEY).unwrap();
    assert_eq!(peter.name(), "PeterNeumann");
    assert_eq!(peter.key_id(), 0xc74f20a3);
    assert_eq!(peter.verifier_key(), PETER_VKEY);
    assert_eq!(peter.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(*peter.to_private_key_text(), PETER_SKEY);
    // Ed25519 is deterministic: Go's TestSign output, byte for byte.
    let expected = case("go-note-peter");
    assert_eq!(
        peter.sign(GO_TEXT).unwrap(),
        expected["note"]["text"].as_str().unwrap()
    );
    assert_eq!(expected["signer_key"], PETER_SKEY);

    let v = NoteVerifier::from_vkey(PETER_VKEY).unwrap();
    assert_eq!((v.name(), v.key_id()), ("PeterNeumann", 0xc74f20a3));
    assert_eq!(v, peter.verifier());
    let enoch =
        NoteVerifier::from_vkey("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop")
            .unwrap();
    assert_eq!(enoch.key_id(), 0xaf0cfe78);
    assert_eq!(
        NoteVerifier::from_public_key("EnochRoot", enoch.public_key())
            .unwrap()
            .to_vkey(),
        enoch.to_vkey()
    );
    let c2sp = NoteVerifier::from_vkey(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .unwrap();
    assert_eq!(c2sp.key_id(), 0x530d903a);
}

#[test]
fn checkpoints_round_trip_through_sign_open_and_parse() {
    let log = signer("log.example/writ", 7);
    let root = writ_log::leaf_hash(b"entry");
    let mut cp = Checkpoint::new("log.example/writ", 1, root);
    let note = cp.sign(&log).unwrap();
    assert!(note.starts_with(&format!(
        "log.example/writ\n1\n{}\n\n\u{2014} log.example/writ ",
        STANDARD.encode(root.as_bytes())
    )));
    assert_eq!(Checkpoint::open(&note, &[log.verifier()]).unwrap(), cp);
    assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);

    cp.size = u64::MAX;
    cp.extensions = vec!["ext one".into(), "é".into()];
    let note = cp.sign(&log).unwrap();
    assert_eq!(
        Checkpoint::open(note.as_bytes(), &[log.verifier()]).unwrap(),
        cp
    );

    let empty = Checkpoint::new("log.example/writ", 0, writ_log::EMPTY_ROOT);
    assert!(empty
        .to_text()
        .starts_with("log.example/writ\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"));
    assert_eq!(Checkpoint::parse(&empty.to_text()).unwrap(), empty);

    // A checkpoint signed by another key, or opened by another log's key, is refused.
    let other = signer("log.example/writ", 8);
    assert_eq!(
        Checkpoint::open(&note, &[other.verifier()]).unwrap_err(),
        CheckpointError::Note(NoteError::NoVerifiedSignature)
    );

    // Checkpoints that would not parse back are not signed.
    let mut bad = Checkpoint::new("", 1, root);
    assert_eq!(bad.sign(&log).unwrap_err(), CheckpointError::EmptyOrigin);
    bad.origin = "a\nb".into();
    assert_eq!(bad.sign(&log).unwrap_err(), CheckpointError::OriginNewline);
    bad.origin = "a".into();
    bad.extensions = vec!["".into()];
    assert_eq!(
        bad.sign(&log).unwrap_err(),
        CheckpointError::InvalidExtension(1)
    );
    bad.extensions = vec!["x".into(), "y\n".into()];
    assert_eq!(
        bad.sign(&log).unwrap_err(),
        CheckpointError::InvalidExtension(2)
    );
    bad.extensions = vec!["x\ty".into()];
    assert_eq!(
        bad.sign(&log).unwrap_err(),
        CheckpointError::ControlCharacter(9)
    );
}

#[test]
fn checkpoint_text_is_parsed_strictly() {
    let root = STANDARD.encode([0xab; 32]);
    let ok = format!("o\n5\n{root}\n");
    assert_eq!(Checkpoint::parse(&ok).unwrap().size, 5);
    let cases: Vec<(String, CheckpointError)> = vec![
        (format!("o\n5\n{root}"), CheckpointError::Unterminated),
        ("o\n5\n".into(), CheckpointError::TooFewLines(2)),
        ("".into(), CheckpointError::Unterminated),
        (format!("\n5\n{root}\n"), CheckpointError::EmptyOrigin),
        (
            format!("o\n05\n{root}\n"),
            CheckpointError::SizeFormat("05".into()),
        ),
        (
            format!("o\n\n{root}\n"),
            CheckpointError::SizeFormat("".into()),
        ),
        (
            format!("o\n+5\n{root}\n"),
            CheckpointError::SizeFormat("+5".into()),
        ),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            CheckpointError::SizeTooLarge("18446744073709551616".into()),
        ),
        ("o\n5\nnot base64!\n".into(), CheckpointError::RootBase64),
        (
            format!("o\n5\n{}\n", root.trim_end_matches('=')),
            CheckpointError::RootBase64,
        ),
        (
            format!("o\n5\n{}\n", STANDARD.encode([0xab; 31])),
            CheckpointError::RootLength(31),
        ),
        (
            format!("o\n5\n{}\n", STANDARD.encode([0xab; 33])),
            CheckpointError::RootLength(33),
        ),
        (
            format!("o\n5\n{root}\n\n"),
            CheckpointError::InvalidExtension(1),
        ),
        (
            format!("o\n5\n{root}\nx\n\ny\n"),
            CheckpointError::InvalidExtension(2),
        ),
        (
            format!("o\r\n5\n{root}\n"),
            CheckpointError::ControlCharacter(0x0d),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Checkpoint::parse(&text).unwrap_err(), expected, "{text:?}");
    }
}

#[test]
fn notes_are_opened_as_the_spec_says() {
    let alice = signer("alice.example", 1);
    let bob = signer("bob.example", 2);
    let text = "line one\n\nline three after a blank line\n";
    let by_alice = alice.sign(text).unwrap();
    let by_bob = bob.sign(text).unwrap();
    let bob_line = &by_bob[text.len() + 1..];
    let both = format!("{by_alice}{bob_line}");

    // The text ends at the last blank line; unknown signers are listed, not trusted.
    let note = SignedNote::open(&both, &[alice.verifier()]).unwrap();
    assert_eq!(note.text(), text);
    assert_eq!(note.verified_signers()[0].name(), "alice.example");
    assert_eq!(note.unverified_signers()[0].key_id(), bob.key_id());
    assert!(!note.is_signed_by(&bob.verifier()));
    let note = SignedNote::open(&both, &[bob.verifier(), alice.verifier()]).unwrap();
    assert_eq!(note.verified_signers().len(), 2);
    assert_eq!(note.clone().into_text(), text);

    // Same name, other key id; same key id, other name: both unknown, so ignored.
    let alice_other = signer("alice.example", 3);
    assert_eq!(
        SignedNote::open(&by_alice, &[alice_other.verifier()]).unwrap_err(),
        NoteError::NoVerifiedSignature
    );
    let renamed = by_alice.replace("\u{2014} alice.example ", "\u{2014} carol.example ");
    assert_eq!(
        SignedNote::open(&renamed, &[alice.verifier()]).unwrap_err(),
        NoteError::NoVerifiedSignature
    );

    // A known key whose signature fails refuses the note, even next to a good one.
    let forged_line = bob_line.replace("\u{2014} bob.example ", "\u{2014} alice.example ");
    let forged = format!("{by_alice}{forged_line}");
    // (bob's key id under alice's name is unknown: ignored)
    assert!(SignedNote::open(&forged, &[alice.verifier()]).is_ok());
    let mut raw = STANDARD.decode(alice_sig_b64(&by_alice)).unwrap();
    raw[10] ^= 1;
    let tampered = format!(
        "{by_alice}\u{2014} alice.example {}\n",
        STANDARD.encode(&raw)
    );
    assert_eq!(
        SignedNote::open(&tampered, &[alice.verifier()]).unwrap_err(),
        NoteError::InvalidSignature {
            name: "alice.example".into(),
            key_id: alice.key_id()
        }
    );

    // Duplicates: a repeated good signature counts once; repeated unknown lines once.
    let twice = format!(
        "{by_alice}{}{bob_line}{bob_line}",
        &by_alice[text.len() + 1..]
    );
    let note = SignedNote::open(&twice, &[alice.verifier()]).unwrap();
    assert_eq!(note.verified_signers().len(), 1);
    assert_eq!(note.unverified_signers().len(), 1);

    // The same verifier given twice is no ambiguity (a second *key* with the same name
    // and key id would be; only a SHA-256 prefix collision can make one).
    assert!(SignedNote::open(&by_alice, &[alice.verifier(), alice.verifier()]).is_ok());
    assert_eq!(
        NoteVerifier::from_vkey(&alice.verifier_key()).unwrap(),
        alice.verifier()
    );
}

fn alice_sig_b64(note: &str) -> &str {
    note.trim_end().rsplit(' ').next().unwrap()
}

#[test]
fn malformed_notes_are_refused() {
    let alice = signer("alice.example", 1);
    let v = [alice.verifier()];
    let note = alice.sign("hello\n").unwrap();
    let sig = alice_sig_b64(&note).to_owned();
    let refused = |text: String, expected: NoteError| {
        assert_eq!(
            SignedNote::open(&text, &v).unwrap_err(),
            expected,
            "{text:?}"
        );
    };
    refused(
        format!("hello\n\n\u{2014}alice.example {sig}\n"),
        NoteError::NotASignatureLine(1),
    );
    refused(
        format!("hello\n\n- alice.example {sig}\n"),
        NoteError::NotASignatureLine(1),
    );
    refused(
        format!("hello\n\n\u{2014} alice.example {sig} \n"),
        NoteError::SignatureBase64(1),
    );
    refused(
        format!("hello\n\n\u{2014} alice.example  {sig}\n"),
        NoteError::SignatureBase64(1),
    );
    refused(
        "hello\n\n\u{2014} alice.example\n".into(),
        NoteError::SignatureMissing(1),
    );
    refused(
        "hello\n\n\u{2014} alice.example \n".into(),
        NoteError::SignatureMissing(1),
    );
    refused(
        format!("hello\n\n\u{2014} {sig}\n"),
        NoteError::SignatureMissing(1),
    );
    refused(
        format!("hello\n\n\u{2014}  {sig}\n"),
        NoteError::SignatureKeyName(1),
    );
    refused(
        format!("hello\n\n\u{2014} a+b {sig}\n"),
        NoteError::SignatureKeyName(1),
    );
    refused(
        format!("hello\n\n\u{2014} a\u{a0}b {sig}\n"),
        NoteError::SignatureKeyName(1),
    );
    refused(
        format!(
            "hello\n\n\u{2014} alice.example {}\n",
            sig.trim_end_matches('=')
        ),
        NoteError::SignatureBase64(1),
    );
    refused(
        format!(
            "hello\n\n\u{2014} alice.example {}\n",
            STANDARD.encode([1, 2, 3, 4])
        ),
        NoteError::SignatureTooShort(1),
    );
    refused(format!("{note}\n"), NoteError::NoSignatures);
    refused(
        format!("hello\r\n\n\u{2014} alice.example {sig}\n"),
        NoteError::ControlCharacter(13),
    );
    refused(
        format!("{note}\u{2014} alice.example {sig}\n\n"),
        NoteError::NoSignatures,
    );

    // A signature with a known key id but the wrong length fails as a signature.
    let mut short = STANDARD.decode(&sig).unwrap();
    short.pop();
    refused(
        format!(
            "hello\n\n\u{2014} alice.example {}\n",
            STANDARD.encode(&short)
        ),
        NoteError::InvalidSignature {
            name: "alice.example".into(),
            key_id: alice.key_id(),
        },
    );

    // go-note-malformed-5 with its final newline: "Bad" is the name, "Name …" not base64.
    let go5 = case("go-note-malformed-5");
    let text = format!("{}\n", go5["note"]["text"].as_str().unwrap());
    let peter = NoteVerifier::from_vkey(PETER_VKEY).unwrap();
    assert_eq!(
        SignedNote::open(&text, &[peter]).unwrap_err(),
        NoteError::SignatureBase64(1)
    );

    // Size limits: at most MAX_SIGNATURES lines and MAX_LEN bytes.
    let bob_line = {
        let bob = signer("bob.example", 2);
        let n = bob.sign("hello\n").unwrap();
        n["hello\n\n".len()..].to_owned()
    };
    let many = format!("{note}{}", bob_line.repeat(SignedNote::MAX_SIGNATURES - 1));
    assert!(SignedNote::open(&many, &v).is_ok());
    refused(
        format!("{many}{bob_line}"),
        NoteError::TooManySignatures(100),
    );
    let long = format!(
        "{}\n\n\u{2014} alice.example {sig}\n",
        "a".repeat(SignedNote::MAX_LEN)
    );
    refused(
        long.clone(),
        NoteError::TooLong {
            len: long.len(),
            max: SignedNote::MAX_LEN,
        },
    );
}

#[test]
fn keys_and_texts_are_checked() {
    let alice = signer("alice.example", 1);
    assert_eq!(alice.sign("").unwrap_err(), NoteError::EmptyText);
    assert_eq!(
        alice.sign("no newline").unwrap_err(),
        NoteError::TextWithoutFinalNewline
    );
    assert_eq!(
        alice.sign("a\tb\n").unwrap_err(),
        NoteError::ControlCharacter(9)
    );
    // A text ending in a blank line, or holding signature-like lines, still round-trips.
    let v = [alice.verifier()];
    for text in [
        "\n",
        "a\n\n",
        "a\n\n\u{2014} alice.example AAAA\n",
        "\u{2014} x y\n",
    ] {
        let note = alice.sign(text).unwrap();
        assert_eq!(
            SignedNote::open(&note, &v).unwrap().text(),
            text,
            "{text:?}"
        );
    }
    assert_eq!(
        alice
            .sign(&"a\n".repeat(SignedNote::MAX_LEN / 2))
            .unwrap_err(),
        NoteError::TooLong {
            len: SignedNote::MAX_LEN + 1 + "\u{2014} alice.example \n".len() + 92,
            max: SignedNote::MAX_LEN
        }
    );

    for name in ["", "a b", "a+b", "a\nb", "a\u{2003}b"] {
        assert_eq!(
            NoteSigner::from_seed(name, &[1; 32]).unwrap_err(),
            NoteError::InvalidKeyName(name.into()),
            "{name:?}"
        );
    }

    let vkey = alice.verifier_key();
    let (prefix, b64) = vkey.rsplit_once('+').unwrap();
    let mut raw = STANDARD.decode(b64).unwrap();
    let id = format!("{:08x}", alice.key_id());
    for bad in [
        "".to_owned(),
        "alice.example".to_owned(),
        format!("alice.example+{id}"),
        format!("alice.example+{}+{b64}", &id[1..]),
        format!("alice.example+0x{}+{b64}", &id[2..]),
        format!("{prefix}+{}", &b64[..b64.len() - 1]),
        format!("{prefix}+{b64}="),
        format!("{prefix}+"),
    ] {
        assert_eq!(
            NoteVerifier::from_vkey(&bad).unwrap_err(),
            NoteError::VerifierKeyFormat,
            "{bad:?}"
        );
    }
    assert_eq!(
        NoteVerifier::from_vkey(&format!("a b+{id}+{b64}")).unwrap_err(),
        NoteError::InvalidKeyName("a b".into())
    );
    // Upper-case hex is read (as Go does) and written back lower-case.
    let upper = format!("alice.example+{}+{b64}", id.to_uppercase());
    assert_eq!(NoteVerifier::from_vkey(&upper).unwrap().to_vkey(), vkey);
    // Another key name with the same key: key id mismatch.
    assert!(matches!(
        NoteVerifier::from_vkey(&format!("bob.example+{id}+{b64}")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    // Other signature types are refused, even with a consistent key id.
    raw[0] = 0x02;
    let other_type = vkey_for("alice.example", &raw);
    assert_eq!(
        NoteVerifier::from_vkey(&other_type).unwrap_err(),
        NoteError::UnsupportedSignatureType(0x02)
    );
    raw[0] = 0x01;
    raw.pop();
    assert_eq!(
        NoteVerifier::from_vkey(&vkey_for("alice.example", &raw)).unwrap_err(),
        NoteError::KeyLength(31)
    );
    // A small-order point is not a key.
    let mut weak = vec![0x01, 0x01];
    weak.extend_from_slice(&[0; 31]);
    assert_eq!(
        NoteVerifier::from_vkey(&vkey_for("alice.example", &weak)).unwrap_err(),
        NoteError::PublicKey
    );

    // Private keys.
    let skey = alice.to_private_key_text();
    let back = NoteSigner::from_private_key_text(&skey).unwrap();
    assert_eq!(back.verifier_key(), vkey);
    assert_eq!(back.sign("x\n").unwrap(), alice.sign("x\n").unwrap());
    let peter_wrong_id = PETER_SKEY.replace("c74f20a3", "c74f20a4");
    assert_eq!(
        NoteSigner::from_private_key_text(&peter_wrong_id).unwrap_err(),
        NoteError::KeyIdMismatch {
            found: 0xc74f20a4,
            expected: 0xc74f20a3
        }
    );
    for bad in [
        PETER_VKEY.to_owned(),
        PETER_SKEY.replace("PRIVATE+KEY+", "PRIVATE+"),
        PETER_SKEY.replace("+c74f20a3", ""),
        PETER_SKEY.trim_end_matches('z').to_owned(),
        format!(" {PETER_SKEY}"),
    ] {
        assert_eq!(
            NoteSigner::from_private_key_text(&bad).unwrap_err(),
            NoteError::PrivateKeyFormat,
            "{bad:?}"
        );
    }
    assert!(format!("{back:?}").contains("alice.example"));
    assert!(!format!("{back:?}").contains(skey.rsplit('+').next().unwrap()));
}

/// A verifier key text with a consistent key id for arbitrary key bytes.
fn vkey_for(name: &str, raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(raw);
    let id = &h.finalize()[..4];
    format!("{name}+{}+{}", hex::encode(id), STANDARD.encode(raw))
}
