//! `writ`: pre-execution authorization for AI agents and automated workflows.
//!
//! A thin binary: it parses arguments into validated values and calls writ-core, writ-store
//! and writ-gate. One module per subcommand under `command/`.
#![forbid(unsafe_code)]

mod client;
mod command;
mod datadir;
mod error;
mod exit;
mod gate;
mod input;
mod signal;

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
    /// Create and inspect Ed25519 keys (PKCS#8 PEM, JWK, JWKS); rotate an authority's.
    #[command(subcommand)]
    Keys(command::keys::KeysCommand),
    /// Verify a writ offline for an exact action, as a gate would.
    Verify(Box<command::verify::VerifyArgs>),
    /// Measure the runtime environment a writ can be bound to.
    #[command(subcommand)]
    Env(command::env::EnvCommand),
    /// The transparency log: notes, checkpoints, proofs, verification.
    Log(command::log::LogArgs),
    /// Cedar policy sets: validate, run decision cases, print the digest; apply and show
    /// the set in force at an authority.
    #[command(subcommand)]
    Policy(command::policy::PolicyCommand),
    /// Run the authority (creates its data dir on first start).
    Serve(command::serve::ServeArgs),
    /// Register, list and disable principals.
    Principals(command::principals::PrincipalsArgs),
    /// Ask a running authority for a writ (prints it; exit 77 with the reasons on deny).
    ///
    /// One action, on one resource, with these exact arguments, for one executor. The
    /// principal is whoever the bearer token belongs to: a request cannot name another. On
    /// permit the compact writ is printed on standard output (exit 0); on deny the reasons
    /// are printed on standard error (exit 77). Either way the decision is already in the
    /// authority's log, at the index the answer names.
    Request(Box<command::request::RequestArgs>),
    /// Requests waiting for human approval: list them with their exact terms, show one,
    /// wait for one (docs/approvals.md).
    #[command(subcommand)]
    Approvals(command::approvals::ApprovalsCommand),
    /// Approve a pending request with your own approver key (after checking its digest).
    ///
    /// Fetches the request, shows its terms, recomputes the argument and request digests
    /// from them and refuses to sign when either differs from what the authority shows (or
    /// from --sha256). Then signs the approval object with the approver's Ed25519 key and
    /// sends it. At quorum the authority evaluates the policy again and issues the writ.
    Approve(command::approvals::ApproveArgs),
    /// Reject a pending request with your own approver key: one rejection ends it.
    ///
    /// Checks the request's digests as `writ approve` does, then signs a rejection
    /// (`writ-rejection-v1`) and sends it; the requester's wait ends with exit 77.
    Reject(command::approvals::RejectArgs),
    /// Revoke a writ, a principal, a key or a policy set at a running authority (admin).
    ///
    /// A writ dies with its descendants; a principal's writs all die; a revoked signing key
    /// leaves the JWKS and its writs are `unknown_key`; a revoked policy digest makes its
    /// writs `policy_mismatch`. It holds from the moment the authority acknowledges it, and
    /// it is a log entry at the index printed.
    Revoke(command::revoke::RevokeArgs),
    /// A writ's delegation tree from the log: decisions, consumptions, executions, revocations.
    Lineage(command::lineage::LineageArgs),
    /// Hooks for coding agents: `writ hook claude-code` is Claude Code's PreToolUse hook.
    #[command(subcommand)]
    Hook(command::hook::HookCommand),
    /// Run a command only if a writ authorizes exactly it (exit: the command's own status).
    ///
    /// Action `exec`, resource the executable's canonical path, arguments the argv, the
    /// working directory and the pass-through environment (all other variables are cleared).
    /// Asks the authority for a writ as the agent (or takes --writ), verifies it with the
    /// gate's pinned keys, consumes it with the executor key, runs the very file it hashed,
    /// and logs a signed receipt. Denied: exit 77 and nothing runs; authority unreachable:
    /// exit 69 and nothing runs.
    Exec(command::exec::ExecArgs),
    /// Set up this machine's gate (`writ gate init`).
    #[command(subcommand)]
    Gate(command::gate::GateCommand),
    /// Put an MCP server behind a gate: every `tools/call` needs a writ (stdio or HTTP).
    ///
    /// Stdio: starts SERVER_CMD and relays MCP between it and the client on standard input
    /// and output. Streamable HTTP: with --listen ADDR --upstream URL, serves MCP on ADDR in
    /// front of the server at URL. Each `tools/call` is authorized as `tools/call` on `mcp:<SERVER>/<tool>` with
    /// its arguments and forwarded exactly as authorized; a denied call never reaches the
    /// server, and the client gets a tool error naming the code and reason. Each permitted
    /// call's result digest goes to the log in a receipt.
    McpGateway(command::mcp_gateway::McpGatewayArgs),
    /// Measure the authority: latency at fixed offered rates, throughput, CPU bound.
    #[command(subcommand)]
    Bench(command::bench::BenchCommand),
}

fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A hook must block, never end with a status its agent ignores.
            if command::hook::invoked() {
                command::hook::refuse_arguments(&e);
            }
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
        Commands::Request(args) => command::request::run(*args),
        Commands::Approvals(cmd) => command::approvals::run(cmd),
        Commands::Approve(args) => command::approvals::approve(args),
        Commands::Reject(args) => command::approvals::reject(args),
        Commands::Revoke(args) => command::revoke::run(args),
        Commands::Lineage(args) => command::lineage::run(args),
        Commands::Hook(cmd) => command::hook::run(cmd),
        Commands::McpGateway(args) => command::mcp_gateway::run(args),
        Commands::Bench(cmd) => command::bench::run(cmd),
        Commands::Exec(args) => command::exec::run(args),
        Commands::Gate(cmd) => command::gate::run(cmd),
    }
}
