//! End-to-end tests of partitioned outbox tables (declarative partitioning by range on a
//! timestamp): events are published as the parent table, also from partitions created while
//! streaming; an existing publication without `publish_via_partition_root` is refused with the
//! fix. A real Postgres, a real Kafka broker and the `outboxd` binary.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{consume_topics, unique, wait_until, Broker, Outboxd, PgCluster};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";

/// `public.outbox` partitioned by range on `created_at` (the primary key must include it), with
/// one partition for January 2024.
const PARTITIONED_DDL: &str = "CREATE TABLE public.outbox (\
    id uuid NOT NULL, \
    aggregatetype varchar(255) NOT NULL, \
    aggregateid varchar(255) NOT NULL, \
    type varchar(255) NOT NULL, \
    payload jsonb, \
    created_at timestamptz NOT NULL, \
    PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at); \
    CREATE TABLE public.outbox_2024_01 PARTITION OF public.outbox \
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');";

async fn database() -> (PgCluster, tokio_postgres::Client) {
    let pg = PgCluster::start();
    let client = pg.client().await;
    client.batch_execute(PARTITIONED_DDL).await.unwrap();
    (pg, client)
}

fn config(pg: &PgCluster, bootstrap: &str, extra: &str) -> String {
    format!(
        "{}{extra}",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap)
    )
}

/// Inserts `n` rows dated `day` (`YYYY-MM-DD`); returns their ids.
async fn insert(
    client: &tokio_postgres::Client,
    aggregatetype: &str,
    day: &str,
    n: i32,
) -> Vec<String> {
    client
        .query(
            "INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload, created_at) \
             SELECT gen_random_uuid(), $1, 'a' || g, 'E', jsonb_build_object('n', g), $2::text::timestamptz + g * interval '1 second' \
             FROM generate_series(1, $3::int) g RETURNING id::text",
            &[&aggregatetype, &day, &n],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn event_ids(bootstrap: &str, topic: &str, expected: usize) -> HashSet<String> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        consume_topics(&b, &[t.as_str()], expected, Duration::from_secs(60))
            .iter()
            .filter_map(|r| r.header_str("id"))
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_outbox_is_published_as_its_parent_also_from_partitions_created_while_streaming(
) {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    let aggregatetype = format!("Part{}", unique("p"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    // With [cleanup] too: its DELETEs on the parent reach the right partitions.
    let extra = "\n[cleanup]\nenabled = true\ninterval_ms = 200\n";
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), extra)).await;
    let via_root: bool = client
        .query_one(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&PUBLICATION],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        via_root,
        "the publication was created without publish_via_partition_root"
    );

    let mut ids = insert(&client, &aggregatetype, "2024-01-10", 50).await;
    assert_eq!(event_ids(broker.bootstrap(), &topic, 50).await.len(), 50);

    // New partitions while outboxd streams, and rows in them: no restart, nothing to alter.
    client
        .batch_execute(
            "CREATE TABLE public.outbox_2024_02 PARTITION OF public.outbox \
             FOR VALUES FROM ('2024-02-01') TO ('2024-03-01'); \
             CREATE TABLE public.outbox_default PARTITION OF public.outbox DEFAULT;",
        )
        .await
        .unwrap();
    ids.extend(insert(&client, &aggregatetype, "2024-02-10", 50).await);
    ids.extend(insert(&client, &aggregatetype, "2030-06-01", 25).await);
    ids.extend(insert(&client, &aggregatetype, "2024-01-20", 25).await);
    let arrived = event_ids(broker.bootstrap(), &topic, ids.len()).await;
    let missing: Vec<&String> = ids.iter().filter(|id| !arrived.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events missing:\n{}",
        missing.len(),
        ids.len(),
        outboxd.log()
    );
    assert_eq!(
        outboxd.log().matches("streaming slot=").count(),
        1,
        "outboxd restarted"
    );
    // Routed as the parent: the records' schema names and topic come from public.outbox.
    let per_partition: Vec<(String, i64)> = client
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM public.outbox GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // The cleanup empties every partition once the events are confirmed.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            let n: i64 = client
                .query_one("SELECT count(*) FROM public.outbox", &[])
                .await
                .unwrap()
                .get(0);
            n == 0
        })
        .await,
        "rows left after cleanup (before: {per_partition:?}):\n{}",
        outboxd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_without_publish_via_partition_root_is_refused_with_the_fix() {
    let broker = Broker::shared();
    let (pg, client) = database().await;
    client
        .batch_execute(&format!(
            "CREATE PUBLICATION {PUBLICATION} FOR TABLE public.outbox"
        ))
        .await
        .unwrap();
    let config = config(&pg, broker.bootstrap(), "");
    let mut outboxd = Outboxd::start(&config);
    let status = outboxd.wait_exit(Duration::from_secs(60)).await;
    let log = outboxd.log();
    assert!(
        log.contains("ALTER PUBLICATION \"outboxd\" SET (publish_via_partition_root = true);"),
        "{log}"
    );
    assert!(!status.success());
    // `outboxd check` says the same.
    let (status, out) = support::outboxd::check(&config, Duration::from_secs(60));
    assert!(
        out.contains("publish_via_partition_root"),
        "check: {status:?}\n{out}"
    );

    // The printed fix works.
    client
        .batch_execute("ALTER PUBLICATION outboxd SET (publish_via_partition_root = true)")
        .await
        .unwrap();
    let aggregatetype = format!("Fixed{}", unique("p"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let _outboxd = Outboxd::streaming(&config).await;
    let ids = insert(&client, &aggregatetype, "2024-01-05", 10).await;
    let arrived = event_ids(broker.bootstrap(), &topic, 10).await;
    assert!(ids.iter().all(|id| arrived.contains(id)), "{arrived:?}");

    // A partition named as the outbox is refused: its changes arrive as the parent.
    let leaf = config.replace("public.outbox\"]", "public.outbox_2024_01\"]");
    let (_, out) = support::outboxd::check(&leaf, Duration::from_secs(60));
    assert!(out.contains("list public.outbox in source.tables"), "{out}");
}
