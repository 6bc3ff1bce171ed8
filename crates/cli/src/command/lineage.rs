//! `writ lineage WRIT_ID`: one writ's story from the transparency log — the decision that
//! released it, its consumptions, the executions gates reported, and revocations that name it
//! or its principals. Read from a data dir or a running authority (`--url`).

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use crate::client::{self, Auth, ClientError, ServerArgs};
use crate::command::log::{entries_page, open_reader};
use crate::datadir::DataDirArgs;
use crate::error::CliError;
use crate::exit::Exit;

/// Show a writ's decision, consumptions, executions and revocations, from the log.
///
/// Reads the log of a data dir, or of a running authority with --url (or WRIT_URL when no
/// data dir is named). Every line names the log index of its entry, so each one can be
/// proven (`writ log prove --index I`).
#[derive(Args)]
pub struct LineageArgs {
    /// The writ's id (`jti`).
    #[arg(value_name = "WRIT_ID")]
    jti: String,
    #[command(flatten)]
    data: DataDirArgs,
    /// Read the log of a running authority instead of a data dir [env: WRIT_URL].
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    url: Option<String>,
    /// CA certificates (PEM) to trust for https:// [env: WRIT_CA_CERT].
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Print JSON: {"jti", "decision", "consumptions", "receipts", "revocations"}, each entry
    /// as {"index", "entry"}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: LineageArgs) -> Exit {
    match lineage(&args) {
        Ok(exit) => exit,
        Err(e) => e.report(args.json),
    }
}

/// One writ's entries, by kind.
#[derive(Default)]
struct Story {
    decision: Option<(u64, Value)>,
    consumptions: Vec<(u64, Value)>,
    receipts: Vec<(u64, Value)>,
    revocations: Vec<(u64, Value)>,
}

impl Story {
    /// Files `entry` under the writ `jti` if it is about it.
    fn take(&mut self, jti: &str, index: u64, entry: Value) {
        let names_writ = entry["jti"].as_str() == Some(jti);
        match entry["type"].as_str() {
            Some("decision") if names_writ => self.decision = Some((index, entry)),
            Some("consumption") if names_writ => self.consumptions.push((index, entry)),
            Some("receipt") if names_writ => self.receipts.push((index, entry)),
            Some("revocation") => {
                let target = entry["target"].as_str();
                let principals = self
                    .decision
                    .as_ref()
                    .map(|(_, d)| [d["principal"].as_str(), d["audience"].as_str()]);
                let about_writ = entry["kind"] == "writ" && target == Some(jti);
                let about_principal =
                    entry["kind"] == "principal" && principals.is_some_and(|p| p.contains(&target));
                if about_writ || about_principal {
                    self.revocations.push((index, entry));
                }
            }
            _ => {}
        }
    }
}

fn lineage(args: &LineageArgs) -> Result<Exit, ClientError> {
    let mut story = Story::default();
    let url = args.url.clone().or_else(|| {
        let local_named = args.data.data_dir.is_some()
            || std::env::var_os("WRIT_DATA_DIR").is_some_and(|d| !d.is_empty());
        (!local_named)
            .then(|| std::env::var(client::ENV_URL).ok())
            .flatten()
            .filter(|u| !u.is_empty())
    });
    // The log is read in order, so a decision is known before the revocations after it.
    match url {
        Some(url) => {
            let client =
                ServerArgs::public(Some(&url), args.ca_cert.as_deref()).connect(Auth::Public)?;
            let mut from = 0;
            loop {
                let page = entries_page(&client, from, 1000)?;
                let Some(last) = page.last().map(|e| e.index) else {
                    break;
                };
                for e in page {
                    story.take(&args.jti, e.index, e.entry);
                }
                from = last + 1;
            }
        }
        None => {
            let log = open_reader(&args.data)?;
            let mut from = 0;
            loop {
                let page = log.entries(from, 1000).map_err(CliError::from)?;
                let Some(last) = page.last().map(|(i, _)| *i) else {
                    break;
                };
                for (index, bytes) in page {
                    let entry = serde_json::from_slice(&bytes).map_err(|e| {
                        CliError::Internal(format!("log entry {index} is not JSON: {e}"))
                    })?;
                    story.take(&args.jti, index, entry);
                }
                from = last + 1;
            }
        }
    }
    let Some((index, decision)) = &story.decision else {
        return Err(
            CliError::Usage(format!("no decision for writ `{}` in the log", args.jti)).into(),
        );
    };
    if args.json {
        let list = |entries: &[(u64, Value)]| -> Vec<Value> {
            entries
                .iter()
                .map(|(i, e)| json!({"index": i, "entry": e}))
                .collect()
        };
        println!(
            "{}",
            json!({
                "jti": args.jti,
                "decision": {"index": index, "entry": decision},
                "consumptions": list(&story.consumptions),
                "receipts": list(&story.receipts),
                "revocations": list(&story.revocations),
            })
        );
        return Ok(Exit::Success);
    }
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    println!("writ {}", args.jti);
    println!(
        "  [{index}] {} {} {} on {} for {} (policy {} {}), expires {}",
        s(&decision["decision"]),
        s(&decision["principal"]),
        s(&decision["action"]),
        s(&decision["resource"]),
        s(&decision["audience"]),
        &s(&decision["policy_digest"])
            .chars()
            .take(12)
            .collect::<String>(),
        decision["policy_ids"],
        decision["exp"],
    );
    for (i, c) in &story.consumptions {
        let code = c["code"]
            .as_str()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        println!(
            "  [{i}] consumed by {}: {}{code}",
            s(&c["executor"]),
            s(&c["decision"])
        );
    }
    for (i, r) in &story.receipts {
        println!(
            "  [{i}] executed by {}: exit {}, {} ms, stdout sha256 {}",
            s(&r["executor"]),
            r["exit_status"],
            r["duration_ms"],
            &s(&r["stdout_sha256"]).chars().take(12).collect::<String>()
        );
    }
    for (i, r) in &story.revocations {
        println!(
            "  [{i}] revoked ({} `{}`) by {}",
            s(&r["kind"]),
            s(&r["target"]),
            s(&r["by"])
        );
    }
    Ok(Exit::Success)
}
