//! The outboxd process under measurement: its configuration file (the defaults plus `--kafka`,
//! `--pipeline`, `--source`, `--exactly-once`, `--offsets`), start and stop, what the harness
//! reads from its HTTP endpoint (`/metrics`, `/readyz`), and the start-up as its log tells it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{toml_lines, toml_string, Args};
use crate::support::{free_port, signal, spawn_tied, tail, wait_child};
use crate::system::{append, now_us};

/// The outboxd binary: `--outboxd`, else the one Cargo built for this benchmark, in the same
/// profile (`CARGO_BIN_EXE_outboxd`: `cargo bench` builds it first, so it matches the source).
pub fn outboxd_bin(args: &Args) -> Result<PathBuf> {
    let bin = args
        .outboxd
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_outboxd")));
    if !bin.is_file() {
        bail!("outboxd binary {}: no such file", bin.display());
    }
    Ok(bin)
}

pub struct Outboxd {
    pub child: Option<Child>,
    pub log: PathBuf,
    pub metrics_addr: String,
    /// When the harness spawned the process ("exec"): the origin of every drain clock.
    pub exec_at: Instant,
    /// The same moment on the wall clock (µs since the epoch), to place outboxd's log lines.
    pub exec_unix_us: i64,
}

/// What one GET /metrics says about a drain's progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// `outboxd_events_read_total`: events decoded and routed, i.e. handed to the producer.
    pub read: u64,
    /// `outboxd_events_published_total`: events Kafka acknowledged.
    pub published: u64,
}

pub struct OutboxdConfig<'a> {
    pub url: &'a str,
    pub slot: &'a str,
    pub publication: &'a str,
    pub table: &'a str,
    pub bootstrap: &'a str,
    pub create: bool,
}

impl Outboxd {
    pub fn start(
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
            .env_remove("OUTBOXD_LOG_FORMAT")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_OUTBOXD_LOG").unwrap_or_else(|_| "warn,outboxd=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        let (exec_at, exec_unix_us) = (Instant::now(), now_us());
        let child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
        Ok(Outboxd {
            child: Some(child),
            log,
            metrics_addr,
            exec_at,
            exec_unix_us,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails (with the log tail) if the process has exited (it is then a zombie until reaped).
    pub fn check_alive(&self) -> Result<()> {
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
    pub fn stop(&mut self) -> Result<()> {
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

    /// Events read and acknowledged so far (summed over tables and topics), from GET /metrics;
    /// None until the HTTP endpoint answers.
    pub async fn progress(&self) -> Option<Progress> {
        let body = http_get(&self.metrics_addr, "/metrics").await.ok()?;
        let mut p = Progress::default();
        for line in body.lines() {
            let field = if line.starts_with("outboxd_events_read_total") {
                &mut p.read
            } else if line.starts_with("outboxd_events_published_total") {
                &mut p.published
            } else {
                continue;
            };
            *field += line.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
        }
        Some(p)
    }

    /// outboxd's log lines up to and including "streaming" (the end of its start-up), each with
    /// its time in seconds since exec (from the line's own timestamp, so to the microsecond).
    pub fn startup_log(&self) -> Vec<(f64, String)> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines() {
            let Some((ts, rest)) = line.split_once(' ') else {
                continue;
            };
            let Some(us) = parse_utc_us(ts) else {
                continue;
            };
            let rest = rest.trim_start();
            out.push(((us - self.exec_unix_us) as f64 / 1e6, rest.to_string()));
            if is_streaming_line(rest) {
                break;
            }
        }
        out
    }

    /// The cumulative buckets of `outboxd_commit_to_ack_seconds` (upper bound in seconds, count).
    pub async fn ack_histogram(&self) -> Vec<(f64, u64)> {
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

    pub async fn ready(&self) -> bool {
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
pub async fn http_get(addr: &str, path: &str) -> Result<String> {
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

/// Whether a log line (after its timestamp) is the pipeline's "streaming": start-up is over.
pub fn is_streaming_line(rest: &str) -> bool {
    rest.contains("outboxd::pipeline: streaming ")
}

/// `2026-12-04T19:28:22.399602Z` (tracing's UTC timestamps) as µs since the epoch
/// (1_796_412_502_399_602 for that one).
fn parse_utc_us(ts: &str) -> Option<i64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let frac_us = format!("{frac:0<6}").get(..6)?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + frac_us)
}
