//! Standby status updates: what may be confirmed to Postgres ([`Relay::confirmable`]: the
//! checkpoint's position, capped at the last position recorded in the offsets topic or, in
//! exactly-once mode, at the last committed offsets record), the position records that move that
//! cap, and the liveness check of a silent server.
//!
//! Owns the confirm side of the relay; the confirm rule itself is `crate::confirm`'s.

use std::time::Instant;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::relay::Relay;
use super::PipelineError;
use crate::lsn::Lsn;
use crate::sink::offsets::OffsetsError;
use crate::sink::SendError;
use crate::source::liveness::Verdict;
use crate::source::SourceError;

impl Relay<'_> {
    /// A position record was delivered (the cap moves) or failed (the run stops).
    pub(super) fn on_position_record(
        &mut self,
        lsn: Lsn,
        outcome: Result<(), KafkaError>,
    ) -> Result<(), PipelineError> {
        let Some((recorder, target)) = &mut self.positions else {
            return Ok(());
        };
        match outcome {
            Ok(()) => {
                recorder.acknowledged(lsn);
                self.metrics
                    .position_records
                    .with_label_values(&["acknowledged"])
                    .inc();
                self.metrics.recorded_lsn.set(recorder.recorded().0 as i64);
                Ok(())
            }
            Err(error) => {
                recorder.failed(lsn);
                self.metrics
                    .position_records
                    .with_label_values(&["failed"])
                    .inc();
                Err(OffsetsError::Write {
                    topic: target.topic.clone(),
                    lsn,
                    error,
                }
                .into())
            }
        }
    }

    /// At-least-once mode with `[offsets]`: writes the checkpoint's position to the offsets
    /// topic when it moved past the last record (one record at a time).
    pub(super) fn record_position(&mut self) -> Result<(), PipelineError> {
        let confirmed = self.checkpoint.confirmed();
        let Some((recorder, target)) = &mut self.positions else {
            return Ok(());
        };
        let Some(lsn) = recorder.due(confirmed) else {
            return Ok(());
        };
        match self.sink.send_position(target, lsn) {
            Ok(()) => Ok(()),
            Err(SendError::Enqueue { error, .. })
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
            {
                // Sent again at the next check.
                recorder.failed(lsn);
                Ok(())
            }
            Err(SendError::Enqueue { topic, error }) => {
                recorder.failed(lsn);
                Err(OffsetsError::Write { topic, lsn, error }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What may be confirmed to Postgres now: the rule is `crate::confirm`'s, given the
    /// checkpoint's position and the position recorded in Kafka (at-least-once: the last record
    /// acknowledged; exactly-once: the last committed one).
    pub(super) fn confirmable(&mut self) -> Lsn {
        let recorded = match (&self.positions, &mut self.transactions) {
            (Some((recorder, _)), _) => Some(recorder.recorded()),
            (None, Some(t)) => Some(t.batcher().recorded()),
            (None, None) => None,
        };
        self.confirmations
            .confirmable(self.checkpoint.confirmed(), recorded)
    }

    /// Sends a status update when the confirmed position moved or `status_interval` has passed.
    /// Records the position first when it moved.
    /// Gives the connection up when the server has been silent too long (`source::liveness`).
    pub(super) async fn send_status_if_due(&mut self) -> Result<(), PipelineError> {
        self.record_position()?;
        match self.liveness.check(Instant::now()) {
            Verdict::Alive => {}
            Verdict::AskForReply => {
                tracing::debug!("the server has been silent for half of source.receive_timeout_ms: asking it to answer");
                return self.send_status_asking(false, true).await;
            }
            Verdict::Dead(after) => {
                return Err(SourceError::Timeout {
                    what: "waiting for any message from the server (source.receive_timeout_ms): the connection is taken for dead",
                    after,
                }
                .into())
            }
        }
        if self.confirmable() != self.confirmations.sent()
            || self.last_status_at.elapsed() >= self.plan.status_interval
        {
            self.send_status(false).await?;
        }
        Ok(())
    }

    /// Sends a standby status update: `flush` = the checkpoint's confirmed position.
    pub(super) async fn send_status(
        &mut self,
        reply_requested_by_server: bool,
    ) -> Result<(), PipelineError> {
        self.send_status_asking(reply_requested_by_server, false)
            .await
    }

    /// [`Self::send_status`], with `ask_reply`: the server answers with a keepalive at once.
    pub(super) async fn send_status_asking(
        &mut self,
        reply_requested_by_server: bool,
        ask_reply: bool,
    ) -> Result<(), PipelineError> {
        let flush = self.confirmable();
        let write = self.received.max(flush);
        self.stream
            .send_status(write, flush, flush, ask_reply)
            .await?;
        if self.confirmations.confirmed(flush) {
            tracing::debug!(%flush, reply_requested_by_server, "confirmed");
            self.metrics.confirmed_lsn.set(flush.0 as i64);
            self.metrics.confirmed_now();
        }
        self.metrics
            .producer_queue_depth
            .set(i64::from(self.sink.queued()));
        self.last_status_at = Instant::now();
        // `[cleanup]` deletes up to what is confirmed, but not the position a snapshot starts
        // from: its rows are older than it and not yet acknowledged (`crate::cleanup`).
        if self.snapshot.is_none() {
            self.metrics.confirmed_outside_snapshot(flush);
        }
        Ok(())
    }
}
