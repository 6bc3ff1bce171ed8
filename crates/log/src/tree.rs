//! The shape of the tree: perfect subtrees ([`NodeId`]) and the right edge ([`CompactRange`]).

use crate::hash::{node_hash, Hash, EMPTY_ROOT};

/// A perfect subtree: at `level` L it covers leaves `[index * 2^L, (index + 1) * 2^L)`. Only
/// perfect subtrees are ever stored; every other hash is combined from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = a leaf).
    pub level: u8,
    /// Position among the subtrees of this level.
    pub index: u64,
}

impl NodeId {
    /// The leaf at `index`.
    pub fn leaf(index: u64) -> Self {
        NodeId { level: 0, index }
    }
}

/// The perfect subtrees that make up leaves `[start, end)`, left to right, largest first.
///
/// INVARIANT: `start` is a multiple of the largest power of two not above `end - start`, as
/// every range of the RFC 9162 recursion is.
pub(crate) fn decompose(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(64);
    let mut at = start;
    let width = end - start;
    for level in (0..64u8).rev() {
        if width & (1u64 << level) != 0 {
            out.push(NodeId {
                level,
                index: at >> level,
            });
            at += 1u64 << level;
        }
    }
    out
}

/// The root over consecutive perfect subtrees given left to right (largest first):
/// `node_hash(h0, node_hash(h1, … node_hash(h_{k-1}, h_k)))`. Empty input is the empty tree.
pub fn root_from_range(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return EMPTY_ROOT;
    };
    iter.fold(*last, |acc, left| node_hash(left, &acc))
}

/// The right edge of a tree of `size` leaves: the perfect subtrees of `[0, size)`. It is all
/// an appender keeps in memory (at most 64 hashes), and it yields the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes whose hashes restore the range of a tree of `size` leaves.
    pub fn nodes_for(size: u64) -> Vec<NodeId> {
        decompose(0, size)
    }

    /// Restores a range from the hashes of [`CompactRange::nodes_for`]`(size)`, in order.
    /// Returns `None` when the count does not fit `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree so far.
    pub fn root(&self) -> Hash {
        root_from_range(&self.hashes)
    }

    /// The hashes of the range, largest subtree first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash. Returns every perfect subtree this completes, the leaf first, so
    /// the caller can store them.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut completed = vec![(NodeId::leaf(index), leaf)];
        let mut hash = leaf;
        let mut level = 0u8;
        // Each trailing one bit of the old size is a subtree of equal height to merge with.
        while index & (1u64 << level) != 0 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((
                NodeId {
                    level,
                    index: index >> level,
                },
                hash,
            ));
        }
        self.hashes.push(hash);
        self.size += 1;
        completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn decomposition_covers_the_range() {
        assert_eq!(decompose(0, 0), vec![]);
        assert_eq!(
            decompose(0, 7),
            vec![
                NodeId { level: 2, index: 0 },
                NodeId { level: 1, index: 2 },
                NodeId { level: 0, index: 6 }
            ]
        );
        assert_eq!(
            decompose(8, 13),
            vec![
                NodeId { level: 2, index: 2 },
                NodeId {
                    level: 0,
                    index: 12
                }
            ]
        );
    }

    #[test]
    fn append_emits_completed_subtrees_and_keeps_the_edge_small() {
        let mut range = CompactRange::new();
        let leaves: Vec<Hash> = (0..8u8).map(|i| leaf_hash(&[i])).collect();
        let mut stored = Vec::new();
        for leaf in &leaves {
            stored.extend(range.append(*leaf));
        }
        assert_eq!(range.size(), 8);
        assert_eq!(range.hashes().len(), 1);
        // 8 leaves + 4 + 2 + 1 interior subtrees.
        assert_eq!(stored.len(), 15);
        let n01 = node_hash(&leaves[0], &leaves[1]);
        assert!(stored.contains(&(NodeId { level: 1, index: 0 }, n01)));
        let restored = CompactRange::from_parts(8, range.hashes().to_vec()).unwrap();
        assert_eq!(restored.root(), range.root());
        assert!(CompactRange::from_parts(7, vec![]).is_none());
    }
}
