//! Delegation rules: how a child writ must relate to its parent (DESIGN.md, "Lineage").

use crate::claims::{Claims, Delegation, Jti, Lineage};
use crate::deny::{Denial, DenyCode};
use crate::pattern::Pattern;
use crate::time::UnixTime;
use crate::verifier::Verifier;

/// Checks `claims.lin` and, when `ancestors` are given, every link up to the root. Returns
/// the ancestor ids known, parent first, for the revocation check.
pub(crate) fn check(
    verifier: &Verifier,
    claims: &Claims,
    ancestors: &[&str],
    now: UnixTime,
) -> Result<Vec<Jti>, Denial> {
    let Some(lin) = &claims.lin else {
        if ancestors.is_empty() {
            return Ok(Vec::new());
        }
        return Err(inconsistent(
            "writ has no `lin` but ancestors were presented",
        ));
    };
    check_structure(claims, lin)?;
    if ancestors.is_empty() {
        let mut ids = vec![lin.parent];
        if lin.root != lin.parent {
            ids.push(lin.root);
        }
        return Ok(ids);
    }
    if ancestors.len() != lin.depth as usize {
        return Err(inconsistent(format!(
            "writ has depth {}, but {} ancestor(s) were presented",
            lin.depth,
            ancestors.len()
        )));
    }

    let mut ids = Vec::with_capacity(ancestors.len());
    let mut child = claims.clone();
    for (i, compact) in ancestors.iter().enumerate() {
        let at = |d: Denial| Denial::new(d.code, format!("ancestor {}: {}", i + 1, d.detail));
        let parent_writ = verifier.authenticate(compact).map_err(at)?;
        let digest = parent_writ.digest();
        let parent = parent_writ.into_claims();
        verifier.check_time(&parent, now).map_err(at)?;
        check_link(&child, &parent, &digest).map_err(at)?;
        ids.push(parent.jti);
        child = parent;
    }
    Ok(ids)
}

/// What `lin` alone must satisfy.
fn check_structure(claims: &Claims, lin: &Lineage) -> Result<(), Denial> {
    if lin.depth == 0 {
        return Err(inconsistent("`lin.depth` is 0"));
    }
    if lin.parent == claims.jti || lin.root == claims.jti {
        return Err(inconsistent("writ names itself as parent or root"));
    }
    if (lin.depth == 1) != (lin.parent == lin.root) {
        return Err(inconsistent("parent is the root exactly when depth is 1"));
    }
    Ok(())
}

/// One link: `child` was issued on presentation of `parent` (whose compact form hashes to
/// `parent_digest`).
fn check_link(
    child: &Claims,
    parent: &Claims,
    parent_digest: &crate::digest::Sha256Digest,
) -> Result<(), Denial> {
    // INVARIANT: the caller only passes children that carry `lin`.
    let Some(lin) = &child.lin else {
        return Err(inconsistent("link without `lin`"));
    };
    if lin.parent != parent.jti {
        return Err(inconsistent(
            "`lin.parent` is not the presented parent's `jti`",
        ));
    }
    if &lin.parent_sha256 != parent_digest {
        return Err(inconsistent(
            "`lin.parent_sha256` does not match the presented parent",
        ));
    }
    let (parent_depth, parent_root) = match &parent.lin {
        Some(plin) => (plin.depth, plin.root),
        None => (0, parent.jti),
    };
    if lin.depth != parent_depth.saturating_add(1) {
        return Err(inconsistent("depth is not the parent's depth plus one"));
    }
    if lin.root != parent_root {
        return Err(inconsistent("`lin.root` is not the parent's root"));
    }
    if child.exp > parent.exp {
        return Err(inconsistent("writ outlives its parent"));
    }
    let Some(del) = &parent.del else {
        return Err(inconsistent("parent does not allow delegation (no `del`)"));
    };
    if lin.depth > del.max_depth {
        return Err(inconsistent(format!(
            "depth {} exceeds the parent's `del.max_depth` {}",
            lin.depth, del.max_depth
        )));
    }
    if !any_matches(&del.actions, &child.scope.action) {
        return Err(inconsistent(format!(
            "action `{}` is outside the parent's `del.actions`",
            crate::verifier::short(&child.scope.action)
        )));
    }
    if !any_matches(&del.resources, &child.scope.resource) {
        return Err(inconsistent(format!(
            "resource `{}` is outside the parent's `del.resources`",
            crate::verifier::short(&child.scope.resource)
        )));
    }
    if let Some(child_del) = &child.del {
        if !delegation_within(child_del, del) {
            return Err(inconsistent("`del` is wider than the parent's"));
        }
    }
    Ok(())
}

/// Whether a child may be issued with `child` as its `del`, under a parent whose `del` is
/// `parent`: every pattern narrower, depth no greater.
pub(crate) fn delegation_within(child: &Delegation, parent: &Delegation) -> bool {
    child.max_depth <= parent.max_depth
        && all_contained(&child.actions, &parent.actions)
        && all_contained(&child.resources, &parent.resources)
}

fn any_matches(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| Pattern::parse(p).matches(text))
}

fn all_contained(narrow: &[String], wide: &[String]) -> bool {
    narrow.iter().all(|n| {
        let n = Pattern::parse(n);
        wide.iter().any(|w| Pattern::parse(w).contains(&n))
    })
}

fn inconsistent(detail: impl Into<std::borrow::Cow<'static, str>>) -> Denial {
    Denial::new(DenyCode::LineageInconsistency, detail)
}
