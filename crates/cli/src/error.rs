//! Failures of a command that are not denials.

use crate::exit::Exit;

/// Why a command could not do its work.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or unreadable inputs (exit 64).
    Usage(String),
    /// A store or service could not be reached (exit 69).
    Unavailable(String),
    /// A failure inside writ or the machine (exit 70).
    Internal(String),
}

impl CliError {
    /// The exit status for this failure.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Unavailable(_) => Exit::Unavailable,
            CliError::Internal(_) => Exit::Internal,
        }
    }

    /// A stable code for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Unavailable(_) => "unavailable",
            CliError::Internal(_) => "internal",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Unavailable(m) | CliError::Internal(m) => m,
        }
    }

    /// Prints the failure (stderr, and stdout as JSON when asked) and returns its status.
    pub fn report(&self, json: bool) -> Exit {
        eprintln!("writ: error: {}", self.message());
        if json {
            println!(
                "{}",
                serde_json::json!({"decision": "error", "code": self.code(), "reason": self.message()})
            );
        }
        self.exit()
    }
}

impl From<writ_store::StoreError> for CliError {
    fn from(e: writ_store::StoreError) -> Self {
        use writ_store::StoreError as S;
        match e {
            S::Sqlite(_) | S::Postgres(_) | S::Writer(_) | S::Poisoned => {
                CliError::Unavailable(e.to_string())
            }
            S::Corrupt(_) => CliError::Internal(e.to_string()),
            _ => CliError::Usage(e.to_string()),
        }
    }
}
