//! The report: what one run measured, with the machine, versions and settings, printed as tables
//! and written as JSON (`--json`).

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use serde::Serialize;

use crate::drain::BacklogResult;
use crate::steady::{SteadyResult, StepResult};
use crate::system::{loadavg, nproc};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub mem_total_bytes: Option<u64>,
    pub cpu_model: String,
    pub kernel: String,
    pub loadavg_start: String,
    pub loadavg_end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub postgres: String,
    pub kafka: String,
    pub outboxd_binary: String,
    pub profile: &'static str,
    pub git_commit: String,
    pub git_dirty: bool,
    /// Debezium and Kafka Connect, when Debezium ran.
    pub debezium: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: &'static str,
    pub target: &'static str,
    pub measured: String,
    /// None when this run did not measure it (or not under the target's conditions).
    pub met: Option<bool>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    /// 2: `settings.rows` is a list (`--rows 200000,1000000`), drains carry their clocks.
    /// 3: Debezium beside outboxd (`backlog[].runs[].debezium`, `steady.debezium`,
    /// `settings.debezium`), the end-offset clocks (`first_in_kafka_s`, `all_in_kafka_s`), and
    /// the relay's figures named `relay_*` (`cpu.relay_cores`, the steps' `relay_cores`,
    /// `relay_peak_rss_bytes`, ...; `outboxd_*` in format 2).
    pub format: u32,
    pub started_unix: u64,
    pub label: Option<String>,
    pub command: Vec<String>,
    pub machine: Machine,
    pub versions: Versions,
    pub settings: BTreeMap<&'static str, serde_json::Value>,
    pub backlog: Vec<BacklogResult>,
    pub steady: Option<SteadyResult>,
    pub targets: Vec<Target>,
}

pub fn machine() -> Machine {
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

pub fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn mb(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn print_report(r: &Report) {
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
    let dbz_status = r
        .settings
        .get("debezium")
        .and_then(|d| d.get("status"))
        .and_then(|v| v.as_str())
        .unwrap_or("off");
    match &r.versions.debezium {
        Some(d) => println!("{d}: {dbz_status}"),
        None => println!("Debezium: {dbz_status}"),
    }
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
        println!("Backlog drain (events/s from exec to the slot's confirmed_flush_lsn at the end of the backlog, the same clock for pg_recvlogical and outboxd)");
        println!(
            "{:<22} {:>9} {:>8} {:>8} {:>12} {:>12} {:>6} {:>8} {:>13} {:>12} {:>9} {:>9} {:>9} {:>9} {:>6}  load",
            "scenario",
            "rows",
            "tx",
            "WAL MB",
            "recvlogical",
            "outboxd",
            "ratio",
            "w/o s-u",
            "outboxd acked",
            "broker only",
            "RSS MB",
            "CPU/100k",
            "wsnd CPU",
            "brkr CPU",
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
                    "{:<22} {:>9} {:>8} {:>8.0} {:>12} {:>12.0} {:>6} {:>8} {:>13} {:>12} {:>9} {:>9.2} {:>9} {:>9.1} {:>6.2}  {}",
                    name,
                    b.rows,
                    b.transactions,
                    b.wal_bytes as f64 / 1e6,
                    opt(p.pg_recvlogical.as_ref().map(|x| x.events_per_s), 0),
                    o.drain.events_per_s,
                    opt(p.ratio, 2),
                    opt(p.ratio_without_startup, 2),
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
                    "{:<22} {:>9} {:>8} {:>8} {:>12} {:>12.0} {:>6} {:>8} {:>13} {:>12} {:>9} {:>9.2}",
                    format!("{} median", b.name),
                    "",
                    "",
                    "",
                    opt(b.median_recvlogical_events_per_s, 0),
                    b.median_outboxd_events_per_s,
                    opt(b.median_ratio, 2),
                    opt(b.median_ratio_without_startup, 2),
                    "",
                    "",
                    mb(b.peak_rss_bytes),
                    b.median_cpu_s_per_100k,
                );
            }
        }
        println!("  (ev/s: N / (exec -> confirmed); ratio: outboxd's over pg_recvlogical's; w/o s-u: the same ratio without start-up, pg_recvlogical from its slot active, outboxd from its first event read; acked: N / (exec -> outboxd_events_published_total = N); broker only: a producer in the harness sending the same records to a fresh broker, no Postgres; RSS: outboxd VmHWM (median line: max); CPU/100k: outboxd CPU s per 100k events; wsnd CPU: walsender CPU s serving outboxd; brkr CPU: broker CPU s; other: cores used by unrelated processes; load: 1/5/15-min load average after the drain)");
        println!();
        println!(
            "Start-up and tail (seconds since exec; polled every 20 ms unless from outboxd's log)"
        );
        println!(
            "{:22} | pg_recvlogical           | outboxd (positions, streaming: from its log lines; positions: (the offsets topic's own ms))",
            ""
        );
        println!(
            "{:<22} | {:>7} {:>8} {:>6} | {:>7} {:>7} {:>9} {:>9} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6}",
            "scenario", "active", "confirmd", "exit", "http", "active", "positions", "streaming", "1st rd", "1st ack", "1st conf", "acked", "confirmd", "tail",
        );
        for b in &r.backlog {
            let many = b.runs.len() > 1;
            for (k, p) in b.runs.iter().enumerate() {
                let name = if many {
                    format!("{} #{k}", b.name)
                } else {
                    b.name.clone()
                };
                let rc = p.pg_recvlogical.as_ref().map(|x| &x.clocks);
                let o = &p.outboxd;
                let oc = &o.drain.clocks;
                let positions = match (o.startup.positions_log_s, o.startup.positions_elapsed_ms) {
                    (Some(t), Some(ms)) => format!("{t:.2} ({ms:.0})"),
                    (t, _) => opt(t, 2),
                };
                println!(
                    "{:<22} | {:>7} {:>8} {:>6} | {:>7} {:>7} {:>9} {:>9} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6}",
                    name,
                    opt(rc.and_then(|c| c.slot_active_s), 2),
                    opt(rc.and_then(|c| c.confirmed_s), 2),
                    opt(rc.and_then(|c| c.exited_s), 2),
                    opt(oc.http_up_s, 2),
                    opt(oc.slot_active_s, 2),
                    positions,
                    opt(o.startup.streaming_log_s, 2),
                    opt(oc.first_read_s, 2),
                    opt(oc.first_ack_s, 2),
                    opt(oc.first_confirm_s, 2),
                    opt(oc.acked_s, 2),
                    opt(oc.confirmed_s, 2),
                    opt(o.tail_s, 2),
                );
            }
        }
        println!("  (active: the slot's walsender attached, i.e. START_REPLICATION; confirmd: confirmed_flush_lsn >= the end of the backlog; exit: pg_recvlogical exited; http: /metrics answered; 1st rd: the first event read (outboxd_events_read_total); 1st ack: the first acknowledged; 1st conf: confirmed_flush_lsn first moved; acked: all N acknowledged; tail: acked -> confirmd)");
        print_debezium_drains(r);
    }
    if let Some(s) = &r.steady {
        println!();
        println!(
            "Steady state (~{} B payloads, 1 row/tx, {} s steps after a {} s warm-up at {} ev/s, {} generator connections; latency = insert's clock_timestamp() -> consumer)",
            s.payload_bytes, s.step_secs, s.warmup_secs, s.warmup_rate, s.gen_conns
        );
        println!(
            "{:<8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>9} {:>7} {:>7} {:>9} {:>8} {:>7} {:>7} {:>6}  load",
            "relay", "rate", "achieved", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "ack p99<=", "probe p99", "lag max", "lag ok", "relay c", "c/10k", "CPU/100k", "RSS MB", "pg c", "brkr c", "other"
        );
        let mut rows: Vec<(&str, &StepResult)> = s.steps.iter().map(|st| ("outboxd", st)).collect();
        if let Some(d) = &s.debezium {
            rows.extend(d.steps.iter().map(|st| ("Debezium", st)));
        }
        for (relay, st) in rows {
            println!(
                "{:<8} {:>8} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>9} {:>9} {:>8} {:>9} {:>7.3} {:>7.3} {:>9.2} {:>8} {:>7.2} {:>7.2} {:>6.2}  {}",
                relay,
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
                st.relay_cores,
                st.relay_cores_per_10k_eps,
                st.relay_cpu_s_per_100k,
                mb(st.relay_peak_rss_bytes),
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
        if let Some(d) = &s.debezium {
            println!(
                "  Debezium (alone, after outboxd, its own table, slot, topic and fresh broker): streaming {:.1} s after exec; highest sustained rate: {}; JVM peak RSS: {} MB",
                d.startup_s,
                d.max_sustained_rate
                    .map_or("none".into(), |r| format!("{r} ev/s")),
                mb(d.peak_rss_bytes)
            );
            for st in &s.steps {
                let Some(ds) = d.steps.iter().find(|x| x.target_rate == st.target_rate) else {
                    continue;
                };
                println!(
                    "  Debezium / outboxd at {} ev/s: p50 {:.2}, p99 {:.2}, p99.9 {:.2}, cores {:.2}, RSS {:.1} (probe p99 in each run: {} / {} ms)",
                    st.target_rate,
                    ds.p50_ms / st.p50_ms,
                    ds.p99_ms / st.p99_ms,
                    ds.p999_ms / st.p999_ms,
                    ds.relay_cores / st.relay_cores.max(1e-9),
                    ds.relay_peak_rss_bytes.unwrap_or(0) as f64
                        / st.relay_peak_rss_bytes.unwrap_or(0).max(1) as f64,
                    opt(ds.probe.as_ref().map(|p| p.p99_ms), 2),
                    opt(st.probe.as_ref().map(|p| p.p99_ms), 2),
                );
            }
        }
        if s.broker_probe_rate > 0 {
            println!(
                "  probe p99: {} records/s from a producer in the harness with outboxd's producer settings into the relay's topic, send() -> the same consumer, same time: the broker path's own latency",
                s.broker_probe_rate
            );
        }
    }
    println!();
    println!("Targets (issues #6, #16)");
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

/// The drains' Debezium table: Debezium's row beside outboxd's and pg_recvlogical's, and the
/// ratios.
fn print_debezium_drains(r: &Report) {
    if !r
        .backlog
        .iter()
        .any(|b| b.runs.iter().any(|p| p.debezium.is_some()))
    {
        return;
    }
    println!();
    println!("Debezium side by side (its own slot on the same WAL, its own fresh broker; seconds from exec)");
    println!(
        "{:<22} {:>11} {:>9} {:>9} {:>7} {:>7} | {:>15} {:>6} | {:>13} {:>7} {:>6} | {:>13} {:>13} {:>9} {:>6}",
        "scenario",
        "recvlogical",
        "outboxd",
        "Debezium",
        "o/dbz",
        "dbz/rl",
        "all in Kafka s",
        "o/dbz",
        "1st in Kafka",
        "task up",
        "tail",
        "peak RSS MB",
        "CPU s",
        "wsnd CPU",
        "other",
    );
    for b in &r.backlog {
        let many = b.runs.len() > 1;
        for (k, p) in b.runs.iter().enumerate() {
            let Some(d) = &p.debezium else {
                continue;
            };
            let name = if many {
                format!("{} #{k}", b.name)
            } else {
                b.name.clone()
            };
            let (oc, dc) = (&p.outboxd.drain.clocks, &d.drain.clocks);
            println!(
                "{:<22} {:>11} {:>9.0} {:>9.0} {:>7} {:>7} | {:>15} {:>6} | {:>13} {:>7} {:>6} | {:>13} {:>13} {:>9} {:>6.2}",
                name,
                opt(p.pg_recvlogical.as_ref().map(|x| x.events_per_s), 0),
                p.outboxd.drain.events_per_s,
                d.drain.events_per_s,
                opt(p.ratio_over_debezium, 2),
                opt(p.debezium_ratio, 2),
                format!(
                    "{} / {}",
                    opt(oc.all_in_kafka_s, 2),
                    opt(dc.all_in_kafka_s, 2)
                ),
                opt(p.ratio_over_debezium_in_kafka, 2),
                format!(
                    "{} / {}",
                    opt(oc.first_in_kafka_s, 2),
                    opt(dc.first_in_kafka_s, 2)
                ),
                opt(dc.task_running_s, 2),
                opt(d.tail_s, 2),
                format!(
                    "{} / {}",
                    mb(p.outboxd.peak_rss_bytes),
                    mb(d.peak_rss_bytes)
                ),
                format!("{:.1} / {:.1}", p.outboxd.drain.cpu_s, d.drain.cpu_s),
                opt(d.drain.walsender_cpu_s, 1),
                d.cpu.other_cores,
            );
        }
    }
    println!("  (outboxd, Debezium: events/s, N / (exec -> the slot confirmed at the end); o/dbz: outboxd's over Debezium's; dbz/rl: Debezium's over pg_recvlogical's; all in Kafka: exec -> the topic's end offsets reach N, outboxd / Debezium, and o/dbz on that clock; 1st in Kafka: exec -> the first record in Kafka, outboxd / Debezium (Debezium's start-up); task up: exec -> Connect's task running; tail: Debezium's all in Kafka -> confirmed (its heartbeat and offset flush, 1 s each); peak RSS: VmHWM, outboxd / Debezium's JVM; CPU s: until confirmed, outboxd / JVM; wsnd CPU: the walsender serving Debezium; other: cores used by unrelated processes during Debezium's drain)");
}
