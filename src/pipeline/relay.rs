//! [`Relay`]: the state of one run, and its event loop. One task owns everything;
//! `tokio::select!` multiplexes, in priority order: shutdown, delivery reports, Kafka commits
//! (exactly-once), the status-update timer, the snapshot feed and the replication stream. The
//! stream is read only while the in-flight caps leave room: that is the backpressure.
//!
//! Owns the loop only: each arm hands its event to a method of the file for that job (`wal`,
//! `deliveries`, `status`, `snapshot`, `transactions`, `shutdown`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::snapshot::{next_snapshot_item, SnapshotFeed};
use super::{PipelineError, Plan, PoisonEvents};
use crate::checkpoint::Checkpoint;
use crate::confirm::Confirmations;
use crate::lsn::Lsn;
use crate::metrics::{Health, Metrics};
use crate::position::{Recorder, Replay};
use crate::router::Router;
use crate::sink::offsets::PositionTarget;
use crate::sink::transactional::{self, Transactions};
use crate::sink::{KafkaSink, Report};
use crate::source::connection::ReplicationStream;
use crate::source::liveness::Liveness;

/// How often the loop checks whether the confirmed position moved and should be sent.
const CONFIRM_CHECK: Duration = Duration::from_millis(100);

/// The state of one run.
pub(super) struct Relay<'a> {
    pub(super) plan: &'a Plan,
    pub(super) metrics: &'a Metrics,
    pub(super) router: Router,
    pub(super) checkpoint: Checkpoint,
    /// Shared with the blocking flush at shutdown.
    pub(super) sink: Arc<KafkaSink>,
    /// Exactly-once mode (`None`: at-least-once).
    pub(super) transactions: Option<Transactions>,
    /// At-least-once mode with `[offsets]`: the position records (`position`).
    pub(super) positions: Option<(Recorder, PositionTarget)>,
    /// Exactly-once mode: events to dead-letter on sight (see [`PoisonEvents`]).
    pub(super) poison: &'a mut PoisonEvents,
    /// The slot was behind the position recorded in Kafka: the transactions that position
    /// covers are skipped until the stream passes it (`replay`; both modes).
    pub(super) replay: Option<Replay>,
    pub(super) stream: ReplicationStream,
    /// Bytes of records sent and not yet reported.
    pub(super) in_flight_bytes: u64,
    /// The highest WAL end the server reported: the `write` LSN of status updates.
    pub(super) received: Lsn,
    /// What was confirmed, and the rule for what may be now (`crate::confirm`).
    pub(super) confirmations: Confirmations,
    /// When the last status update went out.
    pub(super) last_status_at: Instant,
    /// How long the server has been silent (`source.receive_timeout_ms`).
    pub(super) liveness: Liveness,
    /// Commit time of the open transaction (µs since 2000-01-01): the records' timestamp.
    pub(super) commit_time_us: i64,
    /// Commit LSN of the open transaction, to name it in errors.
    pub(super) final_lsn: Lsn,
    /// The open transaction's id and its Begin message's WAL position: Debezium's source block
    /// carries them (`txId`, `sequence`), with each change's own position (`lsn`).
    pub(super) xid: u32,
    pub(super) begin_lsn: Lsn,
    /// The snapshot being published; the stream is read only once it is acknowledged.
    pub(super) snapshot: Option<SnapshotFeed>,
    /// Taking over from Debezium: the events its offset covers are skipped (`takeover`).
    pub(super) takeover: Option<super::takeover::TakeoverState>,
}

impl Relay<'_> {
    pub(super) async fn stream_until_shutdown(
        mut self,
        shutdown: &mut watch::Receiver<bool>,
        mut deliveries: mpsc::UnboundedReceiver<Report>,
        health: &Health,
    ) -> Result<(), PipelineError> {
        // The timer checks often; an update goes out when the confirmed position moved (so a crash
        // replays as little as possible) or when `status_interval` passed (so the server hears
        // from us however idle the outbox is).
        let mut status_timer = tokio::time::interval(CONFIRM_CHECK.min(self.plan.status_interval));
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commits = self.transactions.as_mut().and_then(|t| t.take_commits());
        let result = loop {
            health.beat();
            // Exactly-once: nothing is produced while a Kafka transaction commits.
            let has_room = self.checkpoint.in_flight() < self.plan.max_in_flight_events
                && self.in_flight_bytes < self.plan.max_in_flight_bytes
                && !self.transactions.as_ref().is_some_and(|t| t.committing());
            let streaming = self.snapshot.is_none();
            if !(has_room && streaming) {
                self.liveness.not_reading(Instant::now());
            }
            let step = tokio::select! {
                biased;
                _ = shutdown.changed() => break Ok(()),
                Some(report) = deliveries.recv() => self.on_report_and_confirm(report).await,
                Some(result) = transactional::next_commit(&mut commits) => self.on_kafka_commit(result),
                _ = status_timer.tick() => self.send_status_if_due().await,
                item = next_snapshot_item(&mut self.snapshot), if has_room => self.on_snapshot_item(item),
                message = self.stream.next(), if has_room && streaming => match message {
                    Ok(Some(message)) => self.on_message(message).await,
                    Ok(None) => Err(PipelineError::StreamEnded),
                    Err(e) => Err(e.into()),
                },
            };
            if let Err(e) = step {
                break Err(e);
            }
            if let Some(t) = &mut self.transactions {
                t.tick(
                    &self.sink,
                    self.checkpoint.in_transaction(),
                    self.checkpoint.confirmed(),
                );
            }
            match self.finish_snapshot_if_acknowledged().await {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => {
                if let Some(t) = &mut self.transactions {
                    let in_pg_transaction = self.checkpoint.in_transaction();
                    let confirmed = self.checkpoint.confirmed();
                    if let Err(e) = t
                        .finish(&self.sink, &mut commits, in_pg_transaction, confirmed)
                        .await
                    {
                        tracing::warn!("exactly-once: the last Kafka transaction did not commit ({e}); its events are sent again on the next start");
                    }
                }
                self.shut_down(deliveries).await
            }
            Err(e) => {
                // Best effort: confirm what is safe before giving up the connection.
                if !matches!(e, PipelineError::Source(_) | PipelineError::StreamEnded) {
                    let _ = self.send_status(false).await;
                } else {
                    self.settle_after_source_loss(deliveries).await;
                }
                self.sink.purge();
                Err(e)
            }
        }
    }
}
