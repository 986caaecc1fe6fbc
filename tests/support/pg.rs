//! A throwaway PostgreSQL cluster per test.
//!
//! `initdb` runs into a fresh tempdir; the postmaster is started directly (not via `pg_ctl`) as a
//! child of the test process, so it can be stopped, SIGKILLed and started again on the same port
//! and data directory. As root, both run as the `postgres` system user (they refuse to run as
//! root), and the tempdir is chowned to it.
//!
//! Binaries come from `$PG_BIN`, else the highest `/usr/lib/postgresql/*/bin`, else
//! `pg_config --bindir`, else `$PATH` — the same search as `scripts/env.sh`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, signal, spawn_tied, tail, wait_child};

/// Extra knobs for [`PgCluster::start_with`].
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Appended to `postgresql.conf` after the harness defaults (so they override them), e.g.
    /// `("max_slot_wal_keep_size".into(), "'16MB'".into())`. Values are written verbatim: quote
    /// strings yourself.
    pub extra_conf: Vec<(String, String)>,
    /// Replaces `pg_hba.conf` entirely when set. The default is initdb's `--auth=trust`, which
    /// trusts local, 127.0.0.1 and replication connections.
    pub hba: Option<String>,
    /// The server binaries to use instead of [`pg_bin`], e.g. [`major_bin`]`(17)`.
    pub bin: Option<PathBuf>,
}

/// The server binaries of PostgreSQL `major` that `scripts/install-deps.sh` fetched from npm
/// (`.tools/pg/<major>/bin`), or `None` when they are not there.
pub fn major_bin(major: u32) -> Option<PathBuf> {
    let d = super::repo_root().join(format!(".tools/pg/{major}/bin"));
    d.join("postgres").is_file().then_some(d)
}

/// A running (or stopped) PostgreSQL cluster in a tempdir. Dropping it stops the server
/// (immediate shutdown) and deletes the directory; if the thread is panicking, the tail of the
/// server log is printed first.
pub struct PgCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PgCluster {
    /// initdb + start with the defaults (`wal_level=logical`, trust auth).
    pub fn start() -> PgCluster {
        Self::start_with(PgOptions::default())
    }

    /// initdb + start with extra settings and/or a custom `pg_hba.conf`.
    pub fn start_with(opts: PgOptions) -> PgCluster {
        let bin = opts.bin.clone().unwrap_or_else(pg_bin);
        let run_as = postgres_ids();
        let dir = tempfile::Builder::new()
            .prefix("outboxd-pg-")
            .tempdir()
            .expect("create tempdir for postgres");
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid);
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        File::create(&log).expect("create postgres.log");
        if let Some((uid, gid)) = run_as {
            chown(&log, uid, gid);
        }

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
            .current_dir(dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(append(&log)))
            .stderr(Stdio::from(append(&log)));
        apply_user(&mut initdb, run_as);
        let status = initdb
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}/initdb: {e}", bin.display()));
        assert!(
            status.success(),
            "initdb failed ({status}); log {}:\n{}",
            log.display(),
            tail(&log, 40)
        );

        let port = free_port();
        let mut conf = format!(
            "\n# --- outboxd test harness ---\n\
             port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             wal_level = logical\n\
             max_replication_slots = 20\n\
             max_wal_senders = 20\n\
             fsync = off\n\
             synchronous_commit = on\n\
             full_page_writes = off\n\
             shared_buffers = 32MB\n\
             max_connections = 60\n\
             logging_collector = off\n\
             log_line_prefix = '%m [%p] %q%a '\n",
            dir.path().display()
        );
        for (k, v) in &opts.extra_conf {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("append to postgresql.conf");
        if let Some(hba) = &opts.hba {
            fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        }

        let mut pg = PgCluster {
            dir,
            data,
            log,
            port,
            bin,
            run_as,
            child: None,
        };
        pg.spawn_and_wait();
        pg
    }

    /// A streaming physical standby of `primary`, on a port of its own, as `pg_basebackup -R`
    /// would set it up: a physical slot `slot` on the primary (`primary_slot_name`), the primary's
    /// data directory copied while it is briefly stopped (a clean shutdown, so the copy needs no
    /// recovery beyond streaming), `standby.signal`, `primary_conninfo` (with `dbname`, which slot
    /// synchronization needs) and `hot_standby_feedback`. `extra_conf` is appended after (e.g.
    /// `sync_replication_slots = on` on PostgreSQL 17+). Waits until the standby accepts
    /// connections.
    pub async fn standby_of(
        primary: &mut PgCluster,
        slot: &str,
        extra_conf: &[(&str, &str)],
    ) -> PgCluster {
        let c = primary.client().await;
        c.execute(
            "SELECT pg_create_physical_replication_slot($1, true)",
            &[&slot],
        )
        .await
        .expect("create the standby's physical slot");
        drop(c);
        let dir = tempfile::Builder::new()
            .prefix("outboxd-pg-standby-")
            .tempdir()
            .expect("create tempdir for the standby");
        if let Some((uid, gid)) = primary.run_as {
            chown(dir.path(), uid, gid);
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        File::create(&log).expect("create postgres.log");
        if let Some((uid, gid)) = primary.run_as {
            chown(&log, uid, gid);
        }
        primary.stop();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&primary.data)
            .arg(&data)
            .status()
            .expect("run cp");
        assert!(
            status.success(),
            "copying the primary's data directory failed"
        );
        primary.start_again();
        // The copy is not the primary: no pid file, no slots of its own.
        let _ = fs::remove_file(data.join("postmaster.pid"));
        for e in fs::read_dir(data.join("pg_replslot"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = fs::remove_dir_all(e.path());
        }
        let port = free_port();
        let mut conf = format!(
            "\n# --- outboxd test harness: standby of port {primary_port} ---\n\
             port = {port}\n\
             unix_socket_directories = '{sock}'\n\
             primary_conninfo = 'host=127.0.0.1 port={primary_port} user=postgres dbname=postgres application_name={slot}'\n\
             primary_slot_name = '{slot}'\n\
             hot_standby = on\n\
             hot_standby_feedback = on\n\
             wal_receiver_status_interval = 1s\n",
            primary_port = primary.port,
            sock = dir.path().display(),
        );
        for (k, v) in extra_conf {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("append to the standby's postgresql.conf");
        File::create(data.join("standby.signal")).expect("create standby.signal");
        if let Some((uid, gid)) = primary.run_as {
            chown(&data.join("standby.signal"), uid, gid);
        }
        let mut standby = PgCluster {
            dir,
            data,
            log,
            port,
            bin: primary.bin.clone(),
            run_as: primary.run_as,
            child: None,
        };
        standby.spawn_and_wait();
        standby
    }

    /// Promotes a standby (`pg_promote`, waiting until it is done).
    pub async fn promote(&self) {
        let c = self.client().await;
        let done: bool = c
            .query_one("SELECT pg_promote(true, 60)", &[])
            .await
            .expect("pg_promote")
            .get(0);
        assert!(
            done,
            "the standby on port {} was not promoted within 60 s",
            self.port
        );
    }

    /// The server's major version (`server_version_num / 10000`).
    pub async fn major_version(&self) -> u32 {
        let c = self.client().await;
        let v: String = c
            .query_one("SHOW server_version_num", &[])
            .await
            .expect("SHOW server_version_num")
            .get(0);
        v.parse::<u32>().expect("a number") / 10000
    }

    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB?sslmode=disable`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server log file (initdb output, then the postmaster's stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// The directory holding the Unix socket (and the data dir and log).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The postmaster's pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the postmaster is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A connected client on database `postgres` (the connection task is spawned on the current
    /// tokio runtime).
    pub async fn client(&self) -> tokio_postgres::Client {
        self.client_db("postgres").await
    }

    /// A connected client on database `db`.
    pub async fn client_db(&self, db: &str) -> tokio_postgres::Client {
        let url = self.url(db);
        let mut last_err = None;
        for _ in 0..50 {
            match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    return client;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!(
            "cannot connect to {url}: {:?}\nserver log:\n{}",
            last_err,
            self.log_tail(30)
        );
    }

    /// Fast shutdown (SIGINT: abort sessions, checkpoint, exit) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGINT);
            if wait_child(&mut child, Duration::from_secs(30)).is_none() {
                kill_tree(&mut child);
            }
        }
    }

    /// Simulates a crash of the database host's processes: SIGKILL to the postmaster and to all
    /// of its children (backends, walsenders, checkpointer...), with no shutdown checkpoint. The
    /// next [`start_again`](Self::start_again) runs crash recovery. (`fsync=off` is harmless here:
    /// the OS page cache survives a process kill.)
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(&mut child);
        }
    }

    /// Starts the server again on the same port and data directory (after `stop` or `kill9`).
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "start_again: server is already running"
        );
        self.spawn_and_wait();
    }

    fn spawn_and_wait(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut cmd = Command::new(self.bin.join("postgres"));
            cmd.arg("-D")
                .arg(&self.data)
                .current_dir(self.dir.path())
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .stdout(Stdio::from(append(&self.log)))
                .stderr(Stdio::from(append(&self.log)));
            apply_user(&mut cmd, self.run_as);
            let mut child = spawn_tied(cmd)
                .unwrap_or_else(|e| panic!("cannot start {}/postgres: {e}", self.bin.display()));
            match self.wait_ready(&mut child, deadline) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(exited) => {
                    kill_tree(&mut child);
                    // A previous incarnation's processes may still hold the shared memory
                    // block or the port for a moment after a kill: retry until the deadline.
                    if !exited || Instant::now() >= deadline {
                        panic!(
                            "postgres did not start on port {}; log {}:\n{}",
                            self.port,
                            self.log.display(),
                            self.log_tail(40)
                        );
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
    }

    /// Ok when postmaster.pid names this child and says "ready"; Err(true) if the child exited,
    /// Err(false) on timeout.
    fn wait_ready(&self, child: &mut Child, deadline: Instant) -> Result<(), bool> {
        let pidfile = self.data.join("postmaster.pid");
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(true);
            }
            if let Ok(text) = fs::read_to_string(&pidfile) {
                let lines: Vec<&str> = text.lines().collect();
                // Line 1: pid; line 8: postmaster status ("starting", "ready", "stopping").
                if lines.len() >= 8
                    && lines[0].trim() == child.id().to_string()
                    && lines[7].trim() == "ready"
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(false);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- postgres log tail ({}) ----\n{}\n----",
                self.log.display(),
                self.log_tail(40)
            );
        }
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: no checkpoint, children are told to quit at once.
            signal(child.id(), libc::SIGQUIT);
            if wait_child(&mut child, Duration::from_secs(5)).is_none() {
                kill_tree(&mut child);
            }
        }
    }
}

/// SIGKILLs the postmaster and every process whose parent it is, then reaps it.
fn kill_tree(child: &mut Child) {
    let pid = child.id();
    let kids = children_of(pid);
    signal(pid, libc::SIGKILL);
    for k in kids {
        signal(k, libc::SIGKILL);
    }
    let _ = child.wait();
    // Backends notice postmaster death by themselves too; give the kernel a moment to reap them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !children_of_gone(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn children_of_gone(pid: u32) -> bool {
    children_of(pid).is_empty()
}

/// Pids whose parent is `pid`, read from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) {
            // Fields after the ")" that closes the command name: state, ppid, ...
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
                let mut f = rest.split_whitespace();
                let _state = f.next();
                if f.next().and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn apply_user(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
        cmd.env("HOME", "/tmp").env("USER", "postgres");
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: plain chown(2) on a NUL-terminated path.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(
        rc,
        0,
        "chown {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// As root: the uid/gid of the `postgres` system user (initdb/postgres refuse to run as root).
/// As anyone else: `None` (run as yourself).
pub fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid never fails.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
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
    assert!(
        rc == 0 && !result.is_null(),
        "running as root but there is no `postgres` system user (initdb refuses to run as root); \
         run scripts/install-deps.sh or `useradd --system --home /var/lib/postgresql postgres`"
    );
    Some((pwd.pw_uid, pwd.pw_gid))
}

/// The directory holding initdb/postgres/pg_ctl/pg_recvlogical.
pub fn pg_bin() -> PathBuf {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(d) = std::env::var("PG_BIN") {
        let d = PathBuf::from(d);
        if has_initdb(&d) {
            return d;
        }
        panic!("PG_BIN={} has no initdb/postgres", d.display());
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let d = e.path().join("bin");
            has_initdb(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return d;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&d) {
            return d;
        }
    }
    if let Some(p) = super::find_executable("__NO_ENV__", &[], "initdb") {
        if let Some(d) = p.parent() {
            if has_initdb(d) {
                return d.to_path_buf();
            }
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, postgres) not found: set PG_BIN, or run \
         scripts/install-deps.sh (installs postgresql) and `source scripts/env.sh`"
    );
}
