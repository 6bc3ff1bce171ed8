//! `writ`: pre-execution authorization for AI agents and automated workflows.
//!
//! A thin binary: it parses arguments into validated values and calls writ-core, writ-store
//! and writ-gate. One module per subcommand under `command/`.
#![forbid(unsafe_code)]

mod command;
mod datadir;
mod error;
mod exit;
mod input;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// writ: an action runs only when the gate in front of it holds a valid writ.
///
/// A writ is a signed, short-lived, single-use authorization (a JWS, EdDSA over Ed25519)
/// bound to the exact action and arguments, the executor and its environment.
#[derive(Parser)]
#[command(name = "writ", version)]
#[command(
    after_help = "Exit statuses: 0 success or permit, 77 denied, 64 usage error, \
69 a required service is unavailable, 70 internal error."
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Create and inspect Ed25519 keys (PKCS#8 PEM, JWK, JWKS).
    #[command(subcommand)]
    Keys(command::keys::KeysCommand),
    /// Verify a writ offline for an exact action, as a gate would.
    Verify(Box<command::verify::VerifyArgs>),
    /// Measure the runtime environment a writ can be bound to.
    #[command(subcommand)]
    Env(command::env::EnvCommand),
    /// The transparency log: notes, checkpoints, proofs, verification.
    Log(command::log::LogArgs),
    /// Cedar policy sets: validate, run decision cases, print the digest.
    #[command(subcommand)]
    Policy(command::policy::PolicyCommand),
    /// Run the authority (creates its data dir on first start).
    Serve(command::serve::ServeArgs),
    /// Register, list and disable principals.
    Principals(command::principals::PrincipalsArgs),
}

fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Success
                }
                _ => Exit::Usage,
            };
        }
    };
    match cli.command {
        Commands::Keys(cmd) => command::keys::run(cmd),
        Commands::Verify(args) => command::verify::run(*args),
        Commands::Env(cmd) => command::env::run(cmd),
        Commands::Log(args) => command::log::run(args),
        Commands::Policy(cmd) => command::policy::run(cmd),
        Commands::Serve(args) => command::serve::run(args),
        Commands::Principals(args) => command::principals::run(args),
    }
}
