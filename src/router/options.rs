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
use crate::convert::Converters;

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
