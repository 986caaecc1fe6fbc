//! Routing one row: the topic, key, `id` header, value (payload, expanded or not, in an envelope or
//! not), additional placements, partition, timestamp and tracing headers of its record, each
//! converted to bytes by the configured converters; plus Debezium's envelope schema name cache.
//!
//! Owns `route_row`. It must not learn relations (that is `layout`) nor do I/O.

use std::collections::HashMap;

use bytes::Bytes;

use super::layout::{Column, TableLayout};
use super::options::PlacementTarget;
use super::topic::TopicCache;
use super::{expand, span_context};
use super::{OutboxRecord, RouteError, RouteWarning, Routed, Router, RouterOptions};
use crate::convert::{header_bytes, Converter, Converters, Data, Field, Schema, Type, Value};
use crate::source::pgoutput::{TupleData, TupleValue, PG_EPOCH_UNIX_US};

/// Debezium caches the envelope value schema per schema version, or per payload schema when no
/// version column is set, and reuses the first one's name (built from the first routing value)
/// for the life of the task. Emulated for the name, which is what reaches the bytes.
#[derive(Debug, Default)]
pub(super) struct EnvelopeNames {
    by_version: HashMap<Option<i32>, String>,
    by_payload: HashMap<Schema, String>,
}

/// Debezium's bound on its payload-schema cache.
const ENVELOPE_CACHE_LIMIT: usize = 10_000;

impl Router {
    /// Routes one row of `layout` with the options and converters.
    pub(super) fn route_row(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::testing::*;

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
