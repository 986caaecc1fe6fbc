//! Shared integration-test harness for outboxd.
//!
//! Use it from an integration test with `mod support;` (each test binary compiles its own copy,
//! hence the `dead_code` allowance: no single binary uses every helper).
//!
//! What is here:
//! - [`pg::PgCluster`]: a throwaway PostgreSQL cluster (initdb into a tempdir, `wal_level=logical`).
//! - [`broker::Broker`]: the shared Kafka broker: the one named by `KAFKA_BOOTSTRAP_SERVERS`
//!   (`scripts/test.sh` starts one Apache Kafka for the whole run and names it there), else one
//!   this test binary starts (Apache Kafka, or tansu with `OUTBOXD_TEST_BROKER=tansu`), with
//!   `create_topic`; [`broker::LocalBroker`], a dedicated broker a test starts, kills and
//!   restarts itself (`scripts/kafka.sh`).
//! - [`proxy::ProxiedBroker`]: a dedicated broker behind an in-process TCP proxy that can simulate
//!   a broker outage (`pause`/`resume`).
//! - [`kafka::consume`] and [`kafka::Record`]: read records back by explicit partition assignment.
//! - [`outboxd::Outboxd`]: the `outboxd run --config FILE` process under test.
//! - [`debezium::Debezium`]: Debezium itself (a Kafka Connect worker with the PostgreSQL
//!   connector and the Outbox EventRouter, `scripts/debezium.sh`), to compare outboxd with.
//! - [`catalog`]: the metric catalogue as rendered and as documented (also included alone by
//!   the dashboard and chart tests).
//! - [`wait_until`], [`wait_for`], [`slot_confirmed_lsn`], [`unique`] and outbox-table helpers.
//!
//! Every child process (postgres, the brokers, outboxd, Debezium) is spawned through
//! [`spawn_tied`], which arranges for the kernel to SIGKILL it if the test process dies, so no
//! orphan survives `cargo test`.
#![allow(dead_code, unused_imports)]

pub mod broker;
pub mod catalog;
pub mod debezium;
pub mod java;
pub mod kafka;
pub mod outboxd;
pub mod pg;
pub mod proxy;
pub mod txlog;

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use broker::{Broker, KafkaOptions, LocalBroker};
pub use kafka::{consume, consume_async, consume_topics, consume_topics_async, producer, Record};
pub use outboxd::Outboxd;
pub use pg::{PgCluster, PgOptions};
pub use proxy::{outage_supported, ProxiedBroker};

/// Environment variable naming an external Kafka cluster; when set, no shared broker is started.
pub const KAFKA_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";

/// The external bootstrap servers, if `KAFKA_BOOTSTRAP_SERVERS` is set and non-empty.
pub fn external_kafka() -> Option<String> {
    std::env::var(KAFKA_ENV)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A port on 127.0.0.1 that was free a moment ago (the usual small race applies).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A name unique within this machine and run: `prefix_<pid>_<counter>_<millis>`, lowercase ASCII,
/// usable as an aggregate type (topic suffix), slot name or publication name.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        % 100_000_000;
    format!("{prefix}_{}_{n}_{ms}", std::process::id())
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` so that the child gets SIGKILL when this test process exits, however it exits.
///
/// Uses `prctl(PR_SET_PDEATHSIG, SIGKILL)`. That signal fires when the *thread* that forked the
/// child exits, and libtest runs each test on its own short-lived thread, so all spawns go through
/// one dedicated thread that lives until the process ends.
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("support-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static, so this thread only ends with the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn support-spawner thread");
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .expect("spawner thread is gone");
    reply_rx.recv().expect("spawner thread dropped the request")
}

/// Sends `sig` to `pid`; errors (e.g. already gone) are ignored.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Prints `SKIP <test>: <reason>` straight to the process's stderr, bypassing libtest's output
/// capture, so the line shows in a normal `cargo test` run (the test itself then returns and is
/// reported as passed: libtest has no runtime skip).
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
}

/// Waits up to `timeout` for `child` to exit; returns its status, or `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// The last `lines` lines of a (log) file, or a note saying why it could not be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The repository root (where Cargo.toml lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A per-build scratch directory for logs that should outlive a test (`target/tmp`).
pub fn target_tmp() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::create_dir_all(&p);
    p
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes; returns whether it did.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or `timeout` passes (then `None`).
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Parses a textual LSN `X/Y` (hex) into its 64-bit value.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some((hi << 32) | lo)
}

/// `pg_replication_slots.confirmed_flush_lsn` of `slot` as a u64; `None` if the slot does not
/// exist or has no confirmed position (e.g. a physical slot).
pub async fn slot_confirmed_lsn(client: &tokio_postgres::Client, slot: &str) -> Option<u64> {
    let row = client
        .query_opt(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .expect("query pg_replication_slots")?;
    let lsn: Option<String> = row.get(0);
    lsn.as_deref().and_then(parse_lsn)
}

/// `pg_current_wal_lsn()` as a u64.
pub async fn current_wal_lsn(client: &tokio_postgres::Client) -> u64 {
    let row = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("pg_current_wal_lsn");
    parse_lsn(row.get::<_, &str>(0)).expect("parse LSN")
}

/// Debezium's outbox table, as outboxd expects it: docker/init.sql, the file the compose stack
/// and the demo create it from.
pub const OUTBOX_DDL: &str = include_str!("../../docker/init.sql");

/// Creates `public.outbox` (idempotent).
pub async fn create_outbox_table(client: &tokio_postgres::Client) {
    client
        .batch_execute(OUTBOX_DDL)
        .await
        .expect("create outbox table");
}

/// A fresh cluster ([`PgCluster::start`]) with `public.outbox` created, and a client to it.
pub async fn database() -> (PgCluster, tokio_postgres::Client) {
    let pg = PgCluster::start();
    let client = pg.client().await;
    create_outbox_table(&client).await;
    (pg, client)
}

/// Inserts one outbox row (id from `gen_random_uuid()`); returns the id as text.
/// `payload` is JSON text, e.g. `r#"{"n":1}"#`.
pub async fn insert_outbox(
    client: &tokio_postgres::Client,
    aggregatetype: &str,
    aggregateid: &str,
    event_type: &str,
    payload: &str,
) -> String {
    let row = client
        .query_one(
            "INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) \
             VALUES (gen_random_uuid(), $1, $2, $3, $4::text::jsonb) RETURNING id::text",
            &[&aggregatetype, &aggregateid, &event_type, &payload],
        )
        .await
        .expect("insert outbox row");
    row.get(0)
}

/// A minimal outboxd config (TOML) for `tables = ["public.outbox"]`, Debezium's default routing
/// (`outbox.event.<aggregatetype>`), and the given slot/publication/bootstrap servers.
pub fn basic_config(pg_url: &str, slot: &str, publication: &str, bootstrap: &str) -> String {
    format!(
        r#"[source]
url = "{pg_url}"
slot = "{slot}"
publication = "{publication}"
tables = ["public.outbox"]

[router]
"route.topic.replacement" = "outbox.event.${{routedByValue}}"

[kafka]
"bootstrap.servers" = "{bootstrap}"
"#
    )
}

/// Looks for an executable, first in `$env_var`, then in `candidates`, then on `$PATH`.
fn find_executable(env_var: &str, candidates: &[PathBuf], name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env_var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    for c in candidates {
        if c.is_file() {
            return Some(c.clone());
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
