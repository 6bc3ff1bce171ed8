//! The Streamable HTTP transport (MCP 2025-03-26 and 2025-06-18): the gateway is the client's
//! MCP endpoint and relays to an upstream Streamable HTTP server.
//!
//! - `POST`: the body (one JSON-RPC message or a batch) goes through [`McpGate`] on a
//!   blocking thread, so every `tools/call` is authorized before anything is sent upstream.
//!   What remains is forwarded re-serialized (a batch as a batch) with the client's session
//!   headers; the gateway's own answers (denials, invalid requests) are merged into the
//!   upstream answer: as extra `message` events ahead of an event stream, or into the JSON
//!   batch. When nothing remains to forward the gateway answers alone. A POST gets a fresh
//!   `McpGate`: the answers to its requests come back on its own response, and each event or
//!   JSON body read there settles them and yields the receipts, which are sent on threads of
//!   their own while the relay goes on.
//! - `GET` (the server's event stream) and `DELETE` (end of session) are relayed unchanged.
//!
//! Plain HTTP on both sides: the listener is loopback-only unless allowed otherwise, requests
//! whose `Origin` or `Host` names another machine are refused (DNS rebinding), and request
//! bodies are bounded.
//!
//! Not covered: a response stream the client resumes with `GET` and `Last-Event-ID` is
//! relayed, but the answers on it no longer settle calls (their writs were spent; the
//! gateway logs them as unanswered when the original stream ends).

use std::convert::Infallible;
use std::future::IntoFuture as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    ACCEPT, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use writ_gate::{McpGate, SseEvent, SseParser};

use super::{report_unanswered, send_report, GateFactory, InFlight, SharedAuthorizer};
use crate::error::CliError;
use crate::exit::Exit;

/// The largest request body accepted from the client.
const MAX_BODY: usize = 16 << 20;
/// The largest JSON answer, or single event, accepted from the upstream server.
const MAX_UPSTREAM: usize = 64 << 20;
/// How long connecting to the upstream server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// JSON-RPC 2.0: an error inside the gateway.
const INTERNAL_ERROR: i64 = -32603;

/// The client's headers passed upstream.
const TO_UPSTREAM: [HeaderName; 5] = [
    ACCEPT,
    AUTHORIZATION,
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    LAST_EVENT_ID,
];
/// The upstream server's headers passed to the client.
const TO_CLIENT: [HeaderName; 6] = [
    CONTENT_TYPE,
    CACHE_CONTROL,
    WWW_AUTHENTICATE,
    RETRY_AFTER,
    ALLOW,
    MCP_SESSION_ID,
];

/// Where to listen and where to relay.
pub(super) struct HttpSettings {
    listen: SocketAddr,
    allow_non_loopback: bool,
    upstream: Upstream,
}

impl HttpSettings {
    pub(super) fn new(
        listen: SocketAddr,
        upstream: &str,
        allow_non_loopback: bool,
    ) -> Result<Self, CliError> {
        if !listen.ip().is_loopback() && !allow_non_loopback {
            return Err(CliError::Usage(format!(
                "--listen `{listen}` is not a loopback address, and the gateway has no TLS nor \
                 client authentication: pass --allow-non-loopback to listen there anyway"
            )));
        }
        Ok(Self {
            listen,
            allow_non_loopback,
            upstream: Upstream::parse(upstream).map_err(CliError::Usage)?,
        })
    }
}

/// The upstream server's endpoint.
#[derive(Debug, PartialEq, Eq)]
struct Upstream {
    /// As given.
    url: String,
    /// `host:port`, to connect to.
    address: String,
    /// The `Host` header.
    host: String,
    /// The request target: path and query.
    path: String,
}

impl Upstream {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--upstream `{url}`: only http:// URLs are supported (no TLS client here)")
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if authority.is_empty() || authority.contains(['@', ' ']) || path.contains(['#', ' ']) {
            return Err(format!(
                "--upstream `{url}`: not a plain http://HOST:PORT/PATH URL"
            ));
        }
        let has_port = match authority.rsplit_once(':') {
            Some((host, port)) => {
                (!host.starts_with('[') || host.ends_with(']'))
                    && !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        let address = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            url: url.to_owned(),
            address,
            host: authority.to_owned(),
            path,
        })
    }
}

/// What every request handler shares.
struct Shared {
    upstream: Upstream,
    allow_non_loopback: bool,
    make_gate: GateFactory,
    authorizer: SharedAuthorizer,
    in_flight: Arc<InFlight>,
}

/// Serves until interrupted (Ctrl-C or SIGTERM).
pub(super) fn run(
    settings: HttpSettings,
    make_gate: GateFactory,
    authorizer: &SharedAuthorizer,
    in_flight: &Arc<InFlight>,
) -> Result<Exit, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the runtime: {e}")))?;
    let shared = Arc::new(Shared {
        upstream: settings.upstream,
        allow_non_loopback: settings.allow_non_loopback,
        make_gate,
        authorizer: Arc::clone(authorizer),
        in_flight: Arc::clone(in_flight),
    });
    let listen = settings.listen;
    let exit = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::Unavailable(format!("cannot listen on `{listen}`: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Internal(format!("no local address: {e}")))?;
        eprintln!(
            "writ: mcp-gateway: listening on http://{local}{} (MCP Streamable HTTP), relaying to {}",
            shared.upstream.path, shared.upstream.url
        );
        let app = Router::new()
            .fallback(endpoint)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared);
        // Not a graceful shutdown: event streams stay open for as long as the client wants.
        tokio::select! {
            served = axum::serve(listener, app).into_future() => served
                .map_err(|e| CliError::Internal(format!("serving on `{local}`: {e}")))?,
            () = crate::signal::terminated() => {}
        }
        Ok::<_, CliError>(Exit::Success)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    exit
}

/// The one endpoint, whatever its path.
async fn endpoint(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !from_this_machine(&headers, shared.allow_non_loopback) {
        return error_response(
            StatusCode::FORBIDDEN,
            "the Origin or Host of this request is not this machine",
        );
    }
    if method == Method::POST {
        post(&shared, &headers, body).await
    } else if method == Method::GET || method == Method::DELETE {
        match send(&shared.upstream, method, &headers, Bytes::new()).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                client_response(parts.status, &parts.headers)
                    .body(Body::new(body))
                    .unwrap_or_else(|_| internal_error())
            }
            Err(e) => upstream_failed(&e),
        }
    } else {
        let mut response =
            error_response(StatusCode::METHOD_NOT_ALLOWED, "use POST, GET or DELETE");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        response
    }
}

async fn post(shared: &Arc<Shared>, headers: &HeaderMap, body: Bytes) -> Response {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mcp = Arc::new((shared.make_gate)());

    // INVARIANT: nothing goes upstream before this returns: every call is authorized first.
    let step = {
        let (mcp, authorizer) = (Arc::clone(&mcp), Arc::clone(&shared.authorizer));
        tokio::task::spawn_blocking(move || {
            mcp.on_client_line(&body, authorizer.as_ref(), Instant::now())
        })
        .await
    };
    let step = match step {
        Ok(step) => step,
        Err(e) => {
            // Nothing was forwarded; whatever was authorized is spent.
            eprintln!("writ: mcp-gateway: the gate failed on a request: {e}");
            report_unanswered(&mcp);
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "the gate failed");
        }
    };
    let answers = step
        .to_client
        .as_deref()
        .map(split_answers)
        .unwrap_or_default();
    if step.to_server.is_empty() {
        return match step.to_client {
            Some(text) => json_response(StatusCode::OK, text.into_bytes()),
            None => empty_response(StatusCode::ACCEPTED),
        };
    }

    let forward = match step.to_server.as_slice() {
        // An empty batch, forwarded as it came, or a single message.
        [one] if !batch || one.starts_with('[') => one.clone(),
        many => format!("[{}]", many.join(",")),
    };
    let response = match send(
        &shared.upstream,
        Method::POST,
        headers,
        Bytes::from(forward),
    )
    .await
    {
        Ok(response) => response,
        Err(e) => {
            report_unanswered(&mcp);
            return upstream_failed(&e);
        }
    };
    let (parts, body) = response.into_parts();
    let media = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let builder = client_response(parts.status, &parts.headers);

    if parts.status.is_success() && media.starts_with("text/event-stream") {
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            relay_events(&shared, &mcp, answers, body, &tx).await;
            report_unanswered(&mcp);
        });
        return builder
            .body(Body::new(ChannelBody(rx)))
            .unwrap_or_else(|_| internal_error());
    }
    if parts.status.is_success() && media.starts_with("application/json") {
        let bytes = match read_bounded(body, MAX_UPSTREAM).await {
            Ok(bytes) => bytes,
            Err(e) => {
                report_unanswered(&mcp);
                return upstream_failed(&e);
            }
        };
        let step = mcp.on_server_line(&bytes, Instant::now());
        for report in step.reports {
            send_report(
                Arc::clone(&shared.authorizer),
                report,
                Arc::clone(&shared.in_flight),
            );
        }
        report_unanswered(&mcp);
        let body = step.replaced.map_or(bytes, String::into_bytes);
        return builder
            .body(Body::from(merge(body, answers)))
            .unwrap_or_else(|_| internal_error());
    }
    // No answers upstream (notifications and responses only, 202), or a failure: the
    // calls forwarded are not answered here.
    report_unanswered(&mcp);
    if parts.status == StatusCode::ACCEPTED && !answers.is_empty() {
        let mut response = json_response(
            StatusCode::OK,
            Value::Array(answers).to_string().into_bytes(),
        );
        if let Some(session) = parts.headers.get(MCP_SESSION_ID) {
            response
                .headers_mut()
                .insert(MCP_SESSION_ID, session.clone());
        }
        return response;
    }
    builder
        .body(Body::new(body))
        .unwrap_or_else(|_| internal_error())
}

/// Relays an upstream event stream to the client: the gateway's answers first, then each
/// event, settling the calls its messages answer. Ends when either side does.
async fn relay_events(
    shared: &Shared,
    mcp: &McpGate,
    answers: Vec<Value>,
    mut body: Incoming,
    tx: &mpsc::Sender<Bytes>,
) {
    for answer in answers {
        let event = SseEvent::message(answer.to_string());
        if tx.send(Bytes::from(event.to_bytes())).await.is_err() {
            return;
        }
    }
    let mut parser = SseParser::new();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = tx.closed() => return,
        };
        let data = match frame {
            None => return,
            Some(Err(e)) => {
                eprintln!("writ: mcp-gateway: the upstream event stream failed: {e}");
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        let mut out = Vec::new();
        for mut event in parser.push(&data) {
            if event.is_message() {
                if let Some(message) = &event.data {
                    let step = mcp.on_server_line(message.as_bytes(), Instant::now());
                    for report in step.reports {
                        send_report(
                            Arc::clone(&shared.authorizer),
                            report,
                            Arc::clone(&shared.in_flight),
                        );
                    }
                    if let Some(replaced) = step.replaced {
                        event.data = Some(replaced);
                    }
                }
            }
            out.extend(event.to_bytes());
        }
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        if parser.buffered() > MAX_UPSTREAM {
            eprintln!("writ: mcp-gateway: an upstream event is longer than {MAX_UPSTREAM} bytes");
            return;
        }
    }
}

/// The gateway's answers as a list: a batch's array, or the one answer.
fn split_answers(text: &str) -> Vec<Value> {
    match serde_json::from_str(text) {
        Ok(Value::Array(items)) => items,
        Ok(single) => vec![single],
        Err(_) => Vec::new(),
    }
}

/// The upstream JSON answer with the gateway's answers added to the batch.
fn merge(upstream: Vec<u8>, answers: Vec<Value>) -> Vec<u8> {
    if answers.is_empty() {
        return upstream;
    }
    let mut items = match serde_json::from_slice::<Value>(&upstream) {
        Ok(Value::Array(items)) => items,
        Ok(single) => vec![single],
        Err(_) => {
            eprintln!("writ: mcp-gateway: the upstream answer is not JSON; the gateway's answers are lost");
            return upstream;
        }
    };
    items.extend(answers);
    Value::Array(items).to_string().into_bytes()
}

/// Sends one request upstream, with the client's headers that matter to MCP.
async fn send(
    upstream: &Upstream,
    method: Method,
    client: &HeaderMap,
    body: Bytes,
) -> Result<hyper::Response<Incoming>, String> {
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&upstream.address),
    )
    .await
    .map_err(|_| format!("connecting to {} timed out", upstream.url))?
    .map_err(|e| format!("cannot connect to {}: {e}", upstream.url))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{}: {e}", upstream.url))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let post = method == Method::POST;
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(upstream.path.as_str())
        .header(HOST, upstream.host.as_str());
    for name in &TO_UPSTREAM {
        for value in client.get_all(name) {
            request = request.header(name, value);
        }
    }
    if post {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("{}: {e}", upstream.url))?;
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("{}: {e}", upstream.url))
}

/// Reads a whole body of at most `max` bytes.
async fn read_bounded(mut body: Incoming, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the upstream answer: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(format!("the upstream answer is longer than {max} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A response to the client carrying the upstream status and the headers that matter.
fn client_response(status: StatusCode, upstream: &HeaderMap) -> axum::http::response::Builder {
    let mut builder = Response::builder().status(status);
    for name in &TO_CLIENT {
        for value in upstream.get_all(name) {
            builder = builder.header(name, value);
        }
    }
    builder
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// A JSON-RPC error without an id, in an HTTP error.
fn error_response(status: StatusCode, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {
        "code": INTERNAL_ERROR,
        "message": format!("writ mcp-gateway: {message}"),
    }});
    json_response(status, body.to_string().into_bytes())
}

fn internal_error() -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot build the response",
    )
}

fn upstream_failed(cause: &str) -> Response {
    eprintln!("writ: mcp-gateway: upstream: {cause}");
    error_response(StatusCode::BAD_GATEWAY, "the upstream MCP server failed")
}

/// Whether the request's `Origin` (when sent) and `Host` name this machine: a web page
/// elsewhere must not reach a loopback gateway through the browser (DNS rebinding). With
/// `--allow-non-loopback` only `Origin` is checked.
fn from_this_machine(headers: &HeaderMap, allow_non_loopback: bool) -> bool {
    let loopback = |name: &HeaderName, with_scheme: bool| match headers.get(name) {
        None => true,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| host_of(v, with_scheme))
            .is_some_and(is_loopback_host),
    };
    loopback(&ORIGIN, true) && (allow_non_loopback || loopback(&HOST, false))
}

/// The host of an `Origin` (`scheme://host[:port]`) or `Host` (`host[:port]`) value.
fn host_of(value: &str, with_scheme: bool) -> Option<&str> {
    let rest = if with_scheme {
        value.split_once("://")?.1
    } else {
        value
    };
    let authority = rest.split('/').next()?;
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split_once(']').map(|(host, _)| host);
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A response body fed by a channel: the relay of an event stream.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_plain_http() {
        let u = Upstream::parse("http://127.0.0.1:3001/mcp").unwrap();
        assert_eq!(
            (u.address.as_str(), u.host.as_str(), u.path.as_str()),
            ("127.0.0.1:3001", "127.0.0.1:3001", "/mcp")
        );
        let u = Upstream::parse("http://example.com").unwrap();
        assert_eq!(
            (u.address.as_str(), u.path.as_str()),
            ("example.com:80", "/")
        );
        let u = Upstream::parse("http://[::1]:8/a?b=c").unwrap();
        assert_eq!((u.address.as_str(), u.path.as_str()), ("[::1]:8", "/a?b=c"));
        let u = Upstream::parse("http://[::1]?x").unwrap();
        assert_eq!((u.address.as_str(), u.path.as_str()), ("[::1]:80", "/?x"));
        for bad in [
            "https://a/mcp",
            "a:1/mcp",
            "http:///mcp",
            "http://u@a/",
            "http://a/#x",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_listens_without_permission() {
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(HttpSettings::new(any, "http://a/", false).is_err());
        assert!(HttpSettings::new(any, "http://a/", true).is_ok());
        let local: SocketAddr = "[::1]:1".parse().unwrap();
        assert!(HttpSettings::new(local, "http://a/", false).is_ok());
    }

    #[test]
    fn requests_from_elsewhere_are_recognized() {
        let headers = |pairs: &[(HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(from_this_machine(&headers(&[]), false));
        assert!(from_this_machine(
            &headers(&[(HOST, "127.0.0.1:9"), (ORIGIN, "http://localhost:3000")]),
            false
        ));
        assert!(from_this_machine(&headers(&[(HOST, "[::1]:9")]), false));
        assert!(!from_this_machine(
            &headers(&[(HOST, "evil.example:9")]),
            false
        ));
        assert!(from_this_machine(
            &headers(&[(HOST, "gw.internal:9")]),
            true
        ));
        assert!(!from_this_machine(
            &headers(&[(HOST, "localhost"), (ORIGIN, "https://evil.example")]),
            true
        ));
        assert!(!from_this_machine(&headers(&[(ORIGIN, "null")]), false));
    }

    #[test]
    fn the_gateways_answers_join_the_batch() {
        let a = json!({"jsonrpc": "2.0", "id": 2, "result": {"isError": true}});
        let merged = merge(br#"[{"id":1}]"#.to_vec(), vec![a.clone()]);
        assert_eq!(
            serde_json::from_slice::<Value>(&merged).unwrap(),
            json!([{"id": 1}, a])
        );
        let merged = merge(br#"{"id":1}"#.to_vec(), vec![a.clone()]);
        assert_eq!(
            serde_json::from_slice::<Value>(&merged).unwrap(),
            json!([{"id": 1}, a])
        );
        assert_eq!(merge(b"{}".to_vec(), Vec::new()), b"{}");
        assert_eq!(split_answers(&json!([a, a]).to_string()).len(), 2);
        assert_eq!(split_answers(&a.to_string()), vec![a]);
    }
}
