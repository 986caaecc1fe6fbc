//! Integration tests of the walsender connection (`outboxd::source::connection`), its TLS modes
//! and authentication methods, and `ConnectParams::connect_sql`, against real throwaway Postgres
//! clusters from `tests/support` (initdb into a tempdir, `wal_level=logical`).
//!
//! TLS material (a CA, a server certificate for `localhost`, a client certificate and a second,
//! unrelated CA) is generated with the `openssl` command-line tool.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use outboxd::lsn::Lsn;
use outboxd::source::{
    ConnectParams, ReplicationConnection, ReplicationMessage, ReplicationStream, SourceError,
};
use support::{PgCluster, PgOptions};

const STEP: Duration = Duration::from_secs(15);

fn params(url: &str) -> ConnectParams {
    ConnectParams::from_url_with_env(url, |_| None).expect("test URL parses")
}

/// A superuser SQL client over TCP with the given sslmode.
async fn admin(pg: &PgCluster, sslmode: &str) -> tokio_postgres::Client {
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode={sslmode}",
        pg.port()
    );
    params(&url)
        .connect_sql()
        .await
        .unwrap_or_else(|e| panic!("admin connection: {e}\n{}", pg.log_tail(20)))
}

/// Creates a LOGIN REPLICATION role whose password is stored with `encryption` (md5 / scram-sha-256).
async fn create_user(c: &tokio_postgres::Client, user: &str, password: &str, encryption: &str) {
    c.batch_execute(&format!(
        "SET password_encryption = '{encryption}'; \
         CREATE ROLE {user} LOGIN REPLICATION PASSWORD '{password}'"
    ))
    .await
    .unwrap_or_else(|e| panic!("create role {user}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

const AUTH_HBA: &str = "\
local all all trust
host all postgres 127.0.0.1/32 trust
host all u_trust 127.0.0.1/32 trust
host all u_password 127.0.0.1/32 password
host all u_md5 127.0.0.1/32 md5
host all u_scram 127.0.0.1/32 scram-sha-256
host all u_norepl 127.0.0.1/32 trust
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_methods() {
    let pg = PgCluster::start_with(PgOptions {
        extra_conf: vec![],
        hba: Some(AUTH_HBA.to_string()),
        ..Default::default()
    });
    let c = admin(&pg, "disable").await;
    create_user(&c, "u_trust", "unused", "scram-sha-256").await;
    create_user(&c, "u_password", "pw-Cleartext1", "scram-sha-256").await;
    create_user(&c, "u_md5", "pw-Md5-2", "md5").await;
    create_user(&c, "u_scram", "pw-Scr@m:3", "scram-sha-256").await;
    c.batch_execute("CREATE ROLE u_norepl LOGIN").await.unwrap();
    // The md5 method only really uses MD5 when the password is stored as MD5.
    let stored: String = c
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'u_md5'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("md5"), "{stored}");

    let port = pg.port();
    let url = |user: &str, pw: Option<&str>| {
        let auth = match pw {
            Some(pw) => format!("{user}:{}", pw.replace('@', "%40").replace(':', "%3A")),
            None => user.to_string(),
        };
        format!("postgres://{auth}@127.0.0.1:{port}/postgres?sslmode=disable")
    };

    for (user, pw) in [
        ("u_trust", None),
        ("u_password", Some("pw-Cleartext1")),
        ("u_md5", Some("pw-Md5-2")),
        ("u_scram", Some("pw-Scr@m:3")),
    ] {
        let mut conn = ReplicationConnection::connect(&params(&url(user, pw)))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}\n{}", pg.log_tail(20)));
        assert!(!conn.is_tls());
        assert!(conn.backend_pid().is_some());
        assert!(conn.parameter("server_version").is_some());
        let id = conn.identify_system().await.unwrap();
        assert_eq!(id.dbname.as_deref(), Some("postgres"), "{user}");
        conn.close().await;

        // The ordinary SQL connection authenticates the same way.
        let sql = params(&url(user, pw)).connect_sql().await.unwrap();
        let who: String = sql
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, user);
    }

    // Wrong passwords: an authentication error naming user and method, never the password.
    for (user, method) in [
        ("u_password", "password"),
        ("u_md5", "md5"),
        ("u_scram", "SCRAM-SHA-256"),
    ] {
        let secret = "Wr0ng-S3cret-Value";
        let err = ReplicationConnection::connect(&params(&url(user, Some(secret))))
            .await
            .expect_err("wrong password must fail");
        let text = err.to_string();
        let debug = format!("{err:?}");
        eprintln!("expected auth failure: {text}");
        assert!(!text.contains(secret) && !debug.contains(secret), "{debug}");
        match &err {
            SourceError::Auth {
                user: u, method: m, ..
            } => {
                assert_eq!(u, user);
                assert_eq!(m, method);
            }
            other => panic!("{user}: expected an auth error, got {other:?}"),
        }
        assert_eq!(err.code(), Some("28P01"), "{text}");
        assert!(!err.is_transient());
        assert!(text.contains(user) && text.contains("fix:"), "{text}");

        let err = params(&url(user, Some(secret)))
            .connect_sql()
            .await
            .expect_err("wrong password must fail (SQL)");
        assert!(matches!(err, SourceError::Auth { .. }), "{err:?}");
        assert!(!format!("{err:?}").contains(secret));
    }

    // No password at all where one is needed.
    let err = ReplicationConnection::connect(&params(&url("u_scram", None)))
        .await
        .expect_err("missing password must fail");
    assert!(
        matches!(&err, SourceError::Auth { fix, .. } if fix.contains("PGPASSWORD")),
        "{err:?}"
    );

    // A role without REPLICATION cannot open a walsender: a server error with SQLSTATE 42501.
    let err = ReplicationConnection::connect(&params(&url("u_norepl", None)))
        .await
        .expect_err("role without REPLICATION");
    assert_eq!(err.code(), Some("42501"), "{err}");
    assert!(!err.is_transient());

    // No pg_hba.conf line: 28000 as an auth error.
    let err = ReplicationConnection::connect(&params(&url("nobody", None)))
        .await
        .expect_err("no hba entry");
    assert!(matches!(err, SourceError::Auth { .. }), "{err:?}");
    assert_eq!(err.code(), Some("28000"));

    // sslmode=prefer against a server without TLS falls back to plain TCP.
    let conn = ReplicationConnection::connect(&params(&format!(
        "postgres://u_trust@127.0.0.1:{port}/postgres?sslmode=prefer"
    )))
    .await
    .unwrap();
    assert!(!conn.is_tls());
    conn.close().await;

    // sslmode=require against it fails with a TLS error that says what to change.
    let err = ReplicationConnection::connect(&params(&format!(
        "postgres://u_trust@127.0.0.1:{port}/postgres?sslmode=require"
    )))
    .await
    .expect_err("server without TLS");
    assert!(matches!(err, SourceError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("ssl"), "{err}");

    // Simple queries: rows as text, NULLs, and an error leaves the connection usable.
    let mut conn = ReplicationConnection::connect(&params(&url("u_trust", None)))
        .await
        .unwrap();
    let rows = conn
        .simple_query("SELECT 1 AS a, NULL::text AS b, 'x''y' AS c")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![Some("1".to_string()), None, Some("x'y".to_string())]]
    );
    let err = conn.simple_query("SELECT 1/0").await.unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    let rows = conn.simple_query("SELECT 2").await.unwrap();
    assert_eq!(rows, vec![vec![Some("2".to_string())]]);
    conn.close().await;
}

#[tokio::test]
async fn connect_errors_are_classified() {
    // Nothing listens: an I/O error, transient.
    let port = support::free_port();
    let err = ReplicationConnection::connect(&params(&format!(
        "postgres://u@127.0.0.1:{port}/d?sslmode=disable&connect_timeout=5"
    )))
    .await
    .expect_err("connection refused");
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
    assert!(err.is_transient());

    // Something accepts TCP but never answers: bounded by connect_timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = ReplicationConnection::connect(&params(&format!(
        "postgres://u@127.0.0.1:{port}/d?sslmode=prefer&connect_timeout=1"
    )))
    .await
    .expect_err("silent server");
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    // The Timeout error says connect_timeout fired; this only guards against a wait for ever
    // (a generous bound: a loaded machine must not fail it).
    assert!(started.elapsed() < Duration::from_secs(60));
    drop(listener);
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
    client_crt: PathBuf,
    client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (is the openssl CLI installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for DNS:localhost signed by it, a client certificate for
/// `certuser`, and an unrelated CA. Readable by the `postgres` user; keys are 0600.
fn make_certs() -> Certs {
    let dir = tempfile::Builder::new()
        .prefix("outboxd-tls-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other_ca"] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, crt, subj) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=outboxd test {ca}"),
        );
        args.extend([
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &args);
    }
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "certuser",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        ),
    ] {
        let (key, csr, crt, extfile, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
            format!("/CN={cn}"),
        );
        std::fs::write(d.join(&extfile), ext).unwrap();
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(d, &args);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ],
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let ids = support::pg::postgres_ids();
    for entry in std::fs::read_dir(d).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "key") {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
    }
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
    }
    Certs {
        ca: d.join("ca.crt"),
        other_ca: d.join("other_ca.crt"),
        server_crt: d.join("server.crt"),
        server_key: d.join("server.key"),
        client_crt: d.join("client.crt"),
        client_key: d.join("client.key"),
        _dir: dir,
    }
}

const TLS_HBA: &str = "\
local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all scramuser 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 trust
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes() {
    let certs = make_certs();
    let quote = |p: &Path| format!("'{}'", p.display());
    let pg = PgCluster::start_with(PgOptions {
        extra_conf: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), quote(&certs.server_crt)),
            ("ssl_key_file".into(), quote(&certs.server_key)),
            ("ssl_ca_file".into(), quote(&certs.ca)),
        ],
        hba: Some(TLS_HBA.to_string()),
        ..Default::default()
    });
    let port = pg.port();
    let c = admin(&pg, "require").await;
    create_user(&c, "scramuser", "tls-Scram-pw", "scram-sha-256").await;
    c.batch_execute("CREATE ROLE certuser LOGIN REPLICATION")
        .await
        .unwrap();
    let in_tls: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(in_tls, "connect_sql with sslmode=require uses TLS");

    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");
    let ca = certs.ca.display().to_string();
    let other_ca = certs.other_ca.display().to_string();

    // Modes that must succeed, over TLS.
    for u in [
        url("127.0.0.1", "sslmode=require"),
        url("127.0.0.1", "sslmode=prefer"),
        url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
    ] {
        let mut conn = ReplicationConnection::connect(&params(&u))
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
        assert!(conn.is_tls(), "{u}");
        let id = conn.identify_system().await.unwrap();
        assert_eq!(id.dbname.as_deref(), Some("postgres"));
        conn.close().await;

        let sql = params(&u)
            .connect_sql()
            .await
            .unwrap_or_else(|e| panic!("connect_sql {u}: {e}"));
        let ssl: bool = sql
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ssl, "{u}");
    }

    // Modes that must fail with a TLS error.
    for u in [
        // Signed by another CA.
        url(
            "127.0.0.1",
            &format!("sslmode=verify-ca&sslrootcert={other_ca}"),
        ),
        url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={other_ca}"),
        ),
        // libpq semantics: an explicit sslrootcert makes `require` verify the chain.
        url(
            "127.0.0.1",
            &format!("sslmode=require&sslrootcert={other_ca}"),
        ),
        // The certificate names DNS:localhost, not the IP address 127.0.0.1.
        url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        // Not signed by a public CA (webpki roots are used without sslrootcert).
        url("localhost", "sslmode=verify-full"),
    ] {
        let err = ReplicationConnection::connect(&params(&u))
            .await
            .expect_err(&u);
        eprintln!("expected failure for {u}: {err}");
        assert!(matches!(err, SourceError::Tls { .. }), "{u}: {err:?}");
        assert!(!err.is_transient());
        let err = params(&u).connect_sql().await.expect_err(&u);
        eprintln!("expected connect_sql failure: {err}");
        assert!(
            matches!(err, SourceError::Tls { .. }),
            "connect_sql {u}: {err:?}"
        );
    }

    // hostssl-only pg_hba.conf: a plain connection is rejected (28000, an auth error).
    let u = url("127.0.0.1", "sslmode=disable");
    let err = ReplicationConnection::connect(&params(&u))
        .await
        .expect_err("plain connection to a hostssl-only server");
    assert!(matches!(err, SourceError::Auth { .. }), "{err:?}");
    assert_eq!(err.code(), Some("28000"));
    let err = params(&u).connect_sql().await.expect_err(&u);
    assert_eq!(err.code(), Some("28000"), "{err:?}");

    // SCRAM over TLS (the server also offers SCRAM-SHA-256-PLUS; we use plain SCRAM, "n,,").
    let u = format!(
        "postgres://scramuser:tls-Scram-pw@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    );
    let conn = ReplicationConnection::connect(&params(&u)).await.unwrap();
    assert!(conn.is_tls());
    conn.close().await;
    params(&u).connect_sql().await.unwrap();

    // Client certificate authentication (`cert` in pg_hba.conf, CN = user name).
    let with_cert = format!(
        "postgres://certuser@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}\
         &sslcert={}&sslkey={}",
        certs.client_crt.display(),
        certs.client_key.display()
    );
    let conn = ReplicationConnection::connect(&params(&with_cert))
        .await
        .unwrap_or_else(|e| panic!("client cert: {e}\n{}", pg.log_tail(20)));
    conn.close().await;
    params(&with_cert).connect_sql().await.unwrap();
    let without_cert = format!(
        "postgres://certuser@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    );
    let err = ReplicationConnection::connect(&params(&without_cert))
        .await
        .expect_err("cert auth without a client certificate");
    eprintln!("expected failure without client certificate: {err}");
    assert!(
        matches!(err, SourceError::Auth { .. }) || matches!(err, SourceError::Tls { .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Replication
// ---------------------------------------------------------------------------------------------

/// The next XLogData payload, answering keepalives that ask for a reply; panics after `STEP`.
async fn next_xlog(stream: &mut ReplicationStream) -> (Lsn, bytes::Bytes) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("timed out waiting for XLogData")
            .expect("stream error")
            .expect("stream ended");
        match msg {
            ReplicationMessage::XLogData {
                wal_start, data, ..
            } => return (wal_start, data),
            ReplicationMessage::Keepalive {
                reply_requested: true,
                wal_end,
                ..
            } => stream
                .send_status(wal_end, Lsn::ZERO, Lsn::ZERO, false)
                .await
                .unwrap(),
            ReplicationMessage::Keepalive { .. } => {}
        }
    }
}

async fn slot_state(c: &tokio_postgres::Client, slot: &str) -> (bool, Option<Lsn>) {
    let row = c
        .query_one(
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    let lsn: Option<String> = row.get(1);
    (row.get(0), lsn.map(|s| s.parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_stream() {
    let pg = PgCluster::start_with(PgOptions {
        extra_conf: vec![("wal_sender_timeout".into(), "'2s'".into())],
        hba: None,
        ..Default::default()
    });
    let c = pg.client().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE PUBLICATION outboxd FOR TABLE t",
    )
    .await
    .unwrap();
    // Separately: a slot cannot be created in a transaction that has written.
    c.batch_execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        .await
        .unwrap();
    let url = pg.url("postgres");

    let mut conn = ReplicationConnection::connect(&params(&url)).await.unwrap();
    let id = conn.identify_system().await.unwrap();
    assert_eq!(id.dbname.as_deref(), Some("postgres"));
    assert!(id.timeline >= 1);
    assert!(id.xlogpos > Lsn::ZERO);
    assert!(id.system_id > 0);
    let pid = conn.backend_pid().unwrap();

    let options = [("proto_version", "1"), ("publication_names", "\"outboxd\"")];
    let mut stream = conn
        .start_replication("s", Lsn::ZERO, &options)
        .await
        .unwrap_or_else(|e| panic!("start_replication: {e}\n{}", pg.log_tail(20)));
    assert!(slot_state(&c, "s").await.0, "slot active while streaming");

    // A second consumer of the same slot is refused with 55006, which is transient.
    let other = ReplicationConnection::connect(&params(&url)).await.unwrap();
    let err = other
        .start_replication("s", Lsn::ZERO, &options)
        .await
        .expect_err("slot already active");
    assert_eq!(err.code(), Some("55006"), "{err}");
    assert!(err.is_transient());
    // Unknown slot: 42704, not transient.
    let other = ReplicationConnection::connect(&params(&url)).await.unwrap();
    let err = other
        .start_replication("no_such_slot", Lsn::ZERO, &options)
        .await
        .expect_err("missing slot");
    assert_eq!(err.code(), Some("42704"), "{err}");
    assert!(!err.is_transient());

    c.execute("INSERT INTO t VALUES (1, 'hello')", &[])
        .await
        .unwrap();

    // Begin, Relation, Insert, Commit (pgoutput v1). Reading through a 1 ms timeout exercises
    // cancellation of `next()` between partial reads: nothing may be lost.
    let mut kinds = Vec::new();
    let mut commit_end = None;
    let deadline = Instant::now() + STEP;
    while commit_end.is_none() {
        assert!(Instant::now() < deadline, "no Commit; got {kinds:?}");
        let msg = match tokio::time::timeout(Duration::from_millis(1), stream.next()).await {
            Err(_) => continue,
            Ok(r) => r.unwrap().expect("stream ended"),
        };
        if let ReplicationMessage::XLogData { data, .. } = msg {
            let kind = data[0] as char;
            kinds.push(kind);
            if kind == 'C' {
                // Commit: flags (1), commit LSN (8), end LSN (8), timestamp (8).
                let end = u64::from_be_bytes(data[10..18].try_into().unwrap());
                commit_end = Some(Lsn(end));
            }
        }
    }
    let commit_end = commit_end.unwrap();
    assert_eq!(kinds.first(), Some(&'B'), "{kinds:?}");
    assert!(kinds.contains(&'I'), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&'C'), "{kinds:?}");

    // With wal_sender_timeout=2s the server asks for a reply within about a second. Answer every
    // request for 3 s: the walsender would drop us after 2 s without replies.
    let mut answered = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let msg = match tokio::time::timeout_at(until, stream.next()).await {
            Err(_) => break,
            Ok(r) => r
                .unwrap_or_else(|e| panic!("stream failed: {e}\n{}", pg.log_tail(20)))
                .expect("server ended the stream: keepalive replies not accepted"),
        };
        if let ReplicationMessage::Keepalive {
            reply_requested: true,
            ..
        } = msg
        {
            stream
                .send_status(commit_end, Lsn::ZERO, Lsn::ZERO, false)
                .await
                .unwrap();
            answered += 1;
        }
    }
    assert!(answered >= 1, "no keepalive asked for a reply");

    // Confirming the commit's end moves confirmed_flush_lsn.
    let before = slot_state(&c, "s").await.1.unwrap();
    assert!(before < commit_end, "{before} < {commit_end}");
    stream
        .send_status(commit_end, commit_end, commit_end, true)
        .await
        .unwrap();
    let moved = support::wait_for(Duration::from_secs(5), || async {
        let lsn = slot_state(&c, "s").await.1?;
        (lsn >= commit_end).then_some(lsn)
    })
    .await;
    assert!(
        moved.is_some(),
        "confirmed_flush_lsn did not reach {commit_end}"
    );

    // close() ends the walsender: the slot is free, and the walsender gone. (The slot is released
    // a moment before the backend leaves pg_stat_replication.) Waited for up to 30 s, a bound a
    // loaded machine cannot cross; a walsender left behind would stay for ever.
    stream.close(Duration::from_secs(5)).await.unwrap();
    let released = Instant::now();
    let freed = support::wait_until(Duration::from_secs(30), || async {
        !slot_state(&c, "s").await.0
    })
    .await;
    assert!(freed, "slot still active 30 s after close()");
    let walsenders = || async {
        c.query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    let gone = support::wait_until(Duration::from_secs(30), || async {
        walsenders().await == 0
    })
    .await;
    assert!(
        gone,
        "walsender still there {:?} after close()",
        released.elapsed()
    );

    // Restarting from 0/0 resumes after the confirmed commit: the next transaction comes first.
    let conn = ReplicationConnection::connect(&params(&url)).await.unwrap();
    let pid = conn.backend_pid().unwrap();
    let mut stream = conn
        .start_replication("s", Lsn::ZERO, &options)
        .await
        .unwrap();
    c.execute("INSERT INTO t VALUES (2, 'again')", &[])
        .await
        .unwrap();
    let (wal_start, data) = next_xlog(&mut stream).await;
    assert_eq!(data[0], b'B');
    assert!(wal_start >= commit_end || wal_start == Lsn::ZERO);
    loop {
        let (_, data) = next_xlog(&mut stream).await;
        if data[0] == b'I' {
            // Insert: relation oid (4), 'N', column count (2), then columns; the new row has id 2.
            let text = String::from_utf8_lossy(&data);
            assert!(text.contains("again"), "{text}");
            break;
        }
    }

    // A terminated walsender: the stream reports 57P01 (transient) or simply ends.
    c.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("stream did not notice the termination")
        {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                assert_eq!(e.code(), Some("57P01"), "{e}");
                assert!(e.is_transient());
                break;
            }
        }
    }
    // Closing a dead stream does not hang.
    let _ = stream.close(Duration::from_secs(2)).await;
}
