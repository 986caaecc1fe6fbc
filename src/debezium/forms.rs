//! The other places a Debezium connector's configuration lives, read into the same
//! [`ConnectorJson`] (and worker properties) the connector JSON gives, so that they map exactly
//! like it: a Strimzi `KafkaConnector` resource (YAML), and a Debezium Server
//! `application.properties`.
//!
//! Owns recognizing and unwrapping the two forms; it must not interpret a connector key (that is
//! `mapper`). Keys of the forms themselves that outboxd has no use for are returned once, to be
//! listed in one warning.
//!
//! - **Strimzi** (`kind: KafkaConnector`): `metadata.name` is the connector's name, `spec.class`
//!   its `connector.class`, `spec.config` its keys; `spec.state` (`running`, `paused`,
//!   `stopped`; the older `spec.pause`) is reported, since outboxd runs whatever it says;
//!   `spec.tasksMax` becomes `tasks.max`; other `spec` members (`autoRestart`, `version`, …) are
//!   listed as ignored.
//! - **Debezium Server** (`debezium.source.*` keys): `debezium.source.*` are the connector's keys
//!   (its `offset.*` ones, the offset store, go to the worker side, as Kafka Connect keeps them);
//!   `debezium.transforms*` and `debezium.predicates*` the transforms; `debezium.sink.type` must be
//!   `kafka`, and `debezium.sink.kafka.producer.*` are the producer (`bootstrap.servers` included);
//!   `debezium.format.key` / `.value` / `.header` choose the converters (`json`: JsonConverter,
//!   `simplestring`: StringConverter, `binary`: BinaryDataConverter) with their
//!   `debezium.format.<side>.*` options (Debezium Server's default format, json, when absent);
//!   `debezium.source.name` is the connector's name (the first part of its offsets key).
//!   `quarkus.*` and other `debezium.*` keys are listed as ignored.

use std::collections::BTreeMap;

use super::input::ConnectorJson;
use super::{key_error, DebeziumError};

/// What a configuration file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A Kafka Connect connector JSON (REST form or flat).
    ConnectorJson,
    /// A Strimzi `KafkaConnector` resource.
    Strimzi,
    /// A Debezium Server `application.properties`.
    DebeziumServer,
}

/// The form of a configuration file's text, `None` for outboxd's own TOML.
pub fn detect(text: &str) -> Option<Form> {
    let text = text.trim_start_matches('\u{feff}');
    if super::looks_like_json(text) {
        return Some(Form::ConnectorJson);
    }
    let lines = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
    };
    if lines().any(|l| {
        l.strip_prefix("kind:")
            .is_some_and(|k| k.trim().trim_matches(|c| c == '"' || c == '\'') == "KafkaConnector")
    }) {
        return Some(Form::Strimzi);
    }
    if lines().any(|l| l.starts_with("debezium.source.")) {
        return Some(Form::DebeziumServer);
    }
    None
}

/// A form unwrapped: the connector, the worker-side properties it carries (Debezium Server), and
/// the form's own keys that have no use here.
#[derive(Debug, Clone, Default)]
pub struct Unwrapped {
    pub connector: Option<ConnectorJson>,
    pub worker: BTreeMap<String, String>,
    pub ignored: Vec<String>,
    pub warnings: Vec<String>,
}

/// A Strimzi `KafkaConnector` resource (YAML).
pub fn parse_strimzi(text: &str) -> Result<Unwrapped, DebeziumError> {
    let doc: serde_norway::Value = serde_norway::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| DebeziumError::Json(format!("invalid KafkaConnector YAML: {e}")))?;
    let get = |v: &serde_norway::Value, k: &str| v.get(k).cloned();
    if get(&doc, "kind")
        .and_then(|k| k.as_str().map(str::to_string))
        .as_deref()
        != Some("KafkaConnector")
    {
        return Err(DebeziumError::Json(
            "a Strimzi resource must be kind: KafkaConnector".into(),
        ));
    }
    let name = get(&doc, "metadata")
        .and_then(|m| get(&m, "name"))
        .and_then(|n| n.as_str().map(str::to_string));
    let spec = get(&doc, "spec")
        .ok_or_else(|| DebeziumError::Json("the KafkaConnector has no spec".into()))?;
    let mut out = Unwrapped::default();
    let mut config = BTreeMap::new();
    let text_of = |key: &str, v: &serde_norway::Value| -> Result<Option<String>, DebeziumError> {
        Ok(match v {
            serde_norway::Value::String(s) => Some(s.clone()),
            serde_norway::Value::Number(n) => Some(n.to_string()),
            serde_norway::Value::Bool(b) => Some(b.to_string()),
            serde_norway::Value::Null => None,
            _ => {
                return Err(key_error(
                    key,
                    "expected a string, number or boolean (Kafka Connect configuration values are text)",
                ))
            }
        })
    };
    let serde_norway::Value::Mapping(spec) = spec else {
        return Err(DebeziumError::Json(
            "the KafkaConnector's spec is not a mapping".into(),
        ));
    };
    for (k, v) in &spec {
        let Some(k) = k.as_str() else { continue };
        match k {
            "class" => {
                if let Some(class) = text_of("spec.class", v)? {
                    config.insert("connector.class".to_string(), class);
                }
            }
            "tasksMax" => {
                if let Some(n) = text_of("spec.tasksMax", v)? {
                    config.insert("tasks.max".to_string(), n);
                }
            }
            "config" => {
                let serde_norway::Value::Mapping(c) = v else {
                    return Err(DebeziumError::Json("spec.config is not a mapping".into()));
                };
                for (ck, cv) in c {
                    let Some(ck) = ck.as_str() else { continue };
                    if let Some(t) = text_of(ck, cv)? {
                        config.insert(ck.to_string(), t);
                    }
                }
            }
            "state" => {
                let state = text_of("spec.state", v)?.unwrap_or_default();
                if state != "running" {
                    out.warnings.push(format!("the KafkaConnector's spec.state is {state}: outboxd runs the connector all the same (it is a replacement for it, not a Kafka Connect worker)"));
                }
            }
            "pause" => {
                if text_of("spec.pause", v)?.as_deref() == Some("true") {
                    out.warnings.push("the KafkaConnector has spec.pause: true: outboxd runs the connector all the same".into());
                }
            }
            other => out.ignored.push(format!("spec.{other}")),
        }
    }
    out.connector = Some(ConnectorJson { name, config });
    Ok(out)
}

/// A Debezium Server `application.properties`.
pub fn parse_debezium_server(text: &str) -> Result<Unwrapped, DebeziumError> {
    let props = super::parse_properties(text)?;
    let mut out = Unwrapped::default();
    let mut config = BTreeMap::new();
    let mut formats: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in &props {
        if let Some(key) = k.strip_prefix("debezium.source.") {
            if key.starts_with("offset.") {
                // The offset store: Kafka Connect's worker side.
                out.worker.insert(key.to_string(), v.clone());
            } else {
                config.insert(key.to_string(), v.clone());
            }
        } else if let Some(rest) = k
            .strip_prefix("debezium.transforms")
            .or_else(|| k.strip_prefix("debezium.predicates"))
        {
            let family = if k.starts_with("debezium.transforms") {
                "transforms"
            } else {
                "predicates"
            };
            config.insert(format!("{family}{rest}"), v.clone());
        } else if k == "debezium.sink.type" {
            if v.trim() != "kafka" {
                return Err(key_error(
                    k,
                    format!("{v:?}: outboxd publishes to Kafka only; set debezium.sink.type=kafka (with debezium.sink.kafka.producer.bootstrap.servers)"),
                ));
            }
        } else if let Some(p) = k.strip_prefix("debezium.sink.kafka.producer.") {
            if p == "bootstrap.servers" {
                out.worker.insert(p.to_string(), v.clone());
            } else {
                out.worker.insert(format!("producer.{p}"), v.clone());
            }
        } else if let Some(side) = ["key", "value", "header"]
            .into_iter()
            .find(|s| k == &format!("debezium.format.{s}"))
        {
            formats.insert(side, v.trim().to_string());
        } else if let Some(rest) = ["key", "value", "header"].into_iter().find_map(|s| {
            k.strip_prefix(&format!("debezium.format.{s}."))
                .map(|opt| (s, opt))
        }) {
            let (side, opt) = rest;
            config.insert(format!("{side}.converter.{opt}"), v.clone());
        } else {
            out.ignored.push(k.clone());
        }
    }
    // Debezium Server's default format is json, for the key and the value.
    for side in ["key", "value"] {
        formats.entry(side).or_insert_with(|| "json".to_string());
    }
    for (side, format) in formats {
        let class = match format.as_str() {
            "json" => "org.apache.kafka.connect.json.JsonConverter",
            "simplestring" => "org.apache.kafka.connect.storage.StringConverter",
            "binary" => "io.debezium.converters.BinaryDataConverter",
            other => {
                return Err(key_error(
                    &format!("debezium.format.{side}"),
                    format!("{other:?}: outboxd writes json, simplestring or binary (avro, protobuf, cloudevents and jsonbytearray are not supported)"),
                ))
            }
        };
        let key = format!("{side}.converter");
        if side == "header" {
            // Only SimpleHeaderConverter is supported: json headers are refused by the mapper.
            if format != "simplestring" && format != "json" {
                return Err(key_error(
                    "debezium.format.header",
                    "outboxd writes headers as SimpleHeaderConverter does",
                ));
            }
            continue;
        }
        config.insert(key, class.to_string());
    }
    let name = config.remove("name");
    out.connector = Some(ConnectorJson { name, config });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_told_apart() {
        assert_eq!(detect("{\"name\": \"x\"}"), Some(Form::ConnectorJson));
        assert_eq!(
            detect("apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaConnector\n"),
            Some(Form::Strimzi)
        );
        assert_eq!(
            detect("# comment\ndebezium.sink.type=kafka\ndebezium.source.connector.class=x\n"),
            Some(Form::DebeziumServer)
        );
        assert_eq!(detect("[source]\nurl = \"postgres://u@h/d\"\n"), None);
    }

    #[test]
    fn a_strimzi_kafka_connector_unwraps_to_its_name_class_and_config() {
        let u = parse_strimzi(
            r#"
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaConnector
metadata:
  name: outbox-connector
  labels:
    strimzi.io/cluster: my-connect
spec:
  class: io.debezium.connector.postgresql.PostgresConnector
  tasksMax: 1
  state: paused
  autoRestart:
    enabled: true
  config:
    database.hostname: db
    database.port: 5432
    plugin.name: pgoutput
    transforms: outbox
    transforms.outbox.type: io.debezium.transforms.outbox.EventRouter
    tombstones.on.delete: false
"#,
        )
        .unwrap();
        let c = u.connector.unwrap();
        assert_eq!(c.name.as_deref(), Some("outbox-connector"));
        assert_eq!(
            c.config["connector.class"],
            "io.debezium.connector.postgresql.PostgresConnector"
        );
        assert_eq!(c.config["tasks.max"], "1");
        assert_eq!(c.config["database.port"], "5432");
        assert_eq!(c.config["tombstones.on.delete"], "false");
        assert_eq!(u.ignored, vec!["spec.autoRestart"]);
        assert!(
            u.warnings[0].contains("spec.state is paused"),
            "{:?}",
            u.warnings
        );
        assert!(parse_strimzi("kind: KafkaConnect\nspec: {}\n").is_err());
        assert!(parse_strimzi("kind: KafkaConnector\nspec:\n  config:\n    a: [1]\n").is_err());
    }

    #[test]
    fn a_debezium_server_properties_file_unwraps_to_connector_and_producer() {
        let u = parse_debezium_server(
            "debezium.sink.type=kafka\n\
             debezium.sink.kafka.producer.bootstrap.servers=kafka:9092\n\
             debezium.sink.kafka.producer.linger.ms=20\n\
             debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             debezium.source.name=outbox-server\n\
             debezium.source.database.hostname=db\n\
             debezium.source.offset.storage.file.filename=data/offsets.dat\n\
             debezium.source.offset.flush.interval.ms=0\n\
             debezium.source.topic.prefix=shop\n\
             debezium.transforms=outbox\n\
             debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n\
             debezium.format.value=json\n\
             debezium.format.value.schemas.enable=false\n\
             debezium.format.key=simplestring\n\
             quarkus.log.level=INFO\n",
        )
        .unwrap();
        let c = u.connector.unwrap();
        assert_eq!(c.name.as_deref(), Some("outbox-server"));
        assert_eq!(c.config["database.hostname"], "db");
        assert_eq!(
            c.config["transforms.outbox.type"],
            "io.debezium.transforms.outbox.EventRouter"
        );
        assert_eq!(
            c.config["value.converter"],
            "org.apache.kafka.connect.json.JsonConverter"
        );
        assert_eq!(c.config["value.converter.schemas.enable"], "false");
        assert_eq!(
            c.config["key.converter"],
            "org.apache.kafka.connect.storage.StringConverter"
        );
        assert!(!c.config.contains_key("offset.storage.file.filename"));
        assert_eq!(u.worker["offset.storage.file.filename"], "data/offsets.dat");
        assert_eq!(u.worker["bootstrap.servers"], "kafka:9092");
        assert_eq!(u.worker["producer.linger.ms"], "20");
        assert_eq!(u.ignored, vec!["quarkus.log.level"]);
        let e =
            parse_debezium_server("debezium.sink.type=pulsar\ndebezium.source.a=b\n").unwrap_err();
        assert!(e.to_string().contains("debezium.sink.type"), "{e}");
        let e =
            parse_debezium_server("debezium.format.value=avro\ndebezium.source.a=b\n").unwrap_err();
        assert!(e.to_string().contains("avro"), "{e}");
    }
}
