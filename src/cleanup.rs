//! Outbox housekeeping (`[cleanup]`, opt-in): outbox rows deleted once Kafka acknowledged them,
//! for applications that insert and never delete. The rules are here (pure: no I/O, no clock);
//! the task that runs them is `pipeline::cleanup`.
//!
//! # The invariant
//! A row is deleted only once its event is acknowledged by Kafka (and, with `[offsets]`, the
//! position recorded): **only rows whose transaction's commit `end_lsn` is at or below the
//! position `C` outboxd has confirmed to Postgres** (the `flush` LSN of its status updates,
//! `pipeline::status`), never one above it.
//!
//! A row does not carry its commit LSN, so the rule goes through a [`Mark`], taken on the
//! cleanup's own SQL connection by one statement ([`MARK_SQL`]): the xmin horizon `X` of the
//! statement's snapshot (every transaction id below `X` had ended when the snapshot was taken)
//! and `L = pg_current_wal_insert_lsn()`, read after the snapshot. A transaction ends (leaves
//! the proc array) only after its commit record is in WAL, so every committed transaction below
//! `X` has its commit record, and so its `end_lsn`, before `L`. Once `C >= L`, every row whose
//! `xmin` precedes `X` is therefore from a confirmed transaction ([`deletable`]), and only such
//! rows are deleted: the `DELETE` checks `age(xmin) > age(X)` on the very row version it removes
//! ([`delete_batch_sql`]). A row updated since keeps no old xmin and waits for a later mark; a
//! transaction still open or prepared has an id at or above `X` (and so have its
//! subtransactions); xids more than 2^31 apart compare as newer (never deleted).
//!
//! `C` only counts once streaming publishes: while a snapshot is being published it is not
//! passed on (the snapshot rows are older than the slot and not yet acknowledged). Nothing is
//! kept across a crash: a new process takes new marks and waits for its own relay's first
//! confirmation, so a crash at any point (before, during or after a `DELETE`, which is one
//! transaction) cannot delete a row whose event is not in Kafka.
//!
//! `cleanup.min_age_ms` uses the marks too: a mark taken at `t` covers only rows committed
//! before `t`, so using marks at least `min_age_ms` old ([`Marks::usable`]) deletes rows at least
//! that old, without a timestamp column.
//!
//! Rows the publication never carries are covered by the same rule: rows committed before the
//! slot existed (with `snapshot_mode = no_data` outboxd never publishes them) and rows a
//! publication row filter leaves out are deleted like published ones.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{ConfigError, SnapshotMode, TableName};
use crate::lsn::Lsn;
use crate::source::quote::quote_ident;

/// `[cleanup]`: delete outbox rows whose events Kafka acknowledged.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CleanupConfig {
    /// Delete outbox rows once their events are confirmed (acknowledged by Kafka and, with
    /// `[offsets]`, recorded). Default false.
    #[serde(default)]
    pub enabled: bool,
    /// The outbox tables to clean up, as `schema.table`; each must be one of `source.tables`.
    /// Default: all of them.
    pub tables: Option<Vec<String>>,
    /// Rows deleted by one `DELETE` statement (one transaction) at most. Default 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Rows deleted per second at most, over all tables. Default 5000.
    #[serde(default = "default_max_rows_per_second")]
    pub max_rows_per_second: u32,
    /// How often a round starts (a new mark, then deletes up to it), in milliseconds. Default
    /// 1000.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Keep every row at least this long after its commit, in milliseconds (e.g. to look at
    /// recent events in the table). Default 0.
    #[serde(default)]
    pub min_age_ms: u64,
    /// `statement_timeout` (and `lock_timeout`) of the cleanup's connection, in milliseconds.
    /// Default 30000.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        CleanupConfig {
            enabled: false,
            tables: None,
            batch_size: default_batch_size(),
            max_rows_per_second: default_max_rows_per_second(),
            interval_ms: default_interval_ms(),
            min_age_ms: 0,
            statement_timeout_ms: default_statement_timeout_ms(),
        }
    }
}

const fn default_batch_size() -> u32 {
    1000
}
const fn default_max_rows_per_second() -> u32 {
    5000
}
const fn default_interval_ms() -> u64 {
    1000
}
const fn default_statement_timeout_ms() -> u64 {
    30_000
}

/// `[cleanup]`, resolved (only when enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    pub tables: Vec<TableName>,
    pub batch_size: u32,
    pub max_rows_per_second: u32,
    pub interval: Duration,
    pub min_age: Duration,
    pub statement_timeout: Duration,
}

impl CleanupConfig {
    /// The settings when enabled (`None` when not), checked against the outbox tables and the
    /// snapshot mode.
    pub fn resolve(
        &self,
        source_tables: &[TableName],
        snapshot_mode: SnapshotMode,
    ) -> Result<Option<Cleanup>, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("cleanup.{key}"),
            message,
        };
        if !self.enabled {
            return Ok(None);
        }
        if snapshot_mode == SnapshotMode::InitialOnly {
            return Err(invalid(
                "enabled",
                "snapshot_mode initial_only publishes the rows once and confirms no position, so no row could ever be deleted; remove [cleanup] or use another source.snapshot_mode".into(),
            ));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(invalid(
                "batch_size",
                format!("{}: must be between 1 and 100000", self.batch_size),
            ));
        }
        if self.max_rows_per_second == 0 {
            return Err(invalid(
                "max_rows_per_second",
                "must be at least 1 (set cleanup.enabled = false to delete nothing)".into(),
            ));
        }
        if !(10..=3_600_000).contains(&self.interval_ms) {
            return Err(invalid(
                "interval_ms",
                format!(
                    "{}: must be between 10 and 3600000 (milliseconds)",
                    self.interval_ms
                ),
            ));
        }
        if self.statement_timeout_ms < 100 {
            return Err(invalid(
                "statement_timeout_ms",
                format!(
                    "{}: must be at least 100 (milliseconds)",
                    self.statement_timeout_ms
                ),
            ));
        }
        let tables = match &self.tables {
            None => source_tables.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(invalid(
                    "tables",
                    "must not be empty; remove the key to clean up every table of source.tables, or set cleanup.enabled = false".into(),
                ))
            }
            Some(names) => {
                let mut tables = Vec::new();
                for name in names {
                    let table = TableName::parse(name).map_err(|_| {
                        invalid("tables", format!("{name:?}: expected schema.table"))
                    })?;
                    if !source_tables.contains(&table) {
                        return Err(invalid(
                            "tables",
                            format!("{table} is not one of source.tables: outboxd deletes only rows of tables it publishes"),
                        ));
                    }
                    if !tables.contains(&table) {
                        tables.push(table);
                    }
                }
                tables
            }
        };
        Ok(Some(Cleanup {
            tables,
            batch_size: self.batch_size,
            max_rows_per_second: self.max_rows_per_second,
            interval: Duration::from_millis(self.interval_ms),
            min_age: Duration::from_millis(self.min_age_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }))
    }
}

/// What one mark says: every committed transaction whose id precedes `horizon` has its commit
/// record (its `end_lsn`) at or before `wal`. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The snapshot's xmin, as the 32-bit transaction id rows carry in `xmin`.
    pub horizon: u32,
    /// `pg_current_wal_insert_lsn()` read after the snapshot.
    pub wal: Lsn,
    /// When it was taken (for `min_age`).
    pub taken_at: Instant,
}

/// One statement: the snapshot's xmin horizon (64-bit, as text) and then the WAL insert
/// position. The snapshot is taken before the statement runs, the function reads the position
/// while it runs: after.
pub const MARK_SQL: &str =
    "SELECT txid_snapshot_xmin(txid_current_snapshot())::text, pg_current_wal_insert_lsn()::text";

/// A 64-bit transaction id (`txid_*`) as the 32-bit id a row's `xmin` holds.
pub fn xid32(xid64: u64) -> u32 {
    (xid64 & 0xFFFF_FFFF) as u32
}

/// Whether transaction id `a` precedes `b` in Postgres's circular order (as `age(a) > age(b)`
/// decides in SQL): within 2^31 of each other, `a` is older.
pub fn xid_precedes(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// **The rule**: a row whose `xmin` is `row_xmin` may be deleted under `mark` when outboxd has
/// confirmed `confirmed`: its transaction precedes the mark's horizon and the mark's WAL
/// position is confirmed. The `DELETE` statement applies exactly this (see the module
/// documentation for why it is enough).
pub fn deletable(row_xmin: u32, mark: &Mark, confirmed: Lsn) -> bool {
    mark.wal <= confirmed && xid_precedes(row_xmin, mark.horizon)
}

/// The marks taken and not yet used up, oldest first.
#[derive(Debug, Default)]
pub struct Marks {
    queue: VecDeque<Mark>,
}

/// At most this many marks are kept (one a round): with a long `min_age` older ones are thinned.
const MAX_MARKS: usize = 4096;

impl Marks {
    pub fn push(&mut self, mark: Mark) {
        if self.queue.len() >= MAX_MARKS {
            // Dropping a mark only delays deletion (a later mark covers more rows).
            self.queue.remove(1);
        }
        self.queue.push_back(mark);
    }

    /// The newest mark that may be used now: its WAL position is at or below `confirmed` and it
    /// is at least `min_age` old. Older marks are dropped (this one covers all their rows).
    pub fn usable(&mut self, confirmed: Lsn, now: Instant, min_age: Duration) -> Option<Mark> {
        let fits =
            |m: &Mark| m.wal <= confirmed && now.saturating_duration_since(m.taken_at) >= min_age;
        let mut best = None;
        while let Some(front) = self.queue.front() {
            if !fits(front) {
                break;
            }
            best = self.queue.pop_front();
        }
        if let Some(mark) = best {
            // Kept: a later round may use it again for rows it did not reach.
            self.queue.push_front(mark);
        }
        best
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Paces the deletes at `max_per_second`: a token bucket holding at most one batch of credit,
/// so that over any span at most `max_per_second × span + batch` rows go.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Rows may be deleted at `rate` since `since`; `deleted` of them were.
    since: Instant,
    deleted: u64,
    rate: f64,
    burst: u64,
}

impl Pacer {
    pub fn new(max_per_second: u32, batch: u32, now: Instant) -> Self {
        Pacer {
            since: now,
            deleted: 0,
            rate: f64::from(max_per_second.max(1)),
            burst: u64::from(batch),
        }
    }

    /// How long to wait before the next batch.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let due = Duration::from_secs_f64(self.deleted as f64 / self.rate);
        let elapsed = now.saturating_duration_since(self.since);
        let credit = Duration::from_secs_f64(self.burst as f64 / self.rate);
        if elapsed > due + credit {
            // Unused time beyond one batch's worth is forgotten.
            self.since = now - (due + credit).min(elapsed);
            return Duration::ZERO;
        }
        due.saturating_sub(elapsed)
    }

    /// `n` rows were deleted.
    pub fn deleted(&mut self, n: u64) {
        self.deleted += n;
    }
}

/// `"schema"."table"`.
fn quote_table(t: &TableName) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// A primary key column: its name and SQL type (`format_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub sql_type: String,
}

/// The columns of a table's primary key, in key order: `$1` is the quoted table name.
pub const PRIMARY_KEY_SQL: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
     WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
     ORDER BY array_position(i.indkey::int2[], a.attnum)";

/// One batch: the first `$2` rows (by primary key, after the key in `$3…` when `after`) whose
/// xmin precedes the horizon `$1`, deleted by primary key with the rule checked again on the
/// row version deleted. Returns one row when any was selected: the rows deleted, the rows
/// selected, and the last selected key (as text, one column per key column) to go on after.
pub fn delete_batch_sql(table: &TableName, key: &[KeyColumn], after: bool) -> String {
    let t = quote_table(table);
    let cols: Vec<String> = key.iter().map(|k| quote_ident(&k.name)).collect();
    let list = cols.join(", ");
    let rule = "age(xmin) > age($1::text::xid)";
    let after_clause = if after {
        let params: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("${}::text::{}", i + 3, k.sql_type))
            .collect();
        format!("({list}) > ({}) AND ", params.join(", "))
    } else {
        String::new()
    };
    let join: Vec<String> = cols.iter().map(|c| format!("t.{c} = d.{c}")).collect();
    let desc: Vec<String> = cols.iter().map(|c| format!("{c} DESC")).collect();
    let last: Vec<String> = cols.iter().map(|c| format!("last.{c}::text")).collect();
    format!(
        "WITH doomed AS (SELECT {list} FROM {t} WHERE {after_clause}{rule} ORDER BY {list} LIMIT $2), \
         gone AS (DELETE FROM {t} t USING doomed d WHERE {join} AND age(t.xmin) > age($1::text::xid) RETURNING 1) \
         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM doomed), {last} \
         FROM (SELECT {list} FROM doomed ORDER BY {desc} LIMIT 1) last",
        join = join.join(" AND "),
        desc = desc.join(", "),
        last = last.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(horizon: u32, wal: u64, taken_at: Instant) -> Mark {
        Mark {
            horizon,
            wal: Lsn(wal),
            taken_at,
        }
    }

    #[test]
    fn a_row_is_deletable_only_below_the_horizon_of_a_confirmed_mark() {
        let now = Instant::now();
        let m = mark(1000, 5000, now);
        // Confirmed at or past the mark: rows of older transactions only.
        assert!(deletable(999, &m, Lsn(5000)));
        assert!(deletable(3, &m, Lsn(9000)));
        assert!(
            !deletable(1000, &m, Lsn(5000)),
            "the horizon itself may still run"
        );
        assert!(!deletable(1001, &m, Lsn(9000)), "a newer transaction");
        // Not yet confirmed up to the mark: nothing, however old the row.
        assert!(!deletable(3, &m, Lsn(4999)));
        assert!(!deletable(999, &m, Lsn::ZERO));
    }

    #[test]
    fn transaction_ids_compare_circularly_as_age_does() {
        assert!(xid_precedes(10, 11));
        assert!(!xid_precedes(11, 10));
        assert!(!xid_precedes(10, 10));
        // Across the 32-bit wrap: 0xFFFF_FFF0 is older than 5.
        assert!(xid_precedes(0xFFFF_FFF0, 5));
        assert!(!xid_precedes(5, 0xFFFF_FFF0));
        // More than 2^31 apart: the "older" one looks newer, and is never deleted.
        assert!(!xid_precedes(100, 100 + (1 << 31) + 1));
        assert_eq!(xid32(0x0000_0003_0000_0010), 0x10);
        let wrapped = mark(xid32((1 << 32) + 5), 100, Instant::now());
        assert!(deletable(0xFFFF_FFF0, &wrapped, Lsn(100)));
    }

    #[test]
    fn the_newest_confirmed_mark_is_used_and_older_ones_dropped() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        marks.push(mark(10, 100, t0));
        marks.push(mark(20, 200, t0));
        marks.push(mark(30, 300, t0));
        assert_eq!(marks.usable(Lsn(99), t0, Duration::ZERO), None);
        assert_eq!(marks.len(), 3);
        assert_eq!(
            marks
                .usable(Lsn(250), t0, Duration::ZERO)
                .map(|m| m.horizon),
            Some(20)
        );
        assert_eq!(
            marks.len(),
            2,
            "the mark at 100 is covered by the one at 200"
        );
        assert_eq!(
            marks
                .usable(Lsn(250), t0, Duration::ZERO)
                .map(|m| m.horizon),
            Some(20),
            "kept for the next round"
        );
        assert_eq!(
            marks
                .usable(Lsn(1000), t0, Duration::ZERO)
                .map(|m| m.horizon),
            Some(30)
        );
        assert_eq!(marks.len(), 1);
    }

    #[test]
    fn min_age_uses_only_marks_old_enough() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        marks.push(mark(10, 100, t0));
        marks.push(mark(20, 200, t0 + Duration::from_secs(5)));
        let age = Duration::from_secs(10);
        assert_eq!(
            marks.usable(Lsn(1000), t0 + Duration::from_secs(9), age),
            None
        );
        assert_eq!(
            marks
                .usable(Lsn(1000), t0 + Duration::from_secs(12), age)
                .map(|m| m.horizon),
            Some(10)
        );
        assert_eq!(
            marks
                .usable(Lsn(1000), t0 + Duration::from_secs(15), age)
                .map(|m| m.horizon),
            Some(20)
        );
    }

    #[test]
    fn marks_are_bounded() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        for i in 0..(MAX_MARKS as u32 + 10) {
            marks.push(mark(i, u64::from(i), t0));
        }
        assert_eq!(marks.len(), MAX_MARKS);
        assert_eq!(
            marks.usable(Lsn(0), t0, Duration::ZERO).map(|m| m.horizon),
            Some(0),
            "the oldest mark stays"
        );
    }

    #[test]
    fn pacing_keeps_the_rate_with_at_most_one_batch_of_credit() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 100, t0);
        assert_eq!(p.wait(t0), Duration::ZERO);
        p.deleted(100);
        assert_eq!(p.wait(t0), Duration::from_millis(100));
        assert_eq!(
            p.wait(t0 + Duration::from_millis(40)),
            Duration::from_millis(60)
        );
        assert_eq!(p.wait(t0 + Duration::from_millis(100)), Duration::ZERO);
        // After a long idle time, only one batch may go at once, then the rate again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.wait(later), Duration::ZERO);
        p.deleted(100);
        assert_eq!(p.wait(later), Duration::ZERO, "one batch of credit");
        p.deleted(100);
        assert_eq!(p.wait(later), Duration::from_millis(100));
        // Over any span: at most rate × span + one batch.
        let mut p = Pacer::new(500, 50, t0);
        let mut now = t0;
        let mut total = 0;
        while now < t0 + Duration::from_secs(4) {
            now += p.wait(now);
            p.deleted(50);
            total += 50;
            now += Duration::from_millis(1);
        }
        assert!(total <= 500 * 4 + 50 + 50, "{total}");
    }

    #[test]
    fn the_delete_checks_the_rule_on_the_row_it_deletes() {
        let t = TableName::parse("public.outbox").unwrap();
        let key = [
            KeyColumn {
                name: "id".into(),
                sql_type: "uuid".into(),
            },
            KeyColumn {
                name: "created_at".into(),
                sql_type: "timestamp with time zone".into(),
            },
        ];
        let first = delete_batch_sql(&t, &key, false);
        assert!(
            first.starts_with("WITH doomed AS (SELECT \"id\", \"created_at\" FROM \"public\".\"outbox\" WHERE age(xmin) > age($1::text::xid) ORDER BY \"id\", \"created_at\" LIMIT $2)"),
            "{first}"
        );
        assert!(
            first.contains("WHERE t.\"id\" = d.\"id\" AND t.\"created_at\" = d.\"created_at\" AND age(t.xmin) > age($1::text::xid)"),
            "{first}"
        );
        let next = delete_batch_sql(&t, &key[..1], true);
        assert!(
            next.contains("WHERE (\"id\") > ($3::text::uuid) AND age(xmin)"),
            "{next}"
        );
    }

    #[test]
    fn settings_are_checked_with_the_key_named() {
        let tables = vec![TableName::parse("public.outbox").unwrap()];
        let on = CleanupConfig {
            enabled: true,
            ..CleanupConfig::default()
        };
        assert_eq!(
            CleanupConfig::default()
                .resolve(&tables, SnapshotMode::NoData)
                .unwrap(),
            None
        );
        let c = on.resolve(&tables, SnapshotMode::NoData).unwrap().unwrap();
        assert_eq!(c.tables, tables);
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.interval, Duration::from_secs(1));
        let bad = |c: CleanupConfig, mode: SnapshotMode| {
            c.resolve(&tables, mode).unwrap_err().to_string()
        };
        let e = bad(on.clone(), SnapshotMode::InitialOnly);
        assert!(
            e.contains("cleanup.enabled") && e.contains("initial_only"),
            "{e}"
        );
        let e = bad(
            CleanupConfig {
                batch_size: 0,
                ..on.clone()
            },
            SnapshotMode::NoData,
        );
        assert!(e.contains("cleanup.batch_size"), "{e}");
        let e = bad(
            CleanupConfig {
                max_rows_per_second: 0,
                ..on.clone()
            },
            SnapshotMode::NoData,
        );
        assert!(e.contains("cleanup.max_rows_per_second"), "{e}");
        let e = bad(
            CleanupConfig {
                tables: Some(vec!["public.other".into()]),
                ..on.clone()
            },
            SnapshotMode::NoData,
        );
        assert!(
            e.contains("cleanup.tables") && e.contains("source.tables"),
            "{e}"
        );
        let e = bad(
            CleanupConfig {
                interval_ms: 0,
                ..on
            },
            SnapshotMode::NoData,
        );
        assert!(e.contains("cleanup.interval_ms"), "{e}");
    }
}
