//! The pg_recvlogical baseline of a drain: the same slot kind and plugin options as outboxd, the
//! same WAL, into /dev/null.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::drain::DrainResult;
use crate::postgres::{fmt_lsn, slot_state};
use crate::support::{spawn_tied, tail};
use crate::system::append;
use crate::system::proc_cpu;
use crate::Ctx;

/// pg_recvlogical with outboxd's plugin options, into /dev/null, until `end_lsn` (`--endpos`).
pub async fn run_recvlogical(
    ctx: &Ctx<'_>,
    c: &tokio_postgres::Client,
    slot: &str,
    publication: &str,
    end_lsn: u64,
    n: u64,
) -> Result<DrainResult> {
    let bin = ctx.pg.bin().join("pg_recvlogical");
    let log = ctx.work.join(format!("pg_recvlogical-{slot}.log"));
    let mut cmd = Command::new(&bin);
    cmd.arg("-d")
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            ctx.pg.port()
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
