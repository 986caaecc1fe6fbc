//! Reading back what is already in the destination topics, for the take-over from Debezium: the
//! `id` headers of the records produced since a point in time, in every topic whose name fits a
//! pattern (`debezium::tail`, which owns the rule; this file owns only the Kafka reads).
//!
//! Each partition is read from the first record at or after the timestamp
//! (`offsets_for_times`) to its high watermark taken at the start, with a `read_committed`
//! consumer assigned by hand (no group is joined, nothing committed). Bounded: at most
//! [`MAX_IDS`] ids, and `timeout` in all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use regex::Regex;

use super::offsets::consumer_config;
use super::producer::SideContext;
use crate::debezium::tail::{ReadBack, MAX_IDS};

/// Reads the `id` headers of the records produced at or after `since_ms` (milliseconds since the
/// Unix epoch) into the topics matching `topics` (internal topics, `__…`, excluded).
pub fn read_back_ids(
    producer: &ClientConfig,
    topics: &Regex,
    since_ms: i64,
    timeout: Duration,
) -> Result<ReadBack, String> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer<SideContext> = consumer_config(producer)
        .set("group.id", "outboxd-takeover-read-back")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(SideContext)
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(|e| format!("listing the topics: {e}"))?;
    let mut read = ReadBack::default();
    let mut wanted = TopicPartitionList::new();
    for t in metadata.topics() {
        if t.name().starts_with("__") || !topics.is_match(t.name()) || t.error().is_some() {
            continue;
        }
        read.topics.push(t.name().to_string());
        for p in t.partitions() {
            wanted
                .add_partition_offset(t.name(), p.id(), Offset::Offset(since_ms))
                .map_err(|e| e.to_string())?;
        }
    }
    if wanted.count() == 0 {
        return Ok(read);
    }
    let starts = consumer
        .offsets_for_times(wanted, Duration::from_secs(30))
        .map_err(|e| format!("finding the records since {since_ms} ms: {e}"))?;
    // Where each partition starts and ends (the high watermark now: what is produced later is
    // not Debezium's).
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for e in starts.elements() {
        let Offset::Offset(start) = e.offset() else {
            continue; // no record at or after the time
        };
        let (_, high) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(30))
            .map_err(|err| format!("{}[{}]: {err}", e.topic(), e.partition()))?;
        if start < high {
            assignment
                .add_partition_offset(e.topic(), e.partition(), Offset::Offset(start))
                .map_err(|err| err.to_string())?;
            ends.insert((e.topic().to_string(), e.partition()), high);
        }
    }
    if ends.is_empty() {
        return Ok(read);
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    while !ends.is_empty() {
        if Instant::now() > deadline || read.count >= MAX_IDS {
            read.truncated = true;
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = message.map_err(|e| e.to_string())?;
        let key = (m.topic().to_string(), m.partition());
        if let Some(&high) = ends.get(&key) {
            read.records += 1;
            let id = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "id").and_then(|h| h.value));
            match id {
                Some(id) => {
                    let new = read
                        .ids
                        .entry(key.0.clone())
                        .or_default()
                        .insert(Bytes::copy_from_slice(id));
                    read.count += usize::from(new);
                }
                None => read.without_id += 1,
            }
            if m.offset() + 1 >= high {
                ends.remove(&key);
            }
        }
    }
    // Closing a client waits for its threads: not on the caller's path.
    std::thread::spawn(move || drop(consumer));
    Ok(read)
}
