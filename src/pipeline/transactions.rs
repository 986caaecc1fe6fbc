//! Exactly-once mode in the relay: each Postgres commit into the batcher, and a Kafka commit's
//! report. (Skipping what was published before this run is `replay`'s, in both modes.)
//!
//! Owns the relay's side of the glue only; the rules are `crate::exactly_once`'s, the Kafka calls
//! `crate::sink::transactional`'s.

use super::relay::Relay;
use super::PipelineError;
use crate::sink::transactional;

impl Relay<'_> {
    /// Exactly-once mode: a Postgres transaction committed (published, or skipped as published
    /// before: `replay`).
    pub(super) fn pg_commit(&mut self, end_lsn: crate::lsn::Lsn) {
        if let Some(t) = &mut self.transactions {
            t.batcher().pg_commit(end_lsn);
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
