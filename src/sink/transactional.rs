//! Exactly-once mode, the Kafka side: the transactional producer and the offsets topic.
//!
//! The rules (what to skip, when to commit, how far to confirm) are in [`crate::exactly_once`];
//! this module only talks to Kafka. `init_transactions`, `commit_transaction` and reading the
//! offsets topic block: call them from `spawn_blocking`. A Kafka transaction is begun implicitly
//! by the first [`KafkaSink::send`] after a commit; [`KafkaSink::commit_position`] adds the offsets
//! record and commits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

use super::offsets::{
    check_resume, ensure_offsets_topic, filters_aborted, log_history, offsets_record,
    read_recorded, OffsetsError, ResumeFrom, Resumed,
};
use super::producer::{KafkaSink, SendError};
use crate::exactly_once::{
    offsets_key, Batcher, ExactlyOnce, ExactlyOnceError, OffsetRecord, StartPosition,
};
use crate::lsn::Lsn;
use crate::metrics::Metrics;

/// The open Kafka transaction, as seen by the sink.
#[derive(Debug)]
pub struct TxnState {
    transactional_id: String,
    open: AtomicBool,
    events: AtomicU64,
}

impl TxnState {
    pub(super) fn new(transactional_id: &str) -> TxnState {
        TxnState {
            transactional_id: transactional_id.to_string(),
            open: AtomicBool::new(false),
            events: AtomicU64::new(0),
        }
    }

    pub(super) fn event_sent(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether librdkafka says another producer with the same transactional id took over.
fn is_fencing(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    let code = match error {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(ProducerFenced | InvalidProducerEpoch | Fenced | TransactionCoordinatorFenced)
    )
}

/// Maps a librdkafka transaction error: fencing is its own error (told apart in the log).
fn txn_error(doing: &'static str, transactional_id: &str, error: KafkaError) -> ExactlyOnceError {
    let fatal = match &error {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    };
    if is_fencing(&error) {
        return ExactlyOnceError::Fenced {
            transactional_id: transactional_id.to_string(),
            error: error.to_string(),
        };
    }
    ExactlyOnceError::Kafka {
        doing,
        error: error.to_string(),
        fatal,
    }
}

impl KafkaSink {
    fn transactional_id(&self) -> String {
        self.txn
            .as_ref()
            .map_or_else(String::new, |t| t.transactional_id.clone())
    }

    /// Begins a Kafka transaction unless one is open (exactly-once mode only).
    pub(super) fn begin_if_needed(&self) -> Result<(), SendError> {
        let Some(txn) = &self.txn else { return Ok(()) };
        if !txn.open.load(Ordering::Acquire) {
            self.producer
                .begin_transaction()
                .map_err(|e| txn_error("begin", &self.transactional_id(), e))?;
            txn.open.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// An enqueue error, told as fencing when the transactional producer was fenced.
    pub(super) fn fenced_or(&self, error: SendError) -> SendError {
        match error {
            SendError::Enqueue { error, .. } if self.txn.is_some() && is_fencing(&error) => {
                SendError::Transaction(txn_error("produce", &self.transactional_id(), error))
            }
            other => other,
        }
    }

    /// Whether the producer is transactional (exactly-once mode).
    pub fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// Events produced in the open Kafka transaction.
    pub fn transaction_events(&self) -> u64 {
        self.txn
            .as_ref()
            .map_or(0, |t| t.events.load(Ordering::Relaxed))
    }

    /// `init_transactions`: fences any older producer with the same transactional id and aborts
    /// its open transaction. Blocking.
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), ExactlyOnceError> {
        self.producer
            .init_transactions(timeout)
            .map_err(|e| txn_error("init_transactions", &self.transactional_id(), e))
    }

    /// Writes the offsets record (`key` → `record`) to `topic` in the open transaction (beginning
    /// one if none is open: a position-only transaction) and commits. On failure the transaction
    /// is aborted when librdkafka allows it, and, when its offsets record may be in the log,
    /// `committed` (the position last committed) is written again in a transaction of its own
    /// (`KafkaSink::restate_position`). Blocking.
    pub fn commit_position(
        &self,
        topic: &str,
        key: &str,
        record: &OffsetRecord,
        committed: &OffsetRecord,
        timeout: Duration,
    ) -> Result<(), ExactlyOnceError> {
        let mut offsets_enqueued = false;
        let result = self.offsets_then_commit(topic, key, record, &mut offsets_enqueued, timeout);
        match &result {
            Ok(()) => self.transaction_ended(),
            Err(ExactlyOnceError::Fenced { .. }) => {}
            Err(e) => match self.abort(timeout) {
                Ok(()) if offsets_enqueued => {
                    self.restate_position(topic, key, record, committed, timeout)
                }
                Ok(()) => {}
                Err(abort) => tracing::warn!(
                    "exactly-once: the failed transaction ({e}) could not be aborted ({abort}); the next start aborts it"
                ),
            },
        }
        result
    }

    /// After an aborted transaction whose offsets record (`aborted`) may have reached the log (a
    /// commit of this run failed, or `init_transactions` ended a dead instance's transaction):
    /// commits `committed` again, in a position-only transaction, so that the last record of
    /// `key` is a committed one. The offsets reader takes the last record (`position::Latest`),
    /// and a broker that does not filter aborted transactions from `read_committed` consumers
    /// (tansu 0.6) would otherwise hand the aborted position to the next start, which would skip
    /// the transactions it claims. On Apache Kafka the restated record changes nothing. A failed
    /// restatement is logged and counted (`outboxd_kafka_transactions_total{outcome="restate_failed"}`).
    fn restate_position(
        &self,
        topic: &str,
        key: &str,
        aborted: &OffsetRecord,
        committed: &OffsetRecord,
        timeout: Duration,
    ) {
        let result = self.offsets_then_commit(topic, key, committed, &mut false, timeout);
        let metrics = &self.producer.context().metrics;
        match result {
            Ok(()) => {
                self.transaction_ended();
                metrics
                    .kafka_transactions
                    .with_label_values(&["restated"])
                    .inc();
                tracing::info!(committed = %committed.lsn, aborted = %aborted.lsn, "exactly-once: restated the committed position after the aborted transaction");
            }
            Err(e) => {
                if !matches!(e, ExactlyOnceError::Fenced { .. }) {
                    let _ = self.abort(timeout);
                }
                metrics
                    .kafka_transactions
                    .with_label_values(&["restate_failed"])
                    .inc();
                tracing::warn!(committed = %committed.lsn, aborted = %aborted.lsn, "exactly-once: could not restate the committed position {} after an aborted transaction ({e}); on a broker whose read_committed consumers see aborted records (tansu 0.6; Apache Kafka hides them), the next start takes {} as the position and skips the Postgres transactions the aborted transaction held", committed.lsn, aborted.lsn);
            }
        }
    }

    /// Begins a transaction unless one is open, adds the offsets record (`key` → `record`), waits
    /// for every delivery and commits; `enqueued` tells whether the record was handed to
    /// librdkafka (it may then be in the log even if the commit fails).
    fn offsets_then_commit(
        &self,
        topic: &str,
        key: &str,
        record: &OffsetRecord,
        enqueued: &mut bool,
        timeout: Duration,
    ) -> Result<(), ExactlyOnceError> {
        let id = self.transactional_id();
        self.begin_if_needed().map_err(begin_error)?;
        self.enqueue_unreported(&offsets_record(topic, key, record))
            .map_err(|e| match e {
                SendError::Enqueue { error, .. } => {
                    txn_error("producing the offsets record", &id, error)
                }
                other => ExactlyOnceError::Kafka {
                    doing: "producing the offsets record",
                    error: other.to_string(),
                    fatal: false,
                },
            })?;
        *enqueued = true;
        self.wait_delivered(timeout);
        self.producer
            .commit_transaction(timeout)
            .map_err(|e| txn_error("commit", &id, e))
    }

    /// The open transaction committed (or was aborted): the next send begins a new one.
    fn transaction_ended(&self) {
        if let Some(txn) = &self.txn {
            txn.events.store(0, Ordering::Relaxed);
            txn.open.store(false, Ordering::Release);
        }
    }

    /// Waits (up to `timeout`) until every enqueued record is delivered and reported, polling every
    /// millisecond. rust-rdkafka's `commit_transaction` flushes first, and its flush polls in steps
    /// that last a full 100 ms whenever anything is still in flight: measured, every commit took
    /// 100 ms on tansu (1 ms once nothing is in flight). The producer's own thread serves the
    /// delivery reports meanwhile.
    fn wait_delivered(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Aborts the open transaction, if any. Blocking.
    pub fn abort(&self, timeout: Duration) -> Result<(), ExactlyOnceError> {
        let Some(txn) = &self.txn else { return Ok(()) };
        if !txn.open.load(Ordering::Acquire) {
            return Ok(());
        }
        self.producer
            .abort_transaction(timeout)
            .map_err(|e| txn_error("abort", &self.transactional_id(), e))?;
        self.transaction_ended();
        Ok(())
    }
}

/// The offsets record of `lsn` for `slot`, as exactly-once mode writes it.
fn position_record(settings: &ExactlyOnce, slot: &str, timeline: u32, lsn: Lsn) -> OffsetRecord {
    OffsetRecord {
        lsn: lsn.to_string(),
        slot: slot.to_string(),
        timeline,
        transactional_id: settings.transactional_id.clone(),
    }
}

/// A failed `begin_transaction`, as exactly-once mode reports it.
fn begin_error(e: SendError) -> ExactlyOnceError {
    match e {
        SendError::Transaction(e) => e,
        other => ExactlyOnceError::Kafka {
            doing: "begin",
            error: other.to_string(),
            fatal: false,
        },
    }
}

/// An offsets-topic error, as exactly-once mode reports it.
fn offsets_error(e: OffsetsError) -> ExactlyOnceError {
    match e {
        OffsetsError::BadRecord(e) => ExactlyOnceError::BadRecord(e),
        OffsetsError::SlotAhead(e) => ExactlyOnceError::SlotAhead(e),
        other => ExactlyOnceError::Kafka {
            doing: "the offsets topic",
            error: other.to_string(),
            fatal: false,
        },
    }
}

/// How long a commit, an abort or `init_transactions` may take before the run is restarted.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The producer settings exactly-once mode adds: the transactional id (idempotence and acks=all
/// are enforced for every mode by `sink::config`).
pub fn transactional_config(mut config: ClientConfig, settings: &ExactlyOnce) -> ClientConfig {
    config.set("transactional.id", &settings.transactional_id);
    config
}

/// A commit's outcome, sent back to the pipeline's loop.
pub type CommitResult = Result<(), ExactlyOnceError>;

/// Exactly-once mode during one run: the [`Batcher`] plus the Kafka calls it asks for. Commits
/// run on the blocking pool and report on a channel the pipeline's loop listens to, so status
/// updates keep flowing while Kafka commits.
pub struct Transactions {
    settings: ExactlyOnce,
    batcher: Batcher,
    key: String,
    slot: String,
    timeline: u32,
    done_tx: mpsc::UnboundedSender<CommitResult>,
    done_rx: Option<mpsc::UnboundedReceiver<CommitResult>>,
    metrics: Arc<Metrics>,
}

/// Where a run streams from: the offsets record's key and the slot's position.
pub struct Origin<'a> {
    /// IDENTIFY_SYSTEM's system identifier and timeline.
    pub system_id: u64,
    pub timeline: u32,
    pub database: &'a str,
    pub slot: &'a str,
    /// The slot's `confirmed_flush_lsn`: where Postgres streams from.
    pub start_lsn: Lsn,
    /// The slot was created by this run with a snapshot: ahead of an old record is accepted (the
    /// snapshot publishes the rows in the tables).
    pub new_slot_with_snapshot: bool,
}

impl Transactions {
    /// Reads the committed position, fences older producers with this transactional id (which
    /// ends their open transaction) and checks the position against the slot's (`start_lsn`).
    /// Call after the slot was acquired (`START_REPLICATION`), so that a standby never fences the
    /// active instance.
    pub async fn start(
        sink: &Arc<KafkaSink>,
        producer: &ClientConfig,
        settings: &ExactlyOnce,
        origin: Origin<'_>,
        position_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Transactions, ExactlyOnceError> {
        let Origin {
            system_id,
            timeline,
            database,
            slot,
            start_lsn,
            new_slot_with_snapshot,
        } = origin;
        let key = offsets_key(system_id, database, slot);
        let topic = settings.offsets_topic.as_str();
        let started = Instant::now();
        // Read before init_transactions: see "The position at start" in `crate::exactly_once`.
        ensure_offsets_topic(sink, producer, topic)
            .await
            .map_err(offsets_error)?;
        let recorded_before = read_recorded(producer, topic, &key)
            .await
            .map_err(offsets_error)?;
        log_history(&recorded_before, slot, &key, timeline);
        let before = recorded_before.position;
        let init_started = Instant::now();
        let s = sink.clone();
        tokio::task::spawn_blocking(move || s.init_transactions(TXN_TIMEOUT))
            .await
            .expect("init_transactions panicked")?;
        let init_ms = init_started.elapsed().as_millis() as u64;
        let after = read_recorded(producer, topic, &key)
            .await
            .map_err(offsets_error)?
            .position;
        let show = |l: Option<Lsn>| l.map_or_else(|| "none".to_string(), |l| l.to_string());
        let filters_aborted = if after == before {
            None
        } else {
            let (p, t) = (producer.clone(), topic.to_string());
            let (id, k) = (
                format!("{}-probe", settings.transactional_id),
                format!("{key}/aborted-probe"),
            );
            let probed =
                tokio::task::spawn_blocking(move || filters_aborted(&p, &t, &id, &k, TXN_TIMEOUT))
                    .await
                    .expect("probing the brokers panicked");
            match probed {
                Ok(filters) => Some(filters),
                Err(e) => {
                    tracing::warn!("exactly-once: could not ask the brokers whether read_committed readers skip aborted transactions ({e}); taking the position read before init_transactions");
                    None
                }
            }
        };
        let position = StartPosition::decide(before, after, filters_aborted);
        match position {
            StartPosition::Agreed(_) => {}
            StartPosition::Committed(after) => tracing::info!(
                before = %show(before),
                after = %show(after),
                "exactly-once: another instance's transaction committed while this one started; resuming from its position {}",
                show(after)
            ),
            StartPosition::Restate {
                resume,
                maybe_aborted,
            } => tracing::warn!(
                before = %show(resume),
                after = %show(maybe_aborted),
                "exactly-once: a transaction of this slot's producer was still open when this instance started, and init_transactions ended it with offsets record {}, which the brokers may show although aborted; resuming from {}, the position committed before it. If it was aborted (an instance that died while committing), nothing is lost; if it committed (an instance finishing its commit as this one took the slot over), its events are published again",
                show(maybe_aborted),
                show(resume)
            ),
        }
        let Resumed { recorded, resume } = check_resume(
            position.recorded(),
            ResumeFrom {
                topic,
                key: &key,
                slot,
                start_lsn,
                new_slot_with_snapshot,
                accept: settings.accept_slot_position,
            },
        )
        .map_err(offsets_error)?;
        if let StartPosition::Restate { maybe_aborted, .. } = position {
            // Make the last record a committed one again, so that a start after this one (should
            // this instance die before its first commit) does not read the aborted position.
            let record = |lsn| position_record(settings, slot, timeline, lsn);
            let (aborted, committed) = (record(maybe_aborted.unwrap_or(resume)), record(resume));
            let (s, t, k) = (sink.clone(), topic.to_string(), key.clone());
            tokio::task::spawn_blocking(move || {
                s.restate_position(&t, &k, &aborted, &committed, TXN_TIMEOUT)
            })
            .await
            .expect("restating the position panicked");
        }
        tracing::info!(
            transactional_id = %settings.transactional_id,
            offsets_topic = %settings.offsets_topic,
            key = %key,
            recorded = %show(recorded),
            slot_lsn = %start_lsn,
            init_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "exactly-once: transactions above {resume} are published, earlier ones skipped"
        );
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Ok(Transactions {
            settings: settings.clone(),
            batcher: Batcher::new(resume, settings, position_interval),
            key,
            slot: slot.to_string(),
            timeline,
            done_tx,
            done_rx: Some(done_rx),
            metrics,
        })
    }

    /// The receiver of commit outcomes (taken once, by the loop).
    pub fn take_commits(&mut self) -> Option<mpsc::UnboundedReceiver<CommitResult>> {
        self.done_rx.take()
    }

    /// The batcher (skip rule, confirmation cap).
    pub fn batcher(&mut self) -> &mut Batcher {
        &mut self.batcher
    }

    /// Whether a commit is under way: nothing may be produced until it reports.
    pub fn committing(&self) -> bool {
        self.batcher.committing()
    }

    /// Starts a commit when one is due (see [`Batcher::due`]). Never blocks.
    pub fn tick(&mut self, sink: &Arc<KafkaSink>, in_pg_transaction: bool, confirmed: Lsn) {
        let events = sink.transaction_events();
        let Some(commit) = self
            .batcher
            .due(Instant::now(), events, in_pg_transaction, confirmed)
        else {
            return;
        };
        tracing::trace!(lsn = %commit.lsn, events, "committing the Kafka transaction");
        let record = |lsn| position_record(&self.settings, &self.slot, self.timeline, lsn);
        let (record, committed) = (record(commit.lsn), record(self.batcher.recorded()));
        let (sink, topic, key, done, metrics) = (
            sink.clone(),
            self.settings.offsets_topic.clone(),
            self.key.clone(),
            self.done_tx.clone(),
            self.metrics.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = sink.commit_position(&topic, &key, &record, &committed, TXN_TIMEOUT);
            metrics
                .kafka_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            metrics
                .kafka_transactions
                .with_label_values(&[if result.is_ok() {
                    "committed"
                } else {
                    "failed"
                }])
                .inc();
            tracing::debug!(
                lsn = %record.lsn,
                events,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                ok = result.is_ok(),
                "Kafka transaction committed"
            );
            let _ = done.send(result);
        });
    }

    /// A commit reported.
    pub fn on_commit(&mut self, result: CommitResult) -> CommitResult {
        match result {
            Ok(()) => {
                self.batcher.committed();
                Ok(())
            }
            Err(e) => {
                self.batcher.failed();
                Err(e)
            }
        }
    }

    /// At shutdown: waits for a commit under way, then commits the open transaction (or aborts it
    /// when it ends inside a Postgres transaction, which must not be split).
    pub async fn finish(
        &mut self,
        sink: &Arc<KafkaSink>,
        commits: &mut Option<mpsc::UnboundedReceiver<CommitResult>>,
        in_pg_transaction: bool,
        confirmed: Lsn,
    ) -> CommitResult {
        if self.committing() {
            if let Some(rx) = commits {
                if let Some(result) = rx.recv().await {
                    self.on_commit(result)?;
                }
            }
        }
        if sink.transaction_events() == 0 {
            return Ok(());
        }
        let s = sink.clone();
        if in_pg_transaction {
            tracing::info!("exactly-once: aborting the Kafka transaction (it ends inside a Postgres transaction; sent again on the next start)");
            return tokio::task::spawn_blocking(move || s.abort(TXN_TIMEOUT))
                .await
                .expect("abort panicked");
        }
        // Due at once: the interval and size limits do not apply at shutdown.
        self.batcher.force_due();
        self.tick(sink, false, confirmed);
        match commits {
            Some(rx) => match rx.recv().await {
                Some(result) => self.on_commit(result),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// The next commit outcome; never completes without exactly-once mode.
pub async fn next_commit(
    commits: &mut Option<mpsc::UnboundedReceiver<CommitResult>>,
) -> Option<CommitResult> {
    match commits {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_is_told_apart_from_other_transaction_errors() {
        let fenced = txn_error(
            "commit",
            "outboxd-s1",
            KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced),
        );
        assert!(matches!(fenced, ExactlyOnceError::Fenced { .. }));
        // Restarted: the new run stands by while the other instance holds the slot.
        assert!(fenced.is_transient());
        assert!(fenced.to_string().contains("outboxd-s1"));
        let other = txn_error(
            "commit",
            "outboxd-s1",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        );
        assert!(other.is_transient(), "{other}");
    }
}
