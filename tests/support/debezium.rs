//! Debezium itself, for comparing outboxd with the connector it replaces: a Kafka Connect
//! standalone worker running Debezium's PostgreSQL connector and its Outbox EventRouter, started
//! with `scripts/debezium.sh run DIR ...` from the jars `scripts/install-deps.sh` resolved into
//! `.tools/debezium/lib` (`tests/debezium/pom.xml`). With [`DISTRIBUTED`] among the arguments, a
//! distributed worker instead (one node, its group and topics unique to DIR; the launcher creates
//! the connector through the REST API), whose offsets are in [`Debezium::offsets_topic`].
//!
//! [`Debezium::spawn`] runs the launcher through [`spawn_tied`](super::spawn_tied) (the launcher
//! `exec`s the JVM, so the child is the JVM and dies with the test), logging to `DIR/connect.log`.
//! [`Debezium::wait_running`] waits for the connector's task; dropping it stops the worker
//! (SIGTERM, Connect's graceful stop, then SIGKILL).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo_root, signal, spawn_tied, tail, wait_child};

/// What `scripts/debezium.sh start` waits for too: Connect's source task has started (the
/// connector created its slot and publication).
pub const TASK_RUNNING: &str = "Source task finished initialization and start";

/// The launcher's option for a distributed worker (`ConnectDistributed`) instead of a standalone
/// one: add it to [`Debezium::spawn`]'s arguments.
pub const DISTRIBUTED: &str = "--distributed";

/// Log lines saying the connector or its task died.
const FAILED: [&str; 2] = [
    "Task threw an uncaught and unrecoverable exception",
    "Failed to start connector",
];

/// Where the jars are: `$OUTBOXD_DEBEZIUM_LIB`, else `.tools/debezium/lib`.
pub fn lib() -> PathBuf {
    std::env::var_os("OUTBOXD_DEBEZIUM_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/debezium/lib"))
}

/// Whether Debezium can run here (Java and the jars); `Err` says what is missing and how to get it.
pub fn available() -> Result<(), String> {
    let lib = lib();
    let has = |prefix: &str| {
        std::fs::read_dir(&lib)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
            .unwrap_or(false)
    };
    if !has("debezium-connector-postgres-") || !has("connect-runtime-") {
        return Err(format!(
            "no Debezium jars in {} (run scripts/install-deps.sh: it resolves tests/debezium/pom.xml)",
            lib.display()
        ));
    }
    match Command::new("java").arg("-version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("no `java` on PATH (Kafka Connect needs Java 17+)".into()),
    }
}

/// A Kafka Connect worker running one Debezium connector.
pub struct Debezium {
    dir: tempfile::TempDir,
    log: PathBuf,
    child: Option<Child>,
    spawned: Instant,
}

impl Debezium {
    /// `scripts/debezium.sh run DIR ARGS...` in a fresh directory. Does not wait.
    pub fn spawn(args: &[String]) -> Debezium {
        let dir = tempfile::Builder::new()
            .prefix("debezium-")
            .tempdir()
            .expect("tempdir for Debezium");
        let log = dir.path().join("connect.log");
        let file = std::fs::File::create(&log).expect("create connect.log");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/debezium.sh"))
            .arg("run")
            .arg(dir.path())
            .args(args)
            .env_remove(super::KAFKA_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("dup log fd")))
            .stderr(Stdio::from(file));
        let child =
            spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot run scripts/debezium.sh: {e}"));
        Debezium {
            dir,
            log,
            child: Some(child),
            spawned: Instant::now(),
        }
    }

    /// Waits until the connector's task runs ([`TASK_RUNNING`] in the log); returns the time since
    /// [`spawn`](Self::spawn). `Err` (with the log's tail) if the task or the worker died, or
    /// `timeout` passed.
    pub async fn wait_running(&mut self, timeout: Duration) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(TASK_RUNNING) {
                return Ok(self.spawned.elapsed());
            }
            if let Some(line) = FAILED.iter().find(|l| log.contains(*l)) {
                return Err(format!(
                    "{line}; log {}:\n{}",
                    self.log.display(),
                    self.log_tail(60)
                ));
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "the worker exited ({st}); log {}:\n{}",
                    self.log.display(),
                    self.log_tail(60)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the connector's task did not start within {timeout:?}; log {}:\n{}",
                    self.log.display(),
                    self.log_tail(60)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The worker's directory (`worker.properties`, `connector.properties`, `offsets`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DIR/worker.properties` as the launcher wrote it.
    pub fn worker_properties(&self) -> PathBuf {
        self.dir.path().join("worker.properties")
    }

    /// A property of `DIR/worker.properties` (the last line with `key`), written before the JVM
    /// starts.
    pub fn worker_property(&self, key: &str) -> Option<String> {
        let path = self.worker_properties();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        parse_properties(&text)
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// A distributed worker's offsets topic (`offset.storage.topic`); `None` for a standalone
    /// worker (its offsets are in `DIR/offsets`).
    pub fn offsets_topic(&self) -> Option<String> {
        self.worker_property("offset.storage.topic")
    }

    /// The connector's configuration as the launcher wrote it (`DIR/connector.properties`), in
    /// file order. The launcher writes both files before it starts the JVM.
    pub fn connector_config(&self) -> Vec<(String, String)> {
        let path = self.dir.path().join("connector.properties");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        parse_properties(&text)
    }

    /// The worker's pid (the JVM) while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the worker logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Sends SIGTERM (Connect's graceful stop) without waiting; [`stop`](Self::stop) or dropping
    /// waits. Lets a test stop several workers at once.
    pub fn begin_stop(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGTERM);
        }
    }

    /// SIGKILL: the worker dies at once, its offsets as last flushed.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL if the worker has not exited within `timeout`; returns how long it
    /// took, or `None` if it had to be killed (or was not running).
    pub fn stop(&mut self, timeout: Duration) -> Option<Duration> {
        let mut c = self.child.take()?;
        let started = Instant::now();
        signal(c.id(), libc::SIGTERM);
        match wait_child(&mut c, timeout) {
            Some(_) => Some(started.elapsed()),
            None => {
                let _ = c.kill();
                let _ = c.wait();
                None
            }
        }
    }
}

impl Drop for Debezium {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Debezium log tail ({}) ----\n{}\n----",
                self.log.display(),
                self.log_tail(60)
            );
        }
        self.stop(Duration::from_secs(10));
    }
}

/// The `KEY=VALUE` lines of a properties file as `scripts/debezium.sh` writes them: `#` comments,
/// the separator the first unescaped `=`, `\uXXXX` (UTF-16, surrogate pairs included), `\t`,
/// `\n`, `\r`, `\f`, and `\` before any other character standing for that character.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    fn unescape(s: &str) -> String {
        let mut units: Vec<u16> = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buf = [0u16; 2];
                units.extend_from_slice(c.encode_utf16(&mut buf));
                continue;
            }
            match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    units.push(u16::from_str_radix(&hex, 16).expect("\\uXXXX"));
                }
                Some('t') => units.push(u16::from(b'\t')),
                Some('n') => units.push(u16::from(b'\n')),
                Some('r') => units.push(u16::from(b'\r')),
                Some('f') => units.push(0x0c),
                Some(other) => {
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(other.encode_utf16(&mut buf));
                }
                None => {}
            }
        }
        String::from_utf16(&units).expect("valid UTF-16 in a properties file")
    }
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        // The first '=' not preceded by an odd number of backslashes.
        let bytes = line.as_bytes();
        let mut split = None;
        let mut escaped = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\\' => escaped = !escaped,
                b'=' if !escaped => {
                    split = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let i = split.unwrap_or_else(|| panic!("properties line without '=': {line:?}"));
        out.push((unescape(&line[..i]), unescape(&line[i + 1..])));
    }
    out
}
