//! Debezium's unflushed tail: the events Debezium published after the offset it last stored.
//!
//! Kafka Connect stores a connector's offset only every `offset.flush.interval.ms` (60 s by
//! default), so after a SIGKILL (or a stop whose final offset commit failed) the stored offset is
//! behind what Debezium had published, and outboxd, skipping only what the offset covers
//! ([`super::offsets::Taken`]), would publish those events again. They are in the destination
//! topics, though: at start outboxd reads back the records produced there since the offset's
//! commit time (`ts_usec`, less a margin for clocks), from the topics the router can name
//! ([`topic_pattern`]), and collects their `id` headers ([`PublishedTail`]); while streaming, an
//! outbox event whose `id` is among them is not published again. Once the stream passes the WAL
//! position the server had when outboxd started, nothing Debezium published can follow, and the
//! set is dropped.
//!
//! An event cannot be identified when its topic is not one outboxd read back (a routing value that
//! `route.topic.regex` does not match names the topic itself) or it has no `id`: it is published,
//! and counted, and said once. Pure: the caller reads the topics (`sink::readback`) and hands the
//! ids in.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use regex::Regex;

use crate::lsn::Lsn;

/// The topics the router can name: `route.topic.replacement` with each group reference (`${name}`,
/// `$n`) standing for any text and every other character literal (`\x` is `x`).
pub fn topic_pattern(replacement: &str) -> Regex {
    let mut pattern = String::from("^");
    let mut literal = String::new();
    let mut chars = replacement.chars().peekable();
    let flush = |literal: &mut String, pattern: &mut String| {
        pattern.push_str(&regex::escape(literal));
        literal.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    literal.push(next);
                }
            }
            '$' if chars.peek() == Some(&'{') => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                flush(&mut literal, &mut pattern);
                pattern.push_str(".*");
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                flush(&mut literal, &mut pattern);
                pattern.push_str(".*");
            }
            other => literal.push(other),
        }
    }
    flush(&mut literal, &mut pattern);
    pattern.push('$');
    Regex::new(&pattern).expect("an escaped pattern is a valid regex")
}

/// What a read-back found: the `id` headers of the records in the topics read, by topic (an id
/// counts only in its own topic: another aggregate type's topic may hold the same id).
#[derive(Debug, Default, Clone)]
pub struct ReadBack {
    pub ids: HashMap<String, HashSet<Bytes>>,
    /// Ids in all.
    pub count: usize,
    /// The topics read.
    pub topics: Vec<String>,
    /// Records read, with or without an `id` header.
    pub records: u64,
    /// Records without one.
    pub without_id: u64,
    /// The read stopped at [`MAX_IDS`]: later events of the tail may be published again.
    pub truncated: bool,
}

/// At most this many ids are kept (about 64 MB): a read-back that would hold more stops there.
pub const MAX_IDS: usize = 1_000_000;

/// The verdict on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailVerdict {
    /// Its `id` is in a topic: Debezium published it.
    Published,
    /// Read back and not there: publish it.
    NotPublished,
    /// Its topic was not read back, or it has no `id`: publish it (it may come twice).
    Unidentified,
}

/// The tail's state while streaming. See the module documentation.
#[derive(Debug)]
pub struct PublishedTail {
    ids: HashMap<String, HashSet<Bytes>>,
    /// Ids not matched yet.
    left: usize,
    topics: HashSet<String>,
    /// The server's WAL position when outboxd started: a transaction committed at or after it
    /// was never Debezium's.
    until: Lsn,
    pub skipped: u64,
    pub unidentified: u64,
}

/// What the tail did, once the stream passed `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailDone {
    pub skipped: u64,
    pub unidentified: u64,
    /// Ids read back that no event of the stream had (records of transactions the offset already
    /// covered, or of other producers).
    pub unmatched: u64,
}

impl PublishedTail {
    pub fn new(read: ReadBack, until: Lsn) -> PublishedTail {
        PublishedTail {
            left: read.ids.values().map(HashSet::len).sum(),
            ids: read.ids,
            topics: read.topics.into_iter().collect(),
            until,
            skipped: 0,
            unidentified: 0,
        }
    }

    /// A transaction begins (pgoutput `Begin.final_lsn`): `Some` once the stream is past the
    /// position the server had at start (the tail is then over: drop it).
    pub fn begin(&mut self, final_lsn: Lsn) -> Option<TailDone> {
        (final_lsn >= self.until).then_some(TailDone {
            skipped: self.skipped,
            unidentified: self.unidentified,
            unmatched: self.left as u64,
        })
    }

    /// An event routed to `topic` with `id` (the `id` header's bytes).
    pub fn check(&mut self, topic: &str, id: Option<&[u8]>) -> TailVerdict {
        let Some(id) = id.filter(|_| self.topics.contains(topic)) else {
            self.unidentified += 1;
            return TailVerdict::Unidentified;
        };
        if self.ids.get_mut(topic).is_some_and(|ids| ids.remove(id)) {
            self.left -= 1;
            self.skipped += 1;
            TailVerdict::Published
        } else {
            TailVerdict::NotPublished
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topics_the_router_can_name() {
        let p = topic_pattern("outbox.event.${routedByValue}");
        assert!(p.is_match("outbox.event.Order"));
        assert!(p.is_match("outbox.event."));
        assert!(!p.is_match("outboxXevent.Order"), "dots are literal");
        assert!(!p.is_match("other.Order"));
        let p = topic_pattern("${routedByValue}");
        assert!(p.is_match("anything"));
        let p = topic_pattern(r"app_$1-events\$");
        assert!(p.is_match("app_orders-events$"));
        assert!(!p.is_match("app_orders-events"));
    }

    fn read(ids: &[&str], topics: &[&str]) -> ReadBack {
        ReadBack {
            ids: HashMap::from([(
                topics[0].to_string(),
                ids.iter()
                    .map(|i| Bytes::copy_from_slice(i.as_bytes()))
                    .collect(),
            )]),
            count: ids.len(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            records: ids.len() as u64,
            without_id: 0,
            truncated: false,
        }
    }

    #[test]
    fn events_read_back_are_skipped_once_until_the_stream_passes_the_start() {
        let mut t = PublishedTail::new(
            read(&["a", "b", "c"], &["outbox.event.O", "outbox.event.P"]),
            Lsn(0x500),
        );
        assert_eq!(t.begin(Lsn(0x100)), None);
        assert_eq!(
            t.check("outbox.event.O", Some(b"a")),
            TailVerdict::Published
        );
        assert_eq!(
            t.check("outbox.event.O", Some(b"a")),
            TailVerdict::NotPublished,
            "an id is skipped once: a second event with the same id is the application's"
        );
        assert_eq!(
            t.check("outbox.event.O", Some(b"x")),
            TailVerdict::NotPublished
        );
        assert_eq!(
            t.check("outbox.event.P", Some(b"b")),
            TailVerdict::NotPublished,
            "read back, but the id is another topic's"
        );
        assert_eq!(t.check("elsewhere", Some(b"b")), TailVerdict::Unidentified);
        assert_eq!(t.check("outbox.event.O", None), TailVerdict::Unidentified);
        assert_eq!(t.begin(Lsn(0x4ff)), None);
        assert_eq!(
            t.begin(Lsn(0x500)),
            Some(TailDone {
                skipped: 1,
                unidentified: 2,
                unmatched: 2
            })
        );
    }
}
