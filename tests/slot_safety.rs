//! Slot safety in at-least-once mode (the default): the published position is recorded in the
//! offsets topic (`[offsets]`), the slot is never confirmed past it, and a slot found ahead of it
//! at start stops outboxd instead of losing events silently.
//!
//! - the slot moved by someone else (`pg_replication_slot_advance`) while outboxd was stopped:
//!   outboxd stops naming both positions and `offsets.accept_slot_position`; accepting the printed
//!   position resumes from there;
//! - the slot dropped by hand: outboxd does not create it again (a new slot would skip what was
//!   committed since), it stops naming the recorded position (`position::SlotMissing`, the stop
//!   after a failover to an unsynchronized standby too); `outboxd slot drop` then forgets the
//!   position, and the new slot starts cleanly.

mod support;

use std::time::Duration;

use support::{consume_async, unique, Broker, Outboxd, PgCluster};

fn config(pg: &PgCluster, slot: &str, bootstrap: &str, offsets: &str) -> String {
    format!(
        "{}\n[offsets]\ntopic = \"{offsets}\"\n",
        support::basic_config(&pg.url("postgres"), slot, slot, bootstrap)
    )
}

async fn insert_events(client: &tokio_postgres::Client, aggregatetype: &str, txns: usize) {
    for t in 0..txns {
        client
            .batch_execute(&format!(
                "INSERT INTO public.outbox VALUES (gen_random_uuid(), '{aggregatetype}', 'a{t}', 'E', '{{\"t\": {t}}}')"
            ))
            .await
            .unwrap();
    }
}

/// Reads `topic` until `expected` records came (or 30 s), then 2 s more for any extra.
async fn count(bootstrap: &str, topic: &str, expected: usize) -> usize {
    let first = consume_async(bootstrap, topic, expected, Duration::from_secs(30)).await;
    if first.len() < expected {
        return first.len();
    }
    consume_async(bootstrap, topic, expected + 1, Duration::from_secs(2))
        .await
        .len()
}

/// The highest position recorded in the offsets topic (any key: the topic is the test's own).
async fn recorded_position(bootstrap: &str, offsets: &str) -> Option<u64> {
    let records = consume_async(bootstrap, offsets, usize::MAX, Duration::from_secs(5)).await;
    records
        .iter()
        .filter_map(|r| r.value_json())
        .filter_map(|v| v["lsn"].as_str().and_then(support::parse_lsn))
        .max()
}

/// Waits for outboxd to exit; returns (whether it failed, its log).
async fn wait_exit(outboxd: &mut Outboxd) -> (bool, String) {
    let status = outboxd.wait_exit(Duration::from_secs(60)).await;
    (!status.success(), outboxd.log())
}

/// A fresh database and slot through which outboxd published two events and stopped (SIGTERM).
struct Published {
    pg: PgCluster,
    client: tokio_postgres::Client,
    slot: String,
    aggregatetype: String,
    topic: String,
    offsets: String,
    cfg: String,
    outboxd: Outboxd,
}

async fn publish_two_and_stop(broker: &Broker, name: &str) -> Published {
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let slot = unique(&name.to_lowercase());
    let aggregatetype = unique(name);
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let offsets = unique("offsets");
    let cfg = config(&pg, &slot, broker.bootstrap(), &offsets);
    let mut outboxd = Outboxd::start(&cfg);
    for line in ["positions: the slot is confirmed up to", "streaming"] {
        assert!(
            outboxd.wait_for_log(line, Duration::from_secs(60)).await,
            "{}",
            outboxd.log()
        );
    }
    insert_events(&client, &aggregatetype, 2).await;
    assert_eq!(count(broker.bootstrap(), &topic, 2).await, 2);
    assert!(outboxd
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
    Published {
        pg,
        client,
        slot,
        aggregatetype,
        topic,
        offsets,
        cfg,
        outboxd,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_moved_by_someone_else_stops_outboxd_until_its_position_is_accepted() {
    let broker = Broker::shared();
    let Published {
        pg: _pg,
        client,
        slot,
        aggregatetype,
        topic,
        offsets,
        cfg,
        mut outboxd,
    } = publish_two_and_stop(broker, "Moved").await;

    // The invariant: the slot is confirmed (after the shutdown, up to the last event) but never
    // past the position recorded in Kafka.
    let confirmed = support::slot_confirmed_lsn(&client, &slot).await.unwrap();
    let recorded = recorded_position(broker.bootstrap(), &offsets).await;
    assert!(
        recorded.is_some_and(|r| r >= confirmed),
        "slot confirmed at {confirmed:X}, recorded {recorded:X?}"
    );

    // Events outboxd never saw, then someone moves the slot past them.
    insert_events(&client, &aggregatetype, 3).await;
    let row = client
        .query_one(
            "SELECT end_lsn::text FROM pg_replication_slot_advance($1, pg_current_wal_lsn())",
            &[&slot],
        )
        .await
        .unwrap();
    let moved: String = row.get(0);
    outboxd.restart();
    let (failed, log) = wait_exit(&mut outboxd).await;
    assert!(failed, "outboxd should stop: {log}");
    assert!(
        log.contains(&format!(
            "its confirmed_flush_lsn {moved} is ahead of the position outboxd last published"
        )) && log.contains(&format!("offsets.accept_slot_position = \"{moved}\"")),
        "{log}"
    );
    assert_eq!(
        count(broker.bootstrap(), &topic, 2).await,
        2,
        "nothing published meanwhile"
    );

    // Accepting the position resumes from the slot: the three skipped events stay unpublished
    // (the operator's decision), new ones flow.
    let accepted = format!("{cfg}accept_slot_position = \"{moved}\"\n");
    let outboxd = Outboxd::start(&accepted);
    assert!(
        outboxd
            .wait_for_log("accepted the slot's position", Duration::from_secs(60))
            .await,
        "{}",
        outboxd.log()
    );
    insert_events(&client, &aggregatetype, 1).await;
    assert_eq!(
        count(broker.bootstrap(), &topic, 3).await,
        3,
        "{}",
        outboxd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_dropped_by_hand_stops_outboxd_and_slot_drop_starts_over_cleanly() {
    let broker = Broker::shared();
    let Published {
        pg: _pg,
        client,
        slot,
        aggregatetype,
        topic,
        cfg,
        mut outboxd,
        ..
    } = publish_two_and_stop(broker, "Recreated").await;

    // Dropped by hand, with events committed after it that no slot holds any more: outboxd does
    // not create the slot again (a new one would skip them); it stops naming both positions.
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .unwrap();
    insert_events(&client, &aggregatetype, 1).await;
    outboxd.restart();
    let (failed, log) = wait_exit(&mut outboxd).await;
    assert!(failed, "outboxd should stop: {log}");
    assert!(
        log.contains(&format!("replication slot {slot} does not exist"))
            && log.contains("but outboxd published up to")
            && log.contains("outboxd slot drop"),
        "{log}"
    );
    let created: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0, "outboxd created the slot again");

    // `outboxd slot drop`, the slot already gone, forgets the position: the next start is a
    // first one.
    let path = outboxd.config_path().to_str().unwrap().to_string();
    let (status, out) = tokio::task::spawn_blocking(move || {
        support::outboxd::run_once(
            &["slot", "drop", "--config", &path, "--yes"],
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{out}");
    assert!(
        out.contains(&format!("replication slot {slot} does not exist"))
            && out.contains("forgot its recorded position"),
        "{out}"
    );
    let outboxd = Outboxd::start(&cfg);
    assert!(
        outboxd
            .wait_for_log(
                "positions: the slot is confirmed up to the position recorded in Kafka",
                Duration::from_secs(60)
            )
            .await,
        "{}",
        outboxd.log()
    );
    assert!(outboxd.log().contains("recorded=none"), "{}", outboxd.log());
    insert_events(&client, &aggregatetype, 1).await;
    assert_eq!(
        count(broker.bootstrap(), &topic, 3).await,
        3,
        "{}",
        outboxd.log()
    );
}
