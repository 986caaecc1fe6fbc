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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::{mpsc, watch};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::config::{Config, ConfigError, SnapshotMode, TableName};
use crate::convert::{ConverterConfigError, Converters};
use crate::dead_letter::{self, DeadLetterTag, ErrorPolicy, ErrorsConfigError, Failure};
use crate::exactly_once::{ExactlyOnce, ExactlyOnceError};
use crate::lsn::Lsn;
use crate::metrics::{Health, Metrics};
use crate::position::{Offsets, OffsetsConfigError, Recorder};
use crate::router::{
    InvalidOpBehavior, OutboxRecord, RawRow, RouteError, Routed, Router, RouterConfigError,
    RouterOptions,
};
use crate::sink::errors::{is_permanent_kafka_error, is_size_error, kafka_failure};
use crate::sink::offsets::{self, OffsetsError, PositionTarget};
use crate::sink::transactional::{self, Transactions};
use crate::sink::{
    producer_config, Delivery, DeliveryFailure, KafkaSink, Report, SendError, SendTag,
    SinkConfigError,
};
use crate::source::connection::{
    ReplicationConnection, ReplicationMessage, ReplicationStream, SystemIdentity,
};
use crate::source::error::describe_sql_error;
use crate::source::liveness::{Liveness, Verdict};
use crate::source::params::ConnectParams;
use crate::source::pgoutput::{self, Message};
use crate::source::setup::{self, SetupError, SetupPlan, SnapshotPlan};
use crate::source::snapshot::{self, SnapshotItem};
use crate::source::SourceError;

mod messages;

/// How often the loop checks whether the confirmed position moved and should be sent.
const CONFIRM_CHECK: Duration = Duration::from_millis(100);

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
    Offsets(#[from] OffsetsError),
}

/// Kafka rejected an event for good and `errors.tolerance` is `none`.
#[derive(Debug, thiserror::Error)]
#[error("Kafka rejected event {event_id} of {table} (transaction at {lsn}) for topic {topic}: {error}; a retry cannot succeed, so outboxd stops without confirming it: fix the cause (message.max.bytes, the topic, its ACLs), or set errors.tolerance = all and errors.deadletterqueue.topic.name to send such events to a dead-letter topic")]
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

/// Debezium's `heartbeat.action.query`, run every `heartbeat.interval.ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub interval: Duration,
    pub query: String,
}

/// Everything a run needs, resolved from the configuration once.
pub struct Plan {
    pub params: ConnectParams,
    pub setup: SetupPlan,
    pub tables: Vec<TableName>,
    pub router: RouterOptions,
    pub converters: Converters,
    pub producer: rdkafka::ClientConfig,
    pub status_interval: Duration,
    /// `source.receive_timeout_ms` (`None`: off).
    pub receive_timeout: Option<Duration>,
    /// `source.heartbeat_*`: a query run periodically on an ordinary connection.
    pub heartbeat: Option<Heartbeat>,
    pub max_in_flight_events: u64,
    pub max_in_flight_bytes: u64,
    pub shutdown_timeout: Duration,
    /// `[errors]`: what happens to poison events.
    pub errors: ErrorPolicy,
    /// `[exactly_once]`, when enabled (`producer` is then transactional).
    pub exactly_once: Option<ExactlyOnce>,
    /// `[offsets]` in at-least-once mode, when enabled: positions recorded and checked
    /// (`position`).
    pub offsets: Option<Offsets>,
    /// `source.message_prefixes`: logical decoding messages routed as outbox events.
    pub message_prefixes: Vec<String>,
}

impl Plan {
    /// Resolves and validates the configuration (no I/O).
    pub fn from_config(config: &Config) -> Result<Plan, PipelineError> {
        let url = crate::secrets::resolve("source.url", &config.source.url)?;
        let params = ConnectParams::from_url(&url).map_err(SourceError::from)?;
        let tables = config.tables()?;
        let router = RouterOptions::from_map(&Config::string_map("router", &config.router)?)?;
        let converters =
            Converters::from_map(&Config::string_map("converters", &config.converters)?)?;
        router.check_converters(&converters)?;
        let errors = ErrorPolicy::from_map(
            &Config::string_map("errors", &config.errors)?,
            &config.source.slot,
        )?;
        let producer = producer_config(
            &Config::string_map("kafka", &config.kafka)?,
            config.pipeline.max_in_flight_events,
        )?;
        let offsets = config.offsets.resolve()?;
        let exactly_once = config.exactly_once.resolve(&config.source.slot, &offsets)?;
        if exactly_once.is_some() && config.source.snapshot_mode == SnapshotMode::InitialOnly {
            // initial_only publishes from a temporary slot and keeps no position.
            return Err(ConfigError::Invalid {
                key: "source.snapshot_mode".into(),
                message: "initial_only cannot be combined with [exactly_once]: it reads the tables once from a temporary slot and records no position; use initial (the rows, then the stream, exactly once) or run initial_only in at-least-once mode".into(),
            }
            .into());
        }
        let producer = match &exactly_once {
            Some(eos) => transactional::transactional_config(producer, eos),
            None => producer,
        };
        let setup = SetupPlan {
            slot: config.source.slot.clone(),
            publication: config.source.publication.clone(),
            tables: tables.clone(),
            create_slot: config.source.create_slot,
            create_publication: config.source.create_publication,
            required_columns: router.required_columns(),
            snapshot_mode: config.source.snapshot_mode,
        };
        Ok(Plan {
            params,
            setup,
            tables,
            router,
            converters,
            producer,
            status_interval: Duration::from_millis(config.source.status_interval_ms),
            receive_timeout: Some(Duration::from_millis(config.source.receive_timeout_ms))
                .filter(|t| !t.is_zero()),
            heartbeat: match (
                config.source.heartbeat_interval_ms,
                &config.source.heartbeat_action_query,
            ) {
                (ms, Some(query)) if ms > 0 => Some(Heartbeat {
                    interval: Duration::from_millis(ms),
                    query: query.clone(),
                }),
                _ => None,
            },
            max_in_flight_events: config.pipeline.max_in_flight_events,
            max_in_flight_bytes: config.pipeline.max_in_flight_bytes,
            shutdown_timeout: Duration::from_millis(config.pipeline.shutdown_timeout_ms),
            errors,
            // Exactly-once mode records positions in its transactions.
            offsets: (config.offsets.enabled && exactly_once.is_none()).then_some(offsets),
            exactly_once,
            message_prefixes: config.source.message_prefixes.clone(),
        })
    }
}

/// Runs until shutdown is signalled (`Ok`) or a non-transient error; transient errors restart the
/// run from the slot after an exponential backoff with jitter.
pub async fn run(
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

/// Every few seconds while `health` says Kafka is unreachable: whether the brokers answer again.
async fn probe_kafka(sink: Arc<KafkaSink>, health: Arc<Health>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if health.kafka_problem().is_none() {
            continue;
        }
        let s = sink.clone();
        if let Ok(true) =
            tokio::task::spawn_blocking(move || s.brokers_answer(Duration::from_secs(5))).await
        {
            health.kafka_reachable();
        }
    }
}

/// Aborts a background task when dropped (the end of a run).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets `outboxd_slot_lag_bytes` every 10 s: the server's WAL position minus the slot's confirmed
/// position. Stops quietly when the connection fails (the next run starts a new poller).
async fn poll_slot_lag(client: tokio_postgres::Client, slot: String, metrics: Arc<Metrics>) {
    let mut timer = tokio::time::interval(Duration::from_secs(10));
    loop {
        timer.tick().await;
        let lag = client
            .query_opt(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        match lag {
            Ok(Some(row)) => metrics
                .slot_lag_bytes
                .set(row.get::<_, Option<i64>>(0).unwrap_or(0)),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("slot lag poll stopped: {e}");
                return;
            }
        }
    }
}

/// Runs the heartbeat action query every interval on its own ordinary connection (as Debezium
/// does), for as long as the run lasts. A failure (connecting or running the query) is logged at
/// warn with the server's message and retried at the next interval; it never stops the relay.
/// Repeats of the same failure are logged at most once a minute.
async fn run_heartbeats(params: ConnectParams, heartbeat: Heartbeat) {
    let mut timer = tokio::time::interval(heartbeat.interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await; // the first tick is immediate; the first heartbeat is one interval in
    let mut client: Option<tokio_postgres::Client> = None;
    let mut failures: u64 = 0;
    let mut last_warning: Option<(String, Instant)> = None;
    loop {
        timer.tick().await;
        if client.as_ref().map_or(true, |c| c.is_closed()) {
            match params.connect_sql().await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    failures += 1;
                    warn_heartbeat(&mut last_warning, failures, format!("cannot connect: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        match c.batch_execute(&heartbeat.query).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "heartbeat action query succeeded again");
                }
                failures = 0;
                last_warning = None;
                tracing::trace!("heartbeat action query executed");
            }
            Err(e) => {
                failures += 1;
                warn_heartbeat(&mut last_warning, failures, describe_sql_error(&e));
                if e.is_closed() {
                    client = None;
                }
            }
        }
    }
}

/// Logs a heartbeat failure at warn, unless the same message was logged less than a minute ago.
fn warn_heartbeat(last: &mut Option<(String, Instant)>, failures: u64, message: String) {
    let repeat = last
        .as_ref()
        .is_some_and(|(m, at)| *m == message && at.elapsed() < Duration::from_secs(60));
    if !repeat {
        tracing::warn!(
            failures,
            "heartbeat action query failed (the relay goes on; retried every heartbeat interval): {message}"
        );
        *last = Some((message, Instant::now()));
    }
}

/// The NOT NULL columns of an outbox table (pgoutput does not carry nullability; Debezium's
/// Connect schemas mark the other columns optional).
async fn not_null_columns(
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
async fn run_once(
    plan: &Plan,
    shutdown: &mut watch::Receiver<bool>,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    poison: &mut PoisonEvents,
) -> Result<(), PipelineError> {
    let client = plan.params.connect_sql().await?;
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

    let mut conn = ReplicationConnection::connect(&plan.params).await?;
    let system = conn.identify_system().await?;
    let (slot_name, start_lsn, snapshot) = start_snapshot(plan, &mut conn, &slot).await?;
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
    let (sink, deliveries) = KafkaSink::new(&plan.producer, metrics.clone(), health.clone())?;
    let sink = Arc::new(sink);
    // While librdkafka says Kafka is unreachable, ask the brokers now and then: an idle relay
    // has no delivery to tell readiness that they are back.
    let _kafka_probe = AbortOnDrop(tokio::spawn(probe_kafka(sink.clone(), health.clone())));
    let transactions = match &plan.exactly_once {
        Some(settings) => Some(
            Transactions::start(
                &sink,
                &plan.producer,
                settings,
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
            Some(start_positions(plan, &sink, settings, &slot, &system, start_lsn, metrics).await?)
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
        timeline = system.timeline,
        "streaming"
    );
    health.set_streaming(true);

    let mut relay = Relay {
        plan,
        metrics,
        router,
        checkpoint: Checkpoint::new(start_lsn),
        sink,
        transactions,
        positions,
        poison,
        skipping: false,
        stream,
        in_flight_bytes: 0,
        received: start_lsn,
        sent_flush: Lsn::ZERO,
        last_status_at: Instant::now(),
        liveness: Liveness::new(plan.receive_timeout, Instant::now()),
        commit_time_us: 0,
        final_lsn: Lsn::ZERO,
        snapshot: None,
    };
    metrics.confirmed_lsn.set(start_lsn.0 as i64);
    if let Some(feed) = snapshot {
        relay.begin_snapshot(feed)?;
    }
    relay
        .stream_until_shutdown(shutdown, deliveries, health)
        .await
}

/// At-least-once mode with `[offsets]`: makes sure the offsets topic exists, reads the slot's
/// recorded position and checks the slot against it (`position::resume_position`). A slot this
/// run created with a snapshot is accepted (with a warning) when it is ahead: the snapshot
/// publishes the rows in the tables.
async fn start_positions(
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

/// Opens the snapshot `slot.snapshot` asks for: creates the slot with an exported snapshot on `conn`
/// when needed, imports it on a new SQL connection and starts reading the tables there. Returns
/// the slot to stream from, its start position and the snapshot's rows.
async fn start_snapshot(
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
            let created = conn.create_slot_exporting_snapshot(&name, only).await?;
            tracing::info!(slot = %name, consistent_point = %created.consistent_point, temporary = only, "created replication slot with an exported snapshot");
            (
                name,
                created.consistent_point,
                Some(created.snapshot_name),
                only,
            )
        }
    };
    let client = plan.params.connect_sql().await?;
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
struct SnapshotFeed {
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
async fn next_snapshot_item(
    feed: &mut Option<SnapshotFeed>,
) -> Option<Result<SnapshotItem, SetupError>> {
    match feed {
        Some(feed) if feed.reading => feed.rows.recv().await,
        _ => std::future::pending().await,
    }
}

/// The state of one run.
struct Relay<'a> {
    plan: &'a Plan,
    metrics: &'a Metrics,
    router: Router,
    checkpoint: Checkpoint,
    /// Shared with the blocking flush at shutdown.
    sink: Arc<KafkaSink>,
    /// Exactly-once mode (`None`: at-least-once).
    transactions: Option<Transactions>,
    /// At-least-once mode with `[offsets]`: the position records (`position`).
    positions: Option<(Recorder, PositionTarget)>,
    /// Exactly-once mode: events to dead-letter on sight (see [`PoisonEvents`]).
    poison: &'a mut PoisonEvents,
    /// Exactly-once mode: the open transaction was published before this run (it is skipped).
    skipping: bool,
    stream: ReplicationStream,
    /// Bytes of records sent and not yet reported.
    in_flight_bytes: u64,
    /// The highest WAL end the server reported: the `write` LSN of status updates.
    received: Lsn,
    /// The `flush` LSN of the last status update sent.
    sent_flush: Lsn,
    /// When the last status update went out.
    last_status_at: Instant,
    /// How long the server has been silent (`source.receive_timeout_ms`).
    liveness: Liveness,
    /// Commit time of the open transaction (µs since 2000-01-01): the records' timestamp.
    commit_time_us: i64,
    /// Commit LSN of the open transaction, to name it in errors.
    final_lsn: Lsn,
    /// The snapshot being published; the stream is read only once it is acknowledged.
    snapshot: Option<SnapshotFeed>,
}

impl Relay<'_> {
    async fn stream_until_shutdown(
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
                Some(report) = deliveries.recv() => self.on_report(report),
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
                }
                self.sink.purge();
                Err(e)
            }
        }
    }

    /// Opens the snapshot's transaction: its rows are published like one transaction's inserts.
    /// (Begin and Commit go through `on_pgoutput` like the stream's, so exactly-once mode sees the
    /// snapshot as one transaction at the slot's start.)
    fn begin_snapshot(&mut self, feed: SnapshotFeed) -> Result<(), PipelineError> {
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

    fn on_snapshot_item(
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
    async fn finish_snapshot_if_acknowledged(&mut self) -> Result<bool, PipelineError> {
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

    async fn on_message(&mut self, message: ReplicationMessage) -> Result<(), PipelineError> {
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

    fn on_pgoutput(&mut self, message: Message, wal_start: Lsn) -> Result<(), PipelineError> {
        if self.skip_published(&message) {
            return Ok(());
        }
        match message {
            Message::Begin(begin) => {
                self.checkpoint.begin()?;
                self.commit_time_us = begin.commit_time_us;
                self.final_lsn = begin.final_lsn;
            }
            Message::Commit(commit) => self.checkpoint.commit(commit.end_lsn)?,
            Message::Relation(relation) => {
                self.router
                    .on_relation(&relation)
                    .map_err(|error| PipelineError::Route {
                        lsn: wal_start,
                        error,
                    })?;
            }
            Message::Insert(insert) => {
                let routed = match self.router.route_insert(
                    insert.relation_id,
                    &insert.new,
                    self.commit_time_us,
                ) {
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
    fn send_routed(&mut self, relation_id: u32, routed: Routed) -> Result<(), PipelineError> {
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

    fn on_report(&mut self, report: Report) -> Result<(), PipelineError> {
        match report {
            Report::Event(delivery) => self.on_delivery(delivery),
            Report::Position { lsn, outcome } => self.on_position_record(lsn, outcome),
        }
    }

    /// A position record was delivered (the cap moves) or failed (the run stops).
    fn on_position_record(
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
    fn record_position(&mut self) -> Result<(), PipelineError> {
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

    fn on_delivery(&mut self, delivery: Delivery) -> Result<(), PipelineError> {
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
    fn rejected(
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

    /// A row the router refused, with `errors.tolerance = all`: its raw key, payload and id go to
    /// the dead-letter topic, under a sequence number of its own like any event.
    fn dead_letter_unroutable(
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
    fn dead_letter_raw(
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
    fn dead_letter(
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
    fn send_dead_letter(
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

    fn update_in_flight_gauges(&self) {
        self.metrics
            .events_in_flight
            .set(self.checkpoint.in_flight() as i64);
        self.metrics
            .bytes_in_flight
            .set(self.in_flight_bytes as i64);
    }

    /// Exactly-once mode: whether `message` belongs to a transaction published before this run
    /// (Postgres replays from the slot, which may be behind the offsets topic; see
    /// `exactly_once`). Begin, Commit and the schema messages still go through.
    fn skip_published(&mut self, message: &Message) -> bool {
        let Some(t) = &mut self.transactions else {
            return false;
        };
        match message {
            Message::Begin(begin) => {
                self.skipping = t.batcher().skip(begin.final_lsn);
                if self.skipping {
                    self.metrics.transactions_skipped.inc();
                    tracing::debug!(final_lsn = %begin.final_lsn, "exactly-once: skipping a transaction published before");
                }
                false
            }
            Message::Commit(commit) => {
                t.batcher().pg_commit(commit.end_lsn);
                self.skipping = false;
                false
            }
            Message::Relation(_) | Message::Type(_) | Message::Origin(_) => false,
            _ => self.skipping,
        }
    }

    /// Exactly-once mode: a Kafka transaction committed (or failed: the run stops).
    fn on_kafka_commit(
        &mut self,
        result: transactional::CommitResult,
    ) -> Result<(), PipelineError> {
        match &mut self.transactions {
            Some(t) => Ok(t.on_commit(result)?),
            None => Ok(()),
        }
    }

    /// What may be confirmed to Postgres: the checkpoint's position, capped at the last position
    /// recorded in the offsets topic (exactly-once mode: the last committed offsets record).
    fn confirmable(&mut self) -> Lsn {
        let confirmed = self.checkpoint.confirmed();
        if let Some((recorder, _)) = &self.positions {
            return recorder.confirmable(confirmed);
        }
        match &mut self.transactions {
            Some(t) => t.batcher().confirmable(confirmed),
            None => confirmed,
        }
    }

    /// Sends a status update when the confirmed position moved or `status_interval` has passed.
    /// Records the position first when it moved.
    /// Gives the connection up when the server has been silent too long (`source::liveness`).
    async fn send_status_if_due(&mut self) -> Result<(), PipelineError> {
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
        if self.confirmable() != self.sent_flush
            || self.last_status_at.elapsed() >= self.plan.status_interval
        {
            self.send_status(false).await?;
        }
        Ok(())
    }

    /// Sends a standby status update: `flush` = the checkpoint's confirmed position.
    async fn send_status(&mut self, reply_requested_by_server: bool) -> Result<(), PipelineError> {
        self.send_status_asking(reply_requested_by_server, false)
            .await
    }

    /// [`Self::send_status`], with `ask_reply`: the server answers with a keepalive at once.
    async fn send_status_asking(
        &mut self,
        reply_requested_by_server: bool,
        ask_reply: bool,
    ) -> Result<(), PipelineError> {
        let flush = self.confirmable();
        debug_assert!(
            flush >= self.sent_flush,
            "confirmed position went backwards"
        );
        let write = self.received.max(flush);
        self.stream
            .send_status(write, flush, flush, ask_reply)
            .await?;
        if flush != self.sent_flush {
            tracing::debug!(%flush, reply_requested_by_server, "confirmed");
            self.metrics.confirmed_lsn.set(flush.0 as i64);
            self.metrics.confirmed_now();
        }
        self.metrics
            .producer_queue_depth
            .set(i64::from(self.sink.queued()));
        self.sent_flush = flush;
        self.last_status_at = Instant::now();
        Ok(())
    }

    /// At shutdown: writes the checkpoint's position and waits (bounded) for its delivery.
    async fn record_last_position(
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
    async fn shut_down(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_initial_only_snapshots_are_refused_with_exactly_once() {
        let base = "[source]\nurl = \"postgres://u@h/db\"\nsnapshot_mode = \"MODE\"\n\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n\n[exactly_once]\nenabled = true\n";
        let plan = |mode: &str| {
            Plan::from_config(&Config::from_toml(&base.replace("MODE", mode)).unwrap())
        };
        for mode in ["no_data", "initial", "always", "when_needed"] {
            assert!(plan(mode).is_ok(), "{mode}");
        }
        let e = plan("initial_only").err().expect("refused").to_string();
        assert!(
            e.contains("source.snapshot_mode") && e.contains("exactly_once"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_config_resolves() {
        let config = Config::from_toml(include_str!("../../config/outboxd.toml")).unwrap();
        let plan = Plan::from_config(&config).unwrap();
        assert_eq!(plan.setup.slot, "outboxd");
        assert_eq!(plan.producer.get("partitioner"), Some("murmur2_random"));
        assert_eq!(
            plan.router.topic_replacement,
            "outbox.event.${routedByValue}"
        );
        assert_eq!(plan.status_interval, Duration::from_secs(1));
    }

    #[test]
    fn heartbeat_settings_reach_the_plan() {
        let text = "[source]\nurl = \"postgres://u@h/d\"\nheartbeat_interval_ms = 250\nheartbeat_action_query = \"INSERT INTO hb DEFAULT VALUES\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n";
        let plan = Plan::from_config(&Config::from_toml(text).unwrap()).unwrap();
        assert_eq!(
            plan.heartbeat,
            Some(Heartbeat {
                interval: Duration::from_millis(250),
                query: "INSERT INTO hb DEFAULT VALUES".into()
            })
        );
        let config = Config::from_toml(include_str!("../../config/outboxd.toml")).unwrap();
        assert_eq!(Plan::from_config(&config).unwrap().heartbeat, None);
    }

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
                && message.contains("errors.tolerance = all"),
            "{message}"
        );
        let message = dead_letter(RDKafkaErrorCode::TopicAuthorizationFailed).to_string();
        assert!(
            message.contains("poison event e of public.outbox (transaction at 0/1)")
                && message.contains("dead-letter topic dlq"),
            "{message}"
        );
    }

    #[test]
    fn the_errors_section_reaches_the_plan() {
        let base = "[source]\nurl = \"postgres://u@h/d\"\nslot = \"s1\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n";
        let plan = Plan::from_config(&Config::from_toml(base).unwrap()).unwrap();
        assert_eq!(
            plan.errors.dead_letter_topic(),
            None,
            "tolerance none by default"
        );
        let text = format!(
            "{base}[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"outboxd.dlq\"\n\"errors.deadletterqueue.context.headers.enable\" = false\n"
        );
        let plan = Plan::from_config(&Config::from_toml(&text).unwrap()).unwrap();
        assert_eq!(plan.errors.dead_letter_topic(), Some("outboxd.dlq"));
        assert!(!plan.errors.context_headers);
        assert_eq!(plan.errors.connector_name, "s1");
        let missing = format!("{base}[errors]\n\"errors.tolerance\" = \"all\"\n");
        let err = Plan::from_config(&Config::from_toml(&missing).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("errors.\"errors.deadletterqueue.topic.name\""),
            "{err}"
        );
        let err = Config::from_toml(&format!("{base}[errors]\n\"errors.tolerance\" = [1]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("errors.\"errors.tolerance\""), "{err}");
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
}
