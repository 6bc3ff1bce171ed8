//! `writ log`: the transparency log — append notes, read entries, checkpoints and proofs,
//! and verify it all, offline where an auditor needs it.
//!
//! The read-only subcommands work on a data dir or, with `--url` (or `WRIT_URL` when no data
//! dir is named), on a running authority's public log endpoints. A served log is only
//! trusted through the verifier key the auditor already holds (`verify --vkey`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use writ_log::{admin_note, leaf_hash, Checkpoint, NoteSigner, NoteVerifier, Proof};
use writ_store::SqliteLog;

use crate::client::{self, Auth, Client, ClientError, ServerArgs};
use crate::datadir::{self, DataDirArgs, CHECKPOINT_KEY_FILE, DATABASE_FILE};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// Read and check writ's transparency log (RFC 9162 Merkle tree, C2SP checkpoints).
///
/// On a data dir, or on a running authority with --url: checkpoint, vkey, prove, tail, get
/// and verify read the authority's public log endpoints (no token needed).
#[derive(Args)]
#[command(after_help = "\
Example (an auditor, against a running authority):
  writ log --url https://writ.example.com checkpoint > kept.checkpoint
  writ log --url https://writ.example.com prove --index 42 > proof.json
  writ log check-proof proof.json --checkpoint kept.checkpoint --vkey auditor.vkey
  writ log --url https://writ.example.com verify --vkey auditor.vkey --checkpoint kept.checkpoint")]
pub struct LogArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Read the log of the authority at URL instead of a data dir [env: WRIT_URL, used when
    /// no data dir is named].
    #[arg(long, value_name = "URL", global = true, conflicts_with = "data_dir")]
    url: Option<String>,
    /// CA certificates (PEM) to trust for an https:// URL instead of the webpki roots [env:
    /// WRIT_CA_CERT].
    #[arg(long, value_name = "PEM", global = true)]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Create the log: its origin and its own checkpoint key are fixed from then on.
    Init(InitArgs),
    /// Append an administrator's note: a JSON object with "type":"note" (FILE or - for stdin).
    ///
    /// It is stored as its RFC 8785 canonical JSON; the command returns once it is durable,
    /// with its index. Other entry types are written only by writ itself. Creates the log
    /// on first use.
    Append(AppendArgs),
    /// Print the latest signed checkpoint (a C2SP signed note).
    Checkpoint(JsonArgs),
    /// Print the checkpoint verifier key (name+hash+base64), for auditors.
    Vkey(JsonArgs),
    /// Print an inclusion proof (--index I [--size N]) or a consistency proof (--from M [--to N]).
    Prove(ProveArgs),
    /// Verify a proof file offline; with --checkpoint and --vkey, its root must be the signed one.
    ///
    /// Needs no data directory. Exit 0 when the proof holds, 77 with the reason when not.
    CheckProof(CheckProofArgs),
    /// Recompute the log from its entries and check every stored hash and checkpoint; with a
    /// kept --checkpoint, also prove the log extends it. Names the first thing that broke.
    ///
    /// With --url: the served checkpoint must verify with --vkey (required: a log that
    /// verifies with the key it serves proves nothing), a kept --checkpoint must be
    /// consistent with it (the served consistency proof is checked here), and with
    /// --entries every served entry is hashed and must give the signed root.
    Verify(VerifyArgs),
    /// Print the last entries; -f keeps following new ones.
    Tail(TailArgs),
    /// Print the entry at an index.
    Get(GetArgs),
}

#[derive(Args)]
struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InitArgs {
    /// The log's origin: a unique name, first line of every checkpoint (e.g. writ.example.com/log).
    #[arg(long, value_name = "NAME")]
    origin: Option<String>,
    #[command(flatten)]
    out: JsonArgs,
}

#[derive(Args)]
struct AppendArgs {
    /// The note: a JSON file, or - for standard input.
    #[arg(value_name = "FILE")]
    file: String,
    #[command(flatten)]
    out: JsonArgs,
}

#[derive(Args)]
struct ProveArgs {
    /// Inclusion proof of the entry at this index.
    #[arg(long, value_name = "I", conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    index: Option<u64>,
    /// Tree size for the inclusion proof (default: the latest).
    #[arg(long, value_name = "N", requires = "index")]
    size: Option<u64>,
    /// Consistency proof from this tree size.
    #[arg(long, value_name = "M")]
    from: Option<u64>,
    /// Consistency proof to this tree size (default: the latest).
    #[arg(long, value_name = "N", requires = "from")]
    to: Option<u64>,
}

#[derive(Args)]
struct CheckProofArgs {
    /// The proof file (JSON), or - for standard input.
    #[arg(value_name = "FILE")]
    file: String,
    /// A signed checkpoint the proof's root must match (repeat for both ends of a
    /// consistency proof).
    #[arg(long, value_name = "FILE", requires = "vkey")]
    checkpoint: Vec<PathBuf>,
    /// The checkpoint verifier key (name+hash+base64), or a file holding it.
    #[arg(long, value_name = "KEY", requires = "checkpoint")]
    vkey: Option<String>,
    #[command(flatten)]
    out: JsonArgs,
}

#[derive(Args)]
struct VerifyArgs {
    /// A checkpoint kept from before: the log must be an extension of it.
    #[arg(long, value_name = "FILE", requires = "vkey")]
    checkpoint: Option<PathBuf>,
    /// The verifier key that signed the kept checkpoint (or a file holding it). On a data
    /// dir the log's own key must be this one; with --url it is required.
    #[arg(long, value_name = "KEY")]
    vkey: Option<String>,
    /// With --url: also fetch every entry and check that they hash to the signed root.
    #[arg(long)]
    entries: bool,
    #[command(flatten)]
    out: JsonArgs,
}

#[derive(Args)]
struct TailArgs {
    /// How many of the last entries to print.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
    /// Keep printing entries as they are appended.
    #[arg(short = 'f', long)]
    follow: bool,
    #[command(flatten)]
    out: JsonArgs,
}

#[derive(Args)]
struct GetArgs {
    /// The entry's index.
    #[arg(long, value_name = "I")]
    index: u64,
    #[command(flatten)]
    out: JsonArgs,
}

pub fn run(args: LogArgs) -> Exit {
    let json = match &args.command {
        LogCommand::Init(a) => a.out.json,
        LogCommand::Append(a) => a.out.json,
        LogCommand::Checkpoint(a) | LogCommand::Vkey(a) => a.json,
        LogCommand::Prove(_) => true,
        LogCommand::CheckProof(a) => a.out.json,
        LogCommand::Verify(a) => a.out.json,
        LogCommand::Tail(a) => a.out.json,
        LogCommand::Get(a) => a.out.json,
    };
    let remote = match remote_url(&args) {
        Some(url) => url,
        None => return run_local(args, json),
    };
    let server = ServerArgs::public(Some(&remote), args.ca_cert.as_deref());
    let result = match server.connect(Auth::Public) {
        Err(e) => Err(e.into()),
        Ok(client) => match &args.command {
            LogCommand::Init(_) | LogCommand::Append(_) => Err(CliError::Usage(
                "`writ log init` and `writ log append` work on a data dir, not with --url".into(),
            )
            .into()),
            LogCommand::CheckProof(a) => check_proof(a).map_err(ClientError::from),
            LogCommand::Checkpoint(a) => remote_checkpoint(&client, a),
            LogCommand::Vkey(a) => remote_vkey(&client, a),
            LogCommand::Prove(a) => remote_prove(&client, a),
            LogCommand::Verify(a) => remote_verify(&client, a),
            LogCommand::Tail(a) => remote_tail(&client, a),
            LogCommand::Get(a) => remote_get(&client, a),
        },
    };
    match result {
        Ok(exit) => exit,
        Err(e) => e.report(json),
    }
}

/// The authority URL to read from: `--url`, else `WRIT_URL` when no data dir is named (by
/// flag or `WRIT_DATA_DIR`). `check-proof` needs neither and ignores it.
fn remote_url(args: &LogArgs) -> Option<String> {
    if matches!(args.command, LogCommand::CheckProof(_)) {
        return None;
    }
    if let Some(url) = &args.url {
        return Some(url.clone());
    }
    let local_named = args.data.data_dir.is_some()
        || std::env::var_os("WRIT_DATA_DIR").is_some_and(|d| !d.is_empty());
    let writes = matches!(args.command, LogCommand::Init(_) | LogCommand::Append(_));
    if local_named || writes {
        return None;
    }
    std::env::var(client::ENV_URL)
        .ok()
        .filter(|u| !u.is_empty())
}

fn run_local(args: LogArgs, json: bool) -> Exit {
    let result = match args.command {
        LogCommand::Init(a) => init(&args.data, &a),
        LogCommand::Append(a) => append(&args.data, &a),
        LogCommand::Checkpoint(a) => checkpoint(&args.data, &a),
        LogCommand::Vkey(a) => vkey(&args.data, &a),
        LogCommand::Prove(a) => prove(&args.data, &a),
        LogCommand::CheckProof(a) => check_proof(&a),
        LogCommand::Verify(a) => verify(&args.data, &a),
        LogCommand::Tail(a) => tail(&args.data, &a),
        LogCommand::Get(a) => get(&args.data, &a),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => e.report(json),
    }
}

fn database(data: &DataDirArgs) -> Result<PathBuf, CliError> {
    Ok(data.resolve()?.join(DATABASE_FILE))
}

pub(crate) fn open_reader(data: &DataDirArgs) -> Result<SqliteLog, CliError> {
    let path = database(data)?;
    SqliteLog::open(&path).map_err(|e| match e {
        writ_store::StoreError::NoLog => CliError::Usage(format!(
            "no log in `{}`: append a note or run `writ log init` first",
            path.parent().unwrap_or(&path).display()
        )),
        e => e.into(),
    })
}

/// The data dir's checkpoint key, made (for `origin`, or a random local one) if missing.
pub(crate) fn checkpoint_signer(dir: &Path, origin: Option<&str>) -> Result<NoteSigner, CliError> {
    datadir::ensure_dir(dir)?;
    let key_path = dir.join(CHECKPOINT_KEY_FILE);
    let signer = if key_path.exists() {
        let signer = read_signer(&key_path)?;
        if origin.is_some_and(|o| o != signer.name()) {
            return Err(CliError::Usage(format!(
                "`{}` is the key of origin `{}`; remove it to start a log with another origin",
                key_path.display(),
                signer.name()
            )));
        }
        signer
    } else {
        let origin = match origin {
            Some(o) => o.to_owned(),
            None => format!("writ.local/log/{}", hex_id(&datadir::random_seed()?[..6])),
        };
        let signer = NoteSigner::from_seed(&origin, &*datadir::random_seed()?)
            .map_err(|e| CliError::Usage(format!("origin `{origin}` cannot name a key: {e}")))?;
        datadir::write_new(&key_path, signer.to_private_key_text().as_bytes(), 0o600)?;
        signer
    };
    Ok(signer)
}

/// Creates the data dir, the checkpoint key and the log. The key is written first and kept:
/// after a crash between the two steps, the next call creates the log with that same key.
pub(crate) fn create_log(dir: &Path, origin: Option<&str>) -> Result<SqliteLog, CliError> {
    let signer = checkpoint_signer(dir, origin)?;
    let origin = signer.name().to_owned();
    Ok(SqliteLog::create(
        &dir.join(DATABASE_FILE),
        &origin,
        signer,
    )?)
}

fn read_signer(key_path: &Path) -> Result<NoteSigner, CliError> {
    let text = input::read_file(key_path, "checkpoint key")?;
    NoteSigner::from_private_key_text(text.trim())
        .map_err(|e| CliError::Usage(format!("checkpoint key `{}`: {e}", key_path.display())))
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the log for appending, creating it (with the existing key, if any) on first use.
pub(crate) fn open_or_create_writer(dir: &Path) -> Result<SqliteLog, CliError> {
    let key_path = dir.join(CHECKPOINT_KEY_FILE);
    if key_path.exists() {
        match SqliteLog::open_writer(&dir.join(DATABASE_FILE), read_signer(&key_path)?) {
            Err(writ_store::StoreError::NoLog) => {}
            other => return Ok(other?),
        }
    }
    let log = create_log(dir, None)?;
    eprintln!("writ: created log `{}` in {}", log.origin(), dir.display());
    Ok(log)
}

fn init(data: &DataDirArgs, args: &InitArgs) -> Result<Exit, CliError> {
    let dir = data.resolve()?;
    if dir.join(DATABASE_FILE).exists() {
        if let Ok(log) = SqliteLog::open(&dir.join(DATABASE_FILE)) {
            return Err(CliError::Usage(format!(
                "`{}` already holds the log `{}`; a log's origin and key never change",
                dir.display(),
                log.origin()
            )));
        }
    }
    let log = create_log(&dir, args.origin.as_deref())?;
    if args.out.json {
        println!(
            "{}",
            json!({"origin": log.origin(), "vkey": log.verifier_key(), "data_dir": dir.display().to_string()})
        );
    } else {
        println!("created log `{}` in {}", log.origin(), dir.display());
        println!(
            "checkpoint verifier key (give it to auditors): {}",
            log.verifier_key()
        );
    }
    Ok(Exit::Success)
}

fn append(data: &DataDirArgs, args: &AppendArgs) -> Result<Exit, CliError> {
    let text = input::read_file_or_stdin(&args.file, "note")?;
    let value = writ_core::canonical::parse_strict(&text)
        .map_err(|e| CliError::Usage(format!("note: {e}")))?;
    let entry = admin_note(&value).map_err(|e| CliError::Usage(e.to_string()))?;
    let dir = data.resolve()?;
    let log = open_or_create_writer(&dir)?;
    let hash = leaf_hash(&entry);
    let index = log.append(entry)?;
    if args.out.json {
        println!("{}", json!({"index": index, "leaf_hash": hash.to_hex()}));
    } else {
        println!("{index}");
    }
    Ok(Exit::Success)
}

fn checkpoint(data: &DataDirArgs, args: &JsonArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    let note = log.latest_checkpoint()?;
    if args.json {
        let cp = Checkpoint::open(note.as_bytes(), &[log.verifier().clone()])
            .map_err(|e| CliError::Internal(format!("stored checkpoint: {e}")))?;
        print_checkpoint_json(&cp, &note);
    } else {
        print!("{note}");
    }
    Ok(Exit::Success)
}

/// A checkpoint for machines: its fields and the signed note they came from.
fn print_checkpoint_json(cp: &Checkpoint, note: &str) {
    println!(
        "{}",
        json!({"origin": cp.origin, "size": cp.size, "root_hash": cp.root.to_hex(), "note": note})
    );
}

fn vkey(data: &DataDirArgs, args: &JsonArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    if args.json {
        println!(
            "{}",
            json!({"origin": log.origin(), "vkey": log.verifier_key()})
        );
    } else {
        println!("{}", log.verifier_key());
    }
    Ok(Exit::Success)
}

fn prove(data: &DataDirArgs, args: &ProveArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    let proof = match (args.index, args.from) {
        (Some(index), _) => Proof::Inclusion(log.prove_inclusion(index, args.size)?),
        (None, Some(from)) => Proof::Consistency(log.prove_consistency(from, args.to)?),
        (None, None) => return Err(CliError::Usage("give --index or --from".into())),
    };
    println!("{}", proof.to_json());
    Ok(Exit::Success)
}

/// A verifier key given inline or as a file.
fn read_vkey(arg: &str) -> Result<NoteVerifier, CliError> {
    let text = if Path::new(arg).is_file() {
        input::read_file(Path::new(arg), "verifier key")?
    } else {
        arg.to_owned()
    };
    NoteVerifier::from_vkey(text.trim()).map_err(|e| CliError::Usage(format!("verifier key: {e}")))
}

fn read_checkpoint(
    path: &Path,
    verifier: &NoteVerifier,
) -> Result<Result<Checkpoint, String>, CliError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::Usage(format!("cannot read checkpoint `{}`: {e}", path.display()))
    })?;
    Ok(Checkpoint::open(&bytes, std::slice::from_ref(verifier))
        .map_err(|e| format!("checkpoint `{}` does not verify: {e}", path.display())))
}

/// Prints a failed check (stderr, and JSON when asked) and returns "denied".
fn refuse(json: bool, code: &str, reason: &str) -> Exit {
    eprintln!("writ: {code}: {reason}");
    if json {
        println!(
            "{}",
            json!({"valid": false, "code": code, "reason": reason})
        );
    }
    Exit::Denied
}

fn check_proof(args: &CheckProofArgs) -> Result<Exit, CliError> {
    let text = input::read_file_or_stdin(&args.file, "proof")?;
    let json = args.out.json;
    let proof = match Proof::from_json(&text) {
        Ok(p) => p,
        Err(e) => return Ok(refuse(json, "proof_malformed", &e.to_string())),
    };
    if let Err(e) = proof.verify() {
        return Ok(refuse(json, "proof_invalid", &e.to_string()));
    }
    // The (size, root) pairs the proof vouches for; a checkpoint must sign one of them.
    let ends: Vec<(u64, writ_log::Hash)> = match &proof {
        Proof::Inclusion(p) => vec![(p.tree_size, p.root_hash)],
        Proof::Consistency(p) => vec![(p.size1, p.root1), (p.size2, p.root2)],
    };
    let mut anchored = Vec::new();
    if let Some(vkey) = &args.vkey {
        let verifier = read_vkey(vkey)?;
        for path in &args.checkpoint {
            let cp = match read_checkpoint(path, &verifier)? {
                Ok(cp) => cp,
                Err(reason) => return Ok(refuse(json, "checkpoint_invalid", &reason)),
            };
            if !ends.contains(&(cp.size, cp.root)) {
                let reason = format!(
                    "checkpoint `{}` signs size {} with root {}, which this proof does not prove",
                    path.display(),
                    cp.size,
                    cp.root
                );
                return Ok(refuse(json, "checkpoint_mismatch", &reason));
            }
            anchored.push(json!({"origin": cp.origin, "size": cp.size}));
        }
    }
    let kind = match &proof {
        Proof::Inclusion(_) => "inclusion",
        Proof::Consistency(_) => "consistency",
    };
    if json {
        println!(
            "{}",
            json!({"valid": true, "type": kind, "checkpoints": anchored})
        );
    } else {
        let suffix = if anchored.is_empty() {
            String::new()
        } else {
            format!(", anchored to {} signed checkpoint(s)", anchored.len())
        };
        println!("{kind} proof holds{suffix}");
    }
    Ok(Exit::Success)
}

fn verify(data: &DataDirArgs, args: &VerifyArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    let json = args.out.json;
    if args.entries {
        return Err(CliError::Usage(
            "--entries is for --url: on a data dir every entry is always checked".into(),
        ));
    }
    if let Some(vkey) = &args.vkey {
        let trusted = read_vkey(vkey)?;
        if trusted.to_vkey() != log.verifier_key() {
            let reason = format!(
                "the log `{}` signs its checkpoints with `{}`, not with the key given",
                log.origin(),
                log.verifier_key()
            );
            return Ok(refuse(json, "checkpoint_invalid", &reason));
        }
    }
    let kept = match (&args.checkpoint, &args.vkey) {
        (Some(path), Some(vkey)) => match read_checkpoint(path, &read_vkey(vkey)?)? {
            Ok(cp) => Some(cp),
            Err(reason) => return Ok(refuse(json, "checkpoint_invalid", &reason)),
        },
        _ => None,
    };
    let audit = log.audit(kept.as_ref())?;
    if let Some(finding) = &audit.finding {
        return Ok(refuse(json, "log_inconsistent", &finding.to_string()));
    }
    if json {
        println!(
            "{}",
            json!({"valid": true, "size": audit.size, "root_hash": audit.root.to_hex(), "checkpoints": audit.checkpoints,
                   "consistent_with": kept.as_ref().map(|k| k.size)})
        );
    } else {
        println!(
            "log `{}` verifies: {} entries, root {}, {} signed checkpoints checked{}",
            log.origin(),
            audit.size,
            audit.root,
            audit.checkpoints,
            kept.map(|k| format!(", consistent with the kept checkpoint of size {}", k.size))
                .unwrap_or_default()
        );
    }
    Ok(Exit::Success)
}

fn print_entry(index: u64, bytes: &[u8], json: bool) {
    let text = String::from_utf8_lossy(bytes);
    if json {
        let entry: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()));
        println!(
            "{}",
            json!({"index": index, "entry": entry, "leaf_hash": leaf_hash(bytes).to_hex()})
        );
    } else {
        println!("{index}\t{text}");
    }
}

fn tail(data: &DataDirArgs, args: &TailArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    let size = log.size()?;
    let mut next = size.saturating_sub(args.lines);
    loop {
        // The reader returns at most a page at a time; without --follow, stop at the size
        // seen at the start.
        let page = log.entries(next, 1000)?;
        let got = page.len();
        for (index, bytes) in page {
            print_entry(index, &bytes, args.out.json);
            next = index + 1;
        }
        if !args.follow && (got == 0 || next >= size) {
            return Ok(Exit::Success);
        }
        if got == 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn get(data: &DataDirArgs, args: &GetArgs) -> Result<Exit, CliError> {
    let log = open_reader(data)?;
    let bytes = log.entry(args.index)?;
    print_entry(args.index, &bytes, args.out.json);
    Ok(Exit::Success)
}

// ---- A running authority's log, over its public endpoints ------------------------------

/// The served text of a GET, with a trailing newline.
fn served_line(client: &Client, path: &str) -> Result<String, ClientError> {
    let mut text = client.get_text(path)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn not_a_log(client: &Client, what: &str, e: impl std::fmt::Display) -> ClientError {
    CliError::Unavailable(format!(
        "`{}` served a {what} writ cannot read: {e}",
        client.url()
    ))
    .into()
}

/// The served verifier key. Only for display: nothing is trusted because the log serves it.
fn served_verifier(client: &Client) -> Result<NoteVerifier, ClientError> {
    let text = client.get_text("/v1/log/vkey")?;
    NoteVerifier::from_vkey(text.trim()).map_err(|e| not_a_log(client, "verifier key", e))
}

/// The checkpoint text of a signed note, unverified: only to know what was served.
fn unverified_checkpoint(client: &Client, note: &str) -> Result<Checkpoint, ClientError> {
    let text = note
        .find("\n\n")
        .map(|end| &note[..=end])
        .ok_or_else(|| not_a_log(client, "checkpoint", "no blank line"))?;
    Checkpoint::parse(text).map_err(|e| not_a_log(client, "checkpoint", e))
}

fn remote_checkpoint(client: &Client, args: &JsonArgs) -> Result<Exit, ClientError> {
    let note = client.get_text("/v1/log/checkpoint")?;
    unverified_checkpoint(client, &note)?;
    if args.json {
        // As on a data dir: the checkpoint opened with the log's own key (display only; an
        // auditor checks it with the key she holds: `writ log verify --vkey`).
        let verifier = served_verifier(client)?;
        let cp = Checkpoint::open(note.as_bytes(), &[verifier])
            .map_err(|e| not_a_log(client, "checkpoint", e))?;
        print_checkpoint_json(&cp, &note);
    } else {
        print!("{note}");
    }
    Ok(Exit::Success)
}

fn remote_vkey(client: &Client, args: &JsonArgs) -> Result<Exit, ClientError> {
    let verifier = served_verifier(client)?;
    if args.json {
        println!(
            "{}",
            json!({"origin": verifier.name(), "vkey": verifier.to_vkey()})
        );
    } else {
        println!("{}", verifier.to_vkey());
    }
    Ok(Exit::Success)
}

fn remote_prove(client: &Client, args: &ProveArgs) -> Result<Exit, ClientError> {
    let path = match (args.index, args.from) {
        (Some(index), _) => match args.size {
            Some(size) => format!("/v1/log/proof/inclusion?index={index}&size={size}"),
            None => format!("/v1/log/proof/inclusion?index={index}"),
        },
        (None, Some(from)) => match args.to {
            Some(to) => format!("/v1/log/proof/consistency?from={from}&to={to}"),
            None => format!("/v1/log/proof/consistency?from={from}"),
        },
        (None, None) => return Err(CliError::Usage("give --index or --from".into()).into()),
    };
    let text = served_line(client, &path)?;
    // Printed exactly as served, once it is known to be a proof file `check-proof` reads.
    Proof::from_json(text.trim_end()).map_err(|e| not_a_log(client, "proof", e))?;
    print!("{text}");
    Ok(Exit::Success)
}

/// One page of `GET /v1/log/entries`.
#[derive(serde::Deserialize)]
struct EntryPage {
    entries: Vec<ServedEntry>,
}

#[derive(serde::Deserialize)]
pub(crate) struct ServedEntry {
    pub(crate) index: u64,
    pub(crate) entry: Value,
}

pub(crate) fn entries_page(
    client: &Client,
    from: u64,
    limit: u64,
) -> Result<Vec<ServedEntry>, ClientError> {
    let page: EntryPage = client.get_json(&format!("/v1/log/entries?from={from}&limit={limit}"))?;
    // Pages are contiguous from `from`: anything else is not the log asked for.
    for (i, e) in page.entries.iter().enumerate() {
        if e.index != from + i as u64 {
            return Err(not_a_log(
                client,
                "page of entries",
                format!("entry {} where {} was due", e.index, from + i as u64),
            ));
        }
    }
    Ok(page.entries)
}

/// The stored bytes of a served entry: entries are RFC 8785 canonical JSON, so
/// canonicalizing the served value gives them back (and the same leaf hash).
fn entry_bytes(entry: &Value) -> Vec<u8> {
    writ_core::canonical::to_canonical_vec(entry)
}

/// The size of the latest served checkpoint (unverified: only to know where the end is).
fn served_size(client: &Client) -> Result<u64, ClientError> {
    let note = client.get_text("/v1/log/checkpoint")?;
    Ok(unverified_checkpoint(client, &note)?.size)
}

fn remote_tail(client: &Client, args: &TailArgs) -> Result<Exit, ClientError> {
    let size = served_size(client)?;
    let mut next = size.saturating_sub(args.lines);
    loop {
        // The server answers at most a page at a time; without --follow, stop at the size
        // seen at the start.
        let page = entries_page(client, next, 1000)?;
        let got = page.len();
        for e in page {
            print_entry(e.index, &entry_bytes(&e.entry), args.out.json);
            next = e.index + 1;
        }
        if !args.follow && (got == 0 || next >= size) {
            return Ok(Exit::Success);
        }
        if got == 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn remote_get(client: &Client, args: &GetArgs) -> Result<Exit, ClientError> {
    let page = entries_page(client, args.index, 1)?;
    let Some(e) = page.first() else {
        return Err(CliError::Usage(format!(
            "the log at {} has no entry {}",
            client.url(),
            args.index
        ))
        .into());
    };
    print_entry(e.index, &entry_bytes(&e.entry), args.out.json);
    Ok(Exit::Success)
}

/// The root over the first `size` served entries, recomputed here.
fn served_root(client: &Client, size: u64) -> Result<Result<writ_log::Hash, String>, ClientError> {
    let mut range = writ_log::CompactRange::new();
    while range.size() < size {
        let limit = (size - range.size()).min(1000);
        let page = entries_page(client, range.size(), limit)?;
        if page.is_empty() {
            return Ok(Err(format!(
                "the log serves {} entries, but its checkpoint signs {size}",
                range.size()
            )));
        }
        for e in page
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
        {
            range.append(leaf_hash(&entry_bytes(&e.entry)));
        }
    }
    Ok(Ok(range.root()))
}

fn remote_verify(client: &Client, args: &VerifyArgs) -> Result<Exit, ClientError> {
    let json = args.out.json;
    let Some(vkey) = &args.vkey else {
        return Err(CliError::Usage(
            "`writ log verify --url` needs --vkey: the checkpoint verifier key you trust (a log \
             that verifies with the key it serves proves nothing)"
                .into(),
        )
        .into());
    };
    let verifier = read_vkey(vkey)?;
    let kept = match &args.checkpoint {
        Some(path) => match read_checkpoint(path, &verifier)? {
            Ok(cp) => Some(cp),
            Err(reason) => return Ok(refuse(json, "checkpoint_invalid", &reason)),
        },
        None => None,
    };
    let note = client.get_text("/v1/log/checkpoint")?;
    let latest = match Checkpoint::open(note.as_bytes(), std::slice::from_ref(&verifier)) {
        Ok(cp) => cp,
        Err(e) => {
            let reason = format!(
                "the checkpoint served by {} does not verify with the key given: {e}",
                client.url()
            );
            return Ok(refuse(json, "checkpoint_invalid", &reason));
        }
    };
    if let Some(kept) = &kept {
        if let Err(reason) = consistent(client, kept, &latest)? {
            return Ok(refuse(json, "log_inconsistent", &reason));
        }
    }
    if args.entries {
        match served_root(client, latest.size)? {
            Ok(root) if root == latest.root => {}
            Ok(root) => {
                let reason = format!(
                    "the {} served entries hash to root {root}, not to the signed root {}",
                    latest.size, latest.root
                );
                return Ok(refuse(json, "log_inconsistent", &reason));
            }
            Err(reason) => return Ok(refuse(json, "log_inconsistent", &reason)),
        }
    }
    if json {
        println!(
            "{}",
            json!({"valid": true, "origin": latest.origin, "size": latest.size,
                   "root_hash": latest.root.to_hex(), "entries_checked": args.entries,
                   "consistent_with": kept.as_ref().map(|k| k.size)})
        );
    } else {
        println!(
            "log `{}` at {}: checkpoint of size {} with root {} verifies with the key given{}{}",
            latest.origin,
            client.url(),
            latest.size,
            latest.root,
            kept.map(|k| format!(", consistent with the kept checkpoint of size {}", k.size))
                .unwrap_or_default(),
            if args.entries {
                ", and every served entry hashes to it"
            } else {
                ""
            }
        );
    }
    Ok(Exit::Success)
}

/// Whether the served log at `latest` extends the `kept` checkpoint: `Err(reason)` when not.
fn consistent(
    client: &Client,
    kept: &Checkpoint,
    latest: &Checkpoint,
) -> Result<Result<(), String>, ClientError> {
    if kept.origin != latest.origin {
        return Ok(Err(format!(
            "the kept checkpoint is of log `{}`, the served one of `{}`",
            kept.origin, latest.origin
        )));
    }
    if kept.size > latest.size {
        return Ok(Err(format!(
            "the log shrank: the kept checkpoint signs {} entries, the served one {}",
            kept.size, latest.size
        )));
    }
    if kept.size == latest.size || kept.size == 0 {
        let expected = if kept.size == 0 {
            writ_log::EMPTY_ROOT
        } else {
            latest.root
        };
        return Ok(if kept.root == expected {
            Ok(())
        } else {
            Err(format!(
                "two signed checkpoints of size {} with different roots ({} and {}): the log \
                 was rewritten",
                kept.size, kept.root, expected
            ))
        });
    }
    let path = format!(
        "/v1/log/proof/consistency?from={}&to={}",
        kept.size, latest.size
    );
    let text = client.get_text(&path)?;
    let proof = match Proof::from_json(&text) {
        Ok(Proof::Consistency(p)) => p,
        Ok(Proof::Inclusion(_)) => {
            return Ok(Err(
                "asked for a consistency proof, served an inclusion proof".into(),
            ))
        }
        Err(e) => {
            return Ok(Err(format!(
                "the served consistency proof is malformed: {e}"
            )))
        }
    };
    if (proof.size1, proof.root1, proof.size2, proof.root2)
        != (kept.size, kept.root, latest.size, latest.root)
    {
        return Ok(Err(format!(
            "the served consistency proof is from size {} to {}, not between the two signed \
             checkpoints ({} and {})",
            proof.size1, proof.size2, kept.size, latest.size
        )));
    }
    Ok(match proof.verify() {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "the log does not extend the kept checkpoint of size {}: {e}",
            kept.size
        )),
    })
}
