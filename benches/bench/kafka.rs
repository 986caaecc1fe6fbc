//! Kafka clients of the harness: the consumer that never joins a group, counting a drain's
//! records in Kafka, a producer with exactly outboxd's settings (the broker-only baseline and
//! the broker probe), and the end-offset poller that times a drain's records into Kafka.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::BaseProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::cli::Args;

/// A consumer that never joins a group (slow on tansu): callers `assign` partitions.
pub fn reader(bootstrap: &str, fetch_wait_ms: u64) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("outboxd-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .set("log_level", "3")
        .create()?)
}

pub fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(3))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some(t.partitions().iter().map(|p| p.id()).collect())
}

pub fn assign_all(consumer: &BaseConsumer, topic: &str) -> Result<()> {
    let parts = partitions_of(consumer, topic).ok_or_else(|| anyhow!("topic {topic} not found"))?;
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

/// The integer after `"key": ` in a jsonb text payload (`{"ts": 1, "pad": "xx", "seq": 2}`).
pub fn json_int(payload: &[u8], key: &str) -> Option<i64> {
    let needle = format!("\"{key}\": ");
    let start = payload
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let digits: Vec<u8> = payload[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed;
/// returns how many it read. Blocking.
pub fn count_all(bootstrap: &str, topic: &str, expected: u64, timeout: Duration) -> Result<u64> {
    let started = Instant::now();
    let consumer = reader(bootstrap, 100)?;
    assign_all(&consumer, topic)?;
    let mut read = 0;
    while read < expected && started.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => read += 1,
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => eprintln!("[bench] consume: {e} (retrying)"),
        }
    }
    Ok(read)
}

#[derive(Debug, Clone, Serialize)]
pub struct KafkaCount {
    pub records: u64,
    pub distinct: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub avg_value_bytes: f64,
    pub seconds: f64,
}

/// Reads the topic from the beginning (all partitions assigned) until `expected` distinct events
/// arrived and nothing more came for a second, or `timeout` passed. Blocking.
pub fn count_records(
    bootstrap: &str,
    topic: &str,
    expected: u64,
    timeout: Duration,
) -> Result<KafkaCount> {
    let started = Instant::now();
    let consumer = reader(bootstrap, 100)?;
    assign_all(&consumer, topic)?;
    let mut seen = vec![false; expected as usize];
    let (mut records, mut distinct, mut bytes) = (0u64, 0u64, 0u64);
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                last = Instant::now();
                let payload = m.payload().unwrap_or_default();
                bytes += payload.len() as u64;
                if let Some(seq) = json_int(payload, "seq") {
                    if let Some(s) = seen.get_mut(seq as usize) {
                        if !*s {
                            *s = true;
                            distinct += 1;
                        }
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => eprintln!("[bench] consume: {e} (retrying)"),
        }
        let idle = last.elapsed() > Duration::from_secs(1);
        if (distinct >= expected && idle) || started.elapsed() > timeout {
            break;
        }
    }
    Ok(KafkaCount {
        records,
        distinct,
        duplicates: records - distinct,
        missing: expected - distinct,
        avg_value_bytes: if records > 0 {
            bytes as f64 / records as f64
        } else {
            0.0
        },
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// outboxd's `[pipeline] max_in_flight_events` (its default, or `--pipeline`).
pub fn max_in_flight_events(args: &Args) -> u64 {
    args.pipeline
        .iter()
        .find_map(|p| p.strip_prefix("max_in_flight_events=")?.trim().parse().ok())
        .unwrap_or(10_000u64)
}

/// A producer with exactly outboxd's settings: its defaults and enforced keys
/// (`outboxd::sink::producer_config`) on top of `--kafka`.
pub fn outboxd_like_producer(args: &Args, bootstrap: &str) -> Result<BaseProducer> {
    let mut user = BTreeMap::new();
    for p in &args.kafka {
        if let Some((k, v)) = p.split_once('=') {
            user.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    user.insert("bootstrap.servers".to_string(), bootstrap.to_string());
    let mut cfg = outboxd::sink::producer_config(&user, max_in_flight_events(args))
        .map_err(|e| anyhow!("--kafka: {e}"))?;
    cfg.set("log_level", "3");
    Ok(cfg.create()?)
}

/// When records reached Kafka, as the broker's end offsets say: a thread asks for the end offset
/// of every partition of a topic (one ListOffsets request for all of them) every 20 ms and notes
/// when their sum first was ≥ 1 and ≥ `expected`. It times any producer the same way (outboxd's
/// drain and Debezium's), without its cooperation. On Apache Kafka a non-transactional topic's
/// end offsets count its records; tansu lets them trail, so there the times can be late.
pub struct InKafka {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<InKafkaState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct InKafkaState {
    /// The sum of the end offsets at the last poll.
    pub records: u64,
    pub first_at: Option<Instant>,
    pub all_at: Option<Instant>,
    /// Polls whose request failed (timed out, or the broker answered an error).
    pub errors: u64,
}

impl InKafka {
    /// Starts polling `topic` (which must exist) until [`stop`](Self::stop).
    pub fn start(bootstrap: &str, topic: &str, expected: u64) -> Result<InKafka> {
        let consumer = reader(bootstrap, 100)?;
        let parts =
            partitions_of(&consumer, topic).ok_or_else(|| anyhow!("topic {topic} not found"))?;
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition_offset(topic, p, Offset::End)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(InKafkaState::default()));
        let (s, st) = (stop.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let sum = consumer
                    .offsets_for_times(tpl.clone(), Duration::from_secs(2))
                    .ok()
                    .and_then(|ends| {
                        ends.elements()
                            .iter()
                            .map(|e| match e.offset() {
                                Offset::Offset(n) if e.error().is_ok() => Some(n.max(0) as u64),
                                _ => None,
                            })
                            .sum::<Option<u64>>()
                    });
                let now = Instant::now();
                {
                    let mut st = st.lock().expect("in-Kafka lock");
                    match sum {
                        Some(n) => {
                            st.records = n;
                            if n >= 1 && st.first_at.is_none() {
                                st.first_at = Some(now);
                            }
                            if n >= expected && st.all_at.is_none() {
                                st.all_at = Some(now);
                            }
                        }
                        None => st.errors += 1,
                    }
                }
                next += Duration::from_millis(20);
                match next.checked_duration_since(Instant::now()) {
                    Some(wait) => std::thread::sleep(wait),
                    None => next = Instant::now(),
                }
            }
        });
        Ok(InKafka {
            stop,
            state,
            thread: Some(thread),
        })
    }

    pub fn state(&self) -> InKafkaState {
        *self.state.lock().expect("in-Kafka lock")
    }
}

impl Drop for InKafka {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Seconds from `origin` to `at`.
pub fn secs_since(origin: Instant, at: Option<Instant>) -> Option<f64> {
    at.map(|a| a.saturating_duration_since(origin).as_secs_f64())
}
