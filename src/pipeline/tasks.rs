//! The side tasks of a run, each aborted when the run ends ([`AbortOnDrop`]): the Kafka probe
//! while the brokers are unreachable, the slot-lag poller and Debezium's heartbeat action query.
//!
//! None of them touches the relay's state or the replication stream; their failures are logged,
//! never fatal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::{Health, Metrics};
use crate::sink::KafkaSink;
use crate::source::error::describe_sql_error;
use crate::source::params::ConnectParams;

use super::Heartbeat;

/// Every few seconds while `health` says Kafka is unreachable: whether the brokers answer again.
pub(super) async fn probe_kafka(sink: Arc<KafkaSink>, health: Arc<Health>) {
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
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets `outboxd_slot_lag_bytes` every 10 s: the server's WAL position minus the slot's confirmed
/// position. Stops quietly when the connection fails (the next run starts a new poller).
pub(super) async fn poll_slot_lag(
    client: tokio_postgres::Client,
    slot: String,
    metrics: Arc<Metrics>,
) {
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
pub(super) async fn run_heartbeats(params: ConnectParams, heartbeat: Heartbeat) {
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
pub(super) fn warn_heartbeat(last: &mut Option<(String, Instant)>, failures: u64, message: String) {
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
