//! `writ gate`: set up this machine's gate (its executor principal, key, pinned keys, config).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;
use writ_core::{KeySet, SigningKey};
use writ_gate::{is_env_name, EnvSpec, GateConfig, DEFAULT_PASS_ENV};

use crate::client::{Auth, ClientError, ServerArgs};
use crate::datadir::{ensure_dir, random_seed};
use crate::error::CliError;
use crate::exit::Exit;
use crate::gate::config_path;

/// `writ gate …`.
#[derive(Subcommand)]
pub enum GateCommand {
    /// Register this machine's gate at an authority (admin token) and write its config.
    ///
    /// Generates the executor key (Ed25519, mode 0600), registers the executor principal
    /// (`POST /v1/principals`, role executor) and keeps its token (mode 0600), fetches and
    /// pins the authority's JWKS, and writes the gate config to
    /// $XDG_CONFIG_HOME/writ/gate.toml (else ~/.config/writ/gate.toml), beside the files it
    /// names. An existing config is kept unless --force is given.
    Init(InitArgs),
}

/// `writ gate init`.
#[derive(Args)]
#[command(after_help = "\
Example:
  WRIT_TOKEN_FILE=/var/lib/writ/admin.token writ gate init --url https://writ.example.com \\
      --name gate-1 --env-spec /etc/writ/env.toml

Exit statuses: 0 done, 77 the admin token was refused, 64 usage error (a config exists \
without --force, the name is taken), 69 the authority is unreachable, 70 internal error.")]
pub struct InitArgs {
    /// The executor principal to register (the `aud` of the writs this gate runs).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The issuer (`iss`) to trust [default: the authority URL without a trailing slash,
    /// which is what `writ serve` names itself by default].
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// Environment variables passed through to commands, comma separated [default:
    /// PATH,HOME,LANG,TERM]; all others are cleared.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pass_env: Option<Vec<String>>,
    /// An environment spec: every writ is then bound to its measurement (and, for `writ
    /// exec`, to the executable's content).
    #[arg(long, value_name = "FILE")]
    env_spec: Option<PathBuf>,
    /// Replace an existing gate config.
    #[arg(long)]
    force: bool,
    /// Where the authority is and the admin token (and --ca-cert, kept in the config).
    #[command(flatten)]
    server: ServerArgs,
}

/// Files written beside gate.toml.
const KEY_FILE: &str = "gate.key.pem";
const TOKEN_FILE: &str = "gate.token";
const JWKS_FILE: &str = "gate.jwks.json";

#[derive(Deserialize)]
struct Registered {
    token: String,
}

pub fn run(cmd: GateCommand) -> Exit {
    match cmd {
        GateCommand::Init(args) => match init(&args) {
            Ok(()) => Exit::Success,
            Err(e) => e.report(false),
        },
    }
}

/// Writes `bytes` to `path` with `mode` through a temporary file renamed over it.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let err =
        |e: std::io::Error| CliError::Usage(format!("cannot write `{}`: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn init(args: &InitArgs) -> Result<(), ClientError> {
    let path = config_path()?;
    if path.exists() && !args.force {
        return Err(CliError::Usage(format!(
            "a gate config exists at `{}`: pass --force to replace it",
            path.display()
        ))
        .into());
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| CliError::Internal("the gate config has no directory".into()))?;
    let pass_env: Vec<String> = match &args.pass_env {
        Some(names) => names.iter().map(|n| n.trim().to_owned()).collect(),
        None => DEFAULT_PASS_ENV.iter().map(|s| (*s).to_owned()).collect(),
    };
    if let Some(bad) = pass_env.iter().find(|n| !is_env_name(n)) {
        return Err(CliError::Usage(format!("--pass-env: `{bad}` is not a variable name")).into());
    }
    let env_spec = args
        .env_spec
        .as_deref()
        .map(|p| {
            EnvSpec::load(p).map_err(|e| CliError::Usage(e.to_string()))?;
            std::fs::canonicalize(p).map_err(|e| CliError::Usage(format!("`{}`: {e}", p.display())))
        })
        .transpose()?;
    let ca_cert = args
        .server
        .ca_cert
        .as_deref()
        .map(|p| {
            std::fs::canonicalize(p).map_err(|e| CliError::Usage(format!("`{}`: {e}", p.display())))
        })
        .transpose()?;

    let client = args.server.connect(Auth::Token)?;
    let url = client.url().to_owned();
    let jwks_text = client.get_text("/.well-known/jwks.json")?;
    let keys = KeySet::from_jwks_json(&jwks_text)
        .map_err(|e| CliError::Unavailable(format!("the authority's JWKS is not usable: {e}")))?;
    if keys.is_empty() {
        return Err(CliError::Unavailable("the authority's JWKS holds no keys".into()).into());
    }
    let config = GateConfig {
        authority_url: url.clone(),
        issuer: args
            .issuer
            .clone()
            .unwrap_or_else(|| url.trim_end_matches('/').to_owned()),
        executor: args.name.clone(),
        executor_key: dir.join(KEY_FILE),
        executor_token_file: dir.join(TOKEN_FILE),
        jwks: dir.join(JWKS_FILE),
        ca_cert,
        env_spec,
        pass_env,
    };
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;

    let key = SigningKey::from_seed(&*random_seed()?);
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| CliError::Internal(format!("cannot encode the executor key: {e}")))?;
    let registered: Registered = client
        .post_json(
            "/v1/principals",
            &json!({"name": args.name, "role": "executor", "groups": []}),
        )
        .map_err(|e| match e {
            ClientError::Failed(CliError::Usage(m)) if m.contains(": conflict:") => {
                CliError::Usage(format!(
                    "the authority already has a principal `{}`: choose another --name \
                     (a token is shown only once)",
                    args.name
                ))
                .into()
            }
            other => other,
        })?;

    ensure_dir(&dir)?;
    write_file(&config.executor_key, pem.as_bytes(), 0o600)?;
    write_file(
        &config.executor_token_file,
        format!("{}\n", registered.token).as_bytes(),
        0o600,
    )?;
    write_file(&config.jwks, keys.to_jwks_json().as_bytes(), 0o644)?;
    write_file(&path, config.to_toml().as_bytes(), 0o600)?;
    eprintln!(
        "writ: gate `{}` registered at {url} (executor key {}); config written to {}",
        args.name,
        key.kid(),
        path.display()
    );
    println!("{}", path.display());
    Ok(())
}
