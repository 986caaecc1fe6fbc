//! The vendored librdkafka patch (vendor/README.md): an idempotent producer keeps several produce
//! requests in flight per partition without its broker thread spinning, and per-partition order
//! survives resends while it does.
//!
//! Stock librdkafka 2.12 compared the partition's in-flight *message* count with its limit of five
//! in-flight *requests*, so once a batch held five messages a partition had one request in flight
//! at a time, and the broker thread spun until its response came back. These tests build the
//! producer from outboxd's own configuration (`sink::producer_config`) and run it against
//! librdkafka's in-process mock cluster, which is there to slow the broker down and cut it off
//! deterministically; the relay tests (tests/relay.rs) check per-key order end to end on the real
//! broker with the same library.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

const TOPIC: &str = "outbox.event.Pipelined";

/// A broker thread that sleeps until a response or the linger deadline wakes it needs a few
/// wake-ups per produce request; one that spins while requests are in flight, thousands.
const WAKEUPS_PER_REQUEST_MAX: f64 = 50.0;

/// From librdkafka's statistics: the highest `waitresp_cnt` (requests sent and awaiting a
/// response) of any report, and the latest totals of broker-thread wake-ups and produce
/// requests; and the number of failed deliveries.
#[derive(Default)]
struct Watch {
    max_waiting: AtomicI64,
    wakeups: AtomicI64,
    produce_requests: AtomicI64,
    failed: AtomicI64,
}

impl Watch {
    /// Broker-thread wake-ups per produce request since the last `reset`.
    fn wakeups_per_request(&self, since: (i64, i64)) -> f64 {
        let wakeups = self.wakeups.load(Ordering::SeqCst) - since.0;
        let requests = self.produce_requests.load(Ordering::SeqCst) - since.1;
        wakeups as f64 / requests.max(1) as f64
    }

    /// Forgets the in-flight maximum and returns the counters' current values.
    fn reset(&self) -> (i64, i64) {
        self.max_waiting.store(0, Ordering::SeqCst);
        (
            self.wakeups.load(Ordering::SeqCst),
            self.produce_requests.load(Ordering::SeqCst),
        )
    }
}

#[derive(Clone)]
struct Ctx(Arc<Watch>);

impl ClientContext for Ctx {
    fn stats(&self, stats: Statistics) {
        let (mut wakeups, mut produce) = (0, 0);
        for broker in stats.brokers.values() {
            self.0
                .max_waiting
                .fetch_max(broker.waitresp_cnt, Ordering::SeqCst);
            wakeups += broker.wakeups.unwrap_or(0) as i64;
            produce += broker.req.get("Produce").copied().unwrap_or(0);
        }
        self.0.wakeups.store(wakeups, Ordering::SeqCst);
        self.0.produce_requests.store(produce, Ordering::SeqCst);
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.failed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A mock cluster of one broker with a one-partition topic and the given round-trip time.
fn mock(rtt: Duration) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("librdkafka mock cluster");
    mock.create_topic(TOPIC, 1, 1).unwrap();
    mock.broker_round_trip_time(1, rtt).unwrap();
    mock
}

/// outboxd's producer for `bootstrap`, reporting statistics every 10 ms; transactional (as in
/// exactly-once mode) when `transactional_id` is given.
fn producer(
    bootstrap: &str,
    transactional_id: Option<&str>,
) -> (ThreadedProducer<Ctx>, Arc<Watch>) {
    let user = BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("statistics.interval.ms".to_string(), "10".to_string()),
    ]);
    let mut config =
        outboxd::sink::producer_config(&user, 100_000).expect("outboxd's producer config");
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    let watch = Arc::new(Watch::default());
    let producer = config
        .create_with_context(Ctx(watch.clone()))
        .expect("producer");
    (producer, watch)
}

/// Sends `bursts` × `per_burst` records numbered from `first`, one burst every `gap`.
fn send_numbered(
    producer: &ThreadedProducer<Ctx>,
    first: u64,
    bursts: u64,
    per_burst: u64,
    gap: Duration,
) {
    for b in 0..bursts {
        for i in 0..per_burst {
            let n = (first + b * per_burst + i).to_string();
            producer
                .send(BaseRecord::to(TOPIC).key("one-key").payload(&n))
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
        std::thread::sleep(gap);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Every record of the topic's partition 0 up to its end (everything was acknowledged before),
/// as the numbers sent.
fn read_all(bootstrap: &str) -> Vec<u64> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pipelining")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no end of partition after 30 s");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let text = std::str::from_utf8(m.payload().unwrap()).unwrap();
                out.push(text.parse().unwrap());
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            None => {}
            Some(Err(e)) => panic!("consume: {e}"),
        }
    }
}

/// The first occurrence of each of 0..n, in order, and nothing else; else names the first
/// record out of place. `duplicates` says whether repeats (at-least-once) are allowed.
fn assert_in_order(got: &[u64], n: u64, duplicates: bool) {
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<u64> = if duplicates {
        got.iter().copied().filter(|v| seen.insert(*v)).collect()
    } else {
        got.to_vec()
    };
    if let Some(i) = (0..n as usize).find(|&i| firsts.get(i) != Some(&(i as u64))) {
        panic!(
            "{} record(s) in the partition ({} distinct), expected 0..{n} in order; at index {i}: {:?}",
            got.len(),
            firsts.len(),
            &firsts[i.saturating_sub(3)..(i + 3).min(firsts.len())]
        );
    }
    assert_eq!(firsts.len() as u64, n, "records beyond 0..{n}");
}

/// Sends 1 record and waits until it is acknowledged: connected, producer id acquired, the
/// start-up requests over. Returns the counters to measure from.
fn warm_up(producer: &ThreadedProducer<Ctx>, watch: &Watch) -> (i64, i64) {
    send_numbered(producer, 0, 1, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(50));
    watch.reset()
}

/// After a run of `send_numbered`: waits for one more statistics report, checks every delivery
/// succeeded and that the broker thread did not spin, prints the figures, and returns the most
/// requests seen in flight at once.
fn in_flight_without_spinning(watch: &Watch, since: (i64, i64)) -> i64 {
    std::thread::sleep(Duration::from_millis(30));
    let max_waiting = watch.max_waiting.load(Ordering::SeqCst);
    let per_request = watch.wakeups_per_request(since);
    println!(
        "max in flight {max_waiting}, {per_request:.1} broker-thread wake-ups per produce request, {} requests",
        watch.produce_requests.load(Ordering::SeqCst) - since.1
    );
    assert_eq!(watch.failed.load(Ordering::SeqCst), 0);
    assert!(
        per_request < WAKEUPS_PER_REQUEST_MAX,
        "{per_request:.0} broker-thread wake-ups per produce request: librdkafka's broker thread \
         spins while requests are in flight (vendor/README.md)"
    );
    max_waiting
}

/// At-least-once mode (idempotent, not transactional), with a 100 ms round trip and bursts of 20
/// records every 10 ms to one partition, so that every batch holds five records or more: stock
/// librdkafka keeps one request in flight, the patched one up to five, and its broker thread
/// sleeps between wake-ups instead of spinning while they are in flight.
#[test]
fn at_least_once_keeps_several_requests_in_flight_on_one_partition_without_spinning() {
    let mock = mock(Duration::from_millis(100));
    let bootstrap = mock.bootstrap_servers();
    let (producer, watch) = producer(&bootstrap, None);
    let since = warm_up(&producer, &watch);

    send_numbered(&producer, 1, 40, 20, Duration::from_millis(10));
    let max_waiting = in_flight_without_spinning(&watch, since);
    assert!(
        max_waiting >= 3,
        "at most {max_waiting} request(s) were in flight at once to a one-partition topic: is the \
         librdkafka patch in vendor/rdkafka-sys applied (Cargo.toml [patch.crates-io])?"
    );
    assert_in_order(&read_all(&bootstrap), 801, false);
}

/// Exactly-once mode (transactional) keeps librdkafka's one request in flight per partition for
/// such batches (vendor/README.md says why), but its broker thread does not spin meanwhile.
#[test]
fn exactly_once_waits_for_the_request_in_flight_without_spinning() {
    let mock = mock(Duration::from_millis(100));
    let bootstrap = mock.bootstrap_servers();
    let (producer, watch) = producer(&bootstrap, Some("pipelining-exactly-once"));
    producer
        .init_transactions(Duration::from_secs(10))
        .expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    let since = warm_up(&producer, &watch);

    send_numbered(&producer, 1, 40, 20, Duration::from_millis(10));
    producer
        .commit_transaction(Duration::from_secs(30))
        .expect("commit_transaction");
    in_flight_without_spinning(&watch, since);
    assert_in_order(&read_all(&bootstrap), 801, false);
}

/// The broker goes away while several requests are in flight and comes back: the requests are
/// resent in order. The mock appends what it received before the cut and does not deduplicate
/// (Kafka would, by sequence number), so records may repeat; none is lost and the first
/// occurrences keep the order sent.
#[test]
fn a_broker_outage_amid_pipelined_requests_loses_nothing_and_keeps_the_order() {
    let mock = mock(Duration::from_millis(50));
    let bootstrap = mock.bootstrap_servers();
    let (producer, watch) = producer(&bootstrap, None);
    warm_up(&producer, &watch);

    std::thread::scope(|scope| {
        let sender = scope.spawn(|| send_numbered(&producer, 1, 100, 20, Duration::from_millis(5)));
        std::thread::sleep(Duration::from_millis(200));
        mock.broker_down(1).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        mock.broker_up(1).unwrap();
        sender.join().unwrap();
    });
    assert_eq!(watch.failed.load(Ordering::SeqCst), 0);
    assert!(
        watch.max_waiting.load(Ordering::SeqCst) >= 2,
        "the requests were not pipelined, so this did not test an outage amid them"
    );
    assert_in_order(&read_all(&bootstrap), 2001, true);
}
