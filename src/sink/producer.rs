//! The Kafka producer: enqueue in WAL order, report deliveries asynchronously.
//!
//! Built on rdkafka's `ThreadedProducer` (a background thread polls librdkafka). Each record carries
//! a [`SendTag`] (its checkpoint sequence number and where it comes from) as the delivery opaque;
//! the delivery callback forwards `(tag, outcome)` over an unbounded channel to the pipeline
//! ([`Report`]; position records of at-least-once mode are reported there too), with a
//! copy of the record when it failed (for the dead-letter queue). The channel is bounded in practice by
//! the pipeline's in-flight cap. `send` never waits for an acknowledgement.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;

use crate::checkpoint::Seq;
use crate::dead_letter::DeadLetterTag;
use crate::lsn::Lsn;
use crate::metrics::{Health, Metrics};
use crate::router::OutboxRecord;

/// What travels with a record through librdkafka and comes back with its delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTag {
    /// The event's checkpoint sequence number.
    pub seq: Seq,
    /// The pgoutput relation the event's row belongs to.
    pub relation_id: u32,
    /// The commit LSN of the event's transaction.
    pub commit_lsn: Lsn,
    /// `Some` for the dead-letter record of a poison event.
    pub dead_letter: Option<DeadLetterTag>,
}

/// What the delivery callback sends to the pipeline.
#[derive(Debug)]
pub enum Report {
    /// An event's (or a dead-letter record's) delivery.
    Event(Delivery),
    /// At-least-once mode: the delivery of the position record of `lsn` (`sink::offsets`).
    Position {
        lsn: Lsn,
        outcome: Result<(), KafkaError>,
    },
}

/// What the delivery callback reports for one record.
#[derive(Debug)]
pub struct Delivery {
    pub tag: SendTag,
    /// The size the record was counted with against the in-flight byte cap.
    pub bytes: u64,
    pub outcome: Result<(i32, i64), DeliveryFailure>,
}

/// Kafka gave up on a record.
#[derive(Debug, thiserror::Error)]
#[error("Kafka did not accept the record for topic {topic}: {error}")]
pub struct DeliveryFailure {
    pub topic: String,
    pub error: KafkaError,
    /// The record as it was sent (topic, partition, key, value, headers, timestamp).
    pub record: Option<Box<OutboxRecord>>,
}

/// Enqueueing failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    #[error("cannot enqueue a record for topic {topic}: {error}")]
    Enqueue { topic: String, error: KafkaError },
    #[error(transparent)]
    Transaction(#[from] crate::exactly_once::ExactlyOnceError),
}

/// The opaque carried through librdkafka with each record.
pub struct Tag {
    kind: TagKind,
    bytes: u64,
}

/// Whose record it is.
enum TagKind {
    Event(SendTag),
    /// A position record of at-least-once mode.
    Position(Lsn),
    /// The exactly-once offsets record: no delivery report (a failure surfaces as the failed
    /// commit).
    Unreported,
}

/// Forwards delivery reports (and counts them), and librdkafka's log lines.
pub struct SinkContext {
    deliveries: mpsc::UnboundedSender<Report>,
    pub(super) metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// librdkafka's log line, through `tracing`.
fn log_librdkafka(level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
    use rdkafka::config::RDKafkaLogLevel::*;
    // Errors and warnings repeat on every retry of every client during an outage: one line per
    // cause, with back-off (`sink::repeats`).
    let admit = || super::repeats::admit(&format!("{fac}: {log_message}"));
    match level {
        Emerg | Alert | Critical | Error => {
            if let Some(n) = admit() {
                let more = super::repeats::held_back_note(n);
                tracing::error!(target: "librdkafka", "{fac}: {log_message}{more}")
            }
        }
        Warning => {
            if let Some(n) = admit() {
                let more = super::repeats::held_back_note(n);
                tracing::warn!(target: "librdkafka", "{fac}: {log_message}{more}")
            }
        }
        Notice | Info => tracing::info!(target: "librdkafka", "{fac}: {log_message}"),
        Debug => tracing::debug!(target: "librdkafka", "{fac}: {log_message}"),
    }
}

/// A client error of librdkafka's (retried by librdkafka itself): one line per cause, with
/// back-off, so that an outage reads as one line repeated now and then.
fn warn_once_per_cause(error: &KafkaError, reason: &str) {
    if let Some(n) = super::repeats::admit(&format!("{error}: {reason}")) {
        let more = super::repeats::held_back_note(n);
        tracing::warn!(target: "librdkafka", "{error}: {reason}{more}");
    }
}

/// The context of outboxd's side clients (offsets topic reader, admin client, probes): their
/// librdkafka log lines and errors go to outboxd's log like the producer's.
pub struct SideContext;

impl ClientContext for SideContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The offsets reader reads to the end of the topic on purpose: reaching it is no error.
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            tracing::debug!(target: "librdkafka", "{error}: {reason}");
        } else {
            warn_once_per_cause(&error, reason);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for SideContext {}

impl ProducerContext for SideContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Transient connection errors are retried by librdkafka; deliveries report what matters.
        warn_once_per_cause(&error, reason);
        // Readiness: no broker to talk to, or refused credentials.
        if matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
            )
        ) {
            self.health.kafka_unreachable(format!("{error}: {reason}"));
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Box<Tag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag>) {
        if result.is_ok() {
            self.health.kafka_reachable();
        }
        let send_tag = match tag.kind {
            TagKind::Event(send_tag) => send_tag,
            TagKind::Position(lsn) => {
                let outcome = result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone());
                let _ = self.deliveries.send(Report::Position { lsn, outcome });
                return;
            }
            TagKind::Unreported => return,
        };
        let outcome = match result {
            Ok(msg) => {
                let topic = msg.topic();
                self.metrics
                    .events_published
                    .with_label_values(&[topic])
                    .inc();
                let bytes = msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len);
                self.metrics
                    .bytes_published
                    .with_label_values(&[topic])
                    .inc_by(bytes as u64);
                // The record's timestamp is the transaction's commit time.
                if let Some(commit_ms) = msg.timestamp().to_millis() {
                    let now_ms = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    self.metrics
                        .commit_to_ack_seconds
                        .observe((now_ms - commit_ms).max(0) as f64 / 1000.0);
                }
                Ok((msg.partition(), msg.offset()))
            }
            Err((error, msg)) => {
                self.metrics
                    .events_failed
                    .with_label_values(&[msg.topic()])
                    .inc();
                Err(DeliveryFailure {
                    topic: msg.topic().to_string(),
                    error: error.clone(),
                    record: Some(Box::new(OutboxRecord {
                        topic: msg.topic().to_string(),
                        partition: Some(msg.partition()).filter(|p| *p >= 0),
                        key: msg.key().map(bytes::Bytes::copy_from_slice),
                        value: msg.payload().map(bytes::Bytes::copy_from_slice),
                        headers: msg
                            .headers()
                            .map(|hs| {
                                hs.iter()
                                    .map(|h| {
                                        (
                                            h.key.to_string(),
                                            h.value.map(bytes::Bytes::copy_from_slice),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
                    })),
                })
            }
        };
        // The receiver is gone only when the pipeline has stopped; nothing left to confirm then.
        let _ = self.deliveries.send(Report::Event(Delivery {
            tag: send_tag,
            bytes: tag.bytes,
            outcome,
        }));
    }
}

/// The producer. Dropping it purges whatever was not delivered (nothing is confirmed for those).
pub struct KafkaSink {
    pub(super) producer: ThreadedProducer<SinkContext>,
    /// Exactly-once mode: the producer is transactional (see `sink::transactional`).
    pub(super) txn: Option<super::transactional::TxnState>,
}

impl KafkaSink {
    /// Creates the producer; delivery reports arrive on the returned receiver.
    pub fn new(
        config: &ClientConfig,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<(KafkaSink, mpsc::UnboundedReceiver<Report>), SendError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let producer = config
            .create_with_context(SinkContext {
                deliveries: tx,
                metrics,
                health,
            })
            .map_err(SendError::Create)?;
        let txn = config
            .get("transactional.id")
            .map(super::transactional::TxnState::new);
        Ok((KafkaSink { producer, txn }, rx))
    }

    /// Enqueues one record (to its explicit partition when it has one, else to the one the
    /// partitioner picks from the key); its delivery is reported later with `tag`. Never blocks.
    pub fn send(&self, record: &OutboxRecord, tag: SendTag) -> Result<(), SendError> {
        self.begin_if_needed()?;
        self.enqueue(record, TagKind::Event(tag))
            .map_err(|e| self.fenced_or(e))?;
        if let Some(txn) = &self.txn {
            txn.event_sent();
        }
        Ok(())
    }

    /// Enqueues outboxd's own record, whose delivery is not reported (exactly-once offsets).
    pub(super) fn enqueue_unreported(&self, record: &OutboxRecord) -> Result<(), SendError> {
        self.enqueue(record, TagKind::Unreported)
    }

    /// Enqueues the position record of `lsn`, reported as [`Report::Position`].
    pub(super) fn enqueue_position(
        &self,
        record: &OutboxRecord,
        lsn: Lsn,
    ) -> Result<(), SendError> {
        self.enqueue(record, TagKind::Position(lsn))
    }

    fn enqueue(&self, record: &OutboxRecord, kind: TagKind) -> Result<(), SendError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let tag = Box::new(Tag {
            kind,
            bytes: record.size(),
        });
        let mut base: BaseRecord<'_, [u8], [u8], Box<Tag>> =
            BaseRecord::with_opaque_to(&record.topic, tag)
                .headers(headers)
                .timestamp(record.timestamp_ms);
        if let Some(key) = &record.key {
            base = base.key(key.as_ref());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_ref());
        }
        if let Some(partition) = record.partition {
            base = base.partition(partition);
        }
        self.producer
            .send(base)
            .map_err(|(error, _)| SendError::Enqueue {
                topic: record.topic.clone(),
                error,
            })
    }

    /// Whether the brokers answer a metadata request within `timeout` (blocking: call it from
    /// `spawn_blocking`).
    pub fn brokers_answer(&self, timeout: Duration) -> bool {
        self.producer.client().fetch_metadata(None, timeout).is_ok()
    }

    /// Records enqueued and not yet reported.
    pub fn queued(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every enqueued record to be reported (blocking: call it from
    /// `spawn_blocking`). Returns whether everything was reported in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        match self.producer.flush(timeout) {
            Ok(()) => true,
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => false,
            Err(_) => self.producer.in_flight_count() == 0,
        }
    }

    /// Drops everything not yet delivered; those records fail with a purge error.
    pub fn purge(&self) {
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
    }
}
