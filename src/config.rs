//! The configuration file (TOML) and its validation.
//!
//! The raw form ([`Config`]) mirrors the file one to one and rejects unknown keys; every field's doc
//! comment is its user documentation (docs/configuration.md repeats it). Command-line overrides are
//! applied with [`Config::apply_overrides`]. Checking that values fit together happens here, before
//! any connection is opened; the router and Kafka sections are validated by their own modules.

// `#[path]`: tests/fuzz compiles this file by path, which makes rustc look for its children
// beside it (src/), not in src/config/; the explicit path is right for both builds.
#[path = "config/java_properties.rs"]
pub mod java_properties;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// A problem with the configuration, always naming the key and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Postgres database to read the outbox from.
    pub source: SourceConfig,
    /// Debezium EventRouter options (`route.topic.replacement`, `table.field.event.key`, ...), with
    /// Debezium's names, meanings and defaults. Validated by the router.
    #[serde(default)]
    pub router: BTreeMap<String, toml::Value>,
    /// Kafka Connect converter settings (`"key.converter"`, `"value.converter"`,
    /// `"value.converter.schemas.enable"`, ...), with Kafka Connect's names and meanings: how keys,
    /// values and headers become bytes. Absent: raw text and bytes. Validated by `convert`.
    #[serde(default)]
    pub converters: BTreeMap<String, toml::Value>,
    /// librdkafka producer properties, passed through (`bootstrap.servers`, `linger.ms`, ...).
    #[serde(default)]
    pub kafka: BTreeMap<String, toml::Value>,
    /// Poison events, with Kafka Connect's names (`"errors.tolerance"`,
    /// `"errors.deadletterqueue.topic.name"`, ...): stop on them (the default) or write them to a
    /// dead-letter topic. Validated by `dead_letter`.
    #[serde(default)]
    pub errors: BTreeMap<String, toml::Value>,
    /// Memory bounds and shutdown timing of the relay.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The HTTP listener (metrics and health endpoints).
    #[serde(default)]
    pub http: HttpConfig,
    /// The opt-in exactly-once mode (Kafka transactions with the position in an offsets topic).
    /// Validated by `exactly_once`.
    #[serde(default)]
    pub exactly_once: crate::exactly_once::ExactlyOnceConfig,
    /// Where the published position is recorded in Kafka, so that a slot moved or recreated by
    /// someone else is detected at start. Validated by `position`.
    #[serde(default)]
    pub offsets: crate::position::OffsetsConfig,
    /// Taking over from a Debezium connector: the events its stored offset says it published are
    /// not published again (`debezium::offsets`). `outboxd run --take-over-offsets` fills it in
    /// from the connector's JSON and the worker's properties.
    #[serde(default)]
    pub takeover: TakeoverConfig,
    /// Deleting outbox rows once their events are confirmed, for applications that never delete
    /// them (opt-in). Validated by `cleanup`.
    #[serde(default)]
    pub cleanup: crate::cleanup::CleanupConfig,
}

/// `[takeover]`: where Debezium's offset is, to skip what the connector already published.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TakeoverConfig {
    /// Read the connector's offset at start and skip the events it covers. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// The connector's name (Kafka Connect's `name`: the first part of its offsets key).
    pub connector_name: Option<String>,
    /// The connector's `topic.prefix` (`database.server.name` before Debezium 2): the `server`
    /// of its offsets key.
    pub server: Option<String>,
    /// Kafka Connect's offsets topic (a distributed worker's `offset.storage.topic`), read from
    /// the `[kafka]` cluster.
    pub offsets_topic: Option<String>,
    /// Kafka Connect's offset file (a standalone worker's, or Debezium Server's,
    /// `offset.storage.file.filename`).
    pub offsets_file: Option<std::path::PathBuf>,
    /// Read back the destination topics at start, from the offset's commit time less
    /// `read_back_margin_ms`, and do not publish again the events found there (the ones Debezium
    /// published after the offset it stored). Default true.
    pub read_back: Option<bool>,
    /// How far before the offset's commit time the read-back starts, for clocks that differ
    /// between the database and Kafka Connect. Default 60000.
    pub read_back_margin_ms: Option<u64>,
}

/// `[source]`: where the outbox lives and how it is replicated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Connection URL, `postgres://user:password@host:5432/db?sslmode=prefer`; several hosts
    /// as `postgres://user@h1:5432,h2:5432/db` (libpq style; the primary among them is used).
    /// The password may be left out of the URL and given in the `PGPASSWORD` environment
    /// variable instead. Query parameters: `sslmode` (disable, prefer, require, verify-ca,
    /// verify-full), `sslrootcert`, `sslcert`, `sslkey`, `application_name`, `connect_timeout`
    /// (seconds), `target_session_attrs` (primary, read-write, any), `host`, `port`.
    pub url: String,
    /// Logical replication slot name. Default `outboxd`.
    #[serde(default = "default_slot")]
    pub slot: String,
    /// Publication name. Default `outboxd`.
    #[serde(default = "default_publication")]
    pub publication: String,
    /// Outbox tables as `schema.table`. Default `["public.outbox"]`.
    #[serde(default = "default_tables")]
    pub tables: Vec<String>,
    /// Create the slot (plugin pgoutput) when it does not exist. Default true.
    #[serde(default = "default_true")]
    pub create_slot: bool,
    /// Create the publication for `tables` when it does not exist. Default true.
    #[serde(default = "default_true")]
    pub create_publication: bool,
    /// Publish the changes of a partitioned outbox table as the table itself (the publication's
    /// `publish_via_partition_root`, PostgreSQL 13+), so that events are routed by the name in
    /// `tables` and partitions created later are covered. Used when outboxd creates the
    /// publication; an existing publication is checked instead (a partitioned table in `tables`
    /// needs it on). `false` refuses partitioned tables. Default true. Debezium's
    /// `publish.via.partition.root`.
    #[serde(default = "default_true")]
    pub publish_via_partition_root: bool,
    /// Make the slot a failover slot (PostgreSQL 17+), which the server synchronizes to
    /// standbys that have `sync_replication_slots = on`, so that it survives a promotion. Unset
    /// (the default): yes on PostgreSQL 17+, for a slot outboxd creates and for an existing one;
    /// nothing before 17. `true`: the same, and an error before 17. `false`: never. Debezium's
    /// `slot.failover`.
    pub failover_slot: Option<bool>,
    /// Logical decoding message prefixes (exact names) whose transactional messages
    /// (`pg_logical_emit_message(true, prefix, content)`) are outbox events: the content is a JSON
    /// object of the outbox fields, routed like a row. Default `[]`: messages are not read.
    /// Postgres 14 or newer. Debezium's `message.prefix.include.list`.
    #[serde(default)]
    pub message_prefixes: Vec<String>,
    /// How often a standby status update (the confirmed LSN) is sent, in milliseconds. Must stay well
    /// under half of the server's `wal_sender_timeout` (default 60 s). Default 1000.
    #[serde(default = "default_status_interval_ms")]
    pub status_interval_ms: u64,
    /// How long the server may send nothing at all before the replication connection is taken
    /// for dead and opened again, in milliseconds (Postgres's `wal_receiver_timeout` for outboxd):
    /// after half of it, outboxd asks the server to answer at once. Catches network partitions
    /// that never reset the connection. 0 = never. Default 60000.
    #[serde(default = "default_receive_timeout_ms")]
    pub receive_timeout_ms: u64,
    /// How often `heartbeat_action_query` runs, in milliseconds; 0 (the default) = never. Debezium's
    /// `heartbeat.interval.ms`.
    #[serde(default)]
    pub heartbeat_interval_ms: u64,
    /// SQL run every `heartbeat_interval_ms` on an ordinary connection to the database, e.g.
    /// `INSERT INTO heartbeat (ts) VALUES (now())`: writes to the outbox's database make WAL move on
    /// when all other traffic is in other databases of the server. A failure is logged (warn) and
    /// never stops the relay. Debezium's `heartbeat.action.query`.
    pub heartbeat_action_query: Option<String>,
    /// Whether rows already in the outbox tables are published, with Debezium's `snapshot.mode`
    /// names: `no_data` (the default: only rows committed after the slot's position), `initial`
    /// (when outboxd creates the slot, first the rows in the tables at that point, read in the
    /// slot's exported snapshot), `always` (at every start), `initial_only` (publish the rows in the
    /// tables and exit, no slot) or `when_needed` (as `initial`, and also re-creates an invalidated
    /// slot). See docs/configuration.md.
    #[serde(default)]
    pub snapshot_mode: SnapshotMode,
}

/// `source.snapshot_mode`: which rows already in the outbox tables are published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Only rows committed after the slot's position.
    #[default]
    NoData,
    /// The rows in the tables when outboxd creates the slot, consistent with it.
    Initial,
    /// The rows in the tables at every start (duplicates of rows already published are expected).
    Always,
    /// The rows in the tables, then exit; no slot is kept.
    InitialOnly,
    /// As `Initial`, and an invalidated slot is dropped and re-created with a snapshot.
    WhenNeeded,
}

impl SnapshotMode {
    /// The mode's name in the configuration (and in Debezium).
    pub fn name(self) -> &'static str {
        match self {
            SnapshotMode::NoData => "no_data",
            SnapshotMode::Initial => "initial",
            SnapshotMode::Always => "always",
            SnapshotMode::InitialOnly => "initial_only",
            SnapshotMode::WhenNeeded => "when_needed",
        }
    }
}

impl SourceConfig {
    /// `status_interval_ms` when not set.
    pub const DEFAULT_STATUS_INTERVAL_MS: u64 = 1000;
}

/// `[pipeline]`: bounds on what is held in memory, and shutdown timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Events sent to Kafka but not yet acknowledged, at most. When reached, outboxd stops reading
    /// WAL (status updates continue) until acknowledgements free room. Default 10000.
    #[serde(default = "default_max_in_flight_events")]
    pub max_in_flight_events: u64,
    /// Bytes (key + value + headers) of events in flight, at most. Default 16777216 (16 MiB).
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: u64,
    /// On SIGTERM/SIGINT, how long to wait for Kafka to acknowledge what is in flight before the
    /// final confirmation, in milliseconds. Default 30000.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_in_flight_events: default_max_in_flight_events(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
        }
    }
}

/// `[http]`: the metrics and health listener.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `HOST:PORT` to serve `/metrics`, `/healthz` and `/readyz` on. Default: none (no listener).
    pub addr: Option<String>,
}

fn default_slot() -> String {
    "outboxd".into()
}
fn default_publication() -> String {
    "outboxd".into()
}
fn default_tables() -> Vec<String> {
    vec!["public.outbox".into()]
}
const fn default_true() -> bool {
    true
}
const fn default_status_interval_ms() -> u64 {
    SourceConfig::DEFAULT_STATUS_INTERVAL_MS
}
const fn default_receive_timeout_ms() -> u64 {
    60_000
}
const fn default_max_in_flight_events() -> u64 {
    10_000
}
const fn default_max_in_flight_bytes() -> u64 {
    16 * 1024 * 1024
}
const fn default_shutdown_timeout_ms() -> u64 {
    30_000
}

/// Values given on the command line (or their environment variables) that win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kafka_bootstrap_servers: Option<String>,
    pub http_addr: Option<String>,
}

/// A table named `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

impl TableName {
    /// `schema.table`, or `table` (schema `public`). Quoting is not needed: names are used as given.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            key: "source.tables".into(),
            message: format!("{s:?}: {message}"),
        };
        let (schema, name) = match s.split_once('.') {
            Some((schema, name)) => (schema, name),
            None => ("public", s),
        };
        if schema.is_empty() || name.is_empty() || name.contains('.') {
            return Err(invalid("expected schema.table, e.g. public.outbox"));
        }
        Ok(TableName {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }
}

impl Config {
    /// Reads and validates a TOML config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".into(),
            message: e.message().to_string() + &span_hint(text, e.span()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Applies command-line overrides.
    pub fn apply_overrides(&mut self, overrides: &Overrides) {
        if let Some(servers) = &overrides.kafka_bootstrap_servers {
            self.kafka.insert(
                "bootstrap.servers".into(),
                toml::Value::String(servers.clone()),
            );
        }
        if let Some(addr) = &overrides.http_addr {
            self.http.addr = Some(addr.clone());
        }
    }

    /// The outbox tables, parsed.
    pub fn tables(&self) -> Result<Vec<TableName>, ConfigError> {
        self.source
            .tables
            .iter()
            .map(|t| TableName::parse(t))
            .collect()
    }

    /// A flat string map of a pass-through section (`router`, `converters`, `kafka` or `errors`).
    pub fn string_map(
        section: &str,
        map: &BTreeMap<String, toml::Value>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        map.iter()
            .map(|(k, v)| {
                let value = match v {
                    toml::Value::String(s) => {
                        crate::secrets::resolve(&format!("{section}.\"{k}\""), s)?
                    }
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    other => {
                        return Err(ConfigError::Invalid {
                            key: format!("{section}.\"{k}\""),
                            message: format!(
                                "expected a string, number or boolean, found {}",
                                other.type_str()
                            ),
                        })
                    }
                };
                Ok((k.clone(), value))
            })
            .collect()
    }

    /// Checks the values (done by [`Config::from_toml`]; also for configurations built otherwise,
    /// such as a Debezium connector's).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        if self.source.tables.is_empty() {
            return Err(invalid(
                "source.tables",
                "at least one outbox table is needed, e.g. [\"public.outbox\"]",
            ));
        }
        self.tables()?;
        for (key, value) in [
            ("source.slot", &self.source.slot),
            ("source.publication", &self.source.publication),
        ] {
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(invalid(
                    key,
                    &format!("{value:?}: use lower-case letters, digits and underscores only (Postgres slot naming rules)"),
                ));
            }
        }
        // The marker slot of an unfinished snapshot is named `<slot>_snapshot` (63 bytes at most).
        if matches!(
            self.source.snapshot_mode,
            SnapshotMode::Initial | SnapshotMode::WhenNeeded | SnapshotMode::Always
        ) && self.source.slot.len() > 54
        {
            return Err(invalid(
                "source.slot",
                "must be at most 54 characters with a snapshot_mode that takes snapshots (outboxd marks an unfinished snapshot with a slot named <slot>_snapshot)",
            ));
        }
        if self.source.status_interval_ms == 0 || self.source.status_interval_ms > 20_000 {
            return Err(invalid(
                "source.status_interval_ms",
                "must be between 1 and 20000 (well under half of wal_sender_timeout)",
            ));
        }
        if self.source.receive_timeout_ms != 0 && self.source.receive_timeout_ms < 1_000 {
            return Err(invalid(
                "source.receive_timeout_ms",
                "must be 0 (never give up on a silent connection) or at least 1000",
            ));
        }
        match (
            self.source.heartbeat_interval_ms,
            self.source.heartbeat_action_query.as_deref().map(str::trim),
        ) {
            (0, None) => {}
            (0, Some(_)) => {
                return Err(invalid(
                    "source.heartbeat_action_query",
                    "needs source.heartbeat_interval_ms (how often to run it, in milliseconds)",
                ))
            }
            (_, None) => {
                return Err(invalid(
                    "source.heartbeat_interval_ms",
                    "does nothing without source.heartbeat_action_query: outboxd confirms the server's keepalive positions by itself; set the query or remove the key",
                ))
            }
            (_, Some("")) => {
                return Err(invalid(
                    "source.heartbeat_action_query",
                    "must not be empty",
                ))
            }
            (_, Some(_)) => {}
        }
        let prefixes = &self.source.message_prefixes;
        for (i, prefix) in prefixes.iter().enumerate() {
            if prefix.is_empty() || prefix.contains('\0') {
                return Err(invalid(
                    "source.message_prefixes",
                    &format!("{prefix:?}: a prefix must be non-empty text (the prefix given to pg_logical_emit_message)"),
                ));
            }
            if prefixes[..i].contains(prefix) {
                return Err(invalid(
                    "source.message_prefixes",
                    &format!("{prefix:?} is listed twice"),
                ));
            }
        }
        if prefixes.len() > crate::router::message::MAX_PREFIXES {
            return Err(invalid(
                "source.message_prefixes",
                &format!("at most {} prefixes", crate::router::message::MAX_PREFIXES),
            ));
        }
        if self.pipeline.max_in_flight_events == 0 {
            return Err(invalid(
                "pipeline.max_in_flight_events",
                "must be at least 1",
            ));
        }
        if self.pipeline.max_in_flight_bytes == 0 {
            return Err(invalid(
                "pipeline.max_in_flight_bytes",
                "must be at least 1",
            ));
        }
        self.cleanup
            .resolve(&self.tables()?, self.source.snapshot_mode)?;
        Config::string_map("router", &self.router)?;
        Config::string_map("converters", &self.converters)?;
        Config::string_map("kafka", &self.kafka)?;
        Config::string_map("errors", &self.errors)?;
        Ok(())
    }
}

/// " (line N)" for a parse error, when toml tells where.
fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source]
url = "postgres://u@localhost/db"
"#;

    #[test]
    fn minimal_config_takes_the_defaults() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.source.slot, "outboxd");
        assert_eq!(c.source.publication, "outboxd");
        assert_eq!(
            c.tables().unwrap(),
            vec![TableName {
                schema: "public".into(),
                name: "outbox".into()
            }]
        );
        assert!(c.source.create_slot && c.source.create_publication);
        assert_eq!(c.pipeline.max_in_flight_events, 10_000);
        assert_eq!(c.http.addr, None);
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
[source]
url = "postgres://user:password@host:5432/db?sslmode=prefer"
slot = "outboxd"
publication = "outboxd"
tables = ["public.outbox", "billing.outbox"]
[router]
"route.topic.replacement" = "outbox.event.${routedByValue}"
[converters]
"key.converter" = "org.apache.kafka.connect.storage.StringConverter"
"value.converter" = "org.apache.kafka.connect.json.JsonConverter"
"value.converter.schemas.enable" = false
[kafka]
"bootstrap.servers" = "localhost:9092"
"linger.ms" = 5
"enable.ssl.certificate.verification" = false
[http]
addr = "127.0.0.1:8080"
"#;
        let c = Config::from_toml(text).unwrap();
        let kafka = Config::string_map("kafka", &c.kafka).unwrap();
        assert_eq!(kafka["linger.ms"], "5");
        assert_eq!(kafka["enable.ssl.certificate.verification"], "false");
        assert_eq!(c.tables().unwrap()[1].to_string(), "billing.outbox");
        let converters = Config::string_map("converters", &c.converters).unwrap();
        assert_eq!(converters["value.converter.schemas.enable"], "false");
    }

    #[test]
    fn unknown_keys_are_named_in_the_error() {
        let text = format!("{MINIMAL}slott = \"x\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("slott"), "{err}");
        let err = Config::from_toml(&format!("{MINIMAL}[sink]\na = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sink"), "{err}");
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let err = Config::from_toml(&format!("{MINIMAL}tables = \"public.outbox\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid type"), "{err}");
        let err = Config::from_toml(&format!("{MINIMAL}slot = \"My-Slot\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.slot"), "{err}");
        let err = Config::from_toml(&format!("{MINIMAL}[kafka]\n\"a.b\" = [1]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.\"a.b\""), "{err}");
        let err = Config::from_toml(&format!("{MINIMAL}tables = [\"a.b.c\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.tables"), "{err}");
    }

    #[test]
    fn heartbeat_keys_go_together() {
        let c = Config::from_toml(&format!(
            "{MINIMAL}heartbeat_interval_ms = 10000\nheartbeat_action_query = \"INSERT INTO hb VALUES (now())\"\n"
        ))
        .unwrap();
        assert_eq!(c.source.heartbeat_interval_ms, 10_000);
        assert_eq!(
            c.source.heartbeat_action_query.as_deref(),
            Some("INSERT INTO hb VALUES (now())")
        );
        let off = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(off.source.heartbeat_interval_ms, 0);
        assert_eq!(off.source.heartbeat_action_query, None);
        for (extra, key) in [
            (
                "heartbeat_interval_ms = 1000\n",
                "source.heartbeat_interval_ms",
            ),
            (
                "heartbeat_action_query = \"SELECT 1\"\n",
                "source.heartbeat_action_query",
            ),
            (
                "heartbeat_interval_ms = 1000\nheartbeat_action_query = \" \"\n",
                "source.heartbeat_action_query",
            ),
        ] {
            let err = Config::from_toml(&format!("{MINIMAL}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    #[test]
    fn message_prefixes_default_to_none_and_are_checked() {
        assert!(Config::from_toml(MINIMAL)
            .unwrap()
            .source
            .message_prefixes
            .is_empty());
        let c = Config::from_toml(&format!(
            "{MINIMAL}message_prefixes = [\"outbox\", \"billing.v1\"]\n"
        ))
        .unwrap();
        assert_eq!(c.source.message_prefixes, ["outbox", "billing.v1"]);
        for (value, needle) in [
            ("[\"\"]", "non-empty"),
            ("[\"a\", \"a\"]", "listed twice"),
            ("\"outbox\"", "invalid type"),
        ] {
            let err = Config::from_toml(&format!("{MINIMAL}message_prefixes = {value}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut c = Config::from_toml(MINIMAL).unwrap();
        c.apply_overrides(&Overrides {
            kafka_bootstrap_servers: Some("b:9092".into()),
            http_addr: Some("0.0.0.0:9000".into()),
        });
        assert_eq!(
            Config::string_map("kafka", &c.kafka).unwrap()["bootstrap.servers"],
            "b:9092"
        );
        assert_eq!(c.http.addr.as_deref(), Some("0.0.0.0:9000"));
    }
}
