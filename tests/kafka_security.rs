//! Kafka over TLS and SASL: outboxd's `[kafka]` security properties reach librdkafka and work end
//! to end, and the SASL password never shows in outboxd's log or metrics.
//!
//! What tansu 0.6 (the test broker) allows, and so what runs here:
//! - TLS: `tansu broker` cannot serve TLS (its `--cert` and `--key` belong to one exclusive clap
//!   group, so giving both is a usage error, and it needs both). TLS is terminated instead by a
//!   small rustls proxy in this file, in front of a plaintext tansu that advertises the proxy's
//!   port: the client side (librdkafka's OpenSSL, CA and host name verification) is real.
//! - SASL/SCRAM-SHA-256 and -512: with `--authentication` tansu runs the SCRAM exchange, but no user
//!   can ever log in: users are created through the broker (`tansu user create`), which
//!   `--authentication` refuses before authentication, and its storage (memory, or S3, where users
//!   are not written) does not carry users from a non-authenticating broker process to another.
//!   Against tansu the tests check the failure path: the SCRAM exchange runs, the refusal is
//!   logged as a SASL authentication error, outboxd keeps running and retrying, no password in
//!   the log or metrics. The success path (and a wrong password for an existing user) runs
//!   through [`gateway`], a small SASL server in this file (SCRAM-SHA-256/512 per RFC 5802/7677,
//!   PLAIN) in front of a plaintext tansu; and against a real cluster you name
//!   (`sasl_relays_end_to_end_on_a_cluster_you_name`, opt-in).
//! - SASL/PLAIN: tansu does not support it (it drops the connection at the handshake); the
//!   gateway does.
//!
//! All of it SKIPs with `KAFKA_BOOTSTRAP_SERVERS` set (an external cluster has none of these
//! listeners) or without the `openssl` command (used to make the test CA and certificate).

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{unique, Outboxd, PgCluster, Record};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";
const PASSWORD: &str = "Kafka-S3cret-pw-7f3a";

/// Why the tests here cannot run, if they cannot.
fn skip_reason() -> Option<String> {
    if let Some(b) = support::external_kafka() {
        return Some(format!(
            "KAFKA_BOOTSTRAP_SERVERS={b} is set: an external cluster has no TLS/SASL listener \
             set up by this test"
        ));
    }
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("the openssl command is missing (scripts/install-deps.sh installs it)".into()),
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=outboxd test CA",
    ]);
    openssl(d, &ca);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(d, &csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Pki {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
        _dir: dir,
    }
}

/// A tansu of this test's own (not the shared one), killed on drop.
struct Tansu {
    child: Child,
    log: PathBuf,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- tansu log ----\n{}", support::tail(&self.log, 30));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts tansu on `listen` advertising `advertised`, with `extra` arguments; waits until its port
/// accepts connections (a metadata request would fail with `--authentication`).
fn start_tansu(listen: u16, advertised: u16, extra: &[&str]) -> Tansu {
    let log = support::target_tmp().join(format!("tansu-sec-{}-{listen}.log", std::process::id()));
    let child = support::broker::spawn_tansu_with(listen, advertised, &log, extra);
    let t = Tansu { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", listen)).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not listen on {listen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t
}

/// A TLS terminator: accepts TLS on 127.0.0.1:<returned port> with `pki`'s server certificate and
/// forwards the plaintext to 127.0.0.1:`upstream`. Runs until the test's runtime ends.
async fn tls_terminator(pki: &Pki, upstream: u16) -> u16 {
    use tokio::io::copy_bidirectional;
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&pki.cert).unwrap(),
    ))
    .collect::<Result<_, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&pki.key).unwrap(),
    ))
    .unwrap()
    .expect("a private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake (e.g. a client that does not trust the CA) just ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let _ = copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    port
}

fn kafka_toml(props: &[(&str, &str)]) -> String {
    props
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect()
}

async fn database() -> (PgCluster, tokio_postgres::Client) {
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    (pg, client)
}

/// outboxd relays three outbox rows to `bootstrap` with the `[kafka]` properties `outboxd_props`
/// (secret references allowed; `envs` for `${env:...}`), and a client configured with
/// `reader_props` reads exactly those records back. Returns outboxd's log, `/metrics` and the
/// topic.
async fn relay_and_read_back(
    bootstrap: &str,
    outboxd_props: &[(&str, &str)],
    envs: &[(&str, &str)],
    reader_props: &[(&str, &str)],
) -> (String, String, String) {
    let (pg, client) = database().await;
    let http_port = support::free_port();
    let cfg = format!(
        "{}{}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap),
        kafka_toml(outboxd_props)
    );
    let mut envs = envs.to_vec();
    envs.push(("RUST_LOG", "debug"));
    let mut outboxd = Outboxd::start_with(&cfg, &[], &envs);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(45))
            .await,
        "outboxd did not start streaming:\n{}",
        outboxd.log()
    );
    let aggregate = unique("sec");
    let topic = format!("outbox.event.{aggregate}");
    let mut expected = Vec::new();
    for n in 0..3 {
        let aggregateid = format!("agg-{n}");
        let payload = format!(r#"{{"n":{n}}}"#);
        let id =
            support::insert_outbox(&client, &aggregate, &aggregateid, "Created", &payload).await;
        expected.push((id, aggregateid, payload));
    }
    let (b, t) = (bootstrap.to_string(), topic.clone());
    let props: Vec<(String, String)> = reader_props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Exactly the three (waiting for a fourth, to catch duplicates, would cost the whole timeout).
    let records: Vec<Record> = tokio::task::spawn_blocking(move || {
        let props: Vec<(&str, &str)> = props.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        support::kafka::consume_topics_with(&b, &props, &[&t], 3, Duration::from_secs(30))
    })
    .await
    .unwrap();
    assert_eq!(records.len(), 3, "records: {records:?}\n{}", outboxd.log());
    for (id, aggregateid, payload) in &expected {
        let r = records
            .iter()
            .find(|r| r.header_str("id").as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("event {id} missing: {records:?}"));
        assert_eq!(r.topic, topic);
        assert_eq!(r.key_str().as_deref(), Some(aggregateid.as_str()));
        assert_eq!(
            r.value_json().unwrap(),
            serde_json::from_str::<serde_json::Value>(payload).unwrap()
        );
    }
    let metrics = support::outboxd::http_get(http_port, "/metrics").await;
    assert!(
        outboxd
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "{}",
        outboxd.log()
    );
    (outboxd.log(), metrics, topic)
}

/// `security.protocol=SSL` with the test CA: outboxd relays through TLS (host name verified
/// against the certificate's 127.0.0.1 SAN) and a TLS reader gets exactly the rows back; a reader
/// that does not trust the CA gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_relays_end_to_end_with_ca_verification() {
    if let Some(why) = skip_reason() {
        return support::skip("ssl_relays_end_to_end_with_ca_verification", &why);
    }
    let pki = make_pki();
    let plain = support::free_port();
    let tls = tls_terminator(&pki, plain).await;
    let _tansu = start_tansu(plain, tls, &[]);
    let bootstrap = format!("127.0.0.1:{tls}");
    let ca = pki.ca.to_str().unwrap();
    let props = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca),
        ("ssl.endpoint.identification.algorithm", "https"),
    ];
    let (_, _, topic) = relay_and_read_back(&bootstrap, &props, &[], &props).await;

    // Without the CA (librdkafka then uses the system's), verification fails: nothing is read.
    let b = bootstrap.clone();
    let untrusted = tokio::task::spawn_blocking(move || {
        support::kafka::consume_topics_with(
            &b,
            &[("security.protocol", "SSL"), ("log_level", "0")],
            &[&topic],
            1,
            Duration::from_secs(4),
        )
    })
    .await
    .unwrap();
    assert!(untrusted.is_empty());
}

/// Waits until outboxd's log mentions a SASL authentication failure, then checks that outboxd is
/// still running (retrying) a few seconds later and that the password is in neither the log nor
/// `/metrics`.
async fn assert_auth_failure_reported(outboxd: &mut Outboxd, http_port: u16, password: &str) {
    assert!(
        outboxd
            .wait_for_log("SASL authentication error", Duration::from_secs(30))
            .await,
        "no authentication error logged:\n{}",
        outboxd.log()
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        outboxd.try_status().is_none(),
        "outboxd exited on an authentication failure:\n{}",
        outboxd.log()
    );
    let metrics = support::outboxd::http_get(http_port, "/metrics").await;
    let ready = support::outboxd::http_get(http_port, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.1 503") && ready.contains("Kafka is unreachable"),
        "{ready}"
    );
    assert!(!ready.contains(password), "password in /readyz");
    let log = outboxd.log();
    assert!(
        log.contains("Authentication") || log.contains("authentication"),
        "{log}"
    );
    assert!(!log.contains(password), "password in the log:\n{log}");
    assert!(!metrics.contains(password), "password in /metrics");
}

/// SCRAM-SHA-256 over SASL_PLAINTEXT (password from `${env:...}`) and SCRAM-SHA-512 over SASL_SSL
/// (password from `${file:...}`) against a tansu that requires authentication and has no such
/// user: the SCRAM exchange runs, the broker refuses it, outboxd logs a clear authentication error
/// with debug logging on, keeps running (librdkafka retries), and the password is nowhere in its
/// log, metrics or `/readyz` (which answers 503: Kafka is unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_refused_credentials_are_reported_retried_and_never_logged() {
    if let Some(why) = skip_reason() {
        return support::skip(
            "sasl_scram_refused_credentials_are_reported_retried_and_never_logged",
            &why,
        );
    }
    let (pg, _client) = database().await;
    let secrets = tempfile::tempdir().unwrap();

    // SASL_PLAINTEXT, SCRAM-SHA-256, password from the environment.
    let port = support::free_port();
    let _tansu = start_tansu(port, port, &["--authentication"]);
    let http_port = support::free_port();
    let cfg = format!(
        "{}{}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        support::basic_config(
            &pg.url("postgres"),
            SLOT,
            PUBLICATION,
            &format!("127.0.0.1:{port}")
        ),
        kafka_toml(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "outboxd"),
            ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            // librdkafka's own debug output too (its configuration dump included).
            ("debug", "security,conf"),
        ])
    );
    let mut outboxd = Outboxd::start_with(
        &cfg,
        &[],
        &[
            ("RUST_LOG", "debug"),
            ("OUTBOXD_TEST_KAFKA_PASSWORD", PASSWORD),
        ],
    );
    assert_auth_failure_reported(&mut outboxd, http_port, PASSWORD).await;
    assert!(outboxd.log().contains("SCRAM-SHA-256"), "{}", outboxd.log());
    drop(outboxd);

    // SASL_SSL, SCRAM-SHA-512, password from a file.
    let pki = make_pki();
    let plain = support::free_port();
    let tls = tls_terminator(&pki, plain).await;
    let _tansu_tls = start_tansu(plain, tls, &["--authentication"]);
    let secret_file = secrets.path().join("kafka-password");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let http_port = support::free_port();
    let password_ref = format!("${{file:{}}}", secret_file.display());
    let cfg = format!(
        "{}{}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        support::basic_config(
            &pg.url("postgres"),
            SLOT,
            PUBLICATION,
            &format!("127.0.0.1:{tls}")
        ),
        kafka_toml(&[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", pki.ca.to_str().unwrap()),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "outboxd"),
            ("sasl.password", &password_ref),
            ("debug", "security,conf"),
        ])
    );
    let mut outboxd = Outboxd::start_with(&cfg, &[], &[("RUST_LOG", "debug")]);
    assert_auth_failure_reported(&mut outboxd, http_port, PASSWORD).await;
    assert!(outboxd.log().contains("SCRAM-SHA-512"), "{}", outboxd.log());
}

/// The SASL success path through [`gateway`] (a stand-in for a broker with a user, since tansu 0.6
/// lets none log in): SCRAM-SHA-256 over SASL_PLAINTEXT with the password from `${env:...}`, and
/// SCRAM-SHA-512 over SASL_SSL (CA verified) with it from `${file:...}`, each relayed end to end
/// and read back exactly (the second by a PLAIN reader); the password is in neither the log (debug,
/// librdkafka's `security,conf` debug too) nor `/metrics`. A wrong password for the existing user
/// is refused, logged as such, retried, and not logged either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_relays_end_to_end_and_a_wrong_password_is_refused() {
    let name = "sasl_scram_relays_end_to_end_and_a_wrong_password_is_refused";
    if let Some(why) = skip_reason() {
        return support::skip(name, &why);
    }
    let user = gateway::User {
        name: "outboxd".into(),
        password: PASSWORD.into(),
    };

    // SASL_PLAINTEXT, SCRAM-SHA-256, password from the environment.
    let plain = support::free_port();
    let gw = gateway::start(user.clone(), plain).await;
    let _tansu = start_tansu(plain, gw, &[]);
    let scram256 = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "outboxd"),
    ];
    let mut outboxd_props = scram256.to_vec();
    outboxd_props.push(("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"));
    outboxd_props.push(("debug", "security,conf"));
    let mut reader_props = scram256.to_vec();
    reader_props.push(("sasl.password", PASSWORD));
    let (log, metrics, _) = relay_and_read_back(
        &format!("127.0.0.1:{gw}"),
        &outboxd_props,
        &[("OUTBOXD_TEST_KAFKA_PASSWORD", PASSWORD)],
        &reader_props,
    )
    .await;
    assert!(log.contains("SCRAM-SHA-256"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in /metrics");

    // SASL_SSL, SCRAM-SHA-512, password from a file; read back with PLAIN.
    let pki = make_pki();
    let plain = support::free_port();
    let gw = gateway::start(user, plain).await;
    let tls = tls_terminator(&pki, gw).await;
    let _tansu_tls = start_tansu(plain, tls, &[]);
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("kafka-password");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let password_ref = format!("${{file:{}}}", secret_file.display());
    let ca = pki.ca.to_str().unwrap();
    let outboxd_props = [
        ("security.protocol", "SASL_SSL"),
        ("ssl.ca.location", ca),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "outboxd"),
        ("sasl.password", &password_ref),
        ("debug", "security,conf"),
    ];
    let reader_props = [
        ("security.protocol", "SASL_SSL"),
        ("ssl.ca.location", ca),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", "outboxd"),
        ("sasl.password", PASSWORD),
    ];
    let bootstrap = format!("127.0.0.1:{tls}");
    let (log, metrics, _) =
        relay_and_read_back(&bootstrap, &outboxd_props, &[], &reader_props).await;
    assert!(log.contains("SCRAM-SHA-512"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in /metrics");

    // A wrong password for the same user: refused, reported, retried, never logged.
    let wrong = "Wr0ng-Kafka-pw-91c2";
    let (pg, _client) = database().await;
    let http_port = support::free_port();
    let cfg = format!(
        "{}{}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, &bootstrap),
        kafka_toml(&[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", ca),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "outboxd"),
            ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            ("debug", "security,conf"),
        ])
    );
    let mut outboxd = Outboxd::start_with(
        &cfg,
        &[],
        &[
            ("RUST_LOG", "debug"),
            ("OUTBOXD_TEST_KAFKA_PASSWORD", wrong),
        ],
    );
    assert_auth_failure_reported(&mut outboxd, http_port, wrong).await;
    assert!(
        outboxd.log().contains("invalid credentials"),
        "{}",
        outboxd.log()
    );
}

/// The SASL success path, opt-in, against a cluster that has a SCRAM or PLAIN user (tansu 0.6
/// cannot authenticate anyone, see the top of this file):
///
/// ```text
/// OUTBOXD_TEST_SASL_BOOTSTRAP=host:9094 OUTBOXD_TEST_SASL_MECHANISM=SCRAM-SHA-512 \
/// OUTBOXD_TEST_SASL_USERNAME=outboxd OUTBOXD_TEST_SASL_PASSWORD=... \
/// [OUTBOXD_TEST_SASL_PROTOCOL=SASL_SSL OUTBOXD_TEST_SASL_CA=/path/ca.pem] \
/// cargo test --test kafka_security sasl_relays
/// ```
///
/// The cluster must auto-create topics. outboxd gets the password through `${env:...}`; the test
/// checks the records read back and that the password is in neither the log nor `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_relays_end_to_end_on_a_cluster_you_name() {
    let name = "sasl_relays_end_to_end_on_a_cluster_you_name";
    let Ok(bootstrap) = std::env::var("OUTBOXD_TEST_SASL_BOOTSTRAP") else {
        return support::skip(
            name,
            "opt-in: set OUTBOXD_TEST_SASL_BOOTSTRAP (and _MECHANISM, _USERNAME, _PASSWORD) \
             to a cluster with a SASL user (tansu 0.6 cannot authenticate anyone; the \
             gateway test covers the success path)",
        );
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (mechanism, username, password) = (
        var("OUTBOXD_TEST_SASL_MECHANISM"),
        var("OUTBOXD_TEST_SASL_USERNAME"),
        var("OUTBOXD_TEST_SASL_PASSWORD"),
    );
    let protocol =
        std::env::var("OUTBOXD_TEST_SASL_PROTOCOL").unwrap_or_else(|_| "SASL_PLAINTEXT".into());
    let ca = std::env::var("OUTBOXD_TEST_SASL_CA").ok();
    let mut common = vec![
        ("security.protocol", protocol.as_str()),
        ("sasl.mechanism", mechanism.as_str()),
        ("sasl.username", username.as_str()),
    ];
    if let Some(ca) = &ca {
        common.push(("ssl.ca.location", ca.as_str()));
    }
    let mut outboxd_props = common.clone();
    outboxd_props.push(("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"));
    let mut reader_props = common;
    reader_props.push(("sasl.password", password.as_str()));
    let (log, metrics, _) = relay_and_read_back(
        &bootstrap,
        &outboxd_props,
        &[("OUTBOXD_TEST_KAFKA_PASSWORD", password.as_str())],
        &reader_props,
    )
    .await;
    assert!(!log.contains(&password), "password in the log");
    assert!(!metrics.contains(&password), "password in /metrics");
}

/// A SASL gateway standing in for a broker with users: it answers SaslHandshake and
/// SaslAuthenticate itself (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, for the one user it knows,
/// with Kafka's error codes), forwards ApiVersions, and forwards every other request of an
/// authenticated connection to the plaintext tansu at `upstream` (which advertises the
/// gateway's port, or a TLS terminator's in front of it). A request before authentication
/// closes the connection, as Kafka does. Used because tansu 0.6 can let no user log in.
mod gateway {
    use std::num::NonZeroU32;

    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use ring::{digest, hmac, pbkdf2};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const ITERATIONS: u32 = 4096;
    const SASL_AUTHENTICATION_FAILED: i16 = 58;
    const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

    #[derive(Clone)]
    pub struct User {
        pub name: String,
        pub password: String,
    }

    /// Starts the gateway on a port of its own (returned); runs until the runtime ends.
    pub async fn start(user: User, upstream: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let user = user.clone();
                tokio::spawn(async move {
                    let _ = serve(client, user, upstream).await;
                });
            }
        });
        port
    }

    async fn read_frame<S: AsyncReadExt + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await?;
        Ok(body)
    }

    fn frame(body: Vec<u8>) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn i16_at(b: &[u8], at: usize) -> i16 {
        i16::from_be_bytes([b[at], b[at + 1]])
    }

    fn i32_at(b: &[u8], at: usize) -> i32 {
        i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The body of a non-flexible request (header v1): after key, version, correlation id and
    /// the nullable client id.
    fn body_of(req: &[u8]) -> &[u8] {
        let client_id = i16_at(req, 8);
        &req[10 + client_id.max(0) as usize..]
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as i16).to_be_bytes());
        out.extend(s.as_bytes());
    }

    enum Scram {
        None,
        /// After the server-first message: what the client-final must prove.
        Sent {
            alg: &'static Alg,
            salted: Vec<u8>,
            nonce: String,
            auth_prefix: String,
        },
    }

    struct Alg {
        name: &'static str,
        pbkdf2: pbkdf2::Algorithm,
        hmac: hmac::Algorithm,
        digest: &'static digest::Algorithm,
    }

    static SHA256: Alg = Alg {
        name: "SCRAM-SHA-256",
        pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
        hmac: hmac::HMAC_SHA256,
        digest: &digest::SHA256,
    };
    static SHA512: Alg = Alg {
        name: "SCRAM-SHA-512",
        pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
        hmac: hmac::HMAC_SHA512,
        digest: &digest::SHA512,
    };

    fn mac(alg: &Alg, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(alg.hmac, key), data)
            .as_ref()
            .to_vec()
    }

    fn attr<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        msg.split(',')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    }

    /// One SASL step: the bytes to send back, or an error message.
    fn step(
        mechanism: &str,
        state: &mut Scram,
        user: &User,
        input: &[u8],
    ) -> Result<(Vec<u8>, bool), String> {
        let text = String::from_utf8_lossy(input).into_owned();
        if mechanism == "PLAIN" {
            let parts: Vec<&str> = text.split('\0').collect();
            return match parts.as_slice() {
                [_, name, password] if *name == user.name && *password == user.password => {
                    Ok((Vec::new(), true))
                }
                _ => Err("Authentication failed: Invalid username or password".into()),
            };
        }
        let alg: &'static Alg = if mechanism == SHA256.name {
            &SHA256
        } else {
            &SHA512
        };
        match std::mem::replace(state, Scram::None) {
            Scram::None => {
                // client-first: gs2 header "n,," then the bare message "n=user,r=nonce".
                let bare = text.splitn(3, ',').nth(2).ok_or("bad client-first")?;
                let name = attr(bare, "n").ok_or("no user name")?;
                let cnonce = attr(bare, "r").ok_or("no nonce")?;
                if name != user.name {
                    return Err(format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", alg.name));
                }
                let salt = b"outboxd-test-salt";
                let mut salted = vec![0u8; alg.digest.output_len()];
                pbkdf2::derive(
                    alg.pbkdf2,
                    NonZeroU32::new(ITERATIONS).unwrap(),
                    salt,
                    user.password.as_bytes(),
                    &mut salted,
                );
                let nonce = format!("{cnonce}gatewaynonce{}", std::process::id());
                let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(salt));
                *state = Scram::Sent {
                    alg,
                    salted,
                    nonce,
                    auth_prefix: format!("{bare},{server_first}"),
                };
                Ok((server_first.into_bytes(), false))
            }
            Scram::Sent {
                alg,
                salted,
                nonce,
                auth_prefix,
            } => {
                let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no proof")?;
                if attr(without_proof, "r") != Some(nonce.as_str()) {
                    return Err("nonce mismatch".into());
                }
                let proof = B64.decode(proof).map_err(|e| e.to_string())?;
                let auth = format!("{auth_prefix},{without_proof}");
                let client_key = mac(alg, &salted, b"Client Key");
                let stored = digest::digest(alg.digest, &client_key);
                let signature = mac(alg, stored.as_ref(), auth.as_bytes());
                let expected: Vec<u8> = client_key
                    .iter()
                    .zip(&signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if proof != expected {
                    return Err(format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", alg.name));
                }
                let server_key = mac(alg, &salted, b"Server Key");
                let server_final =
                    format!("v={}", B64.encode(mac(alg, &server_key, auth.as_bytes())));
                Ok((server_final.into_bytes(), true))
            }
        }
    }

    async fn serve(mut client: TcpStream, user: User, upstream: u16) -> std::io::Result<()> {
        let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
        let mut mechanism = String::new();
        let mut scram = Scram::None;
        let mut authenticated = false;
        loop {
            let req = read_frame(&mut client).await?;
            let (key, version, correlation) = (i16_at(&req, 0), i16_at(&req, 2), i32_at(&req, 4));
            let mut resp = correlation.to_be_bytes().to_vec();
            match key {
                // SaslHandshake v0/v1
                17 => {
                    let body = body_of(&req);
                    let len = i16_at(body, 0) as usize;
                    mechanism = String::from_utf8_lossy(&body[2..2 + len]).into_owned();
                    let ok = ["PLAIN", SHA256.name, SHA512.name].contains(&mechanism.as_str());
                    resp.extend(if ok { 0 } else { UNSUPPORTED_SASL_MECHANISM }.to_be_bytes());
                    resp.extend(3i32.to_be_bytes());
                    for m in ["PLAIN", SHA256.name, SHA512.name] {
                        put_str(&mut resp, m);
                    }
                }
                // SaslAuthenticate v0/v1 (librdkafka's)
                36 => {
                    assert!(
                        version <= 1,
                        "SaslAuthenticate v{version} (flexible) not handled"
                    );
                    let body = body_of(&req);
                    let len = i32_at(body, 0) as usize;
                    match step(&mechanism, &mut scram, &user, &body[4..4 + len]) {
                        Ok((bytes, done)) => {
                            authenticated = done;
                            resp.extend(0i16.to_be_bytes());
                            resp.extend((-1i16).to_be_bytes());
                            resp.extend((bytes.len() as i32).to_be_bytes());
                            resp.extend(bytes);
                        }
                        Err(message) => {
                            resp.extend(SASL_AUTHENTICATION_FAILED.to_be_bytes());
                            put_str(&mut resp, &message);
                            resp.extend(0i32.to_be_bytes());
                        }
                    }
                    if version >= 1 {
                        resp.extend(0i64.to_be_bytes());
                    }
                }
                // ApiVersions (answered by tansu), then anything once authenticated.
                _ if key == 18 || authenticated => {
                    up.write_all(&frame(req)).await?;
                    let answer = read_frame(&mut up).await?;
                    client.write_all(&frame(answer)).await?;
                    continue;
                }
                _ => return Ok(()),
            }
            client.write_all(&frame(resp)).await?;
        }
    }
}
