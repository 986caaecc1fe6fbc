//! Slot safety: the position outboxd published, recorded in Kafka, against the slot's.
//!
//! # The invariant
//! outboxd writes its confirmed position `R` to a compacted offsets topic (key: this slot,
//! [`offsets_key`]) and **never confirms to Postgres a position beyond the last `R` that Kafka
//! acknowledged**. So, as long as only outboxd moves the slot, its `confirmed_flush_lsn` is at or
//! below `R`. A slot found *ahead* of `R` at start was moved by someone else (dropped and
//! recreated, advanced with `pg_replication_slot_advance`, consumed by another program): the
//! events between may never have reached Kafka, so outboxd stops with [`SlotAhead`] naming both
//! positions instead of skipping them silently ([`resume_position`]). The operator accepts the
//! gap with `offsets.accept_slot_position` (exactly the slot's position), or `outboxd slot drop`
//! forgets the recorded position together with the slot.
//!
//! A slot *behind* `R` is normal: Postgres persists `confirmed_flush_lsn` lazily, so after its
//! crash it replays from an older position (duplicates in at-least-once mode, skipped in
//! exactly-once mode).
//!
//! In at-least-once mode [`Recorder`] decides when a record is written: when the checkpoint moved
//! past the last one sent, one at a time, and the confirmable position is
//! `min(checkpoint, acknowledged R)`. In exactly-once mode the record travels inside each Kafka
//! transaction instead (see [`crate::exactly_once`]); both modes write the same records under the
//! same key, so a slot can switch between them.
//!
//! This module is pure: no I/O (the Kafka side is `sink::offsets`), no clock.

use serde::{Deserialize, Serialize};

use crate::lsn::Lsn;

/// `[offsets]`: where outboxd records the position it published.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OffsetsConfig {
    /// Record the published position in Kafka and check the slot against it at start, so a slot
    /// moved or recreated by someone else stops outboxd instead of losing events silently.
    /// Default true. Exactly-once mode always records it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The compacted topic holding each slot's position. Default `outboxd-offsets`. Created
    /// (1 partition, `cleanup.policy=compact`) when missing.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// After outboxd stopped because the slot was moved by someone else (the error names both
    /// positions), set this to the slot's position *as printed in that error* to accept it and
    /// resume from there. Has no effect at any other position.
    pub accept_slot_position: Option<String>,
    /// After outboxd stopped because the slot did not exist although it had published from it
    /// (a failover to a standby the slot was not synchronized to; the error names the
    /// position), set this to the recorded position *as printed in that error* to accept the
    /// gap: outboxd then creates a new slot at the server's current position. Has no effect at
    /// any other position.
    pub accept_missing_slot: Option<String>,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        OffsetsConfig {
            enabled: true,
            topic: default_topic(),
            accept_slot_position: None,
            accept_missing_slot: None,
        }
    }
}

const fn default_true() -> bool {
    true
}

/// The default offsets topic.
pub fn default_topic() -> String {
    "outboxd-offsets".into()
}

/// The `[offsets]` settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsets {
    pub topic: String,
    pub accept_slot_position: Option<Lsn>,
    /// `accept_missing_slot`: the recorded position whose gap is accepted.
    pub accept_missing_slot: Option<Lsn>,
}

/// A bad `[offsets]` (or `[exactly_once]`) key.
#[derive(Debug, thiserror::Error)]
#[error("config key {key}: {message}")]
pub struct OffsetsConfigError {
    pub key: String,
    pub message: String,
}

impl OffsetsConfig {
    /// The settings, whether or not at-least-once mode records positions (`enabled`).
    pub fn resolve(&self) -> Result<Offsets, OffsetsConfigError> {
        if self.topic.trim().is_empty() {
            return Err(OffsetsConfigError {
                key: "offsets.topic".into(),
                message: "must not be empty; remove the key to use outboxd-offsets (or set offsets.enabled = false to record no position)".into(),
            });
        }
        Ok(Offsets {
            topic: self.topic.clone(),
            accept_slot_position: parse_accept(
                "offsets.accept_slot_position",
                &self.accept_slot_position,
            )?,
            accept_missing_slot: parse_accept(
                "offsets.accept_missing_slot",
                &self.accept_missing_slot,
            )?,
        })
    }
}

/// Parses an `accept_slot_position` value.
pub fn parse_accept(key: &str, value: &Option<String>) -> Result<Option<Lsn>, OffsetsConfigError> {
    match value {
        None => Ok(None),
        Some(s) => s.parse::<Lsn>().map(Some).map_err(|e| OffsetsConfigError {
            key: key.to_string(),
            message: format!("{e}; copy the position from outboxd's error message"),
        }),
    }
}

/// The value of an offsets record (JSON). `lsn` is the position `R` of the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRecord {
    /// `R` in Postgres' `X/Y` form.
    pub lsn: String,
    /// The slot, for people reading the topic.
    pub slot: String,
    /// The Postgres timeline when it was written (diagnostics).
    pub timeline: u32,
    /// The producer's transactional id in exactly-once mode (diagnostics); absent otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transactional_id: String,
}

impl OffsetRecord {
    pub fn position(&self) -> Result<Lsn, String> {
        self.lsn.parse::<Lsn>().map_err(|e| e.to_string())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an OffsetRecord always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<OffsetRecord, String> {
        let record: OffsetRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        record.position()?;
        Ok(record)
    }
}

/// The position the offsets topic holds for one key, read record by record in log order: the
/// **last** record wins (a tombstone forgets the position). Not the highest: after a failed
/// commit, exactly-once mode writes the committed position again after the aborted transaction's
/// record (`sink::transactional`), for brokers whose `read_committed` consumers still see aborted
/// records. Both modes otherwise write positions in increasing order, so the last is the highest.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Latest(Option<(Lsn, u32)>);

impl Latest {
    /// The next record of the key: `None` is a tombstone. A value that is not an offsets record
    /// is an error (the caller names the record).
    pub fn record(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        self.0 = match value {
            None => None,
            Some(bytes) => {
                let record = OffsetRecord::from_json(bytes)?;
                Some((record.position()?, record.timeline))
            }
        };
        Ok(())
    }

    pub fn position(&self) -> Option<Lsn> {
        self.0.map(|(lsn, _)| lsn)
    }

    /// The Postgres timeline the position was written on.
    pub fn timeline(&self) -> Option<u32> {
        self.0.map(|(_, timeline)| timeline)
    }
}

/// Whether an offsets key (`<system identifier>/<database>/<slot>`) is the same database and
/// slot of another cluster than `key`: the cluster was replaced (restored, upgraded with
/// pg_upgrade, another server), so the position recorded there is not this slot's.
pub fn same_slot_of_another_cluster(key: &str, other: &str) -> bool {
    let tail = |k: &str| k.split_once('/').map(|(_, rest)| rest.to_string());
    other != key && tail(other).is_some() && tail(other) == tail(key)
}

/// The offsets-record key of one slot: `<system identifier>/<database>/<slot>`, so that slots of
/// the same name in other databases or clusters never share a position.
pub fn offsets_key(system_id: u64, database: &str, slot: &str) -> String {
    format!("{system_id}/{database}/{slot}")
}

/// The slot is ahead of the position outboxd recorded: someone else moved it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slot {slot}: its confirmed_flush_lsn {slot_lsn} is ahead of the position outboxd last published ({recorded}, offsets topic {topic}, key {key}); outboxd never confirms beyond what it published, so someone else moved or recreated the slot, and the events between may never have reached Kafka. outboxd does not skip them silently: re-publish what is missing from the outbox table (or accept the gap), then set offsets.accept_slot_position = \"{slot_lsn}\" to resume from the slot's position; or, to start over, drop the slot with `outboxd slot drop` (which also forgets the recorded position) and let outboxd create it again")]
pub struct SlotAhead {
    pub slot: String,
    pub slot_lsn: Lsn,
    pub recorded: Lsn,
    pub topic: String,
    pub key: String,
}

/// A record under this slot's key in the offsets topic that is not an outboxd position: another
/// program writes to the topic. Permanent, in both modes (`sink::offsets`, exactly-once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offsets topic {topic}: record at partition {partition} offset {offset} for this slot is not an outboxd position ({message}); another program writes to the topic: give outboxd a topic of its own (offsets.topic)")]
pub struct BadRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub message: String,
}

/// The slot does not exist, although outboxd recorded a position published from it: it was
/// dropped, or this server is a promoted standby the slot was not synchronized to. A new slot
/// would start at the server's current position, and the transactions committed between the
/// recorded position and it could never be decoded any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replication slot {slot} does not exist on {host} (timeline {timeline}), but outboxd published up to {recorded} from it (offsets topic {topic}, key {key}{recorded_timeline}); a new slot would start at the server's current position {current}, and what was committed between {recorded} and {current} ({window}) cannot be decoded any more. This is what a failover to a standby the slot was not synchronized to looks like (PostgreSQL 17+ synchronizes failover slots: see docs/operations.md, Primary failover), or someone dropped the slot. outboxd does not create a new slot silently. To resume without losing events, publish the rows still in the outbox tables first: set source.snapshot_mode = \"initial\" (consumers may see some events twice). To accept the gap instead, set offsets.accept_missing_slot = \"{recorded}\"; or, to start over (the slot was dropped on purpose), run `outboxd slot drop`, which forgets the recorded position", recorded_timeline = .recorded_timeline.map(|t| format!(", written on timeline {t}")).unwrap_or_default(), window = wal_window(*.recorded, *.current))]
pub struct SlotMissing {
    pub slot: String,
    /// `host:port` of the server.
    pub host: String,
    pub timeline: u32,
    pub recorded: Lsn,
    pub recorded_timeline: Option<u32>,
    /// The server's current WAL position.
    pub current: Lsn,
    pub topic: String,
    pub key: String,
}

/// The size of the WAL between two positions, for messages (`4.5 kB of WAL`).
fn wal_window(from: Lsn, to: Lsn) -> String {
    let bytes = to.0.saturating_sub(from.0);
    match bytes {
        0..=9_999 => format!("{bytes} bytes of WAL"),
        10_000..=9_999_999 => format!("{:.1} kB of WAL", bytes as f64 / 1e3),
        _ => format!("{:.1} MB of WAL", bytes as f64 / 1e6),
    }
}

/// What a start does about a slot that does not exist (see [`SlotMissing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingSlot {
    /// Create it: nothing was recorded (a first start), or a snapshot of the new slot publishes
    /// the rows in the tables (the existing acceptance of a new slot with a snapshot).
    Create,
    /// Create it at the current position and accept the gap (`accept_missing_slot`).
    CreateAcceptingGap,
    /// Stop with [`SlotMissing`].
    Stop,
}

/// The decision for a missing slot, from the position recorded for it, whether the new slot
/// will be created with a snapshot, and `accept_missing_slot`.
pub fn missing_slot(
    recorded: Option<Lsn>,
    with_snapshot: bool,
    accept: Option<Lsn>,
) -> MissingSlot {
    match recorded {
        None => MissingSlot::Create,
        Some(_) if with_snapshot => MissingSlot::Create,
        Some(r) if accept == Some(r) => MissingSlot::CreateAcceptingGap,
        Some(_) => MissingSlot::Stop,
    }
}

/// Where to resume, given the slot's `confirmed_flush_lsn` and the position read from the offsets
/// topic (`None`: no record for this slot yet, a first start). Returns the position `R` that is
/// published (the confirmation cap); a slot ahead of `R` is an error unless accepted by `accept`
/// (exactly that position).
pub fn resume_position(
    slot_name: &str,
    slot_lsn: Lsn,
    recorded: Option<Lsn>,
    accept: Option<Lsn>,
    topic: &str,
    key: &str,
) -> Result<Lsn, SlotAhead> {
    match recorded {
        None => Ok(slot_lsn),
        Some(recorded) if slot_lsn <= recorded => Ok(recorded),
        Some(_) if accept == Some(slot_lsn) => Ok(slot_lsn),
        Some(recorded) => Err(SlotAhead {
            slot: slot_name.to_string(),
            slot_lsn,
            recorded,
            topic: topic.to_string(),
            key: key.to_string(),
        }),
    }
}

/// The slot position [`resume_position`] may accept besides one at or behind the record: the
/// configured one (`accept_slot_position`), or the slot's own when this run created the slot with
/// a snapshot, which publishes the rows still in the tables.
pub fn acceptable(
    recorded: Option<Lsn>,
    slot_lsn: Lsn,
    new_slot_with_snapshot: bool,
    configured: Option<Lsn>,
) -> Option<Lsn> {
    match recorded {
        Some(r) if r < slot_lsn && new_slot_with_snapshot => Some(slot_lsn),
        _ => configured,
    }
}

/// What a start does not publish again: the transactions a recorded position covers.
///
/// `R` (read from the offsets topic at start, in either mode) means: every Postgres transaction
/// whose commit record starts before `R` was published and acknowledged (at-least-once: `R` is a
/// checkpoint position, the `end_lsn` of a fully acknowledged transaction or a keepalive position
/// after them; exactly-once: the end of the last transaction of a committed Kafka transaction).
/// Postgres persists a slot's `confirmed_flush_lsn` only now and then, so after its restart (or a
/// crash of outboxd between recording `R` and confirming it) the walsender sends such
/// transactions again. They are recognised by pgoutput's `Begin.final_lsn` (the commit record's
/// start) and skipped whole; Begin and Commit still reach the checkpoint, so the slot moves on.
/// What remains published twice after a crash of outboxd: the events acknowledged after the last
/// position record (at-least-once mode), never what `R` covers.
#[derive(Debug, Clone)]
pub struct Replay {
    /// `R` as read at start.
    recorded: Lsn,
    /// The open transaction is one `R` covers.
    skipping: bool,
    /// A transaction `R` does not cover has committed: nothing later is skipped.
    done: bool,
    /// Transactions and changes skipped so far.
    transactions: u64,
    changes: u64,
}

/// What a replay skipped, once it caught up with `R` ([`Replay::commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySkipped {
    pub recorded: Lsn,
    pub transactions: u64,
    pub changes: u64,
}

impl Replay {
    /// `recorded` is `R`; `slot_lsn` the slot's `confirmed_flush_lsn`. `None` when the slot is
    /// not behind `R` (Postgres sends nothing `R` covers).
    pub fn behind(recorded: Lsn, slot_lsn: Lsn) -> Option<Replay> {
        (slot_lsn < recorded).then_some(Replay {
            recorded,
            skipping: false,
            done: false,
            transactions: 0,
            changes: 0,
        })
    }

    /// `R`.
    pub fn recorded(&self) -> Lsn {
        self.recorded
    }

    /// A transaction begins (pgoutput `Begin.final_lsn`). Returns whether `R` covers it: its
    /// changes are then skipped until its Commit.
    pub fn begin(&mut self, final_lsn: Lsn) -> bool {
        self.skipping = !self.done && final_lsn < self.recorded;
        if self.skipping {
            self.transactions += 1;
        }
        self.skipping
    }

    /// A change of the open transaction: whether it is skipped (and counted).
    pub fn skip_change(&mut self) -> bool {
        if self.skipping {
            self.changes += 1;
        }
        self.skipping
    }

    /// The open transaction committed. Returns what was skipped when this was the first
    /// transaction `R` does not cover (the replay caught up: nothing later is skipped).
    pub fn commit(&mut self) -> Option<ReplaySkipped> {
        let covered = std::mem::take(&mut self.skipping);
        if covered || self.done {
            return None;
        }
        self.done = true;
        Some(ReplaySkipped {
            recorded: self.recorded,
            transactions: self.transactions,
            changes: self.changes,
        })
    }

    /// Whether the replay caught up with `R`.
    pub fn done(&self) -> bool {
        self.done
    }
}

/// At-least-once mode: which offsets record to write, and how far Postgres may be confirmed.
#[derive(Debug)]
pub struct Recorder {
    /// The newest position Kafka acknowledged (or read at start): the confirmation cap.
    recorded: Lsn,
    /// The newest position sent (acknowledged or not).
    sent: Lsn,
    /// A record is on its way.
    in_flight: bool,
}

impl Recorder {
    /// `resume` comes from [`resume_position`].
    pub fn new(resume: Lsn) -> Recorder {
        Recorder {
            recorded: resume,
            sent: resume,
            in_flight: false,
        }
    }

    /// The position to write now, if any: the checkpoint's, when it moved past the last record
    /// sent and no record is on its way. The caller must send it and report the outcome.
    pub fn due(&mut self, checkpoint_confirmed: Lsn) -> Option<Lsn> {
        if self.in_flight || checkpoint_confirmed <= self.sent {
            return None;
        }
        self.in_flight = true;
        self.sent = checkpoint_confirmed;
        Some(checkpoint_confirmed)
    }

    /// Kafka acknowledged the record of `lsn`.
    pub fn acknowledged(&mut self, lsn: Lsn) {
        self.in_flight = false;
        self.recorded = self.recorded.max(lsn);
    }

    /// The record of `lsn` failed (the run stops; a restart reads the topic again).
    pub fn failed(&mut self, lsn: Lsn) {
        self.in_flight = false;
        if self.sent == lsn {
            self.sent = self.recorded;
        }
    }

    /// Whether a record is on its way.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The newest acknowledged position.
    pub fn recorded(&self) -> Lsn {
        self.recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lsn: &str) -> Vec<u8> {
        OffsetRecord {
            lsn: lsn.into(),
            slot: "s".into(),
            timeline: 1,
            transactional_id: String::new(),
        }
        .to_json()
    }

    #[test]
    fn a_replay_skips_exactly_the_transactions_the_recorded_position_covers() {
        // A slot at or ahead of R: Postgres sends nothing R covers.
        assert!(Replay::behind(Lsn(200), Lsn(200)).is_none());
        assert!(Replay::behind(Lsn(200), Lsn(300)).is_none());
        // R = 0/200 is the end of the last published transaction, whose commit record started
        // before it; the next transaction's commit record starts at or after it.
        let mut r = Replay::behind(Lsn(200), Lsn(100)).unwrap();
        assert!(
            r.begin(Lsn(150)),
            "published before: its commit record starts before R"
        );
        assert!(r.skip_change() && r.skip_change());
        assert_eq!(r.commit(), None, "still covered");
        assert!(r.begin(Lsn(199)));
        assert!(r.skip_change());
        assert_eq!(r.commit(), None);
        assert!(!r.done());
        assert!(!r.begin(Lsn(200)), "starts at R: not published before");
        assert!(!r.skip_change());
        assert_eq!(
            r.commit(),
            Some(ReplaySkipped {
                recorded: Lsn(200),
                transactions: 2,
                changes: 3
            }),
            "caught up: said once"
        );
        assert!(r.done());
        // Once caught up, nothing is skipped, even a transaction that would compare below R
        // (positions never go backwards in one stream; a new stream starts a new Replay).
        assert!(!r.begin(Lsn(10)));
        assert!(!r.skip_change());
        assert_eq!(r.commit(), None);
    }

    #[test]
    fn a_replay_with_nothing_covered_catches_up_at_the_first_commit() {
        let mut r = Replay::behind(Lsn(0x500), Lsn(0x100)).unwrap();
        assert!(!r.begin(Lsn(0x500)));
        assert_eq!(
            r.commit(),
            Some(ReplaySkipped {
                recorded: Lsn(0x500),
                transactions: 0,
                changes: 0
            })
        );
    }

    #[test]
    fn a_missing_slot_is_created_only_when_nothing_is_lost_or_the_gap_is_accepted() {
        let r = Some(Lsn(0x300));
        assert_eq!(missing_slot(None, false, None), MissingSlot::Create);
        assert_eq!(missing_slot(r, true, None), MissingSlot::Create);
        assert_eq!(missing_slot(r, false, None), MissingSlot::Stop);
        assert_eq!(missing_slot(r, false, Some(Lsn(0x200))), MissingSlot::Stop);
        assert_eq!(
            missing_slot(r, false, Some(Lsn(0x300))),
            MissingSlot::CreateAcceptingGap
        );
        let e = SlotMissing {
            slot: "outboxd".into(),
            host: "db2:5432".into(),
            timeline: 2,
            recorded: Lsn(0x300),
            recorded_timeline: Some(1),
            current: Lsn(0x300 + 4500),
            topic: "outboxd-offsets".into(),
            key: "1/app/outboxd".into(),
        }
        .to_string();
        for part in [
            "replication slot outboxd does not exist on db2:5432 (timeline 2)",
            "published up to 0/300",
            "written on timeline 1",
            "between 0/300 and 0/1494 (4500 bytes of WAL) cannot be decoded",
            "source.snapshot_mode = \"initial\"",
            "offsets.accept_missing_slot = \"0/300\"",
        ] {
            assert!(e.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn the_same_slot_of_another_cluster_is_told_apart() {
        assert!(same_slot_of_another_cluster(
            "1/app/outboxd",
            "2/app/outboxd"
        ));
        assert!(!same_slot_of_another_cluster(
            "1/app/outboxd",
            "1/app/outboxd"
        ));
        assert!(!same_slot_of_another_cluster(
            "1/app/outboxd",
            "2/other/outboxd"
        ));
        assert!(!same_slot_of_another_cluster("1/app/outboxd", "probe"));
    }

    #[test]
    fn the_last_record_of_a_key_is_its_position_even_when_lower() {
        let mut latest = Latest::default();
        assert_eq!(latest.position(), None);
        for lsn in ["0/100", "0/300"] {
            latest.record(Some(&record(lsn))).unwrap();
        }
        assert_eq!(latest.position(), Some(Lsn(0x300)));
        // An aborted transaction's record (0/300) followed by the restated committed position.
        latest.record(Some(&record("0/200"))).unwrap();
        assert_eq!(latest.position(), Some(Lsn(0x200)));
        latest.record(None).unwrap();
        assert_eq!(latest.position(), None, "a tombstone forgets the position");
        latest.record(Some(&record("0/50"))).unwrap();
        assert_eq!(latest.position(), Some(Lsn(0x50)));
    }

    #[test]
    fn a_record_that_is_not_a_position_is_an_error_and_changes_nothing() {
        let mut latest = Latest::default();
        latest.record(Some(&record("0/100"))).unwrap();
        let e = latest.record(Some(b"{\"offset\": 7}")).unwrap_err();
        assert!(e.contains("lsn"), "{e}");
        assert!(latest.record(Some(&record("0/zz"))).is_err());
        assert_eq!(latest.position(), Some(Lsn(0x100)));
    }

    #[test]
    fn a_slot_behind_or_at_the_record_resumes_and_one_ahead_stops() {
        let r = |slot: u64, recorded: Option<u64>, accept: Option<u64>| {
            resume_position(
                "s1",
                Lsn(slot),
                recorded.map(Lsn),
                accept.map(Lsn),
                "t",
                "k",
            )
        };
        assert_eq!(r(100, None, None).unwrap(), Lsn(100), "first start");
        assert_eq!(r(100, Some(100), None).unwrap(), Lsn(100));
        assert_eq!(
            r(80, Some(100), None).unwrap(),
            Lsn(100),
            "a Postgres crash replays from behind the record: still capped at it"
        );
        let e = r(150, Some(100), None).unwrap_err();
        assert_eq!((e.slot_lsn, e.recorded), (Lsn(150), Lsn(100)));
        let message = e.to_string();
        assert!(
            message.contains("offsets.accept_slot_position = \"0/96\"")
                && message.contains("outboxd slot drop")
                && message.contains("ahead of the position outboxd last published (0/64"),
            "{message}"
        );
        assert_eq!(r(150, Some(100), Some(150)).unwrap(), Lsn(150), "accepted");
        assert!(
            r(151, Some(100), Some(150)).is_err(),
            "an acceptance is for one position only"
        );
    }

    #[test]
    fn a_new_slot_with_a_snapshot_is_accepted_ahead_of_an_old_record() {
        let configured = Some(Lsn(7));
        assert_eq!(
            acceptable(Some(Lsn(100)), Lsn(150), true, configured),
            Some(Lsn(150))
        );
        assert_eq!(
            acceptable(Some(Lsn(100)), Lsn(150), false, configured),
            configured,
            "an existing slot needs the operator's acceptance"
        );
        assert_eq!(
            acceptable(Some(Lsn(200)), Lsn(150), true, None),
            None,
            "behind: nothing to accept"
        );
        assert_eq!(acceptable(None, Lsn(150), true, None), None, "first start");
    }

    #[test]
    fn the_recorder_caps_confirmation_at_the_acknowledged_record() {
        let mut rec = Recorder::new(Lsn(10));
        assert_eq!(
            crate::confirm::capped(Lsn(10), Some(rec.recorded())),
            Lsn(10)
        );
        assert_eq!(rec.due(Lsn(10)), None, "nothing new");
        assert_eq!(rec.due(Lsn(20)), Some(Lsn(20)));
        assert_eq!(
            crate::confirm::capped(Lsn(20), Some(rec.recorded())),
            Lsn(10),
            "not acknowledged yet"
        );
        assert_eq!(rec.due(Lsn(30)), None, "one record at a time");
        rec.acknowledged(Lsn(20));
        assert_eq!(
            crate::confirm::capped(Lsn(30), Some(rec.recorded())),
            Lsn(20)
        );
        assert_eq!(rec.due(Lsn(30)), Some(Lsn(30)));
        rec.failed(Lsn(30));
        assert!(!rec.in_flight());
        assert_eq!(
            crate::confirm::capped(Lsn(30), Some(rec.recorded())),
            Lsn(20),
            "a failed record moves nothing"
        );
        assert_eq!(rec.due(Lsn(30)), Some(Lsn(30)), "sent again");
        rec.acknowledged(Lsn(30));
        assert_eq!(rec.recorded(), Lsn(30));
    }

    #[test]
    fn the_cap_never_goes_backwards_and_never_passes_the_checkpoint() {
        // Random interleavings of checkpoint moves, sends and outcomes.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let mut rec = Recorder::new(Lsn(0));
            let mut checkpoint = 0u64;
            let mut last = Lsn(0);
            let mut pending: Option<Lsn> = None;
            for _ in 0..200 {
                match next() % 4 {
                    0 => checkpoint += next() % 50,
                    1 => {
                        if let Some(l) = rec.due(Lsn(checkpoint)) {
                            pending = Some(l);
                        }
                    }
                    2 => {
                        if let Some(l) = pending.take() {
                            rec.acknowledged(l);
                        }
                    }
                    _ => {
                        if next() % 8 == 0 {
                            if let Some(l) = pending.take() {
                                rec.failed(l);
                            }
                        }
                    }
                }
                let c = crate::confirm::capped(Lsn(checkpoint), Some(rec.recorded()));
                assert!(c >= last, "went backwards");
                assert!(c <= Lsn(checkpoint), "past the checkpoint");
                assert!(c <= rec.recorded(), "past the acknowledged record");
                last = c;
            }
        }
    }

    #[test]
    fn records_of_either_mode_read_back() {
        let alo = OffsetRecord {
            lsn: "0/16B3748".into(),
            slot: "outboxd".into(),
            timeline: 1,
            transactional_id: String::new(),
        };
        let json = String::from_utf8(alo.to_json()).unwrap();
        assert!(!json.contains("transactional_id"), "{json}");
        assert_eq!(OffsetRecord::from_json(json.as_bytes()).unwrap(), alo);
        let eos = br#"{"lsn":"0/10","slot":"s","timeline":2,"transactional_id":"outboxd-s"}"#;
        assert_eq!(
            OffsetRecord::from_json(eos).unwrap().position(),
            Ok(Lsn(16))
        );
        assert!(OffsetRecord::from_json(br#"{"lsn":"nope","slot":"s","timeline":1}"#).is_err());
        assert_eq!(offsets_key(7, "app", "outboxd"), "7/app/outboxd");
    }

    #[test]
    fn the_section_defaults_and_validates() {
        let d = OffsetsConfig::default();
        assert!(d.enabled);
        assert_eq!(d.resolve().unwrap().topic, "outboxd-offsets");
        let bad = OffsetsConfig {
            accept_slot_position: Some("x".into()),
            ..OffsetsConfig::default()
        };
        assert!(bad
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("offsets.accept_slot_position"));
        let empty = OffsetsConfig {
            topic: " ".into(),
            ..OffsetsConfig::default()
        };
        assert!(empty
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("offsets.topic"));
    }
}
