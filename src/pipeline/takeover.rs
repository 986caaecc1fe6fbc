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
use crate::lsn::Lsn;
use crate::sink::offsets::{scan_topic, OffsetsError};

/// How long reading Kafka Connect's offsets topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The skipping state of a run that takes over, and what it skipped.
#[derive(Debug)]
pub(super) struct TakeoverState {
    pub(super) taken: Taken,
    pub(super) skipped: u64,
    /// The boundary transaction committed: the take-over has nothing more to skip.
    pub(super) done: bool,
}

/// Reads the connector's offset and says what will be skipped; `None` when nothing will.
pub(super) async fn start_takeover(
    plan: &Plan,
    start_lsn: Lsn,
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
    if !taken.applies() {
        tracing::info!(%connector, %lsn_commit, %lsn_proc, at = ?offset.at, slot = %start_lsn, "take-over: Debezium's offset (committed up to {lsn_commit}, taken at a commit) is not ahead of the slot's position {start_lsn}: nothing to skip");
        return Ok(None);
    }
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
    Ok(Some(TakeoverState {
        taken,
        skipped: 0,
        done: false,
    }))
}

impl Relay<'_> {
    /// The take-over's view of a Begin (`Some(final_lsn)`) or a Commit (`None`) of transaction
    /// `xid`.
    pub(super) fn takeover_boundary(&mut self, begin: Option<Lsn>, xid: u32) {
        let Some(state) = &mut self.takeover else {
            return;
        };
        match begin {
            Some(final_lsn) => state.taken.begin(final_lsn, xid),
            None => {
                let Some(boundary) = state.taken.commit(xid) else {
                    return;
                };
                if state.done {
                    return;
                }
                state.done = true;
                let offset = state.taken.offset();
                if offset.at == OffsetAt::Change && !boundary.matched {
                    tracing::warn!(xid, tx_id = ?offset.tx_id, "take-over: the first transaction after Debezium's lsn_commit {} is {xid}, not the one of its offset (txId {:?}): none of its changes was skipped (the slot was past that transaction, or the offset is not this slot's)", offset.lsn_commit, offset.tx_id);
                }
                if boundary.at_proc_published > 0 {
                    tracing::warn!(count = boundary.at_proc_published, lsn_proc = %offset.lsn_proc, "take-over: {} more changes of transaction {xid} share the WAL position {} of Debezium's last processed change (a COPY or another multi-row WAL record); its offset does not say how many of them it published: the first was taken as published, the others were published and may come twice", boundary.at_proc_published, offset.lsn_proc);
                }
                tracing::info!(skipped = state.skipped, "take-over: past Debezium's offset (committed up to {}, last change {}): {} events it had published were not published again; every later event is published", offset.lsn_commit, offset.lsn_proc, state.skipped);
            }
        }
    }

    /// Whether an outbox insert at `lsn` of `relation_id` is one Debezium published (counted
    /// and logged at debug when it is).
    pub(super) fn taken_over(&mut self, relation_id: u32, lsn: Lsn) -> bool {
        let Some(state) = &mut self.takeover else {
            return false;
        };
        if state.done {
            return false;
        }
        let Some(table) = self.router.outbox_table(relation_id) else {
            return false;
        };
        match state.taken.skip(lsn) {
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
}
