//! Chaos suite: concurrent insert load (multi-row and rolled-back transactions over many
//! aggregates) while outboxd is SIGKILLed, the broker goes away and comes back, and Postgres is
//! restarted and crashed. A verifier then checks: no committed event lost, per-aggregate order of
//! first occurrences, no event of a rolled-back transaction, and duplicates only after a crash
//! (bounded by what can be unconfirmed at an outboxd crash, plus exactly what Postgres replays
//! after each restart: the events committed after the slot position it kept on disk, read right
//! after the restart while outboxd is held with SIGSTOP). The figures are printed.
//!
//! The same run in exactly-once mode (`[exactly_once] enabled = true`) must have no duplicates
//! at all in what a `read_committed` consumer sees: on Apache Kafka a real `read_committed`
//! consumer reads the topic, and the view computed from the log's transaction markers
//! (`support::txlog`) must agree with it; on tansu 0.6 (`OUTBOXD_TEST_BROKER=tansu`), which shows
//! the records of aborted transactions to `read_committed` consumers (tests/transactions.rs pins
//! it), only the markers' view is used. Every disruption may abort the open Kafka transaction,
//! and Postgres crash-replays, which duplicate thousands of events in at-least-once mode, must
//! duplicate nothing.
//!
//! The broker is the test's own, behind the test's proxy. Twice it "goes away" behind the proxy
//! (connections reset, new ones refused), and once, on Apache Kafka, it is SIGKILLed and
//! restarted on its data. tansu is never restarted: on memory storage a restart would lose every
//! topic, and on S3 storage (tried with moto's S3 server) tansu 0.6 loses records it had
//! acknowledged when it is SIGKILLed (1892 acknowledged, 1786 readable afterwards), so a real
//! restart would test the broker, not outboxd.
//!
//! A third run restarts only Postgres (fast and immediate, on PostgreSQL 15 and 17) under the same
//! load in at-least-once mode: what Postgres sends again is covered by the position recorded in
//! Kafka (`position::Replay`), so no event may arrive twice but those of a transaction a killed
//! server had only partly sent (at most one per kill).
//!
//! Bounded in time (about a minute each) so CI runs them on every change. The runs take turns
//! (one lock), so they do not compete for the two cores.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{consume_topics, unique, Broker, Outboxd, PgCluster, ProxiedBroker, Record};

const AGGREGATES: usize = 30;

/// What the writer committed.
#[derive(Default)]
struct Ledger {
    /// Every committed event id.
    committed: HashSet<String>,
    /// Events per aggregate, in commit order (their seq numbers are 0..n).
    per_aggregate: HashMap<String, i64>,
    rolled_back: u64,
    /// Per committed transaction: the WAL insert position right after its COMMIT (at or past the
    /// commit record's end) and its number of events. What a Postgres restart replays is counted
    /// from it.
    commits: Vec<(u64, u64)>,
}

impl Ledger {
    /// Events of the transactions that committed after `from` and up to `to`.
    fn events_between(&self, from: u64, to: u64) -> u64 {
        self.commits
            .iter()
            .filter(|(lsn, _)| *lsn > from && *lsn <= to)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Writes transactions of 1–5 rows over random aggregates until `stop`; waits while `paused`.
/// Every 6th transaction rolls back. Rows carry `{"seq": n}` per aggregate, counted only on commit.
async fn writer(
    url: String,
    aggregatetype: String,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
) -> Ledger {
    let mut ledger = Ledger::default();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut client: Option<tokio_postgres::Client> = None;
    let mut txn = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if paused.load(Ordering::SeqCst) {
            idle.store(true, Ordering::SeqCst);
            client = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        idle.store(false, Ordering::SeqCst);
        let c = match &client {
            Some(c) if !c.is_closed() => c,
            _ => match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    client = Some(c);
                    client.as_ref().unwrap()
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        txn += 1;
        let rollback = txn % 6 == 0;
        let rows = 1 + (next() % 5) as usize;
        let mut sql = String::from("BEGIN;");
        let mut planned = Vec::new();
        for _ in 0..rows {
            let agg = format!("g{}", next() as usize % AGGREGATES);
            let already = planned.iter().filter(|(a, _)| *a == agg).count() as i64;
            let seq = if rollback {
                -1
            } else {
                ledger.per_aggregate.get(&agg).copied().unwrap_or(0) + already
            };
            let id = format!(
                "00000000-0000-4000-8000-{:012x}",
                txn * 8 + planned.len() as u64
            );
            sql.push_str(&format!(
                "INSERT INTO public.outbox VALUES ('{id}', '{aggregatetype}', '{agg}', 'E', '{{\"seq\": {seq}, \"rb\": {rollback}}}');"
            ));
            planned.push((agg, id));
        }
        sql.push_str(if rollback {
            "ROLLBACK;"
        } else {
            "COMMIT; SELECT pg_current_wal_insert_lsn()::text;"
        });
        // The writer only runs while Postgres is up (it is paused around restarts), so a failed
        // statement means the transaction did not commit.
        match c.simple_query(&sql).await {
            Ok(_) if rollback => ledger.rolled_back += 1,
            Ok(messages) => {
                let after_commit = messages
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            r.get(0).and_then(support::parse_lsn)
                        }
                        _ => None,
                    })
                    .expect("the WAL position after COMMIT");
                ledger.commits.push((after_commit, planned.len() as u64));
                for (agg, id) in planned {
                    *ledger.per_aggregate.entry(agg).or_default() += 1;
                    ledger.committed.insert(id);
                }
            }
            Err(e) => panic!("writer transaction failed while Postgres was up: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ledger
}

/// outboxd on `config`, once it streams (debug logs of the pipeline, which the checks count).
async fn start_outboxd(config: &str) -> Outboxd {
    let outboxd = Outboxd::start_with(config, &[], &[("RUST_LOG", "info,outboxd::pipeline=debug")]);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(90))
            .await,
        "{}",
        outboxd.log()
    );
    outboxd
}

/// The writer running against `pg`, and its switches.
struct Load {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
    writer: tokio::task::JoinHandle<Ledger>,
}

fn start_load(pg: &PgCluster, aggregatetype: &str) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer(
        pg.url("postgres"),
        aggregatetype.to_string(),
        stop.clone(),
        paused.clone(),
        idle.clone(),
    ));
    Load {
        stop,
        paused,
        idle,
        writer,
    }
}

async fn pause_writer(paused: &AtomicBool, idle: &AtomicBool) {
    paused.store(true, Ordering::SeqCst);
    while !idle.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Restarts Postgres with the writer paused: fast (`crash` false) or SIGKILL of every server
/// process. outboxd is held (SIGSTOP) while Postgres comes back, so the slot position read then
/// is the one Postgres kept on disk, before outboxd confirms anything again. Returns that
/// position and the WAL end before the restart: Postgres sends again what committed between.
async fn restart_postgres(
    pg: &mut PgCluster,
    outboxd: &Outboxd,
    paused: &AtomicBool,
    idle: &AtomicBool,
    crash: bool,
) -> (u64, u64) {
    pause_writer(paused, idle).await;
    let end = wal_insert_lsn(pg).await;
    if crash {
        pg.kill9();
    } else {
        pg.stop();
    }
    let held = outboxd.pid();
    if let Some(pid) = held {
        support::signal(pid, libc::SIGSTOP);
    }
    pg.start_again();
    let kept = support::slot_confirmed_lsn(&pg.client().await, "outboxd")
        .await
        .expect("the slot outboxd");
    if let Some(pid) = held {
        support::signal(pid, libc::SIGCONT);
    }
    paused.store(false, Ordering::SeqCst);
    (kept, end)
}

/// `pg_current_wal_insert_lsn()`: with the writer paused, past every committed transaction.
async fn wal_insert_lsn(pg: &PgCluster) -> u64 {
    let row = pg
        .client()
        .await
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .expect("pg_current_wal_insert_lsn");
    support::parse_lsn(row.get(0)).expect("an LSN")
}

/// Checks what was read against what the writer committed: no committed event missing, nothing
/// from a rolled-back transaction or never committed, and per aggregate the first occurrences in
/// commit order. Returns the distinct event ids read.
fn check_every_event_in_order(ledger: &Ledger, records: &[Record], log: &str) -> HashSet<String> {
    let total = ledger.committed.len();
    // 1. Nothing lost.
    let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
    let missing: Vec<&String> = ledger.committed.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} committed events missing, e.g. {:?}\noutboxd log:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        log
    );
    // 2. Nothing from a rolled-back transaction, nothing that was never committed.
    for r in records {
        let v = r.value_json().unwrap();
        assert_eq!(v["rb"], false, "event of a rolled-back transaction: {v}");
        assert!(ledger.committed.contains(&r.header_str("id").unwrap()));
    }
    // 3. Per aggregate, first occurrences in commit order.
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut first_seen = HashSet::new();
    for r in records {
        let id = r.header_str("id").unwrap();
        if !first_seen.insert(id) {
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
    seen
}

/// The chaos runs take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_outages_and_restarts_lose_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    chaos(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_exactly_once_publishes_each_event_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    chaos(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load_publish_nothing_twice_pg15() {
    let _turn = ONE_AT_A_TIME.lock().await;
    postgres_restarts(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load_publish_nothing_twice_pg17() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let bin = support::pg::major_bin(17)
        .expect("PostgreSQL 17 from npm (.tools/pg/17: run scripts/install-deps.sh)");
    postgres_restarts(Some(bin)).await;
}

/// At-least-once mode (the default), Postgres restarted four times under the writer's load,
/// alternately fast (SIGINT) and immediate (SIGKILL of every server process): Postgres comes back
/// with an older slot position and sends transactions again, which the position recorded in
/// Kafka covers: every committed event arrives, in order, and none twice but those of a
/// transaction a killed server had only partly sent. `bin`: the server binaries
/// (`None`: `PG_BIN`, Debian's PostgreSQL 15).
async fn postgres_restarts(bin: Option<std::path::PathBuf>) {
    let broker = Broker::shared();
    let mut pg = PgCluster::start_with(support::pg::PgOptions {
        bin,
        ..Default::default()
    });
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get(0);
    drop(client);
    let aggregatetype = format!("Restart{}", unique("x"));
    let topic = format!("outbox.event.{aggregatetype}");
    broker.create_topic(&topic, 4).await;
    let config = format!(
        "{}\n[pipeline]\nmax_in_flight_events = 500\n[offsets]\ntopic = \"{}\"\n",
        support::basic_config(
            &pg.url("postgres"),
            "outboxd",
            "outboxd",
            broker.bootstrap()
        ),
        unique("offsets")
    );
    let outboxd = start_outboxd(&config).await;
    let Load {
        stop,
        paused,
        idle,
        writer,
    } = start_load(&pg, &aggregatetype);
    // Per restart: the slot position Postgres kept, and the WAL end before the restart.
    let mut replays: Vec<(u64, u64)> = Vec::new();
    for restart in 0..4 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        replays.push(restart_postgres(&mut pg, &outboxd, &paused, &idle, restart % 2 == 1).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let ledger = writer.await.unwrap();
    let total = ledger.committed.len();
    assert!(total > 100, "the writer committed only {total} events");
    let deadline = Instant::now() + Duration::from_secs(90);
    let records = loop {
        let (b, t) = (broker.bootstrap().to_string(), topic.clone());
        let records = tokio::task::spawn_blocking(move || {
            consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(4))
        })
        .await
        .unwrap();
        let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
        if ledger.committed.is_subset(&seen) || Instant::now() > deadline {
            break records;
        }
    };
    let log = outboxd.log();
    let seen = check_every_event_in_order(&ledger, &records, &log);
    let duplicates = records.len() - seen.len();
    let replayed: Vec<u64> = replays
        .iter()
        .map(|&(kept, end)| ledger.events_between(kept, end))
        .collect();
    let skipped = log
        .matches("skipping a transaction published before")
        .count();
    eprintln!(
        "PostgreSQL {version}: 4 restarts (fast, immediate, fast, immediate) under load: {total} events committed, {} records read, {duplicates} duplicates; events committed after the slot position Postgres kept, per restart: {replayed:?}; {skipped} replayed transactions skipped",
        records.len()
    );
    // What the recorded position covers is never published again. What it cannot cover: a
    // transaction the walsender had only partly sent when the server was killed (immediate
    // restarts only; a fast shutdown sends everything first): its events that Kafka had
    // acknowledged come again with the whole transaction. At most one transaction per kill, of
    // at most 5 rows (the writer's largest).
    let immediate = 2;
    assert!(
        duplicates <= immediate * 5,
        "PostgreSQL {version}: {duplicates} events published twice after Postgres restarts, more than one partly sent transaction per immediate restart\noutboxd log:\n{log}"
    );
    if replayed.iter().any(|&n| n > 0) {
        assert!(
            skipped > 0,
            "Postgres came back behind what outboxd had confirmed ({replayed:?}), yet no transaction was skipped:\n{log}"
        );
    }
}

/// Events a Kafka transaction holds at most in the exactly-once run.
const EOS_COMMIT_MAX_EVENTS: u64 = 200;

/// One chaos run; `exactly_once` selects the mode and the duplicate rule.
async fn chaos(exactly_once: bool) {
    // A broker behind the test's proxy when possible (outage simulation), else the shared one.
    let mut proxied = ProxiedBroker::start_or_skip("chaos: broker outage step");
    let bootstrap = match &proxied {
        Some(b) => b.bootstrap().to_string(),
        None => Broker::shared().bootstrap().to_string(),
    };
    let mut pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    drop(client);
    let aggregatetype = format!("Chaos{}", unique("x"));
    let topic = format!("outbox.event.{aggregatetype}");
    support::kafka::create_topic(&bootstrap, &topic, 4).await;
    let max_in_flight = 500u64;
    let mut config = format!(
        "{}\n[pipeline]\nmax_in_flight_events = {max_in_flight}\n",
        support::basic_config(&pg.url("postgres"), "outboxd", "outboxd", &bootstrap)
    );
    if exactly_once {
        config.push_str(&format!(
            "[exactly_once]\nenabled = true\noffsets_topic = \"{}\"\ncommit_max_events = {EOS_COMMIT_MAX_EVENTS}\n",
            unique("offsets")
        ));
    }
    let mut outboxd = start_outboxd(&config).await;
    let Load {
        stop,
        paused,
        idle,
        writer,
    } = start_load(&pg, &aggregatetype);

    let started = Instant::now();
    let kills = AtomicU64::new(0);
    let pg_restarts = AtomicU64::new(0);
    // Per Postgres restart: the slot position Postgres kept on disk, and the WAL end before the
    // restart. Postgres replays every transaction committed between the two.
    let mut replays: Vec<(u64, u64)> = Vec::new();
    let mut figures = Vec::new();
    for cycle in 0..9 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let action = match cycle % 3 {
            0 => {
                outboxd.kill9();
                kills.fetch_add(1, Ordering::SeqCst);
                outboxd.restart();
                "outboxd SIGKILL + restart"
            }
            1 => match &mut proxied {
                // Apache Kafka keeps what it acknowledged over a SIGKILL: kill it for real once.
                Some(b) if cycle == 4 && b.kind() == support::broker::Kind::Kafka => {
                    let down = Instant::now();
                    b.broker().kill9();
                    tokio::task::block_in_place(|| b.broker().restart());
                    figures.push(format!(
                        "cycle {cycle}: broker SIGKILL + restart (back after {:.1?})",
                        down.elapsed()
                    ));
                    continue;
                }
                Some(b) => {
                    b.pause();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    b.resume();
                    "broker outage 2 s"
                }
                None => "broker outage skipped (no broker of the test's own)",
            },
            _ => {
                // Either way outboxd loses its connections and restarts from the slot.
                pg_restarts.fetch_add(1, Ordering::SeqCst);
                replays.push(restart_postgres(&mut pg, &outboxd, &paused, &idle, cycle == 8).await);
                if cycle == 8 {
                    "Postgres crash (SIGKILL) + recovery"
                } else {
                    "Postgres restart"
                }
            }
        };
        figures.push(format!("cycle {cycle}: {action}"));
    }
    stop.store(true, Ordering::SeqCst);
    let ledger = writer.await.unwrap();
    let total = ledger.committed.len();
    assert!(
        total > 500,
        "the load generator committed only {total} events"
    );

    // Read until every committed event arrived (duplicates allowed), or time out.
    let deadline = Instant::now() + Duration::from_secs(90);
    // Exactly-once: what a read_committed consumer sees (librdkafka's default isolation level).
    // On tansu, whose read_committed shows aborted records, that view is computed from the log's
    // transaction markers instead (support::txlog); on Kafka both are taken and must agree.
    let tansu = match &proxied {
        Some(b) => b.kind() == support::broker::Kind::Tansu,
        None => Broker::shared().is_tansu(),
    };
    let read = |markers: bool| {
        let (b, t) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            if markers {
                support::txlog::committed_records(&b, &[&t], 0, Duration::from_secs(4))
            } else {
                (
                    consume_topics(&b, &[&t], usize::MAX, Duration::from_secs(4)),
                    0,
                )
            }
        })
    };
    let (records, mut aborted): (Vec<Record>, usize) = loop {
        let (records, aborted) = read(exactly_once && tansu).await.unwrap();
        let seen: HashSet<String> = records.iter().filter_map(|r| r.header_str("id")).collect();
        if ledger.committed.is_subset(&seen) || Instant::now() > deadline {
            break (records, aborted);
        }
    };
    if exactly_once && !tansu {
        // Everything is published now: the markers' view of the same log must be the same.
        let (from_markers, _) = read(true).await.unwrap();
        let ids = |rs: &[Record]| {
            rs.iter()
                .filter_map(|r| r.header_str("id"))
                .collect::<Vec<_>>()
        };
        let (mut a, mut m) = (ids(&records), ids(&from_markers));
        a.sort();
        m.sort();
        let only_consumer: Vec<&String> = a
            .iter()
            .filter(|id| m.binary_search(id).is_err())
            .take(5)
            .collect();
        let only_markers: Vec<&String> = m
            .iter()
            .filter(|id| a.binary_search(id).is_err())
            .take(5)
            .collect();
        assert!(
            a == m,
            "Kafka's read_committed consumer ({} records) and the log's markers ({}) disagree on \
             what is committed: only the consumer has {only_consumer:?}, only the markers {only_markers:?}",
            a.len(),
            m.len()
        );
        // Kafka's consumer never returns aborted records: count them in the log itself.
        let (b, t) = (bootstrap.clone(), topic.clone());
        aborted = tokio::task::spawn_blocking(move || {
            support::txlog::scan(&b, &t)
                .values()
                .map(|log| log.count(support::txlog::Fate::Aborted) as usize)
                .sum()
        })
        .await
        .unwrap();
    }

    let seen = check_every_event_in_order(&ledger, &records, &outboxd.log());
    // 4. Duplicates only from crashes: each crash may re-send at most what was unconfirmed.
    let duplicates = records.len() - seen.len();
    let (kills, pg_restarts) = (
        kills.load(Ordering::SeqCst),
        pg_restarts.load(Ordering::SeqCst),
    );
    let crashes = kills + pg_restarts;
    for f in &figures {
        eprintln!("{f}");
    }
    eprintln!(
        "chaos: {} cycles in {:.0?}, {total} events committed ({} rolled-back transactions), {} records read, {duplicates} duplicates after {kills} outboxd kills and {pg_restarts} Postgres restarts/crashes ({:.0} per crash)",
        figures.len(),
        started.elapsed(),
        ledger.rolled_back,
        records.len(),
        duplicates as f64 / crashes.max(1) as f64,
    );
    // Bounds: an outboxd crash re-sends at most the in-flight window plus what was acknowledged
    // in the moment (100 ms confirmation check) before it. A Postgres restart or crash replays
    // from the slot position Postgres last wrote to disk, whatever outboxd confirmed (outboxd
    // skips it, the recorded position covering it; the figures show how much it was): before
    // PostgreSQL 17 a logical slot's confirmed_flush_lsn is written only when its restart_lsn
    // moves (on a running-xacts record, which the background writer logs 15 s after it starts
    // and every 15 s after), so with restarts ~12 s apart it may not move from one restart to
    // the next. The test reads that position right after each restart and counts the events
    // committed between it and the restart.
    let replayed: Vec<u64> = replays
        .iter()
        .map(|&(kept, end)| ledger.events_between(kept, end))
        .collect();
    if exactly_once {
        // Every disruption may abort the open Kafka transaction; its records stay in the log,
        // marked aborted, and no read_committed consumer may see them.
        eprintln!(
            "exactly-once: {duplicates} duplicates in the committed view ({aborted} records of aborted Kafka transactions in the log, hidden from read_committed readers)"
        );
        // How often the start and failure paths that keep an aborted offsets record from being
        // taken as the position ran (informative; tests/transactions.rs and
        // tests/restated_position.rs check them).
        let log = outboxd.log();
        let count = |needle: &str| log.matches(needle).count();
        eprintln!(
            "exactly-once: {} failed commits, {} positions restated, {} starts that found a transaction left open",
            count("Kafka transaction (commit)"),
            count("restated the committed position"),
            count("was still open when this instance started"),
        );
        assert_eq!(
            duplicates,
            0,
            "exactly-once: {duplicates} duplicates\noutboxd log:\n{}",
            outboxd.log()
        );
        return;
    }
    // What Postgres replays after its restarts is covered by the position recorded in Kafka
    // (`position::Replay`) and skipped: only outboxd's own kills may duplicate.
    // (Plus, per Postgres crash, a transaction it had only partly sent: at most 5 rows.)
    let bound = kills * (max_in_flight + 1_000) + 5;
    eprintln!(
        "events Postgres replayed per restart (from the slot position it kept): {replayed:?}, not published again"
    );
    assert!(
        duplicates as u64 <= bound,
        "{duplicates} duplicates, more than {bound} for {kills} outboxd kills ({pg_restarts} Postgres restarts replaying {replayed:?} events must add none)"
    );
}
