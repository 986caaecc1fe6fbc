//! The cleanup task (`[cleanup]`): rounds of deletes of confirmed outbox rows on an ordinary SQL
//! connection of its own (never the walsender), to the primary (`ConnectParams::connect_sql`).
//!
//! Each round takes a [`Mark`] (`crate::cleanup::MARK_SQL`), then, with the newest mark the
//! relay's confirmed position has passed ([`Marks::usable`]), deletes each table's rows that
//! the mark covers, by primary key, in batches of `batch_size` (one transaction each), at most
//! `max_rows_per_second`. The position comes from the relay through
//! `Metrics::confirmed_position`, which `status` sets after each status update sent outside a
//! snapshot. The rule and why it is safe are `crate::cleanup`'s.
//!
//! Owns the I/O only. A lost connection or a failed statement is counted
//! (`outboxd_cleanup_errors_total`), logged and retried with a backoff; a table without a
//! primary key stops outboxd (the operator asked for a cleanup that cannot work).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::PipelineError;
use crate::cleanup::{self, Cleanup, KeyColumn, Mark, Marks, Pacer};
use crate::config::TableName;
use crate::lsn::Lsn;
use crate::metrics::Metrics;
use crate::source::error::describe_sql_error;
use crate::source::params::ConnectParams;
use crate::source::setup::quote_table;

/// Why a cleanup session ended.
enum Stop {
    /// Retried after a backoff.
    Retry {
        stage: &'static str,
        message: String,
    },
    /// Stops outboxd.
    Fatal(String),
}

fn sql_error(stage: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Stop {
    move |e| Stop::Retry {
        stage,
        message: describe_sql_error(&e),
    }
}

/// Runs until a problem only the operator can fix (returned), else for ever.
pub(super) async fn run_cleanup(
    params: ConnectParams,
    settings: Cleanup,
    metrics: Arc<Metrics>,
) -> PipelineError {
    let mut confirmed = metrics.confirmed_position.subscribe();
    let mut marks = Marks::default();
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        match session(&params, &settings, &metrics, &mut marks, &mut confirmed).await {
            Stop::Fatal(message) => return PipelineError::Cleanup(message),
            Stop::Retry { stage, message } => {
                metrics.cleanup_errors.with_label_values(&[stage]).inc();
                if started.elapsed() > Duration::from_secs(60) {
                    failures = 0;
                }
                failures += 1;
                let delay = Duration::from_millis((500u64 << failures.min(6)).min(30_000))
                    .max(settings.interval.min(Duration::from_secs(30)));
                tracing::warn!(
                    stage,
                    retry_in_ms = delay.as_millis() as u64,
                    "cleanup: {message}; no row is deleted until it succeeds"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One connection's worth of rounds.
async fn session(
    params: &ConnectParams,
    settings: &Cleanup,
    metrics: &Metrics,
    marks: &mut Marks,
    confirmed: &mut tokio::sync::watch::Receiver<Lsn>,
) -> Stop {
    let client = match params.connect_sql().await {
        Ok(c) => c,
        Err(e) => {
            return Stop::Retry {
                stage: "connect",
                message: format!("connecting: {e}"),
            }
        }
    };
    let timeout = settings.statement_timeout.as_millis();
    if let Err(e) = client
        .batch_execute(&format!(
            "SET application_name = 'outboxd cleanup'; SET statement_timeout = {timeout}; SET lock_timeout = {timeout}"
        ))
        .await
    {
        return sql_error("connect")(e);
    }
    let mut keys = Vec::new();
    for table in &settings.tables {
        match primary_key(&client, table).await {
            Ok(key) => keys.push((table, key)),
            Err(stop) => return stop,
        }
    }
    for (table, key) in &keys {
        tracing::info!(
            %table,
            key = %key.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(","),
            batch_size = settings.batch_size,
            max_rows_per_second = settings.max_rows_per_second,
            interval_ms = settings.interval.as_millis() as u64,
            min_age_ms = settings.min_age.as_millis() as u64,
            "cleanup: deleting the rows whose events are confirmed"
        );
    }
    let mut pacer = Pacer::new(
        settings.max_rows_per_second,
        settings.batch_size,
        Instant::now(),
    );
    let mut timer = tokio::time::interval(settings.interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        match take_mark(&client).await {
            Ok(mark) => marks.push(mark),
            Err(stop) => return stop,
        }
        let position = *confirmed.borrow_and_update();
        let Some(mark) = marks.usable(position, Instant::now(), settings.min_age) else {
            tracing::trace!(confirmed = %position, marks = marks.len(), "cleanup: no mark confirmed yet");
            continue;
        };
        for (table, key) in &keys {
            match sweep(&client, settings, metrics, table, key, &mark, &mut pacer).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(%table, deleted = n, confirmed = %position, mark_lsn = %mark.wal, "cleanup: deleted confirmed rows")
                }
                Ok(_) => {}
                Err(stop) => return stop,
            }
        }
    }
}

/// The table's primary key columns; a table without one stops outboxd.
async fn primary_key(client: &Client, table: &TableName) -> Result<Vec<KeyColumn>, Stop> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quote_table(table)])
        .await
        .map_err(sql_error("connect"))?
        .get(0);
    if !exists {
        return Err(Stop::Retry {
            stage: "connect",
            message: format!("outbox table {table} does not exist (yet)"),
        });
    }
    let rows = client
        .query(cleanup::PRIMARY_KEY_SQL, &[&quote_table(table)])
        .await
        .map_err(sql_error("connect"))?;
    if rows.is_empty() {
        return Err(Stop::Fatal(format!(
            "outbox table {table} has no primary key, and [cleanup] deletes rows by primary key: add one (ALTER TABLE {} ADD PRIMARY KEY (id);), or leave the table out of cleanup.tables, or set cleanup.enabled = false",
            quote_table(table)
        )));
    }
    Ok(rows
        .iter()
        .map(|r| KeyColumn {
            name: r.get(0),
            sql_type: r.get(1),
        })
        .collect())
}

async fn take_mark(client: &Client) -> Result<Mark, Stop> {
    let row = client
        .query_one(cleanup::MARK_SQL, &[])
        .await
        .map_err(sql_error("mark"))?;
    let horizon: String = row.get(0);
    let wal: String = row.get(1);
    let bad = |what: &str, value: &str| Stop::Retry {
        stage: "mark",
        message: format!("the server returned an unreadable {what} {value:?}"),
    };
    Ok(Mark {
        horizon: cleanup::xid32(horizon.parse().map_err(|_| bad("xid", &horizon))?),
        wal: wal.parse().map_err(|_| bad("LSN", &wal))?,
        taken_at: Instant::now(),
    })
}

/// Deletes the rows of `table` that `mark` covers, batch after batch in primary key order,
/// paced at `max_rows_per_second` (`pacer`). Returns the rows deleted.
async fn sweep(
    client: &Client,
    settings: &Cleanup,
    metrics: &Metrics,
    table: &TableName,
    key: &[KeyColumn],
    mark: &Mark,
    pacer: &mut Pacer,
) -> Result<u64, Stop> {
    let first = client
        .prepare(&cleanup::delete_batch_sql(table, key, false))
        .await
        .map_err(sql_error("delete"))?;
    let next = client
        .prepare(&cleanup::delete_batch_sql(table, key, true))
        .await
        .map_err(sql_error("delete"))?;
    let horizon = mark.horizon.to_string();
    let limit = i64::from(settings.batch_size);
    let label = table.to_string();
    let mut after: Option<Vec<String>> = None;
    let mut total = 0u64;
    loop {
        // Before each batch: the rows deleted so far must fit the rate.
        let wait = pacer.wait(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&horizon, &limit];
        if let Some(last) = &after {
            args.extend(
                last.iter()
                    .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync)),
            );
        }
        let statement = if after.is_some() { &next } else { &first };
        let row = client
            .query_opt(statement, &args)
            .await
            .map_err(sql_error("delete"))?;
        let Some(row) = row else {
            return Ok(total); // nothing left under this mark
        };
        let deleted = row.get::<_, i64>(0).max(0) as u64;
        let selected = row.get::<_, i64>(1);
        after = Some(
            (0..key.len())
                .map(|i| row.get::<_, String>(i + 2))
                .collect(),
        );
        total += deleted;
        pacer.deleted(deleted);
        metrics
            .cleanup_rows_deleted
            .with_label_values(&[&label])
            .inc_by(deleted);
        if selected < limit {
            return Ok(total);
        }
    }
}
