//! Delegation: a child writ issued on presentation of its parent. The authority applies
//! DESIGN.md's lineage rules before policy sees the request: the parent is its own, valid and
//! unrevoked; its `del` allows the child's action and resource; the child's depth stays
//! within `del.max_depth`; and the child will not outlive it. Policy then sees where the
//! request sits in the tree (`context.lineage`), and the child carries `lin`.

use writ_core::{
    parse_unverified, Delegation, DenyCode, Jti, Lineage, Pattern, RevocationState,
    RevocationSubject, Sha256Digest,
};

use crate::authority::{Authority, AuthorizeRequest};
use crate::error::ApiError;

/// A parent that holds up, and what the child inherits from it.
pub(crate) struct Parent {
    /// The child's `lin`.
    pub(crate) lin: Lineage,
    /// The parent's expiry: the child's is capped to it.
    pub(crate) exp: u64,
    /// The parent's `del`: the child's own `del` stays within its depth.
    pub(crate) del: Delegation,
    /// The holders of the writs above the child, root first.
    pub(crate) chain: Vec<String>,
}

/// Why a parent does not hold up: a denial code of DESIGN.md and a detail.
pub(crate) type ParentDenial = (DenyCode, String);

impl Authority {
    /// Checks the parent `compact` presented for `request` at `now`. Store failures are
    /// errors (nothing is decided); everything else about the parent is a denial.
    pub(crate) fn check_parent(
        &self,
        request: &AuthorizeRequest,
        compact: &str,
        now: u64,
    ) -> Result<Result<Parent, ParentDenial>, ApiError> {
        let deny = |code: DenyCode, detail: String| Ok(Err((code, detail)));
        let parent = match parse_unverified(compact) {
            Ok(p) => p,
            Err(d) => return deny(d.code, d.detail.into_owned()),
        };
        let claims = parent.claims();
        let ring = self.ring();
        let Some(key) = ring.published().get(parent.kid()) else {
            return deny(
                DenyCode::UnknownKey,
                "the parent is signed by a key this authority does not know".into(),
            );
        };
        if !key.verify(parent.signing_input(), parent.signature()) {
            return deny(
                DenyCode::InvalidSignature,
                "the parent's signature does not verify".into(),
            );
        }
        if claims.iss != self.config().issuer {
            return deny(
                DenyCode::UnknownKey,
                "the parent was issued by another authority".into(),
            );
        }
        if now >= claims.exp {
            return deny(DenyCode::Expired, "the parent has expired".into());
        }
        let ancestry = self.replay().ancestry(&claims.jti)?;
        let ancestors: Vec<Jti> = ancestry.iter().map(|(j, _, _)| *j).collect();
        let subject = RevocationSubject {
            jti: &claims.jti,
            ancestors: &ancestors,
            principals: [claims.sub.as_str(), claims.aud.as_str()],
        };
        match self.replay().check(&subject) {
            Ok(RevocationState::Valid) => {}
            Ok(RevocationState::Revoked(what)) => {
                return deny(
                    DenyCode::RevokedAuthorization,
                    format!("the parent is revoked ({what})"),
                )
            }
            Err(e) => return Err(ApiError::Unavailable(e.to_string())),
        }
        let Some(del) = claims.del.clone() else {
            return deny(
                DenyCode::LineageInconsistency,
                "the parent may not delegate (no `del`)".into(),
            );
        };
        let depth = claims.lin.as_ref().map_or(1, |l| l.depth.saturating_add(1));
        if depth > del.max_depth {
            return deny(
                DenyCode::LineageInconsistency,
                format!(
                    "depth {depth} is over the parent's limit of {}",
                    del.max_depth
                ),
            );
        }
        let allowed = |patterns: &[String], text: &str| {
            patterns.iter().any(|p| Pattern::parse(p).matches(text))
        };
        if !allowed(&del.actions, &request.action) || !allowed(&del.resources, &request.resource) {
            return deny(
                DenyCode::LineageInconsistency,
                format!(
                    "`{}` on `{}` is wider than what the parent may delegate",
                    request.action, request.resource
                ),
            );
        }
        let root = claims.lin.as_ref().map_or(claims.jti, |l| l.root);
        // The holders above the child, root first: the root's, then each descendant's down
        // to the parent's.
        let chain: Vec<String> = match ancestry.first() {
            None => vec![claims.sub.clone()],
            Some((_, _, root_holder)) => std::iter::once(root_holder.clone())
                .chain(ancestry.iter().map(|(_, holder, _)| holder.clone()))
                .collect(),
        };
        Ok(Ok(Parent {
            lin: Lineage {
                parent: claims.jti,
                parent_sha256: Sha256Digest::of(compact.as_bytes()),
                root,
                depth,
            },
            exp: claims.exp,
            del,
            chain,
        }))
    }
}
