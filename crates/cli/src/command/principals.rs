//! `writ principals`: who may call the authority.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use writ_core::{Sha256Digest, VerifyingKey};
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
#[command(after_help = "\
Examples:
  writ principals add build-agent --role agent
  writ principals add gate-1 --role executor
  writ keys generate --out alice-key        # alice keeps alice-key/signing-key.pem
  writ principals add alice --role approver --group finance --approval-key alice-key/public.jwk

The token is printed once on standard output; only its SHA-256 is stored.")]
struct AddArgs {
    /// The principal's name: a writ's `sub` (agents) or `aud` (executors).
    name: String,
    /// agent, executor, approver or admin.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// A group for policy (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The approver's Ed25519 public key (a JWK, e.g. `public.jwk` from `writ keys
    /// generate`): its approvals must be signatures under it. Only with `--role approver`.
    #[arg(long, value_name = "JWKFILE")]
    approval_key: Option<PathBuf>,
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

/// The approval key named by `--approval-key`, read (and checked) before anything is stored.
fn approval_key(args: &AddArgs) -> Result<Option<VerifyingKey>, CliError> {
    let Some(path) = &args.approval_key else {
        return Ok(None);
    };
    if args.role != Role::Approver {
        return Err(CliError::Usage(format!(
            "--approval-key is for approvers: `{}` would be a {}; add it with --role approver",
            args.name, args.role
        )));
    }
    crate::input::read_public_key(path).map(Some)
}

fn add(store: &SqlitePrincipals, args: &AddArgs) -> Result<Exit, CliError> {
    let key = approval_key(args)?;
    let token = register(store, &args.name, args.role, &args.groups)?;
    if let Some(key) = &key {
        store.set_approval_key(&args.name, key)?;
    }
    let kid = key.as_ref().map(|k| k.kid().to_string());
    if args.json {
        let mut out = json!({"name": args.name, "role": args.role, "groups": args.groups,
                             "token": token});
        if let Some(kid) = &kid {
            out["approval_key_id"] = json!(kid);
        }
        println!("{out}");
    } else {
        println!("{token}");
        eprintln!(
            "writ: registered {} `{}`; the token above is shown once, keep it secret",
            args.role, args.name
        );
        if let Some(kid) = &kid {
            eprintln!("writ: `{}` signs approvals with key {kid}", args.name);
        } else if args.role == Role::Approver {
            eprintln!(
                "writ: `{}` has no approval key yet, so its approvals are refused \
                 (`no_approval_key`): add one with --approval-key JWKFILE",
                args.name
            );
        }
    }
    Ok(Exit::Success)
}

fn list(store: &SqlitePrincipals, args: &ListArgs) -> Result<Exit, CliError> {
    let all = store.list()?;
    let mut rows = Vec::with_capacity(all.len());
    for p in all {
        let kid = match p.role {
            Role::Approver => store.approval_key(&p.name)?.map(|k| k.kid().to_string()),
            _ => None,
        };
        rows.push((p, kid));
    }
    if args.json {
        let principals: Vec<Value> = rows
            .iter()
            .map(|(p, kid)| {
                let mut v = json!(p);
                if let (Some(kid), Some(map)) = (kid, v.as_object_mut()) {
                    map.insert("approval_key_id".into(), json!(kid));
                }
                v
            })
            .collect();
        println!("{}", json!({"principals": principals}));
    } else {
        for (p, kid) in rows {
            let state = if p.disabled { " (disabled)" } else { "" };
            let key = match (p.role, kid) {
                (_, Some(kid)) => format!("\tapproval key {kid}"),
                (Role::Approver, None) => "\tno approval key".to_owned(),
                _ => String::new(),
            };
            println!("{}\t{}\t{}{key}{state}", p.name, p.role, p.groups.join(","));
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
