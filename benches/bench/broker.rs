//! The broker of a scenario: a fresh Apache Kafka (`scripts/kafka.sh`, the default) or tansu
//! (`--broker tansu`) per drain, per broker-only baseline and for the steady state, or the Kafka
//! named by `KAFKA_BOOTSTRAP_SERVERS`; behind the delay line with `--broker-delay-ms`. Brokers
//! are started by tests/support ([`LocalBroker`]), as the tests start theirs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::cli::{setting, BrokerKind};
use crate::delay_line;
use crate::kafka::{count_all, outboxd_like_producer};
use crate::postgres::pad_for;
use crate::support::broker::{
    kafka_available, kafka_lib, tansu_bin, wait_broker_ready, KafkaOptions, Kind, LocalBroker,
};
use crate::support::free_port;
use crate::system::proc_cpu;
use crate::Ctx;

pub use crate::support::external_kafka;

/// A broker started for one scenario (killed, and its data removed, on drop; its log is copied
/// into the work directory first), or the external cluster.
pub struct Broker {
    pub bootstrap: String,
    local: Option<LocalBroker>,
    /// Where the log is copied on drop.
    keep_log: PathBuf,
}

fn kind(b: BrokerKind) -> Kind {
    match b {
        BrokerKind::Kafka => Kind::Kafka,
        BrokerKind::Tansu => Kind::Tansu,
    }
}

/// Fails early (before minutes of filling) when the broker `--broker` asks for cannot start
/// here, saying what is missing.
pub fn check_available(b: BrokerKind) -> Result<()> {
    if external_kafka().is_some() {
        return Ok(());
    }
    match b {
        BrokerKind::Kafka => kafka_available().map_err(|e| {
            anyhow!("cannot start Apache Kafka: {e}; or use --broker tansu, or set KAFKA_BOOTSTRAP_SERVERS")
        }),
        BrokerKind::Tansu => Ok(()),
    }
}

/// What the report calls the broker: its kind and version, and how it runs.
pub fn describe(b: BrokerKind) -> String {
    if let Some(bootstrap) = external_kafka() {
        return format!("external Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)");
    }
    match b {
        BrokerKind::Kafka => {
            let version = std::fs::read_dir(kafka_lib())
                .into_iter()
                .flatten()
                .flatten()
                .find_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let v = name.strip_prefix("kafka_2.13-")?.strip_suffix(".jar")?;
                    (!v.contains('-')).then(|| v.to_string())
                })
                .unwrap_or_else(|| "?".into());
            let java = Command::new("java")
                .arg("-version")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let heap = std::env::var("KAFKA_HEAP").unwrap_or_else(|_| "512m".into());
            format!(
                "Apache Kafka {version} (scripts/kafka.sh, KRaft, one node, heap {heap}, a fresh broker per scenario; {java})"
            )
        }
        BrokerKind::Tansu => {
            let out = Command::new(tansu_bin()).arg("--version").output();
            let v = out
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            format!("{v} (memory storage, a fresh broker per scenario)")
        }
    }
}

impl Broker {
    /// A fresh broker of `--broker`'s kind for the scenario `name` (or the external cluster),
    /// ready when it answers metadata requests.
    pub async fn start(ctx: &Ctx<'_>, name: &str) -> Result<Broker> {
        let b = ctx.args.broker;
        let label = match b {
            BrokerKind::Kafka => "kafka",
            BrokerKind::Tansu => "tansu",
        };
        let keep_log = ctx.work.join(format!("{label}-{name}.log"));
        if let Some(bootstrap) = external_kafka() {
            return Ok(Broker {
                bootstrap,
                local: None,
                keep_log,
            });
        }
        // Behind the delay line, the broker advertises the proxy's address, so that every client
        // connection goes through it (Kafka's controller and inter-broker listeners do not).
        let port = free_port();
        let advertised = match ctx.args.broker_delay() {
            Some(delay) => Some(delay_line::start(&format!("127.0.0.1:{port}"), delay)?),
            None => None,
        };
        let local = LocalBroker::spawn(
            kind(b),
            KafkaOptions {
                port: Some(port),
                advertised_port: advertised,
                ..KafkaOptions::default()
            },
        );
        wait_broker_ready(local.bootstrap(), local.log_path());
        let broker = Broker {
            bootstrap: local.bootstrap().to_string(),
            local: Some(local),
            keep_log,
        };
        if ctx.args.broker_warmup > 0 {
            broker.warm_up(ctx).await?;
        }
        Ok(broker)
    }

    /// `--broker-warmup`: N records through the broker and back, outboxd's offsets topic (as a
    /// previous run of outboxd leaves it), Kafka's transaction state with exactly-once; then
    /// waits (at most 15 s) until the broker uses less than 0.15 cores over half a second.
    async fn warm_up(&self, ctx: &Ctx<'_>) -> Result<()> {
        let args = ctx.args;
        let started = Instant::now();
        let topic = "outboxd-bench-warmup";
        self.create_topic(topic, args.partitions).await?;
        let producer = outboxd_like_producer(args, &self.bootstrap)?;
        let value = format!("{{\"pad\": \"{}\"}}", "x".repeat(pad_for(1000)));
        let n = args.broker_warmup;
        for i in 0..n {
            let key = format!("warmup-{}", i % 1000);
            loop {
                match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => bail!("broker warm-up: {e}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(120))
            .context("broker warm-up: flush")?;
        let read = count_all(&self.bootstrap, topic, n, Duration::from_secs(120))?;
        if setting(&args.offsets, "enabled") != Some("false") {
            let name = setting(&args.offsets, "topic").unwrap_or("outboxd-offsets");
            create_offsets_topic(&self.bootstrap, name).await?;
        }
        if setting(&args.exactly_once, "enabled") == Some("true") {
            let tx: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &self.bootstrap)
                .set("transactional.id", "outboxd-bench-warmup")
                .set("log_level", "3")
                .create()?;
            tx.init_transactions(Duration::from_secs(120))
                .context("broker warm-up: init_transactions")?;
        }
        let warm = started.elapsed().as_secs_f64();
        let settle = Instant::now();
        if let Some(pid) = self.pid() {
            let mut cpu = proc_cpu(pid).unwrap_or(0.0);
            while settle.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(500));
                let now = proc_cpu(pid).unwrap_or(0.0);
                let cores = (now - cpu) / 0.5;
                cpu = now;
                if cores < 0.15 {
                    break;
                }
            }
        }
        eprintln!(
            "[bench] broker warmed up: {n} records sent, {read} read back, in {warm:.1} s; settled in {:.1} s",
            settle.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The broker's process (the JVM for Kafka), None for an external cluster.
    pub fn pid(&self) -> Option<u32> {
        self.local.as_ref().and_then(LocalBroker::pid)
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        crate::support::kafka::create_topic(&self.bootstrap, name, partitions).await;
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut local) = self.local.take() {
            local.kill9();
            let _ = std::fs::copy(local.log_path(), &self.keep_log);
            if local.kind() == Kind::Tansu {
                // tests/support leaves tansu's log in target/tmp; the copy is in the work dir.
                let _ = std::fs::remove_file(local.log_path());
            }
        }
    }
}

/// outboxd's offsets topic as outboxd creates it (`sink::offsets::ensure_offsets_topic`: one
/// partition, compacted, the broker's default replication factor).
async fn create_offsets_topic(bootstrap: &str, name: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let topic =
        NewTopic::new(name, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    for r in admin.create_topics([&topic], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("create topic {t}: {code:?}"),
        }
    }
    Ok(())
}
