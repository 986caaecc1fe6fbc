//! Poison events end to end: rows the router cannot route and records Kafka rejects for good,
//! with `errors.tolerance = all` (they go to the dead-letter topic with Kafka Connect's context
//! headers, the events around them are published in order, the slot moves past them) and with
//! `errors.tolerance = none` (the relay stops naming the event, the slot stays before it).
//! The unroutable row with tolerance none is tests/relay.rs's
//! `a_row_that_cannot_be_routed_stops_the_relay_without_confirming_it`.
//!
//! Records librdkafka refuses when they are enqueued (larger than the producer's
//! `message.max.bytes`) are tested on any broker; a record the broker refuses in its delivery
//! report for its size needs a broker that enforces a topic's `max.message.bytes` (Apache Kafka;
//! the test prints SKIP with tansu, `OUTBOXD_TEST_BROKER=tansu`), and the same path is tested
//! everywhere with librdkafka's mock cluster refusing a topic (authorization).

mod support;

use std::time::Duration;

use support::{
    current_wal_lsn, parse_lsn, slot_confirmed_lsn, unique, wait_until, Broker, Outboxd, PgCluster,
    Record,
};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";
const BAD_TOPIC_ID: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const BAD_TOPIC_ID_2: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const TOO_LARGE_ID: &str = "cccccccc-0000-4000-8000-000000000001";
/// Kafka's record size limit for the producer, and a payload twice that size.
const MAX_BYTES: usize = 10_000;
const LARGE_PAYLOAD: usize = 20_000;

/// The basic configuration with `"message.max.bytes"` in `[kafka]`, then `extra` sections.
fn config(pg: &PgCluster, bootstrap: &str, extra: &str) -> String {
    format!(
        "{}\"message.max.bytes\" = {MAX_BYTES}\n{extra}",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap)
    )
}

/// Runs `sql` as one transaction; returns the WAL position before and after it.
async fn transaction(client: &tokio_postgres::Client, sql: &str) -> (u64, u64) {
    let before = current_wal_lsn(client).await;
    client
        .batch_execute(&format!("BEGIN;{sql}COMMIT;"))
        .await
        .unwrap();
    (before, current_wal_lsn(client).await)
}

/// An outbox row for `aggregatetype`/`aggregateid` with payload `{"seq": seq}`.
fn good(aggregatetype: &str, seq: u32) -> String {
    format!(
        "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{aggregatetype}', 'agg', 'E', '{{\"seq\": {seq}}}');"
    )
}

fn header<'a>(r: &'a Record, name: &str) -> &'a str {
    std::str::from_utf8(
        r.header(name)
            .unwrap_or_else(|| panic!("header {name} missing: {:?}", r.headers)),
    )
    .unwrap()
}

async fn metrics(port: u16) -> String {
    support::outboxd::http_get(port, "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_go_to_the_dead_letter_topic_and_the_slot_moves_past_them() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Poison{}", unique("p"));
    let topic = format!("outbox.event.{aggregatetype}");
    let dlq = format!("dlq.{}", unique("d"));
    // One partition each, so that the order of arrival is the order of production.
    broker.create_topic(&topic, 1).await;
    broker.create_topic(&dlq, 1).await;
    let http_port = support::free_port();
    let extra = format!(
        "\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n\n[http]\naddr = \"127.0.0.1:{http_port}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), &extra)).await;

    let large = "x".repeat(LARGE_PAYLOAD);
    transaction(&client, &good(&aggregatetype, 0)).await;
    let (bad_from, bad_to) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{BAD_TOPIC_ID}', 'Bad Topic', 'k-bad', 'E', '{{\"n\": 1}}');"),
    )
    .await;
    transaction(&client, &good(&aggregatetype, 1)).await;
    let (large_from, large_to) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{TOO_LARGE_ID}', '{aggregatetype}', 'k-large', 'E', '{{\"blob\": \"{large}\"}}');"),
    )
    .await;
    transaction(&client, &good(&aggregatetype, 2)).await;
    // A poison event between two good ones of the same transaction: a topic name longer than
    // Kafka allows.
    let long_type = "L".repeat(240);
    transaction(
        &client,
        &format!(
            "{}INSERT INTO public.outbox VALUES ('{BAD_TOPIC_ID_2}', '{long_type}', 'k-bad-2', 'E', NULL);{}",
            good(&aggregatetype, 3),
            good(&aggregatetype, 4)
        ),
    )
    .await;
    let end = current_wal_lsn(&client).await;

    // The good events, all of them, once and in commit order.
    let records =
        support::consume_topics_async(broker.bootstrap(), &[&topic], 6, Duration::from_secs(20))
            .await;
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4], "outboxd log:\n{}", outboxd.log());

    // The poison events, in the dead-letter topic in commit order, with the original key, value
    // and id header, and the error context.
    let dead =
        support::consume_topics_async(broker.bootstrap(), &[&dlq], 4, Duration::from_secs(20))
            .await;
    assert_eq!(dead.len(), 3, "outboxd log:\n{}", outboxd.log());

    let bad = &dead[0];
    assert_eq!(bad.key_str().as_deref(), Some("k-bad"));
    assert_eq!(bad.value_str().as_deref(), Some("{\"n\": 1}"));
    assert_eq!(header(bad, "id"), BAD_TOPIC_ID);
    assert_eq!(
        header(bad, "__connect.errors.topic"),
        "outbox.event.Bad Topic"
    );
    assert_eq!(header(bad, "__connect.errors.stage"), "TRANSFORMATION");
    assert_eq!(
        header(bad, "__connect.errors.exception.class.name"),
        "outboxd.router.UnroutableRowException"
    );
    let message = header(bad, "__connect.errors.exception.message");
    assert!(
        message.contains("not a valid Kafka topic name") && message.contains(BAD_TOPIC_ID),
        "{message}"
    );
    assert_eq!(header(bad, "__connect.errors.connector.name"), SLOT);
    assert_eq!(header(bad, "outboxd.source.table"), "public.outbox");
    let lsn = parse_lsn(header(bad, "outboxd.source.lsn")).unwrap();
    assert!(
        (bad_from..=bad_to).contains(&lsn),
        "commit LSN {lsn:X} is not that of the bad row's transaction ({bad_from:X}..{bad_to:X})"
    );

    let too_large = &dead[1];
    assert_eq!(too_large.key_str().as_deref(), Some("k-large"));
    assert_eq!(header(too_large, "id"), TOO_LARGE_ID);
    assert_eq!(header(too_large, "__connect.errors.topic"), topic);
    assert_eq!(header(too_large, "__connect.errors.stage"), "KAFKA_PRODUCE");
    assert_eq!(
        header(too_large, "__connect.errors.exception.class.name"),
        "outboxd.kafka.MessageSizeTooLargeException"
    );
    // The value is what makes the record too large, for the dead-letter topic too: it is left
    // out, and a header gives its size.
    assert_eq!(too_large.value, None);
    let size: usize = header(too_large, "outboxd.errors.value.omitted.bytes")
        .parse()
        .unwrap();
    assert!(size > LARGE_PAYLOAD, "{size}");
    let lsn = parse_lsn(header(too_large, "outboxd.source.lsn")).unwrap();
    assert!((large_from..=large_to).contains(&lsn), "{lsn:X}");

    let too_long = &dead[2];
    assert_eq!(header(too_long, "id"), BAD_TOPIC_ID_2);
    assert_eq!(too_long.key_str().as_deref(), Some("k-bad-2"));
    assert_eq!(too_long.value, None, "a NULL payload stays null");
    assert!(header(too_long, "__connect.errors.exception.message").contains("Kafka allows 249"));
    assert_eq!(
        header(too_long, "__connect.errors.topic"),
        format!("outbox.event.{long_type}")
    );

    // Nothing is silent: one warning per poison event, and the counter.
    let log = outboxd.log();
    for line in log.lines().filter(|l| l.contains("dead-letter")) {
        eprintln!("{line}");
    }
    for id in [BAD_TOPIC_ID, TOO_LARGE_ID, BAD_TOPIC_ID_2] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("dead-letter topic") && l.contains(id)),
            "no warning for {id}:\n{log}"
        );
    }
    let text = metrics(http_port).await;
    assert!(
        text.contains(
            "outboxd_events_dead_lettered_total{reason=\"unroutable\",table=\"public.outbox\"} 2"
        ) && text.contains(
            "outboxd_events_dead_lettered_total{reason=\"message_size_too_large\",table=\"public.outbox\"} 1"
        ),
        "{text}"
    );

    // The slot moves past the poison events.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= end
        })
        .await,
        "the slot stayed at {:X}, before {end:X}:\n{}",
        slot_confirmed_lsn(&client, SLOT).await.unwrap(),
        outboxd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tolerance_a_record_kafka_rejects_stops_the_relay_before_it() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Stop{}", unique("s"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let mut outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;

    let (_, after_good) = transaction(&client, &good(&aggregatetype, 0)).await;
    assert_eq!(
        support::consume_topics_async(broker.bootstrap(), &[&topic], 1, Duration::from_secs(20))
            .await
            .len(),
        1
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= after_good
        })
        .await
    );
    let large = "x".repeat(LARGE_PAYLOAD);
    let (before_large, _) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{TOO_LARGE_ID}', '{aggregatetype}', 'k', 'E', '{{\"blob\": \"{large}\"}}');"),
    )
    .await;
    transaction(&client, &good(&aggregatetype, 1)).await;

    let status = outboxd.wait_exit(Duration::from_secs(30)).await;
    let log = outboxd.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(TOO_LARGE_ID)
            && log.contains("Kafka rejected event")
            && log.contains("errors.tolerance = all"),
        "the error should name the event and the way out:\n{log}"
    );
    let confirmed = slot_confirmed_lsn(&client, SLOT).await.unwrap();
    assert!(
        confirmed <= before_large,
        "the slot moved past the rejected event: {confirmed:X} > {before_large:X}"
    );
    // Nothing after it was published either.
    assert_eq!(
        support::consume_topics_async(broker.bootstrap(), &[&topic], 2, Duration::from_secs(3))
            .await
            .len(),
        1
    );
}

/// Creates `name` (one partition) with the topic-level `max.message.bytes` limit.
async fn create_small_topic(bootstrap: &str, name: &str, max_message_bytes: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .unwrap();
    let limit = max_message_bytes.to_string();
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("max.message.bytes", &limit);
    for result in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap()
    {
        result.unwrap_or_else(|(t, e)| panic!("create {t}: {e:?}"));
    }
}

/// Whether the broker refuses, in the delivery report, a record larger than `topic`'s
/// `max.message.bytes` (Apache Kafka does; a broker that ignores topic configurations does not).
async fn broker_enforces_topic_limit(bootstrap: &str, topic: &str, size: usize) -> bool {
    use rdkafka::producer::FutureRecord;
    let producer = support::kafka::producer_with(bootstrap, &[("message.timeout.ms", "10000")]);
    let value = vec![b'x'; size];
    let sent = producer
        .send(
            FutureRecord::<(), [u8]>::to(topic).payload(&value[..]),
            Duration::from_secs(10),
        )
        .await;
    match sent {
        Ok(_) => false,
        Err((e, _)) => {
            eprintln!("[poison] the broker refused a {size}-byte record: {e}");
            true
        }
    }
}

/// The other path of a rejected record: librdkafka accepts it, the broker refuses it in the
/// delivery report. The dead-letter record then keeps the value (the dead-letter topic's limit is
/// larger), and the event is acknowledged through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_broker_rejects_goes_to_the_dead_letter_topic_with_its_value() {
    const TEST: &str = "a_record_the_broker_rejects_goes_to_the_dead_letter_topic_with_its_value";
    let broker = Broker::shared();
    let aggregatetype = format!("Small{}", unique("b"));
    let topic = format!("outbox.event.{aggregatetype}");
    create_small_topic(broker.bootstrap(), &topic, 4_000).await;
    let enforced = broker_enforces_topic_limit(broker.bootstrap(), &topic, 8_000).await;
    if broker.is_tansu() && !enforced {
        support::skip(
            TEST,
            "tansu does not enforce a topic's max.message.bytes (unset OUTBOXD_TEST_BROKER for Apache Kafka)",
        );
        return;
    }
    assert!(
        enforced,
        "Kafka accepted an 8000-byte record into a topic limited to 4000 bytes"
    );
    let dlq = format!("dlq.{}", unique("d"));
    broker.create_topic(&dlq, 1).await;
    let (pg, client) = support::database().await;
    let extra = format!(
        "\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n"
    );
    let cfg = format!(
        "{}{extra}",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, broker.bootstrap())
    );
    let outboxd = Outboxd::streaming(&cfg).await;

    // Separate transactions, far enough apart not to share a produce batch with the large one
    // (the broker would refuse the whole batch).
    let blob = "y".repeat(6_000);
    transaction(&client, &good(&aggregatetype, 0)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (from, to) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{TOO_LARGE_ID}', '{aggregatetype}', 'k-large', 'E', '{{\"blob\": \"{blob}\"}}');"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    transaction(&client, &good(&aggregatetype, 1)).await;
    let end = current_wal_lsn(&client).await;

    let records =
        support::consume_topics_async(broker.bootstrap(), &[&topic], 3, Duration::from_secs(20))
            .await;
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1], "outboxd log:\n{}", outboxd.log());
    let dead =
        support::consume_topics_async(broker.bootstrap(), &[&dlq], 2, Duration::from_secs(20))
            .await;
    assert_eq!(dead.len(), 1, "outboxd log:\n{}", outboxd.log());
    let r = &dead[0];
    assert_eq!(header(r, "id"), TOO_LARGE_ID);
    assert_eq!(header(r, "__connect.errors.stage"), "KAFKA_PRODUCE");
    assert_eq!(header(r, "__connect.errors.topic"), topic);
    assert!(
        r.value_str().unwrap().contains(&blob),
        "the dead-letter record keeps the value"
    );
    assert!(r.header("outboxd.errors.value.omitted.bytes").is_none());
    let lsn = parse_lsn(header(r, "outboxd.source.lsn")).unwrap();
    assert!((from..=to).contains(&lsn), "{lsn:X}");
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= end
        })
        .await,
        "the slot did not move past the rejected event:\n{}",
        outboxd.log()
    );
}

/// librdkafka's in-process mock cluster with one-partition `topics` and `denied`, which it refuses
/// with TOPIC_AUTHORIZATION_FAILED (a permanent error that reaches outboxd in the delivery report).
fn mock_refusing(
    denied: &str,
    topics: &[&str],
) -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = rdkafka::mocking::MockCluster::new(1).expect("librdkafka mock cluster");
    for topic in topics.iter().chain([&denied]) {
        mock.create_topic(topic, 1, 1).unwrap();
    }
    mock.topic_error(
        denied,
        rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    )
    .unwrap();
    mock
}

/// The delivery-report path on any machine: librdkafka's in-process mock cluster (a real
/// Kafka-protocol listener the `outboxd` process connects to) is told to refuse one topic with
/// TOPIC_AUTHORIZATION_FAILED, a permanent error that reaches outboxd in the delivery report, not
/// at enqueue. The event goes to the dead-letter topic with its value; its neighbours on another
/// topic are published in order; the slot moves past it. (Fault injection on top of the real
/// broker tests above, which need Apache Kafka for the size limit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_refused_in_the_delivery_report_goes_to_the_dead_letter_topic() {
    let (good_topic, denied_topic, dlq) =
        ("outbox.event.Allowed", "outbox.event.Denied", "dlq.mock");
    let mock = mock_refusing(denied_topic, &[good_topic, dlq]);
    let bootstrap = mock.bootstrap_servers();

    let (pg, client) = support::database().await;
    let extra = format!(
        "\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, &bootstrap, &extra)).await;
    transaction(&client, &good("Allowed", 0)).await;
    let (from, to) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{TOO_LARGE_ID}', 'Denied', 'k-denied', 'E', '{{\"secret\": 1}}');"),
    )
    .await;
    transaction(&client, &good("Allowed", 1)).await;
    let end = current_wal_lsn(&client).await;

    let records =
        support::consume_topics_async(&bootstrap, &[good_topic], 3, Duration::from_secs(15)).await;
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1], "outboxd log:\n{}", outboxd.log());
    let dead = support::consume_topics_async(&bootstrap, &[dlq], 2, Duration::from_secs(15)).await;
    assert_eq!(dead.len(), 1, "outboxd log:\n{}", outboxd.log());
    let r = &dead[0];
    assert_eq!(header(r, "id"), TOO_LARGE_ID);
    assert_eq!(header(r, "__connect.errors.stage"), "KAFKA_PRODUCE");
    assert_eq!(header(r, "__connect.errors.topic"), denied_topic);
    assert!(
        header(r, "__connect.errors.exception.message").contains("authoriz"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.key_str().as_deref(), Some("k-denied"));
    assert_eq!(r.value_str().as_deref(), Some("{\"secret\": 1}"));
    let lsn = parse_lsn(header(r, "outboxd.source.lsn")).unwrap();
    assert!((from..=to).contains(&lsn), "{lsn:X}");
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= end
        })
        .await,
        "the slot did not move past the refused event:\n{}",
        outboxd.log()
    );
    assert!(
        outboxd.log().contains(TOO_LARGE_ID),
        "the dead-lettered event is logged:\n{}",
        outboxd.log()
    );
}

/// Exactly-once mode: a record refused in its delivery report dooms its Kafka transaction, so
/// outboxd aborts it (a restart of the run), replays it and sends the refused event to the
/// dead-letter topic; its neighbours are published and the slot moves past it. On librdkafka's
/// mock cluster, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_mode_dead_letters_a_record_refused_in_the_delivery_report() {
    let (good_topic, denied_topic, dlq, offsets) = (
        "outbox.event.Allowed",
        "outbox.event.Denied",
        "dlq.mock",
        "offsets.mock",
    );
    let mock = mock_refusing(denied_topic, &[good_topic, dlq, offsets]);
    let bootstrap = mock.bootstrap_servers();

    let (pg, client) = support::database().await;
    let extra = format!(
        "\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n\n[exactly_once]\nenabled = true\noffsets_topic = \"{offsets}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, &bootstrap, &extra)).await;
    transaction(&client, &good("Allowed", 0)).await;
    transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{TOO_LARGE_ID}', 'Denied', 'k-denied', 'E', '{{\"secret\": 1}}');"),
    )
    .await;
    transaction(&client, &good("Allowed", 1)).await;
    let end = current_wal_lsn(&client).await;

    let dead = support::consume_topics_async(&bootstrap, &[dlq], 1, Duration::from_secs(30)).await;
    assert!(
        !dead.is_empty() && dead.iter().all(|r| header(r, "id") == TOO_LARGE_ID),
        "outboxd log:\n{}",
        outboxd.log()
    );
    assert_eq!(header(&dead[0], "__connect.errors.topic"), denied_topic);
    let records =
        support::consume_topics_async(&bootstrap, &[good_topic], 3, Duration::from_secs(15)).await;
    let seqs: std::collections::BTreeSet<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [0, 1].into_iter().collect(),
        "outboxd log:\n{}",
        outboxd.log()
    );
    assert!(
        wait_until(Duration::from_secs(30), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= end
        })
        .await,
        "the slot did not move past the refused event:\n{}",
        outboxd.log()
    );
    // Which path refused it depends on timing: librdkafka reports the refusal in the delivery
    // report (the transaction is aborted and replayed), or, once it knows the topic's error from
    // metadata, already at enqueue (dead-lettered at once). Seen once in ten runs under load.
    let log = outboxd.log();
    let replayed = log.contains("its Kafka transaction is aborted and sent again");
    assert!(
        replayed || log.contains("poison event sent to the dead-letter topic"),
        "{log}"
    );
    assert!(
        log.contains(TOO_LARGE_ID),
        "the refused event is named:\n{log}"
    );
    eprintln!(
        "mock cluster, read_committed: {} record(s) on {good_topic}, {} on {dlq}; refused in the delivery report: {replayed}",
        records.len(),
        dead.len()
    );
}

/// A topic that does not exist, on a cluster that does not auto-create topics
/// (`auto.create.topics.enable=false`, a dedicated Apache Kafka): librdkafka gives up on the
/// record after `topic.metadata.propagation.max.ms` (5 s here, 30 s by default) with the
/// broker's `Unknown topic or partition`, a permanent error. Without tolerance outboxd stops naming the event
/// and the topic, and the slot stays before it; with `errors.tolerance = all` the next start
/// dead-letters it and carries on. The missing topic is never created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_missing_on_a_cluster_without_auto_creation_is_a_poison_event() {
    const TEST: &str = "a_topic_missing_on_a_cluster_without_auto_creation_is_a_poison_event";
    if let Err(why) = support::broker::kafka_available() {
        return support::skip(TEST, &why);
    }
    let broker = tokio::task::spawn_blocking(|| {
        support::LocalBroker::kafka(
            support::KafkaOptions::default().prop("auto.create.topics.enable", "false"),
        )
    })
    .await
    .unwrap();
    let bootstrap = broker.bootstrap().to_string();
    let present = format!("Here{}", unique("t"));
    let missing = format!("Missing{}", unique("t"));
    let (present_topic, missing_topic) = (
        format!("outbox.event.{present}"),
        format!("outbox.event.{missing}"),
    );
    let dlq = format!("dlq.{}", unique("d"));
    support::kafka::create_topic(&bootstrap, &present_topic, 1).await;
    support::kafka::create_topic(&bootstrap, &dlq, 1).await;
    let (pg, client) = support::database().await;
    let propagation = "\"topic.metadata.propagation.max.ms\" = 5000\n";
    let mut outboxd = Outboxd::streaming(&config(&pg, &bootstrap, propagation)).await;

    transaction(&client, &good(&present, 0)).await;
    let (before_missing, _) = transaction(
        &client,
        &format!("INSERT INTO public.outbox VALUES ('{BAD_TOPIC_ID}', '{missing}', 'k', 'E', '{{\"n\": 1}}');"),
    )
    .await;
    transaction(&client, &good(&present, 1)).await;
    let end = current_wal_lsn(&client).await;

    let status = outboxd.wait_exit(Duration::from_secs(60)).await;
    let log = outboxd.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(BAD_TOPIC_ID)
            && log.contains(&format!("for topic {missing_topic}"))
            && log.contains("Unknown topic")
            && log.contains("create the topic")
            && log.contains("errors.tolerance = all"),
        "the error should name the event, the topic and the way out:\n{log}"
    );
    let confirmed = slot_confirmed_lsn(&client, SLOT).await.unwrap();
    assert!(
        confirmed <= before_missing,
        "the slot moved past the event: {confirmed:X} > {before_missing:X}"
    );
    // The event before it is published; the one after it (another topic, sent while librdkafka
    // still waited for the missing one) may be too, and is sent again: it is not confirmed.
    let first =
        support::consume_topics_async(&bootstrap, &[&present_topic], 3, Duration::from_secs(3))
            .await;
    let seqs: Vec<i64> = first
        .iter()
        .map(|r| r.value_json().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs == [0] || seqs == [0, 1], "{seqs:?}");

    // With a dead-letter topic, the next start sends it there and publishes the event after it.
    let extra = format!(
        "{propagation}\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, &bootstrap, &extra)).await;
    let dead = support::consume_topics_async(&bootstrap, &[&dlq], 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1, "outboxd log:\n{}", outboxd.log());
    assert_eq!(header(&dead[0], "id"), BAD_TOPIC_ID);
    assert_eq!(header(&dead[0], "__connect.errors.topic"), missing_topic);
    // The event after the missing topic's is sent (again): it was not confirmed.
    let before = seqs.len();
    let again = support::wait_for(Duration::from_secs(30), || async {
        let records = support::consume_topics_async(
            &bootstrap,
            &[&present_topic],
            usize::MAX,
            Duration::from_secs(2),
        )
        .await;
        records[before.min(records.len())..]
            .iter()
            .any(|r| r.value_json().unwrap()["seq"] == 1)
            .then_some(())
    })
    .await;
    assert!(
        again.is_some(),
        "the event after it was not sent again:\n{}",
        outboxd.log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= end
        })
        .await,
        "the slot did not move past the dead-lettered event:\n{}",
        outboxd.log()
    );
    let created = {
        let (b, t) = (bootstrap.clone(), missing_topic.clone());
        tokio::task::spawn_blocking(move || support::kafka::partition_count(&b, &t))
            .await
            .unwrap()
    };
    assert_eq!(created, None, "{missing_topic} was created");
    drop(broker);
}
