//! A three-broker Apache Kafka cluster under steady insert load: the partition leaders' broker
//! is SIGKILLed and restarted, then all three are restarted one after the other (a rolling
//! restart, as an upgrade does). Three combined broker + controller nodes (KRaft), replication
//! factor 3, `min.insync.replicas=2`, and outboxd's producer with `acks=all` (idempotent).
//!
//! Checked at the end:
//! - nothing lost: every committed event is in the topic;
//! - order per aggregate: first occurrences in commit order;
//! - the slot is never confirmed past an event Kafka has not acknowledged: while the leaders'
//!   broker is down, outboxd itself is SIGKILLed with records in flight and restarted; an event
//!   confirmed before its acknowledgement would then never be sent again, and be missing;
//! - printed, not bounded: the duplicates, and per disruption the longest time the slot's
//!   confirmed position did not move while the writer kept committing (the time without
//!   progress, as a user sees it).
//!
//! Brokers keep Kafka's defaults otherwise (`broker.session.timeout.ms` 9 s: a killed broker is
//! fenced, and its partitions get new leaders, within that). It takes about two minutes, on three
//! JVMs; CI runs it with the rest of the suite. SKIPs where Kafka cannot be started here.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::broker::{wait_broker_ready, Kind};
use support::{consume_topics, free_port, unique, KafkaOptions, LocalBroker, Outboxd, PgCluster};

const AGGREGATES: usize = 20;
const PARTITIONS: i32 = 4;

/// What the writer committed.
#[derive(Default)]
struct Ledger {
    committed: HashSet<String>,
    /// Events per aggregate, in commit order (seq 0..n).
    per_aggregate: HashMap<String, i64>,
}

/// Commits one- to three-row transactions over [`AGGREGATES`] aggregates, about 200 events a
/// second, until `stop`. Rows carry `{"seq": n}` per aggregate.
async fn writer(url: String, aggregatetype: String, stop: Arc<AtomicBool>) -> Ledger {
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("writer connects");
    tokio::spawn(conn);
    let mut ledger = Ledger::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while !stop.load(Ordering::SeqCst) {
        let rows = 1 + next() % 3;
        let mut sql = String::from("BEGIN;");
        let mut batch = Vec::new();
        for _ in 0..rows {
            let agg = format!("a{}", next() % AGGREGATES as u64);
            let seq = ledger.per_aggregate.get(&agg).copied().unwrap_or(0)
                + batch.iter().filter(|(a, _, _)| a == &agg).count() as i64;
            let id = format!("{:08x}-0000-4000-8000-{:012x}", next() as u32, next() >> 16);
            sql.push_str(&format!(
                "INSERT INTO public.outbox VALUES ('{id}', '{aggregatetype}', '{agg}', 'E', '{{\"seq\": {seq}}}');"
            ));
            batch.push((agg, seq, id));
        }
        sql.push_str("COMMIT;");
        client.batch_execute(&sql).await.expect("writer commits");
        for (agg, _, id) in batch {
            *ledger.per_aggregate.entry(agg).or_insert(0) += 1;
            ledger.committed.insert(id);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ledger
}

/// The slot's confirmed position, sampled every 100 ms: `stalls` is the longest time it did
/// not move, since [`Progress::mark`] was last called.
struct Progress {
    longest: Mutex<Duration>,
    stop: AtomicBool,
}

impl Progress {
    fn start(url: String) -> Arc<Progress> {
        let p = Arc::new(Progress {
            longest: Mutex::new(Duration::ZERO),
            stop: AtomicBool::new(false),
        });
        let q = p.clone();
        tokio::spawn(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("progress monitor connects");
            tokio::spawn(conn);
            let (mut last, mut since) = (0u64, Instant::now());
            while !q.stop.load(Ordering::SeqCst) {
                let lsn = support::slot_confirmed_lsn(&client, "outboxd")
                    .await
                    .unwrap_or(0);
                if lsn > last {
                    (last, since) = (lsn, Instant::now());
                }
                {
                    let mut longest = q.longest.lock().unwrap();
                    *longest = (*longest).max(since.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        p
    }

    /// The longest stall since the last mark; starts a new period.
    fn mark(&self) -> Duration {
        std::mem::take(&mut *self.longest.lock().unwrap())
    }
}

/// A 22-character base64url cluster id (16 random bytes, unpadded), as `kafka-storage` takes it.
fn cluster_id() -> String {
    use std::io::Read;
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    // A first character '-' would be taken for an option by kafka-storage (Kafka's own
    // Uuid.randomUuid() avoids it too): clear the top bit, so the first sextet is below 32.
    bytes[0] &= 0x7f;
    let bits = u128::from_be_bytes(bytes);
    // 21 full sextets from the top, then the last 2 bits followed by 4 zero bits.
    (0..22)
        .map(|i| {
            let sextet = if i < 21 {
                (bits >> (122 - 6 * i)) & 63
            } else {
                (bits & 3) << 4
            };
            ABC[sextet as usize] as char
        })
        .collect()
}

/// Three nodes of one KRaft cluster, each broker and controller.
fn start_cluster() -> Vec<LocalBroker> {
    let ports: Vec<[u16; 3]> = (0..3)
        .map(|_| [free_port(), free_port(), free_port()])
        .collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, [_, controller, _])| format!("{}@127.0.0.1:{controller}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let id = cluster_id();
    let nodes: Vec<LocalBroker> = ports
        .iter()
        .enumerate()
        .map(|(i, &[port, controller, internal])| {
            let opts = KafkaOptions {
                port: Some(port),
                controller_port: Some(controller),
                internal_port: Some(internal),
                node_id: Some(i as u32 + 1),
                voters: Some(voters.clone()),
                cluster_id: Some(id.clone()),
                ..KafkaOptions::default()
            }
            .prop("default.replication.factor", "3")
            .prop("min.insync.replicas", "2")
            .prop("offsets.topic.replication.factor", "3")
            .prop("transaction.state.log.replication.factor", "3")
            .prop("transaction.state.log.min.isr", "2")
            .prop("share.coordinator.state.topic.replication.factor", "3")
            .prop("share.coordinator.state.topic.min.isr", "2");
            LocalBroker::spawn(Kind::Kafka, opts)
        })
        .collect();
    for n in &nodes {
        wait_broker_ready(n.bootstrap(), n.log_path());
    }
    nodes
}

fn bootstrap(nodes: &[LocalBroker]) -> String {
    nodes
        .iter()
        .map(LocalBroker::bootstrap)
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits (up to 120 s) until every partition of `topic` has a leader and 3 in-sync replicas.
async fn wait_fully_replicated(bootstrap: &str, topic: &str) -> Duration {
    let started = Instant::now();
    let ok = support::wait_until(Duration::from_secs(120), || {
        let (b, t) = (bootstrap.to_string(), topic.to_string());
        async move {
            let state =
                tokio::task::spawn_blocking(move || support::kafka::partition_state(&b, &t))
                    .await
                    .unwrap();
            state.len() == PARTITIONS as usize
                && state.iter().all(|&(_, leader, isr)| leader > 0 && isr == 3)
        }
    })
    .await;
    assert!(ok, "{topic} not fully replicated after 120 s");
    started.elapsed()
}

/// The node leading most partitions of `topic`.
async fn leaders_node(bootstrap: &str, topic: &str) -> usize {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    let state = tokio::task::spawn_blocking(move || support::kafka::partition_state(&b, &t))
        .await
        .unwrap();
    let mut count = [0usize; 3];
    for (_, leader, _) in state {
        if (1..=3).contains(&leader) {
            count[leader as usize - 1] += 1;
        }
    }
    (0..3).max_by_key(|&i| count[i]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_and_rolling_restart_of_a_three_broker_cluster_lose_nothing() {
    const TEST: &str = "leader_kill_and_rolling_restart_of_a_three_broker_cluster_lose_nothing";
    if let Err(why) = support::broker::kafka_available() {
        return support::skip(TEST, &why);
    }
    let mut nodes = tokio::task::block_in_place(start_cluster);
    let bootstrap = bootstrap(&nodes);
    let aggregatetype = format!("Cluster{}", unique("c"));
    let topic = format!("outbox.event.{aggregatetype}");
    support::kafka::create_topic_replicated(&bootstrap, &topic, PARTITIONS, 3).await;
    wait_fully_replicated(&bootstrap, &topic).await;

    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let config = format!(
        "{}\"acks\" = \"all\"\n",
        support::basic_config(&pg.url("postgres"), "outboxd", "outboxd", &bootstrap)
    );
    let mut outboxd = Outboxd::streaming(&config).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer(
        pg.url("postgres"),
        aggregatetype.clone(),
        stop.clone(),
    ));
    let progress = Progress::start(pg.url("postgres"));
    let mut figures = Vec::new();

    // Steady state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    figures.push(format!("steady 5 s: longest stall {:.1?}", progress.mark()));

    // The leaders' broker is SIGKILLed; outboxd too, 3 s later, with records in flight to it.
    let victim = leaders_node(&bootstrap, &topic).await;
    let down = Instant::now();
    nodes[victim].kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    outboxd.kill9();
    outboxd.restart();
    tokio::time::sleep(Duration::from_secs(12)).await;
    tokio::task::block_in_place(|| nodes[victim].restart());
    let caught_up = wait_fully_replicated(&bootstrap, &topic).await;
    figures.push(format!(
        "broker {} (leading most partitions) SIGKILLed, outboxd SIGKILLed and restarted 3 s later, \
         broker back after {:.1?}, in sync again {caught_up:.1?} later: longest stall {:.1?}",
        victim + 1,
        down.elapsed() - caught_up,
        progress.mark()
    ));

    // A rolling restart: each broker in turn stops (controlled shutdown), starts again, and the
    // next waits until every partition is back to three in-sync replicas.
    for (i, node) in nodes.iter_mut().enumerate() {
        let started = Instant::now();
        tokio::task::block_in_place(|| {
            node.terminate(Duration::from_secs(60));
            node.restart();
        });
        wait_fully_replicated(&bootstrap, &topic).await;
        figures.push(format!(
            "rolling restart of broker {} ({:.1?} until in sync): longest stall {:.1?}",
            i + 1,
            started.elapsed(),
            progress.mark()
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let ledger = writer.await.unwrap();
    progress.stop.store(true, Ordering::SeqCst);
    let total = ledger.committed.len();
    // Only that the run is meaningful (events before, during and after the kills); not a rate.
    assert!(total > 100, "the writer committed only {total} events");

    // Read until every committed event arrived.
    let deadline = Instant::now() + Duration::from_secs(90);
    let records = loop {
        let (b, t) = (bootstrap.clone(), topic.clone());
        let records = tokio::task::spawn_blocking(move || {
            consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(5))
        })
        .await
        .unwrap();
        let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
        if ledger.committed.is_subset(&seen) || Instant::now() > deadline {
            break records;
        }
    };
    let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    let missing: Vec<&String> = ledger.committed.difference(&seen).collect();
    for f in &figures {
        eprintln!("cluster: {f}");
    }
    let duplicates = records.len() - seen.len();
    eprintln!(
        "cluster: {total} events committed, {} records read, {duplicates} duplicates, {} missing",
        records.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {total} committed events missing, e.g. {:?}\noutboxd log:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        outboxd.log()
    );
    // Per aggregate, first occurrences in commit order, and every event of each.
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut first = HashSet::new();
    for r in &records {
        if !first.insert(r.header_str("id").unwrap()) {
            continue;
        }
        let key = r.key_str().unwrap();
        let seq = r.value_json().unwrap()["seq"].as_i64().unwrap();
        let prev = last.insert(key.clone(), seq).unwrap_or(-1);
        assert_eq!(seq, prev + 1, "aggregate {key}: seq {seq} after {prev}");
    }
    for (agg, n) in &ledger.per_aggregate {
        assert_eq!(last.get(agg).map_or(0, |s| s + 1), *n, "aggregate {agg}");
    }
    assert!(
        outboxd
            .terminate(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "{}",
        outboxd.log()
    );
}
