//! `[router]`: the EventRouter options with Debezium's names and defaults, validated into
//! [`RouterOptions`] before any row is seen (unknown keys, bad regexes, placements, and option
//! combinations the converters cannot carry are errors naming the option).
//!
//! Owns parsing and checking the options. It must not look at a table or a row (that is
//! `layout` and `route`).

use std::collections::{BTreeMap, HashSet};

use regex::Regex;

use super::expand::NullBehavior;
use super::topic::check_replacement;
use crate::convert::{
    Converter, Converters, HeaderConverter, CLOUD_EVENTS_CONVERTER, JSON_CONVERTER,
};

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

/// Where an additional column goes (`table.fields.additional.placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementTarget {
    Header,
    Envelope,
    Partition,
}

/// A field of Debezium's change event that a `HeaderFrom$Value` transform before the EventRouter
/// copies into a header (`header.from.fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeField {
    /// The source block (`io.debezium.connector.postgresql.Source`).
    Source,
    /// The operation, `c` for an insert.
    Op,
    /// The transaction block (null: outboxd, like Debezium without
    /// `provide.transaction.metadata`, writes none).
    Transaction,
}

/// The CloudEvents binary content mode's attributes (`cloudevents.*`, see [`crate::router`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryCloudEvents {
    /// `ce_source`, a URI-reference.
    pub source: String,
    /// The columns of `ce_id`, `ce_type` and (optional) `ce_subject`.
    pub id_field: String,
    pub type_field: String,
    pub subject_field: Option<String>,
    /// The `content-type` header (the event data's media type).
    pub content_type: String,
}

/// The Debezium version the emulated source block names (`debezium.source.version`'s default).
pub const DEBEZIUM_VERSION: &str = "3.6.1.Final";

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
    /// The Debezium connector's `topic.prefix`, for the name of the envelope value schema (and
    /// the source block's `name`).
    pub topic_prefix: Option<String>,
    /// `table.field.event.type`: the event type column (`ce_type`'s default column).
    pub type_field: String,
    /// `header.from.fields` / `header.from.headers`: change event fields copied into headers, with
    /// the header names, in order.
    pub header_from: Vec<(EnvelopeField, String)>,
    /// `debezium.source.db`: the source block's `db` (the connector's `database.dbname`).
    pub source_db: Option<String>,
    /// `debezium.source.version`: the source block's `version`.
    pub source_version: String,
    /// `cloudevents.mode = binary`: the CloudEvents attributes as `ce_*` headers.
    pub cloudevents: Option<BinaryCloudEvents>,
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
    "table.field.event.type",
    "header.from.fields",
    "header.from.headers",
    "debezium.source.db",
    "debezium.source.version",
    "cloudevents.mode",
    "cloudevents.source",
    "cloudevents.id.field",
    "cloudevents.type.field",
    "cloudevents.subject.field",
    "cloudevents.datacontenttype",
];

/// Options that change nothing in outboxd's output and are accepted for compatibility: outboxd
/// creates no tracing spans.
const ACCEPTED_NO_EFFECT: &[&str] = &["tracing.operation.name", "tracing.with.context.field.only"];

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
        let header_from = parse_header_from(
            optional("header.from.fields")?.as_deref(),
            optional("header.from.headers")?.as_deref(),
        )
        .map_err(|(key, m)| err(key, m))?;
        let topic_prefix = optional("topic.prefix")?;
        let id_field = get("table.field.event.id", "id")?;
        let type_field = get("table.field.event.type", "type")?;
        let cloudevents = match get("cloudevents.mode", "none")?.to_ascii_lowercase().as_str() {
            "none" => {
                if let Some(k) = map.keys().find(|k| k.starts_with("cloudevents.") && *k != "cloudevents.mode") {
                    return Err(err(k, "a CloudEvents binary mode option, and cloudevents.mode is none; set cloudevents.mode = \"binary\" or remove it".into()));
                }
                None
            }
            "binary" => {
                let source = match (optional("cloudevents.source")?, &topic_prefix) {
                    (Some(s), _) => s,
                    (None, Some(p)) => format!("/debezium/postgresql/{p}"),
                    (None, None) => return Err(err("cloudevents.source", "is required in binary mode without a topic.prefix (the default is /debezium/postgresql/<topic.prefix>, the source Debezium's CloudEventsConverter writes); set it to a URI-reference naming this producer, e.g. /outboxd/orders".into())),
                };
                if source.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(err("cloudevents.source", format!("{source:?} is not a URI-reference (no spaces or control characters); percent-encode them")));
                }
                let content_type = get("cloudevents.datacontenttype", "application/json")?;
                if !content_type.contains('/') || content_type.chars().any(char::is_control) {
                    return Err(err("cloudevents.datacontenttype", format!("{content_type:?} is not a media type such as application/json")));
                }
                Some(BinaryCloudEvents {
                    source,
                    id_field: get("cloudevents.id.field", &id_field)?,
                    type_field: get("cloudevents.type.field", &type_field)?,
                    subject_field: optional("cloudevents.subject.field")?,
                    content_type,
                })
            }
            other => {
                return Err(err(
                    "cloudevents.mode",
                    format!("{other:?}: expected none or binary (the structured mode is value.converter = {CLOUD_EVENTS_CONVERTER} in [converters])"),
                ))
            }
        };
        let source_db = optional("debezium.source.db")?;
        if header_from.iter().any(|(f, _)| *f == EnvelopeField::Source) {
            if topic_prefix.is_none() {
                return Err(err("topic.prefix", "header.from.fields copies the source block, whose name is the connector's topic.prefix; set topic.prefix".into()));
            }
            if source_db.is_none() {
                return Err(err("debezium.source.db", "header.from.fields copies the source block, whose db is the database's name; set debezium.source.db to the connector's database.dbname".into()));
            }
        }
        let options = RouterOptions {
            id_field,
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
            topic_prefix,
            type_field,
            header_from,
            source_db,
            source_version: get("debezium.source.version", DEBEZIUM_VERSION)?,
            cloudevents,
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
        let err = |key: &str, message: String| RouterConfigError {
            key: key.into(),
            message,
        };
        if let Converter::CloudEvents(ce) = &converters.value {
            if self.cloudevents.is_some() {
                return Err(err("cloudevents.mode", format!("binary mode writes the payload as the value, and value.converter is {CLOUD_EVENTS_CONVERTER} (the structured mode); keep one of them")));
            }
            let header = |field: EnvelopeField| {
                self.header_from
                    .iter()
                    .find(|(f, _)| *f == field)
                    .map(|(_, h)| h.as_str())
            };
            if header(EnvelopeField::Source) != Some("source")
                || header(EnvelopeField::Op) != Some("op")
            {
                return Err(err("header.from.fields", format!("{CLOUD_EVENTS_CONVERTER} with metadata.source=header reads the headers source and op, and writes a null value for every record without them; copy them with header.from.fields = \"source,op,transaction\" (a HeaderFrom$Value transform before the EventRouter, in a connector)")));
            }
            if converters.header
                != (HeaderConverter::Json {
                    schemas_enable: true,
                })
            {
                return Err(err("header.converter", format!("{CLOUD_EVENTS_CONVERTER} decodes the source header with a JsonConverter with schemas, so Debezium's documented setup writes headers with header.converter = {JSON_CONVERTER} and header.converter.schemas.enable = true; set both in [converters]")));
            }
            if ce.event_type == crate::convert::cloudevents::MetadataSource::Header
                && !self
                    .placements
                    .iter()
                    .any(|p| p.target == PlacementTarget::Header && p.alias == "type")
            {
                return Err(err("table.fields.additional.placement", format!("{CLOUD_EVENTS_CONVERTER} takes the event type from a header named type (metadata.source type:header), and no placement writes one: add {}:header:type (or {}:header), or set metadata.source type:generate", self.type_field, self.type_field)));
            }
        }
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
        if let Some(ce) = &self.cloudevents {
            cols.push(ce.id_field.clone());
            cols.push(ce.type_field.clone());
            cols.extend(ce.subject_field.clone());
        }
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

/// `header.from.fields` (`source`, `op`, `transaction`; comma-separated) and
/// `header.from.headers` (the header names, as many; default: the field names), as
/// `HeaderFrom$Value`'s `fields` and `headers`.
fn parse_header_from(
    fields: Option<&str>,
    headers: Option<&str>,
) -> Result<Vec<(EnvelopeField, String)>, (&'static str, String)> {
    let list = |s: &str| -> Vec<String> { s.split(',').map(|p| p.trim().to_string()).collect() };
    let Some(fields) = fields else {
        return match headers {
            Some(_) => Err((
                "header.from.headers",
                "names the headers of header.from.fields, which is not set; set both or neither"
                    .into(),
            )),
            None => Ok(Vec::new()),
        };
    };
    let fields = list(fields);
    let headers = headers.map(list).unwrap_or_else(|| fields.clone());
    if headers.len() != fields.len() || headers.iter().any(String::is_empty) {
        return Err(("header.from.headers", format!("{} header names for {} fields: give one per field of header.from.fields, in order (as HeaderFrom's headers does)", headers.len(), fields.len())));
    }
    let mut out: Vec<(EnvelopeField, String)> = Vec::new();
    for (f, h) in fields.iter().zip(headers) {
        let field = match f.as_str() {
            "source" => EnvelopeField::Source,
            "op" => EnvelopeField::Op,
            "transaction" => EnvelopeField::Transaction,
            other => return Err(("header.from.fields", format!("{other:?}: outboxd copies the change event fields source, op and transaction into headers; the others (before, after, ts_ms…) are not supported"))),
        };
        if out.iter().any(|(g, _)| *g == field) {
            return Err(("header.from.fields", format!("{f:?} is listed twice")));
        }
        out.push((field, h));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::testing::*;

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
}
