//! outboxd configured with a Debezium connector's JSON (`--config connector.json`), the Kafka
//! Connect worker's properties file (`--worker-config`), heartbeats (`heartbeat.interval.ms` +
//! `heartbeat.action.query`), and `outboxd import-debezium`: against a real Postgres and broker.

mod support;

use std::path::Path;
use std::time::Duration;

use outboxd::config::Config;
use support::{consume_topics, unique, wait_for, Broker, Outboxd, PgCluster, PgOptions};

/// Special characters on purpose: the JSON's password must reach Postgres percent-encoded.
const PASSWORD: &str = "p@ss:w/rd&%20?#x";

/// The table the Quarkus Debezium outbox extension creates.
const OUTBOXEVENT_DDL: &str = "CREATE TABLE public.outboxevent (
    id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL,
    type varchar(255) NOT NULL, timestamp timestamp NOT NULL, payload varchar(8000),
    tracingspancontext varchar(256))";

/// A cluster where role `app` (REPLICATION, SCRAM password `PASSWORD`) owns `public.outboxevent`.
async fn cluster() -> PgCluster {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all app 127.0.0.1/32 scram-sha-256\n"
                .into(),
        ),
        ..Default::default()
    });
    let c = pg.client().await;
    c.batch_execute(&format!(
        "{OUTBOXEVENT_DDL}; CREATE TABLE public.other (id bigserial PRIMARY KEY, note text); \
         SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE app LOGIN REPLICATION PASSWORD '{PASSWORD}'; \
         ALTER TABLE public.outboxevent OWNER TO app; GRANT CREATE ON DATABASE postgres TO app;"
    ))
    .await
    .unwrap();
    pg
}

/// A Debezium 3.x connector in the Kafka Connect REST form, as `GET /connectors/NAME` returns it.
fn connector_json(pg: &PgCluster, user: &str, password: Option<&str>, extra: &str) -> String {
    let password = password
        .map(|p| format!("\"database.password\": {},", serde_json::json!(p)))
        .unwrap_or_default();
    format!(
        r#"{{
  "name": "orders-outbox",
  "config": {{
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "tasks.max": "1",
    "plugin.name": "pgoutput",
    "database.hostname": "127.0.0.1",
    "database.port": {port},
    "database.user": "{user}",
    {password}
    "database.dbname": "postgres",
    "database.sslmode": "disable",
    "topic.prefix": "orders",
    "slot.name": "orders_outbox",
    "publication.name": "orders_outbox_pub",
    "publication.autocreate.mode": "filtered",
    "table.include.list": "public.outboxevent",
    "snapshot.mode": "no_data",
    "tombstones.on.delete": "false",
    "transforms": "outbox",
    "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
    "transforms.outbox.route.topic.replacement": "${{routedByValue}}.events",
    "transforms.outbox.table.fields.additional.placement": "type:header:eventType",
    "transforms.outbox.table.field.event.timestamp": "timestamp",
    {extra}
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false"
  }}
}}"#,
        port = pg.port()
    )
}

/// The worker's properties: the bootstrap servers and the key converter (JsonConverter without
/// schemas), written as Connect workers' files are (comments, a continuation line).
fn write_worker_file(dir: &Path) -> String {
    let path = dir.join("connect-distributed.properties");
    std::fs::write(
        &path,
        format!(
            "# Kafka Connect worker\nbootstrap.servers={}\ngroup.id=connect-cluster\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=\\\n    false\n\
             config.storage.topic=connect-configs\n",
            Broker::shared().bootstrap()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

async fn consume(topic: &str, expected: usize) -> Vec<support::Record> {
    let (b, t) = (Broker::shared().bootstrap().to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        consume_topics(&b, &[t.as_str()], expected, Duration::from_secs(30))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_connector_json_runs_as_is_and_publishes_debeziums_bytes() {
    let broker = Broker::shared();
    let pg = cluster().await;
    let aggregate = unique("Order");
    let topic = format!("{aggregate}.events");
    broker.create_topic(&topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let worker = write_worker_file(dir.path());

    let json = connector_json(&pg, "app", Some(PASSWORD), "");
    let outboxd = Outboxd::start_with(
        &json,
        &["--worker-config", &worker],
        &[("RUST_LOG", "info,outboxd=debug")],
    );
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "outboxd did not start streaming:\n{}",
        outboxd.log()
    );

    // Quarkus style: the event is inserted and deleted in one transaction; a change of another
    // table in the same transaction is not published.
    let c = pg.client().await;
    let ids = [
        "6f1d5a7e-0b5c-4b0e-9a52-1d2d1a0c0001",
        "6f1d5a7e-0b5c-4b0e-9a52-1d2d1a0c0002",
    ];
    for (n, id) in ids.iter().enumerate() {
        c.batch_execute(&format!(
            "BEGIN; \
             INSERT INTO public.outboxevent (id, aggregatetype, aggregateid, type, timestamp, payload) \
             VALUES ('{id}', '{aggregate}', 'order-{n}', 'OrderCreated', '2026-11-21 10:00:0{n}.123456', '{{\"order\": {n}, \"note\": \"caf\u{e9} \\\"q\\\"\"}}'); \
             DELETE FROM public.outboxevent WHERE id = '{id}'; \
             INSERT INTO public.other (note) VALUES ('not published'); \
             COMMIT;"
        ))
        .await
        .unwrap();
    }

    let records = consume(&topic, 3).await;
    assert_eq!(records.len(), 2, "{records:#?}\n{}", outboxd.log());
    for (n, (r, id)) in records.iter().zip(ids).enumerate() {
        // Key: JsonConverter without schemas, from the worker file.
        assert_eq!(
            r.key_str().as_deref(),
            Some(format!("\"order-{n}\"").as_str())
        );
        // Value: JsonConverter without schemas writes the varchar payload as a JSON string.
        let payload = format!("{{\"order\": {n}, \"note\": \"caf\u{e9} \\\"q\\\"\"}}");
        assert_eq!(
            r.value.as_deref(),
            Some(serde_json::to_string(&payload).unwrap().as_bytes())
        );
        assert_eq!(
            r.headers,
            vec![
                ("id".to_string(), Some(id.as_bytes().to_vec())),
                ("eventType".to_string(), Some(b"OrderCreated".to_vec())),
            ]
        );
        // table.field.event.timestamp: the column's value (as UTC), in milliseconds.
        assert_eq!(r.timestamp_ms, Some(1_795_255_200_123 + n as i64 * 1000));
    }

    // The slot and publication are the connector's, the publication FOR TABLE the outbox only.
    let slot: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'orders_outbox' AND plugin = 'pgoutput'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slot, 1);
    let tables: Vec<String> = c
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'orders_outbox_pub'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["public.outboxevent"]);

    // One warning lists the ignored keys, sorted; no password anywhere in the log.
    let log = outboxd.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connector keys outboxd ignores"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].ends_with("connector.class, tasks.max, tombstones.on.delete"),
        "{}",
        warnings[0]
    );
    assert!(!log.contains(PASSWORD) && !log.contains("p@ss"), "{log}");
    assert!(!log.contains("p%40ss"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_action_query_runs_every_interval_and_a_failing_one_never_stops_the_relay() {
    let broker = Broker::shared();
    let pg = cluster().await;
    let aggregate = unique("Order");
    let topic = format!("{aggregate}.events");
    broker.create_topic(&topic, 1).await;

    // The table the query writes to does not exist yet: the heartbeats fail at first.
    let json = connector_json(
        &pg,
        "postgres",
        None,
        r#""heartbeat.interval.ms": "200",
    "heartbeat.action.query": "INSERT INTO public.heartbeat (at) VALUES (clock_timestamp())","#,
    );
    let outboxd = Outboxd::start_with(
        &json,
        &["--kafka-bootstrap-servers", broker.bootstrap()],
        &[("RUST_LOG", "info")],
    );
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "{}",
        outboxd.log()
    );
    assert!(
        outboxd
            .wait_for_log(
                "relation \"public.heartbeat\" does not exist",
                Duration::from_secs(10)
            )
            .await,
        "the failing heartbeat is not logged with the server's message:\n{}",
        outboxd.log()
    );

    // Once the table exists, every interval adds a row.
    let c = pg.client().await;
    c.batch_execute("CREATE TABLE public.heartbeat (at timestamptz NOT NULL)")
        .await
        .unwrap();
    let count = || async {
        c.query_one("SELECT count(*) FROM public.heartbeat", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let first = wait_for(Duration::from_secs(10), || async {
        let n = count().await;
        (n >= 1).then_some(n)
    })
    .await
    .expect("no heartbeat row within 10 s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = count().await;
    assert!(
        later >= first + 4,
        "heartbeats not repeated every 200 ms: {first} rows, then {later} 1.5 s later"
    );

    // The relay went on throughout.
    c.batch_execute(&format!(
        "INSERT INTO public.outboxevent (id, aggregatetype, aggregateid, type, timestamp, payload) \
         VALUES (gen_random_uuid(), '{aggregate}', 'order-1', 'OrderCreated', now(), '{{}}')"
    ))
    .await
    .unwrap();
    let records = consume(&topic, 1).await;
    assert_eq!(records.len(), 1, "{}", outboxd.log());
    assert_eq!(records[0].value_str().as_deref(), Some("\"{}\""));
    // Repeats of the same failure are not logged every 200 ms.
    let failures = outboxd
        .log()
        .matches("heartbeat action query failed")
        .count();
    assert!(
        (1..=2).contains(&failures),
        "{failures} failure warnings:\n{}",
        outboxd.log()
    );
    assert!(outboxd
        .log()
        .contains("heartbeat action query succeeded again"));
}

#[test]
fn import_debezium_prints_a_toml_that_loads_without_any_secret() {
    let dir = tempfile::tempdir().unwrap();
    let connector = dir.path().join("connector.json");
    std::fs::write(
        &connector,
        r#"{"name": "c", "config": {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "plugin.name": "pgoutput", "snapshot.mode": "no_data",
            "database.hostname": "db", "database.user": "dbz", "database.password": "db-Secret-1",
            "database.dbname": "app", "table.include.list": "public.outbox",
            "transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "producer.override.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"kafka-Secret-2\";",
            "producer.override.sasl.mechanism": "PLAIN",
            "producer.override.security.protocol": "SASL_SSL"
        }}"#,
    )
    .unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        "bootstrap.servers=kafka:9092\nkey.converter=org.apache.kafka.connect.storage.StringConverter\nvalue.converter=org.apache.kafka.connect.storage.StringConverter\nproducer.ssl.key.password=key-Secret-3\n",
    )
    .unwrap();
    let (status, out) = support::outboxd::run_once(
        &[
            "import-debezium",
            connector.to_str().unwrap(),
            "--worker-config",
            worker.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert!(status.is_some_and(|s| s.success()), "{out}");
    for secret in ["db-Secret-1", "kafka-Secret-2", "key-Secret-3"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    // stdout and stderr share the file: keep the TOML (the warnings are log lines).
    let toml: String = out
        .lines()
        .filter(|l| !l.contains(" WARN "))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.source.url, "postgres://dbz@db:5432/app");
    assert_eq!(config.source.tables, ["public.outbox"]);
    let kafka = Config::string_map("kafka", &config.kafka).unwrap();
    assert_eq!(kafka["bootstrap.servers"], "kafka:9092");
    assert_eq!(kafka["sasl.username"], "u");
    assert!(!kafka.contains_key("sasl.password"));
    let converters = Config::string_map("converters", &config.converters).unwrap();
    assert_eq!(
        converters["value.converter"],
        "org.apache.kafka.connect.storage.StringConverter"
    );
    assert!(toml.contains("PGPASSWORD"), "{toml}");
}

#[test]
fn a_connector_outboxd_cannot_replace_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let connector = dir.path().join("connector.json");
    std::fs::write(
        &connector,
        r#"{"database.hostname": "db", "database.user": "dbz", "database.password": "db-Secret-1",
            "database.dbname": "app", "table.include.list": "public.outbox",
            "plugin.name": "decoderbufs",
            "transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter"}"#,
    )
    .unwrap();
    for command in ["run", "check", "status"] {
        let (status, out) = support::outboxd::run_once(
            &[
                command,
                "--config",
                connector.to_str().unwrap(),
                "--kafka-bootstrap-servers",
                "localhost:9",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{command}: {out}");
        assert!(
            out.contains("connector key plugin.name")
                && out.contains("plugin.name=pgoutput")
                && out.contains("new slot.name"),
            "{command}: {out}"
        );
        assert!(!out.contains("db-Secret-1"), "{out}");
    }
    // A TOML file does not take a worker file.
    let toml = dir.path().join("outboxd.toml");
    std::fs::write(&toml, "[source]\nurl = \"postgres://u@h/d\"\n").unwrap();
    let (status, out) = support::outboxd::run_once(
        &[
            "run",
            "--config",
            toml.to_str().unwrap(),
            "--worker-config",
            connector.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(out.contains("--worker-config"), "{out}");
}

/// A Debezium 2.x connector, flat form (the `config` object alone, as `PUT
/// /connectors/NAME/config` takes it), for a bigint-id outbox table outside `public` with
/// StringConverter for key and value and two header placements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_connector_json_with_a_bigint_id_table_and_string_converters() {
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let c = pg.client().await;
    c.batch_execute(
        "CREATE SCHEMA shop; \
         CREATE TABLE shop.event_log (id bigserial PRIMARY KEY, aggregatetype text NOT NULL, \
         aggregateid text NOT NULL, type text NOT NULL, occurred_at timestamptz NOT NULL, payload jsonb)",
    )
    .await
    .unwrap();
    let aggregate = unique("Shipment");
    let topic = format!("outbox.event.{aggregate}");
    broker.create_topic(&topic, 1).await;
    let json = format!(
        r#"{{
  "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
  "tasks.max": "1",
  "plugin.name": "pgoutput",
  "database.hostname": "127.0.0.1",
  "database.port": "{port}",
  "database.user": "postgres",
  "database.dbname": "postgres",
  "topic.prefix": "shop",
  "schema.include.list": "shop",
  "table.include.list": "shop.event_log",
  "slot.name": "shop_outbox",
  "publication.name": "shop_outbox",
  "publication.autocreate.mode": "filtered",
  "snapshot.mode": "never",
  "tombstones.on.delete": false,
  "key.converter": "org.apache.kafka.connect.storage.StringConverter",
  "value.converter": "org.apache.kafka.connect.storage.StringConverter",
  "transforms": "outbox",
  "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
  "transforms.outbox.table.fields.additional.placement": "type:header:eventType,occurred_at:header:occurredAt"
}}"#,
        port = pg.port()
    );
    let outboxd = Outboxd::start_with(
        &json,
        &["--kafka-bootstrap-servers", broker.bootstrap()],
        &[("RUST_LOG", "info")],
    );
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "outboxd did not start streaming:\n{}",
        outboxd.log()
    );
    c.batch_execute(&format!(
        "INSERT INTO shop.event_log (aggregatetype, aggregateid, type, occurred_at, payload) \
         VALUES ('{aggregate}', 'ship-7', 'ShipmentDispatched', '2026-11-21 10:00:01+02', \
         '{{\"weight\": 2.50, \"id\": 7, \"carrier\": \"DHL\"}}'); \
         INSERT INTO shop.event_log (aggregatetype, aggregateid, type, occurred_at, payload) \
         VALUES ('{aggregate}', 'ship-7', 'ShipmentCancelled', '2026-11-21 10:00:02.5+00', NULL);"
    ))
    .await
    .unwrap();

    let records = consume(&topic, 3).await;
    assert_eq!(records.len(), 2, "{records:#?}\n{}", outboxd.log());
    // StringConverter: the key's text; the jsonb payload as Postgres normalizes it (keys by
    // length, then by bytes; 2.50 kept); a NULL payload is a record with a null value.
    assert_eq!(records[0].key.as_deref(), Some(&b"ship-7"[..]));
    assert_eq!(
        records[0].value.as_deref(),
        Some(&br#"{"id": 7, "weight": 2.50, "carrier": "DHL"}"#[..])
    );
    assert_eq!(records[1].key.as_deref(), Some(&b"ship-7"[..]));
    assert_eq!(records[1].value, None);
    // Headers as SimpleHeaderConverter writes them (golden cases 06 and 14): the bigint id as
    // its digits, the timestamptz as Debezium's ZonedTimestamp text (UTC, 6 fraction digits).
    let header = |id: &str, kind: &str, at: &str| {
        vec![
            ("id".to_string(), Some(id.as_bytes().to_vec())),
            ("eventType".to_string(), Some(kind.as_bytes().to_vec())),
            ("occurredAt".to_string(), Some(at.as_bytes().to_vec())),
        ]
    };
    assert_eq!(
        records[0].headers,
        header("1", "ShipmentDispatched", "2026-11-21T08:00:01.000000Z")
    );
    assert_eq!(
        records[1].headers,
        header("2", "ShipmentCancelled", "2026-11-21T10:00:02.500000Z")
    );
}

/// A Debezium 3.x connector in the REST form for a bytea outbox routed by another column than
/// `aggregatetype`, with aliased header placements, a topic replacement and BinaryDataConverter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_connector_json_with_a_bytea_table_routed_by_destination() {
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let c = pg.client().await;
    c.batch_execute(
        "CREATE TABLE public.binary_outbox (id uuid PRIMARY KEY, destination text NOT NULL, \
         aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, \
         type varchar(255) NOT NULL, tenant_id integer NOT NULL, content_type text, payload bytea)",
    )
    .await
    .unwrap();
    let destination = unique("invoicing");
    let topic = format!("billing.{destination}.v1");
    broker.create_topic(&topic, 1).await;
    let json = format!(
        r#"{{
  "name": "billing-outbox",
  "config": {{
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "tasks.max": "1",
    "plugin.name": "pgoutput",
    "database.hostname": "127.0.0.1",
    "database.port": {port},
    "database.user": "postgres",
    "database.dbname": "postgres",
    "topic.prefix": "billing",
    "table.include.list": "public\\.binary_outbox",
    "slot.name": "billing_outbox",
    "publication.name": "billing_outbox",
    "snapshot.mode": "no_data",
    "transforms": "outbox",
    "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
    "transforms.outbox.route.by.field": "destination",
    "transforms.outbox.route.topic.replacement": "billing.${{routedByValue}}.v1",
    "transforms.outbox.table.fields.additional.placement": "type:header:eventType,tenant_id:header:tenant,content_type:header:contentType,aggregatetype:header:aggregateType",
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "true",
    "value.converter": "io.debezium.converters.BinaryDataConverter",
    "value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter"
  }},
  "tasks": [{{"connector": "billing-outbox", "task": 0}}],
  "type": "source"
}}"#,
        port = pg.port()
    );
    let outboxd = Outboxd::start_with(
        &json,
        &["--kafka-bootstrap-servers", broker.bootstrap()],
        &[("RUST_LOG", "info")],
    );
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "outboxd did not start streaming:\n{}",
        outboxd.log()
    );
    let ids = [
        "7a3c0e52-9d41-4c8e-b7f0-5b2a6c1d0001",
        "7a3c0e52-9d41-4c8e-b7f0-5b2a6c1d0002",
    ];
    c.batch_execute(&format!(
        "INSERT INTO public.binary_outbox VALUES ('{}', '{destination}', 'Invoice', 'inv-1', \
         'InvoiceIssued', 42, 'application/x-protobuf', '\\x0a0308960100ff00'); \
         INSERT INTO public.binary_outbox VALUES ('{}', '{destination}', 'Invoice', 'inv-1', \
         'InvoiceVoided', 42, NULL, NULL);",
        ids[0], ids[1]
    ))
    .await
    .unwrap();

    let records = consume(&topic, 3).await;
    assert_eq!(records.len(), 2, "{records:#?}\n{}", outboxd.log());
    for r in &records {
        // JsonConverter with schemas (golden case 03): the varchar NOT NULL key.
        assert_eq!(
            r.key_str().as_deref(),
            Some(r#"{"schema":{"type":"string","optional":false},"payload":"inv-1"}"#)
        );
    }
    // BinaryDataConverter: the bytea as it is (golden case 12); NULL is a null value.
    assert_eq!(
        records[0].value.as_deref(),
        Some(&[0x0a, 0x03, 0x08, 0x96, 0x01, 0x00, 0xff, 0x00][..])
    );
    assert_eq!(records[1].value, None);
    // Headers in placement order after `id`: the uuid's text, the int as its digits, a NULL
    // column as a header with a null value (golden case 06).
    let header =
        |name: &str, value: Option<&str>| (name.to_string(), value.map(|v| v.as_bytes().to_vec()));
    assert_eq!(
        records[0].headers,
        vec![
            header("id", Some(ids[0])),
            header("eventType", Some("InvoiceIssued")),
            header("tenant", Some("42")),
            header("contentType", Some("application/x-protobuf")),
            header("aggregateType", Some("Invoice")),
        ]
    );
    assert_eq!(
        records[1].headers,
        vec![
            header("id", Some(ids[1])),
            header("eventType", Some("InvoiceVoided")),
            header("tenant", Some("42")),
            header("contentType", None),
            header("aggregateType", Some("Invoice")),
        ]
    );
}

/// Columns of the types Debezium gives logical schemas (numeric, money, time, timetz, interval)
/// as key and headers, with the values a real server sends through pgoutput.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_time_and_interval_columns_are_typed_as_debezium_types_them() {
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let c = pg.client().await;
    c.batch_execute(
        "ALTER DATABASE postgres SET lc_monetary = 'C'; \
         CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, \
         aggregateid text NOT NULL, type text NOT NULL, payload text, \
         amount numeric(10,2) NOT NULL, ratio numeric, price money, at time, at_ms time(3), \
         at_tz timetz, took interval)",
    )
    .await
    .unwrap();
    let aggregate = unique("Payment");
    let topic = format!("outbox.event.{aggregate}");
    broker.create_topic(&topic, 1).await;
    let json = format!(
        r#"{{
  "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
  "plugin.name": "pgoutput",
  "database.hostname": "127.0.0.1",
  "database.port": "{port}",
  "database.user": "postgres",
  "database.dbname": "postgres",
  "topic.prefix": "pay",
  "table.include.list": "public.outbox",
  "snapshot.mode": "no_data",
  "key.converter": "org.apache.kafka.connect.json.JsonConverter",
  "value.converter": "org.apache.kafka.connect.storage.StringConverter",
  "transforms": "outbox",
  "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
  "transforms.outbox.table.field.event.key": "amount",
  "transforms.outbox.table.fields.additional.placement": "amount:header,ratio:header,price:header,at:header,at_ms:header,at_tz:header,took:header"
}}"#,
        port = pg.port()
    );
    let outboxd = Outboxd::start_with(
        &json,
        &["--kafka-bootstrap-servers", broker.bootstrap()],
        &[("RUST_LOG", "info")],
    );
    assert!(
        outboxd
            .wait_for_log("streaming", Duration::from_secs(30))
            .await,
        "outboxd did not start streaming:\n{}",
        outboxd.log()
    );
    let id = "5b0c7e52-9d41-4c8e-b7f0-5b2a6c1d0001";
    c.batch_execute(&format!(
        "INSERT INTO public.outbox VALUES ('{id}', '{aggregate}', 'p-1', 'PaymentTaken', 'paid', \
         1234.5, 0.250, 1234.56, '10:15:30.123456', '10:15:30.123', '10:00:01.5+02', \
         '1 day 02:00:00')"
    ))
    .await
    .unwrap();

    let records = consume(&topic, 2).await;
    assert_eq!(records.len(), 1, "{records:#?}\n{}", outboxd.log());
    let r = &records[0];
    // The numeric(10,2) key as Connect's Decimal: 123450 unscaled, base64 of 0x01e23a.
    assert_eq!(
        r.key_str().as_deref(),
        Some(
            r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}},"payload":"AeI6"}"#
        )
    );
    assert_eq!(r.value.as_deref(), Some(&b"paid"[..]));
    let header = |name: &str, value: &str| (name.to_string(), Some(value.as_bytes().to_vec()));
    assert_eq!(
        r.headers,
        vec![
            header("id", id),
            // SimpleHeaderConverter: a Decimal as its BigDecimal text, the variable-scale
            // struct as Connect prints structs, the time types as their numbers.
            header("amount", "1234.50"),
            header("ratio", r#"{"scale":2,"value":"GQ=="}"#),
            header("price", "1234.56"),
            header("at", "36930123456"),
            header("at_ms", "36930123"),
            header("at_tz", "08:00:01.5Z"),
            header("took", "93600000000"),
        ]
    );
}

/// The same connector as a Strimzi `KafkaConnector` resource and as a Debezium Server
/// `application.properties`, given to `--config` as they are: each maps like the connector JSON
/// (the same records), and the forms' own keys with no use for outboxd are listed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strimzi_resource_and_a_debezium_server_file_run_like_the_connector_json() {
    let broker = Broker::shared();
    let pg = cluster().await;
    let c = pg.client().await;
    let dir = tempfile::tempdir().unwrap();
    let worker = write_worker_file(dir.path());
    let json: serde_json::Value =
        serde_json::from_str(&connector_json(&pg, "app", Some(PASSWORD), "")).unwrap();
    for form in ["strimzi", "server"] {
        let aggregate = unique("Order");
        let topic = format!("{aggregate}.events");
        broker.create_topic(&topic, 1).await;
        let slot = format!("orders_{form}");
        let mut config: Vec<(String, String)> = json["config"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .filter(|(k, _)| k != "slot.name" && k != "publication.name")
            .collect();
        config.push(("slot.name".into(), slot.clone()));
        config.push(("publication.name".into(), slot.clone()));
        let (text, args): (String, Vec<&str>) = if form == "strimzi" {
            let mut yaml = String::from(
                "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaConnector\nmetadata:\n  name: orders-outbox\n  labels:\n    strimzi.io/cluster: connect\nspec:\n  class: io.debezium.connector.postgresql.PostgresConnector\n  tasksMax: 1\n  state: running\n  autoRestart:\n    enabled: true\n  config:\n",
            );
            for (k, v) in &config {
                if k != "connector.class" && k != "tasks.max" {
                    yaml.push_str(&format!("    {k}: {}\n", serde_json::to_string(v).unwrap()));
                }
            }
            (yaml, vec!["--worker-config", &worker])
        } else {
            let mut props = format!(
                "debezium.sink.type=kafka\ndebezium.sink.kafka.producer.bootstrap.servers={}\n\
                 debezium.format.key=json\ndebezium.format.key.schemas.enable=false\n\
                 quarkus.log.console.json=false\ndebezium.source.name=orders-outbox\n",
                broker.bootstrap()
            );
            for (k, v) in &config {
                let (prefix, key) = match k.strip_prefix("transforms") {
                    Some(rest) => ("debezium.transforms", rest.to_string()),
                    None if k.starts_with("value.converter") => continue,
                    None => ("debezium.source.", k.clone()),
                };
                props.push_str(&format!("{prefix}{key}={v}\n"));
            }
            props.push_str(
                "debezium.format.value=json\ndebezium.format.value.schemas.enable=false\n",
            );
            (props, vec![])
        };
        let outboxd = Outboxd::start_with(&text, &args, &[("RUST_LOG", "info")]);
        assert!(
            outboxd
                .wait_for_log("streaming", Duration::from_secs(30))
                .await,
            "{form}: outboxd did not start streaming:\n{}\n{text}",
            outboxd.log()
        );
        let id = "6f1d5a7e-0b5c-4b0e-9a52-1d2d1a0c00aa";
        c.batch_execute(&format!(
            "INSERT INTO public.outboxevent (id, aggregatetype, aggregateid, type, timestamp, payload) \
             VALUES ('{id}', '{aggregate}', 'order-1', 'OrderCreated', '2026-11-21 10:00:00', '{{\"order\": 1}}'); \
             DELETE FROM public.outboxevent WHERE id = '{id}';"
        ))
        .await
        .unwrap();
        let records = consume(&topic, 1).await;
        assert_eq!(records.len(), 1, "{form}: {}", outboxd.log());
        let r = &records[0];
        assert_eq!(r.key_str().as_deref(), Some("\"order-1\""), "{form}");
        assert_eq!(
            r.value.as_deref(),
            Some(serde_json::to_string("{\"order\": 1}").unwrap().as_bytes()),
            "{form}"
        );
        assert_eq!(
            r.header_str("eventType").as_deref(),
            Some("OrderCreated"),
            "{form}"
        );
        let log = outboxd.log();
        let unused = if form == "strimzi" {
            "KafkaConnector keys outboxd has no use for: spec.autoRestart"
        } else {
            "Debezium Server keys outboxd has no use for: quarkus.log.console.json"
        };
        assert_eq!(log.matches(unused).count(), 1, "{form}: {log}");
        assert!(
            !log.contains(PASSWORD),
            "{form}: the password is in the log"
        );
    }
}
