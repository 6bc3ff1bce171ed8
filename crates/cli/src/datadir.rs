//! The data directory: where the embedded database and the log's checkpoint key live.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::CliError;

/// The embedded database, inside the data directory.
pub const DATABASE_FILE: &str = "writ.db";
/// The log's checkpoint signing key (C2SP note private key text), mode 0600.
pub const CHECKPOINT_KEY_FILE: &str = "log-checkpoint.key";

/// `--data-dir`, shared by every command that keeps state.
#[derive(Args, Clone, Debug)]
pub struct DataDirArgs {
    /// Data directory [env: WRIT_DATA_DIR; default: $XDG_DATA_HOME/writ or ~/.local/share/writ].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArgs {
    /// The directory to use.
    pub fn resolve(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os("WRIT_DATA_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join("writ"));
        }
        match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/share/writ")),
            None => Err(CliError::Usage(
                "no data directory: pass --data-dir or set WRIT_DATA_DIR".into(),
            )),
        }
    }
}

/// Creates `dir` (mode 0700) if it does not exist.
pub fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot create data directory `{}`: {e}",
                dir.display()
            ))
        })
}

/// Creates `path` with `mode` (never replacing a file), writes `bytes` and syncs them.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let err =
        |e: std::io::Error| CliError::Usage(format!("cannot write `{}`: {e}", path.display()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // The umask may have narrowed the mode; make it exactly what was asked.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// 32 bytes from the operating system.
pub fn random_seed() -> Result<zeroize::Zeroizing<[u8; 32]>, CliError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut())
        .map_err(|e| CliError::Internal(format!("no randomness from the operating system: {e}")))?;
    Ok(seed)
}
