//! Proofs against the published vectors, and every (index, size) up to 64 against a naive
//! implementation of RFC 9162's recursive definitions.

use std::collections::HashMap;

use serde_json::Value;
use writ_log::{
    consistency_plan, inclusion_plan, leaf_hash, node_hash, verify_consistency, verify_inclusion,
    CompactRange, ConsistencyProof, Hash, InclusionProof, NodeId, Proof, ProofError, EMPTY_ROOT,
};

const VECTORS: &str = include_str!("../../../testdata/merkle_vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn hasher_vectors_and_roots() {
    let doc = vectors();
    assert_eq!(
        EMPTY_ROOT.to_hex(),
        doc["empty_tree_root"].as_str().unwrap()
    );
    for v in doc["hasher_vectors"].as_array().unwrap() {
        let expected = v["expected"].as_str().unwrap();
        match v["kind"].as_str().unwrap() {
            "empty_root" => assert_eq!(EMPTY_ROOT.to_hex(), expected),
            "leaf" => assert_eq!(leaf_hash(&bytes(&v["input"])).to_hex(), expected),
            // Node vectors hash raw strings, not 32-byte hashes: check the construction.
            "node" => {
                let mut input = vec![0x01];
                input.extend(bytes(&v["left"]));
                input.extend(bytes(&v["right"]));
                assert_eq!(writ_core::Sha256Digest::of(&input).to_hex(), expected);
            }
            other => panic!("unknown hasher vector kind {other}"),
        }
    }
    let leaves: Vec<Vec<u8>> = doc["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| bytes(&l["input"]))
        .collect();
    let mut range = CompactRange::new();
    let roots = doc["roots"].as_array().unwrap();
    for (i, leaf) in leaves.iter().enumerate() {
        range.append(leaf_hash(leaf));
        let want = roots
            .iter()
            .find(|r| r["tree_size"] == (i as u64 + 1))
            .unwrap();
        assert_eq!(
            range.root().to_hex(),
            want["root"].as_str().unwrap(),
            "size {}",
            i + 1
        );
    }
}

#[test]
fn inclusion_vectors_judged_as_labelled() {
    let doc = vectors();
    let cases = doc["inclusion_proofs"].as_array().unwrap();
    assert_eq!(cases.len(), 105);
    let mut real_world = 0;
    for case in cases {
        let proof: Vec<Vec<u8>> = case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes)
            .collect();
        let got = verify_inclusion(
            case["leaf_index"].as_u64().unwrap(),
            case["tree_size"].as_u64().unwrap(),
            &bytes(&case["leaf_hash"]),
            &proof,
            &bytes(&case["root"]),
        );
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(
            got.is_ok(),
            valid,
            "{}: {} -> {got:?}",
            case["id"],
            case["desc"]
        );
        if case["category"] == "malformed_hash_length" {
            assert!(
                matches!(got, Err(ProofError::HashLength(_))),
                "{}",
                case["id"]
            );
        }
        if let Some(input) = case.get("leaf_input").filter(|v| v.is_string()) {
            if valid {
                assert_eq!(
                    leaf_hash(&bytes(input)).to_hex(),
                    case["leaf_hash"].as_str().unwrap()
                );
            }
        }
        real_world += usize::from(case["real_world"] == true);
    }
    assert!(
        real_world > 0,
        "the Certificate Transparency proofs are included"
    );
}

#[test]
fn consistency_vectors_judged_as_labelled() {
    let doc = vectors();
    let cases = doc["consistency_proofs"].as_array().unwrap();
    assert_eq!(cases.len(), 105);
    for case in cases {
        let proof: Vec<Vec<u8>> = case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes)
            .collect();
        let got = verify_consistency(
            case["size1"].as_u64().unwrap(),
            case["size2"].as_u64().unwrap(),
            &bytes(&case["root1"]),
            &bytes(&case["root2"]),
            &proof,
        );
        assert_eq!(
            got.is_ok(),
            case["valid"].as_bool().unwrap(),
            "{}: {} -> {got:?}",
            case["id"],
            case["desc"]
        );
    }
}

/// RFC 9162 §2.1.1 MTH, straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn naive_split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]).
fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return vec![];
    }
    let k = naive_split(n);
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(naive_root(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(naive_root(&leaves[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { vec![] } else { vec![naive_root(leaves)] };
    }
    let k = naive_split(n);
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], b);
        p.push(naive_root(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(naive_root(&leaves[..k]));
        p
    }
}

#[test]
fn every_proof_up_to_64_matches_the_naive_definitions() {
    const MAX: u64 = 64;
    let leaves: Vec<Hash> = (0..MAX)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    let mut stored: HashMap<NodeId, Hash> = HashMap::new();
    let mut range = CompactRange::new();
    let mut roots = vec![EMPTY_ROOT];
    for leaf in &leaves {
        stored.extend(range.append(*leaf));
        roots.push(range.root());
    }
    let fetch = |n: NodeId| stored.get(&n).copied().ok_or(n);
    for size in 1..=MAX {
        let tree = &leaves[..size as usize];
        assert_eq!(roots[size as usize], naive_root(tree), "root of {size}");
        for index in 0..size {
            let plan = inclusion_plan(index, size).unwrap();
            assert!(plan.nodes().count() <= 2 * 64);
            let proof = plan.assemble(fetch).unwrap();
            assert_eq!(
                proof,
                naive_path(index as usize, tree),
                "inclusion {index} in {size}"
            );
            let raw: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
            verify_inclusion(
                index,
                size,
                &leaves[index as usize].0,
                &raw,
                &roots[size as usize].0,
            )
            .unwrap();
            // The same proof for any other leaf or root fails.
            let other = leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(
                    verify_inclusion(index, size, &other.0, &raw, &roots[size as usize].0).is_err()
                );
            }
        }
        for size1 in 1..=size {
            let plan = consistency_plan(size1, size).unwrap();
            let proof = plan.assemble(fetch).unwrap();
            assert_eq!(
                proof,
                naive_subproof(size1 as usize, tree, true),
                "consistency {size1} -> {size}"
            );
            let raw: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
            verify_consistency(
                size1,
                size,
                &roots[size1 as usize].0,
                &roots[size as usize].0,
                &raw,
            )
            .unwrap();
            if size1 < size {
                assert!(verify_consistency(
                    size1,
                    size,
                    &roots[size1 as usize - 1].0.map(|b| b ^ 1),
                    &roots[size as usize].0,
                    &raw
                )
                .is_err());
            }
        }
    }
}

#[test]
fn proof_files_round_trip_and_refuse_bad_hashes() {
    let leaves: Vec<Hash> = (0..5u8).map(|i| leaf_hash(&[i])).collect();
    let mut stored: HashMap<NodeId, Hash> = HashMap::new();
    let mut range = CompactRange::new();
    for leaf in &leaves {
        stored.extend(range.append(*leaf));
    }
    let fetch = |n: NodeId| stored.get(&n).copied().ok_or(n);
    let inclusion = Proof::Inclusion(InclusionProof {
        tree_size: 5,
        leaf_index: 3,
        leaf_hash: leaves[3],
        root_hash: range.root(),
        hashes: inclusion_plan(3, 5).unwrap().assemble(fetch).unwrap(),
    });
    let text = inclusion.to_json();
    assert!(text.starts_with(r#"{"type":"inclusion","tree_size":5,"leaf_index":3,"leaf_hash":""#));
    assert_eq!(Proof::from_json(&text).unwrap(), inclusion);
    inclusion.verify().unwrap();

    let mut r3 = CompactRange::new();
    for leaf in &leaves[..3] {
        r3.append(*leaf);
    }
    let consistency = Proof::Consistency(ConsistencyProof {
        size1: 3,
        size2: 5,
        root1: r3.root(),
        root2: range.root(),
        hashes: consistency_plan(3, 5).unwrap().assemble(fetch).unwrap(),
    });
    assert_eq!(
        Proof::from_json(&consistency.to_json()).unwrap(),
        consistency
    );
    consistency.verify().unwrap();

    let short = text.replacen(&leaves[3].to_hex(), &leaves[3].to_hex()[..62], 1);
    assert!(matches!(
        Proof::from_json(&short),
        Err(ProofError::HashLength(_))
    ));
    let upper = text.replacen(&leaves[3].to_hex(), &leaves[3].to_hex().to_uppercase(), 1);
    assert!(Proof::from_json(&upper).is_err());
    assert!(matches!(
        Proof::from_json(&text.replace("inclusion", "audit")),
        Err(ProofError::Format(_))
    ));
    assert!(matches!(
        Proof::from_json(&text.replacen('{', r#"{"extra":1,"#, 1)),
        Err(ProofError::Format(_))
    ));
    assert!(matches!(
        Proof::from_json(&text.replacen('{', r#"{"tree_size":9,"#, 1)),
        Err(ProofError::Format(_))
    ));
}

#[test]
fn proofs_read_a_logarithmic_number_of_stored_hashes() {
    // Sizes up to 2^40 and awkward ones around powers of two: never more than 2·log2(n) + 2
    // stored hashes, however large the log.
    let mut sizes = vec![1u64, 2, 3, 1_000_000, 961_984_013, (1 << 40) - 1, 1 << 40];
    sizes.extend((1..40).flat_map(|b| [(1u64 << b) - 1, 1 << b, (1 << b) + 1]));
    for size in sizes {
        let bound = 2 * (64 - size.leading_zeros() as usize) + 2;
        for index in [0, size / 3, size / 2, size - 1] {
            let reads = inclusion_plan(index, size).unwrap().nodes().count();
            assert!(
                reads <= bound,
                "inclusion {index} of {size}: {reads} > {bound}"
            );
        }
        for size1 in [1, size / 3 + 1, size / 2 + 1, size] {
            let reads = consistency_plan(size1, size).unwrap().nodes().count();
            assert!(
                reads <= bound,
                "consistency {size1} -> {size}: {reads} > {bound}"
            );
        }
        assert!(CompactRange::nodes_for(size).len() <= 64);
    }
}
