//! The confirm rule: which WAL position outboxd may confirm to Postgres now.
//!
//! # The rule
//! The `flush` position of a standby status update is the smaller of
//! - the checkpoint's position ([`crate::checkpoint`]): the end of the newest transaction such
//!   that it and every earlier one are acknowledged by Kafka, and
//! - the position last recorded in Kafka, when one is recorded: the last offsets record Kafka
//!   acknowledged (at-least-once mode with `[offsets]`, [`crate::position`]) or the last
//!   committed one (exactly-once mode, [`crate::exactly_once`]), so that the slot is never
//!   ahead of what Kafka holds,
//!
//! and never less than what was confirmed before on the same stream: a confirmation never goes
//! backwards, in release builds too (each input only grows, so this only guards the rule
//! against a bug elsewhere). The relay asks this module and nothing else; this module has no I/O
//! and no clock.

use crate::lsn::Lsn;

/// The checkpoint's position capped at the recorded one (`None`: nothing is recorded).
pub fn capped(checkpoint: Lsn, recorded: Option<Lsn>) -> Lsn {
    recorded.map_or(checkpoint, |r| checkpoint.min(r))
}

/// The confirmations of one replication stream.
#[derive(Debug, Default)]
pub struct Confirmations {
    /// The `flush` position of the last status update sent (zero before the first).
    sent: Lsn,
}

impl Confirmations {
    pub fn new() -> Confirmations {
        Confirmations::default()
    }

    /// What may be confirmed now: [`capped`], never below what was sent before.
    pub fn confirmable(&self, checkpoint: Lsn, recorded: Option<Lsn>) -> Lsn {
        capped(checkpoint, recorded).max(self.sent)
    }

    /// The `flush` position of the last status update sent.
    pub fn sent(&self) -> Lsn {
        self.sent
    }

    /// A status update with `flush` went out; returns whether the position moved.
    pub fn confirmed(&mut self, flush: Lsn) -> bool {
        let moved = flush > self.sent;
        self.sent = self.sent.max(flush);
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_is_capped_at_the_recorded_position() {
        assert_eq!(capped(Lsn(300), None), Lsn(300), "nothing recorded");
        assert_eq!(
            capped(Lsn(300), Some(Lsn(200))),
            Lsn(200),
            "not recorded yet"
        );
        assert_eq!(capped(Lsn(200), Some(Lsn(300))), Lsn(200), "recorded ahead");
    }

    #[test]
    fn a_confirmation_never_goes_backwards() {
        let mut c = Confirmations::new();
        assert_eq!(c.confirmable(Lsn(100), Some(Lsn(150))), Lsn(100));
        assert!(c.confirmed(Lsn(100)));
        assert!(!c.confirmed(Lsn(100)), "the same position again");
        // Whatever the inputs say later (a bug elsewhere), never below what went out.
        assert_eq!(c.confirmable(Lsn(50), None), Lsn(100));
        assert_eq!(c.confirmable(Lsn(300), Some(Lsn(90))), Lsn(100));
        assert!(!c.confirmed(Lsn(90)));
        assert_eq!(c.sent(), Lsn(100));
        assert_eq!(c.confirmable(Lsn(300), Some(Lsn(250))), Lsn(250));
    }

    /// The composition over a run: acknowledgements and records arrive in any interleaving;
    /// what is confirmed is always at most both, and grows.
    #[test]
    fn the_confirmed_position_is_never_ahead_of_either_input_and_only_grows() {
        let mut c = Confirmations::new();
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let (mut checkpoint, mut recorded) = (0u64, 0u64);
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            match rng % 3 {
                0 => checkpoint += rng % 50,
                // A record is written at a checkpoint position, never ahead of it.
                1 => recorded = recorded.max(checkpoint.min(recorded + rng % 80)),
                _ => {}
            }
            let before = c.sent();
            let flush = c.confirmable(Lsn(checkpoint), Some(Lsn(recorded)));
            assert!(flush <= Lsn(checkpoint) && flush <= Lsn(recorded));
            assert!(flush >= before);
            c.confirmed(flush);
        }
    }
}
