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
        let sink = self.sink.clone();
        let timeout = self.plan.shutdown_timeout;
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
                _ = status_timer.tick() => self.send_status(false).await?,
            }
        };
        while let Ok(report) = deliveries.try_recv() {
            if let Err(e) = self.on_report(report) {
                failure.get_or_insert(e);
            }
        }
        // The last position record, so that the final confirmation covers everything delivered.
        if flushed && failure.is_none() {
            if let Err(e) = self.record_last_position(&mut deliveries).await {
                tracing::warn!("the last position was not recorded ({e}); the events after the previous one are sent again on the next start");
            }
        }
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
