//! End-to-end tests of `source.snapshot_mode`: rows already in the outbox table are published once,
//! consistently with the slot (no gap, no duplicate while a writer keeps inserting), an interrupted
//! snapshot is taken again on the next start, `initial_only` publishes and exits without leaving a
//! slot, and `always` re-publishes the table at every start. Real Postgres, real broker.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{unique, wait_until, Broker, Outboxd, PgCluster, ProxiedBroker, Record};

const SLOT: &str = "outboxd";

fn config(pg: &PgCluster, bootstrap: &str, mode: &str) -> String {
    support::basic_config(&pg.url("postgres"), SLOT, "outboxd", bootstrap).replace(
        "tables = [\"public.outbox\"]\n",
        &format!("tables = [\"public.outbox\"]\nsnapshot_mode = \"{mode}\"\n"),
    )
}

/// Inserts `n` rows for `aggregatetype` with payload `{"n": i}` (one transaction each).
async fn insert_rows(client: &tokio_postgres::Client, aggregatetype: &str, from: i64, n: i64) {
    for i in from..from + n {
        support::insert_outbox(
            client,
            aggregatetype,
            "agg",
            "E",
            &format!("{{\"n\": {i}}}"),
        )
        .await;
    }
}

/// Waits until the log (of all runs so far) says `runs` snapshots were published and acknowledged.
async fn wait_published(outboxd: &Outboxd, runs: usize) {
    let done = wait_until(Duration::from_secs(60), || {
        let n = outboxd
            .log()
            .matches("snapshot published and acknowledged")
            .count();
        async move { n >= runs }
    })
    .await;
    assert!(done, "no snapshot published:\n{}", outboxd.log());
}

fn numbers(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.value_json().unwrap()["n"].as_i64().unwrap())
        .collect()
}

async fn slot_exists(client: &tokio_postgres::Client, slot: &str) -> bool {
    client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_publishes_existing_rows_once_then_streams_without_gap_or_duplicate() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("i"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    insert_rows(&client, &aggregatetype, 0, 300).await;

    // A writer keeps inserting while outboxd creates its slot and reads the snapshot: each row must
    // be published exactly once, either from the snapshot or from the stream.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, agg, stop) = (pg.client().await, aggregatetype.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 300;
            while !stop.load(Ordering::Relaxed) {
                insert_rows(&c, &agg, n, 1).await;
                n += 1;
            }
            n
        })
    };
    let outboxd = Outboxd::start(&config(&pg, broker.bootstrap(), "initial"));
    wait_published(&outboxd, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(
        written > 300,
        "the writer wrote nothing while outboxd started"
    );

    let records = support::consume_async(
        broker.bootstrap(),
        &topic,
        written as usize + 1,
        Duration::from_secs(20),
    )
    .await;
    let got = numbers(&records);
    let expected: Vec<i64> = (0..written).collect();
    // One partition, one key: Kafka order is publication order, which must be commit order.
    assert_eq!(got, expected, "outboxd log:\n{}", outboxd.log());
    assert!(slot_exists(&client, SLOT).await);
    assert!(
        !slot_exists(&client, "outboxd_snapshot").await,
        "the marker slot must be gone once the snapshot is acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_snapshot_is_taken_again_on_the_next_start() {
    let Some(broker) =
        ProxiedBroker::start_or_skip("an_interrupted_snapshot_is_taken_again_on_the_next_start")
    else {
        return;
    };
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("r"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    insert_rows(&client, &aggregatetype, 0, 20).await;

    // Kafka is unreachable: the snapshot is read but never acknowledged, and outboxd dies.
    // (Without [offsets]: reading the recorded position needs Kafka before anything is read.)
    broker.pause();
    let cfg = format!(
        "{}\n[offsets]\nenabled = false\n",
        config(&pg, broker.bootstrap(), "initial")
    );
    let mut outboxd = Outboxd::start(&cfg);
    assert!(
        outboxd
            .wait_for_log("snapshot read", Duration::from_secs(60))
            .await,
        "{}",
        outboxd.log()
    );
    // Rows committed after the slot's point are in the slot, not in the snapshot.
    insert_rows(&client, &aggregatetype, 20, 5).await;
    outboxd.kill9();
    assert!(slot_exists(&client, "outboxd_snapshot").await, "marker");

    broker.resume();
    outboxd.restart();
    wait_published(&outboxd, 1).await;
    assert!(
        outboxd.log().contains("did not finish"),
        "{}",
        outboxd.log()
    );
    insert_rows(&client, &aggregatetype, 25, 5).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 31, Duration::from_secs(30)).await;
    let distinct: HashSet<i64> = numbers(&records).into_iter().collect();
    assert_eq!(
        distinct,
        (0..30).collect::<HashSet<i64>>(),
        "every row, from the second snapshot and the stream; log:\n{}",
        outboxd.log()
    );
    assert!(!slot_exists(&client, "outboxd_snapshot").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_only_publishes_the_table_and_exits_without_a_slot() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("o"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    insert_rows(&client, &aggregatetype, 0, 50).await;

    let mut outboxd = Outboxd::start(&config(&pg, broker.bootstrap(), "initial_only"));
    let exited = wait_until(Duration::from_secs(60), || {
        let running = outboxd.is_running();
        async move { !running }
    })
    .await;
    assert!(exited, "initial_only should exit:\n{}", outboxd.log());
    let status = outboxd.try_status().unwrap();
    assert!(status.success(), "{status:?}\n{}", outboxd.log());
    let records =
        support::consume_async(broker.bootstrap(), &topic, 51, Duration::from_secs(30)).await;
    assert_eq!(numbers(&records), (0..50).collect::<Vec<i64>>());
    let slots: i64 = client
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0, "initial_only must leave no slot behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_republishes_the_table_at_every_start_and_no_data_does_not() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("a"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    insert_rows(&client, &aggregatetype, 0, 10).await;

    // no_data: the rows already there are not published; only what comes after the slot.
    let mut outboxd = Outboxd::start(&config(&pg, broker.bootstrap(), "no_data"));
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "{}",
        outboxd.log()
    );
    insert_rows(&client, &aggregatetype, 10, 1).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 2, Duration::from_secs(15)).await;
    assert_eq!(numbers(&records), vec![10], "{}", outboxd.log());
    outboxd.terminate(Duration::from_secs(30));

    // always, with the slot existing: the 11 rows in the table again, then the stream.
    std::fs::write(
        outboxd.config_path(),
        config(&pg, broker.bootstrap(), "always"),
    )
    .unwrap();
    outboxd.restart();
    wait_published(&outboxd, 1).await;
    insert_rows(&client, &aggregatetype, 11, 1).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 14, Duration::from_secs(20)).await;
    let mut expected = vec![10];
    expected.extend(0..=11);
    assert_eq!(numbers(&records), expected, "{}", outboxd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_needed_recreates_an_invalidated_slot_with_a_snapshot() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("w"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;

    let mut outboxd = Outboxd::start(&config(&pg, broker.bootstrap(), "when_needed"));
    wait_published(&outboxd, 1).await;
    outboxd.terminate(Duration::from_secs(30));

    // While outboxd is down, rows are written and the server invalidates the slot: more WAL than
    // max_slot_wal_keep_size, then a checkpoint.
    insert_rows(&client, &aggregatetype, 0, 5).await;
    client
        .batch_execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        .await
        .unwrap();
    client
        .batch_execute("SELECT pg_reload_conf(); CREATE TABLE filler (t text)")
        .await
        .unwrap();
    for _ in 0..4 {
        client
            .batch_execute(
                "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000); \
                 SELECT pg_switch_wal()",
            )
            .await
            .unwrap();
    }
    client.batch_execute("CHECKPOINT").await.unwrap();
    let status: Option<String> = client
        .query_one(
            "SELECT wal_status::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&SLOT],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        status.as_deref(),
        Some("lost"),
        "the slot should be invalidated"
    );

    outboxd.restart();
    // The log holds both runs: wait for the second run's line.
    wait_published(&outboxd, 2).await;
    assert!(outboxd.log().contains("invalidated"), "{}", outboxd.log());
    insert_rows(&client, &aggregatetype, 5, 1).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 7, Duration::from_secs(20)).await;
    assert_eq!(
        numbers(&records),
        (0..6).collect::<Vec<i64>>(),
        "the rows still in the table, then the stream; log:\n{}",
        outboxd.log()
    );
}

/// Exactly-once mode: the snapshot's rows go out in one Kafka transaction, the marker slot goes
/// only once it is committed, the stream follows, and a restart publishes nothing again (each row
/// exactly once for a `read_committed` consumer, the support consumer's isolation level).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_snapshot_in_exactly_once_mode_publishes_each_row_once() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Snap{}", unique("x"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    insert_rows(&client, &aggregatetype, 0, 20).await;
    let cfg = format!(
        "{}\n[exactly_once]\nenabled = true\noffsets_topic = \"{}\"\n",
        config(&pg, broker.bootstrap(), "initial"),
        unique("offsets")
    );
    let mut outboxd = Outboxd::start(&cfg);
    wait_published(&outboxd, 1).await;
    assert!(
        !slot_exists(&client, "outboxd_snapshot").await,
        "the marker slot must be gone once the snapshot's transaction is committed"
    );
    insert_rows(&client, &aggregatetype, 20, 5).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 26, Duration::from_secs(20)).await;
    assert_eq!(
        numbers(&records),
        (0..25).collect::<Vec<i64>>(),
        "{}",
        outboxd.log()
    );
    assert!(outboxd
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());

    // Restarted on its slot: no snapshot again, nothing published twice.
    outboxd.restart();
    assert!(
        outboxd
            .wait_for_log("exactly-once: transactions above", Duration::from_secs(60))
            .await,
        "{}",
        outboxd.log()
    );
    insert_rows(&client, &aggregatetype, 25, 1).await;
    let records =
        support::consume_async(broker.bootstrap(), &topic, 27, Duration::from_secs(20)).await;
    assert_eq!(
        numbers(&records),
        (0..26).collect::<Vec<i64>>(),
        "{}",
        outboxd.log()
    );
}
