//! `writ keys`: create and inspect Ed25519 keys.

use std::fs;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{json, Value};
use writ_core::{KeySet, SigningKey};

use crate::client::{Auth, ClientError, ServerArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// File names `writ keys generate` writes.
pub const PRIVATE_KEY_FILE: &str = "signing-key.pem";
/// The public key as a JWK.
pub const PUBLIC_JWK_FILE: &str = "public.jwk";
/// The public key as a one-key JWKS, ready for `writ verify --jwks`.
pub const JWKS_FILE: &str = "jwks.json";

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate an Ed25519 key pair.
    ///
    /// Writes DIR/signing-key.pem (PKCS#8 PEM, mode 0600), DIR/public.jwk and DIR/jwks.json.
    /// The key id (kid) is the RFC 7638 thumbprint of the public key. Existing files are
    /// never overwritten.
    Generate(GenerateArgs),
    /// Print the key id and public JWK of a key file (PEM private key or JWK).
    Inspect(InspectArgs),
    /// Start a writ-signing key rotation at a running authority (admin token).
    ///
    /// The authority creates a key and announces it in its JWKS at once; it signs writs from
    /// the time printed (`activates_at`), so gates that refresh the JWKS know it before its
    /// first writ. The old key stays in the JWKS until the last writ it signed has expired.
    /// Both steps are log entries.
    #[command(after_help = "\
Example:
  WRIT_URL=https://writ.example.com WRIT_TOKEN_FILE=admin.token writ keys rotate
  writ keys list     # announced → active → retiring")]
    Rotate(RemoteArgs),
    /// List the authority's writ-signing keys and their states (admin token).
    #[command(after_help = "\
Example:
  writ keys list --url https://writ.example.com --token-file admin.token")]
    List(RemoteArgs),
}

#[derive(Args)]
pub struct RemoteArgs {
    /// Print the authority's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Directory to write the key files into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A PKCS#8 PEM private key or a public JWK.
    #[arg(value_name = "FILE")]
    key: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: KeysCommand) -> Exit {
    let (result, json) = match cmd {
        KeysCommand::Rotate(args) => return rotate(&args).unwrap_or_else(|e| e.report(args.json)),
        KeysCommand::List(args) => return list(&args).unwrap_or_else(|e| e.report(args.json)),
        KeysCommand::Generate(args) => (generate(&args), args.json),
        KeysCommand::Inspect(args) => (inspect(&args), args.json),
    };
    match result {
        Ok(()) => Exit::Success,
        Err(e) => e.report(json),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), CliError> {
    let key = SigningKey::from_seed(&*crate::datadir::random_seed()?);

    fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Usage(format!("cannot create `{}`: {e}", args.out.display())))?;
    let private = args.out.join(PRIVATE_KEY_FILE);
    let jwk_path = args.out.join(PUBLIC_JWK_FILE);
    let jwks_path = args.out.join(JWKS_FILE);
    for path in [&private, &jwk_path, &jwks_path] {
        if path.exists() {
            return Err(CliError::Usage(format!(
                "`{}` already exists; writ never overwrites a key",
                path.display()
            )));
        }
    }
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| CliError::Internal(format!("cannot encode the key: {e}")))?;
    crate::datadir::write_new(&private, pem.as_bytes(), 0o600)?;

    let public = key.verifying_key();
    let jwk = serde_json::to_string_pretty(&public.to_jwk()).unwrap_or_default() + "\n";
    crate::datadir::write_new(&jwk_path, jwk.as_bytes(), 0o644)?;
    let mut set = KeySet::new();
    set.insert(public)
        .map_err(|e| CliError::Internal(format!("cannot build the JWKS: {e}")))?;
    crate::datadir::write_new(&jwks_path, (set.to_jwks_json() + "\n").as_bytes(), 0o644)?;

    if args.json {
        println!(
            "{}",
            json!({
                "kid": key.kid().as_str(),
                "private_key": private.display().to_string(),
                "public_jwk": jwk_path.display().to_string(),
                "jwks": jwks_path.display().to_string(),
            })
        );
    } else {
        println!("kid         {}", key.kid());
        println!(
            "private key {} (mode 0600, keep it secret)",
            private.display()
        );
        println!("public JWK  {}", jwk_path.display());
        println!("JWKS        {}", jwks_path.display());
    }
    Ok(())
}

fn inspect(args: &InspectArgs) -> Result<(), CliError> {
    let public = input::read_public_key(&args.key)?;
    let jwk = public.to_jwk();
    if args.json {
        println!("{}", json!({"kid": public.kid().as_str(), "jwk": jwk}));
    } else {
        println!("kid {}", public.kid());
        println!("{}", serde_json::to_string_pretty(&jwk).unwrap_or_default());
    }
    Ok(())
}

/// The authority's answer to `POST /v1/keys/rotate`.
#[derive(Deserialize)]
struct Rotated {
    kid: String,
    activates_at: u64,
    log_index: u64,
}

/// When `at` is, from now, for people.
fn from_now(at: u64) -> String {
    match input::now() {
        Ok(now) if at > now.as_secs() => format!("in {} s", at - now.as_secs()),
        Ok(now) if at < now.as_secs() => format!("{} s ago", now.as_secs() - at),
        Ok(_) => "now".into(),
        Err(_) => format!("at {at}"),
    }
}

fn rotate(args: &RemoteArgs) -> Result<Exit, ClientError> {
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.post_json("/v1/keys/rotate", &json!({}))?;
    let rotated: Rotated = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!("the authority's answer is not a key rotation: {e}"))
    })?;
    if args.json {
        println!("{raw}");
    } else {
        println!("kid {}", rotated.kid);
        println!(
            "announced in the JWKS now; signs writs from {} ({}); log index {}",
            rotated.activates_at,
            from_now(rotated.activates_at),
            rotated.log_index
        );
    }
    Ok(Exit::Success)
}

/// The authority's answer to `GET /v1/keys`.
#[derive(Deserialize)]
struct KeyList {
    keys: Vec<KeyState>,
}

#[derive(Deserialize)]
struct KeyState {
    kid: String,
    state: String,
    #[serde(default)]
    activates_at: Option<u64>,
    #[serde(default)]
    retires_at: Option<u64>,
}

fn list(args: &RemoteArgs) -> Result<Exit, ClientError> {
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.get_json("/v1/keys")?;
    let list: KeyList = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!("the authority's answer is not a key list: {e}"))
    })?;
    if args.json {
        println!("{raw}");
    } else {
        for key in &list.keys {
            let mut line = format!("{}\t{}", key.kid, key.state);
            if let Some(at) = key.activates_at.filter(|at| *at > 0) {
                line.push_str(&format!("\tactivates {at} ({})", from_now(at)));
            }
            if let Some(at) = key.retires_at {
                line.push_str(&format!("\tretires {at} ({})", from_now(at)));
            }
            println!("{line}");
        }
    }
    Ok(Exit::Success)
}
