//! The checkpoint: which WAL position may be confirmed back to Postgres.
//!
//! # The invariant
//! outboxd confirms (as the `flush` LSN of a standby status update) the `end_lsn` of the newest
//! transaction such that **it and every earlier transaction are fully acknowledged by Kafka**. Nothing
//! else ever moves the confirmed position, and it never goes backwards.
//!
//! Why `end_lsn` (from the pgoutput `Commit` message) and not the commit LSN: after a reconnect,
//! Postgres skips every transaction whose commit record starts *before* the confirmed position.
//! Confirming the commit LSN itself would replay the last transaction on every restart; confirming
//! its end is exact. See <https://www.postgresql.org/docs/current/protocol-replication.html>.
//!
//! # How it is tracked
//! Every event handed to the sink gets a sequence number, in WAL order. Deliveries complete out of
//! order (different partitions, retries), so acknowledged sequences are folded into a contiguous
//! prefix `acked_upper` (every sequence below it is acknowledged), with the early ones parked until the
//! gap closes, exactly as Kafka Connect's `SubmittedRecords` does. Each commit remembers the sequence
//! number that follows its last event (`seq_upper`); a commit becomes confirmable once
//! `seq_upper <= acked_upper`. A transaction with no outbox events is confirmable as soon as every
//! earlier one is.
//!
//! A failed delivery is simply never acknowledged: the contiguous prefix stops in front of it, so no
//! later transaction can be confirmed either. The pipeline then stops, and a restart replays from the
//! slot: duplicates are possible, loss is not.
//!
//! # Idle slots
//! A keepalive received between transactions reports the server's WAL end: every transaction
//! committed before it has already been sent to us. It is queued like a transaction without events
//! (after the commits received before it), so it becomes confirmable once they are all acknowledged:
//! every change before it was then either published and acknowledged or not ours. Without this the
//! slot would hold WAL for ever while the outbox is idle and other tables write, and WAL written after
//! a backlog would stay unconfirmed until the next keepalive. A keepalive inside an open transaction
//! is ignored.
//!
//! This module is pure state: no I/O, no clock.

use std::collections::{BTreeSet, VecDeque};

use crate::lsn::Lsn;

/// The position of an event in WAL order, assigned by [`Checkpoint::next_seq`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

/// A violation of the checkpoint's protocol by its caller: a bug, never a data condition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error(
        "delivery acknowledged for event #{0}, which was never sent or was already acknowledged"
    )]
    UnknownAck(u64),
    #[error("{0} received outside a transaction (no Begin before it)")]
    OutsideTransaction(&'static str),
    #[error("Begin received while a transaction was still open")]
    NestedBegin,
}

/// A commit (or keepalive) waiting for its events (and every earlier event) to be acknowledged.
#[derive(Debug)]
struct PendingCommit {
    /// The sequence number following the transaction's last event.
    seq_upper: u64,
    /// The transaction's `Commit.end_lsn` or the keepalive's WAL end: what gets confirmed.
    end_lsn: Lsn,
    /// Whether this entry is a keepalive (consecutive ones merge, so they never pile up).
    keepalive: bool,
}

/// Tracks sent events and commits, and derives the confirmable LSN. See the module documentation.
#[derive(Debug)]
pub struct Checkpoint {
    /// The sequence number the next event gets.
    next_seq: u64,
    /// Every sequence number below this one is acknowledged.
    acked_upper: u64,
    /// Acknowledged sequence numbers at or above `acked_upper` (they arrived before a gap closed).
    acked_ahead: BTreeSet<u64>,
    /// Commits not yet confirmable, in WAL order.
    pending: VecDeque<PendingCommit>,
    /// Whether a Begin was seen without its Commit yet.
    in_transaction: bool,
    /// The confirmable position: only ever grows.
    confirmed: Lsn,
}

impl Checkpoint {
    /// Starts from the slot's `confirmed_flush_lsn`: everything before it is already settled.
    pub fn new(resume_lsn: Lsn) -> Self {
        Checkpoint {
            next_seq: 0,
            acked_upper: 0,
            acked_ahead: BTreeSet::new(),
            pending: VecDeque::new(),
            in_transaction: false,
            confirmed: resume_lsn,
        }
    }

    /// A transaction begins (pgoutput `Begin`).
    pub fn begin(&mut self) -> Result<(), CheckpointError> {
        if self.in_transaction {
            return Err(CheckpointError::NestedBegin);
        }
        self.in_transaction = true;
        Ok(())
    }

    /// Assigns the next sequence number to an event of the open transaction, before it is sent.
    pub fn next_seq(&mut self) -> Result<Seq, CheckpointError> {
        if !self.in_transaction {
            return Err(CheckpointError::OutsideTransaction("an outbox event"));
        }
        let seq = Seq(self.next_seq);
        self.next_seq += 1;
        Ok(seq)
    }

    /// The open transaction commits; `end_lsn` is pgoutput `Commit.end_lsn`.
    pub fn commit(&mut self, end_lsn: Lsn) -> Result<(), CheckpointError> {
        if !self.in_transaction {
            return Err(CheckpointError::OutsideTransaction("Commit"));
        }
        self.in_transaction = false;
        self.pending.push_back(PendingCommit {
            seq_upper: self.next_seq,
            end_lsn,
            keepalive: false,
        });
        self.advance();
        Ok(())
    }

    /// Kafka acknowledged the event `seq` (in any order).
    pub fn ack(&mut self, seq: Seq) -> Result<(), CheckpointError> {
        let Seq(n) = seq;
        if n >= self.next_seq || n < self.acked_upper || !self.acked_ahead.insert(n) {
            return Err(CheckpointError::UnknownAck(n));
        }
        while self.acked_ahead.remove(&self.acked_upper) {
            self.acked_upper += 1;
        }
        self.advance();
        Ok(())
    }

    /// A keepalive reported the server's WAL end: confirmable once every commit received before it
    /// is (at once when nothing is pending). Ignored inside an open transaction.
    pub fn keepalive(&mut self, wal_end: Lsn) {
        if self.in_transaction {
            return;
        }
        match self.pending.back_mut() {
            Some(last) if last.keepalive => last.end_lsn = last.end_lsn.max(wal_end),
            _ => self.pending.push_back(PendingCommit {
                seq_upper: self.next_seq,
                end_lsn: wal_end,
                keepalive: true,
            }),
        }
        self.advance();
    }

    /// The position that may be sent as the `flush` LSN of a standby status update.
    pub fn confirmed(&self) -> Lsn {
        self.confirmed
    }

    /// Events sent but not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.next_seq - self.acked_upper - self.acked_ahead.len() as u64
    }

    /// Whether a transaction is open (Begin seen, Commit not yet).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Moves every commit whose events are all acknowledged into the confirmed position.
    fn advance(&mut self) {
        while let Some(front) = self.pending.front() {
            if front.seq_upper > self.acked_upper {
                break;
            }
            let end_lsn = front.end_lsn;
            self.pending.pop_front();
            self.raise(end_lsn);
        }
    }

    fn raise(&mut self, lsn: Lsn) {
        // Never backwards: a keepalive or commit older than what was confirmed changes nothing.
        self.confirmed = self.confirmed.max(lsn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(cp: &mut Checkpoint, events: usize, end: u64) -> Vec<Seq> {
        cp.begin().unwrap();
        let seqs = (0..events).map(|_| cp.next_seq().unwrap()).collect();
        cp.commit(Lsn(end)).unwrap();
        seqs
    }

    #[test]
    fn confirms_end_lsn_only_after_every_event_of_the_transaction_is_acked() {
        let mut cp = Checkpoint::new(Lsn(100));
        let s = txn(&mut cp, 3, 200);
        assert_eq!(cp.confirmed(), Lsn(100));
        cp.ack(s[0]).unwrap();
        cp.ack(s[1]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(100), "one event still unacknowledged");
        cp.ack(s[2]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(200));
        assert_eq!(cp.in_flight(), 0);
    }

    #[test]
    fn out_of_order_acks_across_partitions_never_skip_a_gap() {
        let mut cp = Checkpoint::new(Lsn(0));
        let a = txn(&mut cp, 2, 10); // seqs 0,1
        let b = txn(&mut cp, 1, 20); // seq 2
        let c = txn(&mut cp, 2, 30); // seqs 3,4
                                     // Later transactions acknowledged first (another partition was faster).
        cp.ack(c[1]).unwrap();
        cp.ack(c[0]).unwrap();
        cp.ack(b[0]).unwrap();
        assert_eq!(
            cp.confirmed(),
            Lsn(0),
            "transaction a is not acknowledged yet"
        );
        assert_eq!(cp.in_flight(), 2);
        cp.ack(a[1]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(0), "a's first event still missing");
        cp.ack(a[0]).unwrap();
        assert_eq!(
            cp.confirmed(),
            Lsn(30),
            "the gap closed: all three are confirmable"
        );
    }

    #[test]
    fn a_failed_delivery_blocks_every_later_confirmation() {
        let mut cp = Checkpoint::new(Lsn(5));
        let a = txn(&mut cp, 1, 10);
        let b = txn(&mut cp, 1, 20);
        let c = txn(&mut cp, 1, 30);
        cp.ack(a[0]).unwrap();
        // b[0] failed: it is never acknowledged.
        let _ = b;
        cp.ack(c[0]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(10));
        cp.keepalive(Lsn(1000));
        assert_eq!(
            cp.confirmed(),
            Lsn(10),
            "a keepalive must not jump over the failed event"
        );
    }

    #[test]
    fn transactions_without_events_confirm_when_reached() {
        let mut cp = Checkpoint::new(Lsn(0));
        txn(&mut cp, 0, 10);
        assert_eq!(cp.confirmed(), Lsn(10));
        let a = txn(&mut cp, 1, 20);
        txn(&mut cp, 0, 30);
        assert_eq!(
            cp.confirmed(),
            Lsn(10),
            "the empty transaction waits for the one before it"
        );
        cp.ack(a[0]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(30));
    }

    #[test]
    fn keepalive_advances_only_when_idle() {
        let mut cp = Checkpoint::new(Lsn(50));
        cp.keepalive(Lsn(60));
        assert_eq!(cp.confirmed(), Lsn(60), "idle: the slot may advance");

        cp.begin().unwrap();
        cp.keepalive(Lsn(70));
        assert_eq!(cp.confirmed(), Lsn(60), "a transaction is open");
        let s = cp.next_seq().unwrap();
        cp.commit(Lsn(80)).unwrap();
        cp.keepalive(Lsn(90));
        assert_eq!(cp.confirmed(), Lsn(60), "an event is in flight");
        cp.keepalive(Lsn(95));
        cp.ack(s).unwrap();
        assert_eq!(
            cp.confirmed(),
            Lsn(95),
            "the keepalives received while the event was in flight apply once it is acknowledged"
        );
        cp.keepalive(Lsn(100));
        assert_eq!(cp.confirmed(), Lsn(100));
    }

    #[test]
    fn a_queued_keepalive_never_overtakes_a_later_transaction() {
        let mut cp = Checkpoint::new(Lsn(0));
        let a = txn(&mut cp, 1, 10);
        cp.keepalive(Lsn(15));
        let b = txn(&mut cp, 1, 20);
        cp.keepalive(Lsn(25));
        cp.keepalive(Lsn(27));
        assert_eq!(
            cp.pending.len(),
            4,
            "consecutive keepalives merge into one entry"
        );
        cp.ack(b[0]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(0), "a is not acknowledged yet");
        cp.ack(a[0]).unwrap();
        assert_eq!(cp.confirmed(), Lsn(27));
    }

    #[test]
    fn confirmed_never_goes_backwards() {
        let mut cp = Checkpoint::new(Lsn(500));
        txn(&mut cp, 0, 400); // replayed transaction older than the slot position
        assert_eq!(cp.confirmed(), Lsn(500));
        cp.keepalive(Lsn(300));
        assert_eq!(cp.confirmed(), Lsn(500));
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut cp = Checkpoint::new(Lsn(0));
        assert_eq!(cp.ack(Seq(0)), Err(CheckpointError::UnknownAck(0)));
        assert!(cp.next_seq().is_err());
        assert!(cp.commit(Lsn(1)).is_err());
        cp.begin().unwrap();
        assert_eq!(cp.begin(), Err(CheckpointError::NestedBegin));
        let s = cp.next_seq().unwrap();
        cp.commit(Lsn(2)).unwrap();
        cp.ack(s).unwrap();
        assert_eq!(cp.ack(s), Err(CheckpointError::UnknownAck(0)), "double ack");
    }

    #[test]
    fn randomized_acks_confirm_exactly_the_contiguous_prefix() {
        // Deterministic xorshift: many transactions, acks in shuffled order; after every ack the
        // confirmed LSN must equal the end of the longest fully acknowledged prefix of transactions.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cp = Checkpoint::new(Lsn(0));
        let mut txns: Vec<(Vec<Seq>, u64)> = Vec::new();
        for i in 0..200u64 {
            let n = (rand() % 4) as usize;
            let end = (i + 1) * 10;
            txns.push((txn(&mut cp, n, end), end));
        }
        let mut all: Vec<Seq> = txns.iter().flat_map(|(s, _)| s.clone()).collect();
        for i in (1..all.len()).rev() {
            let j = (rand() % (i as u64 + 1)) as usize;
            all.swap(i, j);
        }
        let mut acked = std::collections::HashSet::new();
        for seq in all {
            cp.ack(seq).unwrap();
            acked.insert(seq);
            let expected = txns
                .iter()
                .take_while(|(seqs, _)| seqs.iter().all(|s| acked.contains(s)))
                .last()
                .map_or(0, |(_, end)| *end);
            assert_eq!(cp.confirmed(), Lsn(expected));
        }
        assert_eq!(cp.confirmed(), Lsn(2000));
        assert_eq!(cp.in_flight(), 0);
    }
}
