//! Delivery reports in the relay: an acknowledged event moves the checkpoint; a permanent
//! rejection stops the run or, with `errors.tolerance = all`, sends the event to the dead-letter
//! topic (in exactly-once mode: aborts and replays its transaction); a transient failure stops
//! the run, which restarts from the slot.
//!
//! Owns what a report does to the relay's state; the classification of Kafka errors is
//! `sink::errors`', the dead-letter records `dead_letters`'.

use rdkafka::error::KafkaError;

use super::relay::Relay;
use super::PipelineError;
use super::{DeadLetterFailure, RejectedEvent};
use crate::dead_letter::{self, DeadLetterTag};
use crate::exactly_once::ExactlyOnceError;
use crate::router::OutboxRecord;
use crate::sink::errors::{is_permanent_kafka_error, is_size_error, kafka_failure};
use crate::sink::{Delivery, Report, SendTag};

impl Relay<'_> {
    pub(super) fn on_report(&mut self, report: Report) -> Result<(), PipelineError> {
        match report {
            Report::Event(delivery) => self.on_delivery(delivery),
            Report::Position { lsn, outcome } => self.on_position_record(lsn, outcome),
        }
    }

    /// [`on_report`](Self::on_report), then, where it shortens the wait for the confirmation
    /// without adding records under load: when the last event in flight was acknowledged, the
    /// position is recorded at once (not at the next 100 ms check); when a position record was
    /// acknowledged, the status update follows at once. At the end of a burst or a backlog the
    /// slot is then confirmed one record's round trip after the last acknowledgement, instead of
    /// up to two checks later.
    pub(super) async fn on_report_and_confirm(
        &mut self,
        report: Report,
    ) -> Result<(), PipelineError> {
        let position = matches!(report, Report::Position { .. });
        self.on_report(report)?;
        if position {
            self.send_status_if_due().await
        } else if self.checkpoint.in_flight() == 0 {
            self.record_position()
        } else {
            Ok(())
        }
    }

    pub(super) fn on_delivery(&mut self, delivery: Delivery) -> Result<(), PipelineError> {
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(delivery.bytes);
        let tag = delivery.tag;
        match (delivery.outcome, tag.dead_letter) {
            // Published/failed counters and latency are counted by the sink's delivery callback.
            (Ok(_), dead_letter) => {
                if let Some(dl) = dead_letter {
                    let table = self.router.outbox_table(tag.relation_id).unwrap_or("?");
                    self.metrics
                        .events_dead_lettered
                        .with_label_values(&[table, dl.reason])
                        .inc();
                }
                // A poison event is acknowledged by its dead-letter record (same sequence number).
                self.checkpoint.ack(tag.seq)?;
                self.update_in_flight_gauges();
                Ok(())
            }
            // Kafka rejected an event for good: it goes to the dead-letter topic if tolerated.
            (Err(failure), None)
                if is_permanent_kafka_error(&failure.error)
                    && self.plan.errors.dead_letter_topic().is_some() =>
            {
                let Some(record) = &failure.record else {
                    return Err(PipelineError::Delivery(failure));
                };
                let reason = kafka_failure(&failure.topic, &failure.error);
                if self.sink.is_transactional() {
                    // The Kafka transaction cannot commit now: abort it (restart) and send the
                    // event to the dead-letter topic on the replay.
                    let event_id = dead_letter::event_id(record);
                    tracing::warn!(event_id, lsn = %tag.commit_lsn, topic = %failure.topic, "exactly-once: Kafka rejected an event for good ({}); its Kafka transaction is aborted and sent again, with this event going to the dead-letter topic", failure.error);
                    self.poison
                        .0
                        .insert((tag.commit_lsn, event_id.clone()), reason);
                    return Err(PipelineError::ExactlyOnce(ExactlyOnceError::Kafka {
                        doing: "a delivery report",
                        error: format!("event {event_id} rejected for topic {} ({}); replaying its transaction with the event dead-lettered", failure.topic, failure.error),
                        fatal: false,
                    }));
                }
                self.dead_letter(tag, record, reason)?;
                self.update_in_flight_gauges();
                Ok(())
            }
            (Err(failure), None) if is_permanent_kafka_error(&failure.error) => {
                let Some(record) = &failure.record else {
                    return Err(PipelineError::Delivery(failure));
                };
                Err(self.rejected(tag, record, failure.topic.clone(), failure.error))
            }
            (Err(failure), None) => Err(PipelineError::Delivery(failure)),
            // The dead-letter record itself failed.
            (Err(failure), Some(dl)) => {
                let table = self
                    .router
                    .outbox_table(tag.relation_id)
                    .unwrap_or("?")
                    .to_string();
                let event_id = failure
                    .record
                    .as_deref()
                    .map_or_else(|| "?".into(), dead_letter::event_id);
                if is_size_error(&failure.error) && !dl.value_omitted {
                    if let Some(smaller) = failure
                        .record
                        .as_deref()
                        .and_then(dead_letter::without_value)
                    {
                        let tag = SendTag {
                            dead_letter: Some(DeadLetterTag {
                                value_omitted: true,
                                ..dl
                            }),
                            ..tag
                        };
                        self.send_dead_letter(smaller, tag, &event_id, &table)?;
                        self.update_in_flight_gauges();
                        return Ok(());
                    }
                }
                Err(PipelineError::DeadLetter(Box::new(DeadLetterFailure {
                    event_id,
                    table,
                    lsn: tag.commit_lsn,
                    topic: failure.topic,
                    error: failure.error,
                })))
            }
        }
    }

    /// The error for an event Kafka rejected for good, when poison events are not tolerated.
    pub(super) fn rejected(
        &self,
        tag: SendTag,
        record: &OutboxRecord,
        topic: String,
        error: KafkaError,
    ) -> PipelineError {
        PipelineError::Rejected(Box::new(RejectedEvent {
            event_id: dead_letter::event_id(record),
            table: self
                .router
                .outbox_table(tag.relation_id)
                .unwrap_or("?")
                .to_string(),
            lsn: tag.commit_lsn,
            topic,
            error,
        }))
    }

    pub(super) fn update_in_flight_gauges(&self) {
        self.metrics
            .events_in_flight
            .set(self.checkpoint.in_flight() as i64);
        self.metrics
            .bytes_in_flight
            .set(self.in_flight_bytes as i64);
    }
}
