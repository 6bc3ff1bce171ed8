//! The load generator's side of the wire: one keep-alive HTTP/1 connection per client, the
//! authorize request every client sends, and what an answer counts as.

use std::net::{SocketAddr, ToSocketAddrs};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::error::CliError;

/// Where requests go and what they say; built once, shared by every client.
pub struct Target {
    /// The base URL, as given or as the spawned server announced it.
    pub url: String,
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
    authorization: HeaderValue,
    body: Bytes,
}

impl Target {
    /// `POST {url}/v1/authorize` as `token`, for `git status` run by `audience`.
    pub fn new(url: &str, token: &str, audience: &str) -> Result<Self, CliError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            CliError::Usage(format!(
                "`{url}`: only plain http:// URLs are supported (a loopback benchmark)"
            ))
        })?;
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(CliError::Usage(format!("`{url}`: no host")));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.contains(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| CliError::Unavailable(format!("cannot resolve `{authority}`: {e}")))?
            .next()
            .ok_or_else(|| CliError::Unavailable(format!("`{authority}` has no address")))?;
        let host = HeaderValue::from_str(authority)
            .map_err(|_| CliError::Usage(format!("`{url}`: not a valid host")))?;
        let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| CliError::Usage("the token is not a valid header value".into()))?;
        let body = json!({
            "action": "exec",
            "resource": "/usr/bin/git",
            "args": {"argv": ["git", "status"], "cwd": "/work", "env": {}},
            "audience": audience,
        });
        let body = serde_json::to_vec(&body).map_err(|e| CliError::Internal(e.to_string()))?;
        Ok(Target {
            url: url.trim_end_matches('/').to_string(),
            addr,
            host,
            path: format!("{base}/v1/authorize"),
            authorization,
            body: Bytes::from(body),
        })
    }

    fn request(&self) -> Result<Request<Full<Bytes>>, Failure> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .body(Full::new(self.body.clone()))
            .map_err(|_| Failure::Http)?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(request)
    }
}

/// Why a request got no decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The TCP connection or the HTTP handshake failed.
    Connect,
    /// The connection broke, or the answer was not HTTP.
    Http,
    /// No answer within the request timeout.
    Timeout,
    /// An HTTP status other than 200 (429 rate limited, 401, 503 …).
    Status(u16),
}

impl Failure {
    /// A short label for reports: `connect`, `http`, `timeout`, `status_429` ….
    pub fn label(self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Http => "http".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Status(code) => format!("status_{code}"),
        }
    }
}

/// What one answered request counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with `"decision":"permit"`: a writ was issued (and logged durably).
    Permit,
    /// 200 with any other decision (a deny): the wrong answer for this request.
    NonPermit,
    /// No decision.
    Failed(Failure),
}

/// Tells a 200 answer's decision from its body without parsing all of it.
pub fn classify(status: StatusCode, body: &[u8]) -> Outcome {
    if status != StatusCode::OK {
        return Outcome::Failed(Failure::Status(status.as_u16()));
    }
    const PERMIT: &[u8] = br#""decision":"permit""#;
    if body.windows(PERMIT.len()).any(|w| w == PERMIT) {
        Outcome::Permit
    } else {
        Outcome::NonPermit
    }
}

/// One keep-alive HTTP/1 connection: one request at a time.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects (TCP_NODELAY) and runs the connection on the current runtime.
    pub async fn open(target: &Target) -> Result<Conn, Failure> {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors surface there.
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends the authorize request and reads the whole answer.
    pub async fn send(&mut self, target: &Target) -> Result<(StatusCode, Bytes), Failure> {
        self.sender.ready().await.map_err(|_| Failure::Http)?;
        let response = self
            .sender
            .send_request(target.request()?)
            .await
            .map_err(|_| Failure::Http)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Http)?
            .to_bytes();
        Ok((status, body))
    }

    /// Whether another request may go on this connection.
    pub fn reusable(&self) -> bool {
        !self.sender.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::new("http://127.0.0.1:7070/", "t", "gate").unwrap();
        assert_eq!(t.path, "/v1/authorize");
        assert_eq!(t.addr.port(), 7070);
        assert_eq!(t.url, "http://127.0.0.1:7070");
        let t = Target::new("http://127.0.0.1:81/writ", "t", "gate").unwrap();
        assert_eq!(t.path, "/writ/v1/authorize");
        let t = Target::new("http://127.0.0.1", "t", "gate").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert!(Target::new("https://127.0.0.1", "t", "gate").is_err());
        assert!(Target::new("http:///x", "t", "gate").is_err());
    }

    #[test]
    fn outcomes() {
        let ok = StatusCode::OK;
        assert_eq!(
            classify(ok, br#"{"decision":"permit","writ":"x"}"#),
            Outcome::Permit
        );
        assert_eq!(
            classify(ok, br#"{"decision":"deny","reasons":[]}"#),
            Outcome::NonPermit
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, b""),
            Outcome::Failed(Failure::Status(429))
        );
        assert_eq!(Failure::Status(429).label(), "status_429");
    }
}
