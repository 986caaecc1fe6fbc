//! Not publishing again what a recorded position covers: after a restart of Postgres (which
//! persists a slot's position only now and then) or of outboxd, the walsender may send
//! transactions again that the position recorded in Kafka says were published. In both modes
//! they are skipped whole (the rule is `position::Replay`'s); Begin, Commit and the schema
//! messages still go through, so the checkpoint and the slot move on.
//!
//! Owns the relay's side only: when to ask the rule, the log lines and the metrics.

use super::relay::Relay;
use crate::position::Replay;
use crate::source::pgoutput::Message;

/// The replay of a start, given the position recorded in Kafka (`R`, in either mode) and the
/// slot's: `None` when the slot is not behind `R`. Logs what will be skipped.
pub(super) fn start_replay(
    recorded: Option<crate::lsn::Lsn>,
    slot_lsn: crate::lsn::Lsn,
) -> Option<Replay> {
    let replay = Replay::behind(recorded?, slot_lsn)?;
    tracing::info!(
        recorded = %replay.recorded(),
        slot_lsn = %slot_lsn,
        "the slot is behind the position recorded in Kafka (Postgres persisted an older position, or outboxd stopped before confirming): the transactions committed before {} were published and are not published again",
        replay.recorded()
    );
    Some(replay)
}

impl Relay<'_> {
    /// Whether `message` belongs to a transaction the recorded position covers (then it is
    /// skipped). Begin, Commit and the schema messages always go through.
    pub(super) fn skip_published(&mut self, message: &Message) -> bool {
        let Some(replay) = &mut self.replay else {
            return false;
        };
        match message {
            Message::Begin(begin) => {
                if replay.begin(begin.final_lsn) {
                    self.metrics.transactions_skipped.inc();
                    tracing::debug!(final_lsn = %begin.final_lsn, recorded = %replay.recorded(), "skipping a transaction published before (the recorded position covers it)");
                }
                false
            }
            Message::Commit(_) => {
                if let Some(skipped) = replay.commit() {
                    tracing::info!(
                        recorded = %skipped.recorded,
                        transactions = skipped.transactions,
                        changes = skipped.changes,
                        "caught up with the recorded position {}: {} transactions sent again by Postgres ({} changes) were not published again",
                        skipped.recorded,
                        skipped.transactions,
                        skipped.changes
                    );
                    self.replay = None;
                }
                false
            }
            Message::Relation(_) | Message::Type(_) | Message::Origin(_) => false,
            Message::Insert(insert) => {
                let skipped = replay.skip_change();
                if skipped {
                    if let Some(table) = self.router.outbox_table(insert.relation_id) {
                        self.metrics
                            .replayed_events_skipped
                            .with_label_values(&[table])
                            .inc();
                    }
                }
                skipped
            }
            _ => replay.skip_change(),
        }
    }
}
