//! `writ serve` settings: the config file (`writ.toml`), the flags that override it, and the
//! checked result. A flag wins over the file, the file over the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use writ_authority::AuthorityConfig;

use crate::error::CliError;
use crate::input;

/// Where `writ serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// The flags of `writ serve` that have a key in the config file; each overrides its key.
#[derive(Args, Clone, Debug, Default)]
pub struct SettingsArgs {
    /// Config file [env: WRIT_CONFIG; default: writ.toml in the data dir, written at first
    /// start]. Flags win over it, it wins over the defaults; unknown keys are refused. A file
    /// named here must exist; paths in it are relative to it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [config: listen; default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP on a non-loopback address, only behind a TLS-terminating proxy
    /// [config: allow_insecure_http].
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// PostgreSQL instead of the embedded SQLite: every node given the same database acts as
    /// one authority, e.g. postgres://writ@db.internal:5432/writ [env: WRIT_DATABASE_URL;
    /// config: database.url].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// TLS certificate chain, PEM, leaf first [config: tls.cert]. With TLS any address may be
    /// used; without it, plain HTTP is served on loopback only.
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM: PKCS#8, PKCS#1 or SEC1 [config: tls.key].
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,

    /// Lifetime of a writ whose policy names none, in seconds
    /// [config: writs.default_lifetime_secs; default: 60].
    #[arg(long, value_name = "SECS", help_heading = "Writs")]
    pub default_lifetime_secs: Option<u64>,
    /// Longest lifetime any policy may grant, in seconds
    /// [config: writs.max_lifetime_secs; default: 300].
    #[arg(long, value_name = "SECS", help_heading = "Writs")]
    pub max_lifetime_secs: Option<u64>,
    /// Most uses any policy may grant one writ [config: writs.max_uses; default: 10].
    #[arg(long, value_name = "N", help_heading = "Writs")]
    pub max_uses: Option<u32>,

    /// Requests per second each principal may make on average; 0 turns the limit off
    /// [config: limits.rate_limit_per_sec; default: 100].
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rate_limit_per_sec: Option<u32>,
    /// Requests a principal may make at once before the average applies
    /// [config: limits.rate_limit_burst; default: 200].
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rate_limit_burst: Option<u32>,
    /// A request taking longer is answered 503 `timeout`, and no writ leaves
    /// [config: limits.request_timeout_ms; default: 10000].
    #[arg(long, value_name = "MS", help_heading = "Limits")]
    pub request_timeout_ms: Option<u64>,
    /// Largest request body, in bytes; a larger one is answered 413
    /// [config: limits.max_body_bytes; default: 262144].
    #[arg(long, value_name = "BYTES", help_heading = "Limits")]
    pub max_body_bytes: Option<usize>,

    /// How long a new signing key is published in the JWKS before it signs, in seconds
    /// [config: keys.announce_secs; default: 60].
    #[arg(long, value_name = "SECS", help_heading = "Keys")]
    pub key_announce_secs: Option<u64>,

    /// A request pending human approval expires after this long, in seconds
    /// [config: approvals.ttl_secs; default: 900].
    #[arg(long, value_name = "SECS", help_heading = "Approvals")]
    pub approval_ttl_secs: Option<u64>,
}

/// `writ.toml`. Every key but `issuer` is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The authority's `iss`; fixed at first start.
    pub issuer: String,
    pub listen: Option<SocketAddr>,
    pub allow_insecure_http: Option<bool>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub writs: WritsSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub approvals: ApprovalsSection,
    #[serde(default)]
    pub database: DatabaseSection,
}

/// `[database]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

/// `[tls]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[writs]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WritsSection {
    pub default_lifetime_secs: Option<u64>,
    pub max_lifetime_secs: Option<u64>,
    pub max_uses: Option<u32>,
}

/// `[limits]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub rate_limit_per_sec: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    pub request_timeout_ms: Option<u64>,
    pub max_body_bytes: Option<usize>,
}

/// `[keys]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    pub announce_secs: Option<u64>,
}

/// `[approvals]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    pub ttl_secs: Option<u64>,
}

/// The config file to use: `--config`, else `WRIT_CONFIG`, else `writ.toml` in the data dir.
/// The second value says whether it was named (and so must exist).
pub fn config_path(args: &SettingsArgs, data_dir: &Path, default_name: &str) -> (PathBuf, bool) {
    if let Some(path) = &args.config {
        return (path.clone(), true);
    }
    if let Some(path) = std::env::var_os("WRIT_CONFIG").filter(|p| !p.is_empty()) {
        return (PathBuf::from(path), true);
    }
    (data_dir.join(default_name), false)
}

/// Parses the config file at `path`.
pub fn load(path: &Path) -> Result<FileConfig, CliError> {
    parse(&input::read_file(path, "config file")?, path)
}

fn parse(text: &str, path: &Path) -> Result<FileConfig, CliError> {
    toml::from_str(text).map_err(|e| {
        CliError::Usage(format!(
            "config file `{}`: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })
}

/// The text written at first start: the issuer, and every other key commented out at its
/// default.
pub fn initial_file(issuer: &str) -> String {
    let d = AuthorityConfig::new(issuer);
    let issuer = toml::Value::String(issuer.to_owned());
    format!(
        "# writ serve settings. Flags override them (`writ serve --help`); relative paths are\n\
         # relative to this file. The issuer is fixed: writs and the log name it.\n\
         issuer = {issuer}\n\
         \n\
         # listen = \"{DEFAULT_LISTEN}\"\n\
         # allow_insecure_http = false   # plain HTTP off loopback, behind a TLS proxy only\n\
         \n\
         # [tls]\n\
         # cert = \"cert.pem\"\n\
         # key = \"key.pem\"\n\
         \n\
         # [writs]\n\
         # default_lifetime_secs = {}\n\
         # max_lifetime_secs = {}\n\
         # max_uses = {}\n\
         \n\
         # [limits]\n\
         # rate_limit_per_sec = {}   # per principal; 0 = off\n\
         # rate_limit_burst = {}\n\
         # request_timeout_ms = {}\n\
         # max_body_bytes = {}\n\
         \n\
         # [keys]\n\
         # announce_secs = {}\n\
         \n\
         # [database]   # PostgreSQL for several nodes acting as one authority\n\
         # url = \"postgres://writ@db.internal:5432/writ\"\n\
         \n\
         # [approvals]\n\
         # ttl_secs = {}   # a request pending approval expires after this long\n",
        d.default_lifetime_secs,
        d.max_lifetime_secs,
        d.max_uses,
        d.rate_limit_per_sec,
        d.rate_limit_burst,
        d.request_timeout_ms,
        d.max_body_bytes,
        d.key_announce_secs,
        d.approval_ttl_secs,
    )
}

/// The certificate and key files to serve TLS with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Checked settings: flags over the file over the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub allow_insecure_http: bool,
    pub tls: Option<TlsFiles>,
    /// PostgreSQL to run on; `None`: the embedded SQLite database in the data dir.
    pub database_url: Option<String>,
    /// The bounds; its issuer is left empty (see [`Settings::authority`]).
    bounds: AuthorityConfig,
}

impl Settings {
    /// Merges `args` over `file` (read from `file_path`) over the defaults, and checks the
    /// result. Paths in the file are taken relative to the file's directory.
    pub fn merge(
        args: &SettingsArgs,
        file: Option<&FileConfig>,
        file_path: &Path,
    ) -> Result<Self, CliError> {
        let empty = FileConfig::default();
        let f = file.unwrap_or(&empty);
        let base = file_path.parent().unwrap_or(Path::new(""));
        let from_file = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));

        let listen = match args.listen.or(f.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| CliError::Internal(format!("default listen address: {e}")))?,
        };
        let cert = args.tls_cert.clone().or_else(|| from_file(&f.tls.cert));
        let key = args.tls_key.clone().or_else(|| from_file(&f.tls.key));
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "tls.key",
                    "--tls-key",
                    "missing: a TLS certificate needs its key",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls.cert",
                    "--tls-cert",
                    "missing: a TLS key needs its certificate",
                ))
            }
        };

        let mut b = AuthorityConfig::new(String::new());
        let pick =
            |flag: Option<u64>, file: Option<u64>, default: u64| flag.or(file).unwrap_or(default);
        b.default_lifetime_secs = pick(
            args.default_lifetime_secs,
            f.writs.default_lifetime_secs,
            b.default_lifetime_secs,
        );
        b.max_lifetime_secs = pick(
            args.max_lifetime_secs,
            f.writs.max_lifetime_secs,
            b.max_lifetime_secs,
        );
        b.max_uses = args.max_uses.or(f.writs.max_uses).unwrap_or(b.max_uses);
        b.rate_limit_per_sec = args
            .rate_limit_per_sec
            .or(f.limits.rate_limit_per_sec)
            .unwrap_or(b.rate_limit_per_sec);
        b.rate_limit_burst = args
            .rate_limit_burst
            .or(f.limits.rate_limit_burst)
            .unwrap_or(b.rate_limit_burst);
        b.request_timeout_ms = pick(
            args.request_timeout_ms,
            f.limits.request_timeout_ms,
            b.request_timeout_ms,
        );
        b.max_body_bytes = args
            .max_body_bytes
            .or(f.limits.max_body_bytes)
            .unwrap_or(b.max_body_bytes);
        b.key_announce_secs = pick(
            args.key_announce_secs,
            f.keys.announce_secs,
            b.key_announce_secs,
        );
        b.approval_ttl_secs = pick(
            args.approval_ttl_secs,
            f.approvals.ttl_secs,
            b.approval_ttl_secs,
        );

        let database_url = args
            .database_url
            .clone()
            .or_else(|| {
                std::env::var("WRIT_DATABASE_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .or_else(|| f.database.url.clone());
        let settings = Settings {
            database_url,
            listen,
            allow_insecure_http: args.allow_insecure_http || f.allow_insecure_http.unwrap_or(false),
            tls,
            bounds: b,
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), CliError> {
        let b = &self.bounds;
        if b.max_lifetime_secs == 0 {
            return Err(invalid(
                "writs.max_lifetime_secs",
                "--max-lifetime-secs",
                "must be at least 1",
            ));
        }
        if b.default_lifetime_secs == 0 {
            return Err(invalid(
                "writs.default_lifetime_secs",
                "--default-lifetime-secs",
                "must be at least 1",
            ));
        }
        if b.default_lifetime_secs > b.max_lifetime_secs {
            return Err(invalid(
                "writs.default_lifetime_secs",
                "--default-lifetime-secs",
                &format!(
                    "{} is over `writs.max_lifetime_secs` ({})",
                    b.default_lifetime_secs, b.max_lifetime_secs
                ),
            ));
        }
        if b.approval_ttl_secs == 0 {
            return Err(invalid(
                "approvals.ttl_secs",
                "--approval-ttl-secs",
                "must be at least 1",
            ));
        }
        if b.max_uses == 0 {
            return Err(invalid(
                "writs.max_uses",
                "--max-uses",
                "must be at least 1",
            ));
        }
        if b.rate_limit_per_sec > 0 && b.rate_limit_burst == 0 {
            return Err(invalid(
                "limits.rate_limit_burst",
                "--rate-limit-burst",
                "must be at least 1 while `limits.rate_limit_per_sec` is on",
            ));
        }
        if b.request_timeout_ms == 0 {
            return Err(invalid(
                "limits.request_timeout_ms",
                "--request-timeout-ms",
                "must be at least 1",
            ));
        }
        if b.max_body_bytes == 0 {
            return Err(invalid(
                "limits.max_body_bytes",
                "--max-body-bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The authority's configuration under `issuer`.
    pub fn authority(&self, issuer: &str) -> AuthorityConfig {
        AuthorityConfig {
            issuer: issuer.to_owned(),
            ..self.bounds.clone()
        }
    }
}

fn invalid(key: &str, flag: &str, why: &str) -> CliError {
    CliError::Usage(format!("setting `{key}` ({flag}): {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::CommandFactory;

    fn file(text: &str) -> FileConfig {
        parse(text, Path::new("/etc/writ/writ.toml")).unwrap()
    }

    fn merge(args: &SettingsArgs, f: Option<&FileConfig>) -> Result<Settings, CliError> {
        Settings::merge(args, f, Path::new("/etc/writ/writ.toml"))
    }

    const FULL: &str = r#"
issuer = "https://writ.example"
listen = "0.0.0.0:8443"
allow_insecure_http = false
[tls]
cert = "tls/cert.pem"
key = "/secrets/key.pem"
[writs]
default_lifetime_secs = 30
max_lifetime_secs = 120
max_uses = 3
[limits]
rate_limit_per_sec = 5
rate_limit_burst = 7
request_timeout_ms = 2500
max_body_bytes = 4096
[keys]
announce_secs = 90
[approvals]
ttl_secs = 120
"#;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SettingsArgs,
    }

    fn flags(argv: &[&str]) -> SettingsArgs {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("serve").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn defaults_without_a_file_or_flags() {
        let s = merge(&SettingsArgs::default(), None).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(!s.allow_insecure_http);
        assert_eq!(s.tls, None);
        assert_eq!(s.authority("iss"), AuthorityConfig::new("iss"));
        // An issuer-only file (what first start writes) changes nothing either.
        let f = file(&initial_file("http://127.0.0.1:7070"));
        assert_eq!(f.issuer, "http://127.0.0.1:7070");
        assert_eq!(merge(&SettingsArgs::default(), Some(&f)).unwrap(), s);
    }

    #[test]
    fn the_file_over_the_defaults() {
        let f = file(FULL);
        let s = merge(&SettingsArgs::default(), Some(&f)).unwrap();
        assert_eq!(s.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(
            s.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/etc/writ/tls/cert.pem"),
                key: PathBuf::from("/secrets/key.pem"),
            })
        );
        let mut expected = AuthorityConfig::new("https://writ.example");
        expected.default_lifetime_secs = 30;
        expected.max_lifetime_secs = 120;
        expected.max_uses = 3;
        expected.rate_limit_per_sec = 5;
        expected.rate_limit_burst = 7;
        expected.max_body_bytes = 4096;
        expected.request_timeout_ms = 2500;
        expected.key_announce_secs = 90;
        expected.approval_ttl_secs = 120;
        assert_eq!(s.authority("https://writ.example"), expected);
    }

    #[test]
    fn flags_over_the_file() {
        let f = file(FULL);
        let args = flags(&[
            "--listen",
            "127.0.0.1:9000",
            "--allow-insecure-http",
            "--tls-cert",
            "here/cert.pem",
            "--default-lifetime-secs",
            "10",
            "--max-lifetime-secs",
            "20",
            "--max-uses",
            "2",
            "--rate-limit-per-sec",
            "0",
            "--rate-limit-burst",
            "1",
            "--request-timeout-ms",
            "100",
            "--max-body-bytes",
            "1024",
            "--key-announce-secs",
            "5",
            "--approval-ttl-secs",
            "7",
        ]);
        let s = merge(&args, Some(&f)).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000".parse().unwrap());
        assert!(s.allow_insecure_http);
        // Flag paths are taken as given; the key still comes from the file.
        assert_eq!(
            s.tls,
            Some(TlsFiles {
                cert: PathBuf::from("here/cert.pem"),
                key: PathBuf::from("/secrets/key.pem"),
            })
        );
        let c = s.authority("i");
        assert_eq!(
            (
                c.default_lifetime_secs,
                c.max_lifetime_secs,
                c.max_uses,
                c.rate_limit_per_sec,
                c.rate_limit_burst,
                c.request_timeout_ms,
                c.max_body_bytes,
                c.key_announce_secs,
                c.approval_ttl_secs
            ),
            (10, 20, 2, 0, 1, 100, 1024, 5, 7)
        );
        // One flag overrides one key; the rest of the file stands.
        let s = merge(&flags(&["--max-uses", "9"]), Some(&f)).unwrap();
        let c = s.authority("i");
        assert_eq!((c.max_uses, c.max_lifetime_secs), (9, 120));
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        for text in [
            "issuer = \"i\"\nlisten_on = \"127.0.0.1:1\"",
            "issuer = \"i\"\n[writs]\nmax_use = 3",
            "issuer = \"i\"\n[limits]\nrate = 3",
            "issuer = \"i\"\n[tls]\ncertificate = \"c\"",
            "issuer = \"i\"\n[keys]\nannounce = 3",
            "issuer = \"i\"\n[approvals]\nttl = 3",
            "issuer = \"i\"\n[server]\nport = 3",
        ] {
            let e = parse(text, Path::new("writ.toml")).unwrap_err();
            assert!(
                matches!(&e, CliError::Usage(m) if m.contains("unknown field")),
                "{text}: {e:?}"
            );
        }
        // The issuer is required; values are typed.
        assert!(parse("listen = \"127.0.0.1:1\"", Path::new("w")).is_err());
        assert!(parse("issuer = \"i\"\n[writs]\nmax_uses = -1", Path::new("w")).is_err());
        assert!(parse("issuer = \"i\"\nlisten = \"nowhere\"", Path::new("w")).is_err());
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--default-lifetime-secs", "301"],
                "writs.default_lifetime_secs",
            ),
            (
                &["--max-lifetime-secs", "30"],
                "writs.default_lifetime_secs",
            ),
            (
                &["--default-lifetime-secs", "0"],
                "writs.default_lifetime_secs",
            ),
            (&["--max-lifetime-secs", "0"], "writs.max_lifetime_secs"),
            (&["--max-uses", "0"], "writs.max_uses"),
            (&["--rate-limit-burst", "0"], "limits.rate_limit_burst"),
            (&["--request-timeout-ms", "0"], "limits.request_timeout_ms"),
            (&["--max-body-bytes", "0"], "limits.max_body_bytes"),
            (&["--tls-cert", "c.pem"], "tls.key"),
            (&["--tls-key", "k.pem"], "tls.cert"),
        ];
        for (argv, key) in cases {
            let e = merge(&flags(argv), None).unwrap_err();
            assert!(
                matches!(&e, CliError::Usage(m) if m.contains(&format!("`{key}`"))),
                "{argv:?}: {e:?}"
            );
        }
        // The same checks hold for values from the file.
        let f = file("issuer = \"i\"\n[writs]\nmax_uses = 0");
        assert!(merge(&SettingsArgs::default(), Some(&f)).is_err());
        // A burst of 0 is fine while the limit is off.
        assert!(merge(
            &flags(&["--rate-limit-per-sec", "0", "--rate-limit-burst", "0"]),
            None
        )
        .is_ok());
    }

    #[test]
    fn the_help_states_the_real_defaults() {
        let d = AuthorityConfig::new("i");
        let mut cmd = Cli::command();
        cmd.build();
        let help = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap()
        };
        for (id, default) in [
            ("default_lifetime_secs", d.default_lifetime_secs.to_string()),
            ("max_lifetime_secs", d.max_lifetime_secs.to_string()),
            ("max_uses", d.max_uses.to_string()),
            ("rate_limit_per_sec", d.rate_limit_per_sec.to_string()),
            ("rate_limit_burst", d.rate_limit_burst.to_string()),
            ("request_timeout_ms", d.request_timeout_ms.to_string()),
            ("max_body_bytes", d.max_body_bytes.to_string()),
            ("key_announce_secs", d.key_announce_secs.to_string()),
            ("approval_ttl_secs", d.approval_ttl_secs.to_string()),
            ("listen", DEFAULT_LISTEN.to_string()),
        ] {
            assert!(
                help(id).contains(&format!("default: {default}]")),
                "{id}: {}",
                help(id)
            );
        }
    }
}
