//! `writ serve`: the authority, on the embedded default (SQLite) with nothing to install.

mod config;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use writ_authority::{Authority, Stores};
use writ_core::{KeySet, SigningKey};
use writ_store::{Role, SqlitePrincipals};

use crate::datadir::{self, DataDirArgs, DATABASE_FILE};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

use self::config::{FileConfig, Settings, SettingsArgs};

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
/// log with its own checkpoint key, example Cedar policies, an admin token (0600) and
/// `writ.toml`, the settings file. It listens on 127.0.0.1:7070; with --tls-cert and
/// --tls-key it serves HTTPS on any address, without them plain HTTP on loopback only.
///
/// Every setting below can also be set in `writ.toml` (the key is named in brackets); a flag
/// wins over the file, the file over the default. Unknown keys are refused.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// The issuer (`iss`) to create the authority with [default: http(s)://ADDR]; fixed in
    /// writ.toml afterwards.
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
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
    let dir = args.data.resolve()?;
    let (config_path, named) = config::config_path(&args.settings, &dir, CONFIG_FILE);
    let file = if config_path.exists() {
        Some(config::load(&config_path)?)
    } else if named {
        return Err(CliError::Usage(format!(
            "config file `{}` does not exist",
            config_path.display()
        )));
    } else {
        None
    };
    let settings = Settings::merge(&args.settings, file.as_ref(), &config_path)?;
    let tls = settings.tls.as_ref().map(tls::server_config).transpose()?;
    if tls.is_none() && !settings.listen.ip().is_loopback() && !settings.allow_insecure_http {
        return Err(CliError::Usage(format!(
            "refusing plain HTTP on non-loopback `{}`: serve TLS with --tls-cert and --tls-key \
             (or [tls] in the config file); pass --allow-insecure-http only behind a \
             TLS-terminating proxy",
            settings.listen
        )));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the runtime: {e}")))?;
    // Bind first: a busy port fails before anything is created, and a first start on port 0
    // names its issuer after the port it really got.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(settings.listen))
        .map_err(|e| CliError::Usage(format!("cannot listen on `{}`: {e}", settings.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Internal(e.to_string()))?;
    let issuer = issuer(args, file.as_ref(), &config_path, scheme, addr);
    let shared = settings.database_url.is_some();
    let created = initialize(&dir, &config_path, &issuer, shared)?;
    let signing_key =
        SigningKey::from_pkcs8_pem(&input::read_file(&dir.join(ISSUER_KEY_FILE), "issuer key")?)
            .map_err(|e| CliError::Usage(format!("{ISSUER_KEY_FILE}: {e}")))?;
    let policy = crate::command::policy::load_dir(&dir.join(POLICY_DIR))?;
    let stores = match &settings.database_url {
        None => {
            let log = crate::command::log::open_or_create_writer(&dir)?;
            Stores::sqlite(&dir.join(DATABASE_FILE), log)?
        }
        Some(url) => postgres_stores(&dir, url, &issuer)?,
    };
    let dir_policy = policy.digest();
    let authority = Arc::new(
        Authority::new(settings.authority(&issuer), signing_key, stores, policy)
            .map_err(|e| CliError::Unavailable(format!("cannot log the policy in force: {e}")))?,
    );

    // The file copy of the JWKS follows rotations (the served one is always current).
    if let Err(e) = std::fs::write(dir.join(JWKS_FILE), authority.keys().to_jwks_json() + "\n") {
        tracing::warn!(error = %e, "cannot refresh {JWKS_FILE}");
    }
    let in_force = authority.policy().digest();
    if in_force != dir_policy {
        tracing::warn!(
            %in_force,
            directory = %dir_policy,
            "the policy set in force (last applied) differs from {}; apply it with \
             `writ policy apply {}`",
            dir.join(POLICY_DIR).display(),
            dir.join(POLICY_DIR).display()
        );
    }
    let maintained = authority.clone();
    let app = writ_authority::router(authority);
    runtime.block_on(async move {
        // Key retirement and purging of expired consumption records.
        tokio::spawn(writ_authority::upkeep(maintained));
        let served = match tls {
            Some(tls) => {
                let listener = tls::TlsListener::new(listener, tls)
                    .map_err(|e| CliError::Internal(format!("TLS listener: {e}")))?;
                announce(&dir, &issuer, scheme, addr, &created);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown())
                    .await
            }
            None => {
                announce(&dir, &issuer, scheme, addr, &created);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown())
                    .await
            }
        };
        served.map_err(|e| CliError::Internal(format!("server: {e}")))
    })
}

/// The issuer: fixed in the config file once it exists; at first start `--issuer`, or the
/// address actually bound.
fn issuer(
    args: &ServeArgs,
    file: Option<&FileConfig>,
    config_path: &Path,
    scheme: &str,
    addr: SocketAddr,
) -> String {
    match file {
        Some(file) => {
            if let Some(asked) = args.issuer.as_ref().filter(|i| **i != file.issuer) {
                eprintln!(
                    "writ: warning: --issuer `{asked}` ignored: the issuer is fixed at `{}` in `{}`",
                    file.issuer,
                    config_path.display()
                );
            }
            file.issuer.clone()
        }
        None => args
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}")),
    }
}

/// Resolves when SIGTERM or Ctrl-C arrives; in-flight requests then finish.
async fn shutdown() {
    crate::signal::terminated().await;
    tracing::info!("shutting down");
}

/// Creates whatever the data dir lacks. Each step keeps what an earlier, interrupted start
/// made; the config file, when it does not exist yet, is written last. A data dir with a
/// config file and a writ-signing key is taken as made (the config file may have been
/// written by hand before the first start).
/// The stores on PostgreSQL: the log under the data dir's checkpoint key (the same on every
/// node), and the data dir's admin token registered if the database lacks it.
fn postgres_stores(dir: &Path, url: &str, issuer: &str) -> Result<Stores, CliError> {
    let unavailable = |e: writ_store::StoreError| {
        CliError::Unavailable(format!("the database is unavailable: {e}"))
    };
    let db = writ_store::PgDatabase::connect(url).map_err(unavailable)?;
    let signer = crate::command::log::checkpoint_signer(dir, Some(&log_origin(issuer)))?;
    let origin = signer.name().to_owned();
    let log = writ_store::postgres::PgLog::open_or_create(db.clone(), &origin, signer)
        .map_err(unavailable)?;
    let stores = Stores::postgres(db, log);
    let token_path = dir.join(ADMIN_TOKEN_FILE);
    if token_path.exists() {
        let token = input::read_file(&token_path, "admin token")?;
        let digest = writ_core::Sha256Digest::of(token.trim().as_bytes());
        if stores
            .principals
            .authenticate(&digest)
            .map_err(unavailable)?
            .is_none()
        {
            match stores.principals.add("admin", Role::Admin, &[], &digest, 0) {
                Ok(_) | Err(writ_store::StoreError::PrincipalExists(_)) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
    }
    Ok(stores)
}

/// The log's origin for an issuer: its host (and path), then `/log`.
fn log_origin(issuer: &str) -> String {
    format!(
        "{}/log",
        issuer
            .split("://")
            .nth(1)
            .unwrap_or(issuer)
            .trim_end_matches('/')
    )
}

fn initialize(
    dir: &Path,
    config_path: &Path,
    issuer: &str,
    shared: bool,
) -> Result<Vec<String>, CliError> {
    let mut created = Vec::new();
    datadir::ensure_dir(dir)?;
    if config_path.exists() && dir.join(ISSUER_KEY_FILE).exists() {
        return Ok(created);
    }

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

    if shared {
        // The log lives in the database; only its checkpoint key is the data dir's.
        if !dir.join(crate::datadir::CHECKPOINT_KEY_FILE).exists() {
            let signer = crate::command::log::checkpoint_signer(dir, Some(&log_origin(issuer)))?;
            created.push(format!("checkpoint key of the log `{}`", signer.name()));
        }
    } else if !dir.join(DATABASE_FILE).exists()
        || writ_store::SqliteLog::open(&dir.join(DATABASE_FILE)).is_err()
    {
        let log = crate::command::log::create_log(dir, Some(&log_origin(issuer)))?;
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
        let token = if shared {
            // Registered in the database by `postgres_stores`.
            crate::command::principals::new_token()?
        } else {
            let principals = SqlitePrincipals::open(&dir.join(DATABASE_FILE))?;
            crate::command::principals::register(&principals, "admin", Role::Admin, &[])?
        };
        datadir::write_new(&token_path, format!("{token}\n").as_bytes(), 0o600)?;
        created.push(format!("admin token ({}, mode 0600)", token_path.display()));
    }

    if !config_path.exists() {
        datadir::write_new(config_path, config::initial_file(issuer).as_bytes(), 0o644)?;
        created.push(format!("settings ({})", config_path.display()));
    }
    Ok(created)
}

fn announce(dir: &Path, issuer: &str, scheme: &str, addr: SocketAddr, created: &[String]) {
    let d = dir.display();
    if !created.is_empty() {
        eprintln!("writ: created {d}:");
        for item in created {
            eprintln!("  - {item}");
        }
    }
    eprintln!("writ: authority `{issuer}` listening on {scheme}://{addr}");
    eprintln!("writ: first request, from another terminal:");
    eprintln!("  export WRIT_URL={scheme}://{addr}");
    eprintln!("  export WRIT_TOKEN=$(writ principals add build-agent --role agent --data-dir {d})");
    eprintln!("  writ principals add gate-1 --role executor --data-dir {d} >/dev/null");
    eprintln!(
        "  writ request --action exec --resource /usr/bin/git --audience gate-1 \\\n    \
         --args '{{\"argv\":[\"git\",\"status\"],\"cwd\":\"/work\",\"env\":{{}}}}'"
    );
}
