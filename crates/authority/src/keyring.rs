//! Which signing key signs and which keys are published, as a pure function of the stored
//! keys and the time. Rotation in two steps: a new key is published (in the JWKS) from the
//! moment it is added and signs from its activation; the key it supersedes stops signing then
//! and leaves the JWKS once every writ it signed has expired.

use std::sync::Arc;

use writ_core::{KeyId, KeySet, SigningKey};
use writ_store::StoredKey;

/// One usable key: neither revoked nor removed.
struct RingKey {
    key: Arc<SigningKey>,
    announced_at: u64,
    activates_at: u64,
}

/// The state of one key, as `GET /v1/keys` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyState {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `announced` (published, not signing yet), `active` (signing) or `retiring`
    /// (superseded; published until its last writ expired).
    pub state: String,
    /// When it was published.
    pub announced_at: u64,
    /// From when it signs.
    pub activates_at: u64,
    /// When it leaves the JWKS, for a retiring key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<u64>,
}

/// The usable keys, by activation time.
pub(crate) struct KeyRing {
    keys: Vec<RingKey>,
    published: KeySet,
}

impl KeyRing {
    /// The ring over `stored`: revoked and removed keys are left out.
    pub(crate) fn new(stored: Vec<StoredKey>) -> Self {
        let mut keys: Vec<RingKey> = stored
            .into_iter()
            .filter(|k| k.revoked_at.is_none() && k.removed_at.is_none())
            .map(|k| RingKey {
                key: Arc::new(k.key),
                announced_at: k.announced_at,
                activates_at: k.activates_at,
            })
            .collect();
        keys.sort_by_key(|k| (k.activates_at, k.announced_at));
        let mut published = KeySet::new();
        for k in &keys {
            // Distinct rows have distinct kids; a duplicate is simply published once.
            let _ = published.insert(k.key.verifying_key());
        }
        Self { keys, published }
    }

    /// Every key gates may see: announced, active and retiring ones.
    pub(crate) fn published(&self) -> &KeySet {
        &self.published
    }

    fn active_index(&self, now: u64) -> Option<usize> {
        self.keys.iter().rposition(|k| k.activates_at <= now)
    }

    /// The key that signs at `now`: the latest one activated. None when no key is active
    /// (then nothing is issued).
    pub(crate) fn signer(&self, now: u64) -> Option<Arc<SigningKey>> {
        self.active_index(now).map(|i| self.keys[i].key.clone())
    }

    /// When each superseded key may leave: its successor's activation plus the longest a
    /// writ can live plus the skew allowance.
    fn retires_at(&self, i: usize, linger_secs: u64) -> Option<u64> {
        self.keys
            .get(i + 1)
            .map(|next| next.activates_at.saturating_add(linger_secs))
    }

    /// Superseded keys whose last writ has expired at `now`: they leave the JWKS.
    pub(crate) fn expired(&self, now: u64, linger_secs: u64) -> Vec<KeyId> {
        let Some(active) = self.active_index(now) else {
            return Vec::new();
        };
        (0..active)
            .filter(|&i| self.retires_at(i, linger_secs).is_some_and(|t| t <= now))
            .map(|i| self.keys[i].key.kid().clone())
            .collect()
    }

    /// Each key's state at `now`.
    pub(crate) fn states(&self, now: u64, linger_secs: u64) -> Vec<KeyState> {
        let active = self.active_index(now);
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let state = match active {
                    Some(a) if i == a => "active",
                    Some(a) if i < a => "retiring",
                    _ => "announced",
                };
                KeyState {
                    kid: k.key.kid().to_string(),
                    state: state.into(),
                    announced_at: k.announced_at,
                    activates_at: k.activates_at,
                    retires_at: (state == "retiring")
                        .then(|| self.retires_at(i, linger_secs))
                        .flatten(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seed: u8, activates_at: u64) -> StoredKey {
        StoredKey {
            key: SigningKey::from_seed(&[seed; 32]),
            announced_at: activates_at.saturating_sub(10),
            activates_at,
            removed_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_the_old_one_lingers() {
        let old = SigningKey::from_seed(&[1; 32]);
        let new = SigningKey::from_seed(&[2; 32]);
        let ring = KeyRing::new(vec![stored(2, 100), stored(1, 0)]);
        assert_eq!(ring.published().len(), 2);
        // Before activation the old key signs, though the new one is published.
        assert_eq!(ring.signer(99).unwrap().kid(), old.kid());
        assert_eq!(ring.signer(100).unwrap().kid(), new.kid());
        // The old key lingers for the longest writ life after the new one activates.
        assert!(ring.expired(100, 305).is_empty());
        assert!(ring.expired(404, 305).is_empty());
        assert_eq!(ring.expired(405, 305), vec![old.kid().clone()]);
        let states = ring.states(200, 305);
        assert_eq!(states[0].state, "retiring");
        assert_eq!(states[0].retires_at, Some(405));
        assert_eq!(states[1].state, "active");
        assert_eq!(ring.states(50, 305)[1].state, "announced");
    }

    #[test]
    fn revoked_and_removed_keys_neither_sign_nor_verify() {
        let mut revoked = stored(1, 0);
        revoked.revoked_at = Some(5);
        let mut removed = stored(3, 1);
        removed.removed_at = Some(5);
        let ring = KeyRing::new(vec![revoked, removed]);
        assert!(ring.published().is_empty());
        assert!(ring.signer(10).is_none());
        assert!(KeyRing::new(vec![stored(1, 50)]).signer(49).is_none());
    }
}
