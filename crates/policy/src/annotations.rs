//! What writ reads from policy annotations.
//!
//! | annotation | on | meaning |
//! | --- | --- | --- |
//! | `@id("allow-git")` | every policy | the policy's id in decisions, reasons and writs (`pol.ids`) |
//! | `@reason("…")` | forbid | the text a denial shows next to the id |
//! | `@lifetime("30")` | permit | the writ's lifetime in seconds (at least 1; capped by the caller's maximum) |
//! | `@uses("1")` | permit | how many executions the writ allows (at least 1; capped by the caller's maximum) |
//! | `@approvals("2")` + `@approvers("finance")` | permit | the permit holds only once that many distinct members of the group approved |
//! | `@delegate_actions("exec,tools/call")` + `@delegate_resources("/usr/bin/*")` [+ `@delegate_depth("1")`] | permit | the writ may be delegated (`del`); patterns as in Cedar `like`, comma-separated; depth defaults to 1 |

use writ_core::Delegation;

/// The annotation keys writ reads.
pub(crate) const ID: &str = "id";
pub(crate) const REASON: &str = "reason";
const LIFETIME: &str = "lifetime";
const USES: &str = "uses";
const APPROVALS: &str = "approvals";
const APPROVERS: &str = "approvers";
const DELEGATE_ACTIONS: &str = "delegate_actions";
const DELEGATE_RESOURCES: &str = "delegate_resources";
const DELEGATE_DEPTH: &str = "delegate_depth";

/// Annotations that only mean something on a permit policy.
pub(crate) const PERMIT_ONLY: &[&str] = &[
    LIFETIME,
    USES,
    APPROVALS,
    APPROVERS,
    DELEGATE_ACTIONS,
    DELEGATE_RESOURCES,
    DELEGATE_DEPTH,
];

/// What a permit policy grants beyond "yes".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Grant {
    pub(crate) lifetime_secs: Option<u64>,
    pub(crate) uses: Option<u32>,
    pub(crate) approval: Option<ApprovalRule>,
    pub(crate) delegation: Option<Delegation>,
}

/// `@approvals` and `@approvers`: how many distinct members of which group must approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApprovalRule {
    pub(crate) required: u32,
    pub(crate) group: String,
}

/// Reads the annotations of a permit policy. The error says which annotation is wrong.
pub(crate) fn read_grant<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Grant, String> {
    let lifetime_secs = get(LIFETIME).map(|v| positive(LIFETIME, v)).transpose()?;
    let uses = get(USES)
        .map(|v| positive(USES, v).and_then(|n| to_u32(USES, n)))
        .transpose()?;
    let approval = match (get(APPROVALS), get(APPROVERS)) {
        (None, None) => None,
        (Some(n), Some(group)) => {
            let required = positive(APPROVALS, n).and_then(|n| to_u32(APPROVALS, n))?;
            let group = group.trim();
            if group.is_empty() {
                return Err(format!("`@{APPROVERS}` names no group"));
            }
            Some(ApprovalRule {
                required,
                group: group.to_owned(),
            })
        }
        (Some(_), None) => return Err(format!("`@{APPROVALS}` needs `@{APPROVERS}`")),
        (None, Some(_)) => return Err(format!("`@{APPROVERS}` needs `@{APPROVALS}`")),
    };
    let delegation = match (get(DELEGATE_ACTIONS), get(DELEGATE_RESOURCES)) {
        (None, None) => {
            if get(DELEGATE_DEPTH).is_some() {
                return Err(format!(
                    "`@{DELEGATE_DEPTH}` needs `@{DELEGATE_ACTIONS}` and `@{DELEGATE_RESOURCES}`"
                ));
            }
            None
        }
        (Some(actions), Some(resources)) => {
            let max_depth = match get(DELEGATE_DEPTH) {
                Some(v) => positive(DELEGATE_DEPTH, v).and_then(|n| to_u32(DELEGATE_DEPTH, n))?,
                None => 1,
            };
            Some(Delegation {
                actions: list(DELEGATE_ACTIONS, actions)?,
                resources: list(DELEGATE_RESOURCES, resources)?,
                max_depth,
            })
        }
        _ => {
            return Err(format!(
                "`@{DELEGATE_ACTIONS}` and `@{DELEGATE_RESOURCES}` go together"
            ))
        }
    };
    Ok(Grant {
        lifetime_secs,
        uses,
        approval,
        delegation,
    })
}

/// A decimal integer of at least 1, digits only.
fn positive(key: &str, value: &str) -> Result<u64, String> {
    let n = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<u64>().ok()
    } else {
        None
    };
    match n {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`@{key}(\"{value}\")` is not a whole number of at least 1"
        )),
    }
}

fn to_u32(key: &str, n: u64) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("`@{key}(\"{n}\")` is too large"))
}

fn list(key: &str, value: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(format!("`@{key}` lists nothing"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn grant(pairs: &[(&str, &str)]) -> Result<Grant, String> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        read_grant(|k| map.get(k).copied())
    }

    #[test]
    fn reads_every_annotation() {
        let g = grant(&[
            ("lifetime", "30"),
            ("uses", "2"),
            ("approvals", "2"),
            ("approvers", "finance"),
            ("delegate_actions", "exec, tools/call"),
            ("delegate_resources", "/usr/bin/*"),
        ])
        .unwrap();
        assert_eq!(g.lifetime_secs, Some(30));
        assert_eq!(g.uses, Some(2));
        assert_eq!(
            g.approval,
            Some(ApprovalRule {
                required: 2,
                group: "finance".into()
            })
        );
        let d = g.delegation.unwrap();
        assert_eq!(d.actions, ["exec", "tools/call"]);
        assert_eq!(d.resources, ["/usr/bin/*"]);
        assert_eq!(d.max_depth, 1);
        assert_eq!(grant(&[]).unwrap(), Grant::default());
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            &[("lifetime", "0")][..],
            &[("lifetime", "-1")],
            &[("lifetime", "1.5")],
            &[("lifetime", " 3")],
            &[("uses", "99999999999")],
            &[("approvals", "2")],
            &[("approvers", "finance")],
            &[("approvals", "2"), ("approvers", " ")],
            &[("delegate_actions", "exec")],
            &[("delegate_depth", "2")],
            &[("delegate_actions", ","), ("delegate_resources", "*")],
        ] {
            assert!(grant(bad).is_err(), "{bad:?}");
        }
    }
}
