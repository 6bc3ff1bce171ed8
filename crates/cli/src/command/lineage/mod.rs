//! `writ lineage WRIT_ID`: the delegation tree around a writ, from the transparency log — the
//! root initiator, each writ's decision, its delegations, consumptions, the executions gates
//! reported, and revocations (a revoked writ takes its subtree with it). Read from a data dir
//! or a running authority (`--url`); drawn as text, JSON, Graphviz DOT or Mermaid.

mod render;
mod tree;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::client::{self, Auth, ClientError, ServerArgs};
use crate::command::log::{entries_page, open_reader};
use crate::datadir::DataDirArgs;
use crate::error::CliError;
use crate::exit::Exit;

/// Draw a writ's delegation tree: decisions, delegations, executions and revocations.
///
/// Walks up from the writ to the root writ (its principal is the root initiator) and down to
/// every descendant, including denied child requests. Reads the log of a data dir, or of a
/// running authority with --url (or WRIT_URL when no data dir is named). Every line names the
/// log index of its entry, so each one can be proven (`writ log prove --index I`).
#[derive(Args)]
pub struct LineageArgs {
    /// The writ's id (`jti`).
    // Ids are base64url: one may start with `-`.
    #[arg(value_name = "WRIT_ID", allow_hyphen_values = true)]
    jti: String,
    #[command(flatten)]
    data: DataDirArgs,
    /// Read the log of a running authority instead of a data dir [env: WRIT_URL].
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    url: Option<String>,
    /// CA certificates (PEM) to trust for https:// [env: WRIT_CA_CERT].
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Output format: an indented tree, JSON, Graphviz DOT (`dot -Tsvg`) or Mermaid.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print JSON (same as --format json): {"root_initiator", "root": node}, each node
    /// {"jti", "depth", "decision", "consumptions", "receipts", "revocations", "revoked_by",
    /// "children"} with entries as {"index", "entry"}; the asked writ's own node fields
    /// (without "children") are repeated at the top.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

/// How `writ lineage` draws the tree.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
    Mermaid,
}

impl LineageArgs {
    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

pub fn run(args: LineageArgs) -> Exit {
    match lineage(&args) {
        Ok(exit) => exit,
        Err(e) => e.report(args.format() == Format::Json),
    }
}

fn lineage(args: &LineageArgs) -> Result<Exit, ClientError> {
    let mut index = tree::Index::default();
    let url = args.url.clone().or_else(|| {
        let local_named = args.data.data_dir.is_some()
            || std::env::var_os("WRIT_DATA_DIR").is_some_and(|d| !d.is_empty());
        (!local_named)
            .then(|| std::env::var(client::ENV_URL).ok())
            .flatten()
            .filter(|u| !u.is_empty())
    });
    // The log is read in order, so a decision is known before the revocations after it.
    // Only decisions, consumptions, receipts and revocations are kept.
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
                    index.add(e.index, e.entry);
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
                for (i, bytes) in page {
                    let entry = serde_json::from_slice(&bytes).map_err(|e| {
                        CliError::Internal(format!("log entry {i} is not JSON: {e}"))
                    })?;
                    index.add(i, entry);
                }
                from = last + 1;
            }
        }
    }
    let tree = index
        .tree(&args.jti)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    match args.format() {
        Format::Text => print!("{}", render::text(&tree, &args.jti)),
        Format::Json => println!("{}", render::json(&tree, &args.jti)),
        Format::Dot => print!("{}", render::dot(&tree, &args.jti)),
        Format::Mermaid => print!("{}", render::mermaid(&tree, &args.jti)),
    }
    Ok(Exit::Success)
}
