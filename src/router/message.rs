//! Logical decoding messages as outbox events (`source.message_prefixes`).
//!
//! A transactional `pg_logical_emit_message(true, prefix, content)` whose prefix is configured is
//! an outbox event without a table: its content is a JSON object whose keys are the router's
//! column names (`id`, `aggregatetype`, `aggregateid`, `payload`, placed columns, …).
//! [`message_row`] turns it into the [`Relation`] and [`TupleData`] of the row an outbox table
//! with those columns would hold, and the router routes that row with the same code as a table's
//! (topic, key, headers, value, converters). A field's type is what a table would declare for it:
//!
//! | JSON value | column type |
//! |---|---|
//! | string | `text` (the `table.field.event.timestamp` field: `timestamptz`, ISO 8601) |
//! | object, array | `json`: the text as written in the message |
//! | integer (fits 64 bits) | `bigint` |
//! | other number | `double precision` |
//! | `true`, `false` | `boolean` |
//! | `null` | NULL (`text`; `bigint` for the partition, schema version and timestamp fields) |
//!
//! The id, key and routing fields count as NOT NULL columns when they hold a value (as in the
//! outbox table of the README); every other field is nullable, as `payload` is there.
//!
//! Messages have no relation id: a configured prefix's index in the list serves as one
//! ([`relation_id`]), below the OIDs of user tables (which start at 16384), so pgoutput never
//! sends a table with such an id. Pure: no I/O.

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::topic::route_topic;
use super::{columns::oid, PlacementTarget, RawRow, RouterOptions};
use crate::source::pgoutput::{Column, LogicalMessage, Relation, TupleData, TupleValue};

/// At most this many prefixes (their indexes must stay below the first user table OID, 16384).
pub const MAX_PREFIXES: usize = 1000;

/// The pseudo relation id of the configured prefix at `index` (see the module documentation).
pub fn relation_id(index: usize) -> u32 {
    debug_assert!(index < MAX_PREFIXES);
    index as u32
}

/// How messages of `prefix` are named in metrics labels, logs and dead-letter records (rows
/// give `schema.table`).
pub fn label(prefix: &str) -> String {
    format!("message:{prefix}")
}

/// The row a message's content stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// One column per field, in the content's order.
    pub relation: Relation,
    pub values: TupleData,
    /// The fields that count as NOT NULL columns.
    pub not_null: HashSet<String>,
    /// The event id as text (`?` without one), to name the message in errors.
    pub id: String,
}

/// Content that is no outbox row, with the event id when the content has one (`?` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    pub id: String,
    pub problem: String,
}

/// The content's top-level fields in order, each with its JSON text as written.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of the outbox fields")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields: Vec<(String, &'a RawValue)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    if fields.iter().any(|(name, _)| *name == k) {
                        return Err(serde::de::Error::custom(format!(
                            "field \"{k}\" appears twice"
                        )));
                    }
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The JSON type of a value's text, for messages.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// A string field's value; `None` for other JSON types.
fn string_of(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// A field as text for error messages and dead-letter records: a string's value, else the JSON
/// text; `None` for `null`.
fn text_of(raw: &RawValue) -> Option<String> {
    match json_kind(raw) {
        "null" => None,
        "string" => string_of(raw),
        _ => Some(raw.get().to_string()),
    }
}

/// Parses the content into its fields.
fn fields(content: &[u8]) -> Result<Fields<'_>, String> {
    let text = std::str::from_utf8(content).map_err(|_| {
        "the content is not UTF-8 text; it must be a JSON object of the outbox fields".to_string()
    })?;
    if let Some(first) = text.trim_start().chars().next().filter(|c| *c != '{') {
        let kind = match first {
            '[' => "an array",
            '"' => "a string",
            't' | 'f' | 'n' | '-' | '0'..='9' => "a scalar",
            _ => "not JSON",
        };
        return Err(format!(
            "the content is {kind}, not a JSON object of the outbox fields (e.g. {{\"id\": …, \"aggregatetype\": …, \"aggregateid\": …, \"payload\": …}})"
        ));
    }
    serde_json::from_str::<Fields<'_>>(text)
        .map_err(|e| format!("the content is not a valid JSON object: {e}"))
}

/// Postgres' timestamptz text (`2026-11-21 10:00:00.5+00`) from ISO 8601
/// (`2026-11-21T10:00:00.5Z`, `…+02:00`); other text is returned as it is (and refused by the
/// router if it is no timestamp).
fn postgres_timestamptz(text: &str) -> String {
    let mut t = text.to_string();
    if t.as_bytes().get(10) == Some(&b'T') {
        t.replace_range(10..11, " ");
    }
    if let Some(body) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        t = format!("{body}+00");
    }
    t
}

/// The row `content` stands for, with the options' column names as field names. Fails on
/// content that is no JSON object, and on an object without a field the options need.
pub fn message_row(options: &RouterOptions, content: &[u8]) -> Result<MessageRow, ContentError> {
    let fields = fields(content).map_err(|problem| ContentError {
        id: "?".into(),
        problem,
    })?;
    let get = |name: &str| fields.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let id = get(&options.id_field)
        .and_then(text_of)
        .unwrap_or_else(|| "?".into());
    let bad = |problem: String| ContentError {
        id: id.clone(),
        problem,
    };
    let required = options.required_columns();
    if let Some(missing) = required.iter().find(|c| get(c).is_none()) {
        return Err(bad(format!(
            "the content has no field \"{missing}\"; with these router options every outbox message needs the fields {}",
            required
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let integer_field = |name: &str| {
        options.schema_version_field.as_deref() == Some(name)
            || options
                .placements
                .iter()
                .any(|p| p.target == PlacementTarget::Partition && p.column == name)
    };
    let mut columns = Vec::with_capacity(fields.0.len());
    let mut values = Vec::with_capacity(fields.0.len());
    let mut not_null = HashSet::new();
    for (name, raw) in &fields.0 {
        let is_timestamp = options.timestamp_field.as_deref() == Some(name.as_str());
        let text = |s: &str| TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()));
        let (type_oid, value) = match json_kind(raw) {
            "null" if is_timestamp => (oid::TIMESTAMPTZ, TupleValue::Null),
            "null" if integer_field(name) => (oid::INT8, TupleValue::Null),
            "null" => (oid::TEXT, TupleValue::Null),
            "string" => {
                let s = string_of(raw)
                    .ok_or_else(|| bad(format!("field \"{name}\" is not a valid JSON string")))?;
                if is_timestamp {
                    (oid::TIMESTAMPTZ, text(&postgres_timestamptz(&s)))
                } else {
                    (oid::TEXT, text(&s))
                }
            }
            "object" | "array" => (oid::JSON, text(raw.get())),
            "boolean" => (oid::BOOL, text(if raw.get() == "true" { "t" } else { "f" })),
            _ => {
                let n = raw.get();
                if n.parse::<i64>().is_ok() {
                    (oid::INT8, text(n))
                } else {
                    (oid::FLOAT8, text(n))
                }
            }
        };
        if value != TupleValue::Null
            && [
                &options.id_field,
                &options.key_field,
                &options.route_by_field,
            ]
            .contains(&name)
        {
            not_null.insert(name.clone());
        }
        columns.push(Column {
            flags: 0,
            name: name.clone(),
            type_oid,
            type_modifier: -1,
        });
        values.push(value);
    }
    Ok(MessageRow {
        relation: Relation {
            id: 0,
            namespace: String::new(),
            name: String::new(),
            replica_identity: Relation::IDENTITY_NOTHING,
            columns,
        },
        values: TupleData(values),
        not_null,
        id,
    })
}

/// A refused message's raw fields for its dead-letter record: the id, key and payload fields as
/// text (a string's value, else its JSON), the topic the routing field leads to; the whole
/// content as the payload when it is no JSON object.
pub fn raw_message(options: &RouterOptions, msg: &LogicalMessage) -> RawRow {
    let table = label(&msg.prefix);
    let Ok(fields) = fields(&msg.content) else {
        return RawRow {
            table,
            id: None,
            key: None,
            payload: Some(msg.content.clone()),
            topic: None,
        };
    };
    let get = |name: &str| {
        fields
            .0
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| text_of(v))
    };
    RawRow {
        table,
        id: get(&options.id_field).map(Bytes::from),
        key: get(&options.key_field).map(Bytes::from),
        payload: get(&options.payload_field).map(Bytes::from),
        topic: get(&options.route_by_field).map(|v| route_topic(options, &v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn options(pairs: &[(&str, &str)]) -> RouterOptions {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RouterOptions::from_map(&map).unwrap()
    }

    fn column(row: &MessageRow, name: &str) -> (u32, TupleValue) {
        let i = row.relation.column_index(name).expect(name);
        (row.relation.columns[i].type_oid, row.values.0[i].clone())
    }

    fn text(s: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn fields_become_typed_columns_in_order() {
        let content = br#"{"id": "e1", "aggregatetype": "Order", "aggregateid": "o-1",
            "type": "Created", "payload": {"b": 1,  "a": [true, null]}, "n": 42, "f": 1.5,
            "ok": false, "none": null}"#;
        let row = message_row(&RouterOptions::default(), content).unwrap();
        let names: Vec<&str> = row
            .relation
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "aggregatetype",
                "aggregateid",
                "type",
                "payload",
                "n",
                "f",
                "ok",
                "none"
            ]
        );
        assert_eq!(column(&row, "id"), (oid::TEXT, text("e1")));
        assert_eq!(column(&row, "aggregateid"), (oid::TEXT, text("o-1")));
        // The payload's JSON text exactly as written (key order and blanks kept).
        assert_eq!(
            column(&row, "payload"),
            (oid::JSON, text(r#"{"b": 1,  "a": [true, null]}"#))
        );
        assert_eq!(column(&row, "n"), (oid::INT8, text("42")));
        assert_eq!(column(&row, "f"), (oid::FLOAT8, text("1.5")));
        assert_eq!(column(&row, "ok"), (oid::BOOL, text("f")));
        assert_eq!(column(&row, "none"), (oid::TEXT, TupleValue::Null));
        assert_eq!(row.id, "e1");
        let mut not_null: Vec<&str> = row.not_null.iter().map(String::as_str).collect();
        not_null.sort();
        assert_eq!(not_null, ["aggregateid", "aggregatetype", "id"]);
    }

    #[test]
    fn a_string_payload_is_text_and_escapes_are_decoded() {
        let content =
            br#"{"id":"e","aggregatetype":"A","aggregateid":"k","payload":"caf\u00e9 \"q\""}"#;
        let row = message_row(&RouterOptions::default(), content).unwrap();
        assert_eq!(column(&row, "payload"), (oid::TEXT, text("café \"q\"")));
    }

    #[test]
    fn configured_column_names_and_typed_fields() {
        let o = options(&[
            ("table.field.event.id", "event_id"),
            ("table.field.event.key", "key"),
            ("route.by.field", "topic"),
            ("table.field.event.payload", "body"),
            ("table.field.event.timestamp", "at"),
            ("table.fields.additional.placement", "part:partition"),
        ]);
        let content = br#"{"event_id":"x","key":"k","topic":"T","body":[1],"at":"2026-11-21T10:00:00.5Z","part":null}"#;
        let row = message_row(&o, content).unwrap();
        assert_eq!(
            column(&row, "at"),
            (oid::TIMESTAMPTZ, text("2026-11-21 10:00:00.5+00"))
        );
        assert_eq!(column(&row, "part"), (oid::INT8, TupleValue::Null));
        assert_eq!(column(&row, "body"), (oid::JSON, text("[1]")));
        let content =
            br#"{"event_id":"x","key":"k","topic":"T","body":1,"at":1700000000000,"part":3}"#;
        let row = message_row(&o, content).unwrap();
        assert_eq!(column(&row, "at"), (oid::INT8, text("1700000000000")));
        assert_eq!(column(&row, "part"), (oid::INT8, text("3")));
    }

    #[test]
    fn content_that_is_no_outbox_row_is_refused_with_the_reason() {
        let o = RouterOptions::default();
        for (content, expected_id, needle) in [
            (&b"\xff\xfe"[..], "?", "not UTF-8"),
            (b"<not json/>", "?", "not JSON"),
            (b"[1, 2]", "?", "an array"),
            (b"\"text\"", "?", "a string"),
            (b"42", "?", "a scalar"),
            (b"{\"id\": 1,", "?", "not a valid JSON object"),
            (br#"{"id":"e","id":"f"}"#, "?", "field \"id\" appears twice"),
            (
                br#"{"id":"e7","aggregatetype":"A","payload":{}}"#,
                "e7",
                "no field \"aggregateid\"",
            ),
        ] {
            let err = message_row(&o, content).unwrap_err();
            assert_eq!(err.id, expected_id, "{content:?}");
            assert!(err.problem.contains(needle), "{content:?}: {}", err.problem);
        }
    }

    #[test]
    fn placements_that_must_exist_are_required_fields() {
        let o = options(&[("table.fields.additional.placement", "type:header:eventType")]);
        let err = message_row(
            &o,
            br#"{"id":"e","aggregatetype":"A","aggregateid":"k","payload":1}"#,
        )
        .unwrap_err();
        assert!(err.problem.contains("no field \"type\""), "{}", err.problem);
        let o = options(&[
            ("table.fields.additional.placement", "type:header:eventType"),
            ("table.field.additional.missing", "ignore"),
        ]);
        assert!(message_row(
            &o,
            br#"{"id":"e","aggregatetype":"A","aggregateid":"k","payload":1}"#
        )
        .is_ok());
    }

    #[test]
    fn raw_fields_of_a_refused_message() {
        let msg = |content: &[u8]| LogicalMessage {
            transactional: true,
            lsn: crate::lsn::Lsn(1),
            prefix: "outbox".into(),
            content: Bytes::copy_from_slice(content),
        };
        let raw = raw_message(
            &RouterOptions::default(),
            &msg(br#"{"id":"e","aggregatetype":"Order","aggregateid":7,"payload":{"a":1}}"#),
        );
        assert_eq!(raw.table, "message:outbox");
        assert_eq!(raw.id.as_deref(), Some(&b"e"[..]));
        assert_eq!(raw.key.as_deref(), Some(&b"7"[..]));
        assert_eq!(raw.payload.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(raw.topic.as_deref(), Some("outbox.event.Order"));
        let raw = raw_message(&RouterOptions::default(), &msg(b"oops"));
        assert_eq!(raw.payload.as_deref(), Some(&b"oops"[..]));
        assert_eq!((raw.id, raw.key, raw.topic), (None, None, None));
    }

    #[test]
    fn labels_and_pseudo_relation_ids() {
        assert_eq!(label("outbox"), "message:outbox");
        assert_eq!(relation_id(3), 3);
    }
}
