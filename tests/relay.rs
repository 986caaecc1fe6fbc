//! End-to-end tests of the relay: a real Postgres (initdb'ed by the test), a real Kafka-protocol
//! broker (tansu, or the Kafka named by KAFKA_BOOTSTRAP_SERVERS) and the `outboxd` binary.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use support::{
    slot_confirmed_lsn, unique, wait_until, Broker, Outboxd, PgCluster, ProxiedBroker, Record,
};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";

/// A fresh cluster with the outbox table and an `other` table.
async fn database() -> (PgCluster, tokio_postgres::Client) {
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    client
        .batch_execute("CREATE TABLE public.other (id bigserial PRIMARY KEY, note text)")
        .await
        .unwrap();
    (pg, client)
}

fn config(pg: &PgCluster, bootstrap: &str, extra: &str) -> String {
    format!(
        "{}{extra}",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap)
    )
}

async fn current_wal_lsn(client: &tokio_postgres::Client) -> u64 {
    support::current_wal_lsn(client).await
}

/// Writes `txns` transactions of `rows` events each for `aggregate` in commit order; payload carries
/// the aggregate and a sequence number. Returns the ids in commit order.
async fn write_sequence(
    client: &tokio_postgres::Client,
    aggregatetype: &str,
    aggregate: &str,
    txns: usize,
    rows: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for t in 0..txns {
        let mut sql = String::from("BEGIN;");
        for r in 0..rows {
            let seq = t * rows + r;
            sql.push_str(&format!(
                "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{aggregatetype}', '{aggregate}', 'E', '{{\"agg\": \"{aggregate}\", \"seq\": {seq}}}');"
            ));
        }
        sql.push_str("COMMIT;");
        client.batch_execute(&sql).await.unwrap();
        ids.push(format!("{aggregate}/{t}"));
    }
    ids
}

fn seq_of(r: &Record) -> i64 {
    r.value_json().unwrap()["seq"].as_i64().unwrap()
}

/// Checks that for every key the records arrive with strictly increasing `seq` (first occurrences,
/// so duplicates after a crash are tolerated) and that every seq in 0..count is present.
fn assert_per_key_order(records: &[Record], count_per_key: &HashMap<String, i64>) {
    let mut seen: HashMap<String, HashSet<i64>> = HashMap::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in records {
        let key = r.key_str().unwrap();
        let seq = seq_of(r);
        let first_time = seen.entry(key.clone()).or_default().insert(seq);
        if first_time {
            let prev = last.insert(key.clone(), seq).unwrap_or(-1);
            assert!(
                seq > prev,
                "key {key}: seq {seq} arrived after {prev} (partition {} offset {})",
                r.partition,
                r.offset
            );
        }
    }
    for (key, count) in count_per_key {
        let got = seen.get(key).map_or(0, HashSet::len) as i64;
        assert_eq!(got, *count, "key {key}: {got} of {count} events arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_concurrent_transactions_arrive_with_topic_key_header_and_value() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let tag = unique("c");
    let types = [format!("Order{tag}"), format!("Customer{tag}")];
    let topics: Vec<String> = types.iter().map(|t| format!("outbox.event.{t}")).collect();
    for t in &topics {
        broker.create_topic(t, 4).await;
    }
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;

    // 6 writers × 20 transactions; every 5th transaction rolls back, every 7th inserts and
    // deletes its row in the same transaction.
    let mut writers = Vec::new();
    for w in 0..6 {
        let c = pg.client().await;
        let types = types.clone();
        writers.push(tokio::spawn(async move {
            let mut expected = Vec::new();
            for t in 0..20 {
                let aggregatetype = &types[(w + t) % 2];
                let aggregateid = format!("agg-{w}-{}", t % 3);
                let payload = format!(r#"{{"writer": {w}, "txn": {t}, "text": "café \"q\""}}"#);
                c.batch_execute("BEGIN").await.unwrap();
                let row = c
                    .query_one(
                        "INSERT INTO public.outbox VALUES (gen_random_uuid(), $1, $2, 'Created', $3::text::jsonb) RETURNING id::text",
                        &[aggregatetype, &aggregateid, &payload],
                    )
                    .await
                    .unwrap();
                let id: String = row.get(0);
                if t % 7 == 3 {
                    c.execute("DELETE FROM public.outbox WHERE id = $1::text::uuid", &[&id])
                        .await
                        .unwrap();
                }
                if t % 5 == 4 {
                    c.batch_execute("ROLLBACK").await.unwrap();
                } else {
                    c.batch_execute("COMMIT").await.unwrap();
                    expected.push((id, aggregatetype.clone(), aggregateid, payload));
                }
            }
            expected
        }));
    }
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    assert_eq!(expected.len(), 6 * 16);

    // Ask for one more than expected: a rolled-back or duplicated event would show up.
    let records = support::consume_topics_async(
        broker.bootstrap(),
        &topics,
        expected.len() + 1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        records.len(),
        expected.len(),
        "outboxd log:\n{}",
        outboxd.log()
    );
    let by_id: HashMap<String, &Record> = records
        .iter()
        .map(|r| (r.header_str("id").expect("id header"), r))
        .collect();
    assert_eq!(by_id.len(), expected.len(), "duplicate ids");
    for (id, aggregatetype, aggregateid, payload) in &expected {
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("event {id} missing"));
        assert_eq!(r.topic, format!("outbox.event.{aggregatetype}"));
        assert_eq!(r.key_str().as_deref(), Some(aggregateid.as_str()));
        let value: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(r.value_json().unwrap(), value);
        assert_eq!(r.headers.len(), 1, "only the id header");
        let ts = r.timestamp_ms.expect("record timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (now - 120_000..=now).contains(&ts),
            "timestamp {ts} is not the commit time"
        );
    }
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_keep_commit_order_per_aggregate_on_four_partitions() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let aggregatetype = format!("Bulk{}", unique("o"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;

    // 50 aggregates split over 5 concurrent writers; each writer commits its aggregates' events in
    // order, 10 events per transaction, interleaving aggregates.
    let mut writers = Vec::new();
    for w in 0..5 {
        let c = pg.client().await;
        let agg = aggregatetype.clone();
        writers.push(tokio::spawn(async move {
            // 200 transactions of 10 rows (one per aggregate of this writer): seq 0..200.
            for seq in 0..200 {
                let mut sql = String::from("BEGIN;");
                for a in 0..10 {
                    let aggregate = format!("a{}", w * 10 + a);
                    sql.push_str(&format!(
                        "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{agg}', '{aggregate}', 'E', '{{\"seq\": {seq}}}');"
                    ));
                }
                sql.push_str("COMMIT;");
                c.batch_execute(&sql).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let records = support::consume_topics_async(
        broker.bootstrap(),
        std::slice::from_ref(&topic),
        10_001,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(records.len(), 10_000, "outboxd log:\n{}", outboxd.log());

    // Per key: all on one partition, in commit order (seq 0, 1, 2, ...).
    let mut by_key: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in &records {
        by_key.entry(r.key_str().unwrap()).or_default().push(r);
    }
    assert_eq!(by_key.len(), 50);
    let partitions: HashSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(partitions.len() > 1, "keys should spread over partitions");
    for (key, rs) in &by_key {
        assert_eq!(rs.len(), 200, "key {key}");
        let p = rs[0].partition;
        assert!(
            rs.iter().all(|r| r.partition == p),
            "key {key} on several partitions"
        );
        let seqs: Vec<i64> = rs.iter().map(|r| seq_of(r)).collect();
        let expected: Vec<i64> = (0..200).collect();
        assert_eq!(seqs, expected, "key {key}: not in commit order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_keeps_per_aggregate_order() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let aggregatetype = format!("Crash{}", unique("k"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let mut outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;

    // A writer commits 20 aggregates × 150 events in single-row transactions while outboxd is
    // killed three times.
    let writer_client = pg.client().await;
    let agg = aggregatetype.clone();
    let writer = tokio::spawn(async move {
        for seq in 0..150 {
            let mut sql = String::new();
            for a in 0..20 {
                sql.push_str(&format!(
                    "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{agg}', 'k{a}', 'E', '{{\"seq\": {seq}}}');"
                ));
            }
            // One simple-query string without BEGIN: one implicit transaction of 20 rows.
            writer_client.batch_execute(&sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    for cycle in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        outboxd.kill9();
        eprintln!("cycle {cycle}: outboxd killed");
        outboxd.restart();
        assert!(
            outboxd
                .wait_for_log("streaming", Duration::from_secs(30))
                .await,
            "restart failed:\n{}",
            outboxd.log()
        );
    }
    writer.await.unwrap();

    let total = 20 * 150;
    // Read until every distinct event is there (duplicates allowed).
    let deadline = Instant::now() + Duration::from_secs(60);
    let records = loop {
        let records = support::consume_topics_async(
            broker.bootstrap(),
            std::slice::from_ref(&topic),
            usize::MAX,
            Duration::from_secs(5),
        )
        .await;
        let distinct: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
        if distinct.len() >= total || Instant::now() > deadline {
            break records;
        }
    };
    let distinct: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    assert_eq!(distinct.len(), total, "outboxd log:\n{}", outboxd.log());
    let counts: HashMap<String, i64> = (0..20).map(|a| (format!("k{a}"), 150)).collect();
    assert_per_key_order(&records, &counts);
    eprintln!(
        "kill -9 ×3: {} records for {} events ({} duplicates)",
        records.len(),
        total,
        records.len() - total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_holds_the_slot_and_memory_then_resumes() {
    let Some(broker) =
        ProxiedBroker::start_or_skip("broker_outage_holds_the_slot_and_memory_then_resumes")
    else {
        return;
    };
    let (pg, client) = database().await;
    let aggregatetype = format!("Outage{}", unique("b"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let http_port = support::free_port();
    let extra = format!(
        "\n[pipeline]\nmax_in_flight_events = 50\n\n[http]\naddr = \"127.0.0.1:{http_port}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), &extra)).await;

    write_sequence(&client, &aggregatetype, "before", 10, 1).await;
    assert_eq!(
        support::consume_topics_async(
            broker.bootstrap(),
            std::slice::from_ref(&topic),
            10,
            Duration::from_secs(20)
        )
        .await
        .len(),
        10
    );

    broker.pause();
    let lsn_before = current_wal_lsn(&client).await;
    write_sequence(&client, &aggregatetype, "during", 200, 1).await;
    let lsn_after = current_wal_lsn(&client).await;

    // For several seconds: the slot never moves past the first unacknowledged event, and no more
    // than the cap is in flight, while the connection to Postgres stays up.
    let started = Instant::now();
    let mut max_in_flight = 0;
    while started.elapsed() < Duration::from_secs(6) {
        let confirmed = slot_confirmed_lsn(&client, SLOT).await.unwrap();
        assert!(
            confirmed <= lsn_before,
            "confirmed_flush_lsn {confirmed:X} moved past {lsn_before:X} while Kafka was down"
        );
        let metrics = support::outboxd::http_get(http_port, "/metrics").await;
        let in_flight = metric(&metrics, "outboxd_events_in_flight");
        assert!(in_flight <= 50.0, "{in_flight} events in flight, cap 50");
        max_in_flight = max_in_flight.max(in_flight as i64);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(max_in_flight, 50, "the cap should have been reached");
    let alive = support::outboxd::http_get(http_port, "/healthz").await;
    assert!(alive.starts_with("HTTP/1.1 200"), "{alive}");
    // Not ready while librdkafka reports the brokers down.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let ready = support::outboxd::http_get(http_port, "/readyz").await;
            ready.starts_with("HTTP/1.1 503") && ready.contains("Kafka is unreachable")
        })
        .await,
        "/readyz should say Kafka is unreachable:\n{}",
        outboxd.log()
    );

    broker.resume();
    let records = support::consume_topics_async(
        broker.bootstrap(),
        std::slice::from_ref(&topic),
        210,
        Duration::from_secs(60),
    )
    .await;
    let distinct: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    assert_eq!(distinct.len(), 210, "outboxd log:\n{}", outboxd.log());
    let ready = support::outboxd::http_get(http_port, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let counts = HashMap::from([("before".to_string(), 10), ("during".to_string(), 200)]);
    assert_per_key_order(&records, &counts);
    assert!(
        wait_until(Duration::from_secs(20), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= lsn_after
        })
        .await,
        "the slot did not advance after the broker returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_longer_than_message_timeout_restarts_from_the_slot_without_loss() {
    let Some(broker) = ProxiedBroker::start_or_skip(
        "outage_longer_than_message_timeout_restarts_from_the_slot_without_loss",
    ) else {
        return;
    };
    let (pg, client) = database().await;
    let aggregatetype = format!("Timeout{}", unique("t"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let extra = "\"message.timeout.ms\" = 3000\n";
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), extra)).await;

    broker.pause();
    write_sequence(&client, &aggregatetype, "x", 30, 2).await;
    assert!(
        outboxd
            .wait_for_log(
                "restarting after a transient error",
                Duration::from_secs(30)
            )
            .await,
        "no restart after the delivery timeout:\n{}",
        outboxd.log()
    );
    broker.resume();
    let records = support::consume_topics_async(
        broker.bootstrap(),
        std::slice::from_ref(&topic),
        60,
        Duration::from_secs(60),
    )
    .await;
    let distinct: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    assert_eq!(distinct.len(), 60, "outboxd log:\n{}", outboxd.log());
    assert_per_key_order(&records, &HashMap::from([("x".to_string(), 60)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_outbox_slot_advances_while_other_tables_write() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    let _outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;
    let start = slot_confirmed_lsn(&client, SLOT).await.unwrap();
    for i in 0..50 {
        client
            .execute(
                "INSERT INTO public.other (note) VALUES ($1)",
                &[&format!("n{i}")],
            )
            .await
            .unwrap();
    }
    let target = current_wal_lsn(&client).await;
    assert!(target > start);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            slot_confirmed_lsn(&client, SLOT).await.unwrap() >= target
        })
        .await,
        "slot stayed at {:X}, WAL is at {target:X}",
        slot_confirmed_lsn(&client, SLOT).await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_confirms_and_releases_the_slot() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    let aggregatetype = format!("Term{}", unique("s"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let http_port = support::free_port();
    let extra = format!("\n[http]\naddr = \"127.0.0.1:{http_port}\"\n");
    let mut outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), &extra)).await;
    write_sequence(&client, &aggregatetype, "t", 20, 5).await;
    let lsn_after = current_wal_lsn(&client).await;
    assert_eq!(
        support::consume_topics_async(
            broker.bootstrap(),
            std::slice::from_ref(&topic),
            100,
            Duration::from_secs(30)
        )
        .await
        .len(),
        100
    );
    let metrics = support::outboxd::http_get(http_port, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            &format!("outboxd_events_published_total{{topic=\"{topic}\"}}")
        ),
        100.0
    );
    assert_eq!(
        metric(
            &metrics,
            "outboxd_events_read_total{table=\"public.outbox\"}"
        ),
        100.0
    );
    assert_eq!(
        metric(&metrics, "outboxd_commit_to_ack_seconds_count"),
        100.0
    );
    assert!(support::outboxd::http_get(http_port, "/readyz")
        .await
        .starts_with("HTTP/1.1 200"));
    let status = outboxd.terminate(Duration::from_secs(20)).expect("exited");
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        outboxd.log()
    );
    let row = client
        .query_one(
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&SLOT],
        )
        .await
        .unwrap();
    let active: bool = row.get(0);
    assert!(!active, "slot still held after exit");
    let confirmed = support::parse_lsn(&row.get::<_, String>(1)).unwrap();
    assert!(
        confirmed >= lsn_after,
        "final confirmation {confirmed:X} < {lsn_after:X}"
    );

    // A restart publishes nothing again: the last transaction is not replayed.
    outboxd.restart();
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        support::consume_topics_async(
            broker.bootstrap(),
            std::slice::from_ref(&topic),
            101,
            Duration::from_secs(5)
        )
        .await
        .len(),
        100,
        "events were replayed after a clean restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_routed_stops_the_relay_without_confirming_it() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    let mut outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), "")).await;
    let lsn_before = current_wal_lsn(&client).await;
    client
        .batch_execute(
            "INSERT INTO public.outbox VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'Bad Topic', 'k', 't', '{}')",
        )
        .await
        .unwrap();
    let status = outboxd.wait_exit(Duration::from_secs(30)).await;
    let log = outboxd.log();
    assert!(!status.success());
    assert!(
        log.contains("aaaaaaaa-0000-4000-8000-000000000001") && log.contains("Bad Topic"),
        "the error should name the row and the value:\n{log}"
    );
    let confirmed = slot_confirmed_lsn(&client, SLOT).await.unwrap();
    assert!(
        confirmed <= lsn_before,
        "the bad row's transaction was confirmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_good_setup_and_names_the_fix_otherwise() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let good = config(&pg, broker.bootstrap(), "");
    let (status, out) = support::outboxd::check(&good, Duration::from_secs(60));
    assert!(status.unwrap().success(), "{out}");
    assert!(out.contains("all 11 checks passed"), "{out}");
    // The failover check says what a promotion would do to the slot on this version.
    assert!(out.contains("PASS  failover slot: "), "{out}");

    // With poison events going to a dead-letter topic, that topic must exist.
    let dlq = format!("dlq.{}", unique("c"));
    let with_dlq = format!(
        "{good}\n[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n"
    );
    let (status, out) = support::outboxd::check(&with_dlq, Duration::from_secs(60));
    assert!(!status.unwrap().success(), "{out}");
    assert!(
        out.contains("FAIL  dead-letter topic") && out.contains(&format!("--topic {dlq}")),
        "{out}"
    );
    broker.create_topic(&dlq, 1).await;
    let (status, out) = support::outboxd::check(&with_dlq, Duration::from_secs(60));
    assert!(status.unwrap().success(), "{out}");
    assert!(out.contains("all 12 checks passed"), "{out}");

    let replica = PgCluster::start_with(support::PgOptions {
        extra_conf: vec![("wal_level".into(), "replica".into())],
        ..Default::default()
    });
    let bad = support::basic_config(
        &replica.url("postgres"),
        SLOT,
        PUBLICATION,
        broker.bootstrap(),
    );
    let (status, out) = support::outboxd::check(&bad, Duration::from_secs(60));
    assert!(!status.unwrap().success(), "{out}");
    assert!(
        out.contains("FAIL  wal_level") && out.contains("ALTER SYSTEM SET wal_level = logical"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  table public.outbox") && out.contains("CREATE TABLE"),
        "{out}"
    );
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_slot_and_slot_drop_refuses_while_streaming() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    let cfg = config(&pg, broker.bootstrap(), "");
    let mut outboxd = Outboxd::streaming(&cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outboxd.toml");
    std::fs::write(&path, &cfg).unwrap();
    let path = path.to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            support::outboxd::run_once(&refs, Duration::from_secs(30))
        })
    };

    let (status, out) = run(vec!["status".into(), "--config".into(), path.clone()])
        .await
        .unwrap();
    assert!(status.unwrap().success(), "{out}");
    assert!(out.contains("active      yes, PID"), "{out}");
    assert!(out.contains("plugin      pgoutput"), "{out}");
    assert!(
        out.contains("publication   outboxd: public.outbox"),
        "{out}"
    );

    let (status, out) = run(vec![
        "slot".into(),
        "drop".into(),
        "--config".into(),
        path.clone(),
        "--yes".into(),
    ])
    .await
    .unwrap();
    assert!(!status.unwrap().success(), "{out}");
    assert!(out.contains("in use by PID"), "{out}");

    assert!(outboxd
        .terminate(Duration::from_secs(20))
        .unwrap()
        .success());
    // Without --yes and without a confirmation on stdin: nothing is dropped.
    let (status, out) = run(vec![
        "slot".into(),
        "drop".into(),
        "--config".into(),
        path.clone(),
    ])
    .await
    .unwrap();
    assert!(!status.unwrap().success(), "{out}");
    assert!(
        slot_confirmed_lsn(&client, SLOT).await.is_some(),
        "dropped without confirmation"
    );
    let (status, out) = run(vec![
        "slot".into(),
        "drop".into(),
        "--config".into(),
        path.clone(),
        "--yes".into(),
    ])
    .await
    .unwrap();
    assert!(status.unwrap().success(), "{out}");
    assert!(
        slot_confirmed_lsn(&client, SLOT).await.is_none(),
        "slot still there"
    );
    let (_, out) = run(vec!["status".into(), "--config".into(), path])
        .await
        .unwrap();
    assert!(
        out.contains("slot          outboxd: does not exist"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_slot_and_publication_are_verified_and_flags_override_the_file() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    // The file names an unreachable broker; --kafka-bootstrap-servers wins.
    let cfg = config(&pg, "127.0.0.1:1", "");
    let run_until_exit = |cfg: String| async move {
        let mut o = Outboxd::start_with(
            &cfg,
            &["--kafka-bootstrap-servers", broker.bootstrap()],
            &[],
        );
        let status = o.wait_exit(Duration::from_secs(30)).await;
        (status, o.log())
    };

    // A publication that lacks the outbox table: stop, with the statement that fixes it.
    client
        .batch_execute("CREATE PUBLICATION outboxd FOR TABLE public.other")
        .await
        .unwrap();
    let (status, log) = run_until_exit(cfg.clone()).await;
    assert!(!status.success());
    assert!(
        log.contains("ALTER PUBLICATION \"outboxd\" ADD TABLE \"public\".\"outbox\""),
        "{log}"
    );
    client
        .batch_execute("ALTER PUBLICATION outboxd ADD TABLE public.outbox")
        .await
        .unwrap();

    // A slot of another plugin: stop, saying pgoutput is needed.
    client
        .batch_execute("SELECT pg_create_logical_replication_slot('outboxd', 'test_decoding')")
        .await
        .unwrap();
    let (status, log) = run_until_exit(cfg.clone()).await;
    assert!(!status.success());
    assert!(
        log.contains("test_decoding") && log.contains("needs pgoutput"),
        "{log}"
    );
    client
        .batch_execute("SELECT pg_drop_replication_slot('outboxd')")
        .await
        .unwrap();

    // Both fit now (the slot is created): it streams and publishes through the flag's broker.
    let aggregatetype = format!("Flag{}", unique("f"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let o = Outboxd::start_with(
        &cfg,
        &["--kafka-bootstrap-servers", broker.bootstrap()],
        &[],
    );
    assert!(
        o.wait_for_log("streaming", Duration::from_secs(30)).await,
        "{}",
        o.log()
    );
    write_sequence(&client, &aggregatetype, "f", 3, 1).await;
    assert_eq!(
        support::consume_topics_async(
            broker.bootstrap(),
            std::slice::from_ref(&topic),
            3,
            Duration::from_secs(30)
        )
        .await
        .len(),
        3,
        "{}",
        o.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_writes_one_json_object_per_line() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let mut o = Outboxd::start_with(
        &config(&pg, broker.bootstrap(), ""),
        &["--log-format", "json"],
        &[],
    );
    assert!(
        o.wait_for_log("streaming", Duration::from_secs(30)).await,
        "{}",
        o.log()
    );
    assert!(o.terminate(Duration::from_secs(20)).unwrap().success());
    let log = o.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let streaming = lines
        .iter()
        .find(|v| v["message"] == "streaming")
        .unwrap_or_else(|| panic!("no streaming line:\n{log}"));
    assert_eq!(streaming["level"], "INFO");
    assert_eq!(streaming["slot"], SLOT);
    assert!(streaming["start_lsn"].as_str().unwrap().contains('/'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_seconds_of_the_active_dying() {
    let broker = Broker::shared();
    let (pg, _client) = database().await;
    let aggregatetype = format!("Standby{}", unique("s"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let config = config(&pg, broker.bootstrap(), "");
    let mut active = Outboxd::streaming(&config).await;
    let standby = Outboxd::start_with(&config, &[], &[("RUST_LOG", "info,outboxd=debug")]);
    assert!(
        standby
            .wait_for_log("standing by", Duration::from_secs(30))
            .await,
        "{}",
        standby.log()
    );
    // Long enough for the old exponential backoff to have grown past 10 s.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let attempts = standby.log().matches("still standing by").count();
    assert!(
        attempts >= 3,
        "the standby retries every ~2 s:\n{}",
        standby.log()
    );
    assert!(
        !standby.log().contains("restarting after a transient error"),
        "standing by is not an error:\n{}",
        standby.log()
    );

    // Load while the active one dies.
    let writer = {
        let (c, agg) = (pg.client().await, aggregatetype.clone());
        tokio::spawn(async move { write_sequence(&c, &agg, "a", 300, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    active.kill9();
    writer.await.unwrap();
    assert!(
        standby
            .wait_for_log("streaming", Duration::from_secs(10))
            .await,
        "the standby did not take over within 10 s:\n{}",
        standby.log()
    );
    // The events the dead instance sent but did not confirm are sent again by the standby: read
    // until all 300 arrived, however many duplicates come first.
    let topics = std::slice::from_ref(&topic);
    let records = support::wait_for(Duration::from_secs(60), || async {
        let records = support::consume_topics_async(
            broker.bootstrap(),
            topics,
            usize::MAX,
            Duration::from_secs(3),
        )
        .await;
        let distinct: HashSet<i64> = records.iter().map(seq_of).collect();
        (distinct.len() >= 300).then_some(records)
    })
    .await
    .unwrap_or_else(|| panic!("not all 300 events arrived:\n{}", standby.log()));
    assert_per_key_order(&records, &HashMap::from([("a".to_string(), 300)]));
    // One instance died, so no event was sent more than twice.
    let mut copies: HashMap<i64, usize> = HashMap::new();
    for r in &records {
        *copies.entry(seq_of(r)).or_default() += 1;
    }
    let most = copies.values().max().copied().unwrap_or(0);
    eprintln!(
        "standby takeover: {} duplicates of 300 events",
        records.len() - copies.len()
    );
    assert!(most <= 2, "an event arrived {most} times");
}
