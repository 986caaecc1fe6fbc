//! The outboxd process under measurement: its configuration file (the defaults plus `--kafka`,
//! `--pipeline`, `--source`, `--exactly-once`, `--offsets`), start and stop, and what the harness
//! reads from its HTTP endpoint (`/metrics`, `/readyz`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{toml_lines, toml_string, Args};
use crate::support::{free_port, signal, spawn_tied, tail, wait_child};
use crate::system::append;

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

    /// The sum of `outboxd_events_published_total` over topics, from GET /metrics.
    pub async fn published(&self) -> Option<u64> {
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
