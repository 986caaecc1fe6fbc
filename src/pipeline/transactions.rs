//! Exactly-once mode in the relay: skipping the transactions published before this run (a replay
//! from a slot behind the offsets topic) and a Kafka commit's report.
//!
//! Owns the relay's side of the glue only; the rules are `crate::exactly_once`'s, the Kafka calls
//! `crate::sink::transactional`'s.

use super::relay::Relay;
use super::PipelineError;
use crate::sink::transactional;
use crate::source::pgoutput::Message;

impl Relay<'_> {
    /// Exactly-once mode: whether `message` belongs to a transaction published before this run
    /// (Postgres replays from the slot, which may be behind the offsets topic; see
    /// `exactly_once`). Begin, Commit and the schema messages still go through.
    pub(super) fn skip_published(&mut self, message: &Message) -> bool {
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
    pub(super) fn on_kafka_commit(
        &mut self,
        result: transactional::CommitResult,
    ) -> Result<(), PipelineError> {
        match &mut self.transactions {
            Some(t) => Ok(t.on_commit(result)?),
            None => Ok(()),
        }
    }
}
