//! The MCP gateway's message handling, without I/O: one newline-delimited JSON-RPC 2.0
//! message (or batch) at a time, from the client or from the server.
//!
//! From the client, every message is parsed strictly (duplicate keys refused) and forwarded
//! re-serialized, never as the bytes that came in, so the server reads exactly what the gate
//! read. `tools/call` requests are authorized first, as DESIGN.md's gate table says: action
//! `tools/call`, resource `mcp:<server>/<tool>`, arguments the call's `arguments` (`{}` when
//! absent, and then forwarded as `{}`). A permitted call is forwarded carrying the very
//! arguments value that was authorized; a denied one never reaches the server: the gateway
//! answers it with a tool error (`isError: true`) naming the denial code and reason, so the
//! model sees why. A `tools/call` notification (no id) is dropped: it could run a tool with
//! nobody to tell.
//!
//! From the server, messages pass through unchanged; a response to a permitted call yields a
//! [`CallReport`] (SHA-256 of the result's canonical JSON, duration), which the caller hands to
//! [`Authorizer::report`] off the message path. With a tool filter, `tools/list` results are
//! trimmed to the tools it keeps.
//!
//! A batch (a JSON array) is handled message by message and forwarded unbatched, one line
//! per message; the gateway's own answers to a batch go back as one array.
//!
//! The caller owns the transport: one thread may feed client lines while another feeds server
//! lines; the table of pending calls is behind a mutex held only briefly, never while the
//! authorizer runs.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{json, Map, Value};
use writ_core::{canonical, Denial, DenyCode, Sha256Digest};

use crate::authorizer::{Action, Authorizer, Outcome, Permit};

mod sse;
#[cfg(test)]
mod tests;

pub use sse::{SseEvent, SseParser};

/// The MCP method the gateway authorizes.
pub const TOOLS_CALL: &str = "tools/call";
/// The MCP method whose results a tool filter trims.
pub const TOOLS_LIST: &str = "tools/list";

/// JSON-RPC 2.0: the text is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON is not a valid request.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: the method's parameters are invalid.
pub const INVALID_PARAMS: i64 = -32602;

/// Which tools a `tools/list` answer keeps: `true` keeps the tool.
pub type ToolFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// What to do with one line from the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStep {
    /// Lines for the server (without their newlines), one per message forwarded. A batch is
    /// forwarded unbatched, one message a line: MCP servers after protocol 2025-06-18 drop
    /// batches silently, and each answer is matched to its request by id anyway.
    pub to_server: Vec<String>,
    /// One line for the client (without its newline): the gateway's own answers.
    pub to_client: Option<String>,
}

/// What to do with one line from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStep {
    /// The line to send the client instead of the server's (without its newline), when a
    /// tool filter trimmed a `tools/list` answer; `None`: send the server's bytes unchanged.
    pub replaced: Option<String>,
    /// Receipts owed for the permitted calls this line answers.
    pub reports: Vec<CallReport>,
}

/// A permitted call's outcome, to hand to [`Authorizer::report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallReport {
    /// The permit the call ran under.
    pub permit: Permit,
    /// How it went.
    pub outcome: Outcome,
}

/// A request the gateway waits for the server to answer.
enum Pending {
    /// A permitted `tools/call`: its receipt is owed.
    Call { permit: Permit, started: Instant },
    /// A `tools/list` whose answer the tool filter trims.
    List,
}

/// What becomes of one message from the client.
enum Step {
    Forward(Value),
    Answer(Value),
    Drop,
}

/// The gateway's state for one MCP server: its name, the optional tool filter, and the
/// requests forwarded and not answered yet.
pub struct McpGate {
    server: String,
    filter: Option<ToolFilter>,
    // INVARIANT: keyed by the request id's JSON text; an id is in here at most once, and a
    // `tools/call` is forwarded only after its permit is in here.
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for McpGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpGate")
            .field("server", &self.server)
            .field("filter", &self.filter.is_some())
            .field("pending", &self.table().len())
            .finish()
    }
}

impl McpGate {
    /// A gateway for the server named `server` (the `<server>` of `mcp:<server>/<tool>`).
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            filter: None,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Trims the server's `tools/list` answers to the tools `keep` returns `true` for.
    ///
    /// This only hides tools from the model; it authorizes nothing. Every call is still
    /// authorized on its own, so a filter that keeps too much is harmless.
    pub fn with_tool_filter(mut self, keep: ToolFilter) -> Self {
        self.filter = Some(keep);
        self
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// How many forwarded requests wait for an answer.
    pub fn pending(&self) -> usize {
        self.table().len()
    }

    /// Permits whose calls were never answered (the server went away): their receipts can
    /// no longer be written with an outcome, but the caller may want to log them.
    pub fn drain_unanswered(&self) -> Vec<Permit> {
        self.table()
            .drain()
            .filter_map(|(_, p)| match p {
                Pending::Call { permit, .. } => Some(permit),
                Pending::List => None,
            })
            .collect()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        // A panic elsewhere cannot leave the map half-updated: every change is one call.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one line from the client (without its newline). `now` starts the clock of a
    /// permitted call. Write `to_server` only after this returns: the permit is recorded.
    pub fn on_client_line(
        &self,
        line: impl AsRef<[u8]>,
        authorizer: &dyn Authorizer,
        now: Instant,
    ) -> ClientStep {
        let parsed = std::str::from_utf8(line.as_ref())
            .map_err(|e| e.to_string())
            .and_then(|text| canonical::parse_strict(text).map_err(|e| e.to_string()));
        let value = match parsed {
            Ok(value) => value,
            Err(e) => {
                return ClientStep {
                    to_server: Vec::new(),
                    to_client: Some(
                        error_response(&Value::Null, PARSE_ERROR, &format!("parse error: {e}"))
                            .to_string(),
                    ),
                }
            }
        };
        match value {
            Value::Array(items) if !items.is_empty() => {
                let mut forward = Vec::new();
                let mut answers = Vec::new();
                for item in items {
                    match self.client_message(item, authorizer, now) {
                        Step::Forward(v) => forward.push(v.to_string()),
                        Step::Answer(v) => answers.push(v),
                        Step::Drop => {}
                    }
                }
                ClientStep {
                    to_server: forward,
                    to_client: (!answers.is_empty()).then(|| Value::Array(answers).to_string()),
                }
            }
            // An empty batch is the server's to refuse.
            Value::Array(items) => ClientStep {
                to_server: vec![Value::Array(items).to_string()],
                to_client: None,
            },
            single => match self.client_message(single, authorizer, now) {
                Step::Forward(v) => ClientStep {
                    to_server: vec![v.to_string()],
                    to_client: None,
                },
                Step::Answer(v) => ClientStep {
                    to_server: Vec::new(),
                    to_client: Some(v.to_string()),
                },
                Step::Drop => ClientStep::default(),
            },
        }
    }

    fn client_message(&self, message: Value, authorizer: &dyn Authorizer, now: Instant) -> Step {
        let Value::Object(mut object) = message else {
            // Not a request: the server answers it as invalid.
            return Step::Forward(message);
        };
        let is_call = match object.get("method") {
            // A response to a request of the server's (sampling, roots, elicitation).
            None => false,
            Some(Value::String(method)) if method == TOOLS_CALL => true,
            Some(Value::String(method)) if method == TOOLS_LIST => {
                if self.filter.is_some() {
                    if let Some(id) = object.get("id") {
                        self.table().insert(id_key(id), Pending::List);
                    }
                }
                false
            }
            Some(Value::String(_)) => false,
            Some(_) => {
                return match object.get("id") {
                    Some(id) => Step::Answer(error_response(
                        id,
                        INVALID_REQUEST,
                        "`method` must be a string",
                    )),
                    None => Step::Drop,
                }
            }
        };
        if !is_call {
            return Step::Forward(Value::Object(object));
        }

        // A tools/call notification would run a tool with nobody to tell: never forwarded.
        let Some(id) = object.get("id").cloned() else {
            return Step::Drop;
        };
        if !(id.is_string() || id.is_number()) {
            return Step::Answer(error_response(
                &Value::Null,
                INVALID_REQUEST,
                "a request id must be a string or a number",
            ));
        }
        let key = id_key(&id);
        if self.table().contains_key(&key) {
            return Step::Answer(error_response(
                &id,
                INVALID_REQUEST,
                &format!("request id {key} is already in use"),
            ));
        }
        let Some(Value::Object(params)) = object.get_mut("params") else {
            return Step::Answer(error_response(
                &id,
                INVALID_PARAMS,
                "tools/call needs `params` with the tool's `name`",
            ));
        };
        let name = match params.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Step::Answer(error_response(
                    &id,
                    INVALID_PARAMS,
                    "tools/call needs the tool's `name` (a non-empty string)",
                ))
            }
        };
        let args = match params.remove("arguments") {
            None => Value::Object(Map::new()),
            Some(args @ Value::Object(_)) => args,
            Some(_) => {
                return Step::Answer(error_response(
                    &id,
                    INVALID_PARAMS,
                    "tools/call `arguments` must be an object",
                ))
            }
        };
        let action = Action {
            action: TOOLS_CALL.to_owned(),
            resource: format!("mcp:{}/{}", self.server, name),
            args,
        };
        match authorize(authorizer, &action) {
            Ok(permit) => {
                // INVARIANT: the arguments forwarded are the value just authorized.
                params.insert("arguments".to_owned(), action.args);
                self.table().insert(
                    key,
                    Pending::Call {
                        permit,
                        started: now,
                    },
                );
                Step::Forward(Value::Object(object))
            }
            Err(denial) => Step::Answer(denied_response(&id, &denial)),
        }
    }

    /// Handles one line from the server (without its newline). `now` stops the clock of the
    /// calls it answers.
    pub fn on_server_line(&self, line: impl AsRef<[u8]>, now: Instant) -> ServerStep {
        let mut reports = Vec::new();
        if self.table().is_empty() {
            return ServerStep {
                replaced: None,
                reports,
            };
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(line.as_ref()) else {
            return ServerStep {
                replaced: None,
                reports,
            };
        };
        let changed = match &mut value {
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    // Every answer is settled: no short cut.
                    changed |= self.server_message(item, now, &mut reports);
                }
                changed
            }
            single => self.server_message(single, now, &mut reports),
        };
        ServerStep {
            replaced: changed.then(|| value.to_string()),
            reports,
        }
    }

    /// Settles the pending request `message` answers; `true` when `message` was changed.
    fn server_message(
        &self,
        message: &mut Value,
        now: Instant,
        reports: &mut Vec<CallReport>,
    ) -> bool {
        let Value::Object(object) = message else {
            return false;
        };
        if object.contains_key("method") {
            // A request or notification of the server's.
            return false;
        }
        let Some(id) = object.get("id") else {
            return false;
        };
        let Some(pending) = self.table().remove(&id_key(id)) else {
            return false;
        };
        match pending {
            Pending::Call { permit, started } => {
                let (output, failed) = match (object.get("result"), object.get("error")) {
                    (Some(result), _) => (
                        result,
                        result.get("isError").and_then(Value::as_bool) == Some(true),
                    ),
                    (None, Some(error)) => (error, true),
                    (None, None) => (&Value::Null, true),
                };
                let millis = now.saturating_duration_since(started).as_millis();
                reports.push(CallReport {
                    permit,
                    outcome: Outcome {
                        exit_status: failed.then_some(1),
                        signal: None,
                        duration_ms: u64::try_from(millis).unwrap_or(u64::MAX),
                        stdout_sha256: canonical::digest(output),
                        stderr_sha256: Sha256Digest::of(b""),
                    },
                });
                false
            }
            Pending::List => {
                let Some(keep) = &self.filter else {
                    return false;
                };
                let Some(Value::Array(tools)) = object
                    .get_mut("result")
                    .and_then(|r| r.as_object_mut())
                    .and_then(|r| r.get_mut("tools"))
                else {
                    return false;
                };
                let before = tools.len();
                // A tool without a name cannot be called: it stays, as the server sent it.
                tools.retain(|tool| tool.get("name").and_then(Value::as_str).is_none_or(keep));
                tools.len() != before
            }
        }
    }
}

/// Asks `authorizer`, turning a panic into a denial: whatever goes wrong, the call does not
/// reach the server.
fn authorize(authorizer: &dyn Authorizer, action: &Action) -> Result<Permit, Denial> {
    catch_unwind(AssertUnwindSafe(|| authorizer.authorize(action))).unwrap_or_else(|_| {
        Err(Denial::new(
            DenyCode::StatusUnavailable,
            "the gate failed while authorizing",
        ))
    })
}

/// A request id as a table key: its JSON text (`1` and `"1"` differ).
fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A JSON-RPC error response.
fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The tool error a denied call gets: the model reads the code and the reason.
fn denied_response(id: &Value, denial: &Denial) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "content": [{"type": "text", "text": format!("writ denied: {denial}")}],
            "isError": true,
        },
    })
}
