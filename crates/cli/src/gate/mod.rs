//! What the `writ` binary's gates share: their configuration file (`gate.toml`, read from the
//! gate's config directory only), the agent's token, and [`OnlineGate`], the
//! [`writ_gate::Authorizer`] that asks a running authority.

pub mod online;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use writ_gate::GateConfig;
use zeroize::Zeroizing;

use crate::client::{check_token, ENV_TOKEN, ENV_TOKEN_FILE};
use crate::error::CliError;

pub use online::OnlineGate;

/// Where this user's gate config is: `$XDG_CONFIG_HOME/writ/gate.toml`, else
/// `~/.config/writ/gate.toml`.
pub fn config_path() -> Result<PathBuf, CliError> {
    writ_gate::default_config_path(&|name| std::env::var_os(name)).ok_or_else(|| {
        CliError::Usage(
            "no config directory for the gate config: set XDG_CONFIG_HOME or HOME".into(),
        )
    })
}

/// Reads the gate config from its fixed place; a missing one says how to make it.
pub fn load_config() -> Result<GateConfig, CliError> {
    let path = config_path()?;
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "no gate config at `{}`: run `writ gate init --url URL --name EXECUTOR` with an \
             admin token first",
            path.display()
        )));
    }
    refuse_if_others_may_write(&path, "gate config")?;
    GateConfig::load(&path).map_err(|e| CliError::Usage(e.to_string()))
}

/// Refuses a file others could change (the gate config, the pinned keys): whoever may write
/// it decides what the gate trusts.
pub fn refuse_if_others_may_write(path: &Path, what: &str) -> Result<(), CliError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::Usage(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if meta.mode() & 0o022 != 0 {
        return Err(CliError::Usage(format!(
            "{what} `{}` is writable by others (mode {:o}): chmod go-w it",
            path.display(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Reads a secret file (a key or a token), refusing one that others may read or write.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::Usage(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if meta.mode() & 0o077 != 0 {
        return Err(CliError::Usage(format!(
            "{what} `{}` is readable or writable by others (mode {:o}): chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        )));
    }
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::Usage(format!("cannot read {what} `{}`: {e}", path.display())))
}

/// The agent's bearer token: `--token`, else `--token-file`, else `WRIT_TOKEN`, else
/// `WRIT_TOKEN_FILE`.
pub fn agent_token(
    token: Option<&str>,
    token_file: Option<&Path>,
) -> Result<Zeroizing<String>, CliError> {
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::Usage(format!("cannot read token file `{}`: {e}", path.display()))
            })
    };
    let token = if let Some(token) = token {
        Zeroizing::new(token.to_owned())
    } else if let Some(path) = token_file {
        read(path)?
    } else if let Some(token) = non_empty(ENV_TOKEN) {
        Zeroizing::new(token)
    } else if let Some(path) = non_empty(ENV_TOKEN_FILE) {
        read(Path::new(&path))?
    } else {
        return Err(CliError::Usage(
            "no agent token: pass --token-file FILE (or --token), or set WRIT_TOKEN_FILE or \
             WRIT_TOKEN; the gate asks for the writ as that agent"
                .into(),
        ));
    };
    check_token(token)
}
