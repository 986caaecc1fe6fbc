//! Exactly-once mode after a failed commit whose offsets record already reached the log: outboxd
//! aborts, writes the committed position again (`KafkaSink::commit_position`), and the next start
//! reads that one, not the aborted one (`position::Latest`).
//!
//! Apache Kafka would hide the aborted record from the `read_committed` reader anyway.
//! librdkafka's in-process mock cluster, like tansu 0.6, does not (the test checks that the
//! aborted record is among what the reader gets, so it keeps telling the two apart), and it lets
//! the test fail one delivery of a transaction deterministically: the events partition's leader is
//! down, so its record times out while the offsets record, on another broker, is written. That is
//! the failure the chaos run met on tansu ("1 message(s) failed delivery" at commit), which then
//! lost the aborted transaction's events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outboxd::checkpoint::Seq;
use outboxd::exactly_once::OffsetRecord;
use outboxd::lsn::Lsn;
use outboxd::metrics::{Health, Metrics};
use outboxd::router::OutboxRecord;
use outboxd::sink::offsets::{resume, ResumeFrom, Resumed};
use outboxd::sink::{producer_config, KafkaSink, Report, SendTag};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const EVENTS: &str = "outbox.event.Restated";
const OFFSETS: &str = "outboxd-offsets";
const KEY: &str = "7/postgres/outboxd";
const TRANSACTIONAL_ID: &str = "outboxd-restated";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Two mock brokers: the events partition led by broker 1, the offsets partition and the
/// transaction coordinator on broker 2.
fn mock() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(2).expect("librdkafka mock cluster");
    mock.create_topic(EVENTS, 1, 1).unwrap();
    mock.create_topic(OFFSETS, 1, 1).unwrap();
    mock.partition_leader(EVENTS, 0, Some(1)).unwrap();
    mock.partition_leader(OFFSETS, 0, Some(2)).unwrap();
    mock.coordinator(MockCoordinator::Transaction(TRANSACTIONAL_ID.into()), 2)
        .unwrap();
    mock
}

fn record(lsn: u64) -> OffsetRecord {
    OffsetRecord {
        lsn: Lsn(lsn).to_string(),
        slot: "outboxd".into(),
        timeline: 1,
        transactional_id: TRANSACTIONAL_ID.into(),
    }
}

fn event(id: &str) -> OutboxRecord {
    OutboxRecord {
        topic: EVENTS.into(),
        partition: None,
        key: Some(bytes::Bytes::from_static(b"order-1")),
        value: Some(bytes::Bytes::copy_from_slice(id.as_bytes())),
        headers: Vec::new(),
        timestamp_ms: 0,
    }
}

fn tag(seq: u64, commit_lsn: u64) -> SendTag {
    SendTag {
        seq: Seq(seq),
        relation_id: 1,
        commit_lsn: Lsn(commit_lsn),
        dead_letter: None,
    }
}

/// outboxd's own producer configuration, transactional, with deliveries that fail after 2 s.
fn transactional_sink(
    bootstrap: &str,
    metrics: Arc<Metrics>,
) -> (KafkaSink, tokio::sync::mpsc::UnboundedReceiver<Report>) {
    let user = BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("message.timeout.ms".to_string(), "2000".to_string()),
    ]);
    let mut config = producer_config(&user, 1000).expect("producer config");
    config.set("transactional.id", TRANSACTIONAL_ID);
    KafkaSink::new(&config, metrics, Arc::new(Health::default())).expect("producer")
}

/// Every value of the offsets partition a `read_committed` consumer gets, in log order.
fn offsets_values(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "restated-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(OFFSETS, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                values.push(v["lsn"].as_str().unwrap().to_string());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            _ => {}
        }
    }
    panic!("the offsets partition never reported its end; read so far: {values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_leaves_the_committed_position_last() {
    let mock = mock();
    let bootstrap = mock.bootstrap_servers();
    let metrics = Metrics::new();
    let (sink, _reports) = transactional_sink(&bootstrap, metrics.clone());
    let sink = Arc::new(sink);

    let s = sink.clone();
    tokio::task::spawn_blocking(move || {
        s.init_transactions(TIMEOUT).expect("init_transactions");
        // A first transaction commits R = 0/100.
        s.send(&event("e1"), tag(1, 0x80)).unwrap();
        s.commit_position(OFFSETS, KEY, &record(0x100), &record(0), TIMEOUT)
            .expect("the first commit");
    })
    .await
    .unwrap();

    // The second one's event cannot be delivered (its leader is down) while its offsets record
    // (0/200) is written; the commit fails and is aborted.
    mock.broker_down(1).unwrap();
    let s = sink.clone();
    let failed = tokio::task::spawn_blocking(move || {
        s.send(&event("e2"), tag(2, 0x180)).unwrap();
        s.commit_position(OFFSETS, KEY, &record(0x200), &record(0x100), TIMEOUT)
    })
    .await
    .unwrap();
    let error = failed.expect_err("a commit with a failed delivery must fail");
    eprintln!("the second commit failed as planned: {error}");
    mock.broker_up(1).unwrap();

    let b = bootstrap.clone();
    let values = tokio::task::spawn_blocking(move || offsets_values(&b))
        .await
        .unwrap();
    eprintln!("offsets records a read_committed reader gets: {values:?}");
    assert!(
        values.iter().any(|v| v == "0/200"),
        "the aborted offsets record is not among what the reader gets ({values:?}): either it \
         never reached the log, or the mock now filters aborted transactions; this test then no \
         longer tells the restated position apart"
    );
    assert_eq!(
        values.last().map(String::as_str),
        Some("0/100"),
        "the last record must restate the committed position: {values:?}"
    );

    // What the next start reads.
    let mut producer = ClientConfig::new();
    producer.set("bootstrap.servers", &bootstrap);
    let Resumed { recorded, resume } = resume(
        &sink,
        &producer,
        ResumeFrom {
            topic: OFFSETS,
            key: KEY,
            slot: "outboxd",
            start_lsn: Lsn(0x100),
            new_slot_with_snapshot: false,
            accept: None,
        },
        1, // the timeline: the one the records were written on
    )
    .await
    .expect("reading the position");
    assert_eq!(recorded, Some(Lsn(0x100)));
    assert_eq!(
        resume,
        Lsn(0x100),
        "0/180 (the aborted event) is sent again"
    );
    let restated = |outcome: &str| {
        metrics
            .kafka_transactions
            .with_label_values(&[outcome])
            .get()
    };
    assert_eq!(
        restated("restated"),
        1,
        "outboxd_kafka_transactions_total{{outcome=\"restated\"}}"
    );
    assert_eq!(restated("restate_failed"), 0);
}
