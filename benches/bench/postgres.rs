//! The benchmark's PostgreSQL (initdb into the work directory, the settings of
//! docs/benchmarks.md), and the SQL the scenarios run: LSNs, slot state, the outbox table, the
//! procedures that fill a backlog and generate the steady load.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Result};

use crate::support::pg::{pg_bin, PgCluster, PgOptions};

/// Settings appended to postgresql.conf. `fsync=off` and `full_page_writes=off` take the disk
/// out of the picture (the figures are about decoding and relaying, not about this VM's disk);
/// `autovacuum=off` keeps a vacuum of the freshly filled outbox table from running during a drain;
/// large `max_wal_size` / `checkpoint_timeout` keep checkpoints out of the measured intervals.
pub const PG_CONF: &str = "wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 50
fsync = off
full_page_writes = off
synchronous_commit = on
autovacuum = off
shared_buffers = 256MB
max_wal_size = 16GB
checkpoint_timeout = 1h
logging_collector = off
log_min_messages = warning
";

/// The tests' throwaway cluster (`tests/support/pg.rs`: initdb into a tempdir under `$TMPDIR`,
/// as the `postgres` user when root) with [`PG_CONF`] on top of its settings.
pub struct Postgres {
    cluster: PgCluster,
    bin: PathBuf,
}

impl Postgres {
    pub fn start() -> Postgres {
        let extra_conf = PG_CONF
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Postgres {
            cluster: PgCluster::start_with(PgOptions {
                extra_conf,
                ..PgOptions::default()
            }),
            bin: pg_bin(),
        }
    }

    pub fn url(&self) -> String {
        self.cluster.url("postgres")
    }

    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// The directory holding `postgres` and `pg_recvlogical`.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn pid(&self) -> Option<u32> {
        self.cluster.pid()
    }

    pub fn log_path(&self) -> &Path {
        self.cluster.log_path()
    }

    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        Ok(self.cluster.client().await)
    }

    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

pub use crate::support::parse_lsn;

pub fn fmt_lsn(l: u64) -> String {
    format!("{:X}/{:X}", l >> 32, l & 0xffff_ffff)
}

/// The end of the record that ends at WAL insert position `insert`: the same position, unless the
/// record ended exactly on a page boundary, in which case the insert position is past the next
/// page's header (24 bytes, or 40 at the start of a 16 MB segment) while the record's end is the
/// boundary.
pub fn commit_end(insert: u64) -> u64 {
    if insert % (16 << 20) == 40 {
        insert - 40
    } else if insert % 8192 == 24 {
        insert - 24
    } else {
        insert
    }
}

pub async fn current_lsn(c: &tokio_postgres::Client) -> Result<u64> {
    let row = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?;
    parse_lsn(row.get::<_, &str>(0)).ok_or_else(|| anyhow!("bad LSN"))
}

/// (confirmed_flush_lsn, active_pid) of a slot.
pub async fn slot_state(
    c: &tokio_postgres::Client,
    slot: &str,
) -> Result<(Option<u64>, Option<u32>)> {
    let row = c
        .query_opt(
            "SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?
        .ok_or_else(|| anyhow!("slot {slot} does not exist"))?;
    let lsn: Option<String> = row.get(0);
    let pid: Option<i32> = row.get(1);
    Ok((lsn.as_deref().and_then(parse_lsn), pid.map(|p| p as u32)))
}

pub fn outbox_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE public.{table} (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, \
         aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)"
    )
}

/// The jsonb payload is `{"ts": <µs>, "pad": "xx…", "seq": n[, "step": k]}`: ~55 bytes plus
/// the padding.
pub fn pad_for(payload_bytes: usize) -> usize {
    payload_bytes.saturating_sub(55)
}

/// `bench_fill_<table>(agg, first, n, per_tx, pad)`: inserts rows first..first+n-1, `per_tx` per
/// transaction.
pub fn fill_procedure(table: &str) -> String {
    format!(
        "CREATE PROCEDURE bench_fill_{table}(agg text, first bigint, n bigint, per_tx int, pad int)
LANGUAGE plpgsql AS $$
DECLARE
  i bigint := 0;
  padding text := repeat('x', pad);
BEGIN
  WHILE i < n LOOP
    INSERT INTO public.{table} (id, aggregatetype, aggregateid, type, payload)
      SELECT gen_random_uuid(), agg, 'agg-' || (g % 1000), 'BenchEvent',
             jsonb_build_object('seq', g, 'ts', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
                                'pad', padding)
      FROM generate_series(first + i, first + least(i + per_tx, n) - 1) g;
    COMMIT;
    i := i + per_tx;
  END LOOP;
END $$"
    )
}

/// `bench_gen_<table>(agg, step, rate, secs, pad, worker, workers, INOUT sent)`: one row per
/// transaction at `rate` rows/s for `secs` seconds (catching up in bursts when behind).
pub fn gen_procedure(table: &str) -> String {
    format!(
        "CREATE PROCEDURE bench_gen_{table}(agg text, step int, rate float8, secs float8, pad int, worker int,
                                           workers int, INOUT sent bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  elapsed float8;
  due bigint;
  seq bigint;
  padding text := repeat('x', pad);
BEGIN
  sent := 0;
  LOOP
    elapsed := extract(epoch FROM clock_timestamp() - t0);
    EXIT WHEN elapsed >= secs;
    due := floor(elapsed * rate)::bigint + 1;
    WHILE sent < due LOOP
      seq := sent * workers + worker;
      INSERT INTO public.{table} (id, aggregatetype, aggregateid, type, payload)
        VALUES (gen_random_uuid(), agg, 'agg-' || (seq % 1000), 'BenchEvent',
                jsonb_build_object('seq', seq, 'step', step,
                                   'ts', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
                                   'pad', padding));
      COMMIT;
      sent := sent + 1;
    END LOOP;
    PERFORM pg_sleep(0.0005);
  END LOOP;
END $$"
    )
}
