//! Exactly-once mode (opt-in, `[exactly_once] enabled = true`): the rules, as pure state.
//!
//! # The invariant
//! Events are produced inside Kafka transactions, and each Kafka transaction also writes an
//! *offsets record* (key: this slot, value: an end LSN `R`) to the offsets topic. Whole Postgres
//! transactions are grouped into one Kafka transaction (committed every `commit_interval_ms` or
//! `commit_max_events`, never in the middle of a Postgres transaction), and `R` is the `end_lsn`
//! of the last Postgres transaction it contains (or a later position confirmable without events).
//! Therefore: **a Postgres transaction whose commit record starts before `R` is published, in a
//! committed Kafka transaction; nothing at or after `R` is.** On start, outboxd reads `R` and
//! skips every replayed transaction whose `final_lsn < R` ([`crate::position::Replay`], the
//! same rule in both modes): Postgres may
//! replay from an older position after its own crash, or when outboxd died between the Kafka
//! commit and the confirmation.
//!
//! # The position at start
//! `R` is the *last* offsets record of the slot's key that a `read_committed` reader gets, not the
//! highest ([`crate::position::Latest`]), and it is read **before** `init_transactions`. Such a
//! reader stops at the first transaction still open, so what it reads was committed. Read after
//! `init_transactions`, the offsets record of a transaction that a dead instance left open would
//! be there once `init_transactions` aborted it, on a broker that shows aborted records to
//! `read_committed` readers (tansu 0.6; Apache Kafka does not): the start would take the aborted
//! position and skip what it claims. outboxd reads again after `init_transactions`; when the two
//! differ ([`StartPosition`]), a transaction was open at the first read and `init_transactions`
//! ended it: aborted (an instance that died while committing) or committed (another instance's
//! commit completing meanwhile). outboxd then asks the brokers whether they hide aborted records
//! (`sink::offsets::filters_aborted`, an aborted probe record): if they do, the second read is
//! committed and is `R`; if not (or the probe fails), `R` is the first read, written again in a
//! position-only transaction so that the next start does not find the aborted record last, and
//! a commit that completed meanwhile is sent again (a warning says so). For the same reason a
//! commit that fails is aborted and, when its offsets record may already be in the log, the last
//! committed `R` is written again. What remains on such a broker: a dead instance's transaction
//! that the broker itself aborted (after `transaction.timeout.ms`) before the next instance
//! started.
//!
//! outboxd never confirms to Postgres a position beyond `R` (the rule is [`crate::confirm`]'s). So a slot
//! whose `confirmed_flush_lsn` is *ahead* of `R` was moved by someone else (recreated, advanced by
//! hand, another tool on the same slot): the events between may never have been published, and
//! outboxd stops with [`ExactlyOnceError::SlotAhead`] instead of silently skipping them
//! ([`resume_position`]). When the outbox is idle but WAL moves (keepalives, transactions of other
//! tables), a Kafka transaction holding only the offsets record moves `R` on, at most once per
//! status interval, so the slot still advances.
//!
//! Zombie instances: the transactional id is the same for every instance of one slot, so the
//! `init_transactions` of a new instance fences the old one (its next produce or commit fails with
//! a fatal error; it starts over and stands by, as the new instance holds the slot).
//! `init_transactions` runs only after the replication slot was acquired, so a standby waiting
//! for the slot never fences the active instance.
//!
//! The Kafka I/O lives in [`crate::sink::transactional`]; this module has no I/O and no clock
//! (callers pass `now`).

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::lsn::Lsn;
pub use crate::position::{offsets_key, resume_position, OffsetRecord};
use crate::position::{parse_accept, BadRecord, Offsets, SlotAhead};

/// `[exactly_once]`: the opt-in exactly-once mode. See the module documentation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExactlyOnceConfig {
    /// Produce in Kafka transactions with the position in an offsets topic, so `read_committed`
    /// consumers see every event exactly once. Default false (at-least-once).
    #[serde(default)]
    pub enabled: bool,
    /// The producer's `transactional.id`. Default `outboxd-<slot>`. Every instance relaying the
    /// same slot must use the same one (that is what fences a zombie instance), and no two slots
    /// may share one.
    pub transactional_id: Option<String>,
    /// The compacted topic holding each slot's committed position. Default: `offsets.topic`
    /// (`outboxd-offsets`); kept for configurations written before `[offsets]` existed.
    pub offsets_topic: Option<String>,
    /// Commit the Kafka transaction after this many milliseconds. Default 100.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// ... or once it holds this many events, whichever comes first. Default 5000.
    #[serde(default = "default_commit_max_events")]
    pub commit_max_events: u64,
    /// The same as `offsets.accept_slot_position` (either may be used).
    pub accept_slot_position: Option<String>,
}

impl Default for ExactlyOnceConfig {
    fn default() -> Self {
        ExactlyOnceConfig {
            enabled: false,
            transactional_id: None,
            offsets_topic: None,
            commit_interval_ms: default_commit_interval_ms(),
            commit_max_events: default_commit_max_events(),
            accept_slot_position: None,
        }
    }
}

const fn default_commit_interval_ms() -> u64 {
    100
}
const fn default_commit_max_events() -> u64 {
    5000
}

/// The exactly-once settings, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactlyOnce {
    pub transactional_id: String,
    pub offsets_topic: String,
    pub commit_interval: Duration,
    pub commit_max_events: u64,
    pub accept_slot_position: Option<Lsn>,
}

impl ExactlyOnceConfig {
    /// `None` when the mode is off; the resolved settings for `slot` otherwise. The offsets topic
    /// and the accepted slot position default to `[offsets]`'s.
    pub fn resolve(
        &self,
        slot: &str,
        offsets: &Offsets,
    ) -> Result<Option<ExactlyOnce>, ExactlyOnceError> {
        if !self.enabled {
            return Ok(None);
        }
        let invalid = |key: &str, message: String| ExactlyOnceError::Config {
            key: format!("exactly_once.{key}"),
            message,
        };
        let transactional_id = self
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("outboxd-{slot}"));
        if transactional_id.trim().is_empty() {
            return Err(invalid(
                "transactional_id",
                "must not be empty; remove the key to use outboxd-<slot>".into(),
            ));
        }
        let offsets_topic = self
            .offsets_topic
            .clone()
            .unwrap_or_else(|| offsets.topic.clone());
        if offsets_topic.trim().is_empty() {
            return Err(invalid(
                "offsets_topic",
                "must not be empty; remove the key to use offsets.topic (outboxd-offsets)".into(),
            ));
        }
        if self.commit_interval_ms == 0 || self.commit_interval_ms > 60_000 {
            return Err(invalid(
                "commit_interval_ms",
                format!(
                    "{} is out of range: use 1 to 60000 (it must stay under the producer's transaction.timeout.ms)",
                    self.commit_interval_ms
                ),
            ));
        }
        if self.commit_max_events == 0 {
            return Err(invalid("commit_max_events", "must be at least 1".into()));
        }
        let accept_slot_position = parse_accept(
            "exactly_once.accept_slot_position",
            &self.accept_slot_position,
        )
        .map_err(|e| ExactlyOnceError::Config {
            key: e.key,
            message: e.message,
        })?
        .or(offsets.accept_slot_position);
        Ok(Some(ExactlyOnce {
            transactional_id,
            offsets_topic,
            commit_interval: Duration::from_millis(self.commit_interval_ms),
            commit_max_events: self.commit_max_events,
            accept_slot_position,
        }))
    }
}

/// Why exactly-once mode cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ExactlyOnceError {
    #[error("config key {key}: {message}")]
    Config { key: String, message: String },
    #[error(transparent)]
    SlotAhead(#[from] SlotAhead),
    #[error("this instance was fenced: another producer with transactional.id {transactional_id} took over, or the broker aborted this instance's Kafka transaction after transaction.timeout.ms ({error}); it starts over with a new producer and stands by while another instance holds the slot (if this repeats while streaming, two slots share one transactional_id)")]
    Fenced {
        transactional_id: String,
        error: String,
    },
    #[error("Kafka transaction ({doing}): {error}")]
    Kafka {
        doing: &'static str,
        error: String,
        /// librdkafka said the producer cannot go on (a new one is needed, after a restart).
        fatal: bool,
    },
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
}

impl ExactlyOnceError {
    /// Whether a restart (new producer, positions read again, replay from the slot) may succeed.
    /// Fencing is: the new run takes the slot before `init_transactions`, so it stands by while
    /// the instance that fenced this one holds the slot, and takes over once it is gone (or when
    /// the "fencing" was the broker aborting a transaction that outlived its timeout).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExactlyOnceError::Kafka { .. } | ExactlyOnceError::Fenced { .. }
        )
    }
}

/// What a start makes of the slot's position read before `init_transactions` and after it (see
/// "The position at start" above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// Both reads agree (the usual case).
    Agreed(Option<Lsn>),
    /// They differ and the brokers hide aborted records: what was read after is committed (a
    /// commit that completed while this instance started).
    Committed(Option<Lsn>),
    /// They differ and what was read after may be aborted: resume from what was read before, and
    /// write it again so that it is the last record.
    Restate {
        resume: Option<Lsn>,
        maybe_aborted: Option<Lsn>,
    },
}

impl StartPosition {
    /// `filters_aborted`: whether the brokers hide aborted records from `read_committed`
    /// readers, asked only when the reads differ (`None`: unknown).
    pub fn decide(
        before: Option<Lsn>,
        after: Option<Lsn>,
        filters_aborted: Option<bool>,
    ) -> StartPosition {
        if before == after {
            StartPosition::Agreed(before)
        } else if filters_aborted == Some(true) {
            StartPosition::Committed(after)
        } else {
            StartPosition::Restate {
                resume: before,
                maybe_aborted: after,
            }
        }
    }

    /// The position to resume from.
    pub fn recorded(&self) -> Option<Lsn> {
        match *self {
            StartPosition::Agreed(p) | StartPosition::Committed(p) => p,
            StartPosition::Restate { resume, .. } => resume,
        }
    }
}

/// What the pipeline should commit now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The position the offsets record carries.
    pub lsn: Lsn,
    /// Whether the transaction holds events (else it carries only the offsets record).
    pub with_events: bool,
}

/// When to commit, what to skip, how far to confirm. See the module documentation.
#[derive(Debug)]
pub struct Batcher {
    /// `R`: the position of the last committed offsets record.
    recorded: Lsn,
    /// The `end_lsn` of the newest Postgres transaction processed.
    last_commit_end: Lsn,
    /// When the first event of the open Kafka transaction was seen.
    open_since: Option<Instant>,
    /// A commit is under way (its position).
    committing: Option<Lsn>,
    /// When the last offsets-only transaction was started.
    last_position_write: Option<Instant>,
    commit_interval: Duration,
    commit_max_events: u64,
    position_interval: Duration,
}

impl Batcher {
    /// `resume` comes from [`resume_position`]; `position_interval` bounds how often an
    /// offsets-only transaction is written (the status interval).
    pub fn new(resume: Lsn, settings: &ExactlyOnce, position_interval: Duration) -> Batcher {
        Batcher {
            recorded: resume,
            last_commit_end: resume,
            open_since: None,
            committing: None,
            last_position_write: None,
            commit_interval: settings.commit_interval,
            commit_max_events: settings.commit_max_events,
            position_interval,
        }
    }

    /// A Postgres transaction committed (pgoutput `Commit.end_lsn`), skipped or not.
    pub fn pg_commit(&mut self, end_lsn: Lsn) {
        self.last_commit_end = self.last_commit_end.max(end_lsn);
    }

    /// `R`.
    pub fn recorded(&self) -> Lsn {
        self.recorded
    }

    /// Whether a commit is under way (the pipeline must not produce meanwhile).
    pub fn committing(&self) -> bool {
        self.committing.is_some()
    }

    /// Decides whether to commit now. `events` = events produced in the open Kafka transaction,
    /// `in_pg_transaction` = a Postgres transaction is open (never split it),
    /// `checkpoint_confirmed` = the checkpoint's confirmable position (every event before it is
    /// acknowledged). On `Some`, the caller commits and reports with [`Batcher::committed`] or
    /// [`Batcher::failed`].
    pub fn due(
        &mut self,
        now: Instant,
        events: u64,
        in_pg_transaction: bool,
        checkpoint_confirmed: Lsn,
    ) -> Option<Commit> {
        if self.committing.is_some() {
            return None;
        }
        if events > 0 && self.open_since.is_none() {
            self.open_since = Some(now);
        }
        if in_pg_transaction {
            return None;
        }
        let commit = if events > 0 {
            let opened = self.open_since.unwrap_or(now);
            if events < self.commit_max_events && now.duration_since(opened) < self.commit_interval
            {
                return None;
            }
            Commit {
                lsn: self.last_commit_end.max(checkpoint_confirmed),
                with_events: true,
            }
        } else {
            // Idle: move R on to what the checkpoint could confirm (keepalives, transactions
            // without outbox rows), at most once per position interval.
            let target = checkpoint_confirmed;
            let recent = self
                .last_position_write
                .is_some_and(|at| now.duration_since(at) < self.position_interval);
            if target <= self.recorded || recent {
                return None;
            }
            self.last_position_write = Some(now);
            Commit {
                lsn: target,
                with_events: false,
            }
        };
        self.committing = Some(commit.lsn);
        Some(commit)
    }

    /// Makes the next [`Batcher::due`] commit the open transaction whatever its age and size
    /// (shutdown).
    pub fn force_due(&mut self) {
        self.open_since = Some(Instant::now() - self.commit_interval);
    }

    /// The commit started by [`Batcher::due`] succeeded: `R` moves to its position.
    pub fn committed(&mut self) {
        if let Some(lsn) = self.committing.take() {
            self.recorded = self.recorded.max(lsn);
        }
        self.open_since = None;
    }

    /// The commit failed (the run stops; nothing moves).
    pub fn failed(&mut self) {
        self.committing = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets() -> Offsets {
        crate::position::OffsetsConfig::default().resolve().unwrap()
    }

    fn settings() -> ExactlyOnce {
        ExactlyOnceConfig {
            enabled: true,
            ..Default::default()
        }
        .resolve("s1", &offsets())
        .unwrap()
        .unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        assert_eq!(
            ExactlyOnceConfig::default()
                .resolve("s", &offsets())
                .unwrap(),
            None
        );
        let s = settings();
        assert_eq!(s.transactional_id, "outboxd-s1");
        assert_eq!(s.offsets_topic, "outboxd-offsets");
        assert_eq!(s.commit_interval, Duration::from_millis(100));
        let bad = |c: ExactlyOnceConfig| c.resolve("s", &offsets()).unwrap_err().to_string();
        let on = ExactlyOnceConfig {
            enabled: true,
            ..Default::default()
        };
        let e = bad(ExactlyOnceConfig {
            commit_interval_ms: 0,
            ..on.clone()
        });
        assert!(e.contains("exactly_once.commit_interval_ms"), "{e}");
        let e = bad(ExactlyOnceConfig {
            accept_slot_position: Some("16B3748".into()),
            ..on.clone()
        });
        assert!(
            e.contains("exactly_once.accept_slot_position") && e.contains("X/Y"),
            "{e}"
        );
        let e = bad(ExactlyOnceConfig {
            transactional_id: Some(" ".into()),
            ..on
        });
        assert!(e.contains("exactly_once.transactional_id"), "{e}");
    }

    #[test]
    fn the_section_reaches_the_plan_and_makes_the_producer_transactional() {
        use crate::config::Config;
        use crate::pipeline::Plan;
        let base = "[source]\nurl = \"postgres://u@h/d\"\nslot = \"s1\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n";
        let plan = Plan::from_config(&Config::from_toml(base).unwrap()).unwrap();
        assert_eq!(plan.exactly_once, None);
        assert_eq!(plan.producer.get("transactional.id"), None);
        let text = format!("{base}[exactly_once]\nenabled = true\ncommit_interval_ms = 250\n");
        let plan = Plan::from_config(&Config::from_toml(&text).unwrap()).unwrap();
        let eos = plan.exactly_once.unwrap();
        assert_eq!(eos.commit_interval, Duration::from_millis(250));
        assert_eq!(plan.producer.get("transactional.id"), Some("outboxd-s1"));
        assert_eq!(plan.producer.get("enable.idempotence"), Some("true"));
        let err = Config::from_toml(&format!("{base}[exactly_once]\nenable = true\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable"), "{err}");
        let bad = format!("{base}[exactly_once]\nenabled = true\ncommit_max_events = 0\n");
        let err = Plan::from_config(&Config::from_toml(&bad).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("exactly_once.commit_max_events"), "{err}");
    }

    #[test]
    fn a_moved_slot_stops_exactly_once_mode_for_good() {
        let e: ExactlyOnceError = resume_position("s1", Lsn(400), Some(Lsn(300)), None, "t", "k")
            .unwrap_err()
            .into();
        assert!(!e.is_transient());
        assert!(
            e.to_string().contains("accept_slot_position = \"0/190\""),
            "{e}"
        );
    }

    #[test]
    fn the_offsets_section_is_the_default_and_the_old_keys_still_win() {
        let on = ExactlyOnceConfig {
            enabled: true,
            ..Default::default()
        };
        let offsets = crate::position::OffsetsConfig {
            topic: "positions".into(),
            accept_slot_position: Some("0/10".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let s = on.resolve("s1", &offsets).unwrap().unwrap();
        assert_eq!(s.offsets_topic, "positions");
        assert_eq!(s.accept_slot_position, Some(Lsn(16)));
        let own = ExactlyOnceConfig {
            offsets_topic: Some("eos-positions".into()),
            accept_slot_position: Some("0/20".into()),
            ..on
        };
        let s = own.resolve("s1", &offsets).unwrap().unwrap();
        assert_eq!(s.offsets_topic, "eos-positions");
        assert_eq!(s.accept_slot_position, Some(Lsn(32)));
    }

    #[test]
    fn commits_on_interval_or_size_never_inside_a_postgres_transaction() {
        let s = ExactlyOnce {
            commit_max_events: 10,
            ..settings()
        };
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut b = Batcher::new(Lsn(100), &s, Duration::from_secs(1));
        assert_eq!(b.due(t0, 3, true, Lsn(100)), None, "first events seen");
        b.pg_commit(Lsn(200));
        assert_eq!(b.due(ms(50), 3, false, Lsn(100)), None, "interval not over");
        assert_eq!(
            b.due(ms(150), 12, true, Lsn(100)),
            None,
            "never inside a Postgres transaction, even when large"
        );
        b.pg_commit(Lsn(300));
        let c = b.due(ms(150), 12, false, Lsn(200)).unwrap();
        assert_eq!(
            c,
            Commit {
                lsn: Lsn(300),
                with_events: true
            }
        );
        assert!(b.committing());
        assert_eq!(b.due(ms(400), 12, false, Lsn(300)), None, "one at a time");
        assert_eq!(
            crate::confirm::capped(Lsn(300), Some(b.recorded())),
            Lsn(100),
            "not committed yet"
        );
        b.committed();
        assert_eq!(b.recorded(), Lsn(300));
        assert_eq!(
            crate::confirm::capped(Lsn(300), Some(b.recorded())),
            Lsn(300)
        );
        assert_eq!(
            crate::confirm::capped(Lsn(250), Some(b.recorded())),
            Lsn(250),
            "and never beyond the checkpoint"
        );
        // By size: the interval restarts with the next transaction's first event.
        assert_eq!(b.due(ms(500), 2, false, Lsn(300)), None);
        b.pg_commit(Lsn(400));
        assert!(b.due(ms(510), 10, false, Lsn(300)).is_some());
        b.failed();
        assert_eq!(b.recorded(), Lsn(300), "a failed commit moves nothing");
    }

    #[test]
    fn idle_positions_are_recorded_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut b = Batcher::new(Lsn(100), &settings(), Duration::from_secs(1));
        assert_eq!(b.due(t0, 0, false, Lsn(100)), None, "nothing new to record");
        let c = b.due(t0, 0, false, Lsn(150)).unwrap();
        assert_eq!(
            c,
            Commit {
                lsn: Lsn(150),
                with_events: false
            }
        );
        b.committed();
        assert_eq!(
            crate::confirm::capped(Lsn(180), Some(b.recorded())),
            Lsn(150),
            "a keepalive past R waits"
        );
        assert_eq!(
            b.due(t0 + Duration::from_millis(500), 0, false, Lsn(180)),
            None
        );
        assert!(b
            .due(t0 + Duration::from_millis(1000), 0, false, Lsn(180))
            .is_some());
        b.committed();
        assert_eq!(
            crate::confirm::capped(Lsn(180), Some(b.recorded())),
            Lsn(180)
        );
    }

    #[test]
    fn a_start_trusts_the_second_read_only_where_aborted_records_are_hidden() {
        let (r100, r200) = (Some(Lsn(0x100)), Some(Lsn(0x200)));
        let d = StartPosition::decide;
        assert_eq!(d(r100, r100, None), StartPosition::Agreed(r100));
        assert_eq!(d(None, None, None), StartPosition::Agreed(None));
        // Apache Kafka: a commit that completed while this instance started.
        assert_eq!(d(r100, r200, Some(true)), StartPosition::Committed(r200));
        assert_eq!(d(r100, r200, Some(true)).recorded(), r200);
        // tansu, or the probe failed: the first read, restated.
        for filters in [Some(false), None] {
            let p = d(r100, r200, filters);
            assert_eq!(
                p,
                StartPosition::Restate {
                    resume: r100,
                    maybe_aborted: r200
                }
            );
            assert_eq!(p.recorded(), r100);
        }
        assert_eq!(
            d(None, r200, None).recorded(),
            None,
            "no committed record yet"
        );
    }
}
