//! What an operator configures: the issuer name and the bounds policy and callers must stay
//! within.

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
    /// Requests each principal may make per second on average; 0 turns the limit off.
    pub rate_limit_per_sec: u32,
    /// Requests a principal may make in a burst above the average.
    pub rate_limit_burst: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A request that takes longer is abandoned with 503 (nothing is issued).
    pub request_timeout_ms: u64,
    /// A new signing key is published in the JWKS this long before it signs, so gates that
    /// refresh their pinned JWKS learn it first.
    pub key_announce_secs: u64,
    /// A request pending approval expires after this long unless settled.
    pub approval_ttl_secs: u64,
}

impl AuthorityConfig {
    /// Defaults of DESIGN.md: 60 s writs, at most 300 s, at most 10 uses; 100 requests/s per
    /// principal with bursts of 200; bodies up to 256 KiB; 10 s per request; keys announced 60 s before use;
    /// approval requests expire after 15 minutes.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            default_lifetime_secs: 60,
            max_lifetime_secs: 300,
            max_uses: 10,
            rate_limit_per_sec: 100,
            rate_limit_burst: 200,
            max_body_bytes: 256 * 1024,
            request_timeout_ms: 10_000,
            key_announce_secs: 60,
            approval_ttl_secs: 900,
        }
    }
}
