//! A throwaway PostgreSQL cluster of a test's own (`initdb` and `pg_ctl` in a temp dir, on a
//! free port), for tests that stop the database: never the machine's shared server.

use std::path::PathBuf;
use std::process::Command;

/// A private PostgreSQL server; stopped and removed on drop.
pub struct ThrowawayPg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The directory of `initdb` and `pg_ctl`, if PostgreSQL's server binaries are installed.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

impl ThrowawayPg {
    /// Initializes and starts a cluster; `None` when the server binaries are missing.
    pub fn start() -> Option<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: as root, the cluster belongs to `postgres`.
        let as_postgres = nix_is_root();
        if as_postgres {
            chown_to_postgres(dir.path());
        }
        let pg = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg
            .command("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            .args(["--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Runs `pg_ctl -D DATA ARGS…` (as `postgres` where needed).
    fn pg_ctl(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args)
            .output()
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self
            .pg_ctl(&["-l", log.to_str().unwrap(), "-o", &options, "-w", "start"])
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (connections are cut, as when a database host dies).
    pub fn down(&self) {
        let out = self.pg_ctl(&["-m", "immediate", "-w", "stop"]).unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to_postgres(path: &std::path::Path) {
    let out = Command::new("chown")
        .args(["postgres:", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
