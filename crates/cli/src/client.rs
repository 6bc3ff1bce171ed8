//! The `writ` command as a client of a running authority: where the server is and who is
//! asking (flags, then the environment, then the client config file), one HTTP agent with
//! timeouts and the trusted roots, and what each kind of answer means for the exit status.
//!
//! Every call has a 5 s connect timeout and a 30 s limit on the whole call. Redirects are
//! never followed (a bearer token goes only where it was told to). A bearer token is sent
//! over plain HTTP to a loopback address only; anywhere else the URL must be `https://`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one whole call (connect, send, answer) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a gate waits for a connection.
pub const GATE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one whole call of a gate may take.
pub const GATE_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (a page of log entries may carry policy texts).
const MAX_ANSWER: u64 = 64 << 20;

/// The environment variables the client reads.
pub const ENV_URL: &str = "WRIT_URL";
/// A bearer token.
pub const ENV_TOKEN: &str = "WRIT_TOKEN";
/// A file holding a bearer token.
pub const ENV_TOKEN_FILE: &str = "WRIT_TOKEN_FILE";
/// A PEM file of trusted CA certificates.
pub const ENV_CA_CERT: &str = "WRIT_CA_CERT";
/// The client config file.
pub const ENV_CLIENT_CONFIG: &str = "WRIT_CLIENT_CONFIG";

/// Where the authority is and who is asking. Each setting comes from its flag, else its
/// environment variable, else the client config file.
#[derive(Args, Clone, Debug, Default)]
pub struct ServerArgs {
    /// The authority's URL, e.g. https://writ.example.com [env: WRIT_URL; config: url].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The bearer token [env: WRIT_TOKEN]. Other users can read a command line: prefer
    /// --token-file or WRIT_TOKEN.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the bearer token [env: WRIT_TOKEN_FILE; config: token_file].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for https:// instead of the built-in webpki roots, for
    /// a deployment with its own CA [env: WRIT_CA_CERT; config: ca_cert].
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// The client config file (TOML with `url`, `token_file`, `ca_cert`) [env:
    /// WRIT_CLIENT_CONFIG; default: $XDG_CONFIG_HOME/writ/client.toml, else
    /// ~/.config/writ/client.toml].
    #[arg(long, value_name = "FILE")]
    pub client_config: Option<PathBuf>,
}

/// `client.toml`. Relative paths are relative to the file's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    url: Option<String>,
    token_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
}

/// How to set what is missing, for the error messages.
const HOW_TO_SET_URL: &str = "no authority URL: pass --url, set WRIT_URL, or put `url = \
\"https://…\"` in the client config ($XDG_CONFIG_HOME/writ/client.toml or --client-config)";
const HOW_TO_SET_TOKEN: &str = "no bearer token: pass --token-file FILE (or --token), set \
WRIT_TOKEN_FILE or WRIT_TOKEN, or put `token_file = \"…\"` in the client config; `writ \
principals add NAME --role ROLE` on the authority's host prints a token";

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The default client config file, if a home can be found.
fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = env_path("XDG_CONFIG_HOME") {
        return Some(dir.join("writ/client.toml"));
    }
    env_path("HOME").map(|home| home.join(".config/writ/client.toml"))
}

/// Reads the client config: a named file must exist; the default one may be absent.
fn read_config(named: Option<PathBuf>) -> Result<(ClientConfig, PathBuf), CliError> {
    let (path, required) = match named {
        Some(path) => (path, true),
        None => match default_config_path() {
            Some(path) => (path, false),
            None => return Ok((ClientConfig::default(), PathBuf::new())),
        },
    };
    if !required && !path.exists() {
        return Ok((ClientConfig::default(), PathBuf::new()));
    }
    let text = input::read_file(&path, "client config")?;
    let config: ClientConfig = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("client config `{}`: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((config, base))
}

/// What a command needs from the server settings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A bearer token: the call is made as a principal.
    Token,
    /// Public endpoints only (the log, the JWKS).
    Public,
}

impl ServerArgs {
    /// Only a URL (and trusted roots), for the public endpoints: `--url` else `WRIT_URL`.
    pub fn public(url: Option<&str>, ca_cert: Option<&Path>) -> Self {
        ServerArgs {
            url: url.map(str::to_owned),
            ca_cert: ca_cert.map(Path::to_path_buf),
            ..ServerArgs::default()
        }
    }

    /// Resolves the settings (flags > environment > config file) into a client.
    pub fn connect(&self, auth: Auth) -> Result<Client, CliError> {
        let named_config = self
            .client_config
            .clone()
            .or_else(|| env_path(ENV_CLIENT_CONFIG));
        let (config, base) = read_config(named_config)?;
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let url = self
            .url
            .clone()
            .or_else(|| env(ENV_URL))
            .or(config.url)
            .ok_or_else(|| CliError::Usage(HOW_TO_SET_URL.into()))?;
        let ca_cert = self
            .ca_cert
            .clone()
            .or_else(|| env_path(ENV_CA_CERT))
            .or_else(|| config.ca_cert.map(relative));
        let token = match auth {
            Auth::Public => None,
            Auth::Token => {
                let token = if let Some(token) = &self.token {
                    Zeroizing::new(token.clone())
                } else if let Some(path) = &self.token_file {
                    read_token_file(path)?
                } else if let Some(token) = env(ENV_TOKEN) {
                    Zeroizing::new(token)
                } else if let Some(path) = env_path(ENV_TOKEN_FILE) {
                    read_token_file(&path)?
                } else if let Some(path) = config.token_file.map(relative) {
                    read_token_file(&path)?
                } else {
                    return Err(CliError::Usage(HOW_TO_SET_TOKEN.into()));
                };
                Some(check_token(token)?)
            }
        };
        Client::new(&url, token, ca_cert.as_deref())
    }
}

/// A bearer token, trimmed; refused when empty or holding whitespace.
pub fn check_token(token: Zeroizing<String>) -> Result<Zeroizing<String>, CliError> {
    let token = Zeroizing::new(token.trim().to_owned());
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::Usage(
            "the bearer token is empty or holds whitespace".into(),
        ));
    }
    Ok(token)
}

fn read_token_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    Ok(Zeroizing::new(input::read_file(path, "token file")?))
}

/// A checked base URL: `http://` or `https://`, a host, no credentials, query or fragment.
struct BaseUrl {
    /// Without a trailing slash.
    text: String,
    https: bool,
    loopback: bool,
}

fn parse_base_url(url: &str) -> Result<BaseUrl, CliError> {
    let bad = |why: &str| CliError::Usage(format!("authority URL `{url}`: {why}"));
    let url = url.trim();
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad(
            "must start with https:// (or http:// for a loopback address)",
        ));
    };
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "give the server's base URL, without a query or fragment",
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("credentials belong in a token, not in the URL"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(BaseUrl {
        text: format!(
            "{}://{}",
            if https { "https" } else { "http" },
            rest.trim_end_matches('/')
        ),
        https,
        loopback,
    })
}

/// Reads CA certificates from a PEM file.
fn read_roots(path: &Path) -> Result<ureq::tls::RootCerts, CliError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read CA certificates `{}`: {e}",
            path.display()
        ))
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "CA certificates `{}`: {e}",
                    path.display()
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(CliError::Usage(format!(
            "`{}` holds no PEM certificate",
            path.display()
        )));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Why a call to the authority did not give the answer asked for.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing usable came back, or the request was wrong: usage, unavailable, internal.
    Failed(CliError),
    /// The authority refused the caller (401 or 403): a denial, with its code.
    Refused {
        /// `unauthenticated` or `forbidden` (the authority's code).
        code: String,
        /// The authority's message, with a hint.
        message: String,
    },
}

impl From<CliError> for ClientError {
    fn from(e: CliError) -> Self {
        ClientError::Failed(e)
    }
}

impl ClientError {
    /// Prints the failure (stderr, and stdout as JSON when asked) and returns its status:
    /// 77 for a refused caller, else the failure's.
    pub fn report(&self, json: bool) -> Exit {
        match self {
            ClientError::Failed(e) => e.report(json),
            ClientError::Refused { code, message } => {
                eprintln!("writ: denied: {code}: {message}");
                if json {
                    println!(
                        "{}",
                        json!({"decision": "deny", "code": code, "reason": message})
                    );
                }
                Exit::Denied
            }
        }
    }
}

/// A connection to one authority.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<Zeroizing<String>>,
}

/// An answer's status and body.
struct Answer {
    status: u16,
    body: String,
    location: Option<String>,
}

impl Client {
    fn new(
        url: &str,
        token: Option<Zeroizing<String>>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, CliError> {
        Self::with_timeouts(url, token, ca_cert, CONNECT_TIMEOUT, CALL_TIMEOUT)
    }

    /// A client for a gate: the URL, token and trusted roots exactly as given (never from
    /// flags, the environment or the client config), with shorter timeouts than a person's
    /// commands get.
    pub fn for_gate(
        url: &str,
        token: Option<Zeroizing<String>>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, CliError> {
        Self::with_timeouts(url, token, ca_cert, GATE_CONNECT_TIMEOUT, GATE_CALL_TIMEOUT)
    }

    fn with_timeouts(
        url: &str,
        token: Option<Zeroizing<String>>,
        ca_cert: Option<&Path>,
        connect: Duration,
        call: Duration,
    ) -> Result<Self, CliError> {
        let base = parse_base_url(url)?;
        if token.is_some() && !base.https && !base.loopback {
            return Err(CliError::Usage(format!(
                "refusing to send a bearer token over plain HTTP to `{}`: use https:// (plain \
                 HTTP is for loopback addresses only)",
                base.text
            )));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = ca_cert {
            tls = tls.root_certs(read_roots(path)?);
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(call))
            .max_redirects(0)
            .user_agent(format!("writ/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client {
            base: base.text,
            agent,
            token,
        })
    }

    /// The base URL, for messages.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        let bearer = self
            .token
            .as_ref()
            .map(|t| Zeroizing::new(format!("Bearer {}", **t)));
        let result = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                if let Some(b) = &bearer {
                    req = req.header("Authorization", b.as_str());
                }
                req.call()
            }
            (_, body) => {
                let mut req = match method {
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                if let Some(b) = &bearer {
                    req = req.header("Authorization", b.as_str());
                }
                req.send_json(body.unwrap_or(&Value::Null))
            }
        };
        let mut response = result.map_err(|e| transport_error(&self.base, &e))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| transport_error(&self.base, &e))?;
        Ok(Answer {
            status,
            body,
            location,
        })
    }

    /// `GET path`: the body text of a 200 answer.
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let answer = self.call("GET", path, None)?;
        self.success(path, answer)
    }

    /// `GET path`: the JSON of a 200 answer.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let text = self.get_text(path)?;
        self.decode(path, &text)
    }

    /// `POST path` with a JSON body: the JSON of a 200 answer.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let answer = self.call("POST", path, Some(body))?;
        let text = self.success(path, answer)?;
        self.decode(path, &text)
    }

    /// `PUT path` with a JSON body: the JSON of a 200 answer.
    pub fn put_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let answer = self.call("PUT", path, Some(body))?;
        let text = self.success(path, answer)?;
        self.decode(path, &text)
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, text: &str) -> Result<T, ClientError> {
        serde_json::from_str(text).map_err(|e| {
            ClientError::Failed(CliError::Unavailable(format!(
                "`{}{path}` answered with something writ does not understand ({e}): is \
                 this a writ authority of the same version?",
                self.base
            )))
        })
    }

    /// The body of a 2xx answer; any other status becomes the matching error.
    fn success(&self, path: &str, answer: Answer) -> Result<String, ClientError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        Err(status_error(&self.base, path, answer))
    }
}

/// The `{"error":{"code","message"}}` body of a refused request.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn status_error(base: &str, path: &str, answer: Answer) -> ClientError {
    let status = answer.status;
    let detail = serde_json::from_str::<ErrorBody>(&answer.body)
        .ok()
        .map(|b| b.error);
    let said = detail
        .as_ref()
        .map(|d| format!("{}: {}", d.code, d.message))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let endpoint = format!("{base}{path}");
    match (status, detail) {
        (401, detail) => ClientError::Refused {
            code: detail.map_or_else(|| "unauthenticated".into(), |d| d.code),
            message: format!(
                "the authority at {base} does not accept this bearer token (HTTP 401): check \
                 --token-file / WRIT_TOKEN, and that the principal is registered and enabled"
            ),
        },
        (403, detail) => ClientError::Refused {
            code: detail
                .as_ref()
                .map_or_else(|| "forbidden".into(), |d| d.code.clone()),
            message: format!(
                "{}; the call `{path}` needs another role (revocations, policy and keys are \
                 for admins: use the admin token)",
                detail.map_or_else(|| "HTTP 403".into(), |d| d.message)
            ),
        },
        (300..=399, _) => CliError::Usage(format!(
            "`{endpoint}` redirects to `{}`; writ does not follow redirects: give the final \
             URL with --url",
            answer.location.unwrap_or_default()
        ))
        .into(),
        (404 | 405, None) => CliError::Unavailable(format!(
            "`{endpoint}` is not served (HTTP {status}): check the URL, and that the authority \
             runs a writ version that has this endpoint"
        ))
        .into(),
        (429, _) => CliError::Unavailable(format!(
            "the authority is rate limiting this caller: {said}"
        ))
        .into(),
        (400..=499, _) => {
            CliError::Usage(format!("the authority refused the request: {said}")).into()
        }
        (500..=599, _) => CliError::Unavailable(format!(
            "the authority at {base} could not answer (HTTP {status}): {said}"
        ))
        .into(),
        _ => CliError::Internal(format!("unexpected answer from `{endpoint}`: {said}")).into(),
    }
}

fn transport_error(base: &str, e: &ureq::Error) -> ClientError {
    let tls = matches!(
        e,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_)
    ) || e.to_string().contains("certificate");
    let hint = if tls {
        " (the server's certificate did not verify: a deployment with its own CA needs \
         --ca-cert)"
    } else {
        ""
    };
    CliError::Unavailable(format!("cannot reach the authority at {base}: {e}{hint}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let u = parse_base_url("http://127.0.0.1:7070/").unwrap();
        assert_eq!(u.text, "http://127.0.0.1:7070");
        assert!(u.loopback && !u.https);
        let u = parse_base_url("https://writ.example.com/prefix").unwrap();
        assert_eq!(u.text, "https://writ.example.com/prefix");
        assert!(u.https && !u.loopback);
        assert!(parse_base_url("http://[::1]:80").unwrap().loopback);
        assert!(parse_base_url("http://localhost").unwrap().loopback);
        assert!(!parse_base_url("http://10.0.0.1").unwrap().loopback);
        for bad in [
            "ftp://x",
            "writ.example.com",
            "https://",
            "https://u:p@host",
            "https://host/?a=b",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_is_never_sent_in_clear_off_loopback() {
        let token = Some(Zeroizing::new("t".to_owned()));
        assert!(Client::new("http://writ.example.com", token.clone(), None).is_err());
        assert!(Client::new("http://127.0.0.1:1", token.clone(), None).is_ok());
        assert!(Client::new("https://writ.example.com", token, None).is_ok());
        // Public endpoints (the log) carry no token.
        assert!(Client::new("http://writ.example.com", None, None).is_ok());
    }

    #[test]
    fn statuses_map_to_exits() {
        let answer = |status: u16, body: &str| Answer {
            status,
            body: body.into(),
            location: None,
        };
        let err = |s, b| status_error("http://x", "/v1/y", answer(s, b));
        let body = r#"{"error":{"code":"bad_request","message":"no"}}"#;
        assert!(
            matches!(err(401, ""), ClientError::Refused { code, .. } if code == "unauthenticated")
        );
        assert!(matches!(err(403, ""), ClientError::Refused { .. }));
        let exit = |e: ClientError| match e {
            ClientError::Failed(e) => e.exit(),
            ClientError::Refused { .. } => Exit::Denied,
        };
        assert_eq!(exit(err(400, body)), Exit::Usage);
        assert_eq!(exit(err(413, body)), Exit::Usage);
        assert_eq!(exit(err(404, "")), Exit::Unavailable);
        assert_eq!(exit(err(404, body)), Exit::Usage);
        assert_eq!(exit(err(429, body)), Exit::Unavailable);
        assert_eq!(exit(err(503, body)), Exit::Unavailable);
        assert_eq!(exit(err(500, body)), Exit::Unavailable);
        assert_eq!(exit(err(302, "")), Exit::Usage);
    }
}
