//! Time as the verifier sees it: whole seconds since the Unix epoch, passed in by the caller.

/// Seconds since the Unix epoch. The verifier never reads a clock; callers pass the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The seconds since the epoch.
    pub fn as_secs(self) -> u64 {
        self.0
    }
}
