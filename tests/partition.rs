//! Network partitions that never reset a connection: outboxd reaches Postgres through a TCP proxy
//! that can go silent (`support::proxy::Proxy::freeze`: nothing crosses, nothing is closed).
//!
//! - Between outboxd and Postgres: `source.receive_timeout_ms` takes the silent connection for
//!   dead while the partition lasts, outboxd keeps retrying, and once it heals it streams again
//!   with nothing lost.
//! - A zombie in exactly-once mode: instance A, cut off from Postgres with events in an open Kafka
//!   transaction, is replaced by B, which takes the slot over and publishes the same events. A's
//!   commit is fenced; A starts over and stands by (B holds the slot), and takes over when B
//!   stops. A `read_committed` consumer sees every event once (judged by the log's transaction
//!   markers, `support::txlog`, so it holds on tansu too).

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use support::proxy::Proxy;
use support::{unique, Broker, Outboxd, PgCluster};

/// What both tests start from: a database with the outbox table, a proxy in front of it (with
/// the source URL through it: a short connect timeout, so that attempts into the partition fail
/// fast), a slot name and a topic.
struct Scene {
    broker: &'static Broker,
    pg: PgCluster,
    client: tokio_postgres::Client,
    proxy: Proxy,
    url: String,
    slot: String,
    aggregatetype: String,
    topic: String,
}

async fn scene(name: &str) -> Scene {
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let proxy = Proxy::start(0, SocketAddr::from(([127, 0, 0, 1], pg.port())));
    let url = format!(
        "postgres://postgres@{}/postgres?sslmode=disable&connect_timeout=2",
        proxy.addr()
    );
    let aggregatetype = unique(name);
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    Scene {
        broker,
        pg,
        client,
        proxy,
        url,
        slot: unique(&name.to_lowercase()),
        aggregatetype,
        topic,
    }
}

/// `basic_config` with extra `[source]` keys.
fn config(url: &str, slot: &str, bootstrap: &str, source_extra: &str) -> String {
    support::basic_config(url, slot, slot, bootstrap).replacen(
        "tables = [\"public.outbox\"]\n",
        &format!("tables = [\"public.outbox\"]\n{source_extra}"),
        1,
    )
}

async fn insert(client: &tokio_postgres::Client, aggregatetype: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(support::insert_outbox(client, aggregatetype, &format!("a{i}"), "E", "{}").await);
    }
    ids
}

/// What a `read_committed` consumer may see of `topic` (at least `expected` records, or what came
/// within `timeout`), and how many aborted records the log holds besides.
async fn read_committed(
    broker: &Broker,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> (Vec<support::Record>, usize) {
    let (b, t) = (broker.bootstrap().to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        support::txlog::committed_records(&b, &[&t], expected, timeout)
    })
    .await
    .unwrap()
}

/// Whether `o` started streaming a second time within `timeout`.
async fn streams_again(o: &Outboxd, timeout: Duration) -> bool {
    support::wait_until(timeout, || async {
        o.log().matches(": streaming slot=").count() >= 2
    })
    .await
}

fn ids_of(records: &[support::Record]) -> Vec<String> {
    records.iter().filter_map(|r| r.header_str("id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_from_postgres_is_detected_and_healed() {
    let Scene {
        broker,
        pg: _pg,
        client,
        proxy,
        url,
        slot,
        aggregatetype,
        topic,
    } = scene("Part").await;
    let outboxd = Outboxd::streaming(&config(
        &url,
        &slot,
        broker.bootstrap(),
        "receive_timeout_ms = 3000\n",
    ))
    .await;
    let mut expected = insert(&client, &aggregatetype, 3).await;
    let first =
        support::consume_async(broker.bootstrap(), &topic, 3, Duration::from_secs(30)).await;
    assert_eq!(first.len(), 3, "{}", outboxd.log());

    // Idle but healthy: the server answers the requests for a reply, so the connection is kept.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let log = outboxd.log();
    assert!(
        log.contains("asking it to answer") && !log.contains("restarting after a transient error"),
        "an idle, healthy connection was given up:\n{log}"
    );

    proxy.freeze();
    expected.extend(insert(&client, &aggregatetype, 3).await);
    // Detected while the partition lasts: nothing was closed, only the silence tells.
    assert!(
        outboxd
            .wait_for_log(
                "restarting after a transient error",
                Duration::from_secs(20)
            )
            .await,
        "the silent connection was not given up:\n{}",
        outboxd.log()
    );
    let log = outboxd.log();
    assert!(
        log.contains("asking it to answer")
            && log.contains("waiting for any message from the server (source.receive_timeout_ms)"),
        "{log}"
    );
    // Retries go on into the partition (connect_timeout=2) without giving up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        outboxd
            .log()
            .matches("restarting after a transient error")
            .count()
            >= 2,
        "{}",
        outboxd.log()
    );

    proxy.thaw();
    assert!(
        streams_again(&outboxd, Duration::from_secs(60)).await,
        "outboxd did not stream again after the partition healed:\n{}",
        outboxd.log()
    );
    expected.extend(insert(&client, &aggregatetype, 3).await);
    let records =
        support::consume_async(broker.bootstrap(), &topic, 9, Duration::from_secs(60)).await;
    let seen: HashSet<String> = ids_of(&records).into_iter().collect();
    let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "missing {missing:?}\n{}", outboxd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_cut_off_from_postgres_is_fenced_in_exactly_once_mode() {
    let Scene {
        broker,
        pg,
        client,
        proxy,
        url,
        slot,
        aggregatetype,
        topic,
    } = scene("Zombie").await;
    let offsets = unique("offsets");
    let eos = |commit_interval_ms: u64| {
        format!(
            "[exactly_once]\nenabled = true\noffsets_topic = \"{offsets}\"\ncommit_interval_ms = {commit_interval_ms}\n"
        )
    };
    // A commits 20 s after its first event and never gives up on a silent connection: the
    // zombie's open transaction outlives the takeover.
    let a_config = format!(
        "{}{}",
        config(&url, &slot, broker.bootstrap(), "receive_timeout_ms = 0\n"),
        eos(20_000)
    );
    let mut a = Outboxd::streaming(&a_config).await;
    let ids = insert(&client, &aggregatetype, 4).await;
    // A produced them into its open transaction (visible only to read_uncommitted readers).
    let (b, t) = (broker.bootstrap().to_string(), topic.clone());
    let uncommitted = tokio::task::spawn_blocking(move || {
        support::kafka::consume_topics_with(
            &b,
            &[("isolation.level", "read_uncommitted")],
            &[&t],
            4,
            Duration::from_secs(15),
        )
    })
    .await
    .unwrap();
    assert_eq!(uncommitted.len(), 4, "{}", a.log());

    // The partition: A hears nothing more, and Postgres drops A's walsender.
    proxy.freeze();
    client
        .execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    // B takes the slot over, fences A (init_transactions aborts A's transaction) and publishes
    // the same events, as nothing of them was confirmed.
    let b_config = format!(
        "{}{}",
        config(&pg.url("postgres"), &slot, broker.bootstrap(), ""),
        eos(100)
    );
    let mut b = Outboxd::streaming(&b_config).await;
    let (committed, _) = read_committed(broker, &topic, 4, Duration::from_secs(30)).await;
    assert_eq!(committed.len(), 4, "B:\n{}", b.log());

    // A's commit comes due: refused as fenced, and A starts over with a new producer.
    assert!(
        a.wait_for_log("this instance was fenced", Duration::from_secs(40))
            .await,
        "the zombie's commit was not fenced:\n{}",
        a.log()
    );
    // Once the partition heals, A stands by: B holds the slot.
    proxy.thaw();
    assert!(
        a.wait_for_log("standing by", Duration::from_secs(60)).await,
        "{}",
        a.log()
    );
    assert!(a.is_running(), "{}", a.log());

    // Every event once for read_committed consumers, B goes on, and when B stops A takes over.
    let more = insert(&client, &aggregatetype, 2).await;
    let (committed, _) = read_committed(broker, &topic, 6, Duration::from_secs(30)).await;
    assert_eq!(committed.len(), 6, "B:\n{}", b.log());
    b.terminate(Duration::from_secs(30));
    assert!(
        streams_again(&a, Duration::from_secs(30)).await,
        "A did not take over from B:\n{}",
        a.log()
    );
    let last = insert(&client, &aggregatetype, 2).await;
    let (committed, aborted) = read_committed(broker, &topic, 9, Duration::from_secs(40)).await;
    let got = ids_of(&committed);
    let unique_ids: HashSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), unique_ids.len()),
        (8, 8),
        "each event once (aborted records in the log: {aborted})\nA:\n{}",
        a.log()
    );
    assert!(ids
        .iter()
        .chain(&more)
        .chain(&last)
        .all(|id| unique_ids.contains(id)));
    eprintln!("zombie fenced, stood by and took over; {aborted} records of its aborted transaction stay in the log, unseen by read_committed consumers");
}
