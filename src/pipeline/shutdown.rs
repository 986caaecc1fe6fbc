//! The end of a run on shutdown: stop reading, give Kafka a bounded time to acknowledge what is in
//! flight, record the last position, confirm, and close the replication connection so the slot
//! is released at once.
//!
//! Owns the order of that sequence and its time bounds.

use std::time::Duration;

use tokio::sync::mpsc;

use super::relay::Relay;
use super::PipelineError;
use crate::sink::offsets::OffsetsError;
use crate::sink::Report;

impl Relay<'_> {
    /// At shutdown: writes the checkpoint's position and waits (bounded) for its delivery.
    pub(super) async fn record_last_position(
        &mut self,
        deliveries: &mut mpsc::UnboundedReceiver<Report>,
    ) -> Result<(), PipelineError> {
        let deadline =
            tokio::time::Instant::now() + self.plan.shutdown_timeout.min(Duration::from_secs(10));
        loop {
            let Some((recorder, _)) = &self.positions else {
                return Ok(());
            };
            if !recorder.in_flight() && recorder.recorded() >= self.checkpoint.confirmed() {
                return Ok(());
            }
            self.record_position()?;
            tokio::select! {
                Some(report) = deliveries.recv() => self.on_report(report)?,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(PipelineError::Offsets(OffsetsError::Kafka {
                        topic: self.positions.as_ref().map_or_else(String::new, |(_, t)| t.topic.clone()),
                        doing: "recording the last position at shutdown",
                        error: "timed out".into(),
                    }))
                }
            }
        }
    }

    /// Gives Kafka up to `timeout` to acknowledge what is in flight, serving the reports
    /// meanwhile (with status updates every `status_interval` while the stream is there), then
    /// records the last position when everything was acknowledged. Returns whether everything
    /// was, and the first failure of a report.
    async fn drain(
        &mut self,
        deliveries: &mut mpsc::UnboundedReceiver<Report>,
        timeout: Duration,
        stream_alive: bool,
    ) -> Result<(bool, Option<PipelineError>), PipelineError> {
        let sink = self.sink.clone();
        let flush = tokio::task::spawn_blocking(move || sink.flush(timeout));
        tokio::pin!(flush);
        let mut status_timer = tokio::time::interval(self.plan.status_interval);
        let mut failure = None;
        let flushed = loop {
            tokio::select! {
                flushed = &mut flush => break flushed.unwrap_or(false),
                Some(report) = deliveries.recv() => {
                    if let Err(e) = self.on_report(report) {
                        failure.get_or_insert(e);
                    }
                }
                _ = status_timer.tick(), if stream_alive => self.send_status(false).await?,
            }
        };
        while let Ok(report) = deliveries.try_recv() {
            if let Err(e) = self.on_report(report) {
                failure.get_or_insert(e);
            }
        }
        // The last position record, so that the next confirmation covers everything delivered
        // and the next start skips it (`replay`).
        if flushed && failure.is_none() {
            if let Err(e) = self.record_last_position(deliveries).await {
                tracing::warn!("the last position was not recorded ({e}); the events after the previous one are sent again on the next start");
            }
        }
        Ok((flushed, failure))
    }

    /// The replication connection was lost (Postgres restarted, failed over, or went silent)
    /// while Kafka may be fine: before connecting again, give Kafka a bounded time
    /// (`pipeline.shutdown_timeout_ms`) to acknowledge what is in flight and record the position,
    /// so that what Postgres sends again is skipped (`replay`) instead of published twice.
    /// Exactly-once mode needs none of this: what was not committed is aborted and sent again.
    pub(super) async fn settle_after_source_loss(
        &mut self,
        mut deliveries: mpsc::UnboundedReceiver<Report>,
    ) {
        let Some((recorder, _)) = &self.positions else {
            return;
        };
        if self.checkpoint.in_flight() == 0
            && !recorder.in_flight()
            && recorder.recorded() >= self.checkpoint.confirmed()
        {
            return; // nothing unrecorded
        }
        let in_flight = self.checkpoint.in_flight();
        match self
            .drain(&mut deliveries, self.plan.shutdown_timeout, false)
            .await
        {
            Ok((true, None)) => tracing::info!(
                in_flight,
                recorded = %self.positions.as_ref().map_or(crate::lsn::Lsn::ZERO, |(r, _)| r.recorded()),
                "the replication connection was lost: Kafka acknowledged the events in flight and the position of the last complete transaction was recorded (unless a warning above says otherwise); what Postgres sends again up to it is not published twice (a transaction it had only partly sent comes again whole)"
            ),
            Ok((false, None)) => tracing::warn!(
                unacknowledged = self.checkpoint.in_flight(),
                "the replication connection was lost and Kafka did not acknowledge every event in flight within pipeline.shutdown_timeout_ms: those are sent again"
            ),
            Ok((_, Some(e))) | Err(e) => tracing::warn!(
                "the replication connection was lost and an event in flight failed ({e}): the events after the recorded position are sent again"
            ),
        }
    }

    /// Stop reading, give Kafka a bounded time to acknowledge what is in flight, confirm, and close
    /// the replication connection so the slot is released at once.
    pub(super) async fn shut_down(
        mut self,
        mut deliveries: mpsc::UnboundedReceiver<Report>,
    ) -> Result<(), PipelineError> {
        tracing::info!(
            in_flight = self.checkpoint.in_flight(),
            "shutting down: flushing the producer"
        );
        let (flushed, failure) = self
            .drain(&mut deliveries, self.plan.shutdown_timeout, true)
            .await?;
        self.send_status(false).await?;
        let confirmed = self.checkpoint.confirmed();
        if let Err(e) = self.stream.close(Duration::from_secs(5)).await {
            tracing::warn!("closing the replication connection: {e}");
        }
        if !flushed {
            tracing::warn!(
                unacknowledged = self.checkpoint.in_flight(),
                "shutdown timeout reached before Kafka acknowledged everything; those events are sent again on the next start"
            );
            self.sink.purge();
        }
        tracing::info!(%confirmed, "stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
