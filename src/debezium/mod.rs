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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use crate::config::{java_properties, Config, ConfigError, SnapshotMode, SourceConfig};
use crate::convert::{Converters, JSON_CONVERTER};
use crate::router::RouterOptions;
use crate::source::params::percent_encode;
use crate::source::ConnectParams;

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

/// The entries of a comma-separated Debezium include list (blank ones skipped), each as written
/// and as the exact name it stands for: `\.` (how a careful regular expression writes a literal
/// dot) is read as the dot, any other regular expression character is an error whose fix is
/// `needed` ("the outbox tables named exactly; …").
fn exact_names(
    key: &str,
    list: &str,
    needed: &str,
) -> Result<Vec<(String, String)>, DebeziumError> {
    let mut names = Vec::new();
    for raw in list.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let name = entry.replace("\\.", ".");
        if let Some(c) = name.chars().find(|c| "\\^$*+?()[]{}|".contains(*c)) {
            return Err(key_error(
                key,
                format!("{entry:?} is a regular expression (it contains {c:?}): Debezium matches these entries as regular expressions, outboxd needs {needed}"),
            ));
        }
        names.push((entry.to_string(), name));
    }
    Ok(names)
}

fn key_error(key: &str, message: impl Into<String>) -> DebeziumError {
    DebeziumError::Key {
        key: key.to_string(),
        message: message.into(),
    }
}

/// A connector's configuration: its name (when the JSON has one) and its keys, values as text.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectorJson {
    pub name: Option<String>,
    pub config: BTreeMap<String, String>,
}

impl fmt::Debug for ConnectorJson {
    /// Keys only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorJson")
            .field("name", &self.name)
            .field("keys", &self.config.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether a configuration file's text is JSON (a connector) rather than TOML. A TOML document
/// cannot start with `{`.
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
}

/// Parses a connector JSON: the REST form `{"name": …, "config": {…}}` (other members, such as
/// `tasks` and `type` of a `GET /connectors/NAME` answer, are ignored) or the flat form `{…}`.
/// Values may be strings, numbers or booleans, as Kafka Connect accepts them; `null` counts as
/// absent.
pub fn parse_connector_json(text: &str) -> Result<ConnectorJson, DebeziumError> {
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| DebeziumError::Json(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(top) = value else {
        return Err(DebeziumError::Json(
            "expected a JSON object, {\"name\": …, \"config\": {…}} or the config object alone"
                .into(),
        ));
    };
    let (name, object) = match top.get("config") {
        Some(serde_json::Value::Object(config)) => (top.get("name").cloned(), config.clone()),
        _ => (top.get("name").cloned(), top),
    };
    let mut config = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => {
                return Err(key_error(
                    &key,
                    "expected a string, number or boolean (Kafka Connect configuration values are text)",
                ))
            }
        };
        config.insert(key, text);
    }
    let name = match name {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => config.get("name").cloned(),
    };
    Ok(ConnectorJson { name, config })
}

/// Parses a Java properties file (a Kafka Connect worker's `connect-distributed.properties`) with
/// [`crate::config::java_properties`]. A key given twice keeps its last value, as
/// `java.util.Properties` does; a malformed `\uXXXX` escape is an error naming the line.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, DebeziumError> {
    let entries = java_properties::parse(text).map_err(|e| DebeziumError::Properties {
        line: e.line,
        message: e.to_string(),
    })?;
    Ok(entries.into_iter().collect())
}

/// Kafka Connect's `FileConfigProvider`: `${NAME:PATH:KEY}` is KEY of the properties file PATH.
pub const FILE_CONFIG_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
/// Kafka Connect's `EnvVarConfigProvider`: `${NAME:VAR}` is the environment variable VAR.
pub const ENV_VAR_CONFIG_PROVIDER: &str =
    "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
/// Kafka Connect's `DirectoryConfigProvider`: `${NAME:DIR:FILE}` is the content of DIR/FILE.
pub const DIRECTORY_CONFIG_PROVIDER: &str =
    "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// The config providers references may use, by name: `file` (FileConfigProvider) and `env`
/// (EnvVarConfigProvider), the names they are usually given, plus those the worker declares
/// (`config.providers=NAME,…`, `config.providers.NAME.class=…`).
pub fn config_providers(worker: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut providers = BTreeMap::from([
        ("file".to_string(), FILE_CONFIG_PROVIDER.to_string()),
        ("env".to_string(), ENV_VAR_CONFIG_PROVIDER.to_string()),
    ]);
    if let Some(worker) = worker {
        for name in worker
            .get("config.providers")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if let Some(class) = worker.get(&format!("config.providers.{name}.class")) {
                providers.insert(name.to_string(), class.trim().to_string());
            }
        }
    }
    providers
}

/// Resolves Kafka Connect config provider references (`${file:/secrets/db.properties:password}`,
/// `${env:DB_PASSWORD}`, `${dir:/run/secrets:db}`) in `values`, as the Connect worker does before
/// the connector sees them. References to providers not in `providers` are left as they are (so
/// is `${routedByValue}`). `origin` describes where the keys come from, for errors, which name the
/// key and the file or variable, never a value. I/O only through `env` and `read_file`.
pub fn resolve_config_providers(
    values: &mut BTreeMap<String, String>,
    origin: &str,
    providers: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<(), DebeziumError> {
    for (key, value) in values.iter_mut() {
        if !value.contains("${") {
            continue;
        }
        let err = |message: String| key_error(&format!("{key}{origin}"), message);
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let body = &rest[start + 2..];
            let Some(end) = body.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let inner = &body[..end];
            let parts: Vec<&str> = inner.splitn(3, ':').collect();
            let class = parts.first().and_then(|p| providers.get(*p));
            let (Some(class), true) = (class, parts.len() >= 2) else {
                out.push_str(&rest[start..start + 2 + end + 1]);
                rest = &body[end + 1..];
                continue;
            };
            let (path, item) = match parts.as_slice() {
                [_, item] => (None, *item),
                [_, path, item] => (Some(*path), *item),
                _ => unreachable!("splitn(3) gives at most 3 parts"),
            };
            let resolved = match class.as_str() {
                ENV_VAR_CONFIG_PROVIDER => env(item).ok_or_else(|| {
                    err(format!(
                        "refers to the environment variable {item}, which is not set"
                    ))
                })?,
                FILE_CONFIG_PROVIDER => {
                    let path = path.ok_or_else(|| {
                        err("a FileConfigProvider reference needs a file and a key: ${file:/path/to/file.properties:key}".into())
                    })?;
                    let text = read_file(path).map_err(|e| {
                        err(format!("refers to the file {path}, which cannot be read: {e}"))
                    })?;
                    let properties = parse_properties(&text)
                        .map_err(|_| err(format!("the file {path} is not a properties file")))?;
                    properties.get(item).cloned().ok_or_else(|| {
                        err(format!("refers to key {item} of the file {path}, which has no such key"))
                    })?
                }
                DIRECTORY_CONFIG_PROVIDER => {
                    let dir = path.ok_or_else(|| {
                        err("a DirectoryConfigProvider reference needs a directory and a file: ${dir:/run/secrets:name}".into())
                    })?;
                    let file = format!("{}/{item}", dir.trim_end_matches('/'));
                    read_file(&file).map_err(|e| {
                        err(format!("refers to the file {file}, which cannot be read: {e}"))
                    })?
                }
                other => {
                    return Err(err(format!(
                        "uses the config provider {} ({other}), which outboxd cannot resolve: write the value, or use PGPASSWORD for the database password",
                        parts[0]
                    )))
                }
            };
            out.push_str(&resolved);
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        *value = out;
    }
    Ok(())
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

    /// The configuration as an outboxd TOML file, with comments. Secrets are left out: the
    /// database password (to be given in `PGPASSWORD`) and Kafka passwords, which appear as
    /// commented-out keys to fill in. The text loads with [`Config::from_toml`].
    pub fn to_toml(&self) -> String {
        let c = &self.config;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# outboxd configuration generated by `outboxd import-debezium`{}.",
            match &self.connector_name {
                Some(name) => format!(" from connector {}", one_line(name)),
                None => String::new(),
            }
        );
        t.push_str("# Every key is described in docs/configuration.md.\n");
        if !self.ignored_keys.is_empty() {
            t.push_str(
                "#\n# Connector keys outboxd ignores (no effect on the records it publishes):\n",
            );
            for line in wrap(&self.ignored_keys.join(", "), 96) {
                let _ = writeln!(t, "#   {line}");
            }
        }
        if !self.warnings.is_empty() {
            t.push_str("#\n# Differences from the connector:\n");
            for w in &self.warnings {
                for (i, line) in wrap(&one_line(w), 96).iter().enumerate() {
                    let _ = writeln!(t, "#{} {line}", if i == 0 { " -" } else { "  " });
                }
            }
        }
        t.push_str("\n[source]\n");
        if self.has_password() {
            t.push_str(
                "# database.password is not copied here: give it in the PGPASSWORD environment variable.\n",
            );
        }
        let _ = writeln!(t, "url = {}", toml_string(&c.source.url));
        let _ = writeln!(t, "slot = {}", toml_string(&c.source.slot));
        let _ = writeln!(t, "publication = {}", toml_string(&c.source.publication));
        let _ = writeln!(
            t,
            "tables = [{}]",
            c.source
                .tables
                .iter()
                .map(|s| toml_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            t,
            "create_slot = {}   # set false when taking over Debezium's slot (docs/migration-from-debezium.md)",
            c.source.create_slot
        );
        let _ = writeln!(t, "create_publication = {}", c.source.create_publication);
        if c.source.snapshot_mode != SnapshotMode::NoData {
            let _ = writeln!(t, "snapshot_mode = \"{}\"", c.source.snapshot_mode.name());
        }
        if c.source.status_interval_ms != SourceConfig::DEFAULT_STATUS_INTERVAL_MS {
            let _ = writeln!(t, "status_interval_ms = {}", c.source.status_interval_ms);
        }
        if let Some(query) = &c.source.heartbeat_action_query {
            let _ = writeln!(
                t,
                "heartbeat_interval_ms = {}",
                c.source.heartbeat_interval_ms
            );
            let _ = writeln!(t, "heartbeat_action_query = {}", toml_string(query));
        }
        if !c.source.message_prefixes.is_empty() {
            let _ = writeln!(
                t,
                "message_prefixes = [{}]",
                c.source
                    .message_prefixes
                    .iter()
                    .map(|s| toml_string(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if c.exactly_once.enabled {
            let _ = write!(
                t,
                "\n[exactly_once]   # exactly.once.support=required\nenabled = true\ncommit_interval_ms = {}\n",
                c.exactly_once.commit_interval_ms
            );
        }
        for (section, map) in [("router", &c.router), ("converters", &c.converters)] {
            let _ = write!(t, "\n[{section}]\n");
            for (k, v) in map {
                let _ = writeln!(t, "{} = {}", toml_string(k), toml_value(v));
            }
        }
        t.push_str("\n[kafka]\n");
        if !c.kafka.contains_key("bootstrap.servers") {
            t.push_str("# \"bootstrap.servers\" = \"kafka-1:9092,kafka-2:9092\"   # required: the Connect worker's bootstrap.servers (or pass --kafka-bootstrap-servers, or --worker-config)\n");
        }
        for (k, v) in &c.kafka {
            if self.secret_kafka_keys.contains(k) {
                let _ = writeln!(
                    t,
                    "# {} = \"...\"   # a secret, not copied here: fill it in",
                    toml_string(k)
                );
            } else {
                let _ = writeln!(t, "{} = {}", toml_string(k), toml_value(v));
            }
        }
        t
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Booleans as TOML booleans (`"true"` → `true`), everything else as strings.
fn toml_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) if s == "true" || s == "false" => s.clone(),
        other => other.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Splits text at blanks into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Connector keys that change nothing in the records outboxd publishes (or concern only how
/// Debezium runs): accepted and listed in one warning.
const IGNORED: &[&str] = &[
    "name",
    "connector.class",
    "tasks.max",
    "tombstones.on.delete",
    "skipped.operations",
    "schema.include.list",
    "schema.exclude.list",
    "schema.whitelist",
    "schema.blacklist",
    "decimal.handling.mode",
    "time.precision.mode",
    "interval.handling.mode",
    "hstore.handling.mode",
    "money.fraction.digits",
    "include.unknown.datatypes",
    "max.batch.size",
    "max.queue.size",
    "max.queue.size.in.bytes",
    "poll.interval.ms",
    "topic.naming.strategy",
    "topic.delimiter",
    "topic.cache.size",
    "topic.heartbeat.prefix",
    "heartbeat.topics.prefix",
    "topic.transaction",
    "config.action.reload",
    "database.tcpKeepAlive",
    "database.initial.statements",
    "database.query.timeout.ms",
    "database.sslfactory",
    "slot.max.retries",
    "slot.retry.delay.ms",
    "slot.failover",
    "slot.seek.to.known.offset.on.start",
    "slot.drop.on.stop",
    "offset.mismatch.strategy",
    "lsn.flush.timeout.ms",
    "lsn.flush.timeout.action",
    "lsn.flush.mode",
    "flush.lsn.source",
    "xmin.fetch.interval.ms",
    "schema.refresh.mode",
    "unavailable.value.placeholder",
    "toasted.value.placeholder",
    "replica.identity.autoset.values",
    "publish.via.partition.root",
    "retriable.restart.connector.wait.ms",
    "custom.metric.tags",
    "sanitize.field.names",
    "field.name.adjustment.mode",
    "schema.name.adjustment.mode",
    "event.processing.failure.handling.mode",
    "event.converting.failure.handling.mode",
    "source.struct.version",
    "extended.headers.enabled",
    "message.key.columns",
    "table.ignore.builtin",
    "include.schema.changes",
    "include.schema.comments",
    "query.fetch.size",
    "streaming.delay.ms",
    "truncate.handling.mode",
    "message.prefix.exclude.list",
    "exactly.once.support",
    "transaction.boundary",
    "transaction.boundary.interval.ms",
    "offsets.storage.topic",
    "create.slot.command.timeout",
];

/// Key families that change nothing in the records outboxd publishes.
const IGNORED_PREFIXES: &[&str] = &[
    "snapshot.",
    "incremental.snapshot.",
    "signal.",
    "notification.",
    "errors.",
    "topic.creation.",
    "consumer.override.",
    "admin.override.",
    "schema.history.internal.",
    "database.history.",
    "guardrail.",
    "openlineage.",
];

/// Keys (or key families) whose effect outboxd cannot reproduce: `Some(fix)` when `key` with
/// `value` is one of them.
fn unsupported(key: &str, value: &str) -> Option<String> {
    let v = value.trim().to_ascii_lowercase();
    let set = !v.is_empty();
    let msg = match key {
        "database.sslpassword" if set => "encrypted client keys are not supported: decrypt the key (openssl pkey -in client.key -out client-plain.key), point database.sslkey at the decrypted file and remove database.sslpassword",
        "table.exclude.list" | "table.blacklist" if set => "outboxd needs its outbox tables named, which an exclude list does not do: replace it with table.include.list=<schema>.<table>,… listing the outbox tables",
        "column.include.list" | "column.exclude.list" | "column.whitelist" | "column.blacklist" if set => "column filters change what the EventRouter sees and are not supported: remove the key (outboxd reads only the columns the EventRouter options name)",
        "column.propagate.source.type" | "datatype.propagate.source.type" if set => "source type parameters in the schemas are not supported: remove the key",
        "binary.handling.mode" if set && v != "bytes" => "only bytes (the default) is supported: bytea columns are published as bytes, as the EventRouter passes them; remove the key",
        "converters" if set => "Debezium custom converters change column values and are not supported: remove the key (and its <name>.* options)",
        "post.processors" if set => "Debezium post processors are not supported: remove the key (and its <name>.* options)",
        "provide.transaction.metadata" if v == "true" => "transaction metadata records (<topic.prefix>.transaction) are not supported: set it to false or remove it",
        "slot.stream.params" if set => "extra logical decoding plugin parameters are not supported: remove the key",
        "predicates" if set => "predicates are not supported: outboxd applies the EventRouter to every change of the outbox tables (those of table.include.list); remove the predicates",
        "connector.class" if value.trim() != POSTGRES_CONNECTOR => "outboxd replaces only the Debezium PostgreSQL connector (io.debezium.connector.postgresql.PostgresConnector)",
        _ if key.starts_with("column.mask.") || key.starts_with("column.truncate.") => "column masking and truncation are not supported: remove the key",
        _ if key.starts_with("predicates.") => "predicates are not supported: outboxd applies the EventRouter to every change of the outbox tables (those of table.include.list); remove the predicates",
        _ => return None,
    };
    Some(msg.to_string())
}

/// A Kafka Connect config provider reference, `${provider:[path:]key}`: outboxd does not resolve
/// them.
fn is_config_provider_reference(value: &str) -> bool {
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let inner = &rest[start + 2..];
        match inner.find('}') {
            Some(end) if inner[..end].contains(':') => return true,
            Some(end) => rest = &inner[end..],
            None => return false,
        }
    }
    false
}

/// Maps a connector configuration (and the worker's properties, if given) to outboxd's.
pub fn import(
    connector: &ConnectorJson,
    worker: Option<&BTreeMap<String, String>>,
) -> Result<Imported, DebeziumError> {
    Mapper::new(connector, worker).run()
}

struct Mapper<'a> {
    cc: &'a BTreeMap<String, String>,
    worker: Option<&'a BTreeMap<String, String>>,
    name: Option<String>,
    used: BTreeSet<String>,
    ignored: BTreeSet<String>,
    warnings: Vec<String>,
}

impl<'a> Mapper<'a> {
    fn new(connector: &'a ConnectorJson, worker: Option<&'a BTreeMap<String, String>>) -> Self {
        Mapper {
            cc: &connector.config,
            worker,
            name: connector.name.clone(),
            used: BTreeSet::new(),
            ignored: BTreeSet::new(),
            warnings: Vec::new(),
        }
    }

    /// The trimmed value of a connector key, `None` when absent or empty; marks it used.
    fn get(&mut self, key: &str) -> Option<String> {
        let value = self.cc.get(key)?;
        self.used.insert(key.to_string());
        let v = value.trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    fn ignore(&mut self, key: &str) {
        if self.cc.contains_key(key) {
            self.used.insert(key.to_string());
            self.ignored.insert(key.to_string());
        }
    }

    fn run(mut self) -> Result<Imported, DebeziumError> {
        for (key, value) in self.cc {
            if let Some(message) = unsupported(key, value) {
                return Err(key_error(key, message));
            }
            if key != "database.password" && is_config_provider_reference(value) {
                return Err(key_error(
                    key,
                    "is a Kafka Connect config provider reference (${provider:path:key}), which outboxd does not resolve: write the value itself",
                ));
            }
        }
        // Set to what outboxd does anyway (anything else was refused above).
        self.get("binary.handling.mode");
        self.get("provide.transaction.metadata");
        let (url, url_with_password) = self.url()?;
        let tables = self.tables()?;
        self.plugin()?;
        let snapshot_mode = self.snapshot()?;
        let create_publication = self.publication_mode()?;
        let slot = self.get("slot.name").unwrap_or_else(|| "debezium".into());
        let publication = self
            .get("publication.name")
            .unwrap_or_else(|| "dbz_publication".into());
        let status_interval_ms = match self.get("status.update.interval.ms") {
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (1..=20_000).contains(&ms) => ms,
                _ => return Err(key_error(
                    "status.update.interval.ms",
                    format!("{v:?}: outboxd needs 1 to 20000 (milliseconds, well under half of the server's wal_sender_timeout); outboxd also confirms as soon as Kafka acknowledged, so remove the key to use its 1000"),
                )),
            },
            None => SourceConfig::DEFAULT_STATUS_INTERVAL_MS,
        };
        let (heartbeat_interval_ms, heartbeat_action_query) = self.heartbeat()?;
        if self.get("slot.drop.on.stop").as_deref() == Some("true") {
            self.warnings.push("slot.drop.on.stop=true: outboxd never drops its slot when it stops (the slot keeps the events not yet relayed); drop it with `outboxd slot drop` when you retire it".into());
        }
        self.ignore("slot.drop.on.stop");
        // outboxd types key, header and envelope columns as these modes' defaults do.
        for (key, default) in [
            ("decimal.handling.mode", "precise"),
            ("time.precision.mode", "adaptive"),
            ("interval.handling.mode", "numeric"),
            ("money.fraction.digits", "2"),
        ] {
            if let Some(v) = self.get(key) {
                if !v.eq_ignore_ascii_case(default) {
                    self.warnings.push(format!(
                        "{key}={v}: outboxd types numeric, money, time and interval columns placed in the key, headers or envelope as Debezium's default {key}={default} does (see docs/configuration.md, Column types); payload and other columns are not affected"
                    ));
                }
            }
            self.ignore(key);
        }
        let message_prefixes = self.message_prefixes()?;
        let exactly_once = self.exactly_once()?;
        let router = self.router()?;
        let converters = self.converters()?;
        // Both validated already; together: envelope placements with schemas need topic.prefix.
        if let (Ok(r), Ok(c)) = (
            RouterOptions::from_map(&router),
            Converters::from_map(&converters),
        ) {
            r.check_converters(&c)
                .map_err(|e| key_error(&e.key, e.message))?;
        }
        let (kafka, secret_kafka_keys) = self.kafka()?;

        // What is left is either known to be without effect, or unknown.
        for key in self.cc.keys() {
            if self.used.contains(key) {
                continue;
            }
            if IGNORED.contains(&key.as_str())
                || IGNORED_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                self.ignored.insert(key.clone());
            } else {
                return Err(key_error(
                    key,
                    "unknown to outboxd, which cannot tell whether it changes the records: if it is a Debezium or Kafka Connect option without effect on the outbox records, remove it",
                ));
            }
        }

        let to_toml_map = |m: BTreeMap<String, String>| -> BTreeMap<String, toml::Value> {
            m.into_iter()
                .map(|(k, v)| (k, toml::Value::String(v)))
                .collect()
        };
        // Every key at its default first (so sections added to Config later need nothing here).
        let mut config =
            Config::from_toml("[source]\nurl = \"postgres://outboxd@localhost/outboxd\"\n")
                .expect("a minimal configuration is valid");
        config.source.url = url;
        config.source.slot = slot;
        config.source.publication = publication;
        config.source.tables = tables;
        config.source.create_slot = true;
        config.source.create_publication = create_publication;
        config.source.status_interval_ms = status_interval_ms;
        config.source.heartbeat_interval_ms = heartbeat_interval_ms;
        config.source.heartbeat_action_query = heartbeat_action_query;
        config.source.snapshot_mode = snapshot_mode;
        config.source.message_prefixes = message_prefixes;
        config.exactly_once = exactly_once;
        config.router = to_toml_map(router);
        config.converters = to_toml_map(converters);
        config.kafka = to_toml_map(kafka);
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, message } => {
                let debezium_key = match key.as_str() {
                    "source.slot" => "slot.name",
                    "source.publication" => "publication.name",
                    "source.tables" => "table.include.list",
                    "source.status_interval_ms" => "status.update.interval.ms",
                    "source.heartbeat_interval_ms" => "heartbeat.interval.ms",
                    "source.heartbeat_action_query" => "heartbeat.action.query",
                    "source.message_prefixes" => "message.prefix.include.list",
                    _ => key.as_str(),
                };
                key_error(debezium_key, message)
            }
            other => DebeziumError::Json(other.to_string()),
        })?;
        Ok(Imported {
            config,
            url_with_password,
            connector_name: self.name,
            ignored_keys: self.ignored.into_iter().collect(),
            warnings: self.warnings,
            secret_kafka_keys,
        })
    }

    /// `database.*` → `source.url` (without and with the password).
    fn url(&mut self) -> Result<(String, Option<String>), DebeziumError> {
        let required = |m: &mut Self, key: &str, what: &str| {
            m.get(key)
                .ok_or_else(|| key_error(key, format!("is required: the database {what}")))
        };
        let host = required(self, "database.hostname", "server's host name")?;
        if host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@[]".contains(c))
        {
            return Err(key_error(
                "database.hostname",
                format!("{host:?} is not a host name or IP address"),
            ));
        }
        let port = match self.get("database.port") {
            Some(p) => p.parse::<u16>().map_err(|_| {
                key_error("database.port", format!("{p:?} is not a TCP port number"))
            })?,
            None => 5432,
        };
        let user = required(self, "database.user", "user (a role with REPLICATION)")?;
        let dbname = required(self, "database.dbname", "name")?;
        let password = match self.cc.get("database.password") {
            Some(p) => {
                self.used.insert("database.password".into());
                if is_config_provider_reference(p) {
                    self.warnings.push("database.password is a config provider reference of a provider outboxd does not support: the password comes from the PGPASSWORD environment variable".into());
                    None
                } else {
                    Some(p.clone()).filter(|p| !p.is_empty())
                }
            }
            None => None,
        };
        let mut query = Vec::new();
        if let Some(mode) = self.get("database.sslmode") {
            let m = mode.to_ascii_lowercase().replace('_', "-");
            match m.as_str() {
                "disable" | "prefer" | "require" | "verify-ca" | "verify-full" => {
                    query.push(format!("sslmode={m}"))
                }
                "allow" => return Err(key_error(
                    "database.sslmode",
                    "allow is not supported (it tries without TLS first): use prefer (TLS when the server offers it) or disable",
                )),
                _ => return Err(key_error(
                    "database.sslmode",
                    format!("{mode:?}: expected disable, prefer, require, verify-ca or verify-full"),
                )),
            }
        }
        for (key, param) in [
            ("database.sslrootcert", "sslrootcert"),
            ("database.sslcert", "sslcert"),
            ("database.sslkey", "sslkey"),
        ] {
            if let Some(path) = self.get(key) {
                query.push(format!("{param}={}", percent_encode(&path)));
            }
        }
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let tail = format!(
            "{host_part}:{port}/{}{}{}",
            percent_encode(&dbname),
            if query.is_empty() { "" } else { "?" },
            query.join("&")
        );
        let url = format!("postgres://{}@{tail}", percent_encode(&user));
        // The URL must parse as outboxd parses it (nothing read from the environment here).
        ConnectParams::from_url_with_env(&url, |_| None).map_err(|e| {
            key_error(
                "database.hostname",
                format!("the connection settings do not form a valid source URL: {e}"),
            )
        })?;
        let with_password = password.map(|p| {
            format!(
                "postgres://{}:{}@{tail}",
                percent_encode(&user),
                percent_encode(&p)
            )
        });
        Ok((url, with_password))
    }

    /// `table.include.list` (`table.whitelist` before Debezium 1.3) → `source.tables`.
    fn tables(&mut self) -> Result<Vec<String>, DebeziumError> {
        let (key, list) = match (
            self.get("table.include.list"),
            self.get("table.whitelist"),
        ) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "table.whitelist",
                    "is the old name of table.include.list; keep only table.include.list",
                ))
            }
            (Some(l), None) => ("table.include.list", l),
            (None, Some(l)) => ("table.whitelist", l),
            (None, None) => {
                return Err(key_error(
                    "table.include.list",
                    "is required: outboxd reads only the outbox tables, named as schema.table (e.g. public.outbox)",
                ))
            }
        };
        let mut tables = Vec::new();
        let entries = exact_names(
            key,
            &list,
            "the outbox tables named exactly; list them as schema.table, comma-separated (e.g. public.outbox,billing.outbox)",
        )?;
        for (entry, name) in entries {
            match name.split_once('.') {
                Some((schema, table))
                    if !schema.is_empty() && !table.is_empty() && !table.contains('.') => {}
                _ => {
                    return Err(key_error(
                        key,
                        format!("{entry:?}: expected schema.table (Debezium matches the schema-qualified name), e.g. public.outbox"),
                    ))
                }
            }
            tables.push(name);
        }
        if tables.is_empty() {
            return Err(key_error(key, "names no table"));
        }
        Ok(tables)
    }

    /// `message.prefix.include.list` → `source.message_prefixes`: exact prefixes, as
    /// `table.include.list` takes exact table names (Debezium matches its entries as anchored
    /// regular expressions; one without metacharacters matches exactly its text).
    fn message_prefixes(&mut self) -> Result<Vec<String>, DebeziumError> {
        const KEY: &str = "message.prefix.include.list";
        let Some(list) = self.get(KEY) else {
            // `message.prefix.exclude.list` alone: no message is an outbox event (ignored key).
            return Ok(Vec::new());
        };
        if self.get("message.prefix.exclude.list").is_some() {
            return Err(key_error(
                "message.prefix.exclude.list",
                "cannot be combined with message.prefix.include.list (Debezium refuses both too); keep the include list",
            ));
        }
        let mut prefixes: Vec<String> = Vec::new();
        let entries = exact_names(
            KEY,
            &list,
            "the prefixes named exactly; list them comma-separated (e.g. outbox,billing)",
        )?;
        for (_, name) in entries {
            if !prefixes.contains(&name) {
                prefixes.push(name);
            }
        }
        if prefixes.is_empty() {
            return Err(key_error(KEY, "names no prefix"));
        }
        self.warnings.push(format!(
            "message.prefix.include.list: outboxd publishes the transactional logical decoding messages with the prefixes {} as outbox events, routed by the EventRouter options like rows (the content must be a JSON object of the outbox fields; see docs/configuration.md), where Debezium publishes every message as a <topic.prefix>.message change record; non-transactional messages are skipped with a warning",
            prefixes.join(", ")
        ));
        Ok(prefixes)
    }

    /// `plugin.name`: only `pgoutput` slots can be read.
    fn plugin(&mut self) -> Result<(), DebeziumError> {
        match self.get("plugin.name").map(|p| p.to_ascii_lowercase()) {
            Some(p) if p == "pgoutput" => Ok(()),
            Some(p) => Err(key_error(
                "plugin.name",
                format!("{p}: outboxd reads only pgoutput slots, so it cannot continue this connector's slot. To switch: set plugin.name=pgoutput and a new slot.name (e.g. outboxd), create that publication and slot while the connector still runs (SQL in docs/migration-from-debezium.md), then stop the connector and start outboxd. Events committed between the new slot's creation and the connector's stop are published again (duplicates, never a gap); drop the old slot afterwards, as it holds WAL for as long as it exists"),
            )),
            None => {
                self.warnings.push("plugin.name is not set, and Debezium's default is decoderbufs: outboxd reads only pgoutput slots, and stops with an error if the slot exists with another plugin (see docs/migration-from-debezium.md)".into());
                Ok(())
            }
        }
    }

    /// `snapshot.mode` → `source.snapshot_mode` (Debezium's default: `initial`). Older names:
    /// `never` and `schema_only` (= `no_data`), `exported` (= `initial`).
    fn snapshot(&mut self) -> Result<SnapshotMode, DebeziumError> {
        let Some(m) = self
            .get("snapshot.mode")
            .map(|m| m.trim().to_ascii_lowercase())
        else {
            return Ok(SnapshotMode::Initial);
        };
        Ok(match m.as_str() {
            "no_data" | "never" | "schema_only" => SnapshotMode::NoData,
            "initial" | "exported" | "" => SnapshotMode::Initial,
            "always" => SnapshotMode::Always,
            "initial_only" => SnapshotMode::InitialOnly,
            "when_needed" => SnapshotMode::WhenNeeded,
            _ => return Err(key_error(
                "snapshot.mode",
                format!("{m}: outboxd supports no_data (never, schema_only), initial (exported), always, initial_only and when_needed; recovery, custom and configuration_based have no outboxd equivalent: pick one of those (when outboxd takes over Debezium's slot, initial takes no snapshot: the slot exists)"),
            )),
        })
    }

    /// `publication.autocreate.mode` → `source.create_publication`.
    fn publication_mode(&mut self) -> Result<bool, DebeziumError> {
        match self
            .get("publication.autocreate.mode")
            .map(|m| m.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("filtered") => Ok(true),
            Some("all_tables") => {
                self.warnings.push("publication.autocreate.mode=all_tables: outboxd creates a missing publication FOR TABLE the outbox tables only (the same events, less decoding work); an existing FOR ALL TABLES publication is used as it is".into());
                Ok(true)
            }
            Some("disabled") | Some("no_tables") => Ok(false),
            Some(other) => Err(key_error(
                "publication.autocreate.mode",
                format!("{other:?}: expected all_tables, filtered, disabled or no_tables"),
            )),
        }
    }

    /// Kafka Connect's exactly-once source support (KIP-618): `exactly.once.support=required` →
    /// `[exactly_once] enabled`, `transaction.boundary=interval` with
    /// `transaction.boundary.interval.ms` → `commit_interval_ms`. `offsets.storage.topic` is not
    /// taken over: Connect's offsets topic holds Connect's own records.
    fn exactly_once(&mut self) -> Result<crate::exactly_once::ExactlyOnceConfig, DebeziumError> {
        let mut eos = crate::exactly_once::ExactlyOnceConfig::default();
        match self
            .get("exactly.once.support")
            .map(|v| v.to_ascii_lowercase())
        {
            None => {}
            Some(v) if v == "requested" => self.ignore("exactly.once.support"),
            Some(v) if v == "required" => eos.enabled = true,
            Some(v) => {
                return Err(key_error(
                    "exactly.once.support",
                    format!("{v:?}: expected requested or required"),
                ))
            }
        }
        if !eos.enabled {
            for key in [
                "transaction.boundary",
                "transaction.boundary.interval.ms",
                "offsets.storage.topic",
            ] {
                self.ignore(key);
            }
            return Ok(eos);
        }
        match self.get("transaction.boundary").map(|v| v.to_ascii_lowercase()) {
            None => self.ignore("transaction.boundary.interval.ms"),
            Some(v) if v == "poll" => self.ignore("transaction.boundary.interval.ms"),
            Some(v) if v == "interval" => {
                if let Some(ms) = self.get("transaction.boundary.interval.ms") {
                    eos.commit_interval_ms = ms.parse().map_err(|_| {
                        key_error(
                            "transaction.boundary.interval.ms",
                            format!("{ms:?}: expected milliseconds"),
                        )
                    })?;
                }
            }
            Some(v) => {
                return Err(key_error(
                    "transaction.boundary",
                    format!("{v:?}: outboxd supports poll (its default: a commit every 100 ms or 5000 events, whole Postgres transactions only) and interval; connector-defined boundaries do not apply to an outbox relay"),
                ))
            }
        }
        if let Some(topic) = self.get("offsets.storage.topic") {
            self.warnings.push(format!("offsets.storage.topic={topic}: outboxd keeps its positions in a topic of its own (offsets.topic, default outboxd-offsets), not in Kafka Connect's offsets topic"));
        }
        eos.resolve(
            "debezium",
            &crate::position::OffsetsConfig::default()
                .resolve()
                .expect("the defaults are valid"),
        )
        .map_err(|e| key_error("transaction.boundary.interval.ms", e.to_string()))?;
        Ok(eos)
    }

    /// `heartbeat.interval.ms` + `heartbeat.action.query` → `source.heartbeat_*`.
    fn heartbeat(&mut self) -> Result<(u64, Option<String>), DebeziumError> {
        let interval = match self.get("heartbeat.interval.ms") {
            Some(v) => v.parse::<u64>().map_err(|_| {
                key_error(
                    "heartbeat.interval.ms",
                    format!("{v:?}: expected milliseconds (0 = off)"),
                )
            })?,
            None => 0,
        };
        let query = self.get("heartbeat.action.query");
        match (interval, query) {
            (ms, Some(q)) if ms > 0 => Ok((ms, Some(q))),
            // Alone, either does nothing in outboxd (Debezium: the interval alone writes
            // heartbeat records and flushes offsets; the query alone never runs).
            _ => {
                self.ignore("heartbeat.interval.ms");
                self.ignore("heartbeat.action.query");
                Ok((0, None))
            }
        }
    }

    /// The transform chain → `[router]` (with `topic.prefix`).
    fn router(&mut self) -> Result<BTreeMap<String, String>, DebeziumError> {
        let names: Vec<String> = self
            .get("transforms")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        let mut routers = Vec::new();
        let mut others = Vec::new();
        for name in &names {
            let key = format!("transforms.{name}.type");
            match self.get(&key) {
                Some(t) if t == EVENT_ROUTER => routers.push(name.clone()),
                Some(t) => others.push(format!("{name} ({t})")),
                None => {
                    return Err(key_error(
                        &key,
                        "is missing: every transform needs its type",
                    ))
                }
            }
        }
        if !others.is_empty() {
            return Err(key_error(
                "transforms",
                format!("outboxd runs only {EVENT_ROUTER}; the chain also has {}: remove them, or keep this connector on Kafka Connect", others.join(", ")),
            ));
        }
        let name = match routers.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(key_error(
                    "transforms",
                    format!("no {EVENT_ROUTER} transform: outboxd replaces outbox connectors, e.g. transforms=outbox and transforms.outbox.type={EVENT_ROUTER}"),
                ))
            }
            _ => {
                return Err(key_error(
                    "transforms",
                    format!("{} EventRouter transforms ({}): outboxd runs exactly one", routers.len(), routers.join(", ")),
                ))
            }
        };
        let prefix = format!("transforms.{name}.");
        let mut router = BTreeMap::new();
        let keys: Vec<String> = self.cc.keys().cloned().collect();
        for key in keys {
            let Some(option) = key.strip_prefix(&prefix) else {
                // Options of transforms not in the chain: Kafka Connect ignores them too.
                if key.starts_with("transforms.") && !self.used.contains(&key) {
                    self.ignore(&key);
                }
                continue;
            };
            if option == "type" {
                continue;
            }
            if option == "predicate" || option == "negate" {
                return Err(key_error(&key, "predicates are not supported: outboxd applies the EventRouter to every change of the outbox tables (those of table.include.list); remove the predicate"));
            }
            let value = self.cc[&key].clone();
            self.used.insert(key.clone());
            // Debezium 1.x's name of table.op.invalid.behavior; the new name wins.
            let option = if option == "debezium.op.invalid.behavior" {
                if self
                    .cc
                    .contains_key(&format!("{prefix}table.op.invalid.behavior"))
                {
                    self.ignored.insert(key.clone());
                    continue;
                }
                "table.op.invalid.behavior"
            } else {
                option
            };
            router.insert(option.to_string(), value);
        }
        // topic.prefix (Debezium 2+) or database.server.name (1.x): only the envelope schema's
        // name uses it, and outboxd does not require it.
        match (self.get("topic.prefix"), self.get("database.server.name")) {
            (Some(p), server_name) => {
                if server_name.is_some() {
                    self.ignored.insert("database.server.name".into());
                }
                router.insert("topic.prefix".into(), p);
            }
            (None, Some(p)) => {
                router.insert("topic.prefix".into(), p);
            }
            (None, None) => {}
        }
        RouterOptions::from_map(&router).map_err(|e| {
            let key = if e.key == "topic.prefix" {
                "topic.prefix".to_string()
            } else {
                format!("{prefix}{}", e.key)
            };
            key_error(&key, e.message)
        })?;
        Ok(router)
    }

    /// Key, value and header converters, as Kafka Connect picks them.
    fn converters(&mut self) -> Result<BTreeMap<String, String>, DebeziumError> {
        let mut out = BTreeMap::new();
        let mut defaulted = Vec::new();
        for side in ["key", "value", "header"] {
            let class_key = format!("{side}.converter");
            let of = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                map.iter()
                    .filter(|(k, _)| {
                        **k == class_key
                            || k.strip_prefix(class_key.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                    .map(|(k, v)| (k.clone(), v.trim().to_string()))
                    .collect()
            };
            let from_connector = of(self.cc);
            let mut chosen = if from_connector.contains_key(&class_key) {
                for k in from_connector.keys() {
                    self.used.insert(k.clone());
                }
                from_connector
            } else {
                // Without the class, Kafka Connect uses the worker's converter and options, and
                // ignores the connector's `<side>.converter.*`.
                for k in from_connector.keys() {
                    self.ignore(k);
                }
                let mut from_worker = self.worker.map(of).unwrap_or_default();
                if side != "header" && !from_worker.contains_key(&class_key) {
                    from_worker.insert(class_key.clone(), JSON_CONVERTER.into());
                    if self.worker.is_none() {
                        defaulted.push(class_key.clone());
                    }
                }
                from_worker
            };
            // JsonConverter's schema cache size changes nothing in the bytes.
            chosen.retain(|k, _| !k.ends_with(".schemas.cache.size"));
            out.extend(chosen);
        }
        if !defaulted.is_empty() {
            self.warnings.push(format!(
                "{} not set in the connector and no worker file given (--worker-config): using Kafka Connect's default, JsonConverter with schemas.enable=true; if the Connect worker set other converters, pass its properties file with --worker-config",
                defaulted.join(" and ")
            ));
        }
        // Validated as [converters] is (io.debezium.converters.ByteBufferConverter, Debezium 1.x's
        // name of BinaryDataConverter, included).
        Converters::from_map(&out).map_err(|e| key_error(&e.key, e.message))?;
        Ok(out)
    }

    /// Producer properties: the worker's `bootstrap.servers` and `producer.*`, then the
    /// connector's `producer.override.*`, translated to librdkafka.
    fn kafka(&mut self) -> Result<(BTreeMap<String, String>, BTreeSet<String>), DebeziumError> {
        let mut kafka = BTreeMap::new();
        let mut secrets = BTreeSet::new();
        let mut sources: Vec<(String, String, String)> = Vec::new(); // (origin key, property, value)
        if let Some(worker) = self.worker {
            if let Some(b) = worker.get("bootstrap.servers").map(|b| b.trim()) {
                if !b.is_empty() {
                    kafka.insert("bootstrap.servers".to_string(), b.to_string());
                }
            }
            for (k, v) in worker {
                if let Some(p) = k.strip_prefix("producer.") {
                    sources.push((format!("{k} (worker file)"), p.to_string(), v.clone()));
                }
            }
        }
        for (k, v) in self.cc {
            if let Some(p) = k.strip_prefix("producer.override.") {
                sources.push((k.clone(), p.to_string(), v.clone()));
                self.used.insert(k.clone());
            }
        }
        // Later sources win: the connector's overrides over the worker's producer.* settings.
        for (origin, property, value) in sources {
            for (p, v) in translate_producer_property(&origin, &property, &value)? {
                if is_secret(&p) {
                    secrets.insert(p.clone());
                } else {
                    secrets.remove(&p);
                }
                kafka.insert(p, v);
            }
        }
        Ok((kafka, secrets))
    }
}

/// Whether the value of a connector or worker key is a secret that [`Imported::to_toml`] leaves
/// out (so `import-debezium` need not resolve its config provider reference): the database
/// password and the producer's passwords. Not `sasl.jaas.config`, whose user name is printed.
pub fn is_unprinted_secret(key: &str) -> bool {
    if key == "database.password" {
        return true;
    }
    key.strip_prefix("producer.override.")
        .or_else(|| key.strip_prefix("producer."))
        .is_some_and(|p| p != "sasl.jaas.config" && is_secret(p))
}

/// Whether a librdkafka property holds a secret (never printed).
fn is_secret(property: &str) -> bool {
    let p = property.to_ascii_lowercase();
    p.contains("password")
        || p.contains("secret")
        || p.contains("jaas")
        || p == "sasl.oauthbearer.config"
        || p == "ssl.key.pem"
        || p == "ssl_key"
}

/// One Java producer property of Kafka Connect → librdkafka properties. `origin` names the key in
/// errors.
fn translate_producer_property(
    origin: &str,
    property: &str,
    value: &str,
) -> Result<Vec<(String, String)>, DebeziumError> {
    let value = value.trim();
    let out = match property {
        "sasl.jaas.config" => {
            let (username, password) = parse_jaas(value).map_err(|m| key_error(origin, m))?;
            vec![
                ("sasl.username".to_string(), username),
                ("sasl.password".to_string(), password),
            ]
        }
        "max.request.size" => vec![("message.max.bytes".to_string(), value.to_string())],
        "ssl.endpoint.identification.algorithm" if value.is_empty() => {
            vec![(property.to_string(), "none".to_string())]
        }
        "ssl.keystore.type" if value.eq_ignore_ascii_case("pkcs12") => Vec::new(),
        "ssl.truststore.location"
        | "ssl.truststore.password"
        | "ssl.truststore.type"
        | "ssl.truststore.certificates"
        | "ssl.keystore.type" => {
            return Err(key_error(
                origin,
                "Java key stores are not readable by librdkafka (outboxd's Kafka client): export the CA certificates to a PEM file (keytool -exportcert -rfc) and set producer.override.ssl.ca.location; a client certificate goes in ssl.certificate.location + ssl.key.location (PEM) or ssl.keystore.location (PKCS#12)",
            ))
        }
        "buffer.memory" => {
            return Err(key_error(
                origin,
                "librdkafka's equivalent is queue.buffering.max.kbytes (in KiB); outboxd bounds memory with [pipeline] max_in_flight_bytes. Remove the key",
            ))
        }
        "key.serializer" | "value.serializer" => {
            return Err(key_error(
                origin,
                "serializers are Kafka Connect's business: the converters decide the bytes. Remove the key",
            ))
        }
        _ => vec![(property.to_string(), value.to_string())],
    };
    // librdkafka must know each property (checked in memory, without connecting).
    for (p, v) in &out {
        let mut one = rdkafka::ClientConfig::new();
        one.set(p, v);
        if let Err(e) = one.create_native_config() {
            let message = match e {
                rdkafka::error::KafkaError::ClientConfig(
                    rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                    ..,
                ) => format!("librdkafka (outboxd's Kafka client) has no property {p}; the librdkafka names of Java client settings are in docs/migration-from-debezium.md"),
                rdkafka::error::KafkaError::ClientConfig(_, desc, ..) if !is_secret(p) => {
                    format!("librdkafka refuses it: {desc}")
                }
                _ => format!("librdkafka refuses the value of {p}"),
            };
            return Err(key_error(origin, message));
        }
    }
    Ok(out)
}

/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
/// (or `...scram.ScramLoginModule`) → (username, password). Never echoes the value.
fn parse_jaas(text: &str) -> Result<(String, String), String> {
    let unsupported = "only PlainLoginModule and ScramLoginModule with username and password translate to librdkafka (sasl.username, sasl.password); for other SASL mechanisms write an outboxd TOML file with librdkafka's sasl.* properties";
    let text = text.trim().trim_end_matches(';').trim();
    let mut parts = text.splitn(2, char::is_whitespace);
    let module = parts.next().unwrap_or_default();
    if module != "org.apache.kafka.common.security.plain.PlainLoginModule"
        && module != "org.apache.kafka.common.security.scram.ScramLoginModule"
    {
        return Err(unsupported.into());
    }
    let rest = parts.next().unwrap_or_default().trim_start();
    let rest = rest
        .split_once(char::is_whitespace)
        .filter(|(flag, _)| ["required", "requisite", "sufficient", "optional"].contains(flag))
        .map(|(_, r)| r)
        .ok_or_else(|| {
            "sasl.jaas.config: expected a control flag (required) after the login module"
                .to_string()
        })?;
    let mut options = BTreeMap::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if i >= chars.len() || chars[i] != '=' {
            return Err("sasl.jaas.config: malformed option (expected key=\"value\")".into());
        }
        i += 1;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("sasl.jaas.config: unterminated quoted value".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = chars.get(i + 1) {
                            value.push(*c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        options.insert(key, value);
    }
    match (options.remove("username"), options.remove("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(unsupported.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{Converter, BINARY_DATA_CONVERTER, BYTE_BUFFER_CONVERTER};
    use crate::pipeline::Plan;

    /// The smallest connector outboxd takes: database, tables and the EventRouter.
    fn minimal() -> BTreeMap<String, String> {
        pairs(&[
            ("connector.class", POSTGRES_CONNECTOR),
            ("plugin.name", "pgoutput"),
            ("snapshot.mode", "no_data"),
            ("database.hostname", "db.internal"),
            ("database.port", "5432"),
            ("database.user", "debezium"),
            ("database.dbname", "app"),
            ("table.include.list", "public.outbox"),
            ("transforms", "outbox"),
            ("transforms.outbox.type", EVENT_ROUTER),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
        ])
    }

    fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn connector(config: BTreeMap<String, String>) -> ConnectorJson {
        ConnectorJson { name: None, config }
    }

    /// `minimal()` with `set` applied (an empty value removes the key).
    fn with(set: &[(&str, &str)]) -> ConnectorJson {
        let mut c = minimal();
        for (k, v) in set {
            if v.is_empty() {
                c.remove(*k);
            } else {
                c.insert(k.to_string(), v.to_string());
            }
        }
        connector(c)
    }

    fn ok(set: &[(&str, &str)]) -> Imported {
        import(&with(set), None).unwrap_or_else(|e| panic!("{set:?}: {e}"))
    }

    /// The error, which must name `key`.
    fn err(set: &[(&str, &str)], key: &str) -> String {
        let e = import(&with(set), None)
            .map(|i| format!("unexpectedly imported: {i:?}"))
            .unwrap_or_else(|e| e.to_string());
        assert!(
            e.starts_with(&format!("connector key {key}: ")),
            "{set:?}: expected an error about {key}, got: {e}"
        );
        e
    }

    fn strings(map: &BTreeMap<String, toml::Value>) -> BTreeMap<String, String> {
        Config::string_map("test", map).unwrap()
    }

    #[test]
    fn the_rest_form_and_the_flat_form_give_the_same_configuration() {
        let flat = serde_json::to_string(&minimal()).unwrap();
        let rest = format!(
            r#"{{"name": "outbox-connector", "config": {flat}, "tasks": [], "type": "source"}}"#
        );
        let a = parse_connector_json(&rest).unwrap();
        let b = parse_connector_json(&flat).unwrap();
        assert_eq!(a.name.as_deref(), Some("outbox-connector"));
        assert_eq!(b.name, None);
        assert_eq!(a.config, b.config);
        let (a, b) = (import(&a, None).unwrap(), import(&b, None).unwrap());
        assert_eq!(
            a.to_toml().lines().skip(1).collect::<Vec<_>>(),
            b.to_toml().lines().skip(1).collect::<Vec<_>>()
        );
        assert!(a.to_toml().contains("from connector outbox-connector"));
        // A flat config may carry its name as a key.
        let named =
            parse_connector_json(r#"{"name": "n", "database.port": 5432, "x": true, "y": null}"#)
                .unwrap();
        assert_eq!(named.name.as_deref(), Some("n"));
        assert_eq!(named.config["database.port"], "5432");
        assert_eq!(named.config["x"], "true");
        assert!(!named.config.contains_key("y"));
    }

    #[test]
    fn malformed_json_is_refused() {
        for (text, needle) in [
            ("{", "invalid JSON"),
            ("[1]", "expected a JSON object"),
            (
                r#"{"config": {"slot.name": ["a"]}}"#,
                "connector key slot.name",
            ),
        ] {
            let e = parse_connector_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(looks_like_json("\u{feff}  \n{\"a\": 1}"));
        assert!(!looks_like_json("[source]\nurl = \"x\"\n"));
        assert!(!looks_like_json("# {\n[source]"));
    }

    #[test]
    fn database_keys_make_the_source_url() {
        let i = ok(&[
            ("database.hostname", "db.example.com"),
            ("database.port", "6543"),
            ("database.user", "dbz user"),
            ("database.dbname", "my db"),
            ("database.sslmode", "VERIFY-FULL"),
            ("database.sslrootcert", "/certs/ca.pem"),
            ("database.sslcert", "/certs/client.pem"),
            ("database.sslkey", "/certs/client.key"),
        ]);
        let url = &i.config().source.url;
        assert_eq!(
            url,
            "postgres://dbz%20user@db.example.com:6543/my%20db?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.pem&sslcert=%2Fcerts%2Fclient.pem&sslkey=%2Fcerts%2Fclient.key"
        );
        let p = ConnectParams::from_url_with_env(url, |_| None).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("db.example.com", 6543));
        assert_eq!((p.user.as_str(), p.dbname.as_str()), ("dbz user", "my db"));
        assert_eq!(
            p.sslrootcert.as_deref(),
            Some(std::path::Path::new("/certs/ca.pem"))
        );
        assert_eq!(
            p.sslkey.as_deref(),
            Some(std::path::Path::new("/certs/client.key"))
        );
        // Port defaults to 5432; an IPv6 address gets brackets.
        let i = ok(&[("database.port", ""), ("database.hostname", "::1")]);
        assert_eq!(i.config().source.url, "postgres://debezium@[::1]:5432/app");
        for key in ["database.hostname", "database.user", "database.dbname"] {
            let e = err(&[(key, "")], key);
            assert!(e.contains("required"), "{e}");
        }
        err(&[("database.port", "54x")], "database.port");
        err(&[("database.hostname", "db/x")], "database.hostname");
    }

    #[test]
    fn the_password_comes_from_the_json_percent_encoded_else_from_pgpassword() {
        let secret = "p@ss:w/rd%?#&é";
        let i = ok(&[("database.password", secret)]);
        assert!(i.has_password());
        let url = i.config().source.url;
        let p = ConnectParams::from_url_with_env(&url, |_| Some("from-env".into())).unwrap();
        assert_eq!(p.password.as_deref(), Some(secret));
        // Never in what is printed or debugged.
        assert!(!i.to_toml().contains("p@ss"), "{}", i.to_toml());
        assert!(!format!("{i:?}").contains("p@ss"));
        assert!(!format!("{:?}", with(&[("database.password", secret)])).contains("p@ss"));
        assert!(i.to_toml().contains("PGPASSWORD"));
        // Without one, the URL has none and PGPASSWORD applies.
        let i = ok(&[]);
        assert!(!i.has_password());
        let p = ConnectParams::from_url_with_env(&i.config().source.url, |k| {
            (k == "PGPASSWORD").then(|| "from-env".into())
        })
        .unwrap();
        assert_eq!(p.password.as_deref(), Some("from-env"));
        // An unresolved config provider reference: PGPASSWORD, with a warning.
        let i = ok(&[("database.password", "${vault:secret/db:password}")]);
        assert!(!i.has_password());
        assert!(
            i.warnings.iter().any(|w| w.contains("PGPASSWORD")),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn sslmode_takes_debeziums_values_and_encrypted_keys_are_refused() {
        for mode in [
            "disable",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
            "verify_ca",
        ] {
            let url = ok(&[("database.sslmode", mode)]).config().source.url;
            assert!(
                url.ends_with(&format!("?sslmode={}", mode.replace('_', "-"))),
                "{url}"
            );
        }
        let e = err(&[("database.sslmode", "allow")], "database.sslmode");
        assert!(e.contains("prefer"), "{e}");
        err(&[("database.sslmode", "on")], "database.sslmode");
        let e = err(&[("database.sslpassword", "x")], "database.sslpassword");
        assert!(
            e.contains("encrypted") && e.contains("database.sslkey"),
            "{e}"
        );
        assert!(!e.contains("\"x\""));
        ok(&[("database.sslpassword", "")]);
    }

    #[test]
    fn slot_and_publication_take_debeziums_defaults() {
        let c = ok(&[]).config();
        assert_eq!(c.source.slot, "debezium");
        assert_eq!(c.source.publication, "dbz_publication");
        assert!(c.source.create_slot && c.source.create_publication);
        assert_eq!(c.source.status_interval_ms, 1000);
        let c = ok(&[
            ("slot.name", "orders_slot"),
            ("publication.name", "orders_pub"),
            ("status.update.interval.ms", "10000"),
        ])
        .config();
        assert_eq!(c.source.slot, "orders_slot");
        assert_eq!(c.source.publication, "orders_pub");
        assert_eq!(c.source.status_interval_ms, 10_000);
        let e = err(&[("slot.name", "Orders-Slot")], "slot.name");
        assert!(e.contains("lower-case"), "{e}");
        err(&[("publication.name", "a b")], "publication.name");
        err(
            &[("status.update.interval.ms", "60000")],
            "status.update.interval.ms",
        );
    }

    #[test]
    fn publication_autocreate_mode_maps_to_create_publication() {
        let i = ok(&[("publication.autocreate.mode", "all_tables")]);
        assert!(i.config().source.create_publication);
        assert!(
            i.warnings.iter().any(|w| w.contains("FOR TABLE")),
            "{:?}",
            i.warnings
        );
        assert!(
            ok(&[("publication.autocreate.mode", "filtered")])
                .config()
                .source
                .create_publication
        );
        assert!(
            !ok(&[("publication.autocreate.mode", "DISABLED")])
                .config()
                .source
                .create_publication
        );
        assert!(
            !ok(&[("publication.autocreate.mode", "no_tables")])
                .config()
                .source
                .create_publication
        );
        err(
            &[("publication.autocreate.mode", "some")],
            "publication.autocreate.mode",
        );
    }

    #[test]
    fn table_include_list_takes_exact_names_only() {
        let c = ok(&[("table.include.list", " public.outbox , billing\\.outbox,")]).config();
        assert_eq!(c.source.tables, ["public.outbox", "billing.outbox"]);
        // Debezium 1.x's name.
        let c = ok(&[
            ("table.include.list", ""),
            ("table.whitelist", "app.outboxevent"),
        ])
        .config();
        assert_eq!(c.source.tables, ["app.outboxevent"]);
        let e = err(
            &[("table.include.list", "public.outbox_.*")],
            "table.include.list",
        );
        assert!(
            e.contains("regular expression") && e.contains("schema.table"),
            "{e}"
        );
        for bad in ["public.(a|b)", "^public.outbox$", "public.outbox[0-9]"] {
            err(&[("table.include.list", bad)], "table.include.list");
        }
        let e = err(&[("table.include.list", "outbox")], "table.include.list");
        assert!(e.contains("schema.table"), "{e}");
        err(&[("table.include.list", "a.b.c")], "table.include.list");
        err(&[("table.include.list", " , ")], "table.include.list");
        err(&[("table.include.list", "")], "table.include.list");
        err(&[("table.whitelist", "public.outbox")], "table.whitelist");
        err(
            &[("table.exclude.list", "public.other")],
            "table.exclude.list",
        );
    }

    #[test]
    fn only_pgoutput_is_accepted_and_the_error_says_how_to_switch() {
        ok(&[("plugin.name", "PGOUTPUT")]);
        for plugin in ["decoderbufs", "wal2json", "wal2json_streaming"] {
            let e = err(&[("plugin.name", plugin)], "plugin.name");
            assert!(
                e.contains("plugin.name=pgoutput")
                    && e.contains("new slot.name")
                    && e.contains("published again")
                    && e.contains("drop the old slot"),
                "{e}"
            );
        }
        let i = ok(&[("plugin.name", "")]);
        assert!(
            i.warnings.iter().any(|w| w.contains("decoderbufs")),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn snapshot_modes_map_to_snapshot_mode_with_debezium_default_initial() {
        for (mode, expected) in [
            ("no_data", SnapshotMode::NoData),
            ("never", SnapshotMode::NoData),
            ("schema_only", SnapshotMode::NoData),
            ("initial", SnapshotMode::Initial),
            ("Exported", SnapshotMode::Initial),
            ("always", SnapshotMode::Always),
            ("initial_only", SnapshotMode::InitialOnly),
            ("when_needed", SnapshotMode::WhenNeeded),
        ] {
            let c = ok(&[("snapshot.mode", mode)]).config();
            assert_eq!(c.source.snapshot_mode, expected, "{mode}");
        }
        assert_eq!(
            ok(&[("snapshot.mode", "")]).config().source.snapshot_mode,
            SnapshotMode::Initial,
            "Debezium's default"
        );
        for mode in ["custom", "configuration_based", "recovery"] {
            let e = err(&[("snapshot.mode", mode)], "snapshot.mode");
            assert!(e.contains("when_needed") && e.contains(mode), "{e}");
        }
    }

    #[test]
    fn heartbeats_need_both_keys() {
        let c = ok(&[
            ("heartbeat.interval.ms", "5000"),
            (
                "heartbeat.action.query",
                "INSERT INTO heartbeat VALUES (now())",
            ),
        ])
        .config();
        assert_eq!(c.source.heartbeat_interval_ms, 5000);
        assert_eq!(
            c.source.heartbeat_action_query.as_deref(),
            Some("INSERT INTO heartbeat VALUES (now())")
        );
        // Alone, either does nothing in outboxd: ignored.
        let i = ok(&[("heartbeat.interval.ms", "5000")]);
        assert_eq!(i.config().source.heartbeat_interval_ms, 0);
        assert!(i
            .ignored_keys
            .contains(&"heartbeat.interval.ms".to_string()));
        let i = ok(&[("heartbeat.action.query", "SELECT 1")]);
        assert_eq!(i.config().source.heartbeat_action_query, None);
        assert!(i
            .ignored_keys
            .contains(&"heartbeat.action.query".to_string()));
        let i = ok(&[
            ("heartbeat.interval.ms", "0"),
            ("heartbeat.action.query", "SELECT 1"),
        ]);
        assert_eq!(i.config().source.heartbeat_action_query, None);
        err(&[("heartbeat.interval.ms", "10s")], "heartbeat.interval.ms");
    }

    #[test]
    fn exactly_once_support_required_maps_to_exactly_once_mode() {
        let i = ok(&[
            ("exactly.once.support", "required"),
            ("transaction.boundary", "interval"),
            ("transaction.boundary.interval.ms", "250"),
            ("offsets.storage.topic", "connect-offsets"),
        ]);
        let c = i.config();
        assert!(c.exactly_once.enabled);
        assert_eq!(c.exactly_once.commit_interval_ms, 250);
        assert_eq!(
            c.exactly_once.offsets_topic, None,
            "offsets.topic's default"
        );
        assert!(
            i.warnings
                .iter()
                .any(|w| w.starts_with("offsets.storage.topic=connect-offsets: ")),
            "{:?}",
            i.warnings
        );
        let text = i.to_toml();
        let back = Config::from_toml(&text).unwrap();
        assert!(back.exactly_once.enabled, "{text}");
        assert_eq!(back.exactly_once.commit_interval_ms, 250);
        // With Debezium's default snapshot.mode (initial): a plan that runs.
        let mut c = c;
        c.source.snapshot_mode = crate::config::SnapshotMode::Initial;
        c.kafka.insert("bootstrap.servers".into(), "k:9092".into());
        let plan = crate::pipeline::Plan::from_config(&c).expect("exactly-once with initial");
        assert!(plan.exactly_once.is_some() && plan.offsets.is_none());
        // requested (Connect's default) is at-least-once when the worker cannot do better: ignored.
        let i = ok(&[
            ("exactly.once.support", "requested"),
            ("transaction.boundary", "connector"),
        ]);
        assert!(!i.config().exactly_once.enabled);
        assert!(i.ignored_keys.contains(&"transaction.boundary".to_string()));
        assert!(!i.to_toml().contains("[exactly_once]"));
        err(
            &[("exactly.once.support", "always")],
            "exactly.once.support",
        );
        err(
            &[
                ("exactly.once.support", "required"),
                ("transaction.boundary", "connector"),
            ],
            "transaction.boundary",
        );
        err(
            &[
                ("exactly.once.support", "required"),
                ("transaction.boundary", "interval"),
                ("transaction.boundary.interval.ms", "600000"),
            ],
            "transaction.boundary.interval.ms",
        );
    }

    #[test]
    fn non_default_column_type_modes_are_warned_about() {
        let i = ok(&[
            ("decimal.handling.mode", "string"),
            ("time.precision.mode", "adaptive"),
            ("interval.handling.mode", "STRING"),
        ]);
        assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
        assert!(i.warnings[0].starts_with("decimal.handling.mode=string: "));
        assert!(i.warnings[1].starts_with("interval.handling.mode=STRING: "));
        assert!(i.ignored_keys.contains(&"time.precision.mode".to_string()));
        assert!(ok(&[("money.fraction.digits", "2")]).warnings.is_empty());
    }

    #[test]
    fn slot_drop_on_stop_and_logical_messages() {
        let i = ok(&[("slot.drop.on.stop", "true")]);
        assert!(
            i.warnings.iter().any(|w| w.contains("outboxd slot drop")),
            "{:?}",
            i.warnings
        );
        assert!(ok(&[("slot.drop.on.stop", "false")])
            .warnings
            .iter()
            .all(|w| !w.contains("slot drop")));
        let e = err(
            &[("message.prefix.include.list", "audit.*")],
            "message.prefix.include.list",
        );
        assert!(e.contains("regular expression"), "{e}");
        let excluded = ok(&[("message.prefix.exclude.list", ".*")]);
        assert!(excluded
            .ignored_keys
            .contains(&"message.prefix.exclude.list".into()));
        assert!(excluded.config().source.message_prefixes.is_empty());
    }

    #[test]
    fn message_prefix_include_list_becomes_message_prefixes() {
        let i = ok(&[(
            "message.prefix.include.list",
            " outbox , billing\\.v1,outbox,",
        )]);
        assert_eq!(i.config().source.message_prefixes, ["outbox", "billing.v1"]);
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("message.prefix.include.list")
                    && w.contains("outbox, billing.v1")),
            "{:?}",
            i.warnings
        );
        assert!(!i
            .ignored_keys
            .contains(&"message.prefix.include.list".into()));
        // The TOML translation carries it and loads.
        let toml = i.to_toml();
        assert!(
            toml.contains("message_prefixes = [\"outbox\", \"billing.v1\"]"),
            "{toml}"
        );
        assert_eq!(
            Config::from_toml(&toml).unwrap().source.message_prefixes,
            ["outbox", "billing.v1"]
        );
        // Absent: no messages.
        assert!(ok(&[]).config().source.message_prefixes.is_empty());
        err(
            &[
                ("message.prefix.include.list", "outbox"),
                ("message.prefix.exclude.list", "x"),
            ],
            "message.prefix.exclude.list",
        );
        err(
            &[("message.prefix.include.list", " , ")],
            "message.prefix.include.list",
        );
        err(
            &[("message.prefix.include.list", "a|b")],
            "message.prefix.include.list",
        );
    }

    #[test]
    fn converters_are_picked_as_kafka_connect_picks_them() {
        // From the connector.
        let i = ok(&[
            ("key.converter", JSON_CONVERTER),
            ("key.converter.schemas.enable", "false"),
            ("value.converter", BINARY_DATA_CONVERTER),
            ("value.converter.delegate.converter.type", JSON_CONVERTER),
            (
                "value.converter.delegate.converter.type.schemas.enable",
                "false",
            ),
        ]);
        let conv = strings(&i.config().converters);
        let c = Converters::from_map(&conv).unwrap();
        assert_eq!(
            c.key,
            Converter::Json {
                schemas_enable: false
            }
        );
        assert_eq!(
            c.value,
            Converter::BinaryData {
                class: BINARY_DATA_CONVERTER,
                delegate: Some(Box::new(Converter::Json {
                    schemas_enable: false
                }))
            }
        );
        // Neither connector nor worker: Kafka Connect's default, with a warning.
        let i = ok(&[("key.converter", ""), ("value.converter", "")]);
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert_eq!(
            c.key,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("schemas.enable=true") && w.contains("--worker-config")),
            "{:?}",
            i.warnings
        );
        // From the worker: its options come with it, the connector's options without a class
        // are ignored (as Kafka Connect ignores them).
        let worker = parse_properties(
            "key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter.schemas.enable=false\n\
             value.converter.schemas.cache.size=500\n",
        )
        .unwrap();
        let i = import(
            &with(&[
                ("key.converter", ""),
                ("value.converter", ""),
                ("value.converter.schemas.enable", "true"),
            ]),
            Some(&worker),
        )
        .unwrap();
        let conv = strings(&i.config().converters);
        let c = Converters::from_map(&conv).unwrap();
        assert_eq!(c.key, Converter::String);
        // The worker names no value converter: Connect's default class with the worker's options.
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: false
            }
        );
        assert!(!conv.contains_key("value.converter.schemas.cache.size"));
        assert_eq!(
            i.ignored_keys,
            ["connector.class", "value.converter.schemas.enable"]
        );
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        // The connector's class wins over the worker's, with the connector's options only.
        let worker = pairs(&[
            ("value.converter", JSON_CONVERTER),
            ("value.converter.schemas.enable", "false"),
        ]);
        let i = import(&with(&[("value.converter", JSON_CONVERTER)]), Some(&worker)).unwrap();
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: true
            }
        );
        // Debezium 1.x's ByteBufferConverter loads as itself.
        let i = ok(&[("value.converter", BYTE_BUFFER_CONVERTER)]);
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert!(matches!(
            c.value,
            Converter::BinaryData {
                class: BYTE_BUFFER_CONVERTER,
                ..
            }
        ));
        // Header converter: SimpleHeaderConverter only.
        ok(&[(
            "header.converter",
            "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        )]);
        err(
            &[(
                "header.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            )],
            "header.converter",
        );
        let e = err(
            &[("value.converter", "io.confluent.connect.avro.AvroConverter")],
            "value.converter",
        );
        assert!(e.contains("supported"), "{e}");
        err(
            &[("value.converter.schema.registry.url", "http://sr:8081")],
            "value.converter.schema.registry.url",
        );
    }

    #[test]
    fn the_event_router_options_become_the_router_section() {
        let i = ok(&[
            ("transforms", "outbox"),
            (
                "transforms.outbox.route.topic.replacement",
                "${routedByValue}.events",
            ),
            (
                "transforms.outbox.table.fields.additional.placement",
                "type:header:eventType",
            ),
            ("transforms.outbox.table.expand.json.payload", "true"),
            ("transforms.outbox.debezium.op.invalid.behavior", "fatal"),
            (
                "transforms.unused.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.unused.static.field", "x"),
        ]);
        let router = strings(&i.config().router);
        assert_eq!(
            router,
            pairs(&[
                ("route.topic.replacement", "${routedByValue}.events"),
                ("table.fields.additional.placement", "type:header:eventType"),
                ("table.expand.json.payload", "true"),
                ("table.op.invalid.behavior", "fatal"),
            ])
        );
        assert!(i
            .ignored_keys
            .contains(&"transforms.unused.static.field".to_string()));
        // Any transform name works.
        let c = ok(&[
            ("transforms", "router"),
            ("transforms.outbox.type", ""),
            ("transforms.router.type", EVENT_ROUTER),
            ("transforms.router.route.by.field", "type"),
        ])
        .config();
        assert_eq!(strings(&c.router), pairs(&[("route.by.field", "type")]));
        // Other transforms are listed in the error.
        let e = err(
            &[
                ("transforms", "unwrap,outbox,route"),
                (
                    "transforms.unwrap.type",
                    "io.debezium.transforms.ExtractNewRecordState",
                ),
                (
                    "transforms.route.type",
                    "org.apache.kafka.connect.transforms.RegexRouter",
                ),
            ],
            "transforms",
        );
        assert!(
            e.contains("unwrap (io.debezium.transforms.ExtractNewRecordState)")
                && e.contains("route (org.apache.kafka.connect.transforms.RegexRouter)"),
            "{e}"
        );
        let e = err(
            &[("transforms", ""), ("transforms.outbox.type", "")],
            "transforms",
        );
        assert!(e.contains(EVENT_ROUTER), "{e}");
        err(
            &[
                ("transforms", "a,b"),
                ("transforms.outbox.type", ""),
                ("transforms.a.type", EVENT_ROUTER),
                ("transforms.b.type", EVENT_ROUTER),
            ],
            "transforms",
        );
        err(&[("transforms", "outbox,x")], "transforms.x.type");
        err(
            &[("transforms.outbox.predicate", "isOutbox")],
            "transforms.outbox.predicate",
        );
        err(&[("predicates", "isOutbox")], "predicates");
        let e = err(
            &[("transforms.outbox.route.topic.regex", "(")],
            "transforms.outbox.route.topic.regex",
        );
        assert!(e.contains("regular expression"), "{e}");
        err(
            &[("transforms.outbox.no.such.option", "1")],
            "transforms.outbox.no.such.option",
        );
    }

    #[test]
    fn topic_prefix_or_database_server_name_feed_the_router_and_neither_is_required() {
        let r = strings(&ok(&[("topic.prefix", "app")]).config().router);
        assert_eq!(r["topic.prefix"], "app");
        let r = strings(&ok(&[("database.server.name", "legacy")]).config().router);
        assert_eq!(r["topic.prefix"], "legacy");
        let i = ok(&[("topic.prefix", "app"), ("database.server.name", "legacy")]);
        assert_eq!(strings(&i.config().router)["topic.prefix"], "app");
        assert!(i.ignored_keys.contains(&"database.server.name".to_string()));
        assert!(!strings(&ok(&[]).config().router).contains_key("topic.prefix"));
        // Only envelope placements with schemas need it, as the router says.
        let envelope = [
            ("value.converter", JSON_CONVERTER),
            (
                "transforms.outbox.table.fields.additional.placement",
                "type:envelope:eventType",
            ),
        ];
        let e = err(&envelope, "topic.prefix");
        assert!(e.contains("database.server.name"), "{e}");
        let mut with_prefix = envelope.to_vec();
        with_prefix.push(("topic.prefix", "app"));
        ok(&with_prefix);
    }

    #[test]
    fn the_producer_gets_the_workers_settings_and_the_connectors_overrides() {
        let worker = parse_properties(
            "# Connect worker\n\
             bootstrap.servers = kafka-1:9092,\\\n\
             \x20   kafka-2:9092\n\
             group.id=connect\n\
             security.protocol=SSL\n\
             producer.security.protocol=SASL_SSL\n\
             producer.compression.type=lz4\n\
             producer.max.request.size=2097152\n",
        )
        .unwrap();
        let i = import(
            &with(&[
                ("producer.override.compression.type", "zstd"),
                ("producer.override.sasl.mechanism", "SCRAM-SHA-512"),
                (
                    "producer.override.sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"k\\\"afka-secret\";",
                ),
                ("producer.override.ssl.endpoint.identification.algorithm", " "),
                ("producer.override.ssl.key.password", "key-secret"),
            ]),
            Some(&worker),
        )
        .unwrap();
        let kafka = strings(&i.config().kafka);
        assert_eq!(
            kafka,
            pairs(&[
                ("bootstrap.servers", "kafka-1:9092,kafka-2:9092"),
                ("compression.type", "zstd"),
                ("message.max.bytes", "2097152"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.password", "k\"afka-secret"),
                ("sasl.username", "alice"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.endpoint.identification.algorithm", "none"),
                ("ssl.key.password", "key-secret"),
            ])
        );
        let toml = i.to_toml();
        assert!(
            !toml.contains("afka-secret") && !toml.contains("key-secret"),
            "{toml}"
        );
        assert!(toml.contains("# \"sasl.password\" = \"...\""), "{toml}");
        assert!(toml.contains("\"sasl.username\" = \"alice\""), "{toml}");
        // The whole plan resolves (the producer settings included).
        Plan::from_config(&i.config()).unwrap();
        // Java-only settings are refused with their librdkafka equivalent.
        for (key, needle) in [
            (
                "producer.override.ssl.truststore.location",
                "ssl.ca.location",
            ),
            (
                "producer.override.buffer.memory",
                "queue.buffering.max.kbytes",
            ),
            ("producer.override.no.such.property", "librdkafka"),
        ] {
            let e = err(&[(key, "/x")], key);
            assert!(e.contains(needle), "{e}");
        }
        let e = err(
            &[("producer.override.sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\" principal=\"p\";")],
            "producer.override.sasl.jaas.config",
        );
        assert!(e.contains("PlainLoginModule") && !e.contains("Krb5"), "{e}");
        // Without bootstrap servers anywhere the import still works (the flag may give them).
        assert!(!strings(&ok(&[]).config().kafka).contains_key("bootstrap.servers"));
        assert!(ok(&[]).to_toml().contains("# \"bootstrap.servers\""));
    }

    #[test]
    fn ignored_keys_are_listed_sorted_and_unknown_or_unsupported_keys_refused() {
        let i = ok(&[
            ("tombstones.on.delete", "false"),
            ("tasks.max", "1"),
            ("name", "x"),
            ("skipped.operations", "t"),
            ("schema.include.list", "public"),
            ("decimal.handling.mode", "string"),
            ("errors.tolerance", "all"),
            ("topic.creation.default.partitions", "4"),
            ("snapshot.lock.timeout.ms", "1000"),
            ("binary.handling.mode", "bytes"),
            ("provide.transaction.metadata", "false"),
        ]);
        assert_eq!(
            i.ignored_keys,
            [
                "connector.class",
                "decimal.handling.mode",
                "errors.tolerance",
                "name",
                "schema.include.list",
                "skipped.operations",
                "snapshot.lock.timeout.ms",
                "tasks.max",
                "tombstones.on.delete",
                "topic.creation.default.partitions",
            ]
        );
        let e = err(&[("slot.nmae", "x")], "slot.nmae");
        assert!(e.contains("unknown"), "{e}");
        for (key, value) in [
            ("column.exclude.list", "public.outbox.secret"),
            ("column.mask.with.10.chars", "public.outbox.x"),
            ("converters", "isbn"),
            ("binary.handling.mode", "base64"),
            ("provide.transaction.metadata", "true"),
            ("slot.stream.params", "add-tables=public.outbox"),
            (
                "connector.class",
                "io.debezium.connector.mysql.MySqlConnector",
            ),
            ("post.processors", "reselector"),
            ("database.user", "${vault:secret/db:user}"),
        ] {
            err(&[(key, value)], key);
        }
    }

    #[test]
    fn the_printed_toml_loads_and_equals_the_imported_configuration() {
        let worker = pairs(&[("bootstrap.servers", "kafka:9092")]);
        let i = import(
            &with(&[
                ("database.password", "db-secret"),
                ("database.sslmode", "require"),
                ("slot.name", "orders"),
                ("publication.name", "orders_pub"),
                ("publication.autocreate.mode", "disabled"),
                ("table.include.list", "public.outbox,billing.outbox"),
                ("status.update.interval.ms", "5000"),
                ("heartbeat.interval.ms", "10000"),
                ("heartbeat.action.query", "UPDATE heartbeat SET ts = now() WHERE id = 'a \"b\"'"),
                ("topic.prefix", "app"),
                ("transforms.outbox.table.expand.json.payload", "true"),
                ("transforms.outbox.route.topic.replacement", "${routedByValue}.events"),
                ("value.converter", JSON_CONVERTER),
                ("value.converter.schemas.enable", "false"),
                ("producer.override.linger.ms", "20"),
                ("producer.override.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"kafka-secret\";"),
                ("tasks.max", "1"),
            ]),
            Some(&worker),
        )
        .unwrap();
        let toml = i.to_toml();
        assert!(
            !toml.contains("db-secret") && !toml.contains("kafka-secret"),
            "{toml}"
        );
        let loaded = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let original = i.config();
        assert_eq!(
            loaded.source.url,
            "postgres://debezium@db.internal:5432/app?sslmode=require"
        );
        assert!(original.source.url.contains("db-secret"));
        assert_eq!(loaded.source.slot, original.source.slot);
        assert_eq!(loaded.source.publication, original.source.publication);
        assert_eq!(loaded.source.tables, original.source.tables);
        assert_eq!(
            loaded.source.create_publication,
            original.source.create_publication
        );
        assert_eq!(loaded.source.create_slot, original.source.create_slot);
        assert_eq!(loaded.source.status_interval_ms, 5000);
        assert_eq!(loaded.source.heartbeat_interval_ms, 10_000);
        assert_eq!(
            loaded.source.heartbeat_action_query,
            original.source.heartbeat_action_query
        );
        assert_eq!(strings(&loaded.router), strings(&original.router));
        assert_eq!(strings(&loaded.converters), strings(&original.converters));
        let mut kafka = strings(&original.kafka);
        kafka.remove("sasl.password");
        assert_eq!(strings(&loaded.kafka), kafka);
        assert!(
            toml.contains("tasks.max"),
            "the ignored keys are listed: {toml}"
        );
        // The minimal connector's TOML loads too.
        Config::from_toml(&ok(&[]).to_toml()).unwrap();
    }

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

    #[test]
    fn config_provider_references_are_resolved_and_errors_name_no_value() {
        let worker = pairs(&[
            ("config.providers", "secrets,dir"),
            ("config.providers.secrets.class", FILE_CONFIG_PROVIDER),
            ("config.providers.dir.class", DIRECTORY_CONFIG_PROVIDER),
        ]);
        let providers = config_providers(Some(&worker));
        let env = |name: &str| (name == "DB_USER").then(|| "from-env".to_string());
        let read = |path: &str| match path {
            "/s/db.properties" => Ok("password = top-secret\n".to_string()),
            "/run/secrets/kafka" => Ok("kafka-pass".to_string()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file",
            )),
        };
        let mut values = pairs(&[
            ("database.user", "${env:DB_USER}"),
            ("database.password", "${secrets:/s/db.properties:password}"),
            (
                "producer.override.sasl.password",
                "${dir:/run/secrets:kafka}",
            ),
            (
                "transforms.outbox.route.topic.replacement",
                "${routedByValue}.x",
            ),
            ("other", "${unknown:a:b}"),
        ]);
        resolve_config_providers(&mut values, "", &providers, &env, &read).unwrap();
        assert_eq!(values["database.user"], "from-env");
        assert_eq!(values["database.password"], "top-secret");
        assert_eq!(values["producer.override.sasl.password"], "kafka-pass");
        assert_eq!(
            values["transforms.outbox.route.topic.replacement"],
            "${routedByValue}.x"
        );
        assert_eq!(values["other"], "${unknown:a:b}");
        for (value, needle) in [
            ("${env:NOPE}", "environment variable NOPE"),
            ("${secrets:/missing:password}", "/missing"),
            ("${secrets:/s/db.properties:nokey}", "no such key"),
            ("${secrets:password}", "needs a file and a key"),
        ] {
            let mut v = pairs(&[("database.password", value)]);
            let e = resolve_config_providers(&mut v, " (worker file)", &providers, &env, &read)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(needle) && e.contains("database.password (worker file)"),
                "{e}"
            );
            assert!(!e.contains("top-secret"), "{e}");
        }
    }

    #[test]
    fn unprinted_secrets_are_the_database_and_producer_passwords() {
        for key in [
            "database.password",
            "producer.override.sasl.password",
            "producer.override.ssl.key.password",
            "producer.ssl.keystore.password",
        ] {
            assert!(is_unprinted_secret(key), "{key}");
        }
        for key in [
            "database.user",
            "producer.override.sasl.jaas.config",
            "producer.override.sasl.username",
            "transforms.outbox.table.field.event.payload",
        ] {
            assert!(!is_unprinted_secret(key), "{key}");
        }
        // An unresolved reference there (a provider outboxd does not know) is an error.
        err(
            &[("producer.override.ssl.key.password", "${vault:kafka:key}")],
            "producer.override.ssl.key.password",
        );
    }

    #[test]
    fn java_properties_are_parsed_as_java_does() {
        let p = parse_properties(
            "# comment\n\
             ! another\n\
             \n\
             a=1\n\
             b : 2\n\
             c 3\n\
             d=x\\\n\
             \x20  y\\\n\
             \tz\n\
             e=ends with backslash\\\\\n\
             f=\\u00e9t\\u00E9 \\t tab\n\
             key\\ with\\=sep = v\n\
             empty=\n\
             a=last wins\n\
             # c=comment \\\n\
             g=after comment\n",
        )
        .unwrap();
        assert_eq!(
            p,
            pairs(&[
                ("a", "last wins"),
                ("b", "2"),
                ("c", "3"),
                ("d", "xyz"),
                ("e", "ends with backslash\\"),
                ("empty", ""),
                ("f", "été \t tab"),
                ("g", "after comment"),
                ("key with=sep", "v"),
            ])
        );
        let e = parse_properties("x=1\ny=\\u12\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
