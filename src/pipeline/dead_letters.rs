//! Poison events in the relay: a row the router refused, or a record Kafka rejected for good,
//! sent to the dead-letter topic under the event's own sequence number (so the event counts as
//! acknowledged only once its dead-letter record is), logged, never silent.
//!
//! Owns sending dead-letter records; the records themselves are built by `crate::dead_letter`.

use super::relay::Relay;
use super::DeadLetterFailure;
use super::PipelineError;
use crate::dead_letter::{self, DeadLetterTag, Failure};
use crate::router::{OutboxRecord, RawRow, RouteError};
use crate::sink::errors::is_size_error;
use crate::sink::{SendError, SendTag};
use crate::source::pgoutput;

impl Relay<'_> {
    /// A row the router refused, with `errors.tolerance = all`: its raw key, payload and id go to
    /// the dead-letter topic, under a sequence number of its own like any event.
    pub(super) fn dead_letter_unroutable(
        &mut self,
        relation_id: u32,
        row: &pgoutput::TupleData,
        error: RouteError,
    ) -> Result<(), PipelineError> {
        let Some(raw) = self.router.raw_row(relation_id, row) else {
            return Err(PipelineError::Route {
                lsn: self.final_lsn,
                error,
            });
        };
        self.dead_letter_raw(relation_id, raw, error)
    }

    /// Dead-letters the raw fields of an event the router refused (a row's or a message's).
    pub(super) fn dead_letter_raw(
        &mut self,
        relation_id: u32,
        raw: RawRow,
        error: RouteError,
    ) -> Result<(), PipelineError> {
        let tag = SendTag {
            seq: self.checkpoint.next_seq()?,
            relation_id,
            commit_lsn: self.final_lsn,
            dead_letter: None,
        };
        self.metrics
            .events_read
            .with_label_values(&[&raw.table])
            .inc();
        let original = OutboxRecord {
            topic: raw.topic.clone().unwrap_or_default(),
            partition: None,
            key: raw.key,
            value: raw.payload,
            headers: vec![("id".into(), raw.id)],
            timestamp_ms: (self.commit_time_us + pgoutput::PG_EPOCH_UNIX_US).div_euclid(1000),
        };
        self.dead_letter(
            tag,
            &original,
            Failure::unroutable(error.to_string(), raw.topic),
        )?;
        self.update_in_flight_gauges();
        Ok(())
    }

    /// Sends the dead-letter record of the poison event `tag` (whose record, or raw row, is
    /// `original`) under the event's own sequence number: the event is acknowledged only when its
    /// dead-letter record is. Logs it (never silent).
    pub(super) fn dead_letter(
        &mut self,
        tag: SendTag,
        original: &OutboxRecord,
        failure: Failure,
    ) -> Result<(), PipelineError> {
        let policy = &self.plan.errors;
        let Some(topic) = policy.dead_letter_topic() else {
            unreachable!("poison events are dead-lettered only with errors.tolerance = all");
        };
        let table = self
            .router
            .outbox_table(tag.relation_id)
            .unwrap_or("?")
            .to_string();
        let event_id = dead_letter::event_id(original);
        let source = dead_letter::Source {
            table: &table,
            commit_lsn: tag.commit_lsn,
        };
        let record = dead_letter::dead_letter_record(policy, topic, original, &failure, &source);
        let content = policy.log_include_messages.then(|| {
            format!(
                "key={} value={}",
                dead_letter::preview(original.key.as_ref(), 1024),
                dead_letter::preview(original.value.as_ref(), 1024)
            )
        });
        let lsn = tag.commit_lsn;
        let reason = failure.reason;
        if policy.log_enable {
            tracing::error!(event_id, %table, %lsn, reason, dead_letter_topic = topic, record = content, "poison event sent to the dead-letter topic: {}", failure.message);
        } else {
            tracing::warn!(event_id, %table, %lsn, reason, dead_letter_topic = topic, record = content, "poison event sent to the dead-letter topic: {}", failure.message);
        }
        let tag = SendTag {
            dead_letter: Some(DeadLetterTag {
                reason,
                value_omitted: false,
            }),
            ..tag
        };
        self.send_dead_letter(record, tag, &event_id, &table)
    }

    /// Enqueues a dead-letter record; when librdkafka refuses it as too large, sends it again
    /// without its value (saying so in a header and in the log).
    pub(super) fn send_dead_letter(
        &mut self,
        record: OutboxRecord,
        tag: SendTag,
        event_id: &str,
        table: &str,
    ) -> Result<(), PipelineError> {
        let Some(dl) = tag.dead_letter else {
            unreachable!("dead-letter records are tagged as such");
        };
        if dl.value_omitted {
            tracing::warn!(event_id, %table, lsn = %tag.commit_lsn, dead_letter_topic = %record.topic, "the poison event's value is too large for the dead-letter topic too: its dead-letter record carries no value, and header {} gives the value's size", dead_letter::HEADER_VALUE_OMITTED);
        }
        match self.sink.send(&record, tag) {
            Ok(()) => {
                self.in_flight_bytes += record.size();
                Ok(())
            }
            Err(SendError::Enqueue { error, .. }) if is_size_error(&error) && !dl.value_omitted => {
                match dead_letter::without_value(&record) {
                    Some(smaller) => {
                        let tag = SendTag {
                            dead_letter: Some(DeadLetterTag {
                                value_omitted: true,
                                ..dl
                            }),
                            ..tag
                        };
                        self.send_dead_letter(smaller, tag, event_id, table)
                    }
                    None => Err(PipelineError::DeadLetter(Box::new(DeadLetterFailure {
                        event_id: event_id.to_string(),
                        table: table.to_string(),
                        lsn: tag.commit_lsn,
                        topic: record.topic,
                        error,
                    }))),
                }
            }
            Err(SendError::Enqueue { error, topic }) => {
                Err(PipelineError::DeadLetter(Box::new(DeadLetterFailure {
                    event_id: event_id.to_string(),
                    table: table.to_string(),
                    lsn: tag.commit_lsn,
                    topic,
                    error,
                })))
            }
            Err(e) => Err(e.into()),
        }
    }
}
