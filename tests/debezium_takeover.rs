//! Taking over from a running Debezium, with the real thing: Debezium 3.6.1 (a Kafka Connect 4.3
//! standalone worker with the PostgreSQL connector and the Outbox EventRouter, through
//! `scripts/debezium.sh`) publishes under insert load, then a 20 000-row transaction; in the
//! middle of it Debezium is stopped (SIGTERM: Connect stops the task and commits its offsets to
//! its offset file, the last one inside the transaction: taken at one of its changes); outboxd starts
//! on the same connector JSON, slot and publication with `--worker-config` and
//! `--take-over-offsets`, and more load follows.
//!
//! Checked: every committed event is in Kafka; **no event twice** (outboxd skips what Debezium's
//! offset says it published: transactions committed before `lsn_commit`, and the changes up to
//! `lsn_proc` of the transaction after it; `debezium::offsets`); the order per aggregate; that both
//! published (Debezium's records carry its `__debezium.context.*` headers); and that their records
//! are the same bytes: key, value and `id` header as Connect's JsonConverter writes them, before
//! and after the switch. SKIPs without Debezium's jars (scripts/install-deps.sh).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::debezium::{self, Debezium};
use support::{consume_topics, Broker, Outboxd, PgCluster, Record};

const TEST: &str = "outboxd_takes_over_from_debezium_without_publishing_anything_twice";
const AGGREGATES: usize = 8;

/// Transactions of one to three rows over [`AGGREGATES`] aggregates until `stop`, ~150 events/s.
/// Ids count up from `first`. Returns every committed (id, aggregate id, seq).
async fn writer(
    url: String,
    aggregatetype: String,
    stop: Arc<AtomicBool>,
    first: u64,
) -> Vec<(String, String, i64)> {
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("writer connects");
    tokio::spawn(conn);
    let mut committed = Vec::new();
    let mut seqs: HashMap<String, i64> = HashMap::new();
    let mut n: u64 = first;
    // Each writer writes aggregates of its own (their seq start at 0 again).
    let suffix = match first / 1_000_000 {
        0 => String::new(),
        1 => "b".to_string(),
        w => format!("w{w}"),
    };
    while !stop.load(Ordering::SeqCst) {
        let rows = 1 + n % 3;
        let mut sql = String::from("BEGIN;");
        let mut batch = Vec::new();
        for _ in 0..rows {
            n += 1;
            let agg = format!("a{}{suffix}", (n * 7) % AGGREGATES as u64);
            let seq = seqs.get(&agg).copied().unwrap_or(0)
                + batch.iter().filter(|(a, _, _)| a == &agg).count() as i64;
            let id = format!("00000000-0000-4000-8000-{n:012}");
            sql.push_str(&format!(
                "INSERT INTO public.outbox VALUES ('{id}', '{aggregatetype}', '{agg}', 'E', '{{\"seq\": {seq}}}');"
            ));
            batch.push((agg, id, seq));
        }
        sql.push_str("COMMIT;");
        client.batch_execute(&sql).await.expect("writer commits");
        for (agg, id, seq) in batch {
            *seqs.entry(agg.clone()).or_insert(0) += 1;
            committed.push((id, agg, seq));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    committed
}

/// Connect's JsonConverter (schemas on, the worker's default) of the record of one row.
fn json_key(aggregateid: &str) -> Vec<u8> {
    format!(r#"{{"schema":{{"type":"string","optional":false}},"payload":"{aggregateid}"}}"#)
        .into_bytes()
}

fn json_value(payload: &str) -> Vec<u8> {
    format!(
        r#"{{"schema":{{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1}},"payload":{}}}"#,
        serde_json::to_string(payload).unwrap()
    )
    .into_bytes()
}

/// `scripts/debezium.sh` arguments for the tests' connector: slot `debezium`, publication
/// `dbz_publication`, `public.outbox`, topic prefix `shop`, offsets committed every second
/// (Connect's default is 60 s).
fn debezium_args(bootstrap: &str, pg_url: &str, worker: Worker) -> Vec<String> {
    [
        "--bootstrap",
        bootstrap,
        "--pg-url",
        pg_url,
        "--slot",
        "debezium",
        "--publication",
        "dbz_publication",
        "--table",
        "public.outbox",
        "--topic-prefix",
        "shop",
        "--name",
        "outbox-connector",
        "--heap",
        "384m",
        "--worker",
        "offset.flush.interval.ms=1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain((worker == Worker::Distributed).then(|| debezium::DISTRIBUTED.to_string()))
    .collect()
}

/// outboxd started on Debezium's connector (its REST JSON) and worker properties, with
/// `--take-over-offsets`.
fn outboxd_taking_over(dbz: &Debezium) -> Outboxd {
    let mut config = serde_json::Map::new();
    let mut name = String::new();
    for (k, v) in dbz.connector_config() {
        if k == "name" {
            name = v;
        } else {
            config.insert(k, serde_json::Value::String(v));
        }
    }
    let json = serde_json::json!({ "name": name, "config": config }).to_string();
    let worker = dbz.worker_properties().display().to_string();
    Outboxd::start_with(
        &json,
        &["--worker-config", &worker, "--take-over-offsets"],
        &[("RUST_LOG", "info,outboxd=debug")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outboxd_takes_over_from_debezium_without_publishing_anything_twice() {
    use outboxd::debezium::offsets::{is_key_of, parse_offset_file, parse_offset_value};
    if let Err(why) = debezium::available() {
        return support::skip(TEST, &why);
    }
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let broker = Broker::shared();
    let aggregatetype = format!("Takeover{}", support::unique("t"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let count = |at_least: usize| {
        let (b, t) = (broker.bootstrap().to_string(), topic.clone());
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(2));
                if r.len() >= at_least || Instant::now() > deadline {
                    return r;
                }
            }
        })
    };

    // Debezium, committing its offsets every second (Connect's default is 60 s).
    let args = debezium_args(broker.bootstrap(), &pg.url("postgres"), Worker::Standalone);
    let mut dbz = Debezium::spawn(&args);
    let started = dbz
        .wait_running(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("Debezium did not start: {e}"));
    eprintln!("takeover: Debezium's task ran {started:?} after launch");

    let stop = Arc::new(AtomicBool::new(false));
    let writer1 = tokio::spawn(writer(
        pg.url("postgres"),
        aggregatetype.clone(),
        stop.clone(),
        0,
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    let mut committed = writer1.await.unwrap();

    // One large transaction, and Debezium stopped in the middle of publishing it.
    let big = 20_000u64;
    let mut sql = String::from("BEGIN;");
    for seq in 0..big as i64 {
        let id = format!("00000000-0000-4000-9000-{seq:012}");
        sql.push_str(&format!(
            "INSERT INTO public.outbox VALUES ('{id}', '{aggregatetype}', 'big', 'E', '{{\"seq\": {seq}}}');"
        ));
        committed.push((id, "big".to_string(), seq));
    }
    sql.push_str("COMMIT;");
    client.batch_execute(&sql).await.unwrap();
    let midway = count(committed.len() - big as usize + 5_000)
        .await
        .unwrap()
        .len();
    let stopped = dbz.stop(Duration::from_secs(60));
    eprintln!("takeover: Debezium stopped ({stopped:?}) with {midway}+ records published");
    let offsets = std::fs::read(dbz.dir().join("offsets")).expect("Debezium's offset file");
    let offset = parse_offset_file(&offsets)
        .unwrap()
        .iter()
        .find(|(k, _)| is_key_of(k, "outbox-connector", "shop"))
        .and_then(|(_, v)| parse_offset_value(v.as_deref()).unwrap())
        .expect("Debezium's offset");
    let slot = support::slot_confirmed_lsn(&client, "debezium")
        .await
        .unwrap();
    eprintln!(
        "takeover: Debezium's offset: lsn_commit {}, lsn_proc {}, txId {:?}, taken at {:?}; its slot confirmed at {}",
        offset.lsn_commit,
        offset.lsn_proc,
        offset.tx_id,
        offset.at,
        outboxd::lsn::Lsn(slot)
    );

    // outboxd takes over the connector, its slot and its offset; more load follows.
    let outboxd = outboxd_taking_over(&dbz);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(60))
            .await,
        "{}",
        outboxd.log()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer2 = tokio::spawn(writer(
        pg.url("postgres"),
        aggregatetype.clone(),
        stop.clone(),
        1_000_000,
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    committed.extend(writer2.await.unwrap());
    let log = outboxd.log();
    assert!(log.contains("take-over: read Debezium's offset"), "{log}");

    // Everything, once.
    let records = count(committed.len()).await.unwrap();
    let from_debezium = |r: &Record| {
        r.headers
            .iter()
            .any(|(k, _)| k.starts_with("__debezium.context."))
    };
    let dbz_count = records.iter().filter(|r| from_debezium(r)).count();
    let obx_count = records.len() - dbz_count;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in &records {
        *copies.entry(r.header_str("id").unwrap()).or_default() += 1;
    }
    let twice: Vec<&String> = copies
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&(String, String, i64)> = committed
        .iter()
        .filter(|(id, _, _)| !copies.contains_key(id))
        .collect();
    let skipped = log
        .matches("not published again (Debezium published it)")
        .count();
    eprintln!(
        "takeover: {} events committed, {} records: {dbz_count} by Debezium, {obx_count} by outboxd; {} twice, {} missing; outboxd skipped {skipped} events that Debezium's offset covered",
        committed.len(),
        records.len(),
        twice.len(),
        missing.len()
    );
    assert!(dbz_count > 0 && obx_count > 0, "both must have published");
    assert!(
        missing.is_empty(),
        "missing: {:?}",
        &missing[..missing.len().min(5)]
    );
    assert!(
        twice.is_empty(),
        "published twice: {:?}",
        &twice[..twice.len().min(5)]
    );
    if offset.at == outboxd::debezium::offsets::OffsetAt::Change && offset.lsn_commit.0 == slot {
        assert!(
            skipped > 0,
            "the offset lies inside a transaction after the slot, and nothing was skipped"
        );
    }

    // The same bytes from both, and the order per aggregate.
    let expected: HashMap<&str, (&str, i64)> = committed
        .iter()
        .map(|(id, agg, seq)| (id.as_str(), (agg.as_str(), *seq)))
        .collect();
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let id = r.header_str("id").unwrap();
        let (agg, seq) = expected[id.as_str()];
        let who = if from_debezium(r) {
            "Debezium"
        } else {
            "outboxd"
        };
        assert_eq!(
            r.key.as_deref(),
            Some(&json_key(agg)[..]),
            "{who}'s key of {id}"
        );
        assert_eq!(
            r.value.as_deref(),
            Some(&json_value(&format!("{{\"seq\": {seq}}}"))[..]),
            "{who}'s value of {id}"
        );
        let prev = last.insert(agg.to_string(), seq).unwrap_or(-1);
        assert_eq!(seq, prev + 1, "aggregate {agg}: {seq} after {prev} ({who})");
    }
    drop(outboxd);
}

/// The offsets topic of a distributed Kafka Connect worker (`[takeover] offsets_topic`): the
/// connector's record there, in Connect's JSON (key `["<name>",{"server":…}]`, value with
/// numeric LSNs), decides what is skipped. The offset says the first transaction after the slot's
/// position was processed up to its last change: outboxd publishes only the next one. Runs
/// without Debezium's jars (no Debezium process: the record is written as Connect writes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_in_kafka_connects_offsets_topic_skips_what_it_covers() {
    use rdkafka::producer::FutureRecord;
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let broker = Broker::shared();
    let aggregatetype = format!("Topic{}", support::unique("t"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 1).await;
    let offsets = support::unique("connect_offsets");
    broker.create_topic(&offsets, 1).await;
    client
        .batch_execute("CREATE PUBLICATION dbz_publication FOR TABLE public.outbox")
        .await
        .unwrap();
    client
        .batch_execute("SELECT pg_create_logical_replication_slot('debezium', 'pgoutput')")
        .await
        .unwrap();
    let slot = support::slot_confirmed_lsn(&client, "debezium")
        .await
        .unwrap();
    let row = |n: u32| {
        format!(
            "INSERT INTO public.outbox VALUES ('00000000-0000-4000-8000-{n:012}', '{aggregatetype}', 'a', 'E', '{{\"n\": {n}}}');"
        )
    };
    // Published by "Debezium" (its offset covers it), then one it never saw.
    let xid = client
        .simple_query(&format!(
            "BEGIN; {} {} SELECT txid_current()::text; COMMIT;",
            row(1),
            row(2)
        ))
        .await
        .unwrap()
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("the covered transaction's xid");
    let covered = support::current_wal_lsn(&client).await;
    client.batch_execute(&row(3)).await.unwrap();
    let producer = support::producer(broker.bootstrap());
    let key = r#"["outbox-connector",{"server":"shop"}]"#;
    // Connect's JSON, as the offset file of tests above holds it: lsn_commit where the slot is,
    // lsn_proc at the end of the covered transaction (past its last change), txId its xid,
    // ts_usec its commit time (now: the read-back of the topics starts a minute before it).
    let ts_usec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let value = format!(
        r#"{{"lsn_proc":{covered},"messageType":"INSERT","lsn_commit":{slot},"lsn":{covered},"txId":{xid},"ts_usec":{ts_usec}}}"#
    );
    producer
        .send(
            FutureRecord::to(&offsets).key(key).payload(&value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let config = format!(
        "{}\n[takeover]\nenabled = true\nconnector_name = \"outbox-connector\"\nserver = \"shop\"\noffsets_topic = \"{offsets}\"\n",
        support::basic_config(&pg.url("postgres"), "debezium", "dbz_publication", broker.bootstrap())
    );
    let outboxd = Outboxd::streaming(&config).await;
    let (b, t) = (broker.bootstrap().to_string(), topic.clone());
    let records =
        tokio::task::spawn_blocking(move || consume_topics(&b, &[&t], 2, Duration::from_secs(15)))
            .await
            .unwrap();
    let ns: Vec<i64> = records
        .iter()
        .map(|r| r.value_json().unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ns,
        vec![3],
        "only the event the offset does not cover:\n{}",
        outboxd.log()
    );
    let log = outboxd.log();
    assert!(
        log.contains(&format!(
            "read Debezium's offset from the offsets topic {offsets}"
        )) && log.contains("2 events it had published were not published again"),
        "{log}"
    );
}

/// How Debezium goes away before outboxd takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: Connect stops the task and commits its offsets a last time.
    Term,
    /// SIGKILL: the offsets stay as last flushed (every second here), and what Debezium published
    /// since is found by reading the topics back (`debezium::tail`).
    Kill,
}

/// Which Kafka Connect worker runs Debezium, and so where its offsets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worker {
    /// `ConnectStandalone`: the offset file (`offset.storage.file.filename`).
    Standalone,
    /// `ConnectDistributed` (one node): the offsets topic (`offset.storage.topic`), 25 partitions.
    Distributed,
}

/// Debezium under the load of four concurrent writers (transactions that interleave in the WAL),
/// stopped with SIGTERM and killed with SIGKILL, twice each; outboxd takes over while the writers
/// go on. Every committed event arrives once, in order per aggregate, in every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_under_load_after_sigterm_or_sigkill_publishes_each_event_once() {
    if let Err(why) = debezium::available() {
        return support::skip(
            "a_takeover_under_load_after_sigterm_or_sigkill_publishes_each_event_once",
            &why,
        );
    }
    for (run, stop) in [Stop::Kill, Stop::Term, Stop::Kill, Stop::Term]
        .into_iter()
        .enumerate()
    {
        takeover_under_load(run, stop, Worker::Standalone).await;
    }
}

/// The same on a distributed Kafka Connect worker, SIGTERM once and SIGKILL once: outboxd, given
/// the worker's properties, reads the connector's offset from the worker's offsets topic
/// (`offset.storage.topic`, Connect's JSON in one of its 25 partitions) and publishes each event
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_from_a_distributed_worker_reads_its_offsets_topic() {
    if let Err(why) = debezium::available() {
        return support::skip(
            "a_takeover_from_a_distributed_worker_reads_its_offsets_topic",
            &why,
        );
    }
    for (run, stop) in [Stop::Term, Stop::Kill].into_iter().enumerate() {
        takeover_under_load(run, stop, Worker::Distributed).await;
    }
}

async fn takeover_under_load(run: usize, how: Stop, worker: Worker) {
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let broker = Broker::shared();
    let aggregatetype = format!("Load{}", support::unique("t"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let args = debezium_args(broker.bootstrap(), &pg.url("postgres"), worker);
    let mut dbz = Debezium::spawn(&args);
    let started = dbz
        .wait_running(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("Debezium did not start: {e}"));
    let offsets_topic = dbz.offsets_topic();
    assert_eq!(
        offsets_topic.is_some(),
        worker == Worker::Distributed,
        "offset.storage.topic in {}",
        dbz.worker_properties().display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            tokio::spawn(writer(
                pg.url("postgres"),
                aggregatetype.clone(),
                stop.clone(),
                w * 1_000_000,
            ))
        })
        .collect();
    // Debezium publishes under load for a while (offsets flushed every second), then goes.
    tokio::time::sleep(Duration::from_millis(4_500 + 700 * run as u64)).await;
    match how {
        Stop::Term => {
            dbz.stop(Duration::from_secs(60));
        }
        Stop::Kill => dbz.kill9(),
    }
    let outboxd = outboxd_taking_over(&dbz);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(60))
            .await,
        "{}",
        outboxd.log()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    let (b, t, n) = (
        broker.bootstrap().to_string(),
        topic.clone(),
        committed.len(),
    );
    let records = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(2));
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
        }
    })
    .await
    .unwrap();
    let log = outboxd.log();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in &records {
        *copies.entry(r.header_str("id").unwrap()).or_default() += 1;
    }
    let twice = copies.values().filter(|n| **n > 1).count();
    let missing = committed
        .iter()
        .filter(|(id, _, _)| !copies.contains_key(id))
        .count();
    let by_debezium = records
        .iter()
        .filter(|r| {
            r.headers
                .iter()
                .any(|(k, _)| k.starts_with("__debezium.context."))
        })
        .count();
    let found = log
        .matches("found in the topic: Debezium published it after its stored offset")
        .count();
    let covered = log
        .matches("not published again (Debezium published it)")
        .count();
    let on = match worker {
        Worker::Standalone => String::new(),
        Worker::Distributed => {
            format!(" (distributed worker, task ran {started:.1?} after launch)")
        }
    };
    eprintln!(
        "takeover under load, run {run}, Debezium {how:?}{on}: {} events committed by 4 writers, {} records ({by_debezium} by Debezium); outboxd skipped {covered} events its offset covered and {found} found in the topics; {twice} twice, {missing} missing",
        committed.len(),
        records.len()
    );
    if let Some(topic) = &offsets_topic {
        assert!(
            log.contains(&format!(
                "read Debezium's offset from the offsets topic {topic}"
            )),
            "outboxd did not read the offset from {topic}:\n{log}"
        );
    }
    assert!(
        by_debezium > 0 && records.len() > by_debezium,
        "both must have published"
    );
    assert_eq!(
        missing, 0,
        "events missing after a {how:?} take-over:\n{log}"
    );
    assert_eq!(
        twice, 0,
        "events published twice after a {how:?} take-over:\n{log}"
    );
    let expected: HashMap<&str, (&str, i64)> = committed
        .iter()
        .map(|(id, agg, seq)| (id.as_str(), (agg.as_str(), *seq)))
        .collect();
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let (agg, seq) = expected[r.header_str("id").unwrap().as_str()];
        let prev = last.insert(agg.to_string(), seq).unwrap_or(-1);
        assert_eq!(seq, prev + 1, "aggregate {agg}: {seq} after {prev}");
    }
}
