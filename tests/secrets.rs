//! Secrets stay secret: the Postgres password given through `${env:...}` / `${file:...}`
//! references or PGPASSWORD works, and never appears in outboxd's logs or error messages, nor in
//! its metrics.

mod support;

use std::time::Duration;

use support::{Broker, Outboxd, PgCluster, PgOptions};

const PASSWORD: &str = "Tr0ub4dor&3-secret";

async fn cluster_with_password() -> PgCluster {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all app 127.0.0.1/32 scram-sha-256\n"
                .into(),
        ),
        ..Default::default()
    });
    let c = pg.client().await;
    support::create_outbox_table(&c).await;
    c.batch_execute(&format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN REPLICATION PASSWORD '{PASSWORD}'; \
         ALTER TABLE public.outbox OWNER TO app; GRANT CREATE ON DATABASE postgres TO app;"
    ))
    .await
    .unwrap();
    pg
}

fn config(pg: &PgCluster, url_password: &str, http_port: u16) -> String {
    format!(
        "[source]\nurl = \"postgres://app:{url_password}@127.0.0.1:{}/postgres?sslmode=disable\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[http]\naddr = \"127.0.0.1:{http_port}\"\n",
        pg.port(),
        Broker::shared().bootstrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_references_work_and_never_leak() {
    let pg = cluster_with_password().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pg-password");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();

    // From a file reference, with debug logging on: streams, and the password is nowhere.
    let http_port = support::free_port();
    let cfg = config(
        &pg,
        &format!("${{file:{}}}", secret_file.display()),
        http_port,
    );
    let mut outboxd = Outboxd::start_with(&cfg, &[], &[("RUST_LOG", "debug")]);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "{}",
        outboxd.log()
    );
    let metrics = support::outboxd::http_get(http_port, "/metrics").await;
    assert!(outboxd
        .terminate(Duration::from_secs(20))
        .unwrap()
        .success());
    let log = outboxd.log();
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(!metrics.contains(PASSWORD), "password in the metrics");

    // From an environment variable: works too.
    let cfg = config(&pg, "${env:APP_DB_PASSWORD}", support::free_port());
    let mut outboxd = Outboxd::start_with(&cfg, &[], &[("APP_DB_PASSWORD", PASSWORD)]);
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "{}",
        outboxd.log()
    );
    assert!(outboxd
        .terminate(Duration::from_secs(20))
        .unwrap()
        .success());

    // A wrong password written in the URL: a clear authentication error that does not echo it.
    let wrong = "Wr0ng-Passw0rd-zzz";
    let (status, out) = support::outboxd::check(&config(&pg, wrong, 0), Duration::from_secs(60));
    assert!(!status.unwrap().success(), "{out}");
    assert!(
        out.contains("app"),
        "the error should name the user:\n{out}"
    );
    assert!(!out.contains(wrong), "password in check output:\n{out}");
    let mut outboxd = Outboxd::start(&config(&pg, wrong, support::free_port()));
    let status = outboxd.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    let log = outboxd.log();
    assert!(log.contains("authentication"), "{log}");
    assert!(!log.contains(wrong), "password in the error:\n{log}");
}
