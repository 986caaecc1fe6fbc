//! The pg_recvlogical baseline of a drain: the same slot kind and plugin options as outboxd, the
//! same WAL, into /dev/null.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::drain::{Clocks, DrainResult};
use crate::postgres::{fmt_lsn, slot_state};
use crate::support::{spawn_tied, tail};
use crate::system::append;
use crate::system::proc_cpu;
use crate::Ctx;

/// pg_recvlogical with outboxd's plugin options, into /dev/null, until `end_lsn` (`--endpos`),
/// timed like outboxd: exec → the slot confirmed at `end_lsn` (its last feedback before it exits).
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
    let lsn0 = slot_state(c, slot).await?.0;
    let started = Instant::now();
    let mut child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
    let pid = child.id();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut ws_pid, mut ws_cpu, mut cpu) = (None, None, 0.0);
    let mut clocks = Clocks::default();
    let seen = |clock: &mut Option<f64>, now: bool| {
        if now && clock.is_none() {
            *clock = Some(started.elapsed().as_secs_f64());
        }
    };
    let timeout = Duration::from_secs(ctx.args.drain_timeout_secs);
    // The same poll as outboxd's drain (the slot every 20 ms), until the slot is confirmed at the
    // end and the process has exited, in either order.
    let status = loop {
        tick.tick().await;
        if let Some(c) = proc_cpu(pid) {
            cpu = c;
        }
        let exited = child.try_wait()?;
        seen(&mut clocks.exited_s, exited.is_some());
        let (lsn, active) = slot_state(c, slot).await?;
        seen(&mut clocks.slot_active_s, active.is_some());
        seen(&mut clocks.first_confirm_s, lsn > lsn0);
        seen(&mut clocks.confirmed_s, lsn.is_some_and(|l| l >= end_lsn));
        if ws_pid.is_none() {
            ws_pid = active;
        }
        if let Some(p) = ws_pid {
            if let Some(c) = proc_cpu(p) {
                ws_cpu = Some(c);
            }
        }
        if let Some(st) = exited {
            // Its last feedback may reach the walsender a moment after it exits.
            let waited = started.elapsed().as_secs_f64() - clocks.exited_s.unwrap_or_default();
            if clocks.confirmed_s.is_some() || !st.success() || waited > 1.0 {
                break st;
            }
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            bail!("pg_recvlogical did not finish in {} s", timeout.as_secs());
        }
    };
    if !status.success() {
        bail!("pg_recvlogical failed ({status}):\n{}", tail(&log, 20));
    }
    let exited = clocks.exited_s.unwrap_or_default();
    let seconds = match clocks.confirmed_s {
        Some(s) => s,
        None => {
            let (lsn, _) = slot_state(c, slot).await?;
            eprintln!(
                "[bench]   note: pg_recvlogical exited with its slot confirmed at {} < {}; timed to its exit",
                lsn.map_or("?".into(), fmt_lsn),
                fmt_lsn(end_lsn)
            );
            exited
        }
    };
    Ok(DrainResult {
        seconds,
        events_per_s: n as f64 / seconds,
        cpu_s: cpu,
        cpu_s_per_100k: cpu / n as f64 * 1e5,
        walsender_cpu_s: ws_cpu,
        clocks,
    })
}
