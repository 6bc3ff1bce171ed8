//! `writ principals`: who may call the authority.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::json;
use writ_core::Sha256Digest;
use writ_store::{Role, SqlitePrincipals};

use crate::datadir::{self, DataDirArgs, DATABASE_FILE};
use crate::error::CliError;
use crate::exit::Exit;

/// Register, list and disable principals (agents, executors, approvers, admins).
#[derive(Args)]
pub struct PrincipalsArgs {
    #[command(flatten)]
    data: DataDirArgs,
    #[command(subcommand)]
    command: PrincipalsCommand,
}

#[derive(Subcommand)]
enum PrincipalsCommand {
    /// Register a principal and print its bearer token, once (only its SHA-256 is stored).
    Add(AddArgs),
    /// List principals.
    List(ListArgs),
    /// Disable a principal: its token stops working at once.
    Disable(DisableArgs),
}

#[derive(Args)]
struct AddArgs {
    /// The principal's name: a writ's `sub` (agents) or `aud` (executors).
    name: String,
    /// agent, executor, approver or admin.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// A group for policy (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DisableArgs {
    /// The principal to disable.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

pub fn run(args: PrincipalsArgs) -> Exit {
    let json = match &args.command {
        PrincipalsCommand::Add(a) => a.json,
        PrincipalsCommand::List(a) => a.json,
        PrincipalsCommand::Disable(a) => a.json,
    };
    let result = open(&args.data).and_then(|store| match &args.command {
        PrincipalsCommand::Add(a) => add(&store, a),
        PrincipalsCommand::List(a) => list(&store, a),
        PrincipalsCommand::Disable(a) => disable(&store, a),
    });
    match result {
        Ok(exit) => exit,
        Err(e) => e.report(json),
    }
}

fn open(data: &DataDirArgs) -> Result<SqlitePrincipals, CliError> {
    let dir = data.resolve()?;
    datadir::ensure_dir(&dir)?;
    Ok(SqlitePrincipals::open(&dir.join(DATABASE_FILE))?)
}

/// A new bearer token: `writ_` and 256 random bits.
pub fn new_token() -> Result<String, CliError> {
    Ok(format!(
        "writ_{}",
        URL_SAFE_NO_PAD.encode(*datadir::random_seed()?)
    ))
}

/// Registers a principal and returns its token.
pub fn register(
    store: &SqlitePrincipals,
    name: &str,
    role: Role,
    groups: &[String],
) -> Result<String, CliError> {
    let token = new_token()?;
    let now = crate::input::now()?.as_secs();
    store.add(name, role, groups, &Sha256Digest::of(token.as_bytes()), now)?;
    Ok(token)
}

fn add(store: &SqlitePrincipals, args: &AddArgs) -> Result<Exit, CliError> {
    let token = register(store, &args.name, args.role, &args.groups)?;
    if args.json {
        println!(
            "{}",
            json!({"name": args.name, "role": args.role, "groups": args.groups, "token": token})
        );
    } else {
        println!("{token}");
        eprintln!(
            "writ: registered {} `{}`; the token above is shown once, keep it secret",
            args.role, args.name
        );
    }
    Ok(Exit::Success)
}

fn list(store: &SqlitePrincipals, args: &ListArgs) -> Result<Exit, CliError> {
    let all = store.list()?;
    if args.json {
        println!("{}", json!({"principals": all}));
    } else {
        for p in all {
            let state = if p.disabled { " (disabled)" } else { "" };
            println!("{}\t{}\t{}{state}", p.name, p.role, p.groups.join(","));
        }
    }
    Ok(Exit::Success)
}

fn disable(store: &SqlitePrincipals, args: &DisableArgs) -> Result<Exit, CliError> {
    if !store.disable(&args.name)? {
        return Err(CliError::Usage(format!("no principal `{}`", args.name)));
    }
    if args.json {
        println!("{}", json!({"name": args.name, "disabled": true}));
    } else {
        println!("disabled `{}`", args.name);
    }
    Ok(Exit::Success)
}
