//! The delegation tree around one writ, built from log entries: a pure function of the log.
//!
//! From the writ asked about, the tree walks up through `parent` to the root writ (whose
//! `principal` is the root initiator), then takes in every descendant: each decision whose
//! `parent` is a node's `jti`, recursively. Denied child requests (a `deny` decision with a
//! `parent`) are leaves. Each node carries its decision, consumptions, receipts and the
//! revocations that name it (the writ, or its principal or audience); a writ revocation of an
//! ancestor covers the whole subtree, shown as `revoked_by` on every node below it. A writ
//! released by human approval also carries its request's story: the `pending` decision and
//! each `approval` entry (approved, rejected, expired) with the same `request_id`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// A log entry: its index and its JSON.
pub type Entry = (u64, Value);

/// The tree containing the writ asked about.
#[derive(Debug)]
pub struct Tree {
    /// The root writ's `principal`, the initiator of the whole chain.
    pub root_initiator: Option<String>,
    /// The root writ (or the highest one the log holds, if its parent's decision is missing).
    pub root: Node,
}

/// One writ (or one denied child request) in the tree.
#[derive(Debug)]
pub struct Node {
    /// The writ's id; `None` for a denied request that issued no writ.
    pub jti: Option<String>,
    /// 0 for the root; one more than its parent below it.
    pub depth: u64,
    /// The decision entry that released (or refused) it.
    pub decision: Entry,
    /// For a writ released by approval: the pending decision and the approval entries of its
    /// request, in log order.
    pub approvals: Vec<Entry>,
    pub consumptions: Vec<Entry>,
    pub receipts: Vec<Entry>,
    /// Revocations naming this writ, or its principal or audience (after its decision).
    pub revocations: Vec<Entry>,
    /// The highest writ on the path from the root to this node (itself included) that a writ
    /// revocation names: this node is revoked through it.
    pub revoked_by: Option<String>,
    pub children: Vec<Node>,
}

impl Node {
    /// Whether the decision was a deny.
    pub fn denied(&self) -> bool {
        self.decision.1["decision"] == "deny"
    }

    /// Whether a revocation covers this writ (its own, or an ancestor's writ revocation).
    pub fn revoked(&self) -> bool {
        self.revoked_by.is_some() || !self.revocations.is_empty()
    }

    /// The node for `jti` in this subtree.
    pub fn find(&self, jti: &str) -> Option<&Node> {
        if self.jti.as_deref() == Some(jti) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(jti))
    }

    /// The nodes of this subtree, parents before children.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn walk(&self) -> Vec<&Node> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

/// No decision for the writ asked about is in the log.
#[derive(Debug, PartialEq, Eq)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no decision for writ `{}` in the log", self.0)
    }
}

/// The entries that matter to lineage, gathered from the log in order.
#[derive(Default)]
pub struct Index {
    /// The last decision for each `jti`.
    decisions: HashMap<String, Entry>,
    /// For each parent `jti`, its children in log order: `Ok(jti)` for a decision with a
    /// `jti`, `Err(entry)` for a request that issued none.
    children: HashMap<String, Vec<Result<String, Entry>>>,
    consumptions: HashMap<String, Vec<Entry>>,
    receipts: HashMap<String, Vec<Entry>>,
    revocations: Vec<Entry>,
    /// For each approval request id: its pending decision and approval entries.
    requests: HashMap<String, Vec<Entry>>,
}

fn str_field<'a>(entry: &'a Value, key: &str) -> Option<&'a str> {
    entry[key].as_str().filter(|s| !s.is_empty())
}

impl Index {
    /// Files one log entry (entries must come in log order).
    pub fn add(&mut self, index: u64, entry: Value) {
        let jti = str_field(&entry, "jti").map(str::to_owned);
        match (entry["type"].as_str(), jti) {
            (Some("decision"), None) if entry["decision"] == "pending" => {
                if let Some(id) = str_field(&entry, "request_id").map(str::to_owned) {
                    self.requests.entry(id).or_default().push((index, entry));
                }
            }
            (Some("approval"), _) => {
                if let Some(id) = str_field(&entry, "request_id").map(str::to_owned) {
                    self.requests.entry(id).or_default().push((index, entry));
                }
            }
            (Some("decision"), jti) => {
                let parent = str_field(&entry, "parent").map(str::to_owned);
                match jti {
                    Some(jti) => {
                        if let Some(parent) = parent {
                            let kids = self.children.entry(parent).or_default();
                            if !kids.iter().any(|k| k.as_ref().ok() == Some(&jti)) {
                                kids.push(Ok(jti.clone()));
                            }
                        }
                        self.decisions.insert(jti, (index, entry));
                    }
                    None => {
                        if let Some(parent) = parent {
                            self.children
                                .entry(parent)
                                .or_default()
                                .push(Err((index, entry)));
                        }
                    }
                }
            }
            (Some("consumption"), Some(jti)) => {
                self.consumptions
                    .entry(jti)
                    .or_default()
                    .push((index, entry));
            }
            (Some("receipt"), Some(jti)) => {
                self.receipts.entry(jti).or_default().push((index, entry));
            }
            (Some("revocation"), _) => self.revocations.push((index, entry)),
            _ => {}
        }
    }

    /// The tree containing `jti`.
    pub fn tree(mut self, jti: &str) -> Result<Tree, NotFound> {
        if !self.decisions.contains_key(jti) {
            return Err(NotFound(jti.to_owned()));
        }
        // Up through `parent` while the parent's decision is in the log (and no cycle).
        let mut top = jti.to_owned();
        let mut seen = HashSet::from([top.clone()]);
        while let Some(parent) = self
            .decisions
            .get(&top)
            .and_then(|(_, d)| str_field(d, "parent"))
            .filter(|p| self.decisions.contains_key(*p) && !seen.contains(*p))
            .map(str::to_owned)
        {
            seen.insert(parent.clone());
            top = parent;
        }
        let depth = self
            .decisions
            .get(&top)
            .and_then(|(_, d)| d["depth"].as_u64())
            .unwrap_or(0);
        let mut visited = HashSet::new();
        let root = self
            .node(Ok(top), depth, None, &mut visited)
            .ok_or_else(|| NotFound(jti.to_owned()))?;
        let root_initiator = str_field(&root.decision.1, "principal").map(str::to_owned);
        Ok(Tree {
            root_initiator,
            root,
        })
    }

    /// The request story of a decision released at a quorum (or denied there).
    fn approvals_of(&mut self, decision: &Value) -> Vec<Entry> {
        str_field(decision, "request_id")
            .and_then(|id| self.requests.remove(id))
            .unwrap_or_default()
    }

    /// The node for `key` and its subtree; `revoked_by` is the revoked ancestor, if any.
    fn node(
        &mut self,
        key: Result<String, Entry>,
        depth: u64,
        revoked_by: Option<String>,
        visited: &mut HashSet<String>,
    ) -> Option<Node> {
        let jti = match key {
            Err(decision) => {
                let approvals = self.approvals_of(&decision.1);
                return Some(Node {
                    jti: None,
                    depth,
                    approvals,
                    decision,
                    consumptions: Vec::new(),
                    receipts: Vec::new(),
                    revocations: Vec::new(),
                    revoked_by,
                    children: Vec::new(),
                });
            }
            Ok(jti) => jti,
        };
        if !visited.insert(jti.clone()) {
            return None;
        }
        let decision = self.decisions.get(&jti)?.clone();
        let names = [
            str_field(&decision.1, "principal"),
            str_field(&decision.1, "audience"),
        ];
        let mut revoked_by = revoked_by;
        let mut revocations = Vec::new();
        for (index, r) in &self.revocations {
            let target = str_field(r, "target");
            let about_writ = r["kind"] == "writ" && target == Some(jti.as_str());
            let about_principal = r["kind"] == "principal"
                && *index > decision.0
                && target.is_some()
                && names.contains(&target);
            if about_writ && revoked_by.is_none() {
                revoked_by = Some(jti.clone());
            }
            if about_writ || about_principal {
                revocations.push((*index, r.clone()));
            }
        }
        let kids = self.children.remove(&jti).unwrap_or_default();
        let children = kids
            .into_iter()
            .filter_map(|k| self.node(k, depth + 1, revoked_by.clone(), visited))
            .collect();
        Some(Node {
            approvals: self.approvals_of(&decision.1),
            consumptions: self.consumptions.remove(&jti).unwrap_or_default(),
            receipts: self.receipts.remove(&jti).unwrap_or_default(),
            jti: Some(jti),
            depth,
            decision,
            revocations,
            revoked_by,
            children,
        })
    }
}

/// The tree containing `jti`, from log entries in order.
#[cfg_attr(not(test), allow(dead_code))]
pub fn build(entries: impl IntoIterator<Item = Entry>, jti: &str) -> Result<Tree, NotFound> {
    let mut index = Index::default();
    for (i, e) in entries {
        index.add(i, e);
    }
    index.tree(jti)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn decision(jti: &str, principal: &str, parent: Option<(&str, &str, u64)>) -> Value {
        let mut d = json!({"type": "decision", "decision": "permit", "jti": jti,
            "principal": principal, "action": "repo.test", "resource": "repo:writ",
            "audience": "gate-1", "policy_ids": ["p1"], "exp": 1000});
        if let Some((parent, root, depth)) = parent {
            d["parent"] = json!(parent);
            d["root"] = json!(root);
            d["depth"] = json!(depth);
        }
        d
    }

    /// root R (orchestrator) → A (sub-1) → A1 (sub-3), A2 (sub-4); R → B (sub-2) →
    /// a denied `repo.push`; A revoked; an unrelated writ X; consumptions and receipts.
    pub(crate) fn entries() -> Vec<Entry> {
        let mut push_denied = decision("", "sub-2", Some(("B", "R", 2)));
        push_denied["decision"] = json!("deny");
        push_denied["action"] = json!("repo.push");
        push_denied["reasons"] = json!([{"code": "lineage_inconsistency", "message": "no"}]);
        push_denied.as_object_mut().map(|o| o.remove("policy_ids"));
        push_denied.as_object_mut().map(|o| o.remove("jti"));
        vec![
            json!({"type": "note", "text": "hello"}),
            decision("R", "orchestrator", None),
            decision("X", "someone", None),
            decision("A", "sub-1", Some(("R", "R", 1))),
            decision("B", "sub-2", Some(("R", "R", 1))),
            decision("A1", "sub-3", Some(("A", "R", 2))),
            json!({"type": "consumption", "jti": "A1", "executor": "gate-1", "decision": "permit"}),
            json!({"type": "receipt", "jti": "A1", "executor": "gate-1", "exit_status": 0,
                   "duration_ms": 4, "stdout_sha256": "ab"}),
            json!({"type": "consumption", "jti": "X", "executor": "gate-1", "decision": "permit"}),
            decision("A2", "sub-4", Some(("A", "R", 2))),
            push_denied,
            json!({"type": "revocation", "kind": "writ", "target": "A", "by": "security",
                   "reason": "incident \"42\"", "at": 5}),
            json!({"type": "revocation", "kind": "writ", "target": "X", "by": "security"}),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as u64, e))
        .collect()
    }

    fn jtis(node: &Node) -> Vec<Option<&str>> {
        node.children.iter().map(|c| c.jti.as_deref()).collect()
    }

    #[test]
    fn builds_the_whole_tree_from_any_node() {
        for from in ["R", "A", "A1", "A2", "B"] {
            let tree = build(entries(), from).unwrap();
            assert_eq!(
                tree.root_initiator.as_deref(),
                Some("orchestrator"),
                "{from}"
            );
            let root = &tree.root;
            assert_eq!(root.jti.as_deref(), Some("R"));
            assert_eq!(root.depth, 0);
            assert_eq!(root.decision.0, 1);
            assert_eq!(jtis(root), vec![Some("A"), Some("B")]);
            let a = root.find("A").unwrap();
            assert_eq!(a.depth, 1);
            assert_eq!(jtis(a), vec![Some("A1"), Some("A2")]);
            let a1 = root.find("A1").unwrap();
            assert_eq!(a1.depth, 2);
            assert_eq!(a1.consumptions.len(), 1);
            assert_eq!(a1.receipts.len(), 1);
            assert_eq!(a1.receipts[0].0, 7);
            assert_eq!(root.walk().len(), 6);
            assert!(root.find("X").is_none(), "an unrelated writ stays out");
        }
    }

    #[test]
    fn a_revoked_middle_node_revokes_its_subtree_only() {
        let tree = build(entries(), "A1").unwrap();
        let root = &tree.root;
        let a = root.find("A").unwrap();
        assert_eq!(a.revocations.len(), 1);
        assert_eq!(a.revocations[0].0, 11);
        assert_eq!(a.revoked_by.as_deref(), Some("A"));
        for jti in ["A1", "A2"] {
            let n = root.find(jti).unwrap();
            assert!(n.revocations.is_empty());
            assert_eq!(n.revoked_by.as_deref(), Some("A"), "{jti}");
            assert!(n.revoked());
        }
        for jti in ["R", "B"] {
            assert!(!root.find(jti).unwrap().revoked(), "{jti}");
        }
    }

    #[test]
    fn a_denied_child_is_a_leaf() {
        let tree = build(entries(), "B").unwrap();
        let b = tree.root.find("B").unwrap();
        assert_eq!(jtis(b), vec![None]);
        let denied = &b.children[0];
        assert!(denied.denied());
        assert_eq!(denied.depth, 2);
        assert_eq!(denied.decision.0, 10);
        assert_eq!(denied.decision.1["action"], "repo.push");
        assert!(denied.children.is_empty());
    }

    #[test]
    fn principal_revocations_and_unknown_writs() {
        let mut e = entries();
        e.push((
            13,
            json!({"type": "revocation", "kind": "principal", "target": "sub-2", "by": "x"}),
        ));
        let tree = build(e, "B").unwrap();
        let b = tree.root.find("B").unwrap();
        assert_eq!(b.revocations.len(), 1);
        assert_eq!(
            b.revoked_by, None,
            "a principal revocation is no writ revocation"
        );
        assert_eq!(
            build(entries(), "nope").unwrap_err(),
            NotFound("nope".into())
        );
    }

    #[test]
    fn a_missing_parent_or_a_cycle_stops_the_walk() {
        let e = vec![
            (0, decision("C", "sub", Some(("GONE", "GONE", 3)))),
            (1, decision("D", "sub", Some(("C", "GONE", 4)))),
            (2, decision("P", "x", Some(("Q", "Q", 1)))),
            (3, decision("Q", "y", Some(("P", "Q", 1)))),
        ];
        let tree = build(e.clone(), "D").unwrap();
        assert_eq!(tree.root.jti.as_deref(), Some("C"));
        assert_eq!(tree.root.depth, 3);
        assert_eq!(tree.root.children[0].depth, 4);
        let tree = build(e, "P").unwrap();
        assert_eq!(tree.root.walk().len(), 2);
    }

    #[test]
    fn a_writ_released_by_approval_carries_its_request() {
        let mut released = decision("P", "finance-bot", None);
        released["request_id"] = json!("req-1");
        let entries = vec![
            json!({"type": "decision", "decision": "pending", "principal": "finance-bot",
                   "request_id": "req-1", "approvals_required": 2, "approver_group": "finance"}),
            json!({"type": "decision", "decision": "pending", "principal": "finance-bot",
                   "request_id": "req-2", "approvals_required": 2, "approver_group": "finance"}),
            json!({"type": "approval", "event": "approved", "request_id": "req-1",
                   "approver": "alice", "approver_kid": "k1"}),
            json!({"type": "approval", "event": "rejected", "request_id": "req-2",
                   "approver": "carol", "approver_kid": "k3"}),
            json!({"type": "approval", "event": "approved", "request_id": "req-1",
                   "approver": "bob", "approver_kid": "k2"}),
            released,
        ];
        let tree = build(
            entries.into_iter().enumerate().map(|(i, e)| (i as u64, e)),
            "P",
        )
        .unwrap();
        let story: Vec<(u64, &str)> = tree
            .root
            .approvals
            .iter()
            .map(|(i, e)| (*i, e["event"].as_str().unwrap_or("pending")))
            .collect();
        assert_eq!(story, [(0, "pending"), (2, "approved"), (4, "approved")]);
        assert!(
            tree.root.children.is_empty(),
            "a pending decision is no child"
        );
    }
}
