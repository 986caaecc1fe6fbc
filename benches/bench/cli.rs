//! The command line: every option of the harness (`--help` lists them), and the parsing of the
//! list-valued ones (`--backlog`, `--rates`) and of the `KEY=VALUE` overrides of outboxd's
//! configuration.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Benchmark outboxd: backlog drain vs pg_recvlogical, steady-state latency, resources"
)]
pub struct Args {
    /// Outbox rows per backlog scenario, comma-separated: each size is drained for every
    /// --backlog shape (e.g. --rows 200000,1000000), the smaller sizes first.
    #[arg(long, default_value = "1000000", value_delimiter = ',', value_parser = parse_rows)]
    pub rows: Vec<u64>,
    /// Backlog scenarios as PAYLOAD_BYTESxROWS_PER_TX, comma-separated, or "none". The full matrix
    /// is 1000x100,1000x1,200x100,200x1; writing 1M one-row transactions alone takes minutes.
    #[arg(long, default_value = "1000x100", value_delimiter = ',')]
    pub backlog: Vec<String>,
    /// Fixed steady-state rates in events/s, comma-separated, or "none" (no steady state at all).
    #[arg(long, default_value = "1000,5000", value_delimiter = ',')]
    pub rates: Vec<String>,
    /// Seconds of load per steady-state step.
    #[arg(long, default_value_t = 15)]
    pub step_secs: u64,
    /// Do not ramp up after the fixed rates.
    #[arg(long)]
    pub no_ramp: bool,
    /// First ramp rate (default: twice the highest fixed rate).
    #[arg(long)]
    pub ramp_start: Option<u64>,
    /// Each ramp step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub ramp_factor: f64,
    /// Stop the ramp at this rate.
    #[arg(long, default_value_t = 200_000)]
    pub ramp_max: u64,
    /// Seconds per ramp step (default: --step-secs).
    #[arg(long)]
    pub ramp_step_secs: Option<u64>,
    /// Seconds of load before the steady state's measured steps, for each relay (not reported):
    /// connections, metadata, caches, and for Debezium's JVM the JIT (C2 compiles a method after
    /// thousands of calls).
    #[arg(long, default_value_t = 10)]
    pub warmup_secs: u64,
    /// The rate of that warm-up (events/s).
    #[arg(long, default_value_t = 1000)]
    pub warmup_rate: u64,
    /// Approximate payload size (bytes of JSON) in the steady state.
    #[arg(long, default_value_t = 1000)]
    pub steady_payload: usize,
    /// Connections (Postgres backends) generating the steady-state load.
    #[arg(long, default_value_t = 2)]
    pub gen_conns: usize,
    /// Drain each backlog this many times (pg_recvlogical then outboxd, each on its own slot,
    /// all slots created at the same point); medians are reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Connections writing the backlog.
    #[arg(long, default_value_t = 2)]
    pub fill_conns: usize,
    /// Partitions of each topic (created before outboxd starts).
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// An outboxd [kafka] setting, e.g. --kafka linger.ms=1 (repeatable).
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    pub kafka: Vec<String>,
    /// An outboxd [pipeline] setting, e.g. --pipeline max_in_flight_events=50000 (repeatable).
    #[arg(long = "pipeline", value_name = "KEY=VALUE")]
    pub pipeline: Vec<String>,
    /// An outboxd [source] setting, e.g. --source status_interval_ms=100 (repeatable).
    #[arg(long = "source", value_name = "KEY=VALUE")]
    pub source: Vec<String>,
    /// An outboxd [exactly_once] setting, e.g. --exactly-once enabled=true (repeatable).
    #[arg(long = "exactly-once", value_name = "KEY=VALUE")]
    pub exactly_once: Vec<String>,
    /// An outboxd [offsets] setting, e.g. --offsets enabled=false (repeatable).
    #[arg(long = "offsets", value_name = "KEY=VALUE")]
    pub offsets: Vec<String>,
    /// Skip the pg_recvlogical baseline.
    #[arg(long)]
    pub no_recvlogical: bool,
    /// Do not run Debezium (a Kafka Connect standalone worker with Debezium's PostgreSQL
    /// connector and Outbox EventRouter, scripts/debezium.sh) beside outboxd: neither in the
    /// drains nor in the steady state. Without Java or the jars it is skipped anyway (a SKIP line
    /// says why).
    #[arg(long)]
    pub no_debezium: bool,
    /// Run Debezium in the drains only, not in the steady state.
    #[arg(long)]
    pub no_debezium_steady: bool,
    /// Run Debezium in the steady state only, not in the drains (the CI smoke run: one JVM
    /// start instead of one per drain).
    #[arg(long)]
    pub no_debezium_drains: bool,
    /// A Debezium connector property on top of the harness's (repeatable), e.g.
    /// --debezium-connector poll.interval.ms=10.
    #[arg(long = "debezium-connector", value_name = "KEY=VALUE")]
    pub debezium_connector: Vec<String>,
    /// A Kafka Connect worker property on top of the harness's (repeatable), e.g.
    /// --debezium-worker producer.linger.ms=10.
    #[arg(long = "debezium-worker", value_name = "KEY=VALUE")]
    pub debezium_worker: Vec<String>,
    /// A JVM option for the Connect worker (repeatable), e.g. --debezium-jvm-opt=-XX:+UseParallelGC.
    #[arg(
        long = "debezium-jvm-opt",
        value_name = "OPT",
        allow_hyphen_values = true
    )]
    pub debezium_jvm_opt: Vec<String>,
    /// Skip the broker-only baseline (a producer in the harness sending the backlog's records).
    #[arg(long)]
    pub no_broker_baseline: bool,
    /// Skip counting the backlog's records in Kafka.
    #[arg(long)]
    pub no_verify: bool,
    /// The consumer's fetch.wait.max.ms in the steady state: how long the broker may hold a
    /// fetch. tansu holds it that long even when data arrives meanwhile, so it adds to the
    /// measured latency; keep it small.
    #[arg(long, default_value_t = 5)]
    pub consumer_fetch_wait_ms: u64,
    /// In the steady state, also send this many records per second from a producer in the
    /// harness (outboxd's producer settings) to outboxd's topic, read by the same consumer: the
    /// broker's own produce-to-consumer latency, under the same load and at the same time as
    /// outboxd's. 0: off.
    #[arg(long, default_value_t = 0)]
    pub broker_probe_rate: u64,
    /// Give up a backlog drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub drain_timeout_secs: u64,
    /// Put the broker the harness starts behind a proxy that delays every byte by this many
    /// milliseconds each way (a network round trip of twice that), for outboxd and the
    /// harness's clients alike (the broker advertises the proxy's port). 0: no proxy. Not with
    /// KAFKA_BOOTSTRAP_SERVERS.
    #[arg(long, default_value_t = 0.0)]
    pub broker_delay_ms: f64,
    /// Before a broker the harness starts is used, send it this many records (~1 KB, outboxd's
    /// producer settings) and read them back, create outboxd's offsets topic (and with
    /// exactly-once, Kafka's transaction state), then wait until the broker's CPU settles: a
    /// broker as users run it, warm (the JVM's JIT) and with its internal topics, rather than one
    /// started a second ago. 0: none, the broker as started.
    #[arg(long, default_value_t = 20_000)]
    pub broker_warmup: u64,
    /// The broker the harness starts, a fresh one per drain, per broker-only baseline and for
    /// the steady state: Apache Kafka (scripts/kafka.sh, jars from scripts/install-deps.sh) or
    /// tansu (memory storage). KAFKA_BOOTSTRAP_SERVERS, when set, names a cluster to use instead.
    #[arg(long, value_enum, default_value_t = BrokerKind::Kafka)]
    pub broker: BrokerKind,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The outboxd binary (default: the one Cargo built with this harness, in the same profile).
    #[arg(long)]
    pub outboxd: Option<PathBuf>,
    /// A free-form label stored in the JSON (e.g. what was changed).
    #[arg(long)]
    pub label: Option<String>,
    /// Parent directory of the work directory (default: the system temp dir).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Keep the work directory (logs, configs) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

/// `--broker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    Kafka,
    Tansu,
}

impl Args {
    /// `--broker-delay-ms` as a delay (None for 0); `main` has checked that it is one.
    pub fn broker_delay(&self) -> Option<std::time::Duration> {
        std::time::Duration::try_from_secs_f64(self.broker_delay_ms / 1000.0)
            .ok()
            .filter(|d| !d.is_zero())
    }
}

/// The value of `key` among `KEY=VALUE` overrides (the last one wins, as in outboxd's config).
pub fn setting<'a>(pairs: &'a [String], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find_map(|p| p.split_once('=').filter(|(k, _)| k.trim() == key))
        .map(|(_, v)| v.trim())
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BacklogSpec {
    pub payload_bytes: usize,
    pub rows_per_tx: u64,
}

pub fn parse_backlog(specs: &[String]) -> Result<Vec<BacklogSpec>> {
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

/// One `--rows` size: a count, with an optional `k` or `m` (`200k`, `1m`).
fn parse_rows(s: &str) -> Result<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, mult) = match s.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match s.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (s.as_str(), 1),
        },
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("--rows {s}: expected a count such as 200000 or 200k"))?;
    if n == 0 {
        bail!("--rows: a size must be at least 1");
    }
    Ok(n * mult)
}

/// A row count as names and tables show it: `200k`, `1m`, `2500`.
pub fn rows_label(n: u64) -> String {
    if n % 1_000_000 == 0 {
        format!("{}m", n / 1_000_000)
    } else if n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub fn parse_rates(rates: &[String]) -> Result<Vec<u64>> {
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
pub fn toml_lines(pairs: &[String], flag: &str) -> Result<String> {
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

pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
