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
//! `fsync=off`, `autovacuum=off`: see the docs) and its own brokers, a fresh one per scenario:
//! Apache Kafka through scripts/kafka.sh (the default) or tansu (`--broker tansu`); or it uses
//! the Kafka named by `KAFKA_BOOTSTRAP_SERVERS`. It runs the
//! `outboxd` binary Cargo built with it, in the same profile (`CARGO_BIN_EXE_outboxd`), or the one
//! given with `--outboxd PATH`. Then, in one run:
//!
//! - **backlog drain**, per scenario `PAYLOADxROWS_PER_TX`: three pgoutput slots are created at
//!   the same WAL position, `--rows` outbox rows are written, then `pg_recvlogical` drains one slot
//!   into /dev/null, outboxd drains another to Kafka and Debezium (Kafka Connect with Debezium's
//!   PostgreSQL connector and Outbox EventRouter, `scripts/debezium.sh`) the third to its own
//!   broker; all are timed from process start until the slot's `confirmed_flush_lsn` reaches the
//!   end of the backlog. The records in Kafka are then counted by consuming every partition
//!   (explicit assignment, not high watermarks).
//! - **steady state**: a load generator inside Postgres (a procedure, one row per transaction,
//!   on `--gen-conns` connections) inserts at fixed rates, then ramps up by `--ramp-factor` until a
//!   rate is not sustained; a consumer (explicit partition assignment) measures the latency from
//!   the row's insert (`clock_timestamp()` in the payload, just before its commit) to receipt.
//!   outboxd first, then Debezium the same way, each alone on the machine with a fresh broker.
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
//! Postgres, the brokers and the process helpers are tests/support's (`support` below), so the
//! harness starts them as the integration tests do. Children are spawned with
//! `PR_SET_PDEATHSIG` (`support::spawn_tied`), so none outlives the harness.
//!
//! One file per job:
//!
//! | file | what it owns |
//! |---|---|
//! | `cli.rs` | the options |
//! | `drain.rs` | the backlog drain scenario (fill, outboxd's drain, counting records in Kafka) |
//! | `recvlogical.rs`, `broker_only.rs` | the drain's two baselines |
//! | `debezium.rs` | Debezium itself: the Connect worker, its configuration, its drain |
//! | `steady.rs`, `probe.rs` | the steady state and its broker probe |
//! | `postgres.rs` | the benchmark's Postgres and the SQL the scenarios run |
//! | `broker.rs`, `delay_line.rs` | the broker of a scenario and the delay line in front of it |
//! | `kafka.rs` | the harness's Kafka clients (reader, record count, outboxd-like producer) |
//! | `outboxd.rs` | the outboxd process, its config and its metrics |
//! | `system.rs` | child processes, /proc, CPU accounting |
//! | `report.rs`, `targets.rs` | the printed tables and the JSON, the issue-6 targets |

/// The integration tests' harness (Postgres clusters, brokers through scripts/kafka.sh, process
/// helpers), shared rather than copied.
#[path = "../../tests/support/mod.rs"]
mod support;

mod broker;
mod broker_only;
mod cli;
mod debezium;
mod delay_line;
mod drain;
mod kafka;
mod outboxd;
mod postgres;
mod probe;
mod recvlogical;
mod report;
mod steady;
mod system;
mod targets;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use clap::Parser;

use crate::broker::external_kafka;
use crate::cli::{parse_backlog, parse_rates, toml_lines, Args, BrokerKind};
use crate::drain::run_backlog;
use crate::outboxd::outboxd_bin;
use crate::postgres::{Postgres, PG_CONF};
use crate::report::{git, machine, print_report, Report, Versions};
use crate::steady::run_steady;
use crate::system::loadavg;
use crate::targets::targets;

/// What every scenario needs: the options, the work directory, the Postgres, the outboxd binary,
/// a name unique to this run (in table, topic and slot names), and whether Debezium runs in the
/// drains and in the steady state.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub work: &'a Path,
    pub pg: &'a Postgres,
    pub outboxd_bin: &'a Path,
    pub run_id: String,
    pub debezium_drains: bool,
    pub debezium_steady: bool,
}

async fn run(args: Args) -> Result<()> {
    let specs = parse_backlog(&args.backlog)?;
    let rates = parse_rates(&args.rates)?;
    // Validate the overrides before spending minutes on a fill.
    toml_lines(&args.kafka, "kafka")?;
    toml_lines(&args.pipeline, "pipeline")?;
    toml_lines(&args.source, "source")?;
    crate::broker::check_available(args.broker)?;
    let bin = outboxd_bin(&args)?;
    let debezium = crate::debezium::availability(args.no_debezium);
    let debezium_on = matches!(debezium, crate::debezium::Availability::On);
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut machine = machine();
    let work_parent = args.workdir.clone().unwrap_or_else(std::env::temp_dir);
    let work_dir = tempfile::Builder::new()
        .prefix("outboxd-bench-")
        .tempdir_in(&work_parent)?;
    let work = work_dir.path().to_path_buf();
    eprintln!(
        "[bench] work dir {} (load {}), outboxd {}",
        work.display(),
        loadavg(),
        bin.display()
    );
    let pg = Postgres::start();
    let kafka = crate::broker::describe(args.broker);
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
        debezium: debezium_on.then(crate::debezium::describe),
    };
    let ctx = Ctx {
        args: &args,
        work: &work,
        pg: &pg,
        outboxd_bin: &bin,
        run_id: format!("{}_{}", std::process::id(), started_unix % 100_000),
        debezium_drains: debezium_on && !args.no_debezium_drains,
        debezium_steady: debezium_on && !args.no_debezium_steady,
    };
    let mut backlog = Vec::new();
    let mut sizes = args.rows.clone();
    sizes.sort_unstable();
    sizes.dedup();
    for &n in &sizes {
        for spec in &specs {
            backlog.push(run_backlog(&ctx, backlog.len() + 1, n, *spec).await?);
        }
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
    settings.insert(
        "broker",
        serde_json::json!(if external_kafka().is_some() {
            "external"
        } else {
            match args.broker {
                BrokerKind::Kafka => "kafka",
                BrokerKind::Tansu => "tansu",
            }
        }),
    );
    settings.insert("partitions", serde_json::json!(args.partitions));
    settings.insert("fill_conns", serde_json::json!(args.fill_conns));
    settings.insert("kafka", serde_json::json!(args.kafka));
    settings.insert("pipeline", serde_json::json!(args.pipeline));
    settings.insert("source", serde_json::json!(args.source));
    settings.insert(
        "debezium",
        serde_json::json!({
            "status": match &debezium {
                crate::debezium::Availability::On => match (ctx.debezium_drains, ctx.debezium_steady) {
                    (true, true) => "on".to_string(),
                    (true, false) => "drains only (--no-debezium-steady)".to_string(),
                    (false, true) => "steady state only (--no-debezium-drains)".to_string(),
                    (false, false) => "off (--no-debezium-drains --no-debezium-steady)".to_string(),
                },
                crate::debezium::Availability::Off => "off (--no-debezium)".to_string(),
                crate::debezium::Availability::Skipped(why) => format!("skipped: {why}"),
            },
            "connector_drain": crate::debezium::connector_props(false).iter().chain(&args.debezium_connector).collect::<Vec<_>>(),
            "connector_steady": crate::debezium::connector_props(true).iter().chain(&args.debezium_connector).collect::<Vec<_>>(),
            "worker": crate::debezium::WORKER_PROPS.iter().map(|s| s.to_string()).chain(args.debezium_worker.iter().cloned()).collect::<Vec<_>>(),
            "jvm": crate::debezium::JVM_OPTS.iter().map(|s| s.to_string()).chain(args.debezium_jvm_opt.iter().cloned()).collect::<Vec<_>>(),
            "heap": crate::debezium::heap(),
        }),
    );
    settings.insert(
        "postgresql_conf",
        serde_json::json!(PG_CONF.lines().collect::<Vec<_>>()),
    );
    let mut report = Report {
        tool: "outboxd-bench",
        format: 3,
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
    if args.keep {
        let _ = fs::copy(pg.log_path(), work.join("postgres.log"));
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
    if let Some(dir) = &args.workdir {
        // tests/support's Postgres cluster makes its directory under $TMPDIR. Set before any
        // other thread exists.
        std::env::set_var("TMPDIR", dir);
    }
    if args.broker_delay_ms != 0.0 {
        if Duration::try_from_secs_f64(args.broker_delay_ms / 1000.0).is_err() {
            eprintln!(
                "bench: --broker-delay-ms {} is not a delay: give milliseconds, 0 or more",
                args.broker_delay_ms
            );
            return ExitCode::FAILURE;
        }
        if external_kafka().is_some() {
            eprintln!(
                "bench: --broker-delay-ms needs a broker the harness starts; unset KAFKA_BOOTSTRAP_SERVERS"
            );
            return ExitCode::FAILURE;
        }
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
