//! Taking over from Debezium (`[takeover]`, `outboxd run --take-over-offsets`): at start, the
//! connector's stored offset is read from Kafka Connect's offsets topic or file; while streaming,
//! the outbox inserts it covers are not published again (the rule is `debezium::offsets::Taken`).
//!
//! Owns reading the offset and the relay's skipping; the rule itself is pure and lives in
//! `debezium::offsets`. An offset that cannot be found (no file, no topic, no record for the
//! connector) or that is behind the slot skips nothing, with a line that says so: today's
//! behaviour, Debezium's last unflushed events published again.

use std::time::Duration;

use rdkafka::Message as _;

use super::relay::Relay;
use super::{PipelineError, Plan};
use crate::debezium::offsets::{
    is_key_of, parse_offset_file, parse_offset_value, DebeziumOffset, OffsetAt, OffsetStore, Taken,
    Verdict,
};
use crate::debezium::tail::{topic_pattern, PublishedTail, TailVerdict};
use crate::lsn::Lsn;
use crate::router::OutboxRecord;
use crate::sink::offsets::{scan_topic, OffsetsError};
use crate::sink::readback::read_back_ids;

/// How long reading Kafka Connect's offsets topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the read-back of the destination topics may take.
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(120);

/// The skipping state of a run that takes over, and what it skipped.
#[derive(Debug)]
pub(super) struct TakeoverState {
    /// What Debezium's offset covers (`None`: nothing, or done: the boundary transaction
    /// committed).
    pub(super) taken: Option<Taken>,
    pub(super) skipped: u64,
    /// What Debezium published after its offset, read back from the topics (`None`: not read,
    /// or done: the stream passed the server's position at start).
    pub(super) tail: Option<PublishedTail>,
}

/// Reads the connector's offset (and the destination topics since then) and says what will be
/// skipped; `None` when nothing will. `wal_now`: the server's WAL position at start.
pub(super) async fn start_takeover(
    plan: &Plan,
    start_lsn: Lsn,
    wal_now: Lsn,
) -> Result<Option<TakeoverState>, PipelineError> {
    let Some(takeover) = &plan.takeover else {
        return Ok(None);
    };
    let (connector, server) = (takeover.connector.clone(), takeover.server.clone());
    let (offset, store) = match &takeover.store {
        OffsetStore::File(path) => {
            let store = format!("offset file {}", path.display());
            match std::fs::read(path) {
                Ok(bytes) => {
                    let entries = parse_offset_file(&bytes).map_err(|e| {
                        PipelineError::Takeover(format!("{store}: {e}; give the file of the connector's worker (offset.storage.file.filename), or remove [takeover]"))
                    })?;
                    let mut found = None;
                    for (key, value) in entries {
                        if is_key_of(&key, &connector, &server) {
                            found = parse_offset_value(value.as_deref())
                                .map_err(|e| PipelineError::Takeover(format!("{store}: {e}")))?;
                        }
                    }
                    (found, store)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, store),
                Err(e) => return Err(PipelineError::Takeover(format!("cannot read {store}: {e}"))),
            }
        }
        OffsetStore::Topic(topic) => {
            let store = format!("offsets topic {topic}");
            let (producer, topic) = (plan.producer.clone(), topic.clone());
            let read = tokio::task::spawn_blocking(move || {
                let mut found: Result<Option<DebeziumOffset>, String> = Ok(None);
                scan_topic(&producer, &topic, READ_TIMEOUT, true, |m| {
                    if m.key().is_some_and(|k| is_key_of(k, &connector, &server)) {
                        // Last record wins (a tombstone deletes the offset).
                        found = parse_offset_value(m.payload()).map_err(|e| e.to_string());
                    }
                    Ok(())
                })
                .map(|_| found)
            })
            .await
            .expect("reading Kafka Connect's offsets panicked");
            match read {
                Ok(Ok(found)) => (found, store),
                Ok(Err(e)) => return Err(PipelineError::Takeover(format!("{store}: {e}"))),
                Err(e @ OffsetsError::Kafka { .. }) => return Err(e.into()),
                Err(e) => return Err(PipelineError::Takeover(format!("{store}: {e}"))),
            }
        }
    };
    let connector = &takeover.connector;
    let server = &takeover.server;
    let Some(offset) = offset else {
        tracing::warn!(%connector, %server, "take-over: no offset of Debezium connector {connector} (server {server}) in the {store}: nothing is skipped; the events Debezium published after its slot's confirmed position {start_lsn} are published again");
        return Ok(None);
    };
    let taken = Taken::new(offset, start_lsn);
    let (lsn_commit, lsn_proc) = (offset.lsn_commit, offset.lsn_proc);
    let tx_id = offset
        .tx_id
        .map_or_else(|| "not recorded".to_string(), |x| x.to_string());
    let taken = if taken.applies() {
        let within = match offset.at {
            OffsetAt::Change => {
                format!(", and in the next one (txId {tx_id}) the changes up to {lsn_proc}")
            }
            OffsetAt::Commit => String::new(),
        };
        tracing::info!(
            %connector,
            %server,
            %lsn_commit,
            %lsn_proc,
            tx_id = %tx_id,
            at = ?offset.at,
            slot = %start_lsn,
            "take-over: read Debezium's offset from the {store}: the transactions committed before {lsn_commit}{within} were published by Debezium and are not published again"
        );
        Some(taken)
    } else {
        tracing::info!(%connector, %lsn_commit, %lsn_proc, at = ?offset.at, slot = %start_lsn, "take-over: read Debezium's offset from the {store}: committed up to {lsn_commit}, taken at a commit, not ahead of the slot's position {start_lsn}: nothing it covers is sent again");
        None
    };
    let tail = match (takeover.read_back, offset.ts_usec) {
        (None, _) => None,
        (Some(_), None) => {
            tracing::warn!(%connector, "take-over: Debezium's offset has no ts_usec, so the destination topics are not read back: the events Debezium published after its stored offset are published again");
            None
        }
        (Some(margin), Some(ts_usec)) => read_back(plan, ts_usec, margin, wal_now).await,
    };
    if taken.is_none() && tail.is_none() {
        return Ok(None);
    }
    Ok(Some(TakeoverState {
        taken,
        skipped: 0,
        tail,
    }))
}

/// Reads the destination topics back from the offset's commit time less `margin`
/// (`debezium::tail`); `None` (with a warning) when that fails.
async fn read_back(
    plan: &Plan,
    ts_usec: u64,
    margin: Duration,
    wal_now: Lsn,
) -> Option<PublishedTail> {
    let pattern = topic_pattern(&plan.router.topic_replacement);
    let since_ms = (ts_usec / 1000) as i64 - margin.as_millis() as i64;
    let producer = plan.producer.clone();
    let started = std::time::Instant::now();
    let pattern_for_read = pattern.clone();
    let read = tokio::task::spawn_blocking(move || {
        read_back_ids(&producer, &pattern_for_read, since_ms, READ_BACK_TIMEOUT)
    })
    .await
    .expect("reading back the destination topics panicked");
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(topics = %pattern, "take-over: could not read back the destination topics ({e}): the events Debezium published after its stored offset are published again");
            return None;
        }
    };
    tracing::info!(
        topics = read.topics.len(),
        records = read.records,
        ids = read.count,
        since_ms,
        pattern = %pattern,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "take-over: read back {} records from {} topics named like route.topic.replacement, produced since {} s before Debezium's offset: the events among them are not published again",
        read.records,
        read.topics.len(),
        margin.as_secs()
    );
    if read.without_id > 0 {
        tracing::warn!(records = read.without_id, "take-over: {} records read back have no id header and cannot be matched to an outbox row: if they are Debezium's, their events are published again (the id header is the EventRouter's; a transform that removes it prevents this)", read.without_id);
    }
    if read.truncated {
        tracing::warn!(ids = read.count, "take-over: the read-back stopped after {} ids or {READ_BACK_TIMEOUT:?}: events Debezium published later than those are published again (lower [takeover] read_back_margin_ms, or accept the duplicates)", read.count);
    }
    Some(PublishedTail::new(read, wal_now))
}

impl Relay<'_> {
    /// The take-over's view of a Begin (`Some(final_lsn)`) or a Commit (`None`) of transaction
    /// `xid`.
    pub(super) fn takeover_boundary(&mut self, begin: Option<Lsn>, xid: u32) {
        let Some(state) = &mut self.takeover else {
            return;
        };
        match begin {
            Some(final_lsn) => {
                if let Some(taken) = &mut state.taken {
                    taken.begin(final_lsn, xid);
                }
                let done = state.tail.as_mut().and_then(|t| t.begin(final_lsn));
                if let Some(done) = done {
                    state.tail = None;
                    if done.unidentified > 0 {
                        tracing::warn!(events = done.unidentified, "take-over: {} events after Debezium's offset could not be checked against the topics read back (their topic does not fit route.topic.replacement, or they have no id): they were published, some may be duplicates", done.unidentified);
                    }
                    tracing::info!(skipped = done.skipped, unmatched = done.unmatched, "take-over: past the server's position at start: {} events Debezium had published after its stored offset were found in the topics and not published again; every later event is published", done.skipped);
                }
            }
            None => {
                let Some(taken) = &mut state.taken else {
                    return;
                };
                let Some(boundary) = taken.commit(xid) else {
                    return;
                };
                let offset = taken.offset();
                state.taken = None;
                if offset.at == OffsetAt::Change && !boundary.matched {
                    tracing::warn!(xid, tx_id = ?offset.tx_id, "take-over: the first transaction after Debezium's lsn_commit {} is {xid}, not the one of its offset (txId {:?}): none of its changes was skipped (the slot was past that transaction, or the offset is not this slot's)", offset.lsn_commit, offset.tx_id);
                }
                if boundary.at_proc_published > 0 {
                    tracing::warn!(count = boundary.at_proc_published, lsn_proc = %offset.lsn_proc, "take-over: {} more changes of transaction {xid} share the WAL position {} of Debezium's last processed change (a COPY or another multi-row WAL record); its offset does not say how many of them it published: the first was taken as published, the others were published and may come twice", boundary.at_proc_published, offset.lsn_proc);
                }
                tracing::info!(skipped = state.skipped, "take-over: past Debezium's offset (committed up to {}, last change {}): {} events it had published were not published again", offset.lsn_commit, offset.lsn_proc, state.skipped);
            }
        }
        if state.taken.is_none() && state.tail.is_none() {
            self.takeover = None;
        }
    }

    /// Whether an outbox insert at `lsn` of `relation_id` is one Debezium's offset covers
    /// (counted and logged at debug when it is).
    pub(super) fn taken_over(&mut self, relation_id: u32, lsn: Lsn) -> bool {
        let Some(state) = &mut self.takeover else {
            return false;
        };
        let Some(taken) = &mut state.taken else {
            return false;
        };
        let Some(table) = self.router.outbox_table(relation_id) else {
            return false;
        };
        match taken.skip(lsn) {
            Verdict::Publish => false,
            verdict => {
                state.skipped += 1;
                self.metrics
                    .takeover_events_skipped
                    .with_label_values(&[table])
                    .inc();
                tracing::debug!(%table, %lsn, commit = %self.final_lsn, ?verdict, "take-over: not published again (Debezium published it)");
                true
            }
        }
    }

    /// Whether a routed event is one Debezium published after its stored offset (found in the
    /// topics read back; counted and logged at debug when it is).
    pub(super) fn published_by_debezium(
        &mut self,
        relation_id: u32,
        record: &OutboxRecord,
    ) -> bool {
        let Some(tail) = self.takeover.as_mut().and_then(|s| s.tail.as_mut()) else {
            return false;
        };
        let id = record
            .headers
            .iter()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| v.as_deref());
        if tail.check(&record.topic, id) != TailVerdict::Published {
            return false;
        }
        if let Some(table) = self.router.outbox_table(relation_id) {
            self.metrics
                .takeover_events_skipped
                .with_label_values(&[table])
                .inc();
        }
        tracing::debug!(topic = %record.topic, commit = %self.final_lsn, "take-over: not published again (found in the topic: Debezium published it after its stored offset)");
        true
    }
}
