//! A Debezium connector's JSON as outboxd's configuration.
//!
//! `outboxd run --config connector.json` (and every other command taking `--config`) accepts the
//! configuration of a Debezium PostgreSQL connector whose job is the outbox, in the Kafka Connect
//! REST form (`{"name": …, "config": {…}}`, as `GET /connectors/NAME` returns it) or flat (`{…}`,
//! the `config` object alone), optionally with the Kafka Connect worker's properties file
//! (`--worker-config`). [`import`] maps it to a [`Config`]; `outboxd import-debezium` prints that
//! configuration as TOML ([`Imported::to_toml`], secrets left out).
//!
//! The mapping follows what Kafka Connect and Debezium (1.x to 3.x) do with each key:
//! - `database.*` become `source.url`; `slot.name`, `publication.name` (Debezium's defaults
//!   `debezium`, `dbz_publication`), `table.include.list` (exact names only),
//!   `publication.autocreate.mode`, `status.update.interval.ms`, `heartbeat.*` and
//!   `message.prefix.include.list` (exact names only) the other `[source]` keys;
//! - the options of the one `io.debezium.transforms.outbox.EventRouter` transform become `[router]`,
//!   with the connector's `topic.prefix` (`database.server.name` before Debezium 2);
//! - converters are taken as Kafka Connect takes them: per side (key, value, header), from the
//!   connector when it names the converter class, else from the worker file, else Kafka Connect's
//!   default (JsonConverter with `schemas.enable=true`), each with the `<side>.converter.*`
//!   options of the same place;
//! - the producer gets the worker's `bootstrap.servers` and `producer.*`, then the connector's
//!   `producer.override.*`, as a Connect worker builds a source task's producer, translated to
//!   librdkafka where the Java client's names differ (`sasl.jaas.config`, `max.request.size`).
//!
//! Keys without effect on the records (`tasks.max`, `tombstones.on.delete`, …) are returned in
//! [`Imported::ignored_keys`] for one warning; keys whose effect outboxd cannot reproduce (other
//! transforms, snapshots, `decoderbufs`, column filters, …) and keys it does not know are errors
//! naming the key and the fix. Nothing here reads files or the environment: the caller passes the
//! texts in, and the database password, when the JSON has none, comes from `PGPASSWORD` when the
//! URL is used ([`crate::source::ConnectParams::from_url`]).
//!
//! # Layout
//! - [`input`]: the connector JSON and the worker's properties file, read into keys and values;
//!   [`forms`]: a Strimzi `KafkaConnector` resource and a Debezium Server
//!   `application.properties`, unwrapped into the same;
//! - [`providers`]: `${file:…}`, `${env:…}`, `${dir:…}` config provider references;
//! - `mapper`: the walk over all keys, with the lists of ignored and unsupported ones; the
//!   sections' keys map in `source` (`[source]`, `[exactly_once]`), `router` (`[router]`,
//!   `[converters]`) and `kafka_properties` (the producer, Java client → librdkafka names);
//! - `toml_out`: [`Imported::to_toml`];
//! - [`offsets`]: Debezium's source offset (Connect's offsets topic or file) and the rule that
//!   skips what Debezium already published, for `--take-over-offsets` (pure); [`tail`]: the
//!   events it published after that offset, read back from the destination topics (pure; the
//!   reads are `sink::readback`'s).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::Config;

pub mod forms;
pub mod input;
mod kafka_properties;
mod mapper;
pub mod offsets;
pub mod providers;
mod router;
mod source;
pub mod tail;
#[cfg(test)]
mod testing;
mod toml_out;

pub use input::{looks_like_json, parse_connector_json, parse_properties, ConnectorJson};
pub use kafka_properties::is_unprinted_secret;
pub use providers::{
    config_providers, resolve_config_providers, DIRECTORY_CONFIG_PROVIDER, ENV_VAR_CONFIG_PROVIDER,
    FILE_CONFIG_PROVIDER,
};

/// The only transform outboxd runs.
pub const EVENT_ROUTER: &str = "io.debezium.transforms.outbox.EventRouter";
/// The only connector class outboxd replaces.
pub const POSTGRES_CONNECTOR: &str = "io.debezium.connector.postgresql.PostgresConnector";

/// A connector configuration outboxd cannot use, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebeziumError {
    #[error("not a Kafka Connect connector configuration: {0}")]
    Json(String),
    #[error("worker properties, line {line}: {message}")]
    Properties { line: usize, message: String },
    #[error("connector key {key}: {message}")]
    Key { key: String, message: String },
}

fn key_error(key: &str, message: impl Into<String>) -> DebeziumError {
    DebeziumError::Key {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The outboxd configuration equivalent to a connector's.
#[derive(Clone)]
pub struct Imported {
    /// The configuration, `source.url` without the password.
    config: Config,
    /// `source.url` with the connector's `database.password`, when it has one. Never printed.
    url_with_password: Option<String>,
    /// The connector's name, when the JSON has one.
    pub connector_name: Option<String>,
    /// Connector keys that change nothing in what outboxd publishes, sorted: for one warning.
    pub ignored_keys: Vec<String>,
    /// Differences worth a warning each (one line each, never a value that could be a secret).
    pub warnings: Vec<String>,
    /// `[kafka]` properties that hold secrets: left out of [`Imported::to_toml`].
    secret_kafka_keys: BTreeSet<String>,
}

impl fmt::Debug for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imported")
            .field("connector_name", &self.connector_name)
            .field("url", &self.config.source.url)
            .field(
                "password",
                &self.url_with_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ignored_keys", &self.ignored_keys)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Imported {
    /// The configuration to run with: with the connector's database password in `source.url` if
    /// it has one (else the password comes from `PGPASSWORD`).
    pub fn config(&self) -> Config {
        let mut config = self.config.clone();
        if let Some(url) = &self.url_with_password {
            config.source.url = url.clone();
        }
        config
    }

    /// Whether the connector JSON holds the database password.
    pub fn has_password(&self) -> bool {
        self.url_with_password.is_some()
    }
}

/// Maps a connector configuration (and the worker's properties, if given) to outboxd's.
pub fn import(
    connector: &ConnectorJson,
    worker: Option<&BTreeMap<String, String>>,
) -> Result<Imported, DebeziumError> {
    mapper::Mapper::new(connector, worker).run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{Converter, Converters, BYTE_BUFFER_CONVERTER};
    use crate::debezium::testing::*;
    use crate::pipeline::Plan;
    use crate::source::ConnectParams;

    #[test]
    fn the_golden_connector_configs_map_as_tests_golden_derives_them() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/debezium-3.6.3");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 15);
        for path in files {
            let golden: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let cc: BTreeMap<String, String> =
                serde_json::from_value(golden["connector_config"].clone()).unwrap();
            // What tests/golden.rs derives (without its per-run topic tag).
            let mut router: BTreeMap<String, String> = cc
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("transforms.outbox.")
                        .filter(|k| *k != "type")
                        .map(|k| (k.to_string(), v.clone()))
                })
                .collect();
            router.insert("topic.prefix".into(), cc["topic.prefix"].clone());
            let converters: BTreeMap<String, String> = cc
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("key.converter")
                        || k.starts_with("value.converter")
                        || k.starts_with("header.converter")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let tables: Vec<String> = cc["table.include.list"]
                .split(',')
                .map(|t| t.trim().to_string())
                .collect();

            let mut config = cc.clone();
            for (k, v) in [
                ("database.hostname", "localhost"),
                ("database.user", "postgres"),
                ("database.dbname", "golden"),
            ] {
                config.insert(k.into(), v.into());
            }
            let json = serde_json::json!({"name": "golden", "config": config}).to_string();
            let i = import(&parse_connector_json(&json).unwrap(), None)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let c = i.config();
            assert_eq!(strings(&c.router), router, "{}", path.display());
            assert_eq!(strings(&c.converters), converters, "{}", path.display());
            assert_eq!(c.source.tables, tables, "{}", path.display());
            assert_eq!(
                i.ignored_keys,
                ["connector.class", "tombstones.on.delete"],
                "{}",
                path.display()
            );
            assert!(
                i.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                i.warnings
            );
            let mut c = c;
            c.kafka.insert(
                "bootstrap.servers".into(),
                toml::Value::String("k:9092".into()),
            );
            Plan::from_config(&c).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn a_debezium_1x_connector_loads() {
        let json = r#"{
          "name": "outbox-connector",
          "config": {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1",
            "plugin.name": "pgoutput",
            "database.hostname": "postgres",
            "database.port": "5432",
            "database.user": "postgres",
            "database.password": "postgres",
            "database.dbname": "orders",
            "database.server.name": "dbserver1",
            "schema.whitelist": "inventory",
            "table.whitelist": "inventory.outboxevent",
            "snapshot.mode": "never",
            "tombstones.on.delete": "false",
            "slot.name": "orders_slot",
            "publication.autocreate.mode": "filtered",
            "heartbeat.interval.ms": "30000",
            "heartbeat.topics.prefix": "__debezium-heartbeat",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "io.debezium.converters.ByteBufferConverter",
            "value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.delegate.converter.type.schemas.enable": "false",
            "transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "transforms.outbox.table.fields.additional.placement": "type:header:eventType",
            "transforms.outbox.route.topic.replacement": "${routedByValue}.events",
            "transforms.outbox.table.field.event.timestamp": "timestamp",
            "transforms.outbox.debezium.op.invalid.behavior": "warn"
          }
        }"#;
        let i = import(&parse_connector_json(json).unwrap(), None).unwrap();
        let c = i.config();
        assert_eq!(c.source.tables, ["inventory.outboxevent"]);
        assert_eq!(c.source.slot, "orders_slot");
        assert_eq!(c.source.publication, "dbz_publication");
        let router = strings(&c.router);
        assert_eq!(router["topic.prefix"], "dbserver1");
        assert_eq!(router["table.op.invalid.behavior"], "warn");
        let conv = Converters::from_map(&strings(&c.converters)).unwrap();
        assert_eq!(
            conv.value,
            Converter::BinaryData {
                class: BYTE_BUFFER_CONVERTER,
                delegate: Some(Box::new(Converter::Json {
                    schemas_enable: false
                }))
            }
        );
        assert_eq!(
            i.ignored_keys,
            [
                "connector.class",
                "heartbeat.interval.ms",
                "heartbeat.topics.prefix",
                "schema.whitelist",
                "tasks.max",
                "tombstones.on.delete",
            ]
        );
        Config::from_toml(&i.to_toml()).unwrap();
    }

    #[test]
    fn a_debezium_3x_connector_loads() {
        let json = r#"{
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": 1,
            "database.hostname": "pg.prod.internal",
            "database.port": 5432,
            "database.user": "dbz",
            "database.password": "${file:/opt/kafka/secrets/db.properties:password}",
            "database.dbname": "shop",
            "database.sslmode": "verify-full",
            "database.sslrootcert": "/etc/ssl/pg-ca.pem",
            "topic.prefix": "shop",
            "plugin.name": "pgoutput",
            "slot.name": "shop_outbox",
            "publication.name": "shop_outbox",
            "publication.autocreate.mode": "filtered",
            "table.include.list": "public.outbox_event",
            "snapshot.mode": "no_data",
            "tombstones.on.delete": false,
            "skipped.operations": "u,d,t",
            "decimal.handling.mode": "string",
            "extended.headers.enabled": "false",
            "heartbeat.interval.ms": 10000,
            "heartbeat.action.query": "INSERT INTO debezium_heartbeat (id, ts) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
            "transforms": "outbox",
            "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "transforms.outbox.table.field.event.key": "aggregate_id",
            "transforms.outbox.route.by.field": "aggregate_type",
            "transforms.outbox.route.topic.replacement": "shop.${routedByValue}",
            "transforms.outbox.table.fields.additional.placement": "event_type:header:type,id:envelope:eventId",
            "transforms.outbox.table.expand.json.payload": true,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": true,
            "errors.tolerance": "none",
            "topic.creation.default.replication.factor": 3,
            "topic.creation.default.partitions": 6,
            "producer.override.compression.type": "zstd",
            "producer.override.linger.ms": 10
        }"#;
        let mut connector = parse_connector_json(json).unwrap();
        let providers = config_providers(None);
        resolve_config_providers(&mut connector.config, "", &providers, &|_| None, &|path| {
            match path {
                "/opt/kafka/secrets/db.properties" => {
                    Ok("# db\nuser=dbz\npassword=s3cr:t\n".into())
                }
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file",
                )),
            }
        })
        .unwrap();
        let i = import(&connector, None).unwrap();
        let c = i.config();
        let p = ConnectParams::from_url_with_env(&c.source.url, |_| None).unwrap();
        assert_eq!(p.password.as_deref(), Some("s3cr:t"));
        assert_eq!(p.sslmode, crate::source::SslMode::VerifyFull);
        assert_eq!(c.source.heartbeat_interval_ms, 10_000);
        assert_eq!(strings(&c.kafka)["linger.ms"], "10");
        assert_eq!(strings(&c.router)["table.expand.json.payload"], "true");
        // Only the non-default decimal mode is worth a warning.
        assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
        assert!(i.warnings[0].starts_with("decimal.handling.mode=string: "));
        let mut c = c;
        c.kafka.insert(
            "bootstrap.servers".into(),
            toml::Value::String("k:9092".into()),
        );
        Plan::from_config(&c).unwrap();
        assert!(!i.to_toml().contains("s3cr"));
    }
}
