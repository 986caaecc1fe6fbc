//! The pipeline: `source → router → sink → checkpoint` in one event loop.
//!
//! ```text
//!  walsender ──XLogData──▶ pgoutput::decode ──▶ Router ──OutboxRecord──▶ KafkaSink ──▶ Kafka
//!      ▲                                           │ seq                     │
//!      │                                           ▼                         │ delivery (seq)
//!      └──── standby status update (flush) ◀── Checkpoint ◀──────────────────┘
//! ```
//!
//! One task owns everything; `tokio::select!` multiplexes, in priority order: shutdown, delivery
//! reports, the status-update timer and the replication stream. The stream is read only while the
//! in-flight caps leave room: that is the backpressure. The timer keeps firing when reading stops, so
//! the server hears from outboxd (and does not time the connection out) however long Kafka takes.
//!
//! A run ends on shutdown (after a bounded flush and a final confirmation) or on an error; the
//! caller ([`run`]) restarts it after transient errors, from the slot's confirmed position.
//!
//! # Layout
//! - this file: [`run`], restarts with backoff, [`PipelineError`];
//! - [`plan`]: the configuration resolved into a [`Plan`] (no I/O);
//! - `start`: one run's start, up to the `Relay`; `tasks`: its side tasks;
//! - `relay`: the event loop; the events it handles, one file a job: `wal` (the replication
//!   stream), `deliveries` (Kafka's reports), `dead_letters` (poison events), `status` (what is
//!   confirmed, position records), `snapshot` (the snapshot feed), `transactions` (exactly-once
//!   glue), `messages` (logical decoding messages), `shutdown`, `replay` (transactions Postgres
//!   sends again that the recorded position covers, not published again), `takeover` (events a
//!   Debezium connector already published, not published again);
//! - `cleanup`: the `[cleanup]` task, beside the relay (which rows may go is `crate::cleanup`).
//!
//! The retriable-vs-permanent Kafka error list is `crate::sink::errors`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::error::KafkaError;
use tokio::sync::watch;

use crate::checkpoint::CheckpointError;
use crate::config::ConfigError;
use crate::convert::ConverterConfigError;
use crate::dead_letter::{ErrorsConfigError, Failure};
use crate::exactly_once::ExactlyOnceError;
use crate::lsn::Lsn;
use crate::metrics::{Health, Metrics};
use crate::position::OffsetsConfigError;
use crate::router::{RouteError, RouterConfigError};
use crate::sink::offsets::OffsetsError;
use crate::sink::{DeliveryFailure, SendError, SinkConfigError};
use crate::source::pgoutput;
use crate::source::setup::SetupError;
use crate::source::SourceError;

mod cleanup;
mod dead_letters;
mod deliveries;
mod messages;
pub mod plan;
mod relay;
mod replay;
mod shutdown;
mod snapshot;
mod start;
mod status;
mod takeover;
mod tasks;
mod transactions;
mod wal;

pub use plan::{Heartbeat, Plan};

use crate::sink::errors::is_permanent_kafka_error;
use relay::Relay;
use start::run_once;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    RouterConfig(#[from] RouterConfigError),
    #[error(transparent)]
    ConverterConfig(#[from] ConverterConfigError),
    #[error(transparent)]
    SinkConfig(#[from] SinkConfigError),
    #[error(transparent)]
    ErrorsConfig(#[from] ErrorsConfigError),
    #[error("setting up the slot and publication: {0}")]
    Setup(#[from] SetupError),
    #[error("Postgres: {0}")]
    Source(#[from] SourceError),
    #[error("the server ended the replication stream")]
    StreamEnded,
    #[error("cannot decode the pgoutput message at {lsn}: {error}")]
    Decode {
        lsn: Lsn,
        error: pgoutput::DecodeError,
    },
    #[error("transaction at {lsn}: {error}")]
    Route { lsn: Lsn, error: RouteError },
    #[error("transaction at {lsn}: {error}; the slot is not confirmed past it (with errors.tolerance = all and errors.deadletterqueue.topic.name, such rows go to a dead-letter topic instead)")]
    Unroutable { lsn: Lsn, error: RouteError },
    #[error(transparent)]
    Rejected(Box<RejectedEvent>),
    #[error(transparent)]
    Message(#[from] messages::MessageError),
    #[error("UPDATE of an outbox row in {table} at {lsn}, and table.op.invalid.behavior = fatal; outbox rows must only be inserted (set table.op.invalid.behavior to warn to ignore updates)")]
    InvalidOperation { table: String, lsn: Lsn },
    #[error("checkpoint: {0} (this is a bug in outboxd; please report it)")]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(
        "{0}; the slot is not confirmed past this event, it will be sent again after the restart"
    )]
    Delivery(DeliveryFailure),
    #[error(transparent)]
    DeadLetter(Box<DeadLetterFailure>),
    #[error("exactly-once: {0}")]
    ExactlyOnce(#[from] ExactlyOnceError),
    #[error(transparent)]
    OffsetsConfig(#[from] OffsetsConfigError),
    #[error(transparent)]
    SlotMissing(Box<crate::position::SlotMissing>),
    /// Debezium's offset could not be used (`[takeover]`).
    #[error("take-over from Debezium: {0}")]
    Takeover(String),
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    #[error("[cleanup]: {0}")]
    Cleanup(String),
}

/// Kafka rejected an event for good and `errors.tolerance` is `none`.
#[derive(Debug, thiserror::Error)]
#[error("Kafka rejected event {event_id} of {table} (transaction at {lsn}) for topic {topic}: {error}; a retry cannot succeed, so outboxd stops without confirming it: {fix}, or set errors.tolerance = all and errors.deadletterqueue.topic.name to send such events to a dead-letter topic", fix = crate::sink::errors::rejection_fix(error))]
pub struct RejectedEvent {
    pub event_id: String,
    pub table: String,
    pub lsn: Lsn,
    pub topic: String,
    pub error: KafkaError,
}

/// The dead-letter record of a poison event could not be written.
#[derive(Debug, thiserror::Error)]
#[error("poison event {event_id} of {table} (transaction at {lsn}) could not be written to the dead-letter topic {topic}: {error}; the slot is not confirmed past it, and it is dead-lettered again after a restart (the dead-letter topic must exist or be auto-created, be writable by outboxd and accept records of this size)")]
pub struct DeadLetterFailure {
    pub event_id: String,
    pub table: String,
    pub lsn: Lsn,
    pub topic: String,
    pub error: KafkaError,
}

impl PipelineError {
    /// Whether the slot is held by another process (SQLSTATE 55006): another instance is active.
    pub fn is_slot_in_use(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.code() == Some("55006"),
            PipelineError::Setup(e) => e.is_object_in_use(),
            _ => false,
        }
    }

    /// Whether a restart from the slot may succeed (as opposed to a problem an operator must fix).
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Setup(e) => e.is_transient(),
            PipelineError::Source(e) => e.is_transient(),
            PipelineError::StreamEnded => true,
            PipelineError::Delivery(f) => !is_permanent_kafka_error(&f.error),
            PipelineError::DeadLetter(f) => !is_permanent_kafka_error(&f.error),
            PipelineError::ExactlyOnce(e) => e.is_transient(),
            PipelineError::Offsets(e) => e.is_transient(),
            PipelineError::Send(SendError::Transaction(e)) => e.is_transient(),
            _ => false,
        }
    }
}

/// Runs until shutdown is signalled (`Ok`) or a non-transient error; transient errors restart the
/// run from the slot after an exponential backoff with jitter. With `[cleanup]`, its task runs
/// beside the relay for as long (a table it cannot clean up stops both).
pub async fn run(
    plan: &Plan,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(), PipelineError> {
    let Some(settings) = plan.cleanup.clone() else {
        return run_relay(plan, shutdown, metrics, health).await;
    };
    let mut cleanup = tokio::spawn(cleanup::run_cleanup(
        plan.params.clone(),
        settings,
        metrics.clone(),
    ));
    let result = tokio::select! {
        result = run_relay(plan, shutdown, metrics, health) => result,
        stopped = &mut cleanup => Err(stopped.unwrap_or_else(|e| PipelineError::Cleanup(format!("the cleanup task ended: {e}")))),
    };
    cleanup.abort();
    result
}

/// [`run`] without the cleanup.
async fn run_relay(
    plan: &Plan,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(), PipelineError> {
    let mut attempt: u32 = 0;
    let mut standing_by = false;
    let mut poison = PoisonEvents::default();
    loop {
        let started = Instant::now();
        let result = run_once(plan, &mut shutdown, &metrics, &health, &mut poison).await;
        health.set_streaming(false);
        let err = match result {
            Ok(()) => return Ok(()),
            Err(e) if !e.is_transient() || *shutdown.borrow() => return Err(e),
            Err(e) => e,
        };
        let delay = if err.is_slot_in_use() {
            // Another instance (or the walsender of a predecessor that just died) holds the slot:
            // a passive standby. Retry at a short, steady interval so it takes over within seconds
            // of the active one's death; this is waiting, not a failure.
            let delay = jittered(STANDBY_RETRY_MS);
            if !standing_by {
                tracing::info!(
                    slot = %plan.setup.slot,
                    retry_every_ms = STANDBY_RETRY_MS,
                    "standing by: {err}"
                );
            } else {
                tracing::debug!(slot = %plan.setup.slot, "still standing by: {err}");
            }
            standing_by = true;
            attempt = 0;
            delay
        } else {
            standing_by = false;
            // A run that lasted a while was healthy: start the backoff over.
            if started.elapsed() > Duration::from_secs(10) {
                attempt = 0;
            }
            attempt += 1;
            let delay = backoff(attempt);
            metrics.reconnects.inc();
            tracing::warn!(
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                "restarting after a transient error: {err}"
            );
            delay
        };
        let wait_until = tokio::time::Instant::now() + delay;
        loop {
            health.beat();
            tokio::select! {
                _ = tokio::time::sleep_until(wait_until) => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
}

/// Exactly-once mode: events Kafka rejected for good in a delivery report, by (commit LSN of
/// their transaction, event id), with why. Such a rejection dooms the whole Kafka transaction, so
/// with a dead-letter topic the run restarts (the transaction is aborted) and, on the replay,
/// these events go straight to the dead-letter topic. Kept across restarts of one process; a new
/// process meets the rejection again and does the same.
#[derive(Debug, Default)]
pub struct PoisonEvents(std::collections::HashMap<(Lsn, String), Failure>);

/// How often a standby (the slot is held by another process) tries to take the slot, ±25 %.
const STANDBY_RETRY_MS: u64 = 2_000;

/// 0.5 s doubling up to 30 s, with ±25 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(30_000);
    jittered(base)
}

/// `ms` milliseconds ±25 %.
fn jittered(ms: u64) -> Duration {
    let jitter = rand::thread_rng().gen_range(0.75..1.25);
    Duration::from_millis((ms as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::errors::kafka_failure;
    use rdkafka::error::RDKafkaErrorCode;

    #[test]
    fn permanent_and_transient_errors_are_told_apart() {
        let delivery = |code| {
            PipelineError::Delivery(DeliveryFailure {
                topic: "t".into(),
                error: KafkaError::MessageProduction(code),
                record: None,
            })
        };
        assert!(!delivery(RDKafkaErrorCode::MessageSizeTooLarge).is_transient());
        assert!(!delivery(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
        assert!(delivery(RDKafkaErrorCode::MessageTimedOut).is_transient());
        assert!(PipelineError::StreamEnded.is_transient());
        let server = |code: &str| {
            PipelineError::Source(SourceError::Server(Box::new(crate::source::ServerError {
                severity: "ERROR".into(),
                code: code.into(),
                message: "replication slot \"outboxd\" is active for PID 42".into(),
                detail: None,
                hint: None,
            })))
        };
        assert!(server("55006").is_transient() && server("55006").is_slot_in_use());
        assert!(server("57P01").is_transient() && !server("57P01").is_slot_in_use());
        assert!(!PipelineError::StreamEnded.is_slot_in_use());
        assert!(!PipelineError::InvalidOperation {
            table: "t".into(),
            lsn: Lsn(1)
        }
        .is_transient());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..50 {
            let d = jittered(STANDBY_RETRY_MS).as_millis() as u64;
            assert!((1500..=2500).contains(&d), "standby retry {d} ms");
        }
        for attempt in 1..20 {
            let d = backoff(attempt).as_millis() as u64;
            let base = (500u64 << (attempt - 1).min(6)).min(30_000);
            assert!(
                d >= base * 3 / 4 && d <= base * 5 / 4,
                "attempt {attempt}: {d} ms"
            );
        }
    }

    #[test]
    fn kafka_rejections_are_described_for_the_dead_letter_queue() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let f = kafka_failure("outbox.event.Order", &too_large);
        assert_eq!(f.reason, "message_size_too_large");
        assert_eq!(
            f.exception_class,
            "outboxd.kafka.MessageSizeTooLargeException"
        );
        assert_eq!(f.topic.as_deref(), Some("outbox.event.Order"));
        assert!(f.message.contains("too large"), "{}", f.message);
        let auth = kafka_failure(
            "t",
            &KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        assert_eq!(auth.reason, "topic_authorization_failed");
        let other = kafka_failure("t", &KafkaError::Canceled);
        assert_eq!(other.reason, "kafka_error");
        assert_eq!(other.exception_class, "outboxd.kafka.KafkaException");
        // A failed dead-letter write stops the relay only when a restart cannot help.
        let dead_letter = |code| {
            PipelineError::DeadLetter(Box::new(DeadLetterFailure {
                event_id: "e".into(),
                table: "public.outbox".into(),
                lsn: Lsn(1),
                topic: "dlq".into(),
                error: KafkaError::MessageProduction(code),
            }))
        };
        assert!(!dead_letter(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
        assert!(dead_letter(RDKafkaErrorCode::MessageTimedOut).is_transient());
        // Without a dead-letter topic, the error names the event and the way out.
        let rejected = PipelineError::Rejected(Box::new(RejectedEvent {
            event_id: "e".into(),
            table: "public.outbox".into(),
            lsn: Lsn(1),
            topic: "t".into(),
            error: too_large,
        }));
        assert!(!rejected.is_transient());
        let message = rejected.to_string();
        assert!(
            message.contains("event e of public.outbox (transaction at 0/1)")
                && message.contains("raise message.max.bytes")
                && message.contains("errors.tolerance = all"),
            "{message}"
        );
        let missing = PipelineError::Rejected(Box::new(RejectedEvent {
            event_id: "e".into(),
            table: "public.outbox".into(),
            lsn: Lsn(1),
            topic: "t".into(),
            error: KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
        }));
        assert!(!missing.is_transient());
        assert!(
            missing.to_string().contains("create the topic"),
            "{missing}"
        );
        let message = dead_letter(RDKafkaErrorCode::TopicAuthorizationFailed).to_string();
        assert!(
            message.contains("poison event e of public.outbox (transaction at 0/1)")
                && message.contains("dead-letter topic dlq"),
            "{message}"
        );
    }
}
