//! The walk over a connector's keys: every key is either mapped (by the per-section methods in
//! [`super::source`], [`super::router`] and [`super::kafka_properties`]), known to be without
//! effect on the records (listed in one warning), or an error naming the key and the fix.
//!
//! Owns the order of the walk, the lists of ignored and unsupported keys, the few keys that need
//! no method of their own (slot and publication names, the status interval, the column type
//! modes) and the assembly of the [`Imported`] configuration. It must not read files or the
//! environment.

use std::collections::{BTreeMap, BTreeSet};

use super::{key_error, ConnectorJson, DebeziumError, Imported, POSTGRES_CONNECTOR};
use crate::config::{Config, ConfigError, SourceConfig};
use crate::convert::Converters;
use crate::router::RouterOptions;

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
        "connector.class" if value.trim() != POSTGRES_CONNECTOR => "outboxd replaces only the Debezium PostgreSQL connector (io.debezium.connector.postgresql.PostgresConnector)",
        _ if key.starts_with("column.mask.") || key.starts_with("column.truncate.") => "column masking and truncation are not supported: remove the key",
        _ => return None,
    };
    Some(msg.to_string())
}

/// A Kafka Connect config provider reference, `${provider:[path:]key}`: outboxd does not resolve
/// them.
pub(super) fn is_config_provider_reference(value: &str) -> bool {
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

/// The state of one import: the connector's keys, the worker's properties, and what has been
/// used, ignored or warned about so far.
pub(super) struct Mapper<'a> {
    pub(super) cc: &'a BTreeMap<String, String>,
    pub(super) worker: Option<&'a BTreeMap<String, String>>,
    pub(super) name: Option<String>,
    pub(super) used: BTreeSet<String>,
    pub(super) ignored: BTreeSet<String>,
    pub(super) warnings: Vec<String>,
}

impl<'a> Mapper<'a> {
    pub(super) fn new(
        connector: &'a ConnectorJson,
        worker: Option<&'a BTreeMap<String, String>>,
    ) -> Self {
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
    pub(super) fn get(&mut self, key: &str) -> Option<String> {
        let value = self.cc.get(key)?;
        self.used.insert(key.to_string());
        let v = value.trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    pub(super) fn ignore(&mut self, key: &str) {
        if self.cc.contains_key(key) {
            self.used.insert(key.to_string());
            self.ignored.insert(key.to_string());
        }
    }

    pub(super) fn run(mut self) -> Result<Imported, DebeziumError> {
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
        let failover_slot = match self.get("slot.failover") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            Some(v) => {
                return Err(key_error(
                    "slot.failover",
                    format!("{v:?}: expected true or false"),
                ))
            }
        };
        // Debezium's default is false; unset, outboxd's default (true) applies.
        let publish_via_partition_root = match self.get("publish.via.partition.root") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            Some(v) => {
                return Err(key_error(
                    "publish.via.partition.root",
                    format!("{v:?}: expected true or false"),
                ))
            }
        };
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
            r.check_converters(&c).map_err(|e| {
                // The connector key that fixes it.
                let key = match e.key.as_str() {
                    "header.from.fields" | "header.from.headers" => "transforms",
                    "table.fields.additional.placement" => "transforms",
                    other => other,
                };
                key_error(key, e.message)
            })?;
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
        config.source.failover_slot = failover_slot;
        if let Some(via_root) = publish_via_partition_root {
            config.source.publish_via_partition_root = via_root;
        }
        config.source.message_prefixes = message_prefixes;
        config.exactly_once = exactly_once;
        config.router = to_toml_map(router);
        config.converters = to_toml_map(converters);
        config.kafka = to_toml_map(kafka);
        // Where the connector's offset is, for `--take-over-offsets` (off until asked for).
        let worker_key = |k: &str| {
            self.worker
                .and_then(|w| w.get(k))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        config.takeover = crate::config::TakeoverConfig {
            enabled: false,
            connector_name: self.name.clone(),
            server: config
                .router
                .get("topic.prefix")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            offsets_topic: worker_key("offset.storage.topic"),
            offsets_file: worker_key("offset.storage.file.filename").map(Into::into),
            read_back: None,
            read_back_margin_ms: None,
        };
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, message } => {
                let debezium_key = match key.as_str() {
                    "source.slot" => "slot.name",
                    "source.failover_slot" => "slot.failover",
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
}

#[cfg(test)]
mod tests {
    use crate::debezium::testing::*;

    #[test]
    fn slot_failover_maps_to_source_failover_slot() {
        assert_eq!(ok(&[]).config().source.failover_slot, None);
        for (v, want) in [("true", true), ("FALSE", false)] {
            let i = ok(&[("slot.failover", v)]);
            assert_eq!(i.config().source.failover_slot, Some(want));
            assert!(!i.ignored_keys.contains(&"slot.failover".to_string()));
        }
        err(&[("slot.failover", "yes")], "slot.failover");
    }

    #[test]
    fn publish_via_partition_root_maps_to_the_source_key() {
        assert!(ok(&[]).config().source.publish_via_partition_root);
        for (v, want) in [("true", true), ("False", false)] {
            let i = ok(&[("publish.via.partition.root", v)]);
            assert_eq!(i.config().source.publish_via_partition_root, want);
            assert!(!i
                .ignored_keys
                .contains(&"publish.via.partition.root".to_string()));
            let toml = i.to_toml();
            let loaded = crate::config::Config::from_toml(&toml).unwrap();
            assert_eq!(loaded.source.publish_via_partition_root, want, "{toml}");
        }
        err(
            &[("publish.via.partition.root", "1")],
            "publish.via.partition.root",
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
}
