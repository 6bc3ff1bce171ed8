//! Errors of writ-log's proof handling.

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A hash in the proof is not 32 bytes (or not hex).
    #[error("hash {0} of the proof is not 32 bytes of lowercase hex")]
    HashLength(usize),
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes of a consistency proof are not `0 < size1 <= size2`.
    #[error("consistency from size {size1} to {size2} is not defined")]
    SizeOrder {
        /// The first size.
        size1: u64,
        /// The second size.
        size2: u64,
    },
    /// The proof has the wrong number of hashes for the sizes it claims.
    #[error("proof has {got} hashes, {expected} expected")]
    WrongLength {
        /// Hashes present.
        got: usize,
        /// Hashes the sizes call for.
        expected: usize,
    },
    /// The proof does not lead to the root it claims.
    #[error("proof does not reproduce the root")]
    RootMismatch,
    /// A proof file is not valid JSON of the expected shape.
    #[error("invalid proof file: {0}")]
    Format(String),
}
