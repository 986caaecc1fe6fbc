//! The replication stream's messages in the relay: keepalives, and each decoded pgoutput message
//! (Begin, Commit, Relation, Insert, Update, Delete, Truncate, logical messages) into the
//! checkpoint and the router, and a routed event sent under the next sequence number.
//!
//! Owns the WAL side of the relay; what comes back from Kafka is `deliveries`'.

use std::time::Instant;

use super::relay::Relay;
use super::PipelineError;
use crate::dead_letter;
use crate::lsn::Lsn;
use crate::router::{InvalidOpBehavior, RouteError, Routed};
use crate::sink::errors::{is_permanent_kafka_error, kafka_failure};
use crate::sink::{SendError, SendTag};
use crate::source::connection::ReplicationMessage;
use crate::source::pgoutput::{self, Message};

impl Relay<'_> {
    pub(super) async fn on_message(
        &mut self,
        message: ReplicationMessage,
    ) -> Result<(), PipelineError> {
        self.liveness.heard(Instant::now());
        match message {
            ReplicationMessage::XLogData {
                wal_start,
                wal_end,
                data,
                ..
            } => {
                self.received = self.received.max(wal_end);
                let message = pgoutput::decode(data).map_err(|error| PipelineError::Decode {
                    lsn: wal_start,
                    error,
                })?;
                self.on_pgoutput(message, wal_start)
            }
            ReplicationMessage::Keepalive {
                wal_end,
                reply_requested,
                ..
            } => {
                self.received = self.received.max(wal_end);
                self.checkpoint.keepalive(wal_end);
                if reply_requested {
                    self.send_status(true).await?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn on_pgoutput(
        &mut self,
        message: Message,
        wal_start: Lsn,
    ) -> Result<(), PipelineError> {
        if self.skip_published(&message) {
            return Ok(());
        }
        match message {
            Message::Begin(begin) => {
                self.takeover_boundary(Some(begin.final_lsn), begin.xid);
                self.checkpoint.begin()?;
                self.commit_time_us = begin.commit_time_us;
                self.final_lsn = begin.final_lsn;
                self.xid = begin.xid;
                self.begin_lsn = wal_start;
            }
            Message::Commit(commit) => {
                self.takeover_boundary(None, self.xid);
                self.pg_commit(commit.end_lsn);
                self.checkpoint.commit(commit.end_lsn)?
            }
            Message::Relation(relation) => {
                self.router
                    .on_relation(&relation)
                    .map_err(|error| PipelineError::Route {
                        lsn: wal_start,
                        error,
                    })?;
            }
            Message::Insert(insert) => {
                if self.taken_over(insert.relation_id, wal_start) {
                    return Ok(());
                }
                let at = crate::router::ChangePosition {
                    commit_time_us: self.commit_time_us,
                    xid: Some(self.xid),
                    lsn: Some(wal_start),
                    begin_lsn: Some(self.begin_lsn),
                };
                let routed = match self
                    .router
                    .route_insert_at(insert.relation_id, &insert.new, &at)
                {
                    Ok(routed) => routed,
                    // A row that cannot be routed is a poison event (a table the router cannot
                    // handle is not: that stops the relay whatever the tolerance).
                    Err(error @ RouteError::BadRow { .. })
                        if self.plan.errors.dead_letter_topic().is_some() =>
                    {
                        return self.dead_letter_unroutable(insert.relation_id, &insert.new, error);
                    }
                    Err(error @ RouteError::BadRow { .. }) => {
                        return Err(PipelineError::Unroutable {
                            lsn: self.final_lsn,
                            error,
                        })
                    }
                    Err(error) => {
                        return Err(PipelineError::Route {
                            lsn: self.final_lsn,
                            error,
                        })
                    }
                };
                if let Some(routed) = routed {
                    if self.published_by_debezium(insert.relation_id, &routed.record) {
                        return Ok(());
                    }
                    self.send_routed(insert.relation_id, routed)?;
                }
            }
            Message::Update(update) => {
                if let Some(table) = self.router.outbox_table(update.relation_id) {
                    self.metrics
                        .changes_ignored
                        .with_label_values(&[table, "update"])
                        .inc();
                    let lsn = self.final_lsn;
                    match self.router.options().op_invalid_behavior {
                        InvalidOpBehavior::Warn => {
                            tracing::warn!(%table, %lsn, "UPDATE of an outbox row ignored: outbox rows are events and should only be inserted")
                        }
                        InvalidOpBehavior::Error => {
                            tracing::error!(%table, %lsn, "UPDATE of an outbox row ignored: outbox rows are events and should only be inserted")
                        }
                        InvalidOpBehavior::Fatal => {
                            return Err(PipelineError::InvalidOperation {
                                table: table.to_string(),
                                lsn,
                            })
                        }
                    }
                }
            }
            Message::Delete(delete) => {
                // Deleting published (or just inserted) outbox rows is the normal clean-up.
                if let Some(table) = self.router.outbox_table(delete.relation_id) {
                    self.metrics
                        .changes_ignored
                        .with_label_values(&[table, "delete"])
                        .inc();
                    tracing::trace!(%table, "DELETE of an outbox row ignored");
                }
            }
            Message::Truncate(truncate) => {
                for id in &truncate.relation_ids {
                    if let Some(table) = self.router.outbox_table(*id) {
                        tracing::info!(%table, "outbox table truncated (nothing to publish)");
                    }
                }
            }
            Message::LogicalMessage(message) => self.on_logical_message(message)?,
            Message::Origin(_) | Message::Type(_) => {}
        }
        Ok(())
    }

    /// Sends a routed event (a row's or a message's, `relation_id` names its table or prefix)
    /// under the next sequence number.
    pub(super) fn send_routed(
        &mut self,
        relation_id: u32,
        routed: Routed,
    ) -> Result<(), PipelineError> {
        // Published, but not as Debezium would have (or not as the row asked): say so.
        for warning in &routed.warnings {
            tracing::warn!(kind = warning.kind, lsn = %self.final_lsn, "{warning}");
        }
        let record = routed.record;
        let tag = SendTag {
            seq: self.checkpoint.next_seq()?,
            relation_id,
            commit_lsn: self.final_lsn,
            dead_letter: None,
        };
        if let Some(table) = self.router.outbox_table(relation_id) {
            self.metrics.events_read.with_label_values(&[table]).inc();
        }
        if !self.poison.0.is_empty() {
            let key = (self.final_lsn, dead_letter::event_id(&record));
            if let Some(failure) = self.poison.0.get(&key).cloned() {
                self.dead_letter(tag, &record, failure)?;
                self.update_in_flight_gauges();
                return Ok(());
            }
        }
        match self.sink.send(&record, tag) {
            Ok(()) => self.in_flight_bytes += record.size(),
            // librdkafka refuses some records already when they are enqueued (larger
            // than message.max.bytes): a poison event too.
            Err(SendError::Enqueue { topic, error })
                if is_permanent_kafka_error(&error)
                    && self.plan.errors.dead_letter_topic().is_some() =>
            {
                self.dead_letter(tag, &record, kafka_failure(&topic, &error))?;
            }
            Err(SendError::Enqueue { topic, error }) if is_permanent_kafka_error(&error) => {
                return Err(self.rejected(tag, &record, topic, error))
            }
            Err(e) => return Err(e.into()),
        }
        self.update_in_flight_gauges();
        Ok(())
    }
}
