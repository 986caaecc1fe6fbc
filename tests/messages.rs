//! Logical decoding messages as outbox events (`source.message_prefixes`), end to end: a real
//! Postgres, a real broker and the `outboxd` binary. Transactional messages of a listed prefix are
//! routed exactly like rows, in commit order among them; rolled-back, non-transactional and
//! other-prefix messages are not published (the latter two counted); content that is no outbox
//! row stops the relay naming the prefix, or goes to the dead-letter topic.

mod support;

use std::time::Duration;

use support::{
    current_wal_lsn, slot_confirmed_lsn, unique, wait_until, Broker, Outboxd, PgCluster,
};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";

/// The basic configuration with `message_prefixes = ["outbox"]`, then `extra`.
fn config(pg: &PgCluster, bootstrap: &str, extra: &str) -> String {
    let base = support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap);
    let with_prefixes = base.replacen(
        "tables = [\"public.outbox\"]\n",
        "tables = [\"public.outbox\"]\nmessage_prefixes = [\"outbox\"]\n",
        1,
    );
    assert_ne!(base, with_prefixes);
    format!("{with_prefixes}{extra}")
}

/// SQL emitting an outbox message; `payload` is the JSON text of the payload field.
fn emit(transactional: bool, prefix: &str, id: &str, aggregatetype: &str, payload: &str) -> String {
    let content = format!(
        r#"{{"id": "{id}", "aggregatetype": "{aggregatetype}", "aggregateid": "agg-1", "type": "FromMessage", "payload": {payload}}}"#
    );
    format!("SELECT pg_logical_emit_message({transactional}, '{prefix}', '{content}');")
}

/// SQL inserting an outbox row.
fn insert(id: &str, aggregatetype: &str, payload: &str) -> String {
    format!(
        "INSERT INTO public.outbox VALUES ('{id}', '{aggregatetype}', 'agg-1', 'FromRow', '{payload}');"
    )
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_messages_are_routed_like_rows_in_commit_order_and_the_rest_is_counted() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Msg{}", unique("m"));
    let topic = format!("outbox.event.{aggregatetype}");
    // One partition: the order of all records is the commit order.
    broker.create_topic(&topic, 1).await;
    let port = support::free_port();
    let cfg = config(
        &pg,
        broker.bootstrap(),
        &format!("[http]\naddr = \"127.0.0.1:{port}\"\n"),
    )
    .replacen(
        "[router]\n",
        "[router]\n\"table.fields.additional.placement\" = \"type:header:eventType\"\n",
        1,
    );
    let outboxd = Outboxd::streaming(&cfg).await;
    let a = &aggregatetype;

    // 1: a row and a message in one transaction.
    client
        .batch_execute(&format!(
            "BEGIN; {} {} COMMIT;",
            insert(&id(0), a, r#"{"seq": 0}"#),
            emit(
                true,
                "outbox",
                &id(1),
                a,
                r#"{"seq": 1, "via": ["message"]}"#
            )
        ))
        .await
        .unwrap();
    // A rolled-back message, a non-transactional one, one of another prefix: none is published.
    client
        .batch_execute(&format!(
            "BEGIN; {} ROLLBACK;",
            emit(true, "outbox", &id(90), a, r#"{"seq": 90}"#)
        ))
        .await
        .unwrap();
    client
        .batch_execute(&emit(false, "outbox", &id(91), a, r#"{"seq": 91}"#))
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "BEGIN; {} COMMIT;",
            emit(true, "audit", &id(92), a, r#"{"seq": 92}"#)
        ))
        .await
        .unwrap();
    // 2: a payload given as a string (its text is the value, as a text column's).
    client
        .batch_execute(&emit(true, "outbox", &id(3), a, r#""{\"seq\": 3}""#))
        .await
        .unwrap();
    // 3: a message, then a row, in one transaction (implicit: one simple-query string).
    client
        .batch_execute(&format!(
            "{} {}",
            emit(true, "outbox", &id(4), a, r#"{"seq":4}"#),
            insert(&id(5), a, r#"{"seq": 5}"#)
        ))
        .await
        .unwrap();
    let last_commit = current_wal_lsn(&client).await;

    // Ask for one more than expected: a rolled-back or skipped message would show up.
    let records =
        support::consume_topics_async(broker.bootstrap(), &[&topic], 6, Duration::from_secs(20))
            .await;
    let log = outboxd.log();
    let ids: Vec<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    assert_eq!(
        ids,
        [id(0), id(1), id(3), id(4), id(5)],
        "outboxd log:\n{log}"
    );
    // Values: rows as Postgres prints jsonb, messages as written.
    let values: Vec<String> = records.iter().map(|r| r.value_str().unwrap()).collect();
    assert_eq!(
        values,
        [
            r#"{"seq": 0}"#,
            r#"{"seq": 1, "via": ["message"]}"#,
            r#"{"seq": 3}"#,
            r#"{"seq":4}"#,
            r#"{"seq": 5}"#
        ]
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.topic, topic);
        assert_eq!(r.key_str().as_deref(), Some("agg-1"));
        let from_row = i == 0 || i == 4;
        assert_eq!(
            r.header_str("eventType").as_deref(),
            Some(if from_row { "FromRow" } else { "FromMessage" }),
            "record {i}"
        );
        assert_eq!(
            r.headers
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["id", "eventType"],
            "record {i}"
        );
        let ts = r.timestamp_ms.expect("record timestamp");
        assert!(
            (now - 120_000..=now).contains(&ts),
            "record {i}: timestamp {ts} is not the commit time"
        );
    }
    // The row and the message of one transaction carry the same commit time.
    assert_eq!(records[0].timestamp_ms, records[1].timestamp_ms);
    assert_eq!(records[3].timestamp_ms, records[4].timestamp_ms);

    // Never skipped silently: a warning and a metric for the non-transactional message, a metric
    // for the other prefix.
    assert!(
        log.contains("non-transactional logical decoding message skipped"),
        "{log}"
    );
    let metrics = support::outboxd::http_get(port, "/metrics").await;
    let counter = |labels: &[&str]| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("outboxd_changes_ignored_total{")
                    && labels.iter().all(|x| l.contains(x))
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(
        counter(&[
            "operation=\"non_transactional_message\"",
            "table=\"message:outbox\""
        ])
        .as_deref(),
        Some("1"),
        "{metrics}"
    );
    assert_eq!(
        counter(&["operation=\"other_prefix\"", "table=\"message\""]).as_deref(),
        Some("1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("outboxd_events_read_total{table=\"message:outbox\"} 3")),
        "{metrics}"
    );
    // And the slot moves past it all.
    let confirmed = wait_until(Duration::from_secs(20), || async {
        slot_confirmed_lsn(&client, SLOT).await.unwrap_or(0) >= last_commit
    })
    .await;
    assert!(confirmed, "the slot was not confirmed past the last commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_no_outbox_row_stops_the_relay_naming_its_prefix_without_confirming_it() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let cfg = config(&pg, broker.bootstrap(), "");
    // The preflight checks the server can send messages.
    let (status, out) = support::outboxd::check(&cfg, Duration::from_secs(60));
    assert!(status.unwrap().success(), "{out}");
    assert!(
        out.contains("logical decoding messages") && out.contains("prefixes outbox"),
        "{out}"
    );
    let mut outboxd = Outboxd::streaming(&cfg).await;
    let lsn_before = current_wal_lsn(&client).await;
    client
        .batch_execute("SELECT pg_logical_emit_message(true, 'outbox', '<not json/>')")
        .await
        .unwrap();
    let status = outboxd.wait_exit(Duration::from_secs(30)).await;
    let log = outboxd.log();
    assert!(!status.success());
    assert!(
        log.contains("logical decoding message with prefix \"outbox\" at ")
            && log.contains("not JSON"),
        "the error should name the prefix and the problem:\n{log}"
    );
    let confirmed = slot_confirmed_lsn(&client, SLOT).await.unwrap();
    assert!(
        confirmed <= lsn_before,
        "the bad message's transaction was confirmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_errors_tolerance_all_a_bad_message_goes_to_the_dead_letter_topic() {
    let broker = Broker::shared();
    let (pg, client) = support::database().await;
    let aggregatetype = format!("Dlq{}", unique("m"));
    let topic = format!("outbox.event.{aggregatetype}");
    let dlq = format!("dlq-{}", unique("m"));
    broker.create_topic(&topic, 1).await;
    broker.create_topic(&dlq, 1).await;
    let extra = format!(
        "[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n"
    );
    let outboxd = Outboxd::streaming(&config(&pg, broker.bootstrap(), &extra)).await;
    let a = &aggregatetype;
    // A message without aggregateid between two good ones.
    let missing_key = format!(
        r#"SELECT pg_logical_emit_message(true, 'outbox', '{{"id": "{}", "aggregatetype": "{a}", "payload": {{"seq": 1}}}}');"#,
        id(1)
    );
    client
        .batch_execute(&format!(
            "BEGIN; {} {missing_key} {} COMMIT;",
            emit(true, "outbox", &id(0), a, r#"{"seq": 0}"#),
            emit(true, "outbox", &id(2), a, r#"{"seq": 2}"#)
        ))
        .await
        .unwrap();
    let last_commit = current_wal_lsn(&client).await;
    let records =
        support::consume_topics_async(broker.bootstrap(), &[&topic], 3, Duration::from_secs(15))
            .await;
    let ids: Vec<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    assert_eq!(ids, [id(0), id(2)], "outboxd log:\n{}", outboxd.log());
    let dead =
        support::consume_topics_async(broker.bootstrap(), &[&dlq], 2, Duration::from_secs(15))
            .await;
    assert_eq!(dead.len(), 1, "outboxd log:\n{}", outboxd.log());
    assert_eq!(dead[0].header_str("id"), Some(id(1)));
    assert_eq!(dead[0].value_str().as_deref(), Some(r#"{"seq": 1}"#));
    assert_eq!(
        dead[0].header_str("outboxd.source.table").as_deref(),
        Some("message:outbox")
    );
    let problem = dead[0]
        .header_str("__connect.errors.exception.message")
        .unwrap_or_default();
    assert!(problem.contains("no field \"aggregateid\""), "{problem}");
    let confirmed = wait_until(Duration::from_secs(20), || async {
        slot_confirmed_lsn(&client, SLOT).await.unwrap_or(0) >= last_commit
    })
    .await;
    assert!(
        confirmed,
        "the slot was not confirmed past the poison message"
    );
}
