//! The steady-state scenario: a load generator in Postgres at fixed rates and then a ramp, a
//! consumer timing every event from its commit, and per step the latency percentiles, the lag,
//! whether the rate was sustained, and the CPU and RSS it took. outboxd carries the load, then
//! (unless `--no-debezium`) Debezium carries the same steps the same way: one relay at a time,
//! each with its own table, slot, topic and fresh broker, so that neither takes the other's CPU
//! on the 2 cores (see docs/benchmarks.md).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use serde::Serialize;

use crate::broker::Broker;
use crate::debezium::{heartbeat_topic, wait_streaming, Debezium, DebeziumConfig, TOPIC_PREFIX};
use crate::kafka::{assign_all, json_int, outboxd_like_producer, reader};
use crate::outboxd::{Outboxd, OutboxdConfig};
use crate::postgres::{gen_procedure, outbox_ddl, pad_for};
use crate::probe::{probe_stats, run_probe, ProbeStats, PROBE_KEY_PREFIX};
use crate::report::opt;
use crate::support::tail;
use crate::system::{loadavg, now_us, proc_cpu, proc_status_bytes, CpuSnapshot, CpuUse, Pids};
use crate::Ctx;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub step: u32,
    pub ts_us: i64,
    pub recv_us: i64,
    /// From the broker probe (`--broker-probe-rate`), not from outboxd.
    pub probe: bool,
}

impl Sample {
    /// One of outboxd's events (`probe` false) or of the probe's records in `step`.
    pub fn of(&self, step: u32, probe: bool) -> bool {
        self.step == step && self.probe == probe
    }

    pub fn latency_ms(&self) -> f64 {
        (self.recv_us - self.ts_us) as f64 / 1000.0
    }
}

/// The latencies of `samples`, sorted.
pub fn sorted_latencies<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<f64> {
    let mut lat: Vec<f64> = samples.map(Sample::latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    lat
}

/// Reads every partition of `topic` from the beginning and records, per event, the commit-side
/// (or, for the broker probe's records, send-side) timestamp from the payload and the receive
/// time, until `stop`.
pub fn consume_samples(
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
pub struct StepResult {
    pub target_rate: u64,
    /// Rows the generator inserted per second.
    pub achieved_rate: f64,
    pub sent: u64,
    pub received: u64,
    /// Received after the step ended plus a grace period: never (lost) or too late.
    pub missing: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Commit to Kafka's acknowledgement, from outboxd's own histogram
    /// (`outboxd_commit_to_ack_seconds`): the upper bound of the bucket holding the quantile.
    /// None for Debezium.
    pub ack_p50_le_ms: Option<f64>,
    pub ack_p99_le_ms: Option<f64>,
    /// The broker probe over the step (`--broker-probe-rate`): a harness producer's record from
    /// `send()` to the same consumer, through the same broker at the same time.
    pub probe: Option<ProbeStats>,
    /// Events committed but not yet consumed, sampled every 100 ms over the step.
    pub lag_max_events: u64,
    pub lag_first_third_events: f64,
    pub lag_last_third_events: f64,
    /// Growth of the lag between the first and last thirds of the step, in events/s. The lag is
    /// bounded when its mean over the last third is at most twice its mean over the first third
    /// plus 100 ms worth of events, and every event arrived.
    pub lag_growth_per_s: f64,
    pub lag_bounded: bool,
    pub sustained: bool,
    /// The relay's (outboxd's, or Debezium's JVM's) highest VmRSS sampled over the step.
    pub relay_peak_rss_bytes: Option<u64>,
    /// The relay's CPU over the step.
    pub relay_cores: f64,
    pub relay_cores_per_10k_eps: f64,
    pub relay_cpu_s_per_100k: f64,
    pub cpu: CpuUse,
}

/// Debezium's run of the steady state: the same steps as outboxd's.
#[derive(Debug, Clone, Serialize)]
pub struct RelaySteady {
    pub steps: Vec<StepResult>,
    pub max_sustained_rate: Option<u64>,
    /// VmHWM of the JVM at the end.
    pub peak_rss_bytes: Option<u64>,
    /// exec → the connector's task running and its slot streaming.
    pub startup_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SteadyResult {
    pub payload_bytes: usize,
    pub step_secs: u64,
    /// The warm-up before the steps, per relay (`--warmup-secs`, `--warmup-rate`).
    pub warmup_secs: u64,
    pub warmup_rate: u64,
    pub gen_conns: usize,
    pub consumer_fetch_wait_ms: u64,
    /// Records/s of the broker probe (`--broker-probe-rate`; 0: none).
    pub broker_probe_rate: u64,
    pub steps: Vec<StepResult>,
    /// The highest target rate that was sustained (generator kept up, lag bounded, nothing late).
    pub max_sustained_rate: Option<u64>,
    /// VmHWM of outboxd at the end of the steady state.
    pub outboxd_peak_rss_bytes: Option<u64>,
    /// Debezium carrying the same steps after outboxd, each alone (`--no-debezium` or
    /// `--no-debezium-steady`: None).
    pub debezium: Option<RelaySteady>,
}

/// The relay of one pass of the steady state.
enum Relay {
    Outboxd(Outboxd),
    Debezium(Debezium),
}

impl Relay {
    fn name(&self) -> &'static str {
        match self {
            Relay::Outboxd(_) => "outboxd",
            Relay::Debezium(_) => "Debezium",
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Relay::Outboxd(o) => o.pid(),
            Relay::Debezium(d) => d.pid(),
        }
    }

    /// outboxd's commit → ack histogram; nothing for Debezium.
    async fn ack_histogram(&self) -> Vec<(f64, u64)> {
        match self {
            Relay::Outboxd(o) => o.ack_histogram().await,
            Relay::Debezium(_) => Vec::new(),
        }
    }

    fn check_alive(&self) -> Result<()> {
        match self {
            Relay::Outboxd(o) => o.check_alive(),
            Relay::Debezium(d) => d.check_alive(),
        }
    }

    fn stop(&mut self) -> Result<()> {
        match self {
            Relay::Outboxd(o) => o.stop(),
            Relay::Debezium(d) => d.stop(),
        }
    }
}

/// One relay's pass: its steps, highest sustained rate, VmHWM at the end, start-up.
struct Pass {
    steps: Vec<StepResult>,
    max_sustained_rate: Option<u64>,
    peak: Option<u64>,
    startup_s: f64,
}

/// The upper bound (ms) of the bucket holding quantile `p` of the observations between two
/// scrapes of a cumulative histogram.
pub fn histogram_quantile_ms(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> Option<f64> {
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

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Latency and lag statistics of one step's events.
pub struct StepStats {
    pub received: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub lag_max: u64,
    pub lag_first: f64,
    pub lag_last: f64,
    pub lag_growth: f64,
}

pub fn step_stats(samples: &[Sample], step: u32, sent: u64, t0_us: i64, t1_us: i64) -> StepStats {
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

pub async fn run_steady(ctx: &Ctx<'_>, rates: &[u64]) -> Result<SteadyResult> {
    let args = ctx.args;
    eprintln!(
        "[bench] steady state: rates {rates:?}, then ramp: {}, relays: outboxd{} (load {})",
        !args.no_ramp,
        if ctx.debezium_steady {
            ", then Debezium"
        } else {
            ""
        },
        loadavg()
    );
    let o = run_pass(ctx, rates, false).await?;
    let debezium = if ctx.debezium_steady {
        let d = run_pass(ctx, rates, true).await?;
        Some(RelaySteady {
            steps: d.steps,
            max_sustained_rate: d.max_sustained_rate,
            peak_rss_bytes: d.peak,
            startup_s: d.startup_s,
        })
    } else {
        None
    };
    Ok(SteadyResult {
        payload_bytes: args.steady_payload,
        step_secs: args.step_secs,
        warmup_secs: args.warmup_secs,
        warmup_rate: args.warmup_rate,
        gen_conns: args.gen_conns,
        consumer_fetch_wait_ms: args.consumer_fetch_wait_ms,
        broker_probe_rate: args.broker_probe_rate,
        steps: o.steps,
        max_sustained_rate: o.max_sustained_rate,
        outboxd_peak_rss_bytes: o.peak,
        debezium,
    })
}

/// One relay's pass of the steady state (outboxd, or with `debezium` Debezium) on its own table,
/// slot and topic, with a fresh broker.
async fn run_pass(ctx: &Ctx<'_>, rates: &[u64], debezium: bool) -> Result<Pass> {
    let args = ctx.args;
    let (name, table, slot, publication) = if debezium {
        (
            "steady-debezium",
            "outbox_steady_dbz",
            "steady_debezium",
            "pub_steady_dbz",
        )
    } else {
        ("steady", "outbox_steady", "steady_outboxd", "pub_steady")
    };
    let agg = format!("bench_{}_steady", ctx.run_id);
    let topic = format!(
        "{}outbox.event.{agg}",
        if debezium { TOPIC_PREFIX } else { "" }
    );
    let broker = Broker::start(ctx, name).await?;
    broker.create_topic(&topic, args.partitions).await?;
    let c = ctx.pg.client().await?;
    c.batch_execute(&outbox_ddl(table)).await?;
    c.batch_execute(&gen_procedure(table)).await?;
    let (mut o, startup_s) = if debezium {
        let prefix = format!("bench_{}", ctx.run_id);
        broker.create_topic(&heartbeat_topic(&prefix), 1).await?;
        let mut d = Debezium::start(
            ctx,
            name,
            &DebeziumConfig {
                url: &ctx.pg.url(),
                slot,
                publication,
                table,
                bootstrap: &broker.bootstrap,
                topic_prefix: &prefix,
                create_publication: true,
            },
        )?;
        let up = wait_streaming(&mut d, &c, slot, Duration::from_secs(120)).await?;
        eprintln!(
            "[bench]   Debezium streaming {up:.1} s after exec (load {})",
            loadavg()
        );
        (Relay::Debezium(d), up)
    } else {
        let o = Outboxd::start(
            ctx.outboxd_bin,
            ctx.work,
            name,
            &OutboxdConfig {
                url: &ctx.pg.url(),
                slot,
                publication,
                table,
                bootstrap: &broker.bootstrap,
                create: true,
            },
            args,
        )?;
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
        let up = o.exec_at.elapsed().as_secs_f64();
        (Relay::Outboxd(o), up)
    };
    let opid = o.pid().expect("just started");

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
        relay: Some(opid),
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
            let relay_cpu = cpu1 - cpu0;
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
                relay_peak_rss_bytes: Some(rss_max),
                relay_cores: cpu.relay_cores,
                relay_cores_per_10k_eps: cpu.relay_cores / (achieved / 10_000.0).max(1e-9),
                relay_cpu_s_per_100k: relay_cpu / (sent.max(1) as f64) * 1e5,
                cpu,
            })
        }
    };

    let relay_name = o.name();
    // Warm-up (not reported): metadata, connections, caches, the JVM's JIT.
    run_step(0, args.warmup_rate.max(1), args.warmup_secs).await?;
    let mut steps = Vec::new();
    let mut step_no = 1u32;
    let report = |s: &StepResult| {
        eprintln!(
            "[bench]   {}: {:>6} ev/s: achieved {:>8.0}, p50 {:>7.2} ms, p99 {:>7.2} ms, p99.9 {:>7.2} ms (acked: p50 <= {} ms, p99 <= {} ms){}, lag max {:>6}, {}, {:.3} cores (load {})",
            relay_name,
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
            s.relay_cores,
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
    Ok(Pass {
        steps,
        max_sustained_rate,
        peak,
        startup_s,
    })
}
