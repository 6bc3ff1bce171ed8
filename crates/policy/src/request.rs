//! What is asked: who, which action, on what, with which arguments, in which context.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request for a decision.
///
/// In JSON: `{"principal":{"id","role","groups"},"action","resource","args","context"}`;
/// `args` and `context` default to `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Who asks: the authenticated principal, never a field a client chose.
    pub principal: Principal,
    /// The action, as the gates name it: `exec`, `tools/call`, `Bash`, `Write`, `pay`…
    pub action: String,
    /// The resource, as the gates name it: an absolute path, `mcp:<server>/<tool>`,
    /// `shell:<name>`, `account:<name>`.
    pub resource: String,
    /// The arguments (JSON). Policies read the attributes the schema declares for the action
    /// as `context.args`, and all of them as canonical JSON text in `context.args_json`.
    #[serde(default = "empty_object")]
    pub args: Value,
    /// The rest of the context (a JSON object): `purpose`, `ticket`, `env` (the
    /// runtime-environment measurement), `lineage`, or whatever the schema declares.
    #[serde(default = "empty_object")]
    pub context: Value,
}

/// The principal that asks, as the authority's registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Its id (the writ's `sub`).
    pub id: String,
    /// Its role: `agent`, `executor`, `approver` or `admin`.
    pub role: String,
    /// The groups it is a member of (`Writ::Group` parents).
    #[serde(default)]
    pub groups: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The Cedar entity type a resource string names, by its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceKind<'a> {
    /// `/abs/path` → `Writ::File { path }`.
    File { path: &'a str },
    /// `mcp:<server>/<tool>` → `Writ::Tool { id, server, name }`.
    Tool { server: &'a str, name: &'a str },
    /// `shell:<name>` → `Writ::Shell { id, name }`.
    Shell { name: &'a str },
    /// `account:<name>` → `Writ::Account { id, name }`.
    Account { name: &'a str },
}

impl<'a> ResourceKind<'a> {
    /// The kind of `resource`, or `None` for a form writ does not know.
    pub(crate) fn parse(resource: &'a str) -> Option<Self> {
        if resource.starts_with('/') {
            return Some(ResourceKind::File { path: resource });
        }
        let (scheme, rest) = resource.split_once(':')?;
        if rest.is_empty() {
            return None;
        }
        match scheme {
            "mcp" => {
                let (server, name) = rest.split_once('/')?;
                (!server.is_empty() && !name.is_empty())
                    .then_some(ResourceKind::Tool { server, name })
            }
            "shell" => Some(ResourceKind::Shell { name: rest }),
            "account" => Some(ResourceKind::Account { name: rest }),
            _ => None,
        }
    }

    /// The entity type name, in the `Writ` namespace.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            ResourceKind::File { .. } => "Writ::File",
            ResourceKind::Tool { .. } => "Writ::Tool",
            ResourceKind::Shell { .. } => "Writ::Shell",
            ResourceKind::Account { .. } => "Writ::Account",
        }
    }

    /// The entity's attributes.
    pub(crate) fn attrs(&self, id: &'a str) -> Vec<(&'static str, &'a str)> {
        match *self {
            ResourceKind::File { path } => vec![("path", path)],
            ResourceKind::Tool { server, name } => {
                vec![("id", id), ("server", server), ("name", name)]
            }
            ResourceKind::Shell { name } | ResourceKind::Account { name } => {
                vec![("id", id), ("name", name)]
            }
        }
    }

    /// One resource of each kind, to check the schema's types against.
    pub(crate) fn samples() -> [(&'static str, ResourceKind<'static>); 4] {
        [
            ("/sample", ResourceKind::File { path: "/sample" }),
            (
                "mcp:sample/tool",
                ResourceKind::Tool {
                    server: "sample",
                    name: "tool",
                },
            ),
            ("shell:sample", ResourceKind::Shell { name: "sample" }),
            ("account:sample", ResourceKind::Account { name: "sample" }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_forms() {
        assert_eq!(
            ResourceKind::parse("/usr/bin/git"),
            Some(ResourceKind::File {
                path: "/usr/bin/git"
            })
        );
        assert_eq!(
            ResourceKind::parse("mcp:docs/search"),
            Some(ResourceKind::Tool {
                server: "docs",
                name: "search"
            })
        );
        assert_eq!(
            ResourceKind::parse("mcp:a/b/c"),
            Some(ResourceKind::Tool {
                server: "a",
                name: "b/c"
            })
        );
        assert_eq!(
            ResourceKind::parse("shell:bash"),
            Some(ResourceKind::Shell { name: "bash" })
        );
        assert_eq!(
            ResourceKind::parse("account:acme"),
            Some(ResourceKind::Account { name: "acme" })
        );
        for unknown in [
            "",
            "usr/bin/git",
            "mcp:",
            "mcp:docs",
            "mcp:/x",
            "mcp:x/",
            "shell:",
            "https://example.com/",
            "file:/etc/passwd",
        ] {
            assert_eq!(ResourceKind::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn args_and_context_default_to_empty_objects() {
        let r: Request = serde_json::from_str(
            r#"{"principal":{"id":"a","role":"agent"},"action":"exec","resource":"/bin/ls"}"#,
        )
        .unwrap();
        assert_eq!(r.args, serde_json::json!({}));
        assert_eq!(r.context, serde_json::json!({}));
        assert!(r.principal.groups.is_empty());
    }
}
