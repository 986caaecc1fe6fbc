//! The outbox router: turns an inserted outbox row into a Kafka record, with the rules and option
//! names of Debezium's `io.debezium.transforms.outbox.EventRouter`.
//!
//! - topic: the `route.by.field` column (default `aggregatetype`) is matched in full against
//!   `route.topic.regex` (default `(?<routedByValue>.*)`) and expanded into
//!   `route.topic.replacement` (default `outbox.event.${routedByValue}`); a value the regex does not
//!   match is used as the topic as it is, as Kafka Connect's `RegexRouter` does;
//! - key: the `table.field.event.key` column (default `aggregateid`) as text, or no key when NULL;
//! - header `id`: the `table.field.event.id` column (default `id`) as text;
//! - value: the `table.field.event.payload` column (default `payload`): the text of jsonb, json,
//!   text and varchar columns, the raw bytes of bytea; NULL gives a record with a null value;
//! - timestamp: the transaction's commit time.
//!
//! The router is pure: it sees decoded pgoutput messages and returns records or errors; logging and
//! metrics for skipped rows are the pipeline's job.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use regex::Regex;

use crate::config::TableName;
use crate::source::pgoutput::{Relation, TupleData, TupleValue};

/// Postgres type OIDs the router treats specially.
mod oid {
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Microseconds between the Unix epoch and Postgres' epoch (2000-01-01 UTC).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A record ready for the Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub topic: String,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl OutboxRecord {
    /// Bytes this record holds in memory (what the in-flight byte cap counts).
    pub fn size(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.topic.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers) as u64
    }
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
    #[error("outbox row in {table} (id {id}): {problem}")]
    BadRow {
        table: String,
        id: String,
        problem: String,
    },
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
}

/// EventRouter options outboxd knows but does not implement yet: refused rather than ignored, since
/// ignoring them would change the bytes consumers receive.
const NOT_YET_SUPPORTED: &[&str] = &[
    "table.field.event.timestamp",
    "table.field.event.schema.version",
    "table.fields.additional.placement",
    "table.field.additional.missing",
    "table.fields.additional.error.on.missing",
    "table.expand.json.payload",
    "table.json.payload.null.behavior",
    "tracing.span.context.field",
    "tracing.with.context.field.only",
    "tracing.operation.name",
];

/// Options that change nothing in outboxd's output and are accepted for compatibility.
const ACCEPTED_NO_EFFECT: &[&str] = &["table.field.event.type"];

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
        let get = |key: &str, default: &str| -> Result<String, RouterConfigError> {
            match map.get(key) {
                Some(v) if v.trim().is_empty() => Err(err(key, "must not be empty".into())),
                Some(v) => Ok(v.trim().to_string()),
                None => Ok(default.to_string()),
            }
        };
        for key in map.keys() {
            if NOT_YET_SUPPORTED.contains(&key.as_str()) {
                return Err(err(key, "is a Debezium EventRouter option this version of outboxd does not support yet; remove it (outboxd will not silently produce different records)".into()));
            }
            let known = [
                "table.field.event.id",
                "table.field.event.key",
                "table.field.event.payload",
                "route.by.field",
                "route.topic.regex",
                "route.topic.replacement",
                "route.tombstone.on.empty.payload",
                "table.op.invalid.behavior",
            ];
            if !known.contains(&key.as_str()) && !ACCEPTED_NO_EFFECT.contains(&key.as_str()) {
                return Err(err(
                    key,
                    format!(
                        "unknown option; known options: {}",
                        known
                            .iter()
                            .chain(ACCEPTED_NO_EFFECT)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let regex_text = get("route.topic.regex", "(?<routedByValue>.*)")?;
        // Java's Matcher.matches(): the whole value must match.
        let topic_regex = Regex::new(&format!("^(?:{regex_text})$")).map_err(|e| {
            err(
                "route.topic.regex",
                format!("{regex_text:?} is not a valid regular expression: {e}"),
            )
        })?;
        let tombstone = get("route.tombstone.on.empty.payload", "false")?;
        let tombstone_on_empty_payload = match tombstone.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(err(
                    "route.tombstone.on.empty.payload",
                    format!("{other:?}: expected true or false"),
                ))
            }
        };
        let op_invalid_behavior = match get("table.op.invalid.behavior", "warn")?.as_str() {
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
        let options = RouterOptions {
            id_field: get("table.field.event.id", "id")?,
            key_field: get("table.field.event.key", "aggregateid")?,
            payload_field: get("table.field.event.payload", "payload")?,
            route_by_field: get("route.by.field", "aggregatetype")?,
            topic_regex,
            topic_replacement: get("route.topic.replacement", "outbox.event.${routedByValue}")?,
            tombstone_on_empty_payload,
            op_invalid_behavior,
        };
        check_replacement(&options.topic_regex, &options.topic_replacement)
            .map_err(|m| err("route.topic.replacement", m))?;
        Ok(options)
    }
}

/// Where the router's columns sit in one outbox table's rows.
#[derive(Debug, Clone)]
struct TableLayout {
    table: String,
    id: Column,
    key: Column,
    payload: Column,
    route_by: Column,
}

#[derive(Debug, Clone, Copy)]
struct Column {
    index: usize,
    type_oid: u32,
}

/// Routes rows of the configured outbox tables; other relations are not its business.
#[derive(Debug)]
pub struct Router {
    options: RouterOptions,
    tables: Vec<TableName>,
    /// Layouts of the outbox tables by pgoutput relation id, from Relation messages.
    layouts: HashMap<u32, TableLayout>,
}

impl Router {
    pub fn new(options: RouterOptions, tables: Vec<TableName>) -> Self {
        Router {
            options,
            tables,
            layouts: HashMap::new(),
        }
    }

    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    /// Learns a relation (pgoutput `Relation`, sent before the first change of a table and again
    /// after its schema changes). Errors when an outbox table lacks a column the router needs.
    pub fn on_relation(&mut self, relation: &Relation) -> Result<(), RouteError> {
        let is_outbox = self
            .tables
            .iter()
            .any(|t| t.schema == relation.namespace && t.name == relation.name);
        if !is_outbox {
            self.layouts.remove(&relation.id);
            return Ok(());
        }
        let table = format!("{}.{}", relation.namespace, relation.name);
        let column = |name: &str, option: &'static str| -> Result<Column, RouteError> {
            let index = relation
                .columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| RouteError::MissingColumn {
                    table: table.clone(),
                    column: name.to_string(),
                    option,
                })?;
            Ok(Column {
                index,
                type_oid: relation.columns[index].type_oid,
            })
        };
        let o = &self.options;
        let layout = TableLayout {
            id: column(&o.id_field, "table.field.event.id")?,
            key: column(&o.key_field, "table.field.event.key")?,
            payload: column(&o.payload_field, "table.field.event.payload")?,
            route_by: column(&o.route_by_field, "route.by.field")?,
            table,
        };
        self.layouts.insert(relation.id, layout);
        Ok(())
    }

    /// The `schema.table` name of an outbox relation, or `None` for any other relation.
    pub fn outbox_table(&self, relation_id: u32) -> Option<&str> {
        self.layouts.get(&relation_id).map(|l| l.table.as_str())
    }

    /// Routes an inserted row. `Ok(None)`: the relation is not an outbox table.
    pub fn route_insert(
        &self,
        relation_id: u32,
        row: &TupleData,
        commit_time_us: i64,
    ) -> Result<Option<OutboxRecord>, RouteError> {
        let Some(layout) = self.layouts.get(&relation_id) else {
            return Ok(None);
        };
        let values = &row.0;
        let cell = |c: Column| values.get(c.index).unwrap_or(&TupleValue::Null);
        let bad = |id: &str, problem: String| RouteError::BadRow {
            table: layout.table.clone(),
            id: id.to_string(),
            problem,
        };

        let id = match as_text(cell(layout.id), layout.id.type_oid) {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(bad(
                    "NULL",
                    format!(
                        "the event id column \"{}\" is NULL; every outbox row needs an id (table.field.event.id)",
                        self.options.id_field
                    ),
                ))
            }
            Err(e) => return Err(bad("?", format!("event id column: {e}"))),
        };
        let route_value = match as_text(cell(layout.route_by), layout.route_by.type_oid) {
            Ok(Some(v)) => v,
            Ok(None) => {
                return Err(bad(
                    &id,
                    format!(
                    "the routing column \"{}\" (route.by.field) is NULL, so no topic can be chosen",
                    self.options.route_by_field
                ),
                ))
            }
            Err(e) => return Err(bad(&id, format!("routing column: {e}"))),
        };
        let topic = route_topic(&self.options, &route_value);
        if let Err(problem) = check_topic_name(&topic) {
            return Err(bad(
                &id,
                format!(
                    "topic {topic:?} built from {} = {route_value:?} is not a valid Kafka topic name: {problem}",
                    self.options.route_by_field
                ),
            ));
        }
        let key = as_text(cell(layout.key), layout.key.type_oid)
            .map_err(|e| bad(&id, format!("key column: {e}")))?
            .map(Bytes::from);
        let mut value = as_payload(cell(layout.payload), layout.payload.type_oid)
            .map_err(|e| bad(&id, format!("payload column: {e}")))?;
        if self.options.tombstone_on_empty_payload && value.as_ref().is_some_and(Bytes::is_empty) {
            value = None;
        }
        Ok(Some(OutboxRecord {
            topic,
            key,
            value,
            headers: vec![("id".to_string(), Bytes::from(id))],
            timestamp_ms: (commit_time_us + PG_EPOCH_OFFSET_US).div_euclid(1000),
        }))
    }
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

/// A column's value as text: the text form in text mode; in binary mode, the types an outbox id,
/// key or routing column commonly has.
fn as_text(value: &TupleValue, type_oid: u32) -> Result<Option<String>, String> {
    let utf8 = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| "the value is not valid UTF-8".to_string())
    };
    match value {
        TupleValue::Null => Ok(None),
        TupleValue::UnchangedToast => Err("unchanged TOAST value in an insert".into()),
        TupleValue::Text(b) => utf8(b).map(Some),
        TupleValue::Binary(b) => {
            let int = |n: usize| -> Result<i64, String> {
                let arr: [u8; 8] = {
                    let mut a = [0u8; 8];
                    if b.len() != n {
                        return Err(format!("binary integer of {} bytes, expected {n}", b.len()));
                    }
                    a[8 - n..].copy_from_slice(b);
                    a
                };
                let v = i64::from_be_bytes(arr);
                // Sign-extend the narrower integers.
                let shift = 64 - 8 * n as u32;
                Ok((v << shift) >> shift)
            };
            match type_oid {
                oid::UUID => {
                    if b.len() != 16 {
                        return Err(format!("binary uuid of {} bytes", b.len()));
                    }
                    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    Ok(Some(format!(
                        "{}-{}-{}-{}-{}",
                        &h[0..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..32]
                    )))
                }
                oid::INT2 => int(2).map(|v| Some(v.to_string())),
                oid::INT4 => int(4).map(|v| Some(v.to_string())),
                oid::INT8 => int(8).map(|v| Some(v.to_string())),
                oid::JSONB => utf8(b.get(1..).unwrap_or_default()).map(Some),
                _ => utf8(b).map(Some),
            }
        }
    }
}

/// The payload column's value as record bytes: text as it is, bytea decoded to raw bytes.
fn as_payload(value: &TupleValue, type_oid: u32) -> Result<Option<Bytes>, String> {
    match value {
        TupleValue::Null => Ok(None),
        TupleValue::UnchangedToast => Err("unchanged TOAST value in an insert".into()),
        TupleValue::Text(b) if type_oid == oid::BYTEA => decode_bytea_hex(b).map(Some),
        TupleValue::Text(b) => Ok(Some(b.clone())),
        TupleValue::Binary(b) if type_oid == oid::JSONB => match b.first() {
            Some(1) => Ok(Some(b.slice(1..))),
            other => Err(format!("binary jsonb with unknown version byte {other:?}")),
        },
        TupleValue::Binary(b) => Ok(Some(b.clone())),
    }
}

/// Decodes bytea's text output in hex format (`\x0102ff`, `bytea_output = hex`, the default).
fn decode_bytea_hex(text: &[u8]) -> Result<Bytes, String> {
    let hex = text.strip_prefix(b"\\x").ok_or_else(|| {
        "bytea value is not in hex format; set bytea_output = 'hex' (the default)".to_string()
    })?;
    if hex.len() % 2 != 0 {
        return Err("bytea hex text has an odd number of digits".into());
    }
    let digit = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("bytea hex text has the non-hex character {:?}", c as char))
    };
    hex.chunks_exact(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pgoutput::Column as PgColumn;

    fn relation(id: u32, namespace: &str, name: &str, cols: &[(&str, u32)]) -> Relation {
        Relation {
            id,
            namespace: namespace.into(),
            name: name.into(),
            replica_identity: b'd',
            columns: cols
                .iter()
                .map(|(n, t)| PgColumn {
                    flags: 0,
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
                ("aggregatetype", 1043),
                ("aggregateid", 1043),
                ("type", 1043),
                ("payload", oid::JSONB),
            ],
        )
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

    #[test]
    fn routes_with_debezium_defaults() {
        let r = default_router();
        let rec = r
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
        assert_eq!(rec.topic, "outbox.event.Order");
        assert_eq!(rec.key.as_deref(), Some(&b"o-1"[..]));
        assert_eq!(rec.value.as_deref(), Some(&br#"{"id": 1}"#[..]));
        assert_eq!(
            rec.headers,
            vec![(
                "id".to_string(),
                Bytes::from_static(b"11111111-1111-4111-8111-111111111111")
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
        let r = default_router();
        let rec = r
            .route_insert(
                16384,
                &row(vec![
                    text("id-1"),
                    text("Order"),
                    TupleValue::Null,
                    text("t"),
                    TupleValue::Null,
                ]),
                0,
            )
            .unwrap()
            .unwrap();
        assert_eq!(rec.value, None);
        assert_eq!(rec.key, None);
    }

    #[test]
    fn null_id_or_route_value_is_an_error_naming_the_row() {
        let r = default_router();
        let err = r
            .route_insert(
                16384,
                &row(vec![
                    text("id-7"),
                    TupleValue::Null,
                    text("k"),
                    text("t"),
                    text("{}"),
                ]),
                0,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("id-7") && err.contains("aggregatetype"),
            "{err}"
        );
        let err = r
            .route_insert(
                16384,
                &row(vec![
                    TupleValue::Null,
                    text("Order"),
                    text("k"),
                    text("t"),
                    text("{}"),
                ]),
                0,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("public.outbox") && err.contains("\"id\""),
            "{err}"
        );
    }

    #[test]
    fn invalid_topic_names_are_refused() {
        let r = default_router();
        let err = r
            .route_insert(
                16384,
                &row(vec![
                    text("id-8"),
                    text("Order Lines"),
                    text("k"),
                    text("t"),
                    text("{}"),
                ]),
                0,
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
        let map = BTreeMap::from([
            ("route.by.field".to_string(), "type".to_string()),
            (
                "route.topic.regex".to_string(),
                "(?<routedByValue>[A-Z][a-z]+).*".to_string(),
            ),
            (
                "route.topic.replacement".to_string(),
                "events.${routedByValue}".to_string(),
            ),
        ]);
        let o = RouterOptions::from_map(&map).unwrap();
        assert_eq!(route_topic(&o, "OrderCreated"), "events.Order");
        assert_eq!(route_topic(&o, "CustomerMoved"), "events.Customer");
        // Not matched in full: used as the topic unchanged, as RegexRouter does.
        assert_eq!(route_topic(&o, "lower"), "lower");
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
        assert!(bad("table.expand.json.payload", "true").contains("does not support yet"));
        assert!(bad("route.by.field", " ").contains("must not be empty"));
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
    }

    #[test]
    fn bytea_payloads_are_raw_bytes() {
        assert_eq!(
            as_payload(&text(r"\x000000002a0102ff00"), oid::BYTEA).unwrap(),
            Some(Bytes::from_static(&[0, 0, 0, 0, 0x2a, 1, 2, 0xff, 0]))
        );
        assert!(as_payload(&text(r"\x0"), oid::BYTEA).is_err());
        assert!(as_payload(&text(r"\xzz"), oid::BYTEA).is_err());
        assert!(as_payload(&text("abc"), oid::BYTEA).is_err());
    }

    #[test]
    fn empty_payload_becomes_a_tombstone_when_asked() {
        let map = BTreeMap::from([(
            "route.tombstone.on.empty.payload".to_string(),
            "true".to_string(),
        )]);
        let mut r = Router::new(
            RouterOptions::from_map(&map).unwrap(),
            vec![TableName::parse("public.outbox").unwrap()],
        );
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
        let rec = r
            .route_insert(9, &row(vec![text("1"), text("A"), text("k"), text("")]), 0)
            .unwrap()
            .unwrap();
        assert_eq!(rec.value, None);
    }

    #[test]
    fn binary_mode_values() {
        let uuid = TupleValue::Binary(Bytes::from_static(&[
            0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x41, 0x11, 0x81, 0x11, 0x11, 0x11, 0x11, 0x11,
            0x11, 0x11,
        ]));
        assert_eq!(
            as_text(&uuid, oid::UUID).unwrap().unwrap(),
            "11111111-1111-4111-8111-111111111111"
        );
        let neg = TupleValue::Binary(Bytes::copy_from_slice(&(-42i32).to_be_bytes()));
        assert_eq!(as_text(&neg, oid::INT4).unwrap().unwrap(), "-42");
        let big = TupleValue::Binary(Bytes::copy_from_slice(&(1i64 << 40).to_be_bytes()));
        assert_eq!(as_text(&big, oid::INT8).unwrap().unwrap(), "1099511627776");
        let jsonb = TupleValue::Binary(Bytes::from_static(b"\x01{\"a\": 1}"));
        assert_eq!(
            as_payload(&jsonb, oid::JSONB).unwrap().unwrap(),
            Bytes::from_static(b"{\"a\": 1}")
        );
    }
}
