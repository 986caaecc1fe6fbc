//! Self-tests of the integration-test harness (`tests/support`): they prove that the pieces the
//! outboxd end-to-end tests stand on actually work. They run against the harness's Apache Kafka
//! (or tansu, `OUTBOXD_TEST_BROKER=tansu`), and unchanged against the Kafka named by
//! `KAFKA_BOOTSTRAP_SERVERS`.
//!
//! Topics are created explicitly (AdminClient) before use. The harness's brokers auto-create
//! them on a producer's first metadata request (pinned by
//! `consume_never_creates_topics_and_brokers_auto_create_for_producers`), but another Kafka may
//! have auto-creation off or a different `num.partitions`, so portable tests create them.

mod support;

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use support::{kafka, unique, Broker, PgCluster, PgOptions, ProxiedBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_starts_with_logical_decoding_settings() {
    let pg = PgCluster::start_with(PgOptions {
        extra_conf: vec![("max_worker_processes".into(), "9".into())],
        hba: None,
        ..Default::default()
    });
    let c = pg.client().await;
    let show = |name: &'static str| {
        let c = &c;
        async move {
            let row = c
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("SHOW");
            row.get::<_, String>(0)
        }
    };
    assert_eq!(show("wal_level").await, "logical");
    assert_eq!(show("max_replication_slots").await, "20");
    assert_eq!(show("max_wal_senders").await, "20");
    assert_eq!(show("fsync").await, "off");
    assert_eq!(show("port").await, pg.port().to_string());
    assert_eq!(
        show("max_worker_processes").await,
        "9",
        "extra_conf applied"
    );
    assert!(pg
        .url("postgres")
        .contains(&format!(":{}/postgres", pg.port())));

    // A pgoutput slot can be created, and its confirmed LSN is readable and sane.
    support::create_outbox_table(&c).await;
    c.batch_execute("CREATE PUBLICATION p_test FOR TABLE public.outbox")
        .await
        .unwrap();
    c.execute(
        "SELECT pg_create_logical_replication_slot('s_test', 'pgoutput')",
        &[],
    )
    .await
    .unwrap();
    let confirmed = support::slot_confirmed_lsn(&c, "s_test")
        .await
        .expect("slot has a confirmed_flush_lsn");
    let id = support::insert_outbox(&c, "order", "o-1", "Created", r#"{"n":1}"#).await;
    assert_eq!(id.len(), 36, "uuid text: {id}");
    let current = support::current_wal_lsn(&c).await;
    assert!(
        confirmed > 0 && current > confirmed,
        "{confirmed} < {current}"
    );
    assert_eq!(support::slot_confirmed_lsn(&c, "no_such_slot").await, None);

    // The log file is exposed and has the server's output.
    assert!(pg.log_tail(200).contains("database system is ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill9_then_start_again_recovers_same_port_and_data() {
    let mut pg = PgCluster::start();
    let port = pg.port();
    let pid1 = pg.pid().unwrap();
    {
        let c = pg.client().await;
        c.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2), (3);")
            .await
            .unwrap();
        c.batch_execute("SELECT pg_create_logical_replication_slot('s_crash', 'pgoutput')")
            .await
            .unwrap();
        pg.kill9();
        // The connection is gone with the server.
        assert!(c.simple_query("SELECT 1").await.is_err());
    }
    assert!(!pg.is_running());
    assert!(
        tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
            .await
            .is_err(),
        "nothing listens after kill9"
    );

    pg.start_again();
    assert_eq!(pg.port(), port);
    assert_ne!(pg.pid().unwrap(), pid1);
    let c = pg.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "committed rows survive the crash");
    assert!(support::slot_confirmed_lsn(&c, "s_crash").await.is_some());
    assert!(
        pg.log_tail(100).contains("database system was interrupted")
            || pg.log_tail(100).contains("crash recovery")
            || pg.log_tail(100).contains("not properly shut down"),
        "crash recovery ran:\n{}",
        pg.log_tail(100)
    );
    drop(c);

    // A clean stop/start cycle works as well.
    pg.stop();
    assert!(!pg.is_running());
    pg.start_again();
    let c = pg.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_produce_then_consume_by_assignment_keeps_key_value_headers() {
    let broker = Broker::shared();
    let topic = format!("outbox.event.{}", unique("harness"));
    broker.create_topic(&topic, 4).await;
    assert_eq!(
        tokio::task::spawn_blocking({
            let (b, t) = (broker.bootstrap().to_string(), topic.clone());
            move || kafka::partition_count(&b, &t)
        })
        .await
        .unwrap(),
        Some(4)
    );
    // Creating it again is not an error.
    broker.create_topic(&topic, 4).await;

    let producer = support::producer(broker.bootstrap());
    let n = 12;
    for i in 0..n {
        let key = format!("agg-{i}");
        let value = format!(r#"{{"i":{i}}}"#);
        let id = format!("id-{i}");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(id.as_bytes()),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&value)
                    .headers(headers),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce {i}: {e}"));
    }

    let records =
        support::consume_async(broker.bootstrap(), &topic, n, Duration::from_secs(30)).await;
    assert_eq!(records.len(), n, "got {records:#?}");
    let mut seen = std::collections::BTreeSet::new();
    let mut partitions = std::collections::BTreeSet::new();
    for r in &records {
        assert_eq!(r.topic, topic);
        let key = r.key_str().expect("key");
        let i: usize = key.strip_prefix("agg-").unwrap().parse().unwrap();
        assert_eq!(r.value_json().unwrap(), serde_json::json!({ "i": i }));
        assert_eq!(r.header("id"), Some(format!("id-{i}").as_bytes()));
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.headers[1], ("empty".to_string(), None));
        assert!(r.timestamp_ms.unwrap_or(0) > 0);
        assert!(r.offset >= 0);
        partitions.insert(r.partition);
        seen.insert(i);
    }
    assert_eq!(seen.len(), n, "every record exactly once");
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );
    assert!(partitions.iter().all(|p| (0..4).contains(p)));

    // Asking for more than exists returns what exists after the timeout (no invented records).
    let t0 = Instant::now();
    let again =
        support::consume_async(broker.bootstrap(), &topic, n + 1, Duration::from_secs(3)).await;
    assert_eq!(again.len(), n);
    assert!(t0.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pause_stalls_delivery_and_resume_completes_it() {
    let Some(broker) =
        ProxiedBroker::start_or_skip("proxy_pause_stalls_delivery_and_resume_completes_it")
    else {
        return;
    };
    let topic = unique("proxied");
    broker.create_topic(&topic, 1).await;
    let producer = kafka::producer_with(
        broker.bootstrap(),
        &[
            ("message.timeout.ms", "120000"),
            ("reconnect.backoff.ms", "100"),
            ("reconnect.backoff.max.ms", "500"),
        ],
    );
    let send = |v: &'static str| {
        producer.send(
            FutureRecord::<str, str>::to(&topic).key("k").payload(v),
            Timeout::After(Duration::from_secs(5)),
        )
    };
    send("before").await.expect("delivered before the outage");

    broker.pause();
    assert!(broker.is_paused());
    let mut pending = Box::pin(send("during"));
    let stalled = tokio::time::timeout(Duration::from_secs(4), &mut pending).await;
    assert!(
        stalled.is_err(),
        "delivery must not complete while the broker is unreachable: {stalled:?}"
    );

    broker.resume();
    let t0 = Instant::now();
    let delivered = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .expect("delivery completes after resume");
    let d = delivered.unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
    eprintln!(
        "delivered {:?} after resume (partition {}, offset {})",
        t0.elapsed(),
        d.partition,
        d.offset
    );

    let records =
        support::consume_async(broker.bootstrap(), &topic, 2, Duration::from_secs(30)).await;
    let values: Vec<String> = records.iter().filter_map(|r| r.value_str()).collect();
    assert_eq!(values, ["before", "during"]);
}

#[test]
fn outboxd_binary_is_built_for_the_tests() {
    let bin = std::path::Path::new(support::outboxd::OUTBOXD_BIN);
    assert!(bin.is_file(), "{} missing", bin.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_never_creates_topics_and_brokers_auto_create_for_producers() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap().to_string();

    // On any broker: reading a missing topic returns nothing after the timeout and creates nothing.
    let missing = unique("never_written");
    let got = support::consume_async(&bootstrap, &missing, 1, Duration::from_secs(2)).await;
    assert!(got.is_empty());
    let count = {
        let (b, t) = (bootstrap.clone(), missing.clone());
        tokio::task::spawn_blocking(move || kafka::partition_count(&b, &t))
            .await
            .unwrap()
    };
    assert_eq!(count, None, "consume must not create {missing}");

    if broker.is_external() {
        support::skip(
            "consume_never_creates_topics_and_brokers_auto_create_for_producers (producer part)",
            "auto-creation on an external Kafka depends on its broker config",
        );
        return;
    }
    // A producer's first send auto-creates the topic: with Kafka's default num.partitions (1)
    // on the Apache Kafka of scripts/kafka.sh, with 4 partitions on tansu 0.6.
    let auto = unique("auto_created");
    let producer = support::producer(&bootstrap);
    producer
        .send(
            FutureRecord::<str, str>::to(&auto).key("k").payload("v"),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to a new topic: {e}"));
    let count = tokio::task::spawn_blocking(move || kafka::partition_count(&bootstrap, &auto))
        .await
        .unwrap();
    let expected = if broker.is_tansu() { 4 } else { 1 };
    assert_eq!(
        count,
        Some(expected),
        "the broker's auto-created partition count changed"
    );
}
