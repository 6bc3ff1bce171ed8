//! What an operator configures: the issuer name and the bounds policy must stay within.

/// The authority's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityConfig {
    /// `iss` of every writ; gates are configured to trust exactly this.
    pub issuer: String,
    /// Lifetime of a writ when policy says nothing, in seconds.
    pub default_lifetime_secs: u64,
    /// The longest lifetime policy may ask for.
    pub max_lifetime_secs: u64,
    /// The most uses policy may grant one writ.
    pub max_uses: u32,
}

impl AuthorityConfig {
    /// Defaults of DESIGN.md: 60 s writs, at most 300 s, at most 10 uses.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            default_lifetime_secs: 60,
            max_lifetime_secs: 300,
            max_uses: 10,
        }
    }
}
