//! The snapshot feed (`source.snapshot_mode`): the slot created with an exported snapshot, the
//! tables read on a connection that imported it, and its rows published as one pseudo-transaction
//! through `on_pgoutput` before the stream is read; the marker slot dropped once every snapshot
//! event is acknowledged.
//!
//! Owns the feed and its end; the rows go through the same path as the stream's inserts.

use tokio::sync::mpsc;

use super::relay::Relay;
use super::tasks::AbortOnDrop;
use super::PipelineError;
use super::Plan;
use crate::lsn::Lsn;
use crate::source::connection::ReplicationConnection;
use crate::source::pgoutput::{self, Message};
use crate::source::setup::{self, SetupError, SnapshotPlan};
use crate::source::snapshot::{self, SnapshotItem};

/// Opens the snapshot `slot.snapshot` asks for: creates the slot with an exported snapshot on `conn`
/// when needed, imports it on a new SQL connection and starts reading the tables there. Returns
/// the slot to stream from, its start position and the snapshot's rows.
pub(super) async fn start_snapshot(
    plan: &Plan,
    conn: &mut ReplicationConnection,
    slot: &setup::SlotState,
) -> Result<(String, Lsn, Option<SnapshotFeed>), PipelineError> {
    let (name, start, exported, exit_after) = match slot.snapshot {
        SnapshotPlan::None => return Ok((plan.setup.slot.clone(), slot.confirmed_flush_lsn, None)),
        SnapshotPlan::ExistingSlot => (
            plan.setup.slot.clone(),
            slot.confirmed_flush_lsn,
            None,
            false,
        ),
        SnapshotPlan::NewSlot | SnapshotPlan::Only => {
            let only = slot.snapshot == SnapshotPlan::Only;
            // initial_only: a temporary slot, gone when the connection closes.
            let name = if only {
                format!("{}_initial_only", plan.setup.slot)
            } else {
                plan.setup.slot.clone()
            };
            let created = conn
                .create_slot_exporting_snapshot(&name, only, slot.failover)
                .await?;
            tracing::info!(slot = %name, consistent_point = %created.consistent_point, temporary = only, "created replication slot with an exported snapshot");
            (
                name,
                created.consistent_point,
                Some(created.snapshot_name),
                only,
            )
        }
    };
    // The same server as the replication connection: an exported snapshot exists only there.
    let client = conn.params().connect_sql().await?;
    snapshot::begin(&client, exported.as_deref()).await?;
    let (tx, rows) = mpsc::channel(1024);
    let reader = AbortOnDrop(tokio::spawn(snapshot::read_tables(
        client,
        plan.tables.clone(),
        tx,
    )));
    tracing::info!(
        mode = plan.setup.snapshot_mode.name(),
        at = %start,
        "snapshot: publishing the rows in the outbox tables before streaming"
    );
    Ok((
        name,
        start,
        Some(SnapshotFeed {
            rows,
            _reader: reader,
            reading: true,
            at: start,
            exit_after,
            marker: slot.snapshot == SnapshotPlan::NewSlot,
            published: 0,
        }),
    ))
}

/// A snapshot being published: its rows come before anything read from the stream.
pub(super) struct SnapshotFeed {
    rows: mpsc::Receiver<Result<SnapshotItem, SetupError>>,
    _reader: AbortOnDrop,
    /// Rows still to come; false once the reader finished.
    reading: bool,
    /// The slot's start: the snapshot's position (its rows form one transaction ending there).
    at: Lsn,
    /// `initial_only`: stop once published.
    exit_after: bool,
    /// Whether the marker slot must be dropped once every row is acknowledged.
    marker: bool,
    /// Rows handed to the router.
    published: u64,
}

/// The next snapshot item; never completes without a snapshot.
pub(super) async fn next_snapshot_item(
    feed: &mut Option<SnapshotFeed>,
) -> Option<Result<SnapshotItem, SetupError>> {
    match feed {
        Some(feed) if feed.reading => feed.rows.recv().await,
        _ => std::future::pending().await,
    }
}

impl Relay<'_> {
    /// Opens the snapshot's transaction: its rows are published like one transaction's inserts.
    /// (Begin and Commit go through `on_pgoutput` like the stream's, so exactly-once mode sees the
    /// snapshot as one transaction at the slot's start.)
    pub(super) fn begin_snapshot(&mut self, feed: SnapshotFeed) -> Result<(), PipelineError> {
        let at = feed.at;
        self.snapshot = Some(feed);
        self.on_pgoutput(
            Message::Begin(pgoutput::Begin {
                final_lsn: at,
                commit_time_us: crate::source::protocol::pg_now_us(),
                xid: 0,
            }),
            at,
        )
    }

    pub(super) fn on_snapshot_item(
        &mut self,
        item: Option<Result<SnapshotItem, SetupError>>,
    ) -> Result<(), PipelineError> {
        let Some(feed) = self.snapshot.as_mut() else {
            return Ok(());
        };
        let at = feed.at;
        match item {
            Some(Ok(SnapshotItem::Relation(relation))) => {
                self.on_pgoutput(Message::Relation(relation), at)
            }
            Some(Ok(SnapshotItem::Row { relation_id, row })) => {
                feed.published += 1;
                self.on_pgoutput(
                    Message::Insert(pgoutput::Insert {
                        relation_id,
                        new: row,
                    }),
                    at,
                )
            }
            Some(Err(error)) => Err(error.into()),
            None => {
                feed.reading = false;
                tracing::info!(
                    rows = feed.published,
                    "snapshot read; waiting for Kafka to acknowledge its events"
                );
                let commit_time_us = self.commit_time_us;
                self.on_pgoutput(
                    Message::Commit(pgoutput::Commit {
                        flags: 0,
                        commit_lsn: at,
                        end_lsn: at,
                        commit_time_us,
                    }),
                    at,
                )
            }
        }
    }

    /// Once every snapshot event is acknowledged: drops the marker slot and starts streaming (or,
    /// for `initial_only`, returns true: the run is over).
    pub(super) async fn finish_snapshot_if_acknowledged(&mut self) -> Result<bool, PipelineError> {
        match &self.snapshot {
            Some(feed) if !feed.reading && self.checkpoint.in_flight() == 0 => {}
            _ => return Ok(false),
        }
        let Some(feed) = self.snapshot.take() else {
            return Ok(false);
        };
        if feed.marker {
            let client = self.plan.params.connect_sql().await?;
            setup::drop_snapshot_marker(&client, &self.plan.setup.slot).await?;
        }
        tracing::info!(
            rows = feed.published,
            at = %feed.at,
            "snapshot published and acknowledged"
        );
        if feed.exit_after {
            tracing::info!("snapshot_mode initial_only: done, exiting");
        }
        Ok(feed.exit_after)
    }
}
