//! [`OnlineGate`]: the [`Authorizer`] every gate of the `writ` binary uses.
//!
//! For one action it (1) asks the authority for a writ as the agent (`POST /v1/authorize`,
//! the executor named as audience, its public key as `cnf`, the measurement as `env`), (2)
//! verifies that writ locally with the pinned JWKS and issuer for exactly this action, key and
//! measurement, (3) consumes it at the authority as the executor with a proof of possession
//! (`POST /v1/consume`) and checks the signed answer against the pinned keys and its own fresh
//! nonce. Only then is the action permitted. After it ran, [`Authorizer::report`] sends a
//! receipt signed with the executor key (`POST /v1/receipts`).
//!
//! Every failure is a [`Denial`]: an unreachable authority, a timeout or a bad answer is
//! `status_unavailable`; a policy denial is `missing_authorization` with the policy's reasons.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use writ_core::{
    sign_pop, sign_receipt, verify_answer, Denial, DenyCode, Expectation, Measurement,
    PolicyAcceptance, Receipt, Sha256Digest, SigningKey, StateChecks, UnixTime, Verdict, Verifier,
};
use writ_gate::{Action, Authorizer, EnvSpec, GateConfig, Outcome, Permit, ReportError};
use zeroize::Zeroizing;

use super::read_secret_file;
use crate::client::{check_token, Client, ClientError};
use crate::error::CliError;
use crate::input;

/// An online gate: one executor, one authority, pinned keys.
pub struct OnlineGate {
    executor: String,
    verifier: Verifier,
    key: SigningKey,
    /// Calls made as the executor (consume, receipts).
    authority: Client,
    /// Calls made as the agent (authorize); `None` for a gate that only consumes writs
    /// brought to it.
    agent: Option<Client>,
    env_spec: Option<EnvSpec>,
}

/// The authority's answer to `POST /v1/authorize`.
#[derive(Deserialize)]
struct AuthorizeAnswer {
    decision: String,
    #[serde(default)]
    writ: Option<String>,
    #[serde(default)]
    log_index: Option<u64>,
    #[serde(default)]
    reasons: Vec<Value>,
    #[serde(default)]
    request_id: Option<String>,
}

/// The authority's answer to `POST /v1/consume`.
#[derive(Deserialize)]
struct ConsumeAnswer {
    #[serde(default)]
    reason: Option<String>,
    answer: String,
}

fn unavailable(detail: String) -> Denial {
    Denial::new(DenyCode::StatusUnavailable, detail)
}

/// A failed call as a denial: nothing usable came back, so nothing may run.
fn call_denial(what: &str, e: ClientError) -> Denial {
    match e {
        ClientError::Failed(e) => unavailable(format!("{what}: {}", e.message())),
        ClientError::Refused { code, message } => {
            unavailable(format!("{what}: refused ({code}): {message}"))
        }
    }
}

/// One policy reason as a person reads it.
fn describe(reason: &Value) -> String {
    let code = reason["code"].as_str().unwrap_or("deny");
    match serde_json::from_value::<writ_policy::Reason>(reason.clone()) {
        Ok(r) => format!("{code}: {r}"),
        Err(_) => format!("{code}: {reason}"),
    }
}

fn now() -> Result<UnixTime, Denial> {
    input::now().map_err(|e| unavailable(e.message().to_owned()))
}

fn nonce() -> Result<String, Denial> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| unavailable(format!("no randomness for a nonce: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl OnlineGate {
    /// A gate that consumes writs brought to it (`writ exec --writ`) but cannot request any:
    /// the executor's key, token and pinned keys from `config`.
    pub fn from_config(config: &GateConfig) -> Result<Self, CliError> {
        let pem = read_secret_file(&config.executor_key, "executor key")?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            CliError::Usage(format!(
                "executor key `{}`: {e}",
                config.executor_key.display()
            ))
        })?;
        let token = check_token(read_secret_file(
            &config.executor_token_file,
            "executor token file",
        )?)?;
        super::refuse_if_others_may_write(&config.jwks, "pinned JWKS")?;
        let keys = input::read_jwks(&config.jwks)?;
        let env_spec = config
            .env_spec
            .as_deref()
            .map(|path| {
                EnvSpec::load(path).map_err(|e| CliError::Usage(format!("gate config: {e}")))
            })
            .transpose()?;
        let authority = Client::for_gate(
            &config.authority_url,
            Some(token),
            config.ca_cert.as_deref(),
        )?;
        Ok(OnlineGate {
            executor: config.executor.clone(),
            verifier: Verifier::new(config.issuer.clone(), keys),
            key,
            authority,
            agent: None,
            env_spec,
        })
    }

    /// A gate that requests writs as the agent whose bearer token is `agent_token`, then
    /// verifies and consumes them as the executor of `config`.
    pub fn new(config: &GateConfig, agent_token: Zeroizing<String>) -> Result<Self, CliError> {
        let mut gate = Self::from_config(config)?;
        gate.agent = Some(Client::for_gate(
            &config.authority_url,
            Some(check_token(agent_token)?),
            config.ca_cert.as_deref(),
        )?);
        Ok(gate)
    }

    /// Measures the environment as the gate config's spec says; `None` without a spec. A
    /// measurement that cannot be taken is `environment_integrity_failure`.
    pub fn measure(&self) -> Result<Option<Measurement>, Denial> {
        let Some(spec) = &self.env_spec else {
            return Ok(None);
        };
        let env = |name: &str| std::env::var(name).ok();
        writ_gate::measure(spec, &env).map(Some).map_err(|e| {
            Denial::new(
                DenyCode::EnvironmentIntegrityFailure,
                format!("cannot measure the environment: {e}"),
            )
        })
    }

    /// Asks the authority for a writ for `action`, bound to this executor's key and to
    /// `measurement`. A policy denial is `missing_authorization` with the policy's reasons.
    pub fn request(
        &self,
        action: &Action,
        measurement: Option<&Measurement>,
    ) -> Result<String, Denial> {
        let agent = self.agent.as_ref().ok_or_else(|| {
            Denial::new(
                DenyCode::MissingAuthorization,
                "no writ, and no agent token to request one with",
            )
        })?;
        let mut body = Map::new();
        body.insert("action".into(), json!(action.action));
        body.insert("resource".into(), json!(action.resource));
        body.insert("args".into(), action.args.clone());
        body.insert("audience".into(), json!(self.executor));
        body.insert(
            "executor_key".into(),
            serde_json::to_value(self.key.verifying_key().to_jwk()).unwrap_or(Value::Null),
        );
        if let Some(m) = measurement {
            body.insert("environment".into(), m.to_value());
        }
        let answer: AuthorizeAnswer = match agent.post_json("/v1/authorize", &Value::Object(body)) {
            Ok(answer) => answer,
            Err(ClientError::Refused { code, message }) => {
                return Err(Denial::new(
                    DenyCode::MissingAuthorization,
                    format!("the authority refused the agent ({code}): {message}"),
                ))
            }
            Err(ClientError::Failed(CliError::Usage(message))) => {
                return Err(Denial::new(DenyCode::MissingAuthorization, message))
            }
            Err(e) => return Err(call_denial("requesting a writ", e)),
        };
        let at = answer
            .log_index
            .map(|i| format!(" (decision at log index {i})"))
            .unwrap_or_default();
        match (answer.decision.as_str(), answer.writ) {
            ("permit", Some(writ)) => Ok(writ),
            ("deny", _) => {
                let reasons = if answer.reasons.is_empty() {
                    "no reason given".to_owned()
                } else {
                    answer
                        .reasons
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                Err(Denial::new(
                    DenyCode::MissingAuthorization,
                    format!("the authority denied the request{at}: {reasons}"),
                ))
            }
            ("pending", _) => Err(Denial::new(
                DenyCode::MissingAuthorization,
                match answer.request_id {
                    Some(id) => format!(
                        "request {id} awaits approvals{at}: an approver must approve it (`writ \
                         approve {id} --key KEY`); this gate does not wait: once it is approved, \
                         the requester fetches the writ with `writ approvals show {id} --out \
                         FILE` (for `writ exec --writ FILE`)"
                    ),
                    None => format!("the request awaits approvals{at}; this gate does not wait"),
                },
            )),
            (other, _) => Err(unavailable(format!(
                "the authority answered `{other}` without a writ"
            ))),
        }
    }

    /// Verifies `writ` locally for exactly `action` (pinned keys and issuer, this executor,
    /// its key, `measurement`), then consumes one use at the authority with a proof of
    /// possession and checks the signed answer.
    pub fn consume(
        &self,
        writ: &str,
        action: &Action,
        measurement: Option<&Measurement>,
    ) -> Result<Permit, Denial> {
        let now = now()?;
        let env_digest = measurement.map(Measurement::digest);
        let expect = Expectation {
            audience: &self.executor,
            action: &action.action,
            resource: &action.resource,
            args: &action.args,
            environment: env_digest.as_ref(),
            executor: Some(self.key.kid()),
            policy: PolicyAcceptance::Any,
            ancestors: &[],
        };
        let verified = match self
            .verifier
            .verify(writ, &expect, now, StateChecks::Offline)
        {
            Verdict::Permit(v) => v,
            Verdict::Deny(denial) => return Err(denial),
        };
        let writ_sha256 = verified.digest();
        let nonce = nonce()?;
        let mut body = Map::new();
        body.insert("writ".into(), json!(writ));
        body.insert("action".into(), json!(action.action));
        body.insert("resource".into(), json!(action.resource));
        body.insert("args".into(), action.args.clone());
        if let Some(d) = &env_digest {
            body.insert("environment_sha256".into(), json!(d.to_hex()));
        }
        body.insert("nonce".into(), json!(nonce));
        body.insert(
            "pop".into(),
            json!(sign_pop(&self.key, writ_sha256, &nonce, now)),
        );
        let answer: ConsumeAnswer = self
            .authority
            .post_json("/v1/consume", &Value::Object(body))
            .map_err(|e| call_denial("consuming the writ", e))?;
        let signed = verify_answer(&answer.answer, self.verifier.keys(), &writ_sha256, &nonce)?;
        if signed.decision == "permit" {
            return Ok(Permit {
                writ: writ.to_owned(),
                jti: verified.claims().jti.to_base64url(),
            });
        }
        let code = signed
            .code
            .as_deref()
            .and_then(DenyCode::from_str_code)
            .unwrap_or(DenyCode::StatusUnavailable);
        Err(Denial::new(
            code,
            format!(
                "the authority refused to consume the writ: {}",
                answer.reason.as_deref().unwrap_or("no reason given")
            ),
        ))
    }

    /// [`OnlineGate::request`] then [`OnlineGate::consume`], with a measurement the caller
    /// took (`writ exec` adds the executable it is about to run to the spec's).
    pub fn authorize_measured(
        &self,
        action: &Action,
        measurement: Option<&Measurement>,
    ) -> Result<Permit, Denial> {
        let writ = self.request(action, measurement)?;
        self.consume(&writ, action, measurement)
    }
}

impl Authorizer for OnlineGate {
    fn authorize(&self, action: &Action) -> Result<Permit, Denial> {
        let measurement = self.measure()?;
        self.authorize_measured(action, measurement.as_ref())
    }

    fn preview(&self, action: &Action) -> Option<bool> {
        let agent = self.agent.as_ref()?;
        let body = json!({
            "action": action.action,
            "resource": action.resource,
            "args": action.args,
            "audience": self.executor,
        });
        let answer: Value = agent.post_json("/v1/authorize/preview", &body).ok()?;
        match answer["decision"].as_str()? {
            "deny" => Some(false),
            // Approvals may release it.
            "permit" | "pending" => Some(true),
            _ => None,
        }
    }

    fn report(&self, permit: &Permit, outcome: &Outcome) -> Result<(), ReportError> {
        let now = input::now().map_err(|e| ReportError(e.message().to_owned()))?;
        let receipt = Receipt {
            jti: permit.jti.clone(),
            writ_sha256: Sha256Digest::of(permit.writ.as_bytes()),
            exit_status: outcome.exit_status,
            signal: outcome.signal,
            duration_ms: outcome.duration_ms,
            stdout_sha256: outcome.stdout_sha256,
            stderr_sha256: outcome.stderr_sha256,
            iat: now.as_secs(),
        };
        let body = json!({
            "writ": permit.writ,
            "receipt": sign_receipt(&self.key, &receipt),
        });
        self.authority
            .post_json::<Value>("/v1/receipts", &body)
            .map(|_| ())
            .map_err(|e| ReportError(call_denial("sending the receipt", e).detail.into_owned()))
    }
}
