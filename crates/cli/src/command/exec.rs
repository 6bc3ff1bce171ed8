//! `writ exec`: run one command only when a writ authorizes exactly it.
//!
//! The action is `exec`, the resource the executable's canonical absolute path (symlinks
//! resolved), the arguments `{argv, cwd, env}`: the whole argv as given, the canonical working
//! directory, and the pass-through variables of the gate config that are set (every other
//! variable is cleared). The executable is opened once; that open file is hashed and, once
//! authorized, run through `/proc/self/fd/N`: no path is looked up between check and exec.
//!
//! Policy sees the path only. To bind the executable's content as well, give the gate an
//! environment spec (`env_spec` in gate.toml, even an empty file): `writ exec` then puts the
//! executable it is about to run (canonical path and SHA-256 of the open file) in the
//! measurement, whatever the spec's own `executable` key says, so a writ issued for one file
//! is `environment_integrity_failure` for another one at the same path.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Args;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use writ_core::{Denial, DenyCode, MeasuredFile, Sha256Digest};
use writ_gate::{Action, Authorizer as _, GateConfig, Outcome, Permit};

use crate::error::CliError;
use crate::exit::Exit;
use crate::gate::{agent_token, load_config, OnlineGate};
use crate::input;

/// `writ exec`.
#[derive(Args)]
#[command(after_help = "\
The gate's settings (authority, pinned keys, executor, pass-through variables, environment \
spec) come from its config file only ($XDG_CONFIG_HOME/writ/gate.toml, written by `writ gate \
init`); no flag or variable of the caller overrides them. Policy sees the executable's \
path; to bind its content too, name an environment spec in the gate config (`writ gate init \
--env-spec FILE`, an empty file will do): `writ exec` then adds the executable it is about to \
run (path and SHA-256) to the measurement, and a file swapped in after the writ was issued is \
`environment_integrity_failure`. A `#!` script runs as /proc/self/fd/N, so its $0 is that \
path.

Example:
  WRIT_TOKEN_FILE=~/.config/writ/build-agent.token writ exec -- git status

Exit statuses: the command's own once it ran (128+N when killed by signal N); 77 denied, \
69 the authority is unreachable (nothing ran), 64 usage error, 70 internal error.")]
pub struct ExecArgs {
    /// Run under this writ (a file holding the compact writ) instead of requesting one: it is
    /// verified for exactly this command and consumed.
    #[arg(long, value_name = "FILE")]
    writ: Option<PathBuf>,
    /// The agent's bearer token [env: WRIT_TOKEN]; prefer --token-file.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the agent's bearer token [env: WRIT_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

/// The default search path when the gate passes no PATH through.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why `writ exec` did not run the command.
enum Refusal {
    Denied(Denial),
    Failed(CliError),
}

impl From<CliError> for Refusal {
    fn from(e: CliError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<Denial> for Refusal {
    fn from(d: Denial) -> Self {
        Refusal::Denied(d)
    }
}

pub fn run(args: ExecArgs) -> Exit {
    match exec(&args) {
        Ok(code) => {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            std::process::exit(code)
        }
        Err(Refusal::Denied(denial)) => {
            eprintln!("writ: denied: {}: {}", denial.code.as_str(), denial.detail);
            match denial.code {
                DenyCode::StatusUnavailable => Exit::Unavailable,
                _ => Exit::Denied,
            }
        }
        Err(Refusal::Failed(e)) => e.report(false),
    }
}

/// The executable, opened: its canonical path, the open file, its SHA-256, and whether it
/// is a `#!` script (whose interpreter must be able to open it through /dev/fd).
pub struct Executable {
    pub path: PathBuf,
    pub file: File,
    pub sha256: Sha256Digest,
    pub script: bool,
}

/// Finds `cmd` as a shell would: a name with a `/` is a path (relative to `cwd`), any other
/// name is looked up in `search` (absolute entries only).
pub fn resolve(cmd: &str, search: &str, cwd: &Path) -> Result<PathBuf, CliError> {
    if cmd.is_empty() {
        return Err(CliError::Usage("the command is empty".into()));
    }
    if cmd.contains('/') {
        return Ok(cwd.join(cmd));
    }
    for dir in search.split(':') {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            continue;
        }
        let candidate = dir.join(cmd);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(CliError::Usage(format!(
        "`{cmd}` is not an executable in the gate's PATH (`{search}`)"
    )))
}

/// Opens the executable at `path` once: canonical path, open file, digest.
pub fn open_executable(path: &Path) -> Result<Executable, CliError> {
    let err = |e: std::io::Error| CliError::Usage(format!("`{}`: {e}", path.display()));
    let canonical = std::fs::canonicalize(path).map_err(err)?;
    let mut file = File::open(&canonical).map_err(err)?;
    // What was opened is what the path named when it was canonical: a symlink swapped in
    // between would open something else, so ask the kernel which file this is.
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| CliError::Internal(format!("cannot inspect the opened executable: {e}")))?;
    if opened != canonical {
        return Err(CliError::Usage(format!(
            "`{}` changed while it was being opened",
            canonical.display()
        )));
    }
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(CliError::Usage(format!(
            "`{}` is not an executable file",
            canonical.display()
        )));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::with_capacity(2);
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        if head.len() < 2 {
            head.extend(buf[..n].iter().take(2 - head.len()));
        }
        hasher.update(&buf[..n]);
    }
    Ok(Executable {
        path: canonical,
        file,
        sha256: Sha256Digest::from_bytes(hasher.finalize().into()),
        script: head.as_slice() == b"#!",
    })
}

/// The pass-through variables that are set, by name.
pub fn pass_through(
    config: &GateConfig,
    get: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut env = BTreeMap::new();
    for name in &config.pass_env {
        if let Some(value) = get(name) {
            let value = value.into_string().map_err(|_| {
                CliError::Usage(format!("`{name}` is not UTF-8; it cannot be authorized"))
            })?;
            env.insert(name.clone(), value);
        }
    }
    Ok(env)
}

/// The action `writ exec` authorizes.
pub fn action(
    executable: &Path,
    argv: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Action, CliError> {
    let text = |p: &Path, what: &str| {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::Usage(format!("the {what} `{}` is not UTF-8", p.display())))
    };
    Ok(Action {
        action: "exec".into(),
        resource: text(executable, "executable path")?,
        args: json!({"argv": argv, "cwd": text(cwd, "working directory")?, "env": env}),
    })
}

fn exec(args: &ExecArgs) -> Result<i32, Refusal> {
    let config = load_config()?;
    let gate = match &args.writ {
        Some(_) => OnlineGate::from_config(&config)?,
        None => OnlineGate::new(
            &config,
            agent_token(args.token.as_deref(), args.token_file.as_deref())?,
        )?,
    };
    let writ = args
        .writ
        .as_deref()
        .map(|path| input::read_file(path, "writ").map(|w| w.trim().to_owned()))
        .transpose()?;

    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(|e| CliError::Usage(format!("cannot read the working directory: {e}")))?;
    let env = pass_through(&config, &|name| std::env::var_os(name))?;
    let search = env
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let cmd = &args.command[0];
    let executable = open_executable(&resolve(cmd, &search, &cwd)?)?;
    let action = action(&executable.path, &args.command, &cwd, &env)?;

    let measurement = match gate.measure()? {
        Some(mut m) => {
            m.executable = Some(MeasuredFile {
                path: action.resource.clone(),
                sha256: executable.sha256,
            });
            Some(m)
        }
        None => None,
    };
    let permit = match &writ {
        Some(writ) => gate.consume(writ, &action, measurement.as_ref())?,
        None => gate.authorize_measured(&action, measurement.as_ref())?,
    };
    let (code, outcome) = run_command(&executable, &args.command, &cwd, &env)?;
    report(&gate, &permit, &outcome);
    Ok(code)
}

fn report(gate: &OnlineGate, permit: &Permit, outcome: &Outcome) {
    if let Err(e) = gate.report(permit, outcome) {
        eprintln!("writ: warning: {e}");
    }
}

/// Copies `from` to `to` until the end, hashing every byte; a failing `to` (a closed pipe)
/// stops the copying, never the hashing.
fn tee(mut from: impl Read, mut to: impl Write) -> Sha256Digest {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut writing = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        hasher.update(&buf[..n]);
        if writing {
            writing = to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok();
        }
    }
    Sha256Digest::from_bytes(hasher.finalize().into())
}

/// Runs the open executable with `argv` and exactly `env`, output teed and hashed.
fn run_command(
    executable: &Executable,
    argv: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<(i32, Outcome), CliError> {
    if executable.script {
        // The interpreter opens the script as /dev/fd/N: that descriptor must survive exec.
        rustix::io::fcntl_setfd(&executable.file, rustix::io::FdFlags::empty())
            .map_err(|e| CliError::Internal(format!("cannot pass the script on: {e}")))?;
    }
    let started = Instant::now();
    let mut child = Command::new(format!("/proc/self/fd/{}", executable.file.as_raw_fd()))
        .arg0(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CliError::Internal(format!("cannot start `{}`: {e}", executable.path.display()))
        })?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let stdout = std::thread::spawn(move || match out {
        Some(out) => tee(out, std::io::stdout()),
        None => Sha256Digest::of(b""),
    });
    let stderr = std::thread::spawn(move || match err {
        Some(err) => tee(err, std::io::stderr()),
        None => Sha256Digest::of(b""),
    });
    let status = child
        .wait()
        .map_err(|e| CliError::Internal(format!("waiting for the command: {e}")))?;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let stdout_sha256 = stdout
        .join()
        .map_err(|_| CliError::Internal("copying standard output failed".into()))?;
    let stderr_sha256 = stderr
        .join()
        .map_err(|_| CliError::Internal("copying standard error failed".into()))?;
    let (code, exit_status, signal) = match (status.code(), status.signal()) {
        (Some(code), _) => (code, Some(code), None),
        (None, Some(sig)) => (128 + sig, None, Some(sig)),
        (None, None) => (70, None, None),
    };
    Ok((
        code,
        Outcome {
            exit_status,
            signal,
            duration_ms,
            stdout_sha256,
            stderr_sha256,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_through_the_search_path_and_paths_against_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let search = format!("relative:{}", dir.path().display());
        assert_eq!(resolve("tool", &search, Path::new("/")).unwrap(), bin);
        assert!(resolve("tool", "relative:/nonexistent", Path::new("/")).is_err());
        assert_eq!(
            resolve("./x", "", Path::new("/w")).unwrap(),
            Path::new("/w/./x")
        );
        let opened = open_executable(&bin).unwrap();
        assert!(opened.script);
        assert_eq!(opened.sha256, Sha256Digest::of(b"#!/bin/sh\n"));
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(open_executable(&bin).is_err());
    }

    #[test]
    fn the_action_binds_argv_cwd_and_env() {
        let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned())]);
        let argv = vec!["git".to_owned(), "status".to_owned()];
        let a = action(Path::new("/usr/bin/git"), &argv, Path::new("/w"), &env).unwrap();
        assert_eq!(a.action, "exec");
        assert_eq!(a.resource, "/usr/bin/git");
        assert_eq!(
            a.args,
            json!({"argv": ["git", "status"], "cwd": "/w", "env": {"PATH": "/usr/bin"}})
        );
    }

    #[test]
    fn tee_copies_and_hashes_even_when_the_copy_fails() {
        let mut out = Vec::new();
        assert_eq!(tee(&b"hello"[..], &mut out), Sha256Digest::of(b"hello"));
        assert_eq!(out, b"hello");
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(tee(&b"abc"[..], Broken), Sha256Digest::of(b"abc"));
    }
}
