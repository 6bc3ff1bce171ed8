//! Claude Code's PreToolUse hook, as data: the event Claude Code writes on the hook's standard
//! input, the [`Action`] it asks writ about (DESIGN.md's gate table), and the answer the hook
//! prints.
//!
//! The contract (<https://code.claude.com/docs/en/hooks>, "PreToolUse"): the event is one JSON
//! object with `session_id`, `transcript_path`, `cwd`, `hook_event_name`, `tool_name` and
//! `tool_input` (Claude Code adds fields over time: unknown ones are ignored, the ones writ
//! reads must be present and typed). The answer is
//! `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":…,
//! "permissionDecisionReason":…}}` on standard output with exit status 0; exit status 2 blocks
//! with standard error as the reason; any other status is a non-blocking error and the tool
//! runs, so a gate must only ever end with 0 or 2.
//!
//! Mapping:
//!
//! | `tool_name` | action | resource |
//! | --- | --- | --- |
//! | `Bash` | `Bash` | `shell:bash` |
//! | `Write`, `Edit`, `MultiEdit`, `Read` (`file_path`), `NotebookEdit` (`notebook_path`) | the tool name | the canonical path of the file |
//! | `mcp__<server>__<tool>` | `tools/call` | `mcp:<server>/<tool>` |
//! | any other | the tool name | `tool:<name>` |
//!
//! The arguments are always `tool_input`, exactly as received.
//!
//! Everything here is pure except [`canonical_file`], which asks the file system where a
//! path really leads.

use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::authorizer::Action;

/// The one hook event this adapter answers.
pub const PRE_TOOL_USE: &str = "PreToolUse";

/// The prefix of an MCP tool's name in Claude Code: `mcp__<server>__<tool>`.
const MCP_PREFIX: &str = "mcp__";

/// The separator between the parts of an MCP tool's name.
const MCP_SEPARATOR: &str = "__";

/// A PreToolUse event, as Claude Code writes it on the hook's standard input.
///
/// Unknown fields (`permission_mode`, `tool_use_id`, ...) are ignored; the fields below are
/// required and typed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HookEvent {
    /// The session's id.
    pub session_id: String,
    /// The transcript file of the session.
    pub transcript_path: String,
    /// The working directory the tool runs in; relative file paths are relative to it.
    pub cwd: String,
    /// `PreToolUse`.
    pub hook_event_name: String,
    /// `Bash`, `Write`, `mcp__fs__read_file`, ...
    pub tool_name: String,
    /// The tool's arguments: a JSON object.
    pub tool_input: Value,
}

/// Why an event cannot be turned into an action. Each is a denial for the hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The input is not a PreToolUse event in the documented shape.
    #[error("not a Claude Code hook event: {0}")]
    Malformed(String),
    /// The hook was wired to another event.
    #[error("the hook answers `PreToolUse` events only, not `{0}`")]
    WrongEvent(String),
    /// `tool_input` is not a JSON object.
    #[error("`tool_input` of `{0}` is not a JSON object")]
    ToolInput(String),
    /// The tool name is empty, or an MCP tool name lacks its server or tool part.
    #[error("unusable tool name `{0}`")]
    ToolName(String),
    /// A file tool's path argument is missing or not a string.
    #[error("`{tool}` has no string `{field}` in its `tool_input`")]
    MissingPath {
        /// The tool.
        tool: String,
        /// The argument that should hold the path.
        field: &'static str,
    },
    /// A file path that cannot be resolved to one canonical path.
    #[error("cannot resolve the path `{path}`: {reason}")]
    Path {
        /// The path as given (joined to `cwd` when relative).
        path: String,
        /// Why.
        reason: String,
    },
}

/// The answer to Claude Code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookDecision {
    /// The tool may run (Claude Code still applies its own deny and ask rules).
    Allow,
    /// The tool does not run; the reason is shown to the model.
    Deny,
}

impl HookDecision {
    /// The `permissionDecision` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            HookDecision::Allow => "allow",
            HookDecision::Deny => "deny",
        }
    }
}

/// Parses a PreToolUse event: the JSON shape, `hook_event_name`, and an object `tool_input`.
pub fn parse_event(bytes: &[u8]) -> Result<HookEvent, HookError> {
    let event: HookEvent =
        serde_json::from_slice(bytes).map_err(|e| HookError::Malformed(e.to_string()))?;
    if event.hook_event_name != PRE_TOOL_USE {
        return Err(HookError::WrongEvent(event.hook_event_name));
    }
    if !event.tool_input.is_object() {
        return Err(HookError::ToolInput(event.tool_name));
    }
    Ok(event)
}

/// What kind of tool a name is, before any path is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolKind<'a> {
    /// `Bash`.
    Shell,
    /// A built-in tool acting on one file, named by `field` in `tool_input`.
    File {
        /// The argument holding the path.
        field: &'static str,
    },
    /// `mcp__<server>__<tool>`.
    Mcp {
        /// The server, as Claude Code names it.
        server: &'a str,
        /// The tool (may itself contain `__`).
        tool: &'a str,
    },
    /// Anything else.
    Other,
}

impl<'a> ToolKind<'a> {
    /// Classifies `tool_name`. An `mcp__` name without both parts is an error: it must not
    /// fall through to the generic mapping.
    pub fn of(tool_name: &'a str) -> Result<Self, HookError> {
        if tool_name.is_empty() {
            return Err(HookError::ToolName(tool_name.to_string()));
        }
        if let Some(rest) = tool_name.strip_prefix(MCP_PREFIX) {
            // As Claude Code splits it: the server is the first part, the tool all the rest.
            let (server, tool) = rest
                .split_once(MCP_SEPARATOR)
                .ok_or_else(|| HookError::ToolName(tool_name.to_string()))?;
            if server.is_empty() || tool.is_empty() {
                return Err(HookError::ToolName(tool_name.to_string()));
            }
            return Ok(ToolKind::Mcp { server, tool });
        }
        Ok(match tool_name {
            "Bash" => ToolKind::Shell,
            "Write" | "Edit" | "MultiEdit" | "Read" => ToolKind::File { field: "file_path" },
            "NotebookEdit" => ToolKind::File {
                field: "notebook_path",
            },
            _ => ToolKind::Other,
        })
    }
}

/// The action `event` asks for. `resolve` turns an absolute path into its canonical form
/// ([`canonical_file`] in a gate; a fake in tests).
pub fn action_for(
    event: &HookEvent,
    resolve: &dyn Fn(&Path) -> Result<PathBuf, HookError>,
) -> Result<Action, HookError> {
    let args = event.tool_input.clone();
    let name = event.tool_name.as_str();
    let (action, resource) = match ToolKind::of(name)? {
        ToolKind::Shell => (name.to_string(), "shell:bash".to_string()),
        ToolKind::File { field } => {
            let given =
                args.get(field)
                    .and_then(Value::as_str)
                    .ok_or_else(|| HookError::MissingPath {
                        tool: name.to_string(),
                        field,
                    })?;
            let absolute = absolute_path(&event.cwd, given)?;
            let canonical = resolve(&absolute)?;
            let text = canonical.to_str().ok_or_else(|| HookError::Path {
                path: canonical.display().to_string(),
                reason: "not valid UTF-8".into(),
            })?;
            (name.to_string(), text.to_string())
        }
        ToolKind::Mcp { server, tool } => {
            ("tools/call".to_string(), format!("mcp:{server}/{tool}"))
        }
        ToolKind::Other => (name.to_string(), format!("tool:{name}")),
    };
    Ok(Action {
        action,
        resource,
        args,
    })
}

/// `given`, joined to `cwd` when relative. `cwd` must be absolute; a path with a NUL byte is
/// refused.
pub fn absolute_path(cwd: &str, given: &str) -> Result<PathBuf, HookError> {
    let refuse = |path: &str, reason: &str| HookError::Path {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if given.is_empty() {
        return Err(refuse(given, "empty path"));
    }
    if given.contains('\0') || cwd.contains('\0') {
        return Err(refuse(given, "contains a NUL byte"));
    }
    let given_path = Path::new(given);
    if given_path.is_absolute() {
        return Ok(given_path.to_path_buf());
    }
    let cwd_path = Path::new(cwd);
    if !cwd_path.is_absolute() {
        return Err(refuse(
            given,
            "relative path and the event's `cwd` is not absolute",
        ));
    }
    Ok(cwd_path.join(given_path))
}

/// The canonical form of an absolute `path`: symlinks resolved, no `.` or `..`.
///
/// When the file does not exist yet (a `Write` creating it), its nearest existing ancestor is
/// canonicalized and the missing components are appended; those must be plain names, so a
/// `..` can never be interpreted above a directory that does not exist, and none of them may
/// be a dangling symlink.
pub fn canonical_file(path: &Path) -> Result<PathBuf, HookError> {
    let refuse = |reason: String| HookError::Path {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_absolute() {
        return Err(refuse("not an absolute path".into()));
    }
    match std::fs::canonicalize(path) {
        Ok(canonical) => return Ok(canonical),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(e.to_string())),
    }
    let mut missing = Vec::new();
    let mut ancestor = path;
    loop {
        // INVARIANT: `ancestor` does not resolve. If it exists nonetheless, it is a dangling
        // symlink: a write through it lands wherever it points, so it has no canonical form.
        if std::fs::symlink_metadata(ancestor).is_ok() {
            return Err(refuse(format!(
                "`{}` is a symlink to nothing",
                ancestor.display()
            )));
        }
        let Some(parent) = ancestor.parent() else {
            return Err(refuse("no existing ancestor directory".into()));
        };
        match ancestor.components().next_back() {
            Some(Component::Normal(name)) => missing.push(name.to_os_string()),
            // `Path::components` drops inner `.`; a trailing `..` under a missing directory
            // has no meaning the file system would agree with.
            _ => return Err(refuse("`..` below a directory that does not exist".into())),
        }
        match std::fs::canonicalize(parent) {
            Ok(mut canonical) => {
                if !canonical.is_dir() {
                    return Err(refuse(format!("`{}` is not a directory", parent.display())));
                }
                for name in missing.iter().rev() {
                    canonical.push(name);
                }
                return Ok(canonical);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => ancestor = parent,
            Err(e) => return Err(refuse(e.to_string())),
        }
    }
}

/// The JSON Claude Code reads from a PreToolUse hook's standard output.
pub fn hook_output(decision: HookDecision, reason: &str) -> Value {
    json!({
        "hookSpecificOutput": {
            "hookEventName": PRE_TOOL_USE,
            "permissionDecision": decision.as_str(),
            "permissionDecisionReason": reason,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tool_name: &str, tool_input: Value) -> HookEvent {
        HookEvent {
            session_id: "s".into(),
            transcript_path: "/t.jsonl".into(),
            cwd: "/workspace/app".into(),
            hook_event_name: PRE_TOOL_USE.into(),
            tool_name: tool_name.into(),
            tool_input,
        }
    }

    fn identity(path: &Path) -> Result<PathBuf, HookError> {
        Ok(path.to_path_buf())
    }

    fn map(tool_name: &str, tool_input: Value) -> Result<Action, HookError> {
        action_for(&event(tool_name, tool_input), &identity)
    }

    #[test]
    fn parses_the_documented_event_and_ignores_unknown_fields() {
        let text = br#"{"session_id":"abc","transcript_path":"/h/t.jsonl","cwd":"/w",
            "permission_mode":"default","hook_event_name":"PreToolUse","tool_name":"Bash",
            "tool_input":{"command":"npm test"},"tool_use_id":"toolu_01","new_field":[1]}"#;
        let e = parse_event(text).unwrap();
        assert_eq!(e.tool_name, "Bash");
        assert_eq!(e.tool_input, json!({"command": "npm test"}));
        assert_eq!(e.cwd, "/w");
    }

    #[test]
    fn refuses_missing_mistyped_and_foreign_events() {
        let base = json!({"session_id":"a","transcript_path":"/t","cwd":"/w",
            "hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}});
        for field in [
            "session_id",
            "transcript_path",
            "cwd",
            "hook_event_name",
            "tool_name",
            "tool_input",
        ] {
            let mut missing = base.clone();
            missing.as_object_mut().unwrap().remove(field);
            let err = parse_event(missing.to_string().as_bytes()).unwrap_err();
            assert!(matches!(err, HookError::Malformed(_)), "{field}: {err}");
            let mut mistyped = base.clone();
            mistyped[field] = json!(7);
            let err = parse_event(mistyped.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(err, HookError::Malformed(_) | HookError::ToolInput(_)),
                "{field}: {err}"
            );
        }
        let mut post = base.clone();
        post["hook_event_name"] = json!("PostToolUse");
        assert_eq!(
            parse_event(post.to_string().as_bytes()).unwrap_err(),
            HookError::WrongEvent("PostToolUse".into())
        );
        for bad in [&b""[..], b"null", b"[]", b"{", b"{\"a\":1} trailing"] {
            assert!(matches!(parse_event(bad), Err(HookError::Malformed(_))));
        }
        let dup = br#"{"session_id":"a","transcript_path":"/t","cwd":"/w",
            "hook_event_name":"PreToolUse","tool_name":"Bash","tool_name":"Read",
            "tool_input":{}}"#;
        assert!(matches!(parse_event(dup), Err(HookError::Malformed(_))));
    }

    #[test]
    fn bash_is_the_shell() {
        let input = json!({"command": "npm test", "description": "Run tests", "timeout": 120000});
        let a = map("Bash", input.clone()).unwrap();
        assert_eq!(a.action, "Bash");
        assert_eq!(a.resource, "shell:bash");
        assert_eq!(a.args, input);
    }

    #[test]
    fn file_tools_name_the_file() {
        for tool in ["Write", "Edit", "MultiEdit", "Read"] {
            let input = json!({"file_path": "/workspace/app/src/main.rs", "content": "x"});
            let a = map(tool, input.clone()).unwrap();
            assert_eq!(a.action, tool);
            assert_eq!(a.resource, "/workspace/app/src/main.rs");
            assert_eq!(a.args, input);
        }
        let a = map("NotebookEdit", json!({"notebook_path": "n.ipynb"})).unwrap();
        assert_eq!(a.resource, "/workspace/app/n.ipynb");
    }

    #[test]
    fn relative_paths_are_relative_to_cwd() {
        let a = map("Write", json!({"file_path": "src/lib.rs"})).unwrap();
        assert_eq!(a.resource, "/workspace/app/src/lib.rs");
        assert_eq!(a.args, json!({"file_path": "src/lib.rs"}));
        let mut e = event("Write", json!({"file_path": "src/lib.rs"}));
        e.cwd = "relative".into();
        assert!(matches!(
            action_for(&e, &identity),
            Err(HookError::Path { .. })
        ));
    }

    #[test]
    fn file_tools_need_a_string_path() {
        for input in [
            json!({}),
            json!({"file_path": 3}),
            json!({"file_path": null}),
            json!({"path": "/x"}),
        ] {
            assert!(matches!(
                map("Edit", input),
                Err(HookError::MissingPath { .. })
            ));
        }
        assert!(matches!(
            map("Write", json!({"file_path": ""})),
            Err(HookError::Path { .. })
        ));
        assert!(matches!(
            map("Write", json!({"file_path": "/a\u{0}b"})),
            Err(HookError::Path { .. })
        ));
    }

    #[test]
    fn resolver_errors_deny() {
        let e = event("Write", json!({"file_path": "/x"}));
        let refuse = |p: &Path| -> Result<PathBuf, HookError> {
            Err(HookError::Path {
                path: p.display().to_string(),
                reason: "no".into(),
            })
        };
        assert!(action_for(&e, &refuse).is_err());
    }

    #[test]
    fn mcp_tools_are_tool_calls() {
        let input = json!({"path": "/srv/data/public/a.txt"});
        let a = map("mcp__fs__read_file", input.clone()).unwrap();
        assert_eq!(a.action, "tools/call");
        assert_eq!(a.resource, "mcp:fs/read_file");
        assert_eq!(a.args, input);
        let a = map("mcp__my-server__do__thing", json!({})).unwrap();
        assert_eq!(a.resource, "mcp:my-server/do__thing");
        for bad in ["mcp__", "mcp__fs", "mcp__fs__", "mcp____tool", ""] {
            assert!(
                matches!(map(bad, json!({})), Err(HookError::ToolName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_tools_are_named_as_tools() {
        let a = map("WebFetch", json!({"url": "https://example.com"})).unwrap();
        assert_eq!(a.action, "WebFetch");
        assert_eq!(a.resource, "tool:WebFetch");
        let a = map("mcp_almost", json!({})).unwrap();
        assert_eq!(a.resource, "tool:mcp_almost");
    }

    #[test]
    fn non_object_tool_input_is_refused() {
        let text = br#"{"session_id":"a","transcript_path":"/t","cwd":"/w",
            "hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"rm -rf /"}"#;
        assert_eq!(
            parse_event(text).unwrap_err(),
            HookError::ToolInput("Bash".into())
        );
    }

    #[test]
    fn canonical_paths_resolve_symlinks_and_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("proj")).unwrap();
        std::fs::write(root.join("proj/existing.txt"), "x").unwrap();
        std::fs::create_dir(root.join("outside")).unwrap();

        // An existing file.
        assert_eq!(
            canonical_file(&root.join("proj/./existing.txt")).unwrap(),
            root.join("proj/existing.txt")
        );
        // A new file: the parent is canonicalized.
        assert_eq!(
            canonical_file(&root.join("proj/new.txt")).unwrap(),
            root.join("proj/new.txt")
        );
        // New directories below an existing one.
        assert_eq!(
            canonical_file(&root.join("proj/a/b/new.txt")).unwrap(),
            root.join("proj/a/b/new.txt")
        );
        // `..` is resolved where it exists: the path names where it really leads.
        assert_eq!(
            canonical_file(&root.join("proj/../outside/new.txt")).unwrap(),
            root.join("outside/new.txt")
        );
        // `..` below a missing directory is refused.
        assert!(canonical_file(&root.join("proj/missing/../../outside/x")).is_err());
        assert!(canonical_file(&root.join("proj/missing/..")).is_err());
        // A file used as a directory.
        assert!(canonical_file(&root.join("proj/existing.txt/x")).is_err());
        // Relative paths are not canonicalized here.
        assert!(canonical_file(Path::new("proj/x")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("proj")).unwrap();
        std::fs::create_dir(root.join("secret")).unwrap();
        std::os::unix::fs::symlink(root.join("secret"), root.join("proj/link")).unwrap();
        assert_eq!(
            canonical_file(&root.join("proj/link/new.txt")).unwrap(),
            root.join("secret/new.txt")
        );
        // A dangling symlink to a file that does not exist yet: where would a write land?
        std::os::unix::fs::symlink(root.join("secret/target"), root.join("proj/dangling")).unwrap();
        assert!(canonical_file(&root.join("proj/dangling")).is_err());
        assert!(canonical_file(&root.join("proj/dangling/x")).is_err());
    }

    #[test]
    fn output_is_the_documented_shape() {
        let out = hook_output(HookDecision::Deny, "no");
        assert_eq!(
            out,
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                "permissionDecision": "deny", "permissionDecisionReason": "no"}})
        );
        assert_eq!(
            hook_output(HookDecision::Allow, "ok")["hookSpecificOutput"]["permissionDecision"],
            "allow"
        );
    }
}
