//! `writ env`: measure the runtime environment.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use writ_gate::EnvSpec;

use crate::error::CliError;
use crate::exit::Exit;

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Print the environment measurement a spec describes, and its digest.
    ///
    /// The digest (SHA-256 of the measurement's RFC 8785 canonical JSON) is what a writ's
    /// `env` claim binds. A spec is TOML:
    ///
    ///   files = ["/etc/ssl/certs/ca-certificates.crt"]
    ///   env = ["PATH", "LANG"]
    ///   hostname = true
    ///   executable = "/usr/bin/git"
    ///   container_image = { env = "WRIT_IMAGE_DIGEST" }
    ///   workload_id = { file = "/run/secrets/workload-id" }
    #[command(verbatim_doc_comment)]
    Measure(MeasureArgs),
}

#[derive(Args)]
pub struct MeasureArgs {
    /// The environment spec (TOML).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Print one compact JSON object (the default output is the same object, indented).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EnvCommand) -> Exit {
    match cmd {
        EnvCommand::Measure(args) => match measure(&args) {
            Ok(()) => Exit::Success,
            Err(e) => e.report(args.json),
        },
    }
}

fn measure(args: &MeasureArgs) -> Result<(), CliError> {
    let spec = EnvSpec::load(&args.spec).map_err(|e| CliError::Usage(e.to_string()))?;
    let measurement = writ_gate::measure(&spec, &|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    })
    .map_err(|e| CliError::Internal(e.to_string()))?;
    let out =
        json!({"measurement": measurement.to_value(), "digest": measurement.digest().to_hex()});
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(())
}
