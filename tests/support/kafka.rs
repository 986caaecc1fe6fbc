//! Reading records back, producing test records, creating topics.
//!
//! Consumers never join a group (tansu 0.6 takes ~20 s per group join): they fetch metadata and
//! `assign` every partition from the beginning. Records are counted by consuming them, never from
//! high watermarks (tansu's can trail what it holds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// The value of the first header called `name` (None if absent or a null header).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `header(name)` as UTF-8 (lossy).
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The key as UTF-8 (lossy).
    pub fn key_str(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The value as UTF-8 (lossy).
    pub fn value_str(&self) -> Option<String> {
        self.value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The value parsed as JSON (panics if it is not JSON; None for a null value).
    pub fn value_json(&self) -> Option<serde_json::Value> {
        self.value.as_deref().map(|v| {
            serde_json::from_slice(v).unwrap_or_else(|e| {
                panic!(
                    "record value is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(v)
                )
            })
        })
    }
}

/// A consumer that never joins its group (see the module documentation), with extra properties.
pub(super) fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        // Required by librdkafka for a consumer, but never joined: we only `assign`.
        .set("group.id", super::unique("outboxd-test-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("log_level", "3");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("create consumer")
}

/// Partition ids of `topic` per metadata, or None if the topic does not exist (yet).
fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(3))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some(t.partitions().iter().map(|p| p.id()).collect())
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed, and
/// returns what it read (callers assert on the count). Waits for the topic to exist. Blocking:
/// from async code use [`consume_async`].
///
/// To check that *no more than* N records exist, ask for N+1 with a short timeout.
pub fn consume(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
    consume_topics(bootstrap, &[topic], expected, timeout)
}

/// [`consume`] over several topics; `expected` counts records across all of them. Records are
/// returned in arrival order (ordered per partition).
pub fn consume_topics(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    consume_topics_with(bootstrap, &[], topics, expected, timeout)
}

/// [`consume_topics`] with extra librdkafka properties (e.g. `security.protocol`, `ssl.*`).
pub fn consume_topics_with(
    bootstrap: &str,
    extra: &[(&str, &str)],
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let deadline = Instant::now() + timeout;
    let consumer = consumer(bootstrap, extra);
    let mut assigned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut out = Vec::new();
    loop {
        // (Re)assign when a topic appears; a topic that does not exist yet is retried.
        let missing: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|t| !assigned.contains_key(*t))
            .collect();
        if !missing.is_empty() {
            let mut changed = false;
            for t in missing {
                if let Some(parts) = partitions_of(&consumer, t) {
                    assigned.insert(t.to_string(), parts);
                    changed = true;
                }
            }
            if changed {
                // Re-assigning resets positions; only topics newly found have been read 0 so far,
                // so assign the new ones at Beginning and keep the old ones where they are.
                let mut tpl = TopicPartitionList::new();
                let positions = consumer.position().unwrap_or_default();
                for (t, parts) in &assigned {
                    for p in parts {
                        let off = positions
                            .find_partition(t, *p)
                            .map(|e| e.offset())
                            .filter(|o| matches!(o, Offset::Offset(_)))
                            .unwrap_or(Offset::Beginning);
                        tpl.add_partition_offset(t, *p, off)
                            .expect("add partition to assignment");
                    }
                }
                consumer.assign(&tpl).expect("assign partitions");
            }
        }
        if out.len() >= expected || Instant::now() >= deadline {
            return out;
        }
        if assigned.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Record {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_ms: m.timestamp().to_millis(),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                eprintln!("[support] consume: {e} (retrying)");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// [`consume`] on tokio's blocking pool.
pub async fn consume_async(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || consume(&b, &t, expected, timeout))
        .await
        .expect("consume task panicked")
}

/// [`consume_topics`] from async code (on a blocking thread).
pub async fn consume_topics_async<T: AsRef<str>>(
    bootstrap: &str,
    topics: &[T],
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let b = bootstrap.to_string();
    let t: Vec<String> = topics.iter().map(|s| s.as_ref().to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = t.iter().map(String::as_str).collect();
        consume_topics(&b, &refs, expected, timeout)
    })
    .await
    .expect("consume task panicked")
}

/// A FutureProducer for tests (acks=all, idempotence off so it works on any broker).
pub fn producer(bootstrap: &str) -> FutureProducer {
    producer_with(bootstrap, &[])
}

/// [`producer`] with extra librdkafka properties.
pub fn producer_with(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("log_level", "3")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("create producer")
}

/// Creates `name` with `partitions` partitions (replication 1) via AdminClient, ignoring
/// "already exists", then waits up to 30 s until metadata shows at least that many partitions.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_replicated(bootstrap, name, partitions, 1).await
}

/// [`create_topic`] with `replication` replicas per partition (a multi-broker cluster).
pub async fn create_topic_replicated(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("create admin client");
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .unwrap_or_else(|e| panic!("create_topics({name}) at {bootstrap}: {e}"));
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => panic!("create topic {t} at {bootstrap}: {code:?}"),
        }
    }
    let (b, n) = (bootstrap.to_string(), name.to_string());
    tokio::task::spawn_blocking(move || {
        let c = consumer(&b, &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match partitions_of(&c, &n) {
                Some(p) if p.len() >= partitions as usize => return,
                _ if Instant::now() >= deadline => {
                    panic!("topic {n} not visible with {partitions} partitions after 30 s")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
    .await
    .expect("metadata wait panicked");
}

/// The partition count of `topic` per metadata (None if it does not exist). Blocking.
pub fn partition_count(bootstrap: &str, topic: &str) -> Option<usize> {
    partitions_of(&consumer(bootstrap, &[]), topic).map(|p| p.len())
}

/// Whether `read_committed` consumers of the broker at `bootstrap` skip the records of aborted
/// transactions (Apache Kafka does; tansu 0.6 does not). Blocking.
pub fn broker_filters_aborted_transactions(bootstrap: &str, topic: &str) -> bool {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", super::unique("probe"))
        .set("log_level", "3")
        .create()
        .expect("create transactional producer");
    p.init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    p.begin_transaction().unwrap();
    p.send(
        BaseRecord::<str, str>::to(topic)
            .key("k")
            .payload("aborted"),
    )
    .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    p.abort_transaction(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    p.send(
        BaseRecord::<str, str>::to(topic)
            .key("k")
            .payload("committed"),
    )
    .unwrap();
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", super::unique("probe"))
        .set("isolation.level", "read_committed")
        .set("log_level", "3")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|v| v == "committed") && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert!(
        seen.iter().any(|v| v == "committed"),
        "the committed record never arrived: {seen:?}"
    );
    !seen.iter().any(|v| v == "aborted")
}

/// Per partition of `topic` as metadata tells it now: (partition, leader broker id, in-sync
/// replica count); empty when the metadata request fails. Blocking.
pub fn partition_state(bootstrap: &str, topic: &str) -> Vec<(i32, i32, usize)> {
    let c = consumer(bootstrap, &[]);
    let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    md.topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions())
        .map(|p| (p.id(), p.leader(), p.isr().len()))
        .collect()
}
