//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): which stored subtree hashes
//! a proof needs, how to assemble it, how to verify it, and the proof files of DESIGN.md.

use serde::{Deserialize, Serialize};

use crate::error::ProofError;
use crate::hash::{node_hash, Hash};
use crate::tree::{decompose, root_from_range, NodeId};

/// What a proof is made of: each element is the root over a run of stored perfect subtrees.
/// The caller fetches [`ProofPlan::nodes`] (O(log n) of them) and calls [`ProofPlan::assemble`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    elements: Vec<Vec<NodeId>>,
}

impl ProofPlan {
    /// Every stored node the proof needs.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.elements.iter().flatten().copied()
    }

    /// How many hashes the proof will hold.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the proof is empty.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Builds the proof from fetched node hashes; `fetch` failing fails the whole proof.
    pub fn assemble<E>(
        &self,
        mut fetch: impl FnMut(NodeId) -> Result<Hash, E>,
    ) -> Result<Vec<Hash>, E> {
        self.elements
            .iter()
            .map(|nodes| {
                let hashes = nodes
                    .iter()
                    .map(|n| fetch(*n))
                    .collect::<Result<Vec<_>, E>>()?;
                Ok(root_from_range(&hashes))
            })
            .collect()
    }
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The plan of the inclusion proof of leaf `index` in a tree of `size` leaves (RFC 9162
/// §2.1.3.1 `PATH`).
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut elements = Vec::new();
    path(index, 0, size, &mut elements);
    Ok(ProofPlan { elements })
}

fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<Vec<NodeId>>) {
    if hi - lo <= 1 {
        return;
    }
    let k = split(hi - lo);
    if m - lo < k {
        path(m, lo, lo + k, out);
        out.push(decompose(lo + k, hi));
    } else {
        path(m, lo + k, hi, out);
        out.push(decompose(lo, lo + k));
    }
}

/// The plan of the consistency proof from `size1` to `size2` leaves (RFC 9162 §2.1.4.1
/// `PROOF`), for `0 < size1 <= size2`.
pub fn consistency_plan(size1: u64, size2: u64) -> Result<ProofPlan, ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::SizeOrder { size1, size2 });
    }
    let mut elements = Vec::new();
    subproof(size1, 0, size2, true, &mut elements);
    Ok(ProofPlan { elements })
}

fn subproof(m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<Vec<NodeId>>) {
    if m == hi - lo {
        if !complete {
            out.push(decompose(lo, hi));
        }
        return;
    }
    let k = split(hi - lo);
    if m <= k {
        subproof(m, lo, lo + k, complete, out);
        out.push(decompose(lo + k, hi));
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push(decompose(lo, lo + k));
    }
}

fn hash_at(bytes: &[u8], position: usize) -> Result<Hash, ProofError> {
    Hash::from_slice(bytes).ok_or(ProofError::HashLength(position))
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`
/// (RFC 9162 §2.1.3.2). Every hash must be 32 bytes.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let leaf = hash_at(leaf_hash, 0)?;
    let root = hash_at(root, 0)?;
    let proof = proof
        .iter()
        .enumerate()
        .map(|(i, p)| hash_at(p.as_ref(), i))
        .collect::<Result<Vec<_>, _>>()?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_plan(index, size)?.len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in &proof {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves
/// with `root1` (RFC 9162 §2.1.4.2). Equal sizes hold only with an empty proof and roots
/// equal byte for byte; `size1 = 0` and `size1 > size2` are refused.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::SizeOrder { size1, size2 });
    }
    if size1 == size2 {
        // Outside RFC 9162's preconditions; as transparency-dev/merkle decides it: the same
        // tree, byte for byte, with nothing to prove.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let root1 = hash_at(root1, 0)?;
    let root2 = hash_at(root2, 0)?;
    let proof = proof
        .iter()
        .enumerate()
        .map(|(i, p)| hash_at(p.as_ref(), i))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = consistency_plan(size1, size2)?.len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend_from_slice(&proof);
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::RootMismatch);
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if fr == root1 && sr == root2 && s == 0 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// An inclusion proof file: `{"type":"inclusion","tree_size":N,"leaf_index":I,"leaf_hash":…,
/// "root_hash":…,"hashes":[…]}`, hashes lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Leaves in the tree.
    pub tree_size: u64,
    /// The leaf's 0-based index.
    pub leaf_index: u64,
    /// The leaf hash.
    pub leaf_hash: Hash,
    /// The tree's root.
    pub root_hash: Hash,
    /// The audit path.
    pub hashes: Vec<Hash>,
}

/// A consistency proof file: `{"type":"consistency","size1":M,"size2":N,"root1":…,"root2":…,
/// "hashes":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older size.
    pub size1: u64,
    /// The newer size.
    pub size2: u64,
    /// The older root.
    pub root1: Hash,
    /// The newer root.
    pub root2: Hash,
    /// The proof.
    pub hashes: Vec<Hash>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ProofFile {
    Inclusion {
        tree_size: u64,
        leaf_index: u64,
        leaf_hash: String,
        root_hash: String,
        hashes: Vec<String>,
    },
    Consistency {
        size1: u64,
        size2: u64,
        root1: String,
        root2: String,
        hashes: Vec<String>,
    },
}

fn parse_hash(text: &str, position: usize) -> Result<Hash, ProofError> {
    Hash::from_hex(text).ok_or(ProofError::HashLength(position))
}

fn parse_hashes(texts: &[String]) -> Result<Vec<Hash>, ProofError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| parse_hash(t, i))
        .collect()
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_hex).collect()
}

/// A proof file of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// An inclusion proof.
    Inclusion(InclusionProof),
    /// A consistency proof.
    Consistency(ConsistencyProof),
}

impl Proof {
    /// Reads a proof file; unknown fields, a wrong `type` or a hash that is not 32 bytes of
    /// lowercase hex are refused.
    pub fn from_json(text: &str) -> Result<Self, ProofError> {
        writ_core::canonical::parse_strict(text).map_err(|e| ProofError::Format(e.to_string()))?;
        let file: ProofFile =
            serde_json::from_str(text).map_err(|e| ProofError::Format(e.to_string()))?;
        Ok(match file {
            ProofFile::Inclusion {
                tree_size,
                leaf_index,
                leaf_hash,
                root_hash,
                hashes,
            } => Proof::Inclusion(InclusionProof {
                tree_size,
                leaf_index,
                leaf_hash: parse_hash(&leaf_hash, 0)?,
                root_hash: parse_hash(&root_hash, 0)?,
                hashes: parse_hashes(&hashes)?,
            }),
            ProofFile::Consistency {
                size1,
                size2,
                root1,
                root2,
                hashes,
            } => Proof::Consistency(ConsistencyProof {
                size1,
                size2,
                root1: parse_hash(&root1, 0)?,
                root2: parse_hash(&root2, 0)?,
                hashes: parse_hashes(&hashes)?,
            }),
        })
    }

    /// The proof file text (one line of JSON).
    pub fn to_json(&self) -> String {
        let file = match self {
            Proof::Inclusion(p) => ProofFile::Inclusion {
                tree_size: p.tree_size,
                leaf_index: p.leaf_index,
                leaf_hash: p.leaf_hash.to_hex(),
                root_hash: p.root_hash.to_hex(),
                hashes: hexes(&p.hashes),
            },
            Proof::Consistency(p) => ProofFile::Consistency {
                size1: p.size1,
                size2: p.size2,
                root1: p.root1.to_hex(),
                root2: p.root2.to_hex(),
                hashes: hexes(&p.hashes),
            },
        };
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Verifies the proof against the roots it carries.
    pub fn verify(&self) -> Result<(), ProofError> {
        match self {
            Proof::Inclusion(p) => p.verify(),
            Proof::Consistency(p) => p.verify(),
        }
    }
}

impl InclusionProof {
    /// Verifies the proof against the root it carries.
    pub fn verify(&self) -> Result<(), ProofError> {
        verify_inclusion(
            self.leaf_index,
            self.tree_size,
            &self.leaf_hash.0,
            &self.hashes.iter().map(|h| h.0).collect::<Vec<_>>(),
            &self.root_hash.0,
        )
    }
}

impl ConsistencyProof {
    /// Verifies the proof against the roots it carries.
    pub fn verify(&self) -> Result<(), ProofError> {
        verify_consistency(
            self.size1,
            self.size2,
            &self.root1.0,
            &self.root2.0,
            &self.hashes.iter().map(|h| h.0).collect::<Vec<_>>(),
        )
    }
}
