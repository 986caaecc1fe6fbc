//! The machine and its processes, from /proc: CPU seconds, RSS, the load average and the CPU used
//! by everything outside the harness (`other`). Children are spawned with tests/support's
//! `spawn_tied` (killed with the harness).

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

/// Opens `path` for appending (a child's stdout or stderr).
pub fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The fields of /proc/PID/stat after the command name: [0] state, [1] ppid, ... [11] utime,
/// [12] stime, [13] cutime, [14] cstime (clock ticks).
pub fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64)
            .collect(),
    )
}

/// CPU seconds (user + system) of one process.
pub fn proc_cpu(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    Some((f[10] + f[11]) as f64 / clk_tck())
}

/// A `kB` field of /proc/PID/status (VmHWM, VmRSS), in bytes.
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    })
}

/// CPU seconds of `root` and all its descendants, including reaped children (cutime/cstime).
pub fn tree_cpu(root: u32) -> f64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new(); // pid, ppid, ticks incl. reaped children
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(pid) {
                procs.push((pid, f[0] as u32, f[10] + f[11] + f[12] + f[13]));
            }
        }
    }
    let mut total = 0u64;
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, ticks) in &procs {
            if pid == p {
                total += ticks;
            }
            if ppid == p && pid != p {
                frontier.push(pid);
            }
        }
    }
    total as f64 / clk_tck()
}

/// Busy CPU seconds of the whole machine since boot (user + nice + system + irq + softirq).
pub fn machine_busy() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let busy = f.first().copied().unwrap_or(0)
        + f.get(1).copied().unwrap_or(0)
        + f.get(2).copied().unwrap_or(0)
        + f.get(5).copied().unwrap_or(0)
        + f.get(6).copied().unwrap_or(0);
    busy as f64 / clk_tck()
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CPU accounting over an interval: this harness's process tree (which contains Postgres, the
/// broker, the relay measured (outboxd or Debezium's JVM), pg_recvlogical) against the machine's busy time, so that load from other
/// processes (someone's build) shows up in the figures.
#[derive(Clone)]
pub struct CpuSnapshot {
    pub at: Instant,
    pub machine: f64,
    pub ours: f64,
    pub relay: f64,
    pub postgres: f64,
    pub broker: f64,
    pub loadavg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub wall_s: f64,
    /// Cores used on average by each party over the interval; `relay` is the process measured
    /// (outboxd, or the Kafka Connect worker's JVM running Debezium).
    pub relay_cores: f64,
    pub postgres_cores: f64,
    pub broker_cores: f64,
    /// This harness (consumer, pollers) and short-lived children (pg_recvlogical).
    pub harness_cores: f64,
    /// Everything else on the machine: other people's work disturbing the measurement.
    pub other_cores: f64,
    pub loadavg_before: String,
    pub loadavg_after: String,
}

pub struct Pids {
    /// The relay measured: outboxd, or Debezium's JVM.
    pub relay: Option<u32>,
    pub postgres: Option<u32>,
    pub broker: Option<u32>,
}

impl CpuSnapshot {
    pub fn take(pids: &Pids) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            machine: machine_busy(),
            ours: tree_cpu(std::process::id()),
            relay: pids.relay.and_then(proc_cpu).unwrap_or(0.0),
            postgres: pids.postgres.map_or(0.0, tree_cpu),
            broker: pids.broker.and_then(proc_cpu).unwrap_or(0.0),
            loadavg: loadavg(),
        }
    }

    pub fn until(&self, end: &CpuSnapshot) -> CpuUse {
        let wall = end.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let d = |a: f64, b: f64| ((b - a) / wall).max(0.0);
        let relay = d(self.relay, end.relay);
        let postgres = d(self.postgres, end.postgres);
        let broker = d(self.broker, end.broker);
        let ours = d(self.ours, end.ours);
        CpuUse {
            wall_s: wall,
            relay_cores: relay,
            postgres_cores: postgres,
            broker_cores: broker,
            harness_cores: (ours - relay - postgres - broker).max(0.0),
            other_cores: (d(self.machine, end.machine) - ours).max(0.0),
            loadavg_before: self.loadavg.clone(),
            loadavg_after: end.loadavg.clone(),
        }
    }
}
