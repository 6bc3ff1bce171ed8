//! A CPU quota per spawned node, so that N nodes on one machine behave like N machines of a
//! fixed size: each node in a cgroup of its own whose CPU bandwidth is capped (CFS quota).
//! Without it, more nodes on the same cores only divide those cores, and comparing one node
//! with three measures the machine, not the cluster. PostgreSQL and the benchmark itself stay
//! outside the quotas, as a database server and clients on machines of their own would.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The quota's accounting period: 10 ms. With the kernel's default of 100 ms a node that
/// spends its quota early is stopped for the rest of the period, tens of milliseconds, which
/// shows in every latency percentile (and stalls the other nodes when it holds the log's
/// lock); a short period spreads the same share evenly.
const PERIOD_US: u64 = 10_000;

/// Where the CPU controller is, and how its files are named.
#[derive(Clone, Debug)]
enum Hierarchy {
    /// cgroup v1: `cpu.cfs_period_us` and `cpu.cfs_quota_us`.
    V1(PathBuf),
    /// cgroup v2: `cpu.max` (`QUOTA PERIOD`).
    V2(PathBuf),
}

/// Each node's share of the machine, in cores.
#[derive(Clone, Debug)]
pub struct CpuQuota {
    cores: f64,
    hierarchy: Hierarchy,
}

/// A node's cgroup; removed on drop, which succeeds once its process has exited.
#[derive(Debug)]
pub struct Confined {
    dir: PathBuf,
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

fn unavailable(what: &str, path: &Path, e: &std::io::Error) -> CliError {
    CliError::Unavailable(format!(
        "--node-cpus: cannot {what} {}: {e} (a CPU quota needs a writable cgroup file system \
         with the cpu controller, usually as root)",
        path.display()
    ))
}

impl CpuQuota {
    /// Finds the CPU controller (v2 where the unified hierarchy offers it, else v1).
    pub fn new(cores: f64) -> Result<CpuQuota, CliError> {
        let v2 = Path::new("/sys/fs/cgroup");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let offers_cpu = fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"));
        let hierarchy = if offers_cpu {
            Hierarchy::V2(v2.to_path_buf())
        } else if v1.join("cpu.cfs_quota_us").exists() {
            Hierarchy::V1(v1.to_path_buf())
        } else {
            return Err(CliError::Unavailable(
                "--node-cpus: no cgroup CPU controller under /sys/fs/cgroup".into(),
            ));
        };
        Ok(CpuQuota { cores, hierarchy })
    }

    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// The quota in microseconds per period (at least the kernel's minimum of 1 ms).
    fn quota_us(&self) -> u64 {
        // INVARIANT: `cores` is finite and at least 0.1 (checked by the argument parser), so
        // the product is at least the minimum and fits easily.
        ((self.cores * PERIOD_US as f64).round() as u64).max(1_000)
    }

    /// Moves process `pid` (all its threads, and those it starts later) into a new cgroup
    /// capped at the quota.
    pub fn confine(&self, pid: u32) -> Result<Confined, CliError> {
        let base = match &self.hierarchy {
            Hierarchy::V1(base) | Hierarchy::V2(base) => base,
        };
        let dir = base.join(format!("writ-bench-{pid}"));
        fs::create_dir(&dir).map_err(|e| unavailable("create", &dir, &e))?;
        let confined = Confined { dir };
        let write = |file: &str, value: String| {
            let path = confined.dir.join(file);
            fs::write(&path, value).map_err(|e| unavailable("write", &path, &e))
        };
        match self.hierarchy {
            Hierarchy::V1(_) => {
                write("cpu.cfs_period_us", PERIOD_US.to_string())?;
                write("cpu.cfs_quota_us", self.quota_us().to_string())?;
            }
            Hierarchy::V2(_) => write("cpu.max", format!("{} {PERIOD_US}", self.quota_us()))?,
        }
        write("cgroup.procs", pid.to_string())?;
        Ok(confined)
    }
}

/// Parses `--node-cpus`: cores from 0.1 (the kernel's least quota, 1 ms per period) to 1024.
pub fn parse_cores(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=1024.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{text}` is not a number of cores from 0.1 to 1024"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_cores, CpuQuota, Hierarchy};

    #[test]
    fn quotas_are_microseconds_per_10_ms() {
        let quota = |cores| CpuQuota {
            cores,
            hierarchy: Hierarchy::V1("/nonexistent".into()),
        };
        assert_eq!(quota(0.5).quota_us(), 5_000);
        assert_eq!(quota(2.0).quota_us(), 20_000);
        assert_eq!(quota(0.1).quota_us(), 1_000);
    }

    #[test]
    fn core_counts_are_checked() {
        assert_eq!(parse_cores("0.5"), Ok(0.5));
        for bad in ["0", "0.05", "-1", "nan", "inf", "2000", "x"] {
            assert!(parse_cores(bad).is_err(), "{bad}");
        }
    }
}
