//! One log line per cause while Kafka is unreachable: librdkafka reports every failed connection
//! attempt of every client (a line or two per broker per retry), which buries the one cause in
//! hundreds of lines. [`Repeats`] lets the first report of a cause through, then the next after
//! 1 s, 2 s, 4 s … at most a minute apart, each saying how many it held back; a cause not seen
//! for five minutes starts over. Causes are compared without their digits and without
//! librdkafka's ` (after …)` suffix, so `1/1 brokers are down` and `0/1 brokers are down`, or the
//! same failed connection `(after 12ms in state CONNECT)` and `(after 0ms …, 1 identical error(s)
//! suppressed)`, are one.
//! Pure (the caller passes the clock); the process-wide instance is [`admit`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FIRST_GAP: Duration = Duration::from_secs(1);
const MAX_GAP: Duration = Duration::from_secs(60);
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Causes remembered at most (the map is emptied when full).
const MAX_CAUSES: usize = 256;

#[derive(Debug)]
struct Cause {
    /// When the next line may go.
    next_at: Instant,
    gap: Duration,
    held_back: u64,
    last_seen: Instant,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Repeats {
    causes: HashMap<String, Cause>,
}

impl Repeats {
    /// Whether to log `cause` now: `Some(n)` with the number of its reports held back since its
    /// last line, `None` to hold this one back.
    pub fn admit(&mut self, cause: &str, now: Instant) -> Option<u64> {
        // librdkafka appends how long the attempt took and how many identical errors it
        // suppressed itself: not part of the cause.
        let base = cause.split(" (after ").next().unwrap_or(cause);
        let key: String = base.chars().filter(|c| !c.is_ascii_digit()).collect();
        if self.causes.len() >= MAX_CAUSES && !self.causes.contains_key(&key) {
            self.causes.clear();
        }
        match self.causes.get_mut(&key) {
            Some(c) if now.saturating_duration_since(c.last_seen) < FORGET_AFTER => {
                c.last_seen = now;
                if now < c.next_at {
                    c.held_back += 1;
                    return None;
                }
                let held_back = std::mem::take(&mut c.held_back);
                c.gap = (c.gap * 2).min(MAX_GAP);
                c.next_at = now + c.gap;
                Some(held_back)
            }
            _ => {
                self.causes.insert(
                    key,
                    Cause {
                        next_at: now + FIRST_GAP,
                        gap: FIRST_GAP,
                        held_back: 0,
                        last_seen: now,
                    },
                );
                Some(0)
            }
        }
    }
}

/// [`Repeats::admit`] on the process-wide instance, now.
pub fn admit(cause: &str) -> Option<u64> {
    static REPEATS: Mutex<Option<Repeats>> = Mutex::new(None);
    let mut guard = REPEATS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(Repeats::default)
        .admit(cause, Instant::now())
}

/// ` (N more like it held back)` for a line that follows held-back ones, else nothing.
pub fn held_back_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more like it since the last such line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_logged_with_backoff_and_its_repeats_counted() {
        let mut r = Repeats::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let down = "1/1 brokers are down";
        assert_eq!(r.admit(down, at(0)), Some(0));
        // Alternating digits are the same cause; held back within the first second.
        assert_eq!(r.admit("0/1 brokers are down", at(100)), None);
        assert_eq!(r.admit(down, at(900)), None);
        assert_eq!(r.admit(down, at(1_000)), Some(2));
        // Then 2 s, 4 s, … apart.
        assert_eq!(r.admit(down, at(2_500)), None);
        assert_eq!(r.admit(down, at(3_000)), Some(1));
        assert_eq!(r.admit(down, at(6_999)), None);
        assert_eq!(r.admit(down, at(7_000)), Some(1));
        let refused = "Connect to ipv4#127.0.0.1:9 failed: Connection refused";
        assert_eq!(
            r.admit(
                &format!("{refused} (after 0ms in state CONNECT)"),
                at(7_000)
            ),
            Some(0)
        );
        assert_eq!(
            r.admit(
                &format!("{refused} (after 3ms in state CONNECT, 1 identical error(s) suppressed)"),
                at(7_001)
            ),
            None,
            "librdkafka's suffix is not part of the cause"
        );
        // Another cause has its own pace.
        assert_eq!(r.admit("Connection refused", at(7_001)), Some(0));
        // At most a minute apart however long it lasts.
        let mut now = 7_000;
        let mut lines = 0;
        for _ in 0..2_000 {
            now += 500;
            if r.admit(down, at(now)).is_some() {
                lines += 1;
            }
        }
        // 1,000 s of reports every 0.5 s: the gap grows to 60 s, so about 20 lines.
        assert!((15..=25).contains(&lines), "{lines} lines");
        // Not seen for five minutes: the next one is logged at once.
        assert_eq!(r.admit(down, at(now + 300_000)), Some(0));
    }

    #[test]
    fn the_causes_remembered_are_bounded() {
        let mut r = Repeats::default();
        let t0 = Instant::now();
        for i in 0..(MAX_CAUSES * 3) {
            let cause = format!("cause {}", char::from(b'a' + (i % 26) as u8)).repeat(1 + i / 26);
            r.admit(&cause, t0);
        }
        assert!(r.causes.len() <= MAX_CAUSES);
    }
}
