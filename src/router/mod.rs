//! The outbox router: turns an inserted outbox row into a Kafka record, with the rules, option
//! names and defaults of Debezium's `io.debezium.transforms.outbox.EventRouter` (Debezium 3.x).
//!
//! - topic: the `route.by.field` column (default `aggregatetype`) is matched in full against
//!   `route.topic.regex` (default `(?<routedByValue>.*)`) and expanded into
//!   `route.topic.replacement` (default `outbox.event.${routedByValue}`); a value the regex does not
//!   match is used as the topic as it is, as Kafka Connect's `RegexRouter` does;
//! - key: the `table.field.event.key` column (default `aggregateid`), typed as Debezium types the
//!   column (an `integer` key stays an int32); NULL gives no key;
//! - header `id`: the `table.field.event.id` column (default `id`);
//! - value: the `table.field.event.payload` column (default `payload`), optionally expanded from
//!   JSON text into a structure (`table.expand.json.payload`, see [`expand`]) and wrapped with
//!   `envelope` placements into a struct; a NULL (or blank, with
//!   `route.tombstone.on.empty.payload`) payload gives a null value;
//! - `table.fields.additional.placement`: extra columns as headers, envelope fields or the
//!   partition;
//! - timestamp: the `table.field.event.timestamp` column, else the transaction's commit time;
//! - `tracing.span.context.field`: the W3C trace context stored with the row, as headers.
//!
//! The router builds Kafka Connect values ([`crate::convert::Data`]), and the configured converters
//! turn them into bytes exactly as a Kafka Connect worker would.
//!
//! The router is pure: it sees decoded pgoutput messages and returns records, warnings and errors;
//! logging and metrics are the pipeline's job.

mod columns;
pub mod expand;
pub mod message;
mod span_context;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use regex::Regex;

use crate::config::TableName;
use crate::convert::{header_bytes, Converter, Converters, Data, Field, Schema, Type, Value};
use crate::source::pgoutput::{LogicalMessage, Relation, TupleData, TupleValue, PG_EPOCH_UNIX_US};

pub use columns::{oid, Kind};
pub use expand::NullBehavior;

/// A record ready for the Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub topic: String,
    /// The partition from a `partition` placement; `None`: the producer's partitioner picks it
    /// from the key.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in order; a `None` value is a header with a null value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl OutboxRecord {
    /// Bytes this record holds in memory (what the in-flight byte cap counts).
    pub fn size(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum();
        (self.topic.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers) as u64
    }
}

/// The raw cells of an outbox row that could not be routed (see [`Router::raw_row`]). `None`:
/// NULL (or an unchanged TOASTed value, which pgoutput does not send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// `schema.table`.
    pub table: String,
    pub id: Option<Bytes>,
    pub key: Option<Bytes>,
    pub payload: Option<Bytes>,
    /// The topic the routing value leads to, valid or not; `None` when the value is NULL.
    pub topic: Option<String>,
}

/// A routed row: the record, and what the pipeline must log about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub record: OutboxRecord,
    pub warnings: Vec<RouteWarning>,
}

/// Something about a row that did not stop it from being published but that an operator should
/// see (never silent: the pipeline logs it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox row in {table} (id {id}): {message}")]
pub struct RouteWarning {
    pub table: String,
    pub id: String,
    /// A short stable label: `json_not_expanded` or `trace_context_ignored`.
    pub kind: &'static str,
    pub message: String,
}

/// What to do with an UPDATE of an outbox row (`table.op.invalid.behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidOpBehavior {
    /// Log a warning and drop the change (Debezium's default).
    Warn,
    /// Log an error and drop the change.
    Error,
    /// Stop the relay.
    Fatal,
}

/// A bad router option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("router option \"{key}\": {message}")]
pub struct RouterConfigError {
    pub key: String,
    pub message: String,
}

/// A row that cannot be turned into a record. Never skipped silently: the relay stops.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("outbox table {table} has no column \"{column}\" (router option {option}); add the column or set {option} to the column that holds this value")]
    MissingColumn {
        table: String,
        column: String,
        option: &'static str,
    },
    #[error("outbox table {table}: {message}")]
    Unsupported { table: String, message: String },
    #[error("outbox row in {table} (id {id}): {problem}")]
    BadRow {
        table: String,
        id: String,
        problem: String,
    },
}

/// Where an additional column goes (`table.fields.additional.placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementTarget {
    Header,
    Envelope,
    Partition,
}

/// One `column:placement[:alias]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub column: String,
    pub target: PlacementTarget,
    /// The header or envelope field name (the column name unless given).
    pub alias: String,
}

/// The validated EventRouter options.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub id_field: String,
    pub key_field: String,
    pub payload_field: String,
    pub route_by_field: String,
    pub topic_regex: Regex,
    pub topic_replacement: String,
    pub tombstone_on_empty_payload: bool,
    pub op_invalid_behavior: InvalidOpBehavior,
    /// `table.field.event.timestamp`: the column giving the record timestamp.
    pub timestamp_field: Option<String>,
    /// `table.field.event.schema.version`: the column giving the envelope value schema's version.
    pub schema_version_field: Option<String>,
    /// `table.fields.additional.placement`, in order.
    pub placements: Vec<Placement>,
    /// Whether a placed column missing from the table is an error (`table.field.additional.missing`).
    pub error_on_missing_placement: bool,
    pub expand_json_payload: bool,
    pub json_null_behavior: NullBehavior,
    /// `tracing.span.context.field`, only when set explicitly.
    pub tracing_field: Option<String>,
    /// The Debezium connector's `topic.prefix`, for the name of the envelope value schema.
    pub topic_prefix: Option<String>,
}

/// The options `[router]` accepts, with their effect.
const KNOWN_OPTIONS: &[&str] = &[
    "table.field.event.id",
    "table.field.event.key",
    "table.field.event.payload",
    "table.field.event.timestamp",
    "table.field.event.schema.version",
    "table.fields.additional.placement",
    "table.field.additional.missing",
    "table.fields.additional.error.on.missing",
    "route.by.field",
    "route.topic.regex",
    "route.topic.replacement",
    "route.tombstone.on.empty.payload",
    "table.expand.json.payload",
    "table.json.payload.null.behavior",
    "table.op.invalid.behavior",
    "tracing.span.context.field",
    "topic.prefix",
];

/// Options that change nothing in outboxd's output and are accepted for compatibility:
/// the type column only reaches Kafka through a placement, and outboxd creates no tracing spans.
const ACCEPTED_NO_EFFECT: &[&str] = &[
    "table.field.event.type",
    "tracing.operation.name",
    "tracing.with.context.field.only",
];

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions::from_map(&BTreeMap::new()).expect("the defaults are valid")
    }
}

impl RouterOptions {
    /// Validates the `[router]` section: Debezium names, meanings and defaults.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, RouterConfigError> {
        let err = |key: &str, message: String| RouterConfigError {
            key: key.into(),
            message,
        };
        for key in map.keys() {
            if !KNOWN_OPTIONS.contains(&key.as_str()) && !ACCEPTED_NO_EFFECT.contains(&key.as_str())
            {
                return Err(err(
                    key,
                    format!(
                        "unknown option; known options: {}",
                        KNOWN_OPTIONS
                            .iter()
                            .chain(ACCEPTED_NO_EFFECT)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let optional = |key: &str| -> Result<Option<String>, RouterConfigError> {
            match map.get(key) {
                Some(v) if v.trim().is_empty() => Err(err(key, "must not be empty".into())),
                Some(v) => Ok(Some(v.trim().to_string())),
                None => Ok(None),
            }
        };
        let get = |key: &str, default: &str| -> Result<String, RouterConfigError> {
            Ok(optional(key)?.unwrap_or_else(|| default.to_string()))
        };
        let boolean = |key: &str, default: bool| -> Result<bool, RouterConfigError> {
            match optional(key)?.map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(err(key, format!("{v:?}: expected true or false"))),
            }
        };
        let regex_text = get("route.topic.regex", "(?<routedByValue>.*)")?;
        // Java's Matcher.matches(): the whole value must match.
        let topic_regex = Regex::new(&format!("^(?:{regex_text})$")).map_err(|e| {
            err(
                "route.topic.regex",
                format!("{regex_text:?} is not a valid regular expression: {e}"),
            )
        })?;
        let op_invalid_behavior = match get("table.op.invalid.behavior", "warn")?
            .to_ascii_lowercase()
            .as_str()
        {
            "warn" => InvalidOpBehavior::Warn,
            "error" => InvalidOpBehavior::Error,
            "fatal" => InvalidOpBehavior::Fatal,
            other => {
                return Err(err(
                    "table.op.invalid.behavior",
                    format!("{other:?}: expected warn, error or fatal"),
                ))
            }
        };
        let json_null_behavior = match get("table.json.payload.null.behavior", "ignore")?
            .to_ascii_lowercase()
            .as_str()
        {
            "ignore" => NullBehavior::Ignore,
            "optional_bytes" => NullBehavior::OptionalBytes,
            other => {
                return Err(err(
                    "table.json.payload.null.behavior",
                    format!("{other:?}: expected ignore or optional_bytes"),
                ))
            }
        };
        let missing = match optional("table.field.additional.missing")?
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None => None,
            Some("error") => Some(true),
            Some("ignore") => Some(false),
            Some(other) => {
                return Err(err(
                    "table.field.additional.missing",
                    format!("{other:?}: expected error or ignore"),
                ))
            }
        };
        let old_missing = match map.get("table.fields.additional.error.on.missing") {
            Some(_) => Some(boolean("table.fields.additional.error.on.missing", true)?),
            None => None,
        };
        let error_on_missing_placement = match (missing, old_missing) {
            (Some(a), Some(b)) if a != b => {
                return Err(err(
                    "table.field.additional.missing",
                    "contradicts table.fields.additional.error.on.missing (its older name); keep one of them".into(),
                ))
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => true,
        };
        let placements = match optional("table.fields.additional.placement")? {
            Some(spec) => {
                parse_placements(&spec).map_err(|m| err("table.fields.additional.placement", m))?
            }
            None => Vec::new(),
        };
        let options = RouterOptions {
            id_field: get("table.field.event.id", "id")?,
            key_field: get("table.field.event.key", "aggregateid")?,
            payload_field: get("table.field.event.payload", "payload")?,
            route_by_field: get("route.by.field", "aggregatetype")?,
            topic_regex,
            topic_replacement: get("route.topic.replacement", "outbox.event.${routedByValue}")?,
            tombstone_on_empty_payload: boolean("route.tombstone.on.empty.payload", false)?,
            op_invalid_behavior,
            timestamp_field: optional("table.field.event.timestamp")?,
            schema_version_field: optional("table.field.event.schema.version")?,
            placements,
            error_on_missing_placement,
            expand_json_payload: boolean("table.expand.json.payload", false)?,
            json_null_behavior,
            tracing_field: optional("tracing.span.context.field")?,
            topic_prefix: optional("topic.prefix")?,
        };
        check_replacement(&options.topic_regex, &options.topic_replacement)
            .map_err(|m| err("route.topic.replacement", m))?;
        Ok(options)
    }

    /// Whether any column is placed in the envelope (the value is then a struct).
    pub fn has_envelope(&self) -> bool {
        self.placements
            .iter()
            .any(|p| p.target == PlacementTarget::Envelope)
    }

    /// Checks the options against the converters: an envelope value schema written by
    /// JsonConverter carries a name built from the connector's `topic.prefix`.
    pub fn check_converters(&self, converters: &Converters) -> Result<(), RouterConfigError> {
        if self.has_envelope() && converters.value.writes_schemas() && self.topic_prefix.is_none() {
            return Err(RouterConfigError {
                key: "topic.prefix".into(),
                message: "envelope placements with JsonConverter schemas name the value schema <topic.prefix>.<schema>.<table>.<route value>.Value; set topic.prefix to the Debezium connector's topic.prefix (database.server.name before Debezium 2)".into(),
            });
        }
        Ok(())
    }

    /// The columns every outbox table must have with these options.
    pub fn required_columns(&self) -> Vec<String> {
        let mut cols = vec![
            self.id_field.clone(),
            self.key_field.clone(),
            self.payload_field.clone(),
            self.route_by_field.clone(),
        ];
        cols.extend(self.timestamp_field.clone());
        cols.extend(self.tracing_field.clone());
        if self.has_envelope() {
            cols.extend(self.schema_version_field.clone());
        }
        if self.error_on_missing_placement {
            cols.extend(self.placements.iter().map(|p| p.column.clone()));
        }
        let mut seen = HashSet::new();
        cols.retain(|c| seen.insert(c.clone()));
        cols
    }
}

/// Parses `col:header|envelope|partition[:alias],...`.
fn parse_placements(spec: &str) -> Result<Vec<Placement>, String> {
    let mut out: Vec<Placement> = Vec::new();
    for item in spec.split(',') {
        let parts: Vec<&str> = item.split(':').map(str::trim).collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "{item:?} is not column:placement or column:placement:alias (placement: header, envelope or partition)"
            ));
        }
        let target = match parts[1].to_ascii_lowercase().as_str() {
            "header" => PlacementTarget::Header,
            "envelope" => PlacementTarget::Envelope,
            "partition" => PlacementTarget::Partition,
            other => {
                return Err(format!(
                    "{item:?}: unknown placement {other:?}; expected header, envelope or partition"
                ))
            }
        };
        let alias = parts.get(2).unwrap_or(&parts[0]).to_string();
        if target == PlacementTarget::Envelope
            && (alias == "payload"
                || out
                    .iter()
                    .any(|p| p.target == PlacementTarget::Envelope && p.alias == alias))
        {
            return Err(format!(
                "{item:?}: the envelope already has a field named {alias:?}; give this placement another alias"
            ));
        }
        out.push(Placement {
            column: parts[0].to_string(),
            target,
            alias,
        });
    }
    Ok(out)
}

/// One column of an outbox table, typed.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    index: usize,
    kind: Kind,
    schema: Schema,
}

/// Where the router's columns sit in one outbox table's rows.
#[derive(Debug, Clone)]
struct TableLayout {
    table: String,
    /// The name Debezium gives the row's value schema: `<topic.prefix>.<schema>.<table>.Value`.
    debezium_schema_prefix: String,
    id: Column,
    key: Column,
    payload: Column,
    route_by: Column,
    timestamp: Option<Column>,
    schema_version: Option<Column>,
    /// Placements whose column exists, in configuration order.
    placements: Vec<(Placement, Column)>,
    tracing: Option<Column>,
}

/// Routes rows of the configured outbox tables; other relations are not its business.
#[derive(Debug)]
pub struct Router {
    options: RouterOptions,
    converters: Converters,
    tables: Vec<TableName>,
    /// NOT NULL columns of each outbox table, when known (Connect schemas' `optional` flag).
    not_null: HashMap<TableName, HashSet<String>>,
    /// Layouts of the outbox tables by pgoutput relation id, from Relation messages.
    layouts: HashMap<u32, TableLayout>,
    envelope_names: EnvelopeNames,
    /// `source.message_prefixes`: the logical decoding message prefixes whose transactional
    /// messages are outbox events; the index is the message's pseudo relation id
    /// ([`message::relation_id`]).
    message_prefixes: Vec<String>,
    /// `message:<prefix>` for each of `message_prefixes`: the name messages go by in metrics,
    /// logs and dead-letter records, where rows give `schema.table`.
    message_labels: Vec<String>,
    /// Topics already built from routing values.
    topics: TopicCache,
}

/// Valid topics by routing value, so that `route.topic.regex` and the replacement run once per
/// distinct value rather than once per event. Bounded: emptied when full.
#[derive(Debug, Default)]
struct TopicCache(HashMap<String, String>);

impl TopicCache {
    /// Distinct routing values kept at most.
    const MAX_ENTRIES: usize = 4096;

    /// The topic for `value`; `Err(topic, problem)` when Kafka would refuse the name.
    fn topic(&mut self, o: &RouterOptions, value: &str) -> Result<String, (String, String)> {
        if let Some(topic) = self.0.get(value) {
            return Ok(topic.clone());
        }
        let topic = route_topic(o, value);
        if let Err(problem) = check_topic_name(&topic) {
            return Err((topic, problem));
        }
        if self.0.len() >= Self::MAX_ENTRIES {
            self.0.clear();
        }
        self.0.insert(value.to_string(), topic.clone());
        Ok(topic)
    }
}

/// Debezium caches the envelope value schema per schema version, or per payload schema when no
/// version column is set, and reuses the first one's name (built from the first routing value)
/// for the life of the task. Emulated for the name, which is what reaches the bytes.
#[derive(Debug, Default)]
struct EnvelopeNames {
    by_version: HashMap<Option<i32>, String>,
    by_payload: HashMap<Schema, String>,
}

/// Debezium's bound on its payload-schema cache.
const ENVELOPE_CACHE_LIMIT: usize = 10_000;

impl Router {
    pub fn new(options: RouterOptions, tables: Vec<TableName>) -> Self {
        Router {
            options,
            converters: Converters::default(),
            tables,
            not_null: HashMap::new(),
            layouts: HashMap::new(),
            envelope_names: EnvelopeNames::default(),
            message_prefixes: Vec::new(),
            message_labels: Vec::new(),
            topics: TopicCache::default(),
        }
    }

    /// Routes transactional logical decoding messages with these prefixes (exact names) as outbox
    /// events (see [`message`]).
    pub fn with_message_prefixes(mut self, prefixes: Vec<String>) -> Self {
        self.message_labels = prefixes.iter().map(|p| message::label(p)).collect();
        self.message_prefixes = prefixes;
        self
    }

    /// The pseudo relation id of a configured message prefix; `None` for any other prefix.
    pub fn message_relation_id(&self, prefix: &str) -> Option<u32> {
        self.message_prefixes
            .iter()
            .position(|p| p == prefix)
            .map(message::relation_id)
    }

    /// Uses these key and value converters (default: outboxd's raw text and bytes).
    pub fn with_converters(mut self, converters: Converters) -> Self {
        self.converters = converters;
        self
    }

    /// Tells the router which columns of `table` are NOT NULL (from the catalog: pgoutput does
    /// not say). Without it, only replica identity columns count as NOT NULL.
    pub fn set_not_null_columns(&mut self, table: TableName, columns: HashSet<String>) {
        self.not_null.insert(table, columns);
    }

    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    /// Learns a relation (pgoutput `Relation`, sent before the first change of a table and again
    /// after its schema changes). Errors when an outbox table lacks a column the router needs, or
    /// has a column type the options or converters cannot carry.
    pub fn on_relation(&mut self, relation: &Relation) -> Result<(), RouteError> {
        let Some(table_name) = self
            .tables
            .iter()
            .find(|t| t.schema == relation.namespace && t.name == relation.name)
        else {
            self.layouts.remove(&relation.id);
            return Ok(());
        };
        let table = format!("{}.{}", relation.namespace, relation.name);
        let schema_prefix = format!(
            "{}.{}.{}",
            self.options.topic_prefix.as_deref().unwrap_or("outboxd"),
            relation.namespace,
            relation.name
        );
        let layout = self.layout(
            relation,
            table,
            schema_prefix,
            self.not_null.get(table_name),
        )?;
        self.layouts.insert(relation.id, layout);
        Ok(())
    }

    /// Where the router's columns sit in `relation`'s rows, checked against the options and the
    /// converters. `table` names the relation in errors and metrics; `schema_prefix` starts the
    /// envelope value schema's name; `not_null`: the NOT NULL columns, when known.
    fn layout(
        &self,
        relation: &Relation,
        table: String,
        schema_prefix: String,
        not_null: Option<&HashSet<String>>,
    ) -> Result<TableLayout, RouteError> {
        let find = |name: &str| -> Option<Column> {
            let index = relation.columns.iter().position(|c| c.name == name)?;
            let c = &relation.columns[index];
            let required = match not_null {
                Some(set) => set.contains(name),
                None => c.flags & 1 == 1,
            };
            let kind = Kind::of(c.type_oid, c.type_modifier);
            Some(Column {
                name: name.to_string(),
                index,
                kind,
                schema: kind.schema(!required),
            })
        };
        let column = |name: &str, option: &'static str| -> Result<Column, RouteError> {
            find(name).ok_or_else(|| RouteError::MissingColumn {
                table: table.clone(),
                column: name.to_string(),
                option,
            })
        };
        let unsupported = |message: String| RouteError::Unsupported {
            table: table.clone(),
            message,
        };
        let o = &self.options;
        let timestamp = match &o.timestamp_field {
            Some(f) => {
                let c = column(f, "table.field.event.timestamp")?;
                if !c.kind.is_timestamp_source() {
                    return Err(unsupported(format!(
                        "the event timestamp column \"{f}\" (table.field.event.timestamp) must be timestamptz, timestamp or bigint (epoch milliseconds)"
                    )));
                }
                Some(c)
            }
            None => None,
        };
        let schema_version = match (&o.schema_version_field, o.has_envelope()) {
            (Some(f), true) => {
                let c = column(f, "table.field.event.schema.version")?;
                if !c.kind.is_integer() {
                    return Err(unsupported(format!(
                        "the schema version column \"{f}\" (table.field.event.schema.version) must be an integer column"
                    )));
                }
                Some(c)
            }
            _ => None,
        };
        let mut placements = Vec::new();
        for p in &o.placements {
            let Some(c) = find(&p.column) else {
                if o.error_on_missing_placement {
                    return Err(RouteError::MissingColumn {
                        table: table.clone(),
                        column: p.column.clone(),
                        option: "table.fields.additional.placement",
                    });
                }
                continue;
            };
            if p.target == PlacementTarget::Partition && !c.kind.is_integer() {
                return Err(unsupported(format!(
                    "the partition column \"{}\" (table.fields.additional.placement) must be an integer column",
                    p.column
                )));
            }
            placements.push((p.clone(), c));
        }
        let tracing = match &o.tracing_field {
            Some(f) => Some(column(f, "tracing.span.context.field")?),
            None => None,
        };
        let layout = TableLayout {
            debezium_schema_prefix: schema_prefix,
            id: column(&o.id_field, "table.field.event.id")?,
            key: column(&o.key_field, "table.field.event.key")?,
            payload: column(&o.payload_field, "table.field.event.payload")?,
            route_by: column(&o.route_by_field, "route.by.field")?,
            timestamp,
            schema_version,
            placements,
            tracing,
            table: table.clone(),
        };
        // The converters must be able to carry the key and the value.
        self.converters.key.check(&layout.key.schema).map_err(|e| {
            unsupported(format!(
                "key column \"{}\" with key.converter {}: {e}",
                layout.key.name,
                self.converters.key.class_name()
            ))
        })?;
        let value_schema = if o.has_envelope() {
            let mut fields = vec![Field {
                name: "payload".into(),
                schema: layout.payload.schema.clone(),
            }];
            for (p, c) in &layout.placements {
                if p.target == PlacementTarget::Envelope {
                    fields.push(Field {
                        name: p.alias.clone(),
                        schema: c.schema.clone(),
                    });
                }
            }
            Schema::new(Type::Struct(fields), false)
        } else {
            layout.payload.schema.clone()
        };
        self.converters.value.check(&value_schema).map_err(|e| {
            unsupported(format!(
                "payload column \"{}\" with value.converter {}: {e}",
                layout.payload.name,
                self.converters.value.class_name()
            ))
        })?;
        Ok(layout)
    }

    /// The `schema.table` name of an outbox relation, `message:<prefix>` for the pseudo relation
    /// id of a message prefix, or `None` for any other relation.
    pub fn outbox_table(&self, relation_id: u32) -> Option<&str> {
        match self.layouts.get(&relation_id) {
            Some(l) => Some(l.table.as_str()),
            None => self
                .message_labels
                .get(usize::try_from(relation_id).ok()?)
                .map(String::as_str),
        }
    }

    /// The row's raw cells, for a row [`route_insert`](Self::route_insert) refused (a poison
    /// event): the id, key and payload columns' bytes as pgoutput sent them, and the topic the
    /// routing value leads to (not checked). `None` when the relation is not an outbox table.
    pub fn raw_row(&self, relation_id: u32, row: &TupleData) -> Option<RawRow> {
        let layout = self.layouts.get(&relation_id)?;
        let raw = |c: &Column| row.get(c.index).and_then(TupleValue::as_bytes).cloned();
        let topic = raw(&layout.route_by)
            .map(|value| route_topic(&self.options, &String::from_utf8_lossy(&value)));
        Some(RawRow {
            table: layout.table.clone(),
            id: raw(&layout.id),
            key: raw(&layout.key),
            payload: raw(&layout.payload),
            topic,
        })
    }

    /// Routes an inserted row. `Ok(None)`: the relation is not an outbox table.
    pub fn route_insert(
        &mut self,
        relation_id: u32,
        row: &TupleData,
        commit_time_us: i64,
    ) -> Result<Option<Routed>, RouteError> {
        let Some(layout) = self.layouts.get(&relation_id) else {
            return Ok(None);
        };
        Self::route_row(
            &self.options,
            &self.converters,
            &mut self.envelope_names,
            &mut self.topics,
            layout,
            row,
            commit_time_us,
        )
        .map(Some)
    }

    /// Routes a transactional logical decoding message of a configured prefix (the caller checks
    /// [`Router::message_relation_id`] and `transactional`) exactly as the row its content
    /// stands for (see [`message`]). Content that is no such row is a
    /// [`RouteError::BadRow`], as a bad row is.
    pub fn route_message(
        &mut self,
        msg: &LogicalMessage,
        commit_time_us: i64,
    ) -> Result<Routed, RouteError> {
        let table = message::label(&msg.prefix);
        let bad = |id: &str, problem: String| RouteError::BadRow {
            table: table.clone(),
            id: id.to_string(),
            problem,
        };
        let row =
            message::message_row(&self.options, &msg.content).map_err(|e| bad(&e.id, e.problem))?;
        let schema_prefix = format!(
            "{}.message.{}",
            self.options.topic_prefix.as_deref().unwrap_or("outboxd"),
            msg.prefix
        );
        // A field the options need but the content lacks, or of a type they cannot use, is a
        // problem of this message, not of the configuration.
        let layout = self
            .layout(
                &row.relation,
                table.clone(),
                schema_prefix,
                Some(&row.not_null),
            )
            .map_err(|e| bad(&row.id, e.to_string()))?;
        Self::route_row(
            &self.options,
            &self.converters,
            &mut self.envelope_names,
            &mut self.topics,
            &layout,
            &row.values,
            commit_time_us,
        )
    }

    /// The raw fields of a message [`route_message`](Self::route_message) refused (a poison
    /// event), as [`raw_row`](Self::raw_row) gives them for a row; the whole content as the
    /// payload when it is not a JSON object.
    pub fn raw_message(&self, msg: &LogicalMessage) -> RawRow {
        message::raw_message(&self.options, msg)
    }

    /// Routes one row of `layout` with the options and converters.
    fn route_row(
        o: &RouterOptions,
        converters: &Converters,
        names: &mut EnvelopeNames,
        topics: &mut TopicCache,
        layout: &TableLayout,
        row: &TupleData,
        commit_time_us: i64,
    ) -> Result<Routed, RouteError> {
        let values = &row.0;
        let cell = |c: &Column| values.get(c.index).unwrap_or(&TupleValue::Null);
        let bad = |id: &str, problem: String| RouteError::BadRow {
            table: layout.table.clone(),
            id: id.to_string(),
            problem,
        };
        let text_of = |d: &Data| header_bytes(d).map(|b| String::from_utf8_lossy(&b).into_owned());

        let id_data =
            Data::new(
                layout.id.schema.clone(),
                layout.id.kind.decode(cell(&layout.id)).map_err(|e| {
                    bad("?", format!("event id column \"{}\": {e}", layout.id.name))
                })?,
            );
        let Some(id) = text_of(&id_data) else {
            return Err(bad(
                "NULL",
                format!(
                    "the event id column \"{}\" is NULL; every outbox row needs an id (table.field.event.id)",
                    o.id_field
                ),
            ));
        };
        let decode = |c: &Column| -> Result<Data, RouteError> {
            let value = c
                .kind
                .decode(cell(c))
                .map_err(|e| bad(&id, format!("column \"{}\": {e}", c.name)))?;
            Ok(Data::new(c.schema.clone(), value))
        };
        let mut warnings = Vec::new();
        let mut warn = |kind: &'static str, message: String| {
            warnings.push(RouteWarning {
                table: layout.table.clone(),
                id: id.clone(),
                kind,
                message,
            })
        };

        // Topic.
        let Some(route_value) = text_of(&decode(&layout.route_by)?) else {
            return Err(bad(
                &id,
                format!(
                    "the routing column \"{}\" (route.by.field) is NULL, so no topic can be chosen",
                    o.route_by_field
                ),
            ));
        };
        let topic = match topics.topic(o, &route_value) {
            Ok(topic) => topic,
            Err((topic, problem)) => {
                return Err(bad(
                    &id,
                    format!(
                        "topic {topic:?} built from {} = {route_value:?} is not a valid Kafka topic name: {problem}",
                        o.route_by_field
                    ),
                ))
            }
        };

        // Key and payload.
        let key = decode(&layout.key)?;
        let mut payload = decode(&layout.payload)?;
        if o.expand_json_payload {
            match &payload.value {
                Value::String(text) => {
                    match expand::expand(text, &o.payload_field, o.json_null_behavior) {
                        expand::Expansion::Expanded(data) => payload = data,
                        expand::Expansion::SchemaDropped(data, why) => {
                            warn("json_not_expanded", format!("payload not expanded: {why}"));
                            // With envelope placements the payload needs a schema: keep the text
                            // with the column's schema instead.
                            if !o.has_envelope() {
                                payload = data;
                            }
                        }
                        expand::Expansion::Kept(why) => warn(
                            "json_not_expanded",
                            format!("payload not expanded from JSON, published as the string it is: {why}"),
                        ),
                    }
                }
                Value::Null => {}
                _ => warn(
                    "json_not_expanded",
                    format!(
                        "payload not expanded from JSON: column \"{}\" is not text",
                        layout.payload.name
                    ),
                ),
            }
        }

        // Timestamp.
        let commit_ms = (commit_time_us + PG_EPOCH_UNIX_US).div_euclid(1000);
        let timestamp_ms = match &layout.timestamp {
            Some(c) => c
                .kind
                .event_timestamp_ms(cell(c))
                .map_err(|e| bad(&id, format!("event timestamp column \"{}\": {e}", c.name)))?
                .unwrap_or(commit_ms),
            None => commit_ms,
        };

        // Placements: headers, envelope fields, partition, in configuration order.
        let mut headers = vec![("id".to_string(), header_bytes(&id_data))];
        let mut partition = None;
        let mut envelope_fields = Vec::new();
        let mut envelope_values = Vec::new();
        for (p, c) in &layout.placements {
            let data = decode(c)?;
            match p.target {
                PlacementTarget::Header => headers.push((p.alias.clone(), header_bytes(&data))),
                PlacementTarget::Envelope => {
                    envelope_fields.push(Field {
                        name: p.alias.clone(),
                        schema: c.schema.clone(),
                    });
                    envelope_values.push(data.value);
                }
                PlacementTarget::Partition => {
                    partition = match data.value {
                        Value::Null => None,
                        Value::Int16(v) => Some(i32::from(v)),
                        Value::Int32(v) => Some(v),
                        Value::Int64(v) => Some(i32::try_from(v).map_err(|_| {
                            bad(&id, format!("partition column \"{}\" holds {v}, which is not a partition number", c.name))
                        })?),
                        _ => None,
                    };
                    if let Some(p) = partition.filter(|p| *p < 0) {
                        return Err(bad(
                            &id,
                            format!(
                                "partition column \"{}\" holds {p}, which is not a partition number",
                                c.name
                            ),
                        ));
                    }
                }
            }
        }

        // Trace context.
        if let Some(c) = &layout.tracing {
            if let Some(text) = text_of(&decode(c)?) {
                match span_context::trace_context(&text) {
                    Ok(Some(ctx)) => {
                        headers.push(("traceparent".into(), Some(Bytes::from(ctx.traceparent))));
                        if let Some(state) = ctx.tracestate {
                            headers.push(("tracestate".into(), Some(Bytes::from(state))));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => warn(
                        "trace_context_ignored",
                        format!("span context in column \"{}\" ignored: {e}", c.name),
                    ),
                }
            }
        }

        // Value: the payload, or the envelope struct around it.
        let is_empty = match &payload.value {
            Value::Null => true,
            Value::String(s) => java_trim(s).is_empty(),
            _ => false,
        };
        let envelope = if o.has_envelope() {
            let version = match &layout.schema_version {
                Some(c) => match decode(c)?.value {
                    Value::Int16(v) => Some(i32::from(v)),
                    Value::Int32(v) => Some(v),
                    Value::Int64(v) => Some(i32::try_from(v).map_err(|_| {
                        bad(
                            &id,
                            format!(
                                "schema version column \"{}\" holds {v}, beyond int32",
                                c.name
                            ),
                        )
                    })?),
                    _ => None,
                },
                None => None,
            };
            let payload_schema = payload
                .schema
                .clone()
                .unwrap_or_else(|| layout.payload.schema.clone());
            let fresh_name = format!("{}.{route_value}.Value", layout.debezium_schema_prefix);
            let name = if o.schema_version_field.is_some() {
                cached_name(&mut names.by_version, version, fresh_name)
            } else {
                cached_name(&mut names.by_payload, payload_schema.clone(), fresh_name)
            };
            let mut fields = vec![Field {
                name: "payload".into(),
                schema: payload_schema,
            }];
            fields.extend(envelope_fields);
            let mut values = vec![payload.value.clone()];
            values.extend(envelope_values);
            Some(Data::new(
                Schema {
                    kind: Type::Struct(fields),
                    optional: false,
                    name: Some(name),
                    version: if o.schema_version_field.is_some() {
                        version
                    } else {
                        None
                    },
                    doc: None,
                    parameters: Vec::new(),
                },
                Value::Struct(values),
            ))
        } else {
            None
        };
        let value = if is_empty && o.tombstone_on_empty_payload {
            Data::tombstone()
        } else {
            envelope.unwrap_or(payload)
        };

        let convert = |c: &Converter, data: &Data, what: &str| {
            c.convert(data).map_err(|e| {
                bad(
                    &id,
                    format!("the {what} cannot be written with {}: {e}", c.class_name()),
                )
            })
        };
        let record = OutboxRecord {
            key: convert(&converters.key, &key, "key")?,
            value: convert(&converters.value, &value, "value")?,
            topic,
            partition,
            headers,
            timestamp_ms,
        };
        Ok(Routed { record, warnings })
    }
}

/// The name cached for `key`, caching `fresh` when there is none (bounded like Debezium's cache).
fn cached_name<K: std::hash::Hash + Eq>(
    cache: &mut HashMap<K, String>,
    key: K,
    fresh: String,
) -> String {
    if cache.len() >= ENVELOPE_CACHE_LIMIT && !cache.contains_key(&key) {
        cache.clear();
    }
    cache.entry(key).or_insert(fresh).clone()
}

/// Java's `String.trim()`: strips characters up to U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Applies `route.topic.regex` / `route.topic.replacement` to the routing value.
fn route_topic(options: &RouterOptions, value: &str) -> String {
    match options.topic_regex.captures(value) {
        Some(caps) => expand_java_replacement(&options.topic_replacement, &caps),
        None => value.to_string(),
    }
}

/// Expands a Java `Matcher` replacement string: `${name}` and `$n` refer to groups, `\x` is a
/// literal `x`. (Rust's own `$name` syntax differs from Java's, so it is not used.)
fn expand_java_replacement(replacement: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(replacement.len() + 16);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(caps.name(&name).map_or("", |m| m.as_str()));
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                // Java takes as many digits as still name an existing group.
                let mut group = 0usize;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    let candidate = group * 10 + d as usize;
                    if group != 0 && candidate >= caps.len() {
                        break;
                    }
                    group = candidate;
                    chars.next();
                }
                out.push_str(caps.get(group).map_or("", |m| m.as_str()));
            }
            other => out.push(other),
        }
    }
    out
}

/// Every group the replacement names must exist in the regex.
fn check_replacement(regex: &Regex, replacement: &str) -> Result<(), String> {
    let mut rest = replacement;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{replacement:?} has an unclosed ${{"));
        };
        let name = &after[..end];
        if !regex.capture_names().flatten().any(|n| n == name) {
            return Err(format!(
                "{replacement:?} refers to group {name:?}, which route.topic.regex does not define"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Kafka's topic name rules: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("it is empty".into());
    }
    if topic == "." || topic == ".." {
        return Err("\".\" and \"..\" are reserved".into());
    }
    if topic.len() > 249 {
        return Err(format!("{} characters, Kafka allows 249", topic.len()));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {c:?} is not allowed (only letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{BINARY_DATA_CONVERTER, JSON_CONVERTER, STRING_CONVERTER};
    use crate::source::pgoutput::Column as PgColumn;

    fn relation(id: u32, namespace: &str, name: &str, cols: &[(&str, u32)]) -> Relation {
        Relation {
            id,
            namespace: namespace.into(),
            name: name.into(),
            replica_identity: b'd',
            columns: cols
                .iter()
                .enumerate()
                .map(|(i, (n, t))| PgColumn {
                    flags: u8::from(i == 0),
                    name: (*n).into(),
                    type_oid: *t,
                    type_modifier: -1,
                })
                .collect(),
        }
    }

    fn outbox_relation() -> Relation {
        relation(
            16384,
            "public",
            "outbox",
            &[
                ("id", oid::UUID),
                ("aggregatetype", oid::VARCHAR),
                ("aggregateid", oid::VARCHAR),
                ("type", oid::VARCHAR),
                ("payload", oid::JSONB),
            ],
        )
    }

    /// The golden files' `public.outbox` (debezium-golden/README.md).
    fn golden_relation() -> Relation {
        relation(
            7,
            "public",
            "outbox",
            &[
                ("id", oid::UUID),
                ("aggregatetype", oid::VARCHAR),
                ("aggregateid", oid::VARCHAR),
                ("type", oid::VARCHAR),
                ("payload", oid::JSONB),
                ("ts", oid::TIMESTAMPTZ),
                ("seq", oid::INT8),
                ("part", oid::INT4),
                ("version", oid::INT4),
                ("tracingspancontext", oid::VARCHAR),
                ("ts_local", oid::TIMESTAMP),
            ],
        )
    }

    fn golden_not_null() -> HashSet<String> {
        [
            "id",
            "aggregatetype",
            "aggregateid",
            "type",
            "ts",
            "seq",
            "part",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    const ORDER_PAYLOAD: &str =
        r#"{"id": 1, "note": "café \"q\"", "items": [{"qty": 2, "sku": "A"}]}"#;

    /// The three rows of the golden SQL, as pgoutput sends them (session time zone UTC).
    fn golden_rows() -> Vec<TupleData> {
        let t = |s: &str| text(s);
        vec![
            row(vec![
                t("11111111-1111-4111-8111-111111111111"),
                t("Order"),
                t("o-1"),
                t("OrderCreated"),
                t(ORDER_PAYLOAD),
                t("2026-11-21 10:00:00.123456+00"),
                t("1"),
                t("2"),
                t("3"),
                t("#comment\ntraceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"),
                t("2026-11-21 10:00:00.123456"),
            ]),
            row(vec![
                t("22222222-2222-4222-8222-222222222222"),
                t("Customer"),
                t("c-9"),
                t("CustomerMoved"),
                t("[1, 2, 3]"),
                t("2026-11-21 08:00:01+00"),
                t("2"),
                t("1"),
                TupleValue::Null,
                TupleValue::Null,
                t("2026-11-21 08:00:01"),
            ]),
            row(vec![
                t("33333333-3333-4333-8333-333333333333"),
                t("Order"),
                t("o-1"),
                t("OrderDeleted"),
                TupleValue::Null,
                t("2026-11-21 10:00:02+00"),
                t("3"),
                t("0"),
                TupleValue::Null,
                TupleValue::Null,
                t("2026-11-21 10:00:02"),
            ]),
        ]
    }

    fn opts(pairs: &[(&str, &str)]) -> RouterOptions {
        RouterOptions::from_map(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn converters(pairs: &[(&str, &str)]) -> Converters {
        Converters::from_map(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn golden_router(router: &[(&str, &str)], conv: &[(&str, &str)]) -> Router {
        let table = TableName::parse("public.outbox").unwrap();
        let mut r =
            Router::new(opts(router), vec![table.clone()]).with_converters(converters(conv));
        r.set_not_null_columns(table, golden_not_null());
        r.on_relation(&golden_relation()).unwrap();
        r
    }

    fn route_all(r: &mut Router) -> Vec<Routed> {
        golden_rows()
            .iter()
            .map(|row| r.route_insert(7, row, 0).unwrap().unwrap())
            .collect()
    }

    fn utf8(b: &Option<Bytes>) -> Option<&str> {
        b.as_deref().map(|b| std::str::from_utf8(b).unwrap())
    }

    fn text(s: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn row(values: Vec<TupleValue>) -> TupleData {
        TupleData(values)
    }

    fn default_router() -> Router {
        let mut r = Router::new(
            RouterOptions::default(),
            vec![TableName::parse("public.outbox").unwrap()],
        );
        r.on_relation(&outbox_relation()).unwrap();
        r
    }

    fn route(r: &mut Router, values: Vec<TupleValue>) -> Result<OutboxRecord, RouteError> {
        r.route_insert(16384, &row(values), 0)
            .map(|routed| routed.unwrap().record)
    }

    #[test]
    fn routes_with_debezium_defaults() {
        let mut r = default_router();
        let routed = r
            .route_insert(
                16384,
                &row(vec![
                    text("11111111-1111-4111-8111-111111111111"),
                    text("Order"),
                    text("o-1"),
                    text("OrderCreated"),
                    text(r#"{"id": 1}"#),
                ]),
                // 2026-11-21 10:00:00.123456 UTC in µs since 2000-01-01.
                848_570_400_123_456,
            )
            .unwrap()
            .unwrap();
        assert!(routed.warnings.is_empty());
        let rec = routed.record;
        assert_eq!(rec.topic, "outbox.event.Order");
        assert_eq!(rec.partition, None);
        assert_eq!(rec.key.as_deref(), Some(&b"o-1"[..]));
        assert_eq!(rec.value.as_deref(), Some(&br#"{"id": 1}"#[..]));
        assert_eq!(
            rec.headers,
            vec![(
                "id".to_string(),
                Some(Bytes::from_static(b"11111111-1111-4111-8111-111111111111"))
            )]
        );
        assert_eq!(rec.timestamp_ms, 1_795_255_200_123);
    }

    #[test]
    fn other_relations_are_not_routed() {
        let mut r = default_router();
        r.on_relation(&relation(1, "public", "orders", &[("id", oid::INT4)]))
            .unwrap();
        assert_eq!(r.route_insert(1, &row(vec![text("1")]), 0), Ok(None));
        assert_eq!(r.outbox_table(1), None);
        assert_eq!(r.outbox_table(16384), Some("public.outbox"));
    }

    #[test]
    fn null_payload_gives_a_null_value_and_null_key_no_key() {
        let mut r = default_router();
        let rec = route(
            &mut r,
            vec![
                text("id-1"),
                text("Order"),
                TupleValue::Null,
                text("t"),
                TupleValue::Null,
            ],
        )
        .unwrap();
        assert_eq!(rec.value, None);
        assert_eq!(rec.key, None);
    }

    #[test]
    fn null_id_or_route_value_is_an_error_naming_the_row() {
        let mut r = default_router();
        let err = route(
            &mut r,
            vec![
                text("id-7"),
                TupleValue::Null,
                text("k"),
                text("t"),
                text("{}"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("id-7") && err.contains("aggregatetype"),
            "{err}"
        );
        let err = route(
            &mut r,
            vec![
                TupleValue::Null,
                text("Order"),
                text("k"),
                text("t"),
                text("{}"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("public.outbox") && err.contains("\"id\""),
            "{err}"
        );
    }

    #[test]
    fn raw_rows_carry_the_cells_of_refused_rows() {
        let mut r = default_router();
        let values = vec![
            text("aaaaaaaa-0000-4000-8000-000000000001"),
            text("Bad Topic"),
            text("k-1"),
            text("E"),
            text("{\"a\": 1}"),
        ];
        assert!(route(&mut r, values.clone()).is_err());
        let raw = r.raw_row(16384, &row(values)).unwrap();
        assert_eq!(raw.table, "public.outbox");
        assert_eq!(utf8(&raw.id), Some("aaaaaaaa-0000-4000-8000-000000000001"));
        assert_eq!(utf8(&raw.key), Some("k-1"));
        assert_eq!(utf8(&raw.payload), Some("{\"a\": 1}"));
        assert_eq!(raw.topic.as_deref(), Some("outbox.event.Bad Topic"));
        let nulls = row(vec![TupleValue::Null; 5]);
        let raw = r.raw_row(16384, &nulls).unwrap();
        assert_eq!(
            (raw.id, raw.key, raw.payload, raw.topic),
            (None, None, None, None)
        );
        assert!(r.raw_row(1, &nulls).is_none(), "not an outbox table");
    }

    #[test]
    fn invalid_topic_names_are_refused() {
        let mut r = default_router();
        let err = route(
            &mut r,
            vec![
                text("id-8"),
                text("Order Lines"),
                text("k"),
                text("t"),
                text("{}"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("id-8") && err.contains("' '"), "{err}");
        assert!(check_topic_name(&"a".repeat(250)).is_err());
        assert!(check_topic_name("..").is_err());
        assert!(check_topic_name("outbox.event.Order_2-x").is_ok());
    }

    #[test]
    fn regex_routing_matches_debezium_golden_case_11() {
        let o = opts(&[
            ("route.by.field", "type"),
            ("route.topic.regex", "(?<routedByValue>[A-Z][a-z]+).*"),
            ("route.topic.replacement", "events.${routedByValue}"),
        ]);
        assert_eq!(route_topic(&o, "OrderCreated"), "events.Order");
        assert_eq!(route_topic(&o, "CustomerMoved"), "events.Customer");
        // Not matched in full: used as the topic unchanged, as RegexRouter does.
        assert_eq!(route_topic(&o, "lower"), "lower");
    }

    #[test]
    fn the_topic_cache_gives_what_route_topic_gives_and_stays_bounded() {
        let o = opts(&[
            ("route.by.field", "type"),
            ("route.topic.regex", "(?<routedByValue>[A-Z][a-z]+).*"),
            ("route.topic.replacement", "events.${routedByValue}"),
        ]);
        let mut cache = TopicCache::default();
        for value in [
            "OrderCreated",
            "CustomerMoved",
            "lower",
            "OrderCreated",
            "Order",
        ] {
            assert_eq!(cache.topic(&o, value), Ok(route_topic(&o, value)));
        }
        assert_eq!(cache.0.len(), 4);
        let (topic, problem) = cache.topic(&o, "bad/value").unwrap_err();
        assert_eq!(topic, "bad/value");
        assert!(problem.contains('/'), "{problem}");
        assert_eq!(cache.0.len(), 4, "invalid topics are not cached");
        for i in 0..TopicCache::MAX_ENTRIES + 10 {
            cache.topic(&o, &format!("v{i}")).unwrap();
        }
        assert!(cache.0.len() <= TopicCache::MAX_ENTRIES);
    }

    #[test]
    fn java_replacement_syntax() {
        let re = Regex::new("^(?:(?<a>x+)-(y+))$").unwrap();
        let caps = re.captures("xx-yyy").unwrap();
        assert_eq!(
            expand_java_replacement("${a}/$2/$0", &caps),
            "xx/yyy/xx-yyy"
        );
        assert_eq!(expand_java_replacement(r"\$1 $21", &caps), "$1 yyy1");
    }

    #[test]
    fn bad_options_are_named() {
        let bad = |k: &str, v: &str| {
            RouterOptions::from_map(&BTreeMap::from([(k.to_string(), v.to_string())]))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("route.topic.regex", "(").contains("route.topic.regex"));
        assert!(bad("route.topic.replacement", "t.${nope}").contains("nope"));
        assert!(bad("table.op.invalid.behavior", "ignore").contains("warn, error or fatal"));
        assert!(bad("route.by.feld", "x").contains("unknown option"));
        assert!(bad("table.expand.json.payload", "yes").contains("true or false"));
        assert!(bad("table.json.payload.null.behavior", "drop").contains("optional_bytes"));
        assert!(bad("table.field.additional.missing", "skip").contains("error or ignore"));
        assert!(bad("route.by.field", " ").contains("must not be empty"));
        let placement = |v: &str| bad("table.fields.additional.placement", v);
        assert!(placement("type").contains("column:placement"));
        assert!(placement("type:body").contains("unknown placement"));
        assert!(placement("type:envelope:payload").contains("payload"));
        assert!(placement("a:envelope:x,b:envelope:x").contains("\"x\""));
        let err = RouterOptions::from_map(&BTreeMap::from([
            (
                "table.field.additional.missing".to_string(),
                "ignore".to_string(),
            ),
            (
                "table.fields.additional.error.on.missing".to_string(),
                "true".to_string(),
            ),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("contradicts"), "{err}");
    }

    #[test]
    fn every_option_parses_with_debeziums_spellings() {
        let o = opts(&[
            ("table.field.event.timestamp", "ts"),
            ("table.field.event.schema.version", "version"),
            (
                "table.fields.additional.placement",
                "type:header:eventType, seq:ENVELOPE ,part:partition",
            ),
            ("table.fields.additional.error.on.missing", "false"),
            ("table.expand.json.payload", "TRUE"),
            ("table.json.payload.null.behavior", "optional_bytes"),
            ("table.op.invalid.behavior", "FATAL"),
            ("tracing.span.context.field", "tracingspancontext"),
            ("tracing.operation.name", "debezium-read"),
            ("tracing.with.context.field.only", "false"),
            ("table.field.event.type", "type"),
            ("topic.prefix", "golden"),
        ]);
        assert_eq!(
            o.placements,
            vec![
                Placement {
                    column: "type".into(),
                    target: PlacementTarget::Header,
                    alias: "eventType".into()
                },
                Placement {
                    column: "seq".into(),
                    target: PlacementTarget::Envelope,
                    alias: "seq".into()
                },
                Placement {
                    column: "part".into(),
                    target: PlacementTarget::Partition,
                    alias: "part".into()
                },
            ]
        );
        assert!(!o.error_on_missing_placement);
        assert!(o.expand_json_payload);
        assert_eq!(o.json_null_behavior, NullBehavior::OptionalBytes);
        assert_eq!(o.op_invalid_behavior, InvalidOpBehavior::Fatal);
        assert_eq!(
            o.required_columns(),
            vec![
                "id",
                "aggregateid",
                "payload",
                "aggregatetype",
                "ts",
                "tracingspancontext",
                "version"
            ]
        );
        let defaults = RouterOptions::default();
        assert!(defaults.error_on_missing_placement);
        assert_eq!(defaults.tracing_field, None);
        assert!(!defaults.expand_json_payload);
    }

    #[test]
    fn envelope_with_json_schemas_needs_the_topic_prefix() {
        let json = converters(&[("value.converter", JSON_CONVERTER)]);
        let o = opts(&[("table.fields.additional.placement", "type:envelope")]);
        let err = o.check_converters(&json).unwrap_err().to_string();
        assert!(err.contains("topic.prefix"), "{err}");
        assert!(o.check_converters(&Converters::default()).is_ok());
        let o = opts(&[
            ("table.fields.additional.placement", "type:envelope"),
            ("topic.prefix", "app"),
        ]);
        assert!(o.check_converters(&json).is_ok());
    }

    #[test]
    fn missing_columns_name_the_option_that_fixes_them() {
        let mut r = Router::new(
            RouterOptions::default(),
            vec![TableName::parse("public.outbox").unwrap()],
        );
        let err = r
            .on_relation(&relation(
                5,
                "public",
                "outbox",
                &[("id", oid::UUID), ("aggregateid", 25), ("payload", 25)],
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aggregatetype") && err.contains("route.by.field"),
            "{err}"
        );
        let table = TableName::parse("public.outbox").unwrap();
        let mut r = Router::new(
            opts(&[("table.fields.additional.placement", "nope:header")]),
            vec![table.clone()],
        );
        let err = r.on_relation(&golden_relation()).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("table.fields.additional.placement"),
            "{err}"
        );
        // With ignore, a missing placed column is left out.
        let mut r = Router::new(
            opts(&[
                (
                    "table.fields.additional.placement",
                    "nope:header,type:header",
                ),
                ("table.field.additional.missing", "ignore"),
            ]),
            vec![table],
        );
        r.on_relation(&golden_relation()).unwrap();
        let rec = &route_all(&mut r)[0].record;
        assert_eq!(rec.headers[1].0, "type");
    }

    #[test]
    fn column_types_the_options_cannot_use_are_refused_up_front() {
        let table = TableName::parse("public.outbox").unwrap();
        for (router, conv, needle) in [
            (
                vec![("table.field.event.timestamp", "type")],
                vec![],
                "timestamptz, timestamp or bigint",
            ),
            (
                vec![("table.fields.additional.placement", "type:partition")],
                vec![],
                "integer",
            ),
            (
                vec![],
                vec![(
                    "key.converter",
                    "org.apache.kafka.connect.converters.ByteArrayConverter",
                )],
                "ByteArrayConverter",
            ),
            (
                vec![],
                vec![("value.converter", BINARY_DATA_CONVERTER)],
                "delegate",
            ),
        ] {
            let mut r =
                Router::new(opts(&router), vec![table.clone()]).with_converters(converters(&conv));
            let err = r.on_relation(&golden_relation()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        // StringConverter cannot carry bytea.
        let mut r = Router::new(RouterOptions::default(), vec![table])
            .with_converters(converters(&[("value.converter", STRING_CONVERTER)]));
        let err = r
            .on_relation(&relation(
                3,
                "public",
                "outbox",
                &[
                    ("id", oid::UUID),
                    ("aggregatetype", 25),
                    ("aggregateid", 25),
                    ("payload", oid::BYTEA),
                ],
            ))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bytea"), "{err}");
    }

    #[test]
    fn bytea_payloads_are_raw_bytes() {
        let mut r = Router::new(
            RouterOptions::default(),
            vec![TableName::parse("public.binbox").unwrap()],
        );
        r.on_relation(&relation(
            9,
            "public",
            "binbox",
            &[
                ("id", oid::UUID),
                ("aggregatetype", 25),
                ("aggregateid", 25),
                ("payload", oid::BYTEA),
            ],
        ))
        .unwrap();
        let rec = r
            .route_insert(
                9,
                &row(vec![
                    text("44444444-4444-4444-8444-444444444444"),
                    text("Blob"),
                    text("b-1"),
                    text(r"\x000000002a0102ff00"),
                ]),
                0,
            )
            .unwrap()
            .unwrap()
            .record;
        assert_eq!(
            rec.value.as_deref(),
            Some(&[0, 0, 0, 0, 0x2a, 1, 2, 0xff, 0][..])
        );
        let err = r
            .route_insert(
                9,
                &row(vec![text("x"), text("Blob"), text("b"), text(r"\xzz")]),
                0,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("payload") && err.contains("non-hex"), "{err}");
    }

    #[test]
    fn blank_payloads_become_tombstones_when_asked_as_in_debezium() {
        let mut r = Router::new(
            opts(&[("route.tombstone.on.empty.payload", "true")]),
            vec![TableName::parse("public.outbox").unwrap()],
        )
        .with_converters(converters(&[
            ("value.converter", JSON_CONVERTER),
            ("value.converter.schemas.enable", "false"),
        ]));
        r.on_relation(&relation(
            9,
            "public",
            "outbox",
            &[
                ("id", 25),
                ("aggregatetype", 25),
                ("aggregateid", 25),
                ("payload", 25),
            ],
        ))
        .unwrap();
        let mut value = |p: TupleValue| {
            r.route_insert(9, &row(vec![text("1"), text("A"), text("k"), p]), 0)
                .unwrap()
                .unwrap()
                .record
                .value
        };
        assert_eq!(value(text("")), None);
        assert_eq!(value(text(" \n\t")), None);
        assert_eq!(value(TupleValue::Null), None);
        assert_eq!(value(text(" x ")).as_deref(), Some(&b"\" x \""[..]));
    }

    #[test]
    fn golden_case_06_header_placements() {
        let mut r = golden_router(
            &[(
                "table.fields.additional.placement",
                "type:header:eventType,ts:header,seq:header:seq,version:header",
            )],
            &[],
        );
        let routed = route_all(&mut r);
        let headers = |i: usize| -> Vec<(String, Option<String>)> {
            routed[i]
                .record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), utf8(v).map(str::to_string)))
                .collect()
        };
        let h = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            headers(0),
            vec![
                h("id", Some("11111111-1111-4111-8111-111111111111")),
                h("eventType", Some("OrderCreated")),
                h("ts", Some("2026-11-21T10:00:00.123456Z")),
                h("seq", Some("1")),
                h("version", Some("3")),
            ]
        );
        assert_eq!(headers(1)[2], h("ts", Some("2026-11-21T08:00:01.000000Z")));
        assert_eq!(headers(1)[4], h("version", None));
        // No traceparent: tracing.span.context.field is not set.
        assert_eq!(headers(0).len(), 5);
    }

    #[test]
    fn golden_case_07_envelope_schema_names_are_cached_per_version_as_debezium_does() {
        let mut r = golden_router(
            &[
                (
                    "table.fields.additional.placement",
                    "type:envelope:eventType,seq:envelope",
                ),
                ("table.field.event.schema.version", "version"),
                ("topic.prefix", "golden"),
            ],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        let routed = route_all(&mut r);
        let fields = r#"{"type":"struct","fields":[{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"payload"},{"type":"string","optional":false,"field":"eventType"},{"type":"int64","optional":false,"field":"seq"}],"optional":false"#;
        assert_eq!(
            utf8(&routed[0].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Order.Value","version":3}},"payload":{{"payload":"{{\"id\": 1, \"note\": \"café \\\"q\\\"\", \"items\": [{{\"qty\": 2, \"sku\": \"A\"}}]}}","eventType":"OrderCreated","seq":1}}}}"#
            )
        );
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Customer.Value"}},"payload":{{"payload":"[1, 2, 3]","eventType":"CustomerMoved","seq":2}}}}"#
            )
        );
        // Version NULL again: Debezium reuses the schema it built for the Customer row.
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Customer.Value"}},"payload":{{"payload":null,"eventType":"OrderDeleted","seq":3}}}}"#
            )
        );
        assert_eq!(
            utf8(&routed[0].record.key).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"o-1"}"#
        );
    }

    #[test]
    fn golden_case_08_envelope_without_schemas() {
        let mut r = golden_router(
            &[(
                "table.fields.additional.placement",
                "type:envelope:eventType,ts:envelope",
            )],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
                ("key.converter.schemas.enable", "false"),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        let routed = route_all(&mut r);
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            r#"{"payload":"[1, 2, 3]","eventType":"CustomerMoved","ts":"2026-11-21T08:00:01.000000Z"}"#
        );
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            r#"{"payload":null,"eventType":"OrderDeleted","ts":"2026-11-21T10:00:02.000000Z"}"#
        );
        assert_eq!(utf8(&routed[2].record.key).unwrap(), r#""o-1""#);
    }

    #[test]
    fn golden_case_09_partition_and_timestamp() {
        let mut r = golden_router(
            &[
                ("table.fields.additional.placement", "part:partition"),
                ("table.field.event.timestamp", "ts_local"),
            ],
            &[],
        );
        let got: Vec<(Option<i32>, i64)> = route_all(&mut r)
            .iter()
            .map(|x| (x.record.partition, x.record.timestamp_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(2), 1_795_255_200_123),
                (Some(1), 1_795_248_001_000),
                (Some(0), 1_795_255_202_000)
            ]
        );
        // Where Debezium dies (timestamptz), outboxd takes the instant.
        let mut r = golden_router(&[("table.field.event.timestamp", "ts")], &[]);
        let got: Vec<i64> = route_all(&mut r)
            .iter()
            .map(|x| x.record.timestamp_ms)
            .collect();
        assert_eq!(
            got,
            vec![1_795_255_200_123, 1_795_248_001_000, 1_795_255_202_000]
        );
    }

    #[test]
    fn golden_cases_04_05_expanded_payloads_and_top_level_arrays() {
        let mut r = golden_router(
            &[("table.expand.json.payload", "true")],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        let routed = route_all(&mut r);
        assert!(utf8(&routed[0].record.value).unwrap().starts_with(
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"id"}"#
        ));
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            r#"{"schema":{"type":"array","items":{"type":"int32","optional":true},"optional":true},"payload":[1,2,3]}"#
        );
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            r#"{"schema":{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1},"payload":null}"#
        );
        assert!(routed.iter().all(|x| x.warnings.is_empty()));
        let mut r = golden_router(
            &[("table.expand.json.payload", "true")],
            &[
                ("value.converter", JSON_CONVERTER),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        let routed = route_all(&mut r);
        assert_eq!(
            utf8(&routed[0].record.value).unwrap(),
            r#"{"id":1,"note":"café \"q\"","items":[{"qty":2,"sku":"A"}]}"#
        );
        assert_eq!(utf8(&routed[1].record.value).unwrap(), "[1,2,3]");
        assert_eq!(utf8(&routed[2].record.value).unwrap(), "null");
    }

    #[test]
    fn golden_cases_14_15_integer_keys_and_text_payloads() {
        let table = TableName::parse("public.textbox").unwrap();
        let textbox = Relation {
            columns: relation(
                4,
                "public",
                "textbox",
                &[
                    ("id", oid::INT8),
                    ("aggregatetype", oid::TEXT),
                    ("aggregateid", oid::INT4),
                    ("type", oid::TEXT),
                    ("payload", oid::TEXT),
                ],
            )
            .columns,
            ..relation(4, "public", "textbox", &[])
        };
        let not_null: HashSet<String> = ["id", "aggregatetype", "aggregateid", "type"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows = [
            row(vec![
                text("1"),
                text("Text"),
                text("42"),
                text("Plain"),
                text(r#"{"a":1}"#),
            ]),
            row(vec![
                text("2"),
                text("Text"),
                text("43"),
                text("NotJson"),
                text("hello world"),
            ]),
        ];
        let run = |router: &[(&str, &str)], conv: &[(&str, &str)]| -> Vec<Routed> {
            let mut r =
                Router::new(opts(router), vec![table.clone()]).with_converters(converters(conv));
            r.set_not_null_columns(table.clone(), not_null.clone());
            r.on_relation(&textbox).unwrap();
            rows.iter()
                .map(|row| r.route_insert(4, row, 0).unwrap().unwrap())
                .collect()
        };
        let with_schemas = run(
            &[],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        assert_eq!(
            utf8(&with_schemas[0].record.key).unwrap(),
            r#"{"schema":{"type":"int32","optional":false},"payload":42}"#
        );
        assert_eq!(
            utf8(&with_schemas[1].record.value).unwrap(),
            r#"{"schema":{"type":"string","optional":true},"payload":"hello world"}"#
        );
        assert_eq!(utf8(&with_schemas[0].record.headers[0].1), Some("1"));
        let expanded = run(
            &[("table.expand.json.payload", "true")],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
                ("key.converter.schemas.enable", "false"),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        assert_eq!(utf8(&expanded[0].record.key).unwrap(), "42");
        assert_eq!(utf8(&expanded[0].record.value).unwrap(), r#"{"a":1}"#);
        assert_eq!(utf8(&expanded[1].record.value).unwrap(), r#""hello world""#);
        // Not JSON: published unchanged, and the pipeline is told.
        assert_eq!(expanded[1].warnings.len(), 1);
        assert_eq!(expanded[1].warnings[0].kind, "json_not_expanded");
        assert!(expanded[1].warnings[0].to_string().contains("id 2"));
    }

    #[test]
    fn span_context_becomes_w3c_headers_when_configured() {
        let mut r = golden_router(&[("tracing.span.context.field", "tracingspancontext")], &[]);
        let routed = route_all(&mut r);
        assert_eq!(
            routed[0].record.headers[1],
            (
                "traceparent".to_string(),
                Some(Bytes::from_static(
                    b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                ))
            )
        );
        assert_eq!(routed[1].record.headers.len(), 1);
        let mut rows = golden_rows();
        rows[0].0[9] = text("traceparent=garbage");
        let routed = r.route_insert(7, &rows[0], 0).unwrap().unwrap();
        assert_eq!(routed.record.headers.len(), 1);
        assert_eq!(routed.warnings[0].kind, "trace_context_ignored");
    }

    #[test]
    fn converters_shape_key_value_and_headers() {
        let mut r = golden_router(
            &[],
            &[
                ("key.converter", STRING_CONVERTER),
                ("value.converter", BINARY_DATA_CONVERTER),
                ("value.converter.delegate.converter.type", JSON_CONVERTER),
                (
                    "value.converter.delegate.converter.type.schemas.enable",
                    "false",
                ),
            ],
        );
        let routed = route_all(&mut r);
        assert_eq!(utf8(&routed[0].record.key), Some("o-1"));
        assert_eq!(utf8(&routed[1].record.value), Some(r#""[1, 2, 3]""#));
        assert_eq!(utf8(&routed[2].record.value), Some("null"));
    }
}
