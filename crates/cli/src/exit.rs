//! Exit statuses of the `writ` command, as DESIGN.md lists them.

use std::process::{ExitCode, Termination};

/// How a `writ` command ended. "Denied" is not "failed": scripts can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success, or a permit.
    Success,
    /// Denied: the code and reason are on stderr (and in `--json` output).
    Denied,
    /// The command line or an input it names is wrong.
    Usage,
    /// A required service or store is unavailable (for a gate, also a denial).
    Unavailable,
    /// Something failed inside writ.
    Internal,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Denied => 77,
            Exit::Usage => 64,
            Exit::Unavailable => 69,
            Exit::Internal => 70,
        }
    }
}

impl Termination for Exit {
    fn report(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}
