//! The `outboxd` binary under test.
//!
//! `Outboxd::start(config)` writes the TOML to `<tempdir>/outboxd.toml` and runs
//! `outboxd run --config <that file>`, with stdout and stderr appended to `<tempdir>/outboxd.log`.
//! `KAFKA_BOOTSTRAP_SERVERS` is removed from the child's environment so the config file alone
//! decides where it produces (tests put the right bootstrap servers in the config).
//! Dropping it SIGKILLs the process; if the thread is panicking, the log tail is printed first.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{signal, spawn_tied, tail, wait_child};

/// Path of the binary Cargo built for this test run.
pub const OUTBOXD_BIN: &str = env!("CARGO_BIN_EXE_outboxd");

/// The binary the tests run: `$OUTBOXD_TEST_BIN` when set (e.g. a release build, or a copy that
/// another build in the same target directory cannot replace mid-run), else [`OUTBOXD_BIN`].
pub fn outboxd_bin() -> String {
    std::env::var("OUTBOXD_TEST_BIN").unwrap_or_else(|_| OUTBOXD_BIN.to_string())
}

pub struct Outboxd {
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl Outboxd {
    /// `outboxd run --config FILE` with `config_toml` as FILE.
    pub fn start(config_toml: &str) -> Outboxd {
        Self::start_with(config_toml, &[], &[])
    }

    /// Like [`start`](Self::start), with extra arguments after `run --config FILE` and extra
    /// environment variables (e.g. `("RUST_LOG", "outboxd=debug")`).
    pub fn start_with(config_toml: &str, extra_args: &[&str], envs: &[(&str, &str)]) -> Outboxd {
        let dir = tempfile::Builder::new()
            .prefix("outboxd-run-")
            .tempdir()
            .expect("tempdir for outboxd");
        let config = dir.path().join("outboxd.toml");
        std::fs::write(&config, config_toml).expect("write outboxd.toml");
        let log = dir.path().join("outboxd.log");
        File::create(&log).expect("create outboxd.log");
        let mut o = Outboxd {
            dir,
            config,
            log,
            child: None,
            status: None,
        };
        o.spawn(extra_args, envs);
        o
    }

    /// Starts the same config again (after `kill9`/`terminate`), appending to the same log.
    pub fn restart(&mut self) {
        self.restart_with(&[], &[]);
    }

    pub fn restart_with(&mut self, extra_args: &[&str], envs: &[(&str, &str)]) {
        assert!(
            self.child.is_none(),
            "restart: outboxd is still running (pid {:?})",
            self.pid()
        );
        self.status = None;
        self.spawn(extra_args, envs);
    }

    fn spawn(&mut self, extra_args: &[&str], envs: &[(&str, &str)]) {
        let mut cmd = command(&self.log);
        cmd.arg("run").arg("--config").arg(&self.config);
        cmd.args(extra_args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child =
            spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", outboxd_bin()));
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The config file path.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The scratch directory (config and log live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The exit status if the process has exited (None while running).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                self.status = Some(st);
                self.child = None;
            }
        }
        self.status
    }

    /// Waits (async) for the process to exit by itself; panics with the log if it is still
    /// running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "outboxd should stop by itself within {timeout:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none() && self.child.is_some()
    }

    /// SIGKILL (a crash: nothing is flushed, nothing confirmed) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            self.status = c.wait().ok();
        }
    }

    /// SIGTERM, then wait up to `timeout` for a clean exit. Returns the exit status, or None if
    /// it did not exit in time (it is then SIGKILLed so nothing leaks; tests should assert).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        signal(c.id(), libc::SIGTERM);
        match wait_child(&mut c, timeout) {
            Some(st) => {
                self.status = Some(st);
                Some(st)
            }
            None => {
                let _ = c.kill();
                let _ = c.wait();
                None
            }
        }
    }

    /// [`start_with`](Self::start_with) with `RUST_LOG=info,outboxd=debug`, then waits (60 s at
    /// most, else panics with the log) until it streams.
    pub async fn streaming(config_toml: &str) -> Outboxd {
        let o = Self::start_with(config_toml, &[], &[("RUST_LOG", "info,outboxd=debug")]);
        assert!(
            o.wait_for_log("streaming", Duration::from_secs(60)).await,
            "outboxd did not start streaming:\n{}",
            o.log()
        );
        o
    }

    /// Waits (async) until the log contains `needle`; returns whether it did within `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        super::wait_until(timeout, || async { self.log().contains(needle) }).await
    }
}

impl Drop for Outboxd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- outboxd log tail ({}) ----\n{}\n----",
                self.log.display(),
                tail(&self.log, 60)
            );
        }
        self.kill9();
    }
}

fn command(log: &Path) -> Command {
    let out = OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("open outboxd.log");
    let err = out.try_clone().expect("dup log fd");
    let mut cmd = Command::new(outboxd_bin());
    cmd.env_remove(super::KAFKA_ENV)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    cmd
}

/// Runs `outboxd ARGS...` to completion (e.g. `["check", "--config", path]`, `["--help"]`);
/// returns its exit status and combined stdout+stderr. Blocking.
pub fn run_once(args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("out.log");
    let mut cmd = command(&log);
    cmd.args(args);
    let mut child = spawn_tied(cmd).expect("spawn outboxd");
    let st = wait_child(&mut child, timeout);
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    (st, out)
}

/// `outboxd check --config FILE` with `config_toml` as FILE; (exit status, output).
pub fn check(config_toml: &str, timeout: Duration) -> (Option<ExitStatus>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("outboxd.toml");
    std::fs::write(&cfg, config_toml).expect("write config");
    run_once(
        &["check", "--config", cfg.to_str().expect("utf-8 path")],
        timeout,
    )
}

/// `GET path` on outboxd's HTTP listener at 127.0.0.1:`port`; returns the whole response (status
/// line, headers and body).
pub async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to outboxd's http listener");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read response");
    out
}
