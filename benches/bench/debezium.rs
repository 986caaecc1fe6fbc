//! Debezium itself, the relay outboxd replaces, as a third client of every drain and a second
//! relay of the steady state: a Kafka Connect standalone worker (Connect 4.3.2) running Debezium
//! 3.6.1.Final's PostgreSQL connector and Outbox EventRouter, started with `scripts/debezium.sh
//! run` from the jars of `scripts/install-deps.sh` (`.tools/debezium/lib`), as the tests start it
//! (`tests/support/debezium.rs`). The launcher `exec`s the JVM, so the child is the JVM: its pid is
//! what CPU and RSS are read from.
//!
//! The connector gets the configuration that writes what outboxd's drain configuration writes
//! (see [`connector_props`]); the differences that remain are in docs/benchmarks.md.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::broker::Broker;
use crate::drain::{Backlog, DrainResult, DrainWatch};
use crate::kafka::{count_records, secs_since, InKafka, KafkaCount};
use crate::postgres::{fmt_lsn, slot_state};
use crate::support::debezium::{lib, TASK_RUNNING};
use crate::support::{free_port, repo_root, signal, spawn_tied, tail, wait_child};
use crate::system::{append, loadavg, proc_cpu, proc_status_bytes, CpuSnapshot, CpuUse, Pids};
use crate::Ctx;

/// Debezium's topics start with this (`route.topic.replacement`), outboxd's do not: a drain's
/// topics are `dbz.outbox.event.<aggregate>` and `outbox.event.<aggregate>`.
pub const TOPIC_PREFIX: &str = "dbz.";

/// Log lines saying the connector or its task died (the worker itself keeps running).
const FAILED: [&str; 2] = [
    "Task threw an uncaught and unrecoverable exception",
    "Failed to start connector",
];

/// Whether Debezium runs in this run, and if not, why (`--no-debezium`, or what is missing).
#[derive(Debug, Clone)]
pub enum Availability {
    On,
    Off,
    Skipped(String),
}

/// `--no-debezium`, else whether Java and the jars are there; prints the SKIP line.
pub fn availability(no_debezium: bool) -> Availability {
    if no_debezium {
        return Availability::Off;
    }
    match crate::support::debezium::available() {
        Ok(()) => Availability::On,
        Err(e) => {
            eprintln!("SKIP Debezium side by side: {e}");
            Availability::Skipped(e)
        }
    }
}

/// What the report calls it: the versions of the jars in `.tools/debezium/lib`.
pub fn describe() -> String {
    let version = |prefix: &str| {
        fs::read_dir(lib())
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                Some(name.strip_prefix(prefix)?.strip_suffix(".jar")?.to_string())
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "Debezium {} (PostgreSQL connector, Outbox EventRouter) on Kafka Connect {} (standalone worker, scripts/debezium.sh, heap {})",
        version("debezium-connector-postgres-"),
        version("connect-runtime-"),
        heap()
    )
}

/// The JVM heap scripts/debezium.sh gives the worker (`$DEBEZIUM_HEAP`, else its default 512m).
pub fn heap() -> String {
    std::env::var("DEBEZIUM_HEAP").unwrap_or_else(|_| "512m".into())
}

/// Connector properties the harness sets on top of scripts/debezium.sh's outbox defaults
/// (pgoutput, `snapshot.mode=no_data`, the EventRouter at its defaults), then `--debezium-connector`:
///
/// - StringConverter for keys and values: outboxd's drain configuration names no converter, so it
///   writes the text columns as UTF-8, which for this table is what StringConverter writes (the
///   same key and value bytes, the same `id` header);
/// - the topic `dbz.outbox.event.<aggregatetype>`, outboxd's default route with a prefix;
/// - `publication.autocreate.mode=disabled` when the harness made the publication (the drains, as
///   for outboxd), Debezium's default `filtered` when it is to create it (the steady state, where
///   outboxd creates its own too);
/// - `heartbeat.interval.ms=1000`: Debezium confirms a transaction's end only with the offset of a
///   later record, so without a heartbeat (or a later transaction) the slot is never confirmed past
///   the last transaction of a backlog. The heartbeat's record carries the offset after it.
pub fn connector_props(create_publication: bool) -> Vec<String> {
    vec![
        "key.converter=org.apache.kafka.connect.storage.StringConverter".into(),
        "value.converter=org.apache.kafka.connect.storage.StringConverter".into(),
        format!("transforms.outbox.route.topic.replacement={TOPIC_PREFIX}outbox.event.${{routedByValue}}"),
        format!(
            "publication.autocreate.mode={}",
            if create_publication { "filtered" } else { "disabled" }
        ),
        "heartbeat.interval.ms=1000".into(),
    ]
}

/// Worker properties on top of scripts/debezium.sh's (Connect's defaults), then
/// `--debezium-worker`: Debezium confirms the slot position only when Connect flushes its offsets,
/// every `offset.flush.interval.ms` (60 s by default, which would make a drain's clock measure the
/// flush interval).
pub const WORKER_PROPS: [&str; 1] = ["offset.flush.interval.ms=1000"];

/// JVM options on top of the launcher's, then `--debezium-jvm-opt`: the JVM's full tiered JIT
/// (C2), as Kafka's own connect-standalone.sh runs it; the launcher stops at C1 for the tests'
/// start-up.
pub const JVM_OPTS: [&str; 1] = ["-XX:TieredStopAtLevel=4"];

/// The heartbeat topic of a connector with this `topic.prefix` (Debezium's default name).
pub fn heartbeat_topic(topic_prefix: &str) -> String {
    format!("__debezium-heartbeat.{topic_prefix}")
}

pub struct DebeziumConfig<'a> {
    pub url: &'a str,
    pub slot: &'a str,
    pub publication: &'a str,
    pub table: &'a str,
    pub bootstrap: &'a str,
    /// `topic.prefix` (names the heartbeat topic; the records' topics come from the route).
    pub topic_prefix: &'a str,
    /// Let Debezium create the publication (`filtered`) rather than use the harness's.
    pub create_publication: bool,
}

/// A Kafka Connect worker running one Debezium connector.
pub struct Debezium {
    child: Option<Child>,
    pub log: PathBuf,
    /// When the harness spawned the launcher ("exec"): the origin of every clock.
    pub exec_at: Instant,
    scanned: u64,
    carry: String,
    task_running_at: Option<Instant>,
}

impl Debezium {
    /// `scripts/debezium.sh run WORK/debezium-NAME ...`, logging to `connect.log` there.
    pub fn start(ctx: &Ctx<'_>, name: &str, c: &DebeziumConfig) -> Result<Debezium> {
        let args = ctx.args;
        let dir = ctx.work.join(format!("debezium-{name}"));
        fs::create_dir_all(&dir)?;
        let log = dir.join("connect.log");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/debezium.sh"))
            .arg("run")
            .arg(&dir)
            .args(["--bootstrap", c.bootstrap, "--pg-url", c.url])
            .args(["--slot", c.slot, "--publication", c.publication])
            .arg("--table")
            .arg(format!("public.{}", c.table))
            .args(["--topic-prefix", c.topic_prefix])
            .arg("--name")
            .arg(format!("bench-{name}"))
            .arg("--rest-port")
            .arg(free_port().to_string());
        for p in connector_props(c.create_publication)
            .iter()
            .chain(&args.debezium_connector)
        {
            cmd.arg("--connector").arg(p);
        }
        for p in WORKER_PROPS
            .iter()
            .map(|s| s.to_string())
            .chain(args.debezium_worker.iter().cloned())
        {
            cmd.arg("--worker").arg(p);
        }
        for o in JVM_OPTS
            .iter()
            .map(|s| s.to_string())
            .chain(args.debezium_jvm_opt.iter().cloned())
        {
            cmd.arg("--jvm-opt").arg(o);
        }
        cmd.env_remove(crate::support::KAFKA_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        let exec_at = Instant::now();
        let child = spawn_tied(cmd).context("start scripts/debezium.sh")?;
        Ok(Debezium {
            child: Some(child),
            log,
            exec_at,
            scanned: 0,
            carry: String::new(),
            task_running_at: None,
        })
    }

    /// The worker's pid (the JVM, once the launcher has exec'd it; the launcher's bash before).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Reads what the worker logged since the last call: notes Connect's "task running" line
    /// ([`TASK_RUNNING`]); fails, with the log's tail, if the connector or its task died or the
    /// worker exited.
    pub fn poll(&mut self) -> Result<()> {
        let mut f = fs::File::open(&self.log)?;
        f.seek(SeekFrom::Start(self.scanned))?;
        let mut new = Vec::new();
        f.read_to_end(&mut new)?;
        self.scanned += new.len() as u64;
        let text = std::mem::take(&mut self.carry) + &String::from_utf8_lossy(&new);
        // Keep the last, possibly partial, line for the next call.
        let (whole, rest) = match text.rfind('\n') {
            Some(i) => text.split_at(i + 1),
            None => ("", text.as_str()),
        };
        if self.task_running_at.is_none() && whole.contains(TASK_RUNNING) {
            self.task_running_at = Some(Instant::now());
        }
        if let Some(line) = FAILED.iter().find(|l| whole.contains(**l)) {
            bail!(
                "Debezium: {line}; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 60)
            );
        }
        self.carry = rest.to_string();
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                self.child = None;
                bail!(
                    "the Debezium worker exited ({st}); log {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 60)
                );
            }
        }
        Ok(())
    }

    /// Without reading the log incrementally (for callers holding `&self`): fails if the worker
    /// is gone or a zombie, or its log says the connector or its task died.
    pub fn check_alive(&self) -> Result<()> {
        let Some(pid) = self.pid() else {
            bail!("the Debezium worker is not running");
        };
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string))
            });
        if matches!(state.as_deref(), None | Some("Z") | Some("X")) {
            bail!(
                "the Debezium worker exited; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 60)
            );
        }
        let log = String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned();
        if let Some(line) = FAILED.iter().find(|l| log.contains(**l)) {
            bail!(
                "Debezium: {line}; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 60)
            );
        }
        Ok(())
    }

    /// Seconds from exec to Connect's "Source task finished initialization and start", if seen.
    pub fn task_running_s(&self) -> Option<f64> {
        secs_since(self.exec_at, self.task_running_at)
    }

    /// SIGTERM (Connect's graceful stop: the task stops, the offsets are flushed), then SIGKILL
    /// after 30 s.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        signal(c.id(), libc::SIGTERM);
        if wait_child(&mut c, Duration::from_secs(30)).is_none() {
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("[bench]   the Debezium worker did not stop within 30 s of SIGTERM: killed");
        }
        Ok(())
    }
}

impl Drop for Debezium {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until no walsender holds `slot` (a stopped client's walsender exits a moment later), so
/// that it can be dropped.
pub async fn wait_slot_released(c: &tokio_postgres::Client, slot: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = c
            .query_opt(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        let active = row.and_then(|r| r.get::<_, Option<i32>>(0));
        if active.is_none() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("slot {slot} still active (pid {active:?}) 30 s after its client stopped");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Debezium's drain of one backlog, from its own slot into its own fresh broker.
#[derive(Debug, Clone, Serialize)]
pub struct DebeziumDrain {
    /// `seconds`: exec → the slot confirmed at the end of the backlog, as for the others; the
    /// clocks add `task_running_s`, `first_in_kafka_s` and `all_in_kafka_s`.
    pub drain: DrainResult,
    /// N / (exec → all N records in Kafka): independent of the offset flush and the heartbeat.
    pub in_kafka_events_per_s: Option<f64>,
    /// All records in Kafka → the slot confirmed: the heartbeat (1 s), the offset flush (1 s)
    /// and Debezium's flush of the position to the walsender.
    pub tail_s: Option<f64>,
    /// VmHWM of the JVM at the end of the drain.
    pub peak_rss_bytes: Option<u64>,
    pub broker_cpu_s: f64,
    pub cpu: CpuUse,
    /// Once a second: (seconds since exec, records in Kafka, JVM CPU seconds, JVM RSS bytes).
    pub timeline: Vec<(f64, u64, f64, u64)>,
}

/// Debezium drains `slot` (created with the others, before the backlog) into a fresh broker;
/// then its records are counted in Kafka as outboxd's are.
pub async fn drain_debezium(
    ctx: &Ctx<'_>,
    c: &tokio_postgres::Client,
    b: &Backlog<'_>,
    slot: &str,
    run: usize,
) -> Result<(DebeziumDrain, Option<KafkaCount>)> {
    let args = ctx.args;
    let n = b.rows;
    let label = format!("{}-{run}-debezium", b.name);
    let topic = format!("{TOPIC_PREFIX}{}", b.topic);
    let prefix = format!("bench_{}", ctx.run_id);
    let broker = Broker::start(ctx, &label).await?;
    broker.create_topic(&topic, args.partitions).await?;
    broker.create_topic(&heartbeat_topic(&prefix), 1).await?;
    let in_kafka = InKafka::start(&broker.bootstrap, &topic, n)?;
    let before_spawn = CpuSnapshot::take(&Pids {
        relay: None,
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    });
    let broker_cpu0 = broker.pid().and_then(proc_cpu).unwrap_or(0.0);
    let lsn0 = slot_state(c, slot).await?.0;
    let mut d = Debezium::start(
        ctx,
        &label,
        &DebeziumConfig {
            url: &ctx.pg.url(),
            slot,
            publication: b.publication,
            table: b.table,
            bootstrap: &broker.bootstrap,
            topic_prefix: &prefix,
            create_publication: false,
        },
    )?;
    let pid = d.pid().expect("just started");
    let mut w = DrainWatch::new(d.exec_at, pid, lsn0, b.end_lsn);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let timeout = Duration::from_secs(args.drain_timeout_secs);
    loop {
        tick.tick().await;
        d.poll()?;
        let records = in_kafka.state().records;
        let lsn = w.sample(c, slot, &in_kafka, records).await?;
        w.clocks.task_running_s = d.task_running_s();
        let clocks = &w.clocks;
        let now = w.elapsed_s();
        if let Some(t) = clocks.confirmed_s {
            if clocks.all_in_kafka_s.is_some() || now > t + 5.0 {
                break;
            }
        }
        if let Some(t) = clocks.all_in_kafka_s {
            if clocks.confirmed_s.is_none() && now > t + 30.0 {
                bail!(
                    "Debezium put all {n} records in Kafka but its slot stayed at {} < {} 30 s later; log {}:\n{}",
                    lsn.map_or("?".into(), fmt_lsn),
                    fmt_lsn(b.end_lsn),
                    d.log.display(),
                    tail(&d.log, 30)
                );
            }
        }
        if w.started.elapsed() > timeout {
            bail!(
                "Debezium did not drain {n} rows in {} s ({records} records in Kafka, slot at {}, target {}); log {}:\n{}",
                timeout.as_secs(),
                lsn.map_or("?".into(), fmt_lsn),
                fmt_lsn(b.end_lsn),
                d.log.display(),
                tail(&d.log, 30)
            );
        }
    }
    let peak_rss = proc_status_bytes(pid, "VmHWM");
    let cpu = before_spawn.until(&CpuSnapshot::take(&Pids {
        relay: Some(pid),
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    }));
    let broker_cpu_s = broker.pid().and_then(proc_cpu).unwrap_or(0.0) - broker_cpu0;
    drop(in_kafka);
    d.stop()?;
    wait_slot_released(c, slot).await?;
    let (drain, timeline) = w.finish(n);
    let all = drain.clocks.all_in_kafka_s;
    let seconds = drain.seconds;
    let drain = DebeziumDrain {
        in_kafka_events_per_s: all.map(|a| n as f64 / a),
        tail_s: all.map(|a| (seconds - a).max(0.0)),
        drain,
        peak_rss_bytes: peak_rss,
        broker_cpu_s,
        cpu,
        timeline,
    };
    eprintln!(
        "[bench]   run {run}: Debezium {:.2} s, {:.0} ev/s (all in Kafka at {} s), task running at {} s, peak RSS {:.1} MB, {:.2} CPU s/100k (load {})",
        seconds,
        drain.drain.events_per_s,
        crate::report::opt(drain.drain.clocks.all_in_kafka_s, 2),
        crate::report::opt(drain.drain.clocks.task_running_s, 2),
        peak_rss.unwrap_or(0) as f64 / 1048576.0,
        drain.drain.cpu_s_per_100k,
        loadavg()
    );
    let kafka = if args.no_verify {
        None
    } else {
        let k = count_records(&broker.bootstrap, &topic, n, Duration::from_secs(600))?;
        eprintln!(
            "[bench]   run {run}: Debezium's topic has {} records, {} distinct events, {} missing, {} duplicates, avg value {:.0} B (read in {:.1} s)",
            k.records, k.distinct, k.missing, k.duplicates, k.avg_value_bytes, k.seconds
        );
        if k.missing > 0 {
            bail!("{} of {n} events are missing from {topic}", k.missing);
        }
        Some(k)
    };
    Ok((drain, kafka))
}

/// Whether `slot` exists and a walsender streams from it (Debezium creates its slot itself in the
/// steady state).
pub async fn slot_streaming(c: &tokio_postgres::Client, slot: &str) -> Result<bool> {
    let row = c
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)).is_some())
}

/// Waits until the connector's task runs and its slot is streaming.
pub async fn wait_streaming(
    d: &mut Debezium,
    c: &tokio_postgres::Client,
    slot: &str,
    timeout: Duration,
) -> Result<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        d.poll()?;
        if d.task_running_s().is_some() && slot_streaming(c, slot).await? {
            return Ok(d.exec_at.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "Debezium not streaming after {} s; log {}:\n{}",
                timeout.as_secs(),
                d.log.display(),
                tail(&d.log, 30)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
