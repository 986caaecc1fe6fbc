//! The start of a run ([`run_once`]): the slot and publication, the router with the tables' NOT
//! NULL columns, the replication connection and `START_REPLICATION`, the producer, exactly-once
//! transactions or the recorded position (checked against the slot), then the [`Relay`].
//!
//! Owns the order of these steps (why: see the module docs of `exactly_once` and `position`); it
//! must not handle a WAL message or a delivery.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::messages;
use super::relay::Relay;
use super::snapshot::start_snapshot;
use super::tasks::{poll_slot_lag, probe_kafka, run_heartbeats, AbortOnDrop};
use super::{PipelineError, Plan, PoisonEvents};
use crate::checkpoint::Checkpoint;
use crate::config::TableName;
use crate::lsn::Lsn;
use crate::metrics::{Health, Metrics};
use crate::position::{Offsets, Recorder};
use crate::router::Router;
use crate::sink::offsets::{self, PositionTarget};
use crate::sink::transactional::{self, Transactions};
use crate::sink::KafkaSink;
use crate::source::connection::{ReplicationConnection, SystemIdentity};
use crate::source::liveness::Liveness;
use crate::source::setup::{self, SetupError, SnapshotPlan};

/// The NOT NULL columns of an outbox table (pgoutput does not carry nullability; Debezium's
/// Connect schemas mark the other columns optional).
pub(super) async fn not_null_columns(
    client: &tokio_postgres::Client,
    table: &TableName,
) -> Result<HashSet<String>, SetupError> {
    let rows = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped AND attnotnull",
            &[&setup::quote_table(table)],
        )
        .await
        .map_err(|error| SetupError::Sql {
            doing: "reading which outbox table columns are NOT NULL",
            error,
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One connection's worth of streaming. See the module documentation.
pub(super) async fn run_once(
    plan: &Plan,
    shutdown: &mut watch::Receiver<bool>,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    poison: &mut PoisonEvents,
) -> Result<(), PipelineError> {
    // The walsender connection first: it picks the host (the primary, of the URL's hosts), and
    // the SQL connection goes to the same one.
    let mut conn = ReplicationConnection::connect(&plan.params).await?;
    let system = conn.identify_system().await?;
    let host = conn.params().host_port();
    let client = conn.params().connect_sql().await?;
    // The producer starts connecting now, while Postgres is set up, unless another instance
    // streams from the slot (then this one stands by, and creates none at each attempt).
    let slot_row = setup::slot_row(&client, &plan.setup.slot).await?;
    let standing_by = slot_row.as_ref().is_some_and(|r| r.active_pid.is_some());
    let mut early_sink = if standing_by {
        None
    } else {
        Some(KafkaSink::new(
            &plan.producer,
            metrics.clone(),
            health.clone(),
        )?)
    };
    let gap_accepted =
        check_missing_slot(plan, &client, &system, &host, slot_row.is_some()).await?;
    let slot = setup::ensure(&client, &plan.setup).await?;
    let mut router = Router::new(plan.router.clone(), plan.tables.clone())
        .with_converters(plan.converters.clone())
        .with_message_prefixes(plan.message_prefixes.clone());
    for table in &plan.tables {
        router.set_not_null_columns(table.clone(), not_null_columns(&client, table).await?);
    }
    // Polls the slot's lag on the ordinary connection for as long as this run lasts.
    let _lag_poller = AbortOnDrop(tokio::spawn(poll_slot_lag(
        client,
        plan.setup.slot.clone(),
        metrics.clone(),
    )));
    let _heartbeats = plan
        .heartbeat
        .clone()
        .map(|hb| AbortOnDrop(tokio::spawn(run_heartbeats(plan.params.clone(), hb))));

    if slot.make_failover {
        conn.make_failover_slot(&plan.setup.slot).await?;
        tracing::info!(slot = %plan.setup.slot, "made the slot a failover slot, which PostgreSQL synchronizes to standbys with sync_replication_slots = on (source.failover_slot)");
    }
    let (slot_name, start_lsn, snapshot) = start_snapshot(plan, &mut conn, &slot).await?;
    // A new slot whose gap was accepted (`offsets.accept_missing_slot`) is accepted at its
    // position, as `accept_slot_position` would.
    let accept_new_slot = (gap_accepted && slot.created).then_some(start_lsn);
    let publication_names = format!("\"{}\"", plan.setup.publication);
    let mut options = vec![
        ("proto_version", "1"),
        ("publication_names", publication_names.as_str()),
    ];
    if !plan.message_prefixes.is_empty() {
        messages::check_server_version(conn.parameter("server_version"))?;
        options.push(("messages", "true"));
    }
    let stream = conn
        .start_replication(
            &slot_name,
            Lsn::ZERO, // the server resumes from the slot's confirmed_flush_lsn
            &options,
        )
        .await?;
    let (sink, deliveries) = match early_sink.take() {
        Some(early) => early,
        None => KafkaSink::new(&plan.producer, metrics.clone(), health.clone())?,
    };
    let sink = Arc::new(sink);
    // While librdkafka says Kafka is unreachable, ask the brokers now and then: an idle relay
    // has no delivery to tell readiness that they are back.
    let _kafka_probe = AbortOnDrop(tokio::spawn(probe_kafka(sink.clone(), health.clone())));
    let mut transactions = match &plan.exactly_once {
        Some(settings) => Some(
            Transactions::start(
                &sink,
                &plan.producer,
                &crate::exactly_once::ExactlyOnce {
                    accept_slot_position: accept_new_slot.or(settings.accept_slot_position),
                    ..settings.clone()
                },
                transactional::Origin {
                    system_id: system.system_id,
                    timeline: system.timeline,
                    database: &plan.params.dbname,
                    slot: &plan.setup.slot,
                    start_lsn,
                    new_slot_with_snapshot: slot.snapshot == SnapshotPlan::NewSlot,
                },
                plan.status_interval,
                metrics.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let positions = match &plan.offsets {
        Some(settings) if slot.snapshot != SnapshotPlan::Only => {
            let settings = Offsets {
                accept_slot_position: accept_new_slot.or(settings.accept_slot_position),
                ..settings.clone()
            };
            Some(start_positions(plan, &sink, &settings, &slot, &system, start_lsn, metrics).await?)
        }
        _ => None,
    };
    tracing::info!(
        slot = %slot_name,
        slot_created = slot.created,
        start_lsn = %start_lsn,
        publication = %plan.setup.publication,
        tables = %plan.tables.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
        topics = %plan.router.topic_replacement,
        route_by = %plan.router.route_by_field,
        server = %plan.params.redacted_url(),
        host = %host,
        timeline = system.timeline,
        "streaming"
    );
    health.set_streaming(true);

    // The position recorded in Kafka, in either mode: what it covers is not published again.
    let recorded = match (&mut transactions, &positions) {
        (Some(t), _) => Some(t.batcher().recorded()),
        (None, Some((recorder, _))) => Some(recorder.recorded()),
        (None, None) => None,
    };
    let replay = super::replay::start_replay(recorded, start_lsn);
    let takeover = super::takeover::start_takeover(plan, start_lsn, system.xlogpos).await?;
    let mut relay = Relay {
        plan,
        metrics,
        router,
        checkpoint: Checkpoint::new(start_lsn),
        sink,
        transactions,
        positions,
        poison,
        replay,
        stream,
        in_flight_bytes: 0,
        received: start_lsn,
        confirmations: crate::confirm::Confirmations::new(),
        last_status_at: Instant::now(),
        liveness: Liveness::new(plan.receive_timeout, Instant::now()),
        commit_time_us: 0,
        final_lsn: Lsn::ZERO,
        xid: 0,
        begin_lsn: Lsn::ZERO,
        snapshot: None,
        takeover,
    };
    metrics.confirmed_lsn.set(start_lsn.0 as i64);
    if let Some(feed) = snapshot {
        relay.begin_snapshot(feed)?;
    }
    relay
        .stream_until_shutdown(shutdown, deliveries, health)
        .await
}

/// A slot that does not exist although a position was recorded for it (`position::SlotMissing`):
/// checked before setup would create it, with the recorded position read from the offsets topic
/// (which may not exist yet). Returns whether the gap is accepted (`offsets.accept_missing_slot`);
/// stops otherwise, unless nothing is recorded or the new slot gets a snapshot.
async fn check_missing_slot(
    plan: &Plan,
    client: &tokio_postgres::Client,
    system: &SystemIdentity,
    host: &str,
    slot_exists: bool,
) -> Result<bool, PipelineError> {
    use crate::config::SnapshotMode;
    use crate::position::{missing_slot, MissingSlot, SlotMissing};
    let Some(topic) = &plan.positions_topic else {
        return Ok(false);
    };
    let mode = plan.setup.snapshot_mode;
    if mode == SnapshotMode::InitialOnly || !plan.setup.create_slot || slot_exists {
        return Ok(false);
    }
    let key = crate::position::offsets_key(system.system_id, &plan.params.dbname, &plan.setup.slot);
    let recorded = offsets::read_recorded_if_any(&plan.producer, topic, &key).await?;
    offsets::log_history(&recorded, &plan.setup.slot, &key, system.timeline);
    let with_snapshot = matches!(
        mode,
        SnapshotMode::Initial | SnapshotMode::WhenNeeded | SnapshotMode::Always
    );
    let decision = missing_slot(recorded.position, with_snapshot, plan.accept_missing_slot);
    let (Some(r), MissingSlot::Stop | MissingSlot::CreateAcceptingGap) =
        (recorded.position, decision)
    else {
        return Ok(false);
    };
    let current: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(|error| SetupError::Sql {
            doing: "reading pg_current_wal_lsn()",
            error,
        })?
        .get(0);
    let missing = SlotMissing {
        slot: plan.setup.slot.clone(),
        host: host.to_string(),
        timeline: system.timeline,
        recorded: r,
        recorded_timeline: recorded.timeline,
        current: current.parse().unwrap_or(r),
        topic: topic.clone(),
        key,
    };
    if decision == MissingSlot::Stop {
        return Err(PipelineError::SlotMissing(Box::new(missing)));
    }
    tracing::warn!(
        slot = %missing.slot,
        recorded = %missing.recorded,
        current = %missing.current,
        "the slot did not exist; creating it at the server's current position and accepting the gap from {} to {} (offsets.accept_missing_slot): events committed in between are not published; remove the setting once outboxd has run",
        missing.recorded,
        missing.current
    );
    Ok(true)
}

/// At-least-once mode with `[offsets]`: makes sure the offsets topic exists, reads the slot's
/// recorded position and checks the slot against it (`position::resume_position`). A slot this
/// run created with a snapshot is accepted (with a warning) when it is ahead: the snapshot
/// publishes the rows in the tables.
pub(super) async fn start_positions(
    plan: &Plan,
    sink: &Arc<KafkaSink>,
    settings: &Offsets,
    slot: &setup::SlotState,
    system: &SystemIdentity,
    start_lsn: Lsn,
    metrics: &Metrics,
) -> Result<(Recorder, PositionTarget), PipelineError> {
    let started = Instant::now();
    let key = crate::position::offsets_key(system.system_id, &plan.params.dbname, &plan.setup.slot);
    let offsets::Resumed { recorded, resume } = offsets::resume(
        sink,
        &plan.producer,
        offsets::ResumeFrom {
            topic: &settings.topic,
            key: &key,
            slot: &plan.setup.slot,
            start_lsn,
            new_slot_with_snapshot: slot.snapshot == SnapshotPlan::NewSlot,
            accept: settings.accept_slot_position,
        },
        system.timeline,
    )
    .await?;
    metrics.recorded_lsn.set(resume.0 as i64);
    tracing::info!(
        offsets_topic = %settings.topic,
        key = %key,
        recorded = %recorded.map_or_else(|| "none".to_string(), |l| l.to_string()),
        slot_lsn = %start_lsn,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "positions: the slot is confirmed up to the position recorded in Kafka, from {resume}"
    );
    Ok((
        Recorder::new(resume),
        PositionTarget::new(settings, key, &plan.setup.slot, system.timeline),
    ))
}
