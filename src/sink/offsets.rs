//! The offsets topic, the Kafka side of [`crate::position`]: creating it, reading a slot's last
//! recorded position, and (at-least-once mode) writing position records.
//!
//! Reading blocks: call `read_position` from `spawn_blocking`. Position records are produced
//! by the pipeline's own producer like events, and their delivery comes back as
//! [`Report::Position`](super::producer::Report).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::producer::{KafkaSink, SendError, SideContext};
use crate::lsn::Lsn;
use crate::position::{
    acceptable, resume_position, same_slot_of_another_cluster, BadRecord, Latest, OffsetRecord,
    Offsets, SlotAhead,
};
use crate::router::OutboxRecord;

/// How long creating or reading the offsets topic may take at start.
const OFFSETS_TIMEOUT: Duration = Duration::from_secs(30);

/// The offsets topic could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("{}", kafka_message(topic, doing, error))]
    Kafka {
        topic: String,
        doing: &'static str,
        error: String,
    },
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    #[error(transparent)]
    SlotAhead(#[from] SlotAhead),
    #[error("offsets topic {topic}: the record of position {lsn} was not written ({error}); the slot is not confirmed past the last position recorded, so nothing is lost: fix the topic (it must exist and be writable by outboxd) or set offsets.enabled = false")]
    Write {
        topic: String,
        lsn: Lsn,
        error: KafkaError,
    },
}

/// The text of [`OffsetsError::Kafka`]: when the brokers did not answer at all, that (and where
/// to look), not the topic's permissions, which a broker that is not there says nothing about.
fn kafka_message(topic: &str, doing: &str, error: &str) -> String {
    const UNREACHABLE: [&str; 6] = [
        "transport failure",
        "Timed out",
        "timed out",
        "brokers are down",
        "AllBrokersDown",
        "Connection refused",
    ];
    if UNREACHABLE.iter().any(|u| error.contains(u)) {
        format!("offsets topic {topic} ({doing}): {error}; Kafka did not answer: check that the brokers run and that [kafka] bootstrap.servers names them (outboxd retries with back-off)")
    } else {
        format!("offsets topic {topic} ({doing}): {error}; outboxd records the position it published there (offsets.topic) and reads it at start: let outboxd create the topic (1 partition, cleanup.policy=compact) or create it yourself, grant outboxd READ, WRITE and DESCRIBE on it, or set offsets.enabled = false to record no position (a slot moved by someone else then goes unnoticed)")
    }
}

impl OffsetsError {
    /// Whether a restart may succeed (Kafka unreachable, not a wrong topic).
    pub fn is_transient(&self) -> bool {
        use RDKafkaErrorCode::*;
        match self {
            OffsetsError::Kafka { .. } => true,
            OffsetsError::BadRecord(_) | OffsetsError::SlotAhead(_) => false,
            OffsetsError::Write { error, .. } => !matches!(
                error.rdkafka_error_code(),
                Some(
                    TopicAuthorizationFailed
                        | ClusterAuthorizationFailed
                        | InvalidTopic
                        | UnknownTopic
                        | UnknownTopicOrPartition
                        | PolicyViolation
                        | MessageSizeTooLarge
                )
            ),
        }
    }
}

/// The configuration of outboxd's side clients (offsets reader, admin client, tombstone
/// producer): the producer's, without the transactional id. Not a list of connection properties:
/// measured, a consumer built from only the connection-related properties failed SCRAM
/// authentication where one built from the whole producer configuration succeeded.
pub(super) fn client_config(producer: &ClientConfig) -> ClientConfig {
    let mut config = producer.clone();
    config.remove("transactional.id");
    config
}

/// librdkafka's producer-only properties (its CONFIGURATION.md, scope "P"), under both names
/// where it has an alias. A consumer given one logs a CONFWARN line per property at every start.
const PRODUCER_ONLY: &[&str] = &[
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queuing.strategy",
    "produce.offset.report",
    "partitioner",
];

/// [`client_config`] for a consumer: without the producer-only properties, which it would only
/// warn about.
pub(super) fn consumer_config(producer: &ClientConfig) -> ClientConfig {
    let mut config = client_config(producer);
    for key in PRODUCER_ONLY {
        config.remove(key);
    }
    config
}

/// Creates the offsets topic (1 partition, compacted, the broker's default replication factor)
/// unless it exists. Looks first (with the pipeline's own producer), so a principal allowed to use
/// the topic but not to create topics works with a topic created for it.
pub async fn ensure_offsets_topic(
    sink: &std::sync::Arc<KafkaSink>,
    producer: &ClientConfig,
    topic: &str,
) -> Result<(), OffsetsError> {
    let kafka = |doing, error: String| OffsetsError::Kafka {
        topic: topic.to_string(),
        doing,
        error,
    };
    let (s, t) = (sink.clone(), topic.to_string());
    let exists = tokio::task::spawn_blocking(move || s.topic_exists(&t, Duration::from_secs(10)))
        .await
        .map_err(|e| kafka("looking it up", e.to_string()))?
        .map_err(|e| kafka("looking it up", e.to_string()))?;
    if exists {
        return Ok(());
    }
    let admin: AdminClient<SideContext> = client_config(producer)
        .create_with_context(SideContext)
        .map_err(|e| kafka("creating it", e.to_string()))?;
    let options = AdminOptions::new().request_timeout(Some(OFFSETS_TIMEOUT));
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| kafka("creating it", e.to_string()))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(kafka("creating it", format!("{code:?}"))),
        }
    }
    Ok(())
}

/// What the offsets topic holds for one slot ([`read_recorded`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The last position recorded under the key ([`Latest`]); `None` when there is none (or the
    /// last record is a tombstone).
    pub position: Option<Lsn>,
    /// The Postgres timeline that position was written on.
    pub timeline: Option<u32>,
    /// The same database and slot of other clusters (other system identifiers): their keys.
    pub other_clusters: Vec<String>,
}

/// Reads the offsets topic to its end (`read_committed`) and returns what it holds for `key`
/// ([`Recorded`]). A topic that does not exist is an error, unless `missing_ok` (then nothing is
/// recorded). Blocking.
fn read_position(
    producer: &ClientConfig,
    topic: &str,
    key: &str,
    timeout: Duration,
    missing_ok: bool,
) -> Result<Recorded, OffsetsError> {
    let mut latest = Latest::default();
    let mut others = std::collections::BTreeSet::new();
    scan_topic(producer, topic, timeout, missing_ok, |m| {
        if m.key() != Some(key.as_bytes()) {
            if let Some(other) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
                if same_slot_of_another_cluster(key, other) {
                    others.insert(other.to_string());
                }
            }
            return Ok(());
        }
        // A tombstone (no payload) forgets the position: `outboxd slot drop`.
        latest.record(m.payload()).map_err(|message| {
            BadRecord {
                topic: topic.to_string(),
                partition: m.partition(),
                offset: m.offset(),
                message,
            }
            .into()
        })
    })?;
    Ok(Recorded {
        position: latest.position(),
        timeline: latest.timeline(),
        other_clusters: others.into_iter().collect(),
    })
}

/// Reads every partition of `topic` from the beginning to its end (`read_committed`: the last
/// stable offset), handing each record to `each` in log order per partition. Returns false, having
/// read nothing, when the topic does not exist and `missing_ok`; otherwise a missing topic is an
/// error. Blocking.
pub(crate) fn scan_topic(
    producer: &ClientConfig,
    topic: &str,
    timeout: Duration,
    missing_ok: bool,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<(), OffsetsError>,
) -> Result<bool, OffsetsError> {
    let kafka = |error: String| OffsetsError::Kafka {
        topic: topic.to_string(),
        doing: "reading it",
        error,
    };
    // (librdkafka's assign() needs a group.id, though nothing is committed or joined.)
    let consumer: BaseConsumer<SideContext> = consumer_config(producer)
        .set("group.id", "outboxd-offsets-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        // The topic is read to its end once: a broker that holds an empty fetch for the whole
        // wait (librdkafka's default 500 ms) would delay every start by that much.
        .set("fetch.wait.max.ms", "10")
        .create_with_context(SideContext)
        .map_err(|e| kafka(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let partitions: Vec<i32> = loop {
        // A new client may not have a usable broker connection yet (SASL, TLS): retry.
        let metadata = match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(m) => m,
            Err(_) if Instant::now() < deadline => {
                // Serve the client's callbacks meanwhile: its errors (a refused SASL login, an
                // unreachable broker) reach outboxd's log only when the client is polled.
                let _ = consumer.poll(Duration::from_millis(200));
                continue;
            }
            Err(e) => return Err(kafka(e.to_string())),
        };
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect());
        match found {
            Some(p) => break p,
            None if missing_ok => return Ok(false),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            None => return Err(kafka("topic not found".into())),
        }
    };
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| kafka(e.to_string()))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka(e.to_string()))?;
    // Read until every partition reported its end.
    let mut at_end = std::collections::HashSet::new();
    while at_end.len() < partitions.len() {
        if Instant::now() > deadline {
            return Err(kafka(format!(
                "not at the end of the topic after {timeout:?} (an open transaction of another producer holds it back?)"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => return Err(kafka(e.to_string())),
            Some(Ok(m)) => each(&m)?,
        }
    }
    // Closing a client waits for its threads: not on the caller's path.
    std::thread::spawn(move || drop(consumer));
    Ok(true)
}

/// Where a run resumes ([`resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// The position read from the topic (`None`: none recorded for this slot).
    pub recorded: Option<Lsn>,
    /// The confirmation cap `R` to start from (see `position::resume_position`).
    pub resume: Lsn,
}

/// A slot to check against its recorded position ([`resume`]).
#[derive(Debug, Clone, Copy)]
pub struct ResumeFrom<'a> {
    /// The offsets topic and the slot's key in it.
    pub topic: &'a str,
    pub key: &'a str,
    pub slot: &'a str,
    /// The slot's `confirmed_flush_lsn`.
    pub start_lsn: Lsn,
    /// This run created the slot with a snapshot.
    pub new_slot_with_snapshot: bool,
    /// `accept_slot_position`.
    pub accept: Option<Lsn>,
}

/// What the start of a run needs from the offsets topic, in either mode: makes sure the topic
/// exists, reads the slot's recorded position and checks the slot against it ([`check_resume`]).
/// `timeline` is the server's now ([`log_history`]).
pub async fn resume(
    sink: &std::sync::Arc<KafkaSink>,
    producer: &ClientConfig,
    from: ResumeFrom<'_>,
    timeline: u32,
) -> Result<Resumed, OffsetsError> {
    ensure_offsets_topic(sink, producer, from.topic).await?;
    let recorded = read_recorded(producer, from.topic, from.key).await?;
    log_history(&recorded, from.slot, from.key, timeline);
    check_resume(recorded.position, from)
}

/// Reads what is recorded under `key` (the last record, [`Latest`]) from the offsets topic,
/// which must exist ([`ensure_offsets_topic`]).
pub async fn read_recorded(
    producer: &ClientConfig,
    topic: &str,
    key: &str,
) -> Result<Recorded, OffsetsError> {
    let (p, t, k) = (producer.clone(), topic.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || read_position(&p, &t, &k, OFFSETS_TIMEOUT, false))
        .await
        .expect("reading the offsets topic panicked")
}

/// [`read_recorded`] for a topic that may not exist yet (nothing is recorded then): the check
/// of a missing slot, which runs before outboxd creates the topic.
pub async fn read_recorded_if_any(
    producer: &ClientConfig,
    topic: &str,
    key: &str,
) -> Result<Recorded, OffsetsError> {
    let (p, t, k) = (producer.clone(), topic.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || read_position(&p, &t, &k, OFFSETS_TIMEOUT, true))
        .await
        .expect("reading the offsets topic panicked")
}

/// Logs what changed on the Postgres side since the position was recorded: another timeline
/// (the server was promoted, or restored to a point in time), or positions of the same slot on
/// other clusters (the cluster was replaced: its system identifier changed).
pub fn log_history(recorded: &Recorded, slot: &str, key: &str, timeline: u32) {
    if let Some(was) = recorded.timeline.filter(|t| *t != timeline) {
        tracing::info!(%slot, recorded = ?recorded.position, "the Postgres timeline changed from {was} to {timeline} since outboxd recorded its position: the server was promoted (a failover) or restored; streaming resumes from the slot");
    }
    for other in &recorded.other_clusters {
        tracing::warn!(%slot, this_key = %key, other_key = %other, "the offsets topic holds a position for this database and slot on another cluster (another system identifier): the cluster was replaced (restored from a backup, upgraded with pg_upgrade, or another server at the same address); outboxd does not resume from another cluster's position");
    }
}

/// Checks the slot against the position `recorded` for it, accepting the configured position or
/// a slot this run created with a snapshot (`position::acceptable`), each with a warning.
pub fn check_resume(recorded: Option<Lsn>, from: ResumeFrom<'_>) -> Result<Resumed, OffsetsError> {
    let ResumeFrom {
        topic,
        key,
        slot,
        start_lsn,
        new_slot_with_snapshot,
        accept,
    } = from;
    let accepted = acceptable(recorded, start_lsn, new_slot_with_snapshot, accept);
    let resume = resume_position(slot, start_lsn, recorded, accepted, topic, key)?;
    if let Some(r) = recorded.filter(|r| *r < start_lsn) {
        if new_slot_with_snapshot {
            tracing::warn!(%slot, recorded = %r, slot_lsn = %start_lsn, "the slot was created anew at {start_lsn}, ahead of the position recorded for a slot of this name ({r}): events committed in between and no longer in the outbox tables are not published; the snapshot publishes the rows still there");
        } else {
            tracing::warn!(%slot, recorded = %r, slot_lsn = %start_lsn, "accepted the slot's position {start_lsn} (offsets.accept_slot_position); remove the setting once outboxd has run");
        }
    }
    Ok(Resumed { recorded, resume })
}

/// Writes a tombstone for `key`: the slot's position is forgotten (`outboxd slot drop`), so a new
/// slot of the same name starts without the moved-slot check. Blocking.
pub fn forget_position(
    producer: &ClientConfig,
    topic: &str,
    key: &str,
    timeout: Duration,
) -> Result<(), OffsetsError> {
    let kafka = |error: String| OffsetsError::Kafka {
        topic: topic.to_string(),
        doing: "writing a tombstone",
        error,
    };
    let producer: BaseProducer<SideContext> = client_config(producer)
        .set("enable.idempotence", "true")
        .create_with_context(SideContext)
        .map_err(|e| kafka(e.to_string()))?;
    producer
        .send(BaseRecord::<str, [u8]>::to(topic).key(key))
        .map_err(|(e, _)| kafka(e.to_string()))?;
    producer.flush(timeout).map_err(|e| kafka(e.to_string()))
}

/// Whether the brokers' `read_committed` readers skip the records of aborted transactions, as
/// Apache Kafka's do (tansu 0.6's do not). Asked only when a start cannot tell otherwise (see
/// `crate::exactly_once`, "The position at start"): writes an offsets record under `key` in a
/// transaction of `transactional_id`, aborts it, and reads the topic to its end to see whether
/// it is there. Its position is unique (the clock), so an aborted probe of an earlier start
/// does not count. Blocking.
pub fn filters_aborted(
    producer: &ClientConfig,
    topic: &str,
    transactional_id: &str,
    key: &str,
    timeout: Duration,
) -> Result<bool, OffsetsError> {
    let kafka = |error: String| OffsetsError::Kafka {
        topic: topic.to_string(),
        doing: "probing whether read_committed readers skip aborted transactions",
        error,
    };
    let probe: BaseProducer<SideContext> = client_config(producer)
        .set("transactional.id", transactional_id)
        .create_with_context(SideContext)
        .map_err(|e| kafka(e.to_string()))?;
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let marker = Lsn(micros);
    let record = OffsetRecord {
        lsn: marker.to_string(),
        slot: "(probe)".to_string(),
        timeline: 0,
        transactional_id: transactional_id.to_string(),
    };
    probe
        .init_transactions(timeout)
        .and_then(|()| probe.begin_transaction())
        .map_err(|e| kafka(e.to_string()))?;
    probe
        .send(
            BaseRecord::<str, [u8]>::to(topic)
                .key(key)
                .payload(&record.to_json()),
        )
        .map_err(|(e, _)| kafka(e.to_string()))?;
    probe
        .flush(timeout)
        .and_then(|()| probe.abort_transaction(timeout))
        .map_err(|e| kafka(e.to_string()))?;
    Ok(read_position(producer, topic, key, timeout, false)?.position != Some(marker))
}

/// Where a run's position records go: topic, key and what the record says besides the position.
#[derive(Debug, Clone)]
pub struct PositionTarget {
    pub topic: String,
    pub key: String,
    pub slot: String,
    pub timeline: u32,
}

impl PositionTarget {
    pub fn new(offsets: &Offsets, key: String, slot: &str, timeline: u32) -> PositionTarget {
        PositionTarget {
            topic: offsets.topic.clone(),
            key,
            slot: slot.to_string(),
            timeline,
        }
    }
}

impl KafkaSink {
    /// Whether `topic` exists with at least one partition (blocking).
    pub fn topic_exists(&self, topic: &str, timeout: Duration) -> Result<bool, KafkaError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .any(|m| m.name() == topic && m.error().is_none() && !m.partitions().is_empty()))
    }

    /// At-least-once mode: enqueues the position record of `lsn`; its delivery is reported as
    /// `Report::Position`. Never blocks.
    pub fn send_position(&self, target: &PositionTarget, lsn: Lsn) -> Result<(), SendError> {
        let record = OffsetRecord {
            lsn: lsn.to_string(),
            slot: target.slot.clone(),
            timeline: target.timeline,
            transactional_id: String::new(),
        };
        self.enqueue_position(&offsets_record(&target.topic, &target.key, &record), lsn)
    }
}

/// The Kafka record carrying `record` under `key` (either mode), timestamped now.
pub(super) fn offsets_record(topic: &str, key: &str, record: &OffsetRecord) -> OutboxRecord {
    OutboxRecord {
        topic: topic.to_string(),
        partition: None,
        key: Some(bytes::Bytes::copy_from_slice(key.as_bytes())),
        value: Some(record.to_json().into()),
        headers: Vec::new(),
        timestamp_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unreachable_broker_is_not_blamed_on_the_topics_permissions() {
        let e = OffsetsError::Kafka {
            topic: "outboxd-offsets".into(),
            doing: "looking it up",
            error: "Meta data fetch error: OperationTimedOut (Local: Timed out)".into(),
        }
        .to_string();
        assert!(e.contains("Kafka did not answer"), "{e}");
        assert!(!e.contains("grant"), "{e}");
        let e = OffsetsError::Kafka {
            topic: "outboxd-offsets".into(),
            doing: "reading it",
            error: "Broker: Topic authorization failed".into(),
        }
        .to_string();
        assert!(e.contains("grant outboxd READ, WRITE and DESCRIBE"), "{e}");
    }

    use super::*;

    #[test]
    fn side_clients_get_the_producer_settings_but_not_its_transactional_id() {
        let mut p = ClientConfig::new();
        p.set("bootstrap.servers", "k:9092")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.username", "u")
            .set("linger.ms", "5")
            .set("transactional.id", "x");
        let c = client_config(&p);
        assert_eq!(c.get("bootstrap.servers"), Some("k:9092"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("transactional.id"), None);
    }

    #[test]
    fn the_offsets_reader_gets_no_producer_only_settings() {
        let user = std::collections::BTreeMap::from([
            ("bootstrap.servers".to_string(), "k:9092".to_string()),
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ("sasl.username".to_string(), "u".to_string()),
            ("compression.type".to_string(), "zstd".to_string()),
        ]);
        let producer = crate::sink::producer_config(&user, 1000).unwrap();
        let c = consumer_config(&producer);
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        for key in c.config_map().keys() {
            assert!(!PRODUCER_ONLY.contains(key), "{key} left in");
        }
        // What outboxd sets on the producer, and the user's compression, are among them.
        for key in [
            "enable.idempotence",
            "linger.ms",
            "partitioner",
            "compression.type",
        ] {
            assert!(producer.get(key).is_some(), "the producer has {key}");
            assert_eq!(c.get(key), None, "{key}");
        }
    }

    #[test]
    fn a_write_refused_for_good_is_not_retried() {
        let write = |code| OffsetsError::Write {
            topic: "outboxd-offsets".into(),
            lsn: Lsn(16),
            error: KafkaError::MessageProduction(code),
        };
        assert!(!write(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
        assert!(write(RDKafkaErrorCode::MessageTimedOut).is_transient());
        let m = write(RDKafkaErrorCode::TopicAuthorizationFailed).to_string();
        assert!(
            m.contains("0/10") && m.contains("offsets.enabled = false"),
            "{m}"
        );
        let bad = OffsetsError::from(BadRecord {
            topic: "t".into(),
            partition: 0,
            offset: 3,
            message: "x".into(),
        });
        assert!(!bad.is_transient());
    }
}
