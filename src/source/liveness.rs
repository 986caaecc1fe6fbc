//! Telling a dead replication connection from a quiet one (`source.receive_timeout_ms`).
//!
//! A network partition that drops packets without resetting the connection leaves the socket
//! open: reads wait for ever and writes fill the kernel's buffer for many minutes. Postgres's own
//! standby has the same problem and solves it with `wal_receiver_timeout`; this is that rule:
//! when the server has sent nothing for half the timeout, the next status update asks it to
//! answer at once (a keepalive), and when it has sent nothing for the whole timeout, the
//! connection is taken for dead and the run restarts (a transient error, with backoff).
//!
//! Silence counts only while outboxd reads the stream: while it holds off (in-flight caps
//! reached, a snapshot being published) the server's messages wait in the socket unread, so
//! [`Liveness::not_reading`] restarts the clock. Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// What the caller should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Alive,
    /// Send a status update with `reply_requested` (once per silence).
    AskForReply,
    /// The server has said nothing for this long: give the connection up.
    Dead(Duration),
}

/// The clock of the server's silence on one replication connection.
#[derive(Debug, Clone)]
pub struct Liveness {
    /// `None`: never give up (`receive_timeout_ms = 0`).
    timeout: Option<Duration>,
    last_heard: Instant,
    asked: bool,
}

impl Liveness {
    /// Starts the clock at `now` (the stream just started).
    pub fn new(timeout: Option<Duration>, now: Instant) -> Self {
        Liveness {
            timeout: timeout.filter(|t| !t.is_zero()),
            last_heard: now,
            asked: false,
        }
    }

    /// The server sent a message (any: data or keepalive).
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.asked = false;
    }

    /// outboxd is not reading the stream now: what the server sends cannot be heard, so this
    /// is not silence.
    pub fn not_reading(&mut self, now: Instant) {
        self.heard(now);
    }

    /// Checks the silence at `now`. `AskForReply` is returned once per silence; the caller sends
    /// the request.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let Some(timeout) = self.timeout else {
            return Verdict::Alive;
        };
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= timeout {
            Verdict::Dead(silent)
        } else if silent >= timeout / 2 && !self.asked {
            self.asked = true;
            Verdict::AskForReply
        } else {
            Verdict::Alive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn asks_once_at_half_the_timeout_then_gives_up_at_the_timeout() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), t0);
        assert_eq!(l.check(t0 + 4 * S), Verdict::Alive);
        assert_eq!(l.check(t0 + 5 * S), Verdict::AskForReply);
        assert_eq!(l.check(t0 + 6 * S), Verdict::Alive, "asked only once");
        assert_eq!(l.check(t0 + 10 * S), Verdict::Dead(10 * S));
        assert_eq!(l.check(t0 + 12 * S), Verdict::Dead(12 * S));
    }

    #[test]
    fn a_message_restarts_the_clock_and_allows_a_new_request() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), t0);
        assert_eq!(l.check(t0 + 5 * S), Verdict::AskForReply);
        l.heard(t0 + 6 * S);
        assert_eq!(l.check(t0 + 10 * S), Verdict::Alive, "4 s of silence");
        assert_eq!(
            l.check(t0 + 11 * S),
            Verdict::AskForReply,
            "a new silence, a new request"
        );
        assert_eq!(l.check(t0 + 15 * S), Verdict::Alive);
        assert_eq!(l.check(t0 + 16 * S), Verdict::Dead(10 * S));
    }

    #[test]
    fn time_spent_not_reading_is_not_silence() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), t0);
        // Held off for a minute (Kafka down, caps reached): the server's keepalives wait unread.
        l.not_reading(t0 + 60 * S);
        assert_eq!(l.check(t0 + 61 * S), Verdict::Alive);
        assert_eq!(l.check(t0 + 70 * S), Verdict::Dead(10 * S));
    }

    #[test]
    fn zero_or_none_never_gives_up() {
        let t0 = Instant::now();
        for timeout in [None, Some(Duration::ZERO)] {
            let mut l = Liveness::new(timeout, t0);
            assert_eq!(l.check(t0 + 3600 * S), Verdict::Alive);
        }
    }
}
