//! Reading what the command line names: files, standard input, keys, JSON.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use writ_core::{canonical, Jwk, KeyId, KeySet, SigningKey, VerifyingKey};

use crate::error::CliError;

/// Reads a file, naming it in the error.
pub fn read_file(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {what} `{}`: {e}", path.display())))
}

/// Standard input, up to 1 MiB.
pub fn read_stdin(what: &str) -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| CliError::Usage(format!("cannot read the {what} from standard input: {e}")))?;
    Ok(text)
}

/// A file named on the command line, or standard input for `-`.
pub fn read_file_or_stdin(arg: &str, what: &str) -> Result<String, CliError> {
    if arg == "-" {
        read_stdin(what)
    } else {
        read_file(Path::new(arg), what)
    }
}

/// The writ argument: the text itself, or `-` for standard input (surrounding whitespace
/// removed, so a trailing newline does not matter).
pub fn read_token(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    Ok(read_stdin("writ")?.trim().to_owned())
}

/// JSON given inline, or `@FILE` to read it from a file. Duplicate keys are refused.
pub fn read_json(arg: &str, what: &str) -> Result<Value, CliError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => read_file(Path::new(path), what)?,
        None => arg.to_owned(),
    };
    canonical::parse_strict(&text).map_err(|e| CliError::Usage(format!("{what}: {e}")))
}

/// A trusted key set from a JWKS file.
pub fn read_jwks(path: &Path) -> Result<KeySet, CliError> {
    let text = read_file(path, "JWKS")?;
    let keys = KeySet::from_jwks_json(&text)
        .map_err(|e| CliError::Usage(format!("JWKS `{}`: {e}", path.display())))?;
    if keys.is_empty() {
        return Err(CliError::Usage(format!(
            "JWKS `{}` holds no keys",
            path.display()
        )));
    }
    Ok(keys)
}

/// A key file: a PKCS#8 PEM private key or a public JWK. Returns the public key.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, CliError> {
    let text = read_file(path, "key")?;
    if text.trim_start().starts_with("-----BEGIN") {
        let key = SigningKey::from_pkcs8_pem(&text)
            .map_err(|e| CliError::Usage(format!("key `{}`: {e}", path.display())))?;
        return Ok(key.verifying_key());
    }
    let jwk: Jwk = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "key `{}`: not a PEM key or JWK: {e}",
            path.display()
        ))
    })?;
    VerifyingKey::from_jwk(&jwk)
        .map_err(|e| CliError::Usage(format!("key `{}`: {e}", path.display())))
}

/// The key id of a key file.
pub fn read_key_id(path: &Path) -> Result<KeyId, CliError> {
    Ok(read_public_key(path)?.kid().clone())
}

/// Seconds since the epoch, from the system clock.
pub fn now() -> Result<writ_core::UnixTime, CliError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| writ_core::UnixTime(d.as_secs()))
        .map_err(|_| CliError::Internal("system clock is before 1970".into()))
}
