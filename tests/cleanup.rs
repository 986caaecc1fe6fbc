//! End-to-end tests of `[cleanup]`: a real Postgres, a real Kafka broker and the `outboxd`
//! binary. An application that never deletes keeps a bounded outbox; no row goes before Kafka
//! acknowledged its event (broker held away by the test proxy); SIGKILLs during the cleanup lose
//! no event.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::{consume_topics, unique, wait_until, Broker, Outboxd, PgCluster, ProxiedBroker};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";

/// The basic config with `[cleanup]` (`cleanup` = its keys) and an HTTP listener on `http_port`.
fn config(pg: &PgCluster, bootstrap: &str, cleanup: &str, http_port: u16) -> String {
    format!(
        "{}\n[cleanup]\nenabled = true\n{cleanup}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap)
    )
}

/// A test's database, its aggregate type (`<name><unique>`, the topic created with `partitions`)
/// and outboxd streaming with the `[cleanup]` keys `cleanup`.
struct Setup {
    broker: &'static Broker,
    pg: PgCluster,
    client: tokio_postgres::Client,
    aggregatetype: String,
    topic: String,
    port: u16,
    outboxd: Outboxd,
}

async fn start(name: &str, partitions: i32, cleanup: &str) -> Setup {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("{name}{}", unique("c"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, partitions).await;
    let port = support::free_port();
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), cleanup, port)).await;
    Setup {
        broker,
        pg,
        client,
        aggregatetype,
        topic,
        port,
        outboxd,
    }
}

/// Whether the outbox table empties within `secs` seconds.
async fn emptied(client: &tokio_postgres::Client, secs: u64) -> bool {
    wait_until(Duration::from_secs(secs), || async {
        rows(client).await == 0
    })
    .await
}

async fn rows(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM public.outbox", &[])
        .await
        .unwrap()
        .get(0)
}

/// Inserts `txns` transactions of `per_txn` rows of `aggregatetype`; returns their ids.
async fn insert(
    client: &tokio_postgres::Client,
    aggregatetype: &str,
    txns: usize,
    per_txn: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..txns {
        let rows = client
            .query(
                "INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) \
                 SELECT gen_random_uuid(), $1, 'a' || g, 'E', jsonb_build_object('n', g) \
                 FROM generate_series(1, $2::int) g RETURNING id::text",
                &[&aggregatetype, &(per_txn as i32)],
            )
            .await
            .unwrap();
        ids.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    ids
}

/// The distinct event ids on `topic` once `expected` distinct ones arrived (duplicates after a
/// crash are read past), or what arrived when `secs` passed.
async fn event_ids(bootstrap: &str, topic: &str, expected: usize, secs: u64) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut want = expected;
    loop {
        let (b, t) = (bootstrap.to_string(), topic.to_string());
        let left = deadline.saturating_duration_since(Instant::now());
        let records = tokio::task::spawn_blocking(move || {
            consume_topics(&b, &[t.as_str()], want, left.max(Duration::from_secs(1)))
        })
        .await
        .unwrap();
        let ids: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
        if ids.len() >= expected || Instant::now() >= deadline || records.len() < want {
            return ids;
        }
        // As many records again as distinct ids are missing.
        want = records.len() + (expected - ids.len());
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

async fn metrics(port: u16) -> String {
    support::outboxd::http_get(port, "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_that_is_never_deleted_from_stays_bounded_while_every_event_arrives() {
    let Setup {
        broker,
        pg,
        client,
        aggregatetype,
        topic,
        port,
        outboxd,
    } = start(
        "Bounded",
        4,
        "interval_ms = 200\nbatch_size = 500\nmax_rows_per_second = 50000\n",
    )
    .await;

    // The application inserts 20 000 rows (400 transactions of 50) and never deletes one.
    const TXNS: usize = 400;
    const PER_TXN: usize = 50;
    let writer = {
        let c = pg.client().await;
        let a = aggregatetype.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ids = Vec::new();
            for _ in 0..TXNS {
                ids.extend(insert(&c, &a, 1, PER_TXN).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ids, started.elapsed())
        })
    };
    let mut max_rows = 0;
    let mut samples = 0;
    while !writer.is_finished() {
        max_rows = max_rows.max(rows(&client).await);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ids, took) = writer.await.unwrap();
    let total = ids.len();
    assert_eq!(total, TXNS * PER_TXN);
    let rate = total as f64 / took.as_secs_f64();
    let drained = Instant::now();
    assert!(
        emptied(&client, 60).await,
        "the table kept {} rows:\n{}",
        rows(&client).await,
        outboxd.log()
    );
    let drain = drained.elapsed();
    eprintln!(
        "bounded outbox: {total} rows inserted in {took:?} ({rate:.0} rows/s), at most {max_rows} in the table ({samples} samples), empty {drain:?} after the last insert"
    );
    // Bounded: a few rounds' worth of inserts, far below what the application wrote.
    assert!(
        max_rows < (total as i64) / 4,
        "the table grew to {max_rows} of {total} rows"
    );
    let arrived = event_ids(broker.bootstrap(), &topic, total, 60).await;
    let expected: HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        expected.difference(&arrived).count(),
        0,
        "events missing in Kafka"
    );
    let m = metrics(port).await;
    assert_eq!(
        metric(&m, "outboxd_cleanup_rows_deleted_total"),
        total as f64,
        "{m}"
    );
    assert_eq!(metric(&m, "outboxd_cleanup_errors_total"), 0.0, "{m}");
    // The cleanup's DELETEs reach outboxd as changes it ignores, and do not hold the slot.
    assert!(
        metric(&m, "outboxd_changes_ignored_total{operation=\"delete\"") >= total as f64,
        "{m}"
    );
    let wal = support::current_wal_lsn(&client).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            support::slot_confirmed_lsn(&client, SLOT).await.unwrap() >= wal
        })
        .await,
        "the slot stayed behind the deletes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_deleted_at_no_more_than_max_rows_per_second() {
    let Setup {
        broker,
        pg: _pg,
        client,
        aggregatetype,
        topic,
        port: _,
        outboxd: _outboxd,
    } = start(
        "Backlog",
        4,
        "interval_ms = 100\nbatch_size = 200\nmax_rows_per_second = 2000\n",
    )
    .await;
    // 12 000 rows at once (6 transactions): a backlog for the cleanup. The rate limit's logic is
    // tested with a controlled clock (`cleanup::tests::pacing_*`); end to end, only a bound that
    // noise cannot cross: every delete happens between `before` and the first sample that finds
    // the table empty, and the pacer (`cleanup::Pacer`) lets at most `max_rows_per_second` per
    // second go plus three batches (the batch it starts with and the credit of an idle spell),
    // so that span is at least (12 000 - 3 × 200) / 2 000 = 5.7 s however fast or slow the
    // machine is; the bound below leaves one more batch for rounding. A slower machine only
    // makes it longer.
    let before = Instant::now();
    let ids = insert(&client, &aggregatetype, 6, 2000).await;
    let drained = wait_until(Duration::from_secs(300), || async {
        rows(&client).await == 0
    })
    .await;
    let took = before.elapsed();
    assert!(drained, "the backlog was not deleted within 300 s");
    eprintln!(
        "backlog: 12000 rows inserted and deleted in {took:?} ({:.0} rows/s; max_rows_per_second = 2000)",
        12_000.0 / took.as_secs_f64()
    );
    let floor = Duration::from_secs_f64((12_000.0 - 4.0 * 200.0) / 2000.0);
    assert!(
        took >= floor,
        "12000 rows deleted in {took:?}: faster than max_rows_per_second = 2000 allows ({floor:?})"
    );
    let arrived = event_ids(broker.bootstrap(), &topic, ids.len(), 60).await;
    assert_eq!(arrived.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_is_deleted_before_kafka_acknowledges_its_event() {
    let Some(broker) =
        ProxiedBroker::start_or_skip("no_row_is_deleted_before_kafka_acknowledges_its_event")
    else {
        return;
    };
    let (pg, client) = support::database().await;
    // Every deleted row is logged, with when it went, to be compared with Kafka afterwards.
    client
        .batch_execute(
            "CREATE TABLE deleted (id uuid, at timestamptz DEFAULT clock_timestamp()); \
             CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN INSERT INTO deleted (id) VALUES (OLD.id); RETURN OLD; END $$; \
             CREATE TRIGGER log_delete AFTER DELETE ON public.outbox FOR EACH ROW EXECUTE FUNCTION log_delete();",
        )
        .await
        .unwrap();
    let aggregatetype = format!("Held{}", unique("c"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let port = support::free_port();
    let outboxd = Outboxd::streaming(&config(
        &pg,
        broker.bootstrap(),
        "interval_ms = 100\nbatch_size = 50\n",
        port,
    ))
    .await;

    let before = insert(&client, &aggregatetype, 10, 10).await;
    assert!(
        emptied(&client, 30).await,
        "the first 100 rows were not deleted:\n{}",
        outboxd.log()
    );

    broker.pause();
    let during = insert(&client, &aggregatetype, 20, 10).await;
    // Kafka acknowledges nothing now: for several seconds (dozens of rounds), no row may go.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            rows(&client).await,
            200,
            "a row was deleted while Kafka could not acknowledge it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resumed_at: std::time::SystemTime = client
        .query_one("SELECT clock_timestamp()", &[])
        .await
        .unwrap()
        .get(0);
    broker.resume();
    assert!(
        emptied(&client, 60).await,
        "rows were not deleted after the broker came back:\n{}",
        outboxd.log()
    );
    let arrived = event_ids(broker.bootstrap(), &topic, 300, 60).await;
    for id in before.iter().chain(&during) {
        assert!(arrived.contains(id), "event {id} is not in Kafka");
    }
    // Every row written during the outage went only after the broker was back.
    let early: i64 = client
        .query_one(
            "SELECT count(*) FROM deleted WHERE id = ANY($1::text[]::uuid[]) AND at < $2",
            &[&during, &resumed_at],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(early, 0, "rows deleted before the broker returned");
    let m = metrics(port).await;
    assert_eq!(
        metric(&m, "outboxd_cleanup_rows_deleted_total"),
        300.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_the_cleanup_loses_no_event() {
    let Setup {
        broker,
        pg,
        client,
        aggregatetype,
        topic,
        port,
        mut outboxd,
    } = start(
        "Killed",
        4,
        "interval_ms = 50\nbatch_size = 20\nmax_rows_per_second = 2000\n",
    )
    .await;

    let writer = {
        let c = pg.client().await;
        let a = aggregatetype.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..150 {
                ids.extend(insert(&c, &a, 1, 20).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        })
    };
    // SIGKILL while rows are being inserted, published and deleted, then start again.
    let mut kills = 0;
    let mut deleted_before_kill = Vec::new();
    while !writer.is_finished() && kills < 4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        deleted_before_kill.push(metric(
            &metrics(port).await,
            "outboxd_cleanup_rows_deleted_total",
        ));
        outboxd.kill9();
        kills += 1;
        outboxd.restart_with(&[], &[("RUST_LOG", "info,outboxd=debug")]);
        assert!(
            wait_until(Duration::from_secs(60), || async {
                outboxd.log().matches("streaming slot=").count() > kills
            })
            .await,
            "outboxd did not stream again:\n{}",
            outboxd.log()
        );
    }
    let ids = writer.await.unwrap();
    assert!(kills >= 2, "only {kills} kills before the writer finished");
    assert!(
        deleted_before_kill.iter().any(|d| *d > 0.0),
        "the cleanup never ran before a kill: {deleted_before_kill:?}"
    );
    assert!(
        emptied(&client, 60).await,
        "the table kept {} rows:\n{}",
        rows(&client).await,
        outboxd.log()
    );
    let arrived = event_ids(broker.bootstrap(), &topic, ids.len(), 60).await;
    let missing: Vec<&String> = ids.iter().filter(|id| !arrived.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events lost after {kills} kills, e.g. {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(3)]
    );
    eprintln!(
        "sigkill during cleanup: {} rows, {kills} kills (deleted counter before each: {deleted_before_kill:?}), none lost",
        ids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_stops_outboxd_naming_the_fix() {
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let client = pg.client().await;
    client
        .batch_execute(&support::OUTBOX_DDL.replace(" PRIMARY KEY", ""))
        .await
        .unwrap();
    let mut outboxd = Outboxd::start(&config(&pg, broker.bootstrap(), "", support::free_port()));
    let status = outboxd.wait_exit(Duration::from_secs(60)).await;
    let log = outboxd.log();
    assert!(
        log.contains("has no primary key") && log.contains("cleanup.enabled = false"),
        "{log}"
    );
    assert!(!status.success());
}
