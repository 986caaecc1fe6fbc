//! The benchmark's PostgreSQL (initdb into the work directory, the settings of
//! docs/benchmarks.md), and the SQL the scenarios run: LSNs, slot state, the outbox table, the
//! procedures that fill a backlog and generate the steady load.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::system::{free_port, signal, spawn_tied, tail, wait_child};

pub struct Postgres {
    pub port: u16,
    pub bin: PathBuf,
    pub child: Option<Child>,
}

/// The directory holding initdb, postgres and pg_recvlogical: `$PG_BIN`, else the highest
/// `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`, else `$PATH` (as scripts/env.sh).
pub fn pg_bin() -> Result<PathBuf> {
    let ok = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(d) = std::env::var("PG_BIN") {
        let d = PathBuf::from(d);
        if ok(&d) {
            return Ok(d);
        }
        bail!("PG_BIN={} has no initdb/postgres", d.display());
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let d = e.path().join("bin");
            ok(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Ok(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && ok(&d) {
            return Ok(d);
        }
    }
    if let Some(p) = on_path("initdb") {
        if let Some(d) = p.parent().filter(|d| ok(d)) {
            return Ok(d.to_path_buf());
        }
    }
    bail!("PostgreSQL server binaries not found: run scripts/install-deps.sh and `source scripts/env.sh`, or set PG_BIN")
}

pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// As root, the uid/gid of the `postgres` user (initdb and postgres refuse to run as root).
pub fn postgres_ids() -> Result<Option<(u32, u32)>> {
    // SAFETY: geteuid never fails.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: an all-zero passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r with a valid buffer; `result` is only read if non-null.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("running as root but there is no `postgres` user: run scripts/install-deps.sh");
    }
    Ok(Some((pwd.pw_uid, pwd.pw_gid)))
}

pub fn chown(path: &Path, ids: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Some((uid, gid)) = ids else {
        return Ok(());
    };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: chown(2) on a NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
        bail!(
            "chown {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

pub fn as_user(cmd: &mut Command, ids: Option<(u32, u32)>) {
    if let Some((uid, gid)) = ids {
        cmd.uid(uid)
            .gid(gid)
            .env("HOME", "/tmp")
            .env("USER", "postgres");
    }
}

pub fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

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

impl Postgres {
    pub fn start(work: &Path) -> Result<Postgres> {
        let bin = pg_bin()?;
        let ids = postgres_ids()?;
        let dir = work.join("pg");
        fs::create_dir_all(&dir)?;
        chown(&dir, ids)?;
        let data = dir.join("data");
        let log = dir.join("postgres.log");
        File::create(&log)?;
        chown(&log, ids)?;
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        as_user(&mut initdb, ids);
        let st = initdb
            .status()
            .with_context(|| format!("run {}/initdb", bin.display()))?;
        if !st.success() {
            bail!("initdb failed ({st}):\n{}", tail(&log, 30));
        }
        let port = free_port();
        let conf = format!(
            "\n# --- outboxd bench ---\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n{PG_CONF}",
            dir.display()
        );
        append(&data.join("postgresql.conf"))?.write_all(conf.as_bytes())?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)?))
            .stderr(Stdio::from(append(&log)?));
        as_user(&mut cmd, ids);
        let mut child =
            spawn_tied(cmd).with_context(|| format!("start {}/postgres", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let pidfile = data.join("postmaster.pid");
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                bail!("postgres exited ({st}):\n{}", tail(&log, 30));
            }
            let ready = fs::read_to_string(&pidfile).is_ok_and(|t| {
                let l: Vec<&str> = t.lines().collect();
                l.len() >= 8 && l[0].trim() == child.id().to_string() && l[7].trim() == "ready"
            });
            if ready {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                bail!("postgres not ready after 60 s:\n{}", tail(&log, 30));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Postgres {
            port,
            bin,
            child: Some(child),
        })
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .context("connect to the bench Postgres")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: no checkpoint.
            signal(child.id(), libc::SIGQUIT);
            if wait_child(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

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
