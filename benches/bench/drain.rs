//! The backlog drain scenario: per `ROWSxPAYLOADxROWS_PER_TX`, the outbox table and the slots,
//! the fill, then per repetition pg_recvlogical ([`crate::recvlogical`]), outboxd (here), Debezium
//! ([`crate::debezium`]) and the broker alone ([`crate::broker_only`]) on the same WAL, and the
//! records counted in Kafka.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::broker::Broker;
use crate::broker_only::{broker_only, BrokerOnly};
use crate::cli::{rows_label, BacklogSpec};
use crate::debezium::{drain_debezium, DebeziumDrain};
use crate::kafka::{count_records, secs_since, InKafka, KafkaCount};
use crate::outboxd::{is_streaming_line, Outboxd, OutboxdConfig};
use crate::postgres::{
    commit_end, current_lsn, fill_procedure, fmt_lsn, outbox_ddl, pad_for, parse_lsn, slot_state,
};
use crate::recvlogical::run_recvlogical;
use crate::support::tail;
use crate::system::{loadavg, proc_cpu, proc_status_bytes, CpuSnapshot, CpuUse, Pids};
use crate::Ctx;

/// One client's drain of its slot. Every clock starts when the harness spawns the client ("exec")
/// and is read by polling every 20 ms (the slot's row in `pg_replication_slots`, for outboxd GET
/// /metrics, for outboxd and Debezium the topic's end offsets), the same way for every client:
/// each is up to a poll late.
#[derive(Debug, Clone, Serialize)]
pub struct DrainResult {
    /// exec → the slot's `confirmed_flush_lsn` ≥ the end of the backlog (`clocks.confirmed_s`):
    /// the time a user waits for the backlog to be relayed and the slot released.
    pub seconds: f64,
    pub events_per_s: f64,
    /// CPU seconds of the client process (pg_recvlogical / outboxd) over the drain.
    pub cpu_s: f64,
    pub cpu_s_per_100k: f64,
    /// CPU seconds of the walsender (decoding) serving it (sampled every 20 ms; approximate).
    pub walsender_cpu_s: Option<f64>,
    pub clocks: Clocks,
}

/// Seconds from exec to each point the harness sees (None: not seen, or not for this client).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Clocks {
    /// The slot got an active walsender: the client connected and sent START_REPLICATION.
    pub slot_active_s: Option<f64>,
    /// outboxd: its HTTP endpoint answered (the process is up, its configuration read).
    pub http_up_s: Option<f64>,
    /// outboxd: `outboxd_events_read_total` ≥ 1, the first event decoded, routed and handed to
    /// the producer ("first record enqueued").
    pub first_read_s: Option<f64>,
    /// outboxd: `outboxd_events_published_total` ≥ 1, the first acknowledgement from Kafka.
    pub first_ack_s: Option<f64>,
    /// The slot's `confirmed_flush_lsn` moved for the first time.
    pub first_confirm_s: Option<f64>,
    /// outboxd: `outboxd_events_published_total` ≥ N, every event acknowledged.
    pub acked_s: Option<f64>,
    /// Debezium: Connect's "Source task finished initialization and start" in its log.
    pub task_running_s: Option<f64>,
    /// outboxd, Debezium: the topic's end offsets (summed over partitions) first ≥ 1: the first
    /// record in Kafka (`crate::kafka::InKafka`).
    pub first_in_kafka_s: Option<f64>,
    /// outboxd, Debezium: the end offsets ≥ N: every record in Kafka.
    pub all_in_kafka_s: Option<f64>,
    /// `confirmed_flush_lsn` ≥ the end of the backlog.
    pub confirmed_s: Option<f64>,
    /// pg_recvlogical: the process exited (it stops at `--endpos`, after its last feedback).
    pub exited_s: Option<f64>,
}

/// The samples every relay's drain loop takes each 20 ms poll, on the same clock from exec: the
/// slot (active, first and final confirmation), its walsender's CPU, the relay's CPU and RSS
/// (once a second in the timeline), and the topic's end offsets. Each relay's loop adds its own
/// clocks (outboxd's /metrics, Debezium's log) and its own end condition.
pub struct DrainWatch {
    pub started: Instant,
    relay_pid: u32,
    lsn0: Option<u64>,
    end_lsn: u64,
    pub clocks: Clocks,
    walsender_pid: Option<u32>,
    walsender_cpu_s: Option<f64>,
    cpu_at_confirmed: f64,
    timeline: Vec<(f64, u64, f64, u64)>,
}

impl DrainWatch {
    pub fn new(started: Instant, relay_pid: u32, lsn0: Option<u64>, end_lsn: u64) -> Self {
        DrainWatch {
            started,
            relay_pid,
            lsn0,
            end_lsn,
            clocks: Clocks::default(),
            walsender_pid: None,
            walsender_cpu_s: None,
            cpu_at_confirmed: 0.0,
            timeline: Vec::new(),
        }
    }

    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Sets the clock `which` picks to now, the first time `now` holds.
    pub fn mark(&mut self, which: impl FnOnce(&mut Clocks) -> &mut Option<f64>, now: bool) {
        let at = self.elapsed_s();
        let clock = which(&mut self.clocks);
        if now && clock.is_none() {
            *clock = Some(at);
        }
    }

    /// One poll: the slot's state, the CPU figures, the end offsets and (once a second) a timeline
    /// point with `done` (the relay's count of events: acknowledged, or records in Kafka).
    /// Returns the slot's confirmed position.
    pub async fn sample(
        &mut self,
        c: &tokio_postgres::Client,
        slot: &str,
        in_kafka: &InKafka,
        done: u64,
    ) -> Result<Option<u64>> {
        let (lsn, active) = slot_state(c, slot).await?;
        self.mark(|c| &mut c.slot_active_s, active.is_some());
        self.mark(|c| &mut c.first_confirm_s, lsn > self.lsn0);
        if self.walsender_pid.is_none() {
            self.walsender_pid = active;
        }
        if let Some(cpu) = self.walsender_pid.and_then(proc_cpu) {
            self.walsender_cpu_s = Some(cpu);
        }
        let cpu_now = proc_cpu(self.relay_pid).unwrap_or(0.0);
        let k = in_kafka.state();
        self.clocks.first_in_kafka_s = secs_since(self.started, k.first_at);
        self.clocks.all_in_kafka_s = secs_since(self.started, k.all_at);
        if self.elapsed_s() >= self.timeline.len() as f64 + 1.0 {
            let rss = proc_status_bytes(self.relay_pid, "VmRSS").unwrap_or(0);
            self.timeline.push((self.elapsed_s(), done, cpu_now, rss));
        }
        if self.clocks.confirmed_s.is_none() && lsn.is_some_and(|l| l >= self.end_lsn) {
            self.mark(|c| &mut c.confirmed_s, true);
            self.cpu_at_confirmed = cpu_now;
        }
        Ok(lsn)
    }

    /// The drain's figures over `n` events, once the loop saw the slot confirmed, and the timeline.
    pub fn finish(self, n: u64) -> (DrainResult, Vec<(f64, u64, f64, u64)>) {
        let seconds = self.clocks.confirmed_s.expect("loop ends once confirmed");
        let drain = DrainResult {
            seconds,
            events_per_s: n as f64 / seconds,
            cpu_s: self.cpu_at_confirmed,
            cpu_s_per_100k: self.cpu_at_confirmed / n as f64 * 1e5,
            walsender_cpu_s: self.walsender_cpu_s,
            clocks: self.clocks,
        };
        (drain, self.timeline)
    }
}

/// outboxd's start-up as its own log tells it (`RUST_LOG` is `warn,outboxd=info` unless
/// `BENCH_OUTBOXD_LOG` says otherwise), in seconds since exec, from the lines' timestamps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartUp {
    /// "serving /metrics …": configuration read, HTTP listener bound.
    pub http_log_s: Option<f64>,
    /// "positions: …": the producer created, the offsets topic looked up (created when missing)
    /// and read (at-least-once mode with `[offsets]`, the default).
    pub positions_log_s: Option<f64>,
    /// The `elapsed_ms` that line reports for the offsets topic alone.
    pub positions_elapsed_ms: Option<f64>,
    /// "streaming": start-up is over, the relay loop starts.
    pub streaming_log_s: Option<f64>,
    /// Every line up to "streaming", with its time since exec.
    pub log: Vec<(f64, String)>,
}

impl StartUp {
    fn from_log(log: Vec<(f64, String)>) -> StartUp {
        let find = |needle: &str| {
            log.iter()
                .find(|(_, l)| l.contains(needle))
                .map(|(t, _)| *t)
        };
        let positions_elapsed_ms = log
            .iter()
            .find(|(_, l)| l.contains("outboxd::pipeline: positions:"))
            .and_then(|(_, l)| {
                let v = l.split("elapsed_ms=").nth(1)?;
                v.split_whitespace().next()?.parse().ok()
            });
        StartUp {
            http_log_s: find("serving /metrics"),
            positions_log_s: find("outboxd::pipeline: positions:"),
            positions_elapsed_ms,
            streaming_log_s: log
                .iter()
                .find(|(_, l)| is_streaming_line(l))
                .map(|(t, _)| *t),
            log,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxdDrain {
    pub drain: DrainResult,
    /// exec → outboxd_events_published_total reaching N (GET /metrics).
    pub acked_seconds: Option<f64>,
    pub acked_events_per_s: Option<f64>,
    /// The tail: the last acknowledgement → the slot confirmed at the end of the backlog (the
    /// status interval, and the offsets topic's record of the position).
    pub tail_s: Option<f64>,
    pub startup: StartUp,
    /// VmHWM of the outboxd process at the end of the drain.
    pub peak_rss_bytes: Option<u64>,
    pub broker_cpu_s: f64,
    pub cpu: CpuUse,
    /// Once a second: (seconds since start, events acknowledged, outboxd CPU seconds, outboxd
    /// RSS bytes), to see whether the rate holds over the drain.
    pub timeline: Vec<(f64, u64, f64, u64)>,
}

/// One repetition: pg_recvlogical, outboxd and Debezium each draining their own slot.
#[derive(Debug, Clone, Serialize)]
pub struct DrainPair {
    pub pg_recvlogical: Option<DrainResult>,
    /// The broker alone: a librdkafka producer in this harness sending N records like outboxd's
    /// (same sizes, keys, producer settings and in-flight cap) to a fresh broker.
    pub broker_only: Option<BrokerOnly>,
    pub outboxd: OutboxdDrain,
    /// outboxd events/s over pg_recvlogical events/s, both exec → confirmed_flush_lsn at the end.
    pub ratio: Option<f64>,
    /// The same without each client's start-up: pg_recvlogical from its slot becoming active,
    /// outboxd from its first event read, to confirmed.
    pub ratio_without_startup: Option<f64>,
    pub kafka: Option<KafkaCount>,
    /// Debezium on its own slot of the same WAL, into its own fresh broker.
    pub debezium: Option<DebeziumDrain>,
    /// Debezium's records counted in Kafka.
    pub debezium_kafka: Option<KafkaCount>,
    /// outboxd events/s over Debezium's, both exec → the slot confirmed at the end.
    pub ratio_over_debezium: Option<f64>,
    /// The same on the clock that does not depend on Debezium's offset flush: exec → all N
    /// records in Kafka (the end offsets), for both.
    pub ratio_over_debezium_in_kafka: Option<f64>,
    /// Debezium events/s over pg_recvlogical's (exec → confirmed).
    pub debezium_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacklogResult {
    pub name: String,
    pub payload_bytes: usize,
    pub rows_per_tx: u64,
    pub rows: u64,
    pub transactions: u64,
    pub wal_bytes: u64,
    pub fill_seconds: f64,
    pub runs: Vec<DrainPair>,
    /// Medians over the runs (the runs themselves for one repetition).
    pub median_recvlogical_events_per_s: Option<f64>,
    pub median_outboxd_events_per_s: f64,
    pub median_ratio: Option<f64>,
    pub median_ratio_without_startup: Option<f64>,
    /// The highest VmHWM of outboxd over the runs.
    pub peak_rss_bytes: Option<u64>,
    pub median_cpu_s_per_100k: f64,
    pub median_debezium_events_per_s: Option<f64>,
    /// Median of outboxd's events/s over Debezium's (exec → confirmed).
    pub median_ratio_over_debezium: Option<f64>,
    pub median_ratio_over_debezium_in_kafka: Option<f64>,
    /// The highest VmHWM of Debezium's JVM over the runs.
    pub debezium_peak_rss_bytes: Option<u64>,
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
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

/// What one drain needs to know about its scenario.
pub struct Backlog<'a> {
    pub name: &'a str,
    pub table: &'a str,
    pub publication: &'a str,
    pub topic: &'a str,
    pub rows: u64,
    pub end_lsn: u64,
}

pub async fn run_backlog(
    ctx: &Ctx<'_>,
    idx: usize,
    n: u64,
    spec: BacklogSpec,
) -> Result<BacklogResult> {
    let args = ctx.args;
    let repeat = args.repeat.max(1);
    let name = format!(
        "b{idx}_{}_{}x{}",
        rows_label(n),
        spec.payload_bytes,
        spec.rows_per_tx
    );
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
    let slots: Vec<[String; 3]> = (0..repeat)
        .map(|r| {
            [
                format!("{name}_outboxd_{r}"),
                format!("{name}_recv_{r}"),
                format!("{name}_dbz_{r}"),
            ]
        })
        .collect();
    let slots_of = |s: &[String; 3]| {
        let all: Vec<String> = if ctx.debezium_drains {
            s.to_vec()
        } else {
            s[..2].to_vec()
        };
        all
    };
    for s in &slots {
        for slot in &slots_of(s) {
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
    for (r, [slot_o, slot_r, slot_d]) in slots.iter().enumerate() {
        // pg_recvlogical first, then outboxd, then Debezium, on WAL that is in the page cache
        // for all three.
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
        let ratio_without_startup = recv.as_ref().and_then(|x| {
            let recv = x.seconds - x.clocks.slot_active_s?;
            let outboxd = o.drain.seconds - o.drain.clocks.first_read_s?;
            (outboxd > 0.0).then(|| recv / outboxd)
        });
        let (debezium, debezium_kafka) = if ctx.debezium_drains {
            let (d, k) = drain_debezium(ctx, &c, &backlog, slot_d, r).await?;
            (Some(d), k)
        } else {
            (None, None)
        };
        let ratio_over_debezium = debezium
            .as_ref()
            .map(|d| o.drain.events_per_s / d.drain.events_per_s);
        let ratio_over_debezium_in_kafka = debezium
            .as_ref()
            .and_then(|d| Some(d.drain.clocks.all_in_kafka_s? / o.drain.clocks.all_in_kafka_s?));
        let debezium_ratio = debezium
            .as_ref()
            .zip(recv.as_ref())
            .map(|(d, x)| d.drain.events_per_s / x.events_per_s);
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
            ratio_without_startup,
            kafka,
            debezium,
            debezium_kafka,
            ratio_over_debezium,
            ratio_over_debezium_in_kafka,
            debezium_ratio,
        });
    }

    for s in &slots {
        for slot in &slots_of(s) {
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
        median_ratio_without_startup: median(
            runs.iter()
                .filter_map(|p| p.ratio_without_startup)
                .collect(),
        ),
        peak_rss_bytes: runs.iter().filter_map(|p| p.outboxd.peak_rss_bytes).max(),
        median_cpu_s_per_100k: median(
            runs.iter()
                .map(|p| p.outboxd.drain.cpu_s_per_100k)
                .collect(),
        )
        .unwrap_or(0.0),
        median_debezium_events_per_s: median(
            runs.iter()
                .filter_map(|p| p.debezium.as_ref().map(|d| d.drain.events_per_s))
                .collect(),
        ),
        median_ratio_over_debezium: median(
            runs.iter().filter_map(|p| p.ratio_over_debezium).collect(),
        ),
        median_ratio_over_debezium_in_kafka: median(
            runs.iter()
                .filter_map(|p| p.ratio_over_debezium_in_kafka)
                .collect(),
        ),
        debezium_peak_rss_bytes: runs
            .iter()
            .filter_map(|p| p.debezium.as_ref().and_then(|d| d.peak_rss_bytes))
            .max(),
        runs,
    })
}

/// outboxd drains `slot` into a fresh broker; then the records are counted in Kafka.
pub async fn drain_outboxd(
    ctx: &Ctx<'_>,
    c: &tokio_postgres::Client,
    b: &Backlog<'_>,
    slot: &str,
    run: usize,
) -> Result<(OutboxdDrain, Option<KafkaCount>)> {
    let args = ctx.args;
    let n = b.rows;
    let label = format!("{}-{run}", b.name);
    let broker = Broker::start(ctx, &label).await?;
    broker.create_topic(b.topic, args.partitions).await?;
    let in_kafka = InKafka::start(&broker.bootstrap, b.topic, n)?;
    let pids = |o: &Outboxd| Pids {
        relay: o.pid(),
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    };
    let before_spawn = CpuSnapshot::take(&Pids {
        relay: None,
        postgres: ctx.pg.pid(),
        broker: broker.pid(),
    });
    let broker_cpu0 = broker.pid().and_then(proc_cpu).unwrap_or(0.0);
    let lsn0 = slot_state(c, slot).await?.0;
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
    let mut w = DrainWatch::new(o.exec_at, opid, lsn0, b.end_lsn);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let timeout = Duration::from_secs(args.drain_timeout_secs);
    loop {
        tick.tick().await;
        o.check_alive()?;
        let progress = o.progress().await;
        w.mark(|c| &mut c.http_up_s, progress.is_some());
        let p = progress.unwrap_or_default();
        w.mark(|c| &mut c.first_read_s, p.read > 0);
        w.mark(|c| &mut c.first_ack_s, p.published > 0);
        w.mark(|c| &mut c.acked_s, p.published >= n);
        let lsn = w.sample(c, slot, &in_kafka, p.published).await?;
        // Done when confirmed (which implies acknowledged); the metric and the end offsets may
        // lag by a poll.
        if let Some(t) = w.clocks.confirmed_s {
            let both = w.clocks.acked_s.is_some() && w.clocks.all_in_kafka_s.is_some();
            if both || w.elapsed_s() > t + 5.0 {
                break;
            }
        }
        if w.started.elapsed() > timeout {
            bail!(
                "outboxd did not drain {n} rows in {} s (slot at {}, target {}); log:\n{}",
                timeout.as_secs(),
                lsn.map_or("?".into(), fmt_lsn),
                fmt_lsn(b.end_lsn),
                tail(&o.log, 20)
            );
        }
    }
    let peak_rss = proc_status_bytes(opid, "VmHWM");
    let cpu = before_spawn.until(&CpuSnapshot::take(&pids(&o)));
    let broker_cpu_s = broker.pid().and_then(proc_cpu).unwrap_or(0.0) - broker_cpu0;
    drop(in_kafka);
    o.stop()?;
    let (drain, timeline) = w.finish(n);
    let acked = drain.clocks.acked_s;
    let drain = OutboxdDrain {
        acked_seconds: acked,
        acked_events_per_s: acked.map(|a| n as f64 / a),
        tail_s: acked.map(|a| (drain.seconds - a).max(0.0)),
        startup: StartUp::from_log(o.startup_log()),
        drain,
        peak_rss_bytes: peak_rss,
        broker_cpu_s,
        cpu,
        timeline,
    };
    eprintln!(
        "[bench]   run {run}: outboxd {:.2} s, {:.0} ev/s, peak RSS {:.1} MB, {:.2} CPU s/100k (load {})",
        drain.drain.seconds,
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
