//! Kafka over TLS and SASL: outboxd's `[kafka]` security properties reach librdkafka and work end
//! to end against Apache Kafka's own listeners, and no password ever shows in outboxd's log,
//! `/metrics` or `/readyz`.
//!
//! One dedicated Apache Kafka ([`secure_broker`], shared by the tests of this file) serves:
//! - `SASL_PLAINTEXT` and `SASL_SSL` listeners with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
//!   enabled. The SCRAM credentials of the user are created when the storage is formatted
//!   (`kafka-storage format --add-scram`, through `scripts/kafka.sh --scram`), the PLAIN one by
//!   the listener's JAAS configuration;
//! - an `SSL` listener with a certificate (PEM keystore) signed by a throwaway CA, for
//!   `127.0.0.1` and `localhost`, so the client side (librdkafka's OpenSSL, CA and host name
//!   verification) is exercised for real.
//!
//! The broker is the test's own even when `KAFKA_BOOTSTRAP_SERVERS` names a shared one; the
//! tests SKIP where it cannot be started (no Kafka jars) or the `openssl` command (which makes
//! the CA) is missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use support::{unique, KafkaOptions, LocalBroker, Outboxd, Record};

const SLOT: &str = "outboxd";
const PUBLICATION: &str = "outboxd";
/// The password of the broker's user `outboxd`, for every mechanism.
const PASSWORD: &str = "Kafka-S3cret-pw-7f3a";

/// Why the tests here cannot run, if they cannot.
fn skip_reason() -> Option<String> {
    if let Err(why) = support::broker::kafka_available() {
        return Some(why);
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

/// The test's Apache Kafka with TLS and SASL listeners (started once, on first use).
struct SecureBroker {
    pki: Pki,
    /// `127.0.0.1:PORT` of each listener.
    sasl_plaintext: String,
    ssl: String,
    sasl_ssl: String,
    _broker: LocalBroker,
}

impl SecureBroker {
    fn ca(&self) -> &str {
        self.pki.ca.to_str().expect("a UTF-8 path")
    }
}

fn secure_broker() -> &'static SecureBroker {
    static BROKER: OnceLock<SecureBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let pki = make_pki();
        // Kafka's PEM keystore: the certificate chain and the (unencrypted PKCS#8) key, one file.
        let keystore = pki.cert.with_file_name("server-keystore.pem");
        let chain = std::fs::read_to_string(&pki.cert).unwrap();
        let key = std::fs::read_to_string(&pki.key).unwrap();
        std::fs::write(&keystore, format!("{key}{chain}")).unwrap();
        let [p1, p2, p3] = [(); 3].map(|_| support::free_port());
        let scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        let plain_jaas = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_outboxd=\"{PASSWORD}\";"
        );
        let mut opts = KafkaOptions {
            listeners: vec![
                format!("SASL_PLAINTEXT://127.0.0.1:{p1}"),
                format!("SSL://127.0.0.1:{p2}"),
                format!("SASL_SSL://127.0.0.1:{p3}"),
            ],
            scram: ["SCRAM-SHA-256", "SCRAM-SHA-512"]
                .map(|m| format!("{m}=[name=outboxd,password={PASSWORD}]"))
                .to_vec(),
            ..KafkaOptions::default()
        }
        .prop(
            "sasl.enabled.mechanisms",
            "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        )
        .prop("ssl.keystore.type", "PEM")
        .prop("ssl.keystore.location", keystore.to_str().unwrap());
        for listener in ["sasl_plaintext", "sasl_ssl"] {
            opts = opts
                .prop(
                    &format!("listener.name.{listener}.plain.sasl.jaas.config"),
                    &plain_jaas,
                )
                .prop(
                    &format!("listener.name.{listener}.scram-sha-256.sasl.jaas.config"),
                    scram_jaas,
                )
                .prop(
                    &format!("listener.name.{listener}.scram-sha-512.sasl.jaas.config"),
                    scram_jaas,
                );
        }
        let broker = LocalBroker::kafka(opts);
        SecureBroker {
            pki,
            sasl_plaintext: format!("127.0.0.1:{p1}"),
            ssl: format!("127.0.0.1:{p2}"),
            sasl_ssl: format!("127.0.0.1:{p3}"),
            _broker: broker,
        }
    })
}

fn kafka_toml(props: &[(&str, &str)]) -> String {
    props
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect()
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
    let (pg, client) = support::database().await;
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
    let broker = tokio::task::spawn_blocking(secure_broker).await.unwrap();
    let props = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", broker.ca()),
        ("ssl.endpoint.identification.algorithm", "https"),
    ];
    let (_, _, topic) = relay_and_read_back(&broker.ssl, &props, &[], &props).await;

    // Without the CA (librdkafka then uses the system's), verification fails: nothing is read.
    let b = broker.ssl.clone();
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

/// Each SASL mechanism against Apache Kafka's own listeners, relayed end to end and read back
/// exactly: SCRAM-SHA-256 over SASL_PLAINTEXT with the password from `${env:...}`, SCRAM-SHA-512
/// over SASL_SSL (CA verified) with it from `${file:...}`, and PLAIN over SASL_PLAINTEXT. Each
/// is read back by a reader using another mechanism; the password is in neither the log (debug,
/// librdkafka's `security,conf` debug too) nor `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_and_plain_relay_end_to_end() {
    let name = "sasl_scram_and_plain_relay_end_to_end";
    if let Some(why) = skip_reason() {
        return support::skip(name, &why);
    }
    let broker = tokio::task::spawn_blocking(secure_broker).await.unwrap();
    let sasl = |protocol: &'static str, mechanism: &'static str| {
        vec![
            ("security.protocol", protocol),
            ("sasl.mechanism", mechanism),
            ("sasl.username", "outboxd"),
        ]
    };
    let with = |mut props: Vec<(&'static str, &'static str)>,
                more: &[(&'static str, &'static str)]| {
        props.extend_from_slice(more);
        props
    };
    let debug = ("debug", "security,conf");

    // SASL_PLAINTEXT, SCRAM-SHA-256, password from the environment; read back with PLAIN.
    let outboxd_props = with(
        sasl("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        &[
            ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            debug,
        ],
    );
    let reader_props = with(
        sasl("SASL_PLAINTEXT", "PLAIN"),
        &[("sasl.password", PASSWORD)],
    );
    let (log, metrics, _) = relay_and_read_back(
        &broker.sasl_plaintext,
        &outboxd_props,
        &[("OUTBOXD_TEST_KAFKA_PASSWORD", PASSWORD)],
        &reader_props,
    )
    .await;
    assert!(log.contains("for SASL mechanism SCRAM-SHA-256"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in /metrics");

    // SASL_SSL, SCRAM-SHA-512, password from a file; read back with SCRAM-SHA-256.
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("kafka-password");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let password_ref = format!("${{file:{}}}", secret_file.display());
    let mut outboxd_props = with(sasl("SASL_SSL", "SCRAM-SHA-512"), &[debug]);
    outboxd_props.extend([
        ("ssl.ca.location", broker.ca()),
        ("sasl.password", password_ref.as_str()),
    ]);
    let mut reader_props = with(
        sasl("SASL_SSL", "SCRAM-SHA-256"),
        &[("sasl.password", PASSWORD)],
    );
    reader_props.push(("ssl.ca.location", broker.ca()));
    let (log, metrics, _) =
        relay_and_read_back(&broker.sasl_ssl, &outboxd_props, &[], &reader_props).await;
    assert!(log.contains("for SASL mechanism SCRAM-SHA-512"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in /metrics");

    // SASL_PLAINTEXT, PLAIN; read back with SCRAM-SHA-512.
    let outboxd_props = with(
        sasl("SASL_PLAINTEXT", "PLAIN"),
        &[
            ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            debug,
        ],
    );
    let reader_props = with(
        sasl("SASL_PLAINTEXT", "SCRAM-SHA-512"),
        &[("sasl.password", PASSWORD)],
    );
    let (log, metrics, _) = relay_and_read_back(
        &broker.sasl_plaintext,
        &outboxd_props,
        &[("OUTBOXD_TEST_KAFKA_PASSWORD", PASSWORD)],
        &reader_props,
    )
    .await;
    assert!(log.contains("for SASL mechanism PLAIN"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in /metrics");
}

/// Credentials Kafka refuses, with debug logging on: an unknown user over SCRAM-SHA-256
/// (SASL_PLAINTEXT), a wrong password for the existing user over SCRAM-SHA-512 (SASL_SSL, from
/// `${file:...}`) and over PLAIN. Each time outboxd logs a clear authentication error, keeps
/// running (librdkafka retries), reports Kafka unreachable on `/readyz` (503), and the password
/// it was given is in neither its log, `/metrics` nor `/readyz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sasl_credentials_are_reported_retried_and_never_logged() {
    let name = "refused_sasl_credentials_are_reported_retried_and_never_logged";
    if let Some(why) = skip_reason() {
        return support::skip(name, &why);
    }
    let broker = tokio::task::spawn_blocking(secure_broker).await.unwrap();
    let (pg, _client) = support::database().await;
    let wrong = "Wr0ng-Kafka-pw-91c2";
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("kafka-password");
    std::fs::write(&secret_file, format!("{wrong}\n")).unwrap();
    let password_ref = format!("${{file:{}}}", secret_file.display());
    type Props<'a> = Vec<(&'a str, &'a str)>;
    let cases: [(&str, &str, Props); 3] = [
        (
            &broker.sasl_plaintext,
            "SCRAM-SHA-256",
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "nobody"),
                ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            ],
        ),
        (
            &broker.sasl_ssl,
            "SCRAM-SHA-512",
            vec![
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", broker.ca()),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "outboxd"),
                ("sasl.password", &password_ref),
            ],
        ),
        (
            &broker.sasl_plaintext,
            "PLAIN",
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "outboxd"),
                ("sasl.password", "${env:OUTBOXD_TEST_KAFKA_PASSWORD}"),
            ],
        ),
    ];
    for (bootstrap, mechanism, mut props) in cases {
        props.push(("debug", "security,conf"));
        let http_port = support::free_port();
        let cfg = format!(
            "{}{}\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
            support::basic_config(&pg.url("postgres"), SLOT, PUBLICATION, bootstrap),
            kafka_toml(&props)
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
        let log = outboxd.log();
        assert!(log.contains(mechanism), "{mechanism}: {log}");
        assert!(
            log.contains("Authentication failed") || log.contains("invalid credentials"),
            "{mechanism}: Kafka's refusal is not in the log:\n{log}"
        );
    }
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

/// The SASL success path against a cluster of yours that has a SCRAM or PLAIN user (opt-in; the
/// tests above run it on the test's own Apache Kafka):
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
             to a cluster of yours with a SASL user (the other tests here cover the test's own \
             Apache Kafka)",
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
