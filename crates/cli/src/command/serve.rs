//! `writ serve`: the authority, on the embedded default (SQLite) with nothing to install.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use serde::{Deserialize, Serialize};
use writ_authority::{Authority, AuthorityConfig, Stores};
use writ_core::{KeySet, SigningKey};
use writ_store::{Role, SqlitePrincipals, SqliteReplayStore};

use crate::datadir::{self, DataDirArgs, DATABASE_FILE};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// The authority's settings file inside the data dir; written last at first start.
pub const CONFIG_FILE: &str = "writ.toml";
/// The writ-signing key (PKCS#8 PEM, mode 0600).
pub const ISSUER_KEY_FILE: &str = "issuer-key.pem";
/// The issuer's public keys, for gates to pin.
pub const JWKS_FILE: &str = "jwks.json";
/// The admin principal's bearer token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Cedar schema, policies and entities.
pub const POLICY_DIR: &str = "policy";

/// Run the authority: agents ask it before they act.
///
/// On first start it creates the data dir: SQLite database, writ-signing key and JWKS, the
/// log with its own checkpoint key, example Cedar policies, and an admin token (0600). It
/// listens on 127.0.0.1:7070; plain HTTP is served on loopback only.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The issuer (`iss`) to create the authority with; fixed in writ.toml afterwards.
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    allow_insecure_http: bool,
}

/// `writ.toml`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeConfig {
    issuer: String,
}

pub fn run(args: ServeArgs) -> Exit {
    match serve(&args) {
        Ok(()) => Exit::Success,
        Err(e) => e.report(false),
    }
}

fn serve(args: &ServeArgs) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    if !args.listen.ip().is_loopback() && !args.allow_insecure_http {
        return Err(CliError::Usage(format!(
            "refusing plain HTTP on non-loopback `{}`: TLS arrives with --tls-cert/--tls-key; \
             pass --allow-insecure-http only behind a TLS-terminating proxy",
            args.listen
        )));
    }
    let dir = args.data.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the runtime: {e}")))?;
    // Bind first: a busy port fails before anything is created, and a first start on port 0
    // names its issuer after the port it really got.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .map_err(|e| CliError::Usage(format!("cannot listen on `{}`: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Internal(e.to_string()))?;
    let created = initialize(&dir, args, addr)?;
    let config: ServeConfig = toml::from_str(&input::read_file(&dir.join(CONFIG_FILE), "config")?)
        .map_err(|e| CliError::Usage(format!("{CONFIG_FILE}: {e}")))?;
    let signing_key =
        SigningKey::from_pkcs8_pem(&input::read_file(&dir.join(ISSUER_KEY_FILE), "issuer key")?)
            .map_err(|e| CliError::Usage(format!("{ISSUER_KEY_FILE}: {e}")))?;
    let policy = crate::command::policy::load_dir(&dir.join(POLICY_DIR))?;
    let principals = SqlitePrincipals::open(&dir.join(DATABASE_FILE))?;
    let log = crate::command::log::open_or_create_writer(&dir)?;
    let replay = SqliteReplayStore::open(&dir.join(DATABASE_FILE))?;
    let stores = Stores {
        principals,
        log,
        replay,
    };
    let authority = Arc::new(
        Authority::new(
            AuthorityConfig::new(config.issuer.clone()),
            signing_key,
            stores,
            policy,
        )
        .map_err(|e| CliError::Unavailable(format!("cannot log the policy in force: {e}")))?,
    );

    runtime.block_on(async move {
        announce(&dir, &config.issuer, addr, &created);
        axum::serve(listener, writ_authority::router(authority))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| CliError::Internal(format!("server: {e}")))
    })
}

/// Resolves when SIGTERM or Ctrl-C arrives; in-flight requests then finish.
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Creates whatever the data dir lacks. Each step keeps what an earlier, interrupted start
/// made; `writ.toml` is written last.
fn initialize(dir: &Path, args: &ServeArgs, addr: SocketAddr) -> Result<Vec<String>, CliError> {
    let mut created = Vec::new();
    datadir::ensure_dir(dir)?;
    if dir.join(CONFIG_FILE).exists() {
        return Ok(created);
    }
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    let key_path = dir.join(ISSUER_KEY_FILE);
    if !key_path.exists() {
        let key = SigningKey::from_seed(&*datadir::random_seed()?);
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| CliError::Internal(e.to_string()))?;
        datadir::write_new(&key_path, pem.as_bytes(), 0o600)?;
        created.push(format!(
            "writ-signing key {} ({})",
            key.kid(),
            key_path.display()
        ));
    }
    let key = SigningKey::from_pkcs8_pem(&input::read_file(&key_path, "issuer key")?)
        .map_err(|e| CliError::Usage(format!("{ISSUER_KEY_FILE}: {e}")))?;
    let mut jwks = KeySet::new();
    let _ = jwks.insert(key.verifying_key());
    std::fs::write(dir.join(JWKS_FILE), jwks.to_jwks_json() + "\n")
        .map_err(|e| CliError::Usage(format!("cannot write {JWKS_FILE}: {e}")))?;

    if !dir.join(DATABASE_FILE).exists()
        || writ_store::SqliteLog::open(&dir.join(DATABASE_FILE)).is_err()
    {
        let origin = format!(
            "{}/log",
            issuer
                .split("://")
                .nth(1)
                .unwrap_or(&issuer)
                .trim_end_matches('/')
        );
        let log = crate::command::log::create_log(dir, Some(&origin))?;
        created.push(format!(
            "transparency log `{}` with its own checkpoint key",
            log.origin()
        ));
    }

    let policy_dir = dir.join(POLICY_DIR);
    if !policy_dir.exists() {
        crate::command::policy::write_examples(&policy_dir)?;
        created.push(format!("example Cedar policies ({})", policy_dir.display()));
    }

    let token_path = dir.join(ADMIN_TOKEN_FILE);
    if !token_path.exists() {
        let principals = SqlitePrincipals::open(&dir.join(DATABASE_FILE))?;
        let token = crate::command::principals::register(&principals, "admin", Role::Admin, &[])?;
        datadir::write_new(&token_path, format!("{token}\n").as_bytes(), 0o600)?;
        created.push(format!("admin token ({}, mode 0600)", token_path.display()));
    }

    let config =
        toml::to_string(&ServeConfig { issuer }).map_err(|e| CliError::Internal(e.to_string()))?;
    datadir::write_new(&dir.join(CONFIG_FILE), config.as_bytes(), 0o644)?;
    created.push(format!("settings ({})", dir.join(CONFIG_FILE).display()));
    Ok(created)
}

fn announce(dir: &Path, issuer: &str, addr: SocketAddr, created: &[String]) {
    let d = dir.display();
    if !created.is_empty() {
        eprintln!("writ: created {d}:");
        for item in created {
            eprintln!("  - {item}");
        }
    }
    eprintln!("writ: authority `{issuer}` listening on http://{addr}");
    eprintln!("writ: first request, from another terminal:");
    eprintln!("  AGENT=$(writ principals add build-agent --role agent --data-dir {d})");
    eprintln!("  writ principals add gate-1 --role executor --data-dir {d} >/dev/null");
    eprintln!(
        "  curl -s -H \"Authorization: Bearer $AGENT\" http://{addr}/v1/authorize \\\n    -d '{{\"action\":\"exec\",\"resource\":\"/usr/bin/git\",\"args\":{{\"argv\":[\"git\",\"status\"],\"cwd\":\"/work\",\"env\":{{}}}},\"audience\":\"gate-1\"}}'"
    );
}
