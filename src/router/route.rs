//! Routing one row: the topic, key, `id` header, value (payload, expanded or not, in an envelope or
//! not), additional placements, partition, timestamp and tracing headers of its record, each
//! converted to bytes by the configured converters; plus Debezium's envelope schema name cache.
//!
//! Owns `route_row`. It must not learn relations (that is `layout`) nor do I/O.

use std::collections::HashMap;

use bytes::Bytes;

use super::layout::{Column, TableLayout};
use super::options::{EnvelopeField, PlacementTarget};
use super::source_block::{self, ChangePosition};
use super::topic::TopicCache;
use super::{expand, span_context};
use super::{OutboxRecord, RouteError, RouteWarning, Routed, Router, RouterOptions};
use crate::convert::cloudevents::{iso_millis, write_structured, CloudEvent};
use crate::convert::{header_bytes, Converter, Converters, Data, Field, Schema, Type, Value};
use crate::source::pgoutput::{TupleData, TupleValue};

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
        at: &ChangePosition,
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
        let commit_ms = at.commit_unix_us().div_euclid(1000);
        let timestamp_ms = match &layout.timestamp {
            Some(c) => c
                .kind
                .event_timestamp_ms(cell(c))
                .map_err(|e| bad(&id, format!("event timestamp column \"{}\": {e}", c.name)))?
                .unwrap_or(commit_ms),
            None => commit_ms,
        };

        // Headers as Connect values, converted by the header converter at the end: those a
        // HeaderFrom transform before the EventRouter adds, the event id, then the placements.
        let mut headers: Vec<(String, Data)> = Vec::new();
        for (field, name) in &o.header_from {
            let data = match field {
                EnvelopeField::Source => {
                    source_block::source_block(o, &layout.namespace, &layout.name, at)
                }
                EnvelopeField::Op => source_block::op_insert(),
                EnvelopeField::Transaction => source_block::no_transaction(),
            };
            headers.push((name.clone(), data));
        }
        headers.push(("id".to_string(), id_data.clone()));

        // Placements: headers, envelope fields, partition, in configuration order.
        let mut partition = None;
        let mut envelope_fields = Vec::new();
        let mut envelope_values = Vec::new();
        for (p, c) in &layout.placements {
            let data = decode(c)?;
            match p.target {
                PlacementTarget::Header => headers.push((p.alias.clone(), data)),
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
                        let text = |s: String| {
                            Data::new(Schema::new(Type::String, false), Value::String(s))
                        };
                        headers.push(("traceparent".into(), text(ctx.traceparent)));
                        if let Some(state) = ctx.tracestate {
                            headers.push(("tracestate".into(), text(state)));
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
                    default: None,
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
        let value = match &converters.value {
            Converter::CloudEvents(_) if value.value == Value::Null => None,
            Converter::CloudEvents(ce) => {
                // The converter reads the last header of each name, as Debezium's does.
                let header_text = |name: &str| -> Result<Option<&str>, RouteError> {
                    match headers.iter().rev().find(|(n, _)| n == name) {
                        None => Ok(None),
                        Some((_, Data { value: Value::String(s), .. })) => Ok(Some(s.as_str())),
                        Some((_, d)) => Err(bad(&id, format!(
                            "the {name} header holds a {}, and Debezium's CloudEventsConverter takes the CloudEvents {name} from it as a string (it fails with a ClassCastException); place a text column there",
                            d.value.java_class()
                        ))),
                    }
                };
                let header_data = |name: &str| {
                    headers
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, d)| d)
                };
                let source =
                    header_data("source").ok_or_else(|| bad(&id, "no source header".into()))?;
                let transaction = header_data("transaction").filter(|d| d.value != Value::Null);
                let event = CloudEvent {
                    id_header: header_text("id")?,
                    type_header: header_text("type")?,
                    op: "c",
                    source,
                    transaction,
                    data: &value,
                };
                Some(write_structured(ce, &event).map_err(|e| {
                    bad(
                        &id,
                        format!(
                            "the value cannot be written with {}: {e}",
                            converters.value.class_name()
                        ),
                    )
                })?)
            }
            c => convert(c, &value, "value")?,
        };
        let mut header_bytes_list = Vec::with_capacity(headers.len() + 7);
        for (name, data) in &headers {
            let bytes = converters.header.convert(data).map_err(|e| {
                bad(
                    &id,
                    format!("the {name} header cannot be written with the header converter: {e}"),
                )
            })?;
            header_bytes_list.push((name.clone(), bytes));
        }
        if let (Some(ce), Some(columns)) = (&o.cloudevents, &layout.cloudevents) {
            // CloudEvents binary content mode (Kafka protocol binding 1.0): attributes as
            // UTF-8 `ce_*` headers, whatever the header converter; the value is the payload.
            let attribute = |c: &Column, what: &str| -> Result<Option<String>, RouteError> {
                text_of(&decode(c)?).map(Some).ok_or_else(|| {
                    bad(&id, format!("the CloudEvents {what} column \"{}\" is NULL, and {what} is a required attribute", c.name))
                })
            };
            let mut push = |name: &str, text: String| {
                header_bytes_list.push((name.to_string(), Some(Bytes::from(text))))
            };
            push("ce_specversion", "1.0".into());
            push("ce_id", attribute(&columns.id, "id")?.unwrap_or_default());
            push("ce_source", ce.source.clone());
            push(
                "ce_type",
                attribute(&columns.event_type, "type")?.unwrap_or_default(),
            );
            push("ce_time", iso_millis(timestamp_ms));
            if let Some(c) = &columns.subject {
                if let Some(subject) = text_of(&decode(c)?) {
                    push("ce_subject", subject);
                }
            }
            if value.is_some() {
                push("content-type", ce.content_type.clone());
            }
        }
        let record = OutboxRecord {
            key: convert(&converters.key, &key, "key")?,
            value,
            topic,
            partition,
            headers: header_bytes_list,
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

    /// Debezium's documented CloudEvents outbox setup (see `convert::cloudevents`).
    const STRUCTURED: &[(&str, &str)] = &[
        ("header.from.fields", "source,op,transaction"),
        ("header.from.headers", "source,op,transaction"),
        ("debezium.source.db", "postgres"),
        ("topic.prefix", "live"),
        ("table.expand.json.payload", "true"),
        ("table.fields.additional.placement", "type:header"),
    ];

    fn structured_converters() -> Vec<(&'static str, &'static str)> {
        vec![
            ("value.converter", crate::convert::CLOUD_EVENTS_CONVERTER),
            ("value.converter.metadata.source", "header"),
            ("header.converter", JSON_CONVERTER),
            ("header.converter.schemas.enable", "true"),
        ]
    }

    #[test]
    fn structured_cloudevents_are_built_from_the_headers_as_debezium_builds_them() {
        let mut r = golden_router(STRUCTURED, &structured_converters());
        let at = ChangePosition {
            commit_time_us: 848_570_400_123_456,
            xid: Some(727),
            lsn: Some(crate::lsn::Lsn(22_189_328)),
            begin_lsn: None,
        };
        let rows = golden_rows();
        let rec = r.route_insert_at(7, &rows[0], &at).unwrap().unwrap().record;
        let names: Vec<&str> = rec.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["source", "op", "transaction", "id", "type"]);
        assert_eq!(
            utf8(&rec.headers[3].1),
            Some(
                r#"{"schema":{"type":"string","optional":false,"name":"io.debezium.data.Uuid","version":1},"payload":"11111111-1111-4111-8111-111111111111"}"#
            )
        );
        assert_eq!(
            utf8(&rec.headers[4].1),
            Some(r#"{"schema":{"type":"string","optional":false},"payload":"OrderCreated"}"#)
        );
        assert_eq!(
            utf8(&rec.value).unwrap(),
            r#"{"id":"11111111-1111-4111-8111-111111111111","source":"/debezium/postgresql/live","specversion":"1.0","type":"OrderCreated","time":"2026-11-21T10:00:00.123Z","datacontenttype":"application/json","iodebeziumop":"c","iodebeziumversion":"3.6.1.Final","iodebeziumconnector":"postgresql","iodebeziumname":"live","iodebeziumtsms":"1795255200123","iodebeziumsnapshot":"false","iodebeziumdb":"postgres","iodebeziumsequence":"[null,\"22189328\"]","iodebeziumtsus":"1795255200123456","iodebeziumtsns":"1795255200123456000","iodebeziumschema":"public","iodebeziumtable":"outbox","iodebeziumtxId":"727","iodebeziumlsn":"22189328","iodebeziumxmin":null,"iodebeziumorigin":null,"iodebeziumoriginlsn":null,"iodebeziumtxid":null,"iodebeziumtxtotalorder":null,"iodebeziumtxdatacollectionorder":null,"data":{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"id"},{"type":"string","optional":true,"field":"note"},{"type":"array","items":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"qty"},{"type":"string","optional":true,"field":"sku"}],"optional":true,"name":"payload.items"},"optional":true,"field":"items"}],"optional":false,"name":"io.debezium.connector.postgresql.Data"},"payload":{"id":1,"note":"café \"q\"","items":[{"qty":2,"sku":"A"}]}}}"#
        );
        // A top-level array: no struct, which Debezium's converter fails on; a NULL payload: a
        // null value, as Debezium writes it.
        let err = r.route_insert_at(7, &rows[1], &at).unwrap_err().to_string();
        assert!(err.contains("Mismatching schema"), "{err}");
        let rec = r.route_insert_at(7, &rows[2], &at).unwrap().unwrap().record;
        assert_eq!(rec.value, None);
        assert_eq!(rec.headers.len(), 5);
    }

    #[test]
    fn binary_cloudevents_are_ce_headers_beside_the_payload() {
        let mut r = golden_router(
            &[
                ("cloudevents.mode", "binary"),
                ("topic.prefix", "shop"),
                ("cloudevents.subject.field", "aggregateid"),
                ("table.field.event.timestamp", "ts_local"),
            ],
            &[("value.converter", STRING_CONVERTER)],
        );
        let routed = route_all(&mut r);
        let headers = |i: usize| header_pairs(&routed[i]);
        let h = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        assert_eq!(
            headers(0),
            vec![
                h("id", "11111111-1111-4111-8111-111111111111"),
                h("ce_specversion", "1.0"),
                h("ce_id", "11111111-1111-4111-8111-111111111111"),
                h("ce_source", "/debezium/postgresql/shop"),
                h("ce_type", "OrderCreated"),
                h("ce_time", "2026-11-21T10:00:00.123Z"),
                h("ce_subject", "o-1"),
                h("content-type", "application/json"),
            ]
        );
        // The value is the payload as the value converter writes it.
        assert_eq!(
            utf8(&routed[0].record.value).unwrap(),
            r#"{"id": 1, "note": "café \"q\"", "items": [{"qty": 2, "sku": "A"}]}"#
        );
        // No data (a NULL payload): no content-type.
        let last = headers(2);
        assert_eq!(last.last().unwrap(), &h("ce_subject", "o-1"));
        assert_eq!(last[5], h("ce_time", "2026-11-21T10:00:02.000Z"));
    }

    #[test]
    fn binary_cloudevents_options_are_checked() {
        let bad = |pairs: &[(&str, &str)]| {
            RouterOptions::from_map(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap_err()
            .to_string()
        };
        let e = bad(&[("cloudevents.mode", "binary")]);
        assert!(
            e.contains("cloudevents.source") && e.contains("topic.prefix"),
            "{e}"
        );
        let e = bad(&[("cloudevents.mode", "structured")]);
        assert!(e.contains("CloudEventsConverter"), "{e}");
        let e = bad(&[("cloudevents.source", "/x")]);
        assert!(e.contains("cloudevents.mode"), "{e}");
        let e = bad(&[
            ("cloudevents.mode", "binary"),
            ("cloudevents.source", "/a b"),
        ]);
        assert!(e.contains("URI-reference"), "{e}");
        let e = bad(&[
            ("cloudevents.mode", "binary"),
            ("cloudevents.source", "/a"),
            ("cloudevents.datacontenttype", "json"),
        ]);
        assert!(e.contains("media type"), "{e}");
        let o = opts(&[
            ("cloudevents.mode", "binary"),
            ("cloudevents.source", "/orders"),
            ("cloudevents.type.field", "kind"),
        ]);
        let ce = o.cloudevents.clone().unwrap();
        assert_eq!(
            (ce.id_field.as_str(), ce.type_field.as_str()),
            ("id", "kind")
        );
        assert!(o.required_columns().contains(&"kind".to_string()));
        // A missing column names its option.
        let mut r = Router::new(o, vec![TableName::parse("public.outbox").unwrap()]);
        let e = r.on_relation(&outbox_relation()).unwrap_err().to_string();
        assert!(
            e.contains("\"kind\"") && e.contains("cloudevents.type.field"),
            "{e}"
        );
        let e = RouterOptions::from_map(
            &STRUCTURED[..2]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("topic.prefix"), "{e}");
    }

    #[test]
    fn the_structured_mode_needs_debeziums_whole_setup() {
        let check = |router: &[(&str, &str)], conv: &[(&str, &str)]| {
            opts(router)
                .check_converters(&converters(conv))
                .map_err(|e| e.to_string())
        };
        let conv = structured_converters();
        assert!(check(STRUCTURED, &conv).is_ok());
        let e = check(&STRUCTURED[2..], &conv).unwrap_err();
        assert!(
            e.contains("header.from.fields") && e.contains("null value"),
            "{e}"
        );
        let e = check(STRUCTURED, &conv[..2]).unwrap_err();
        assert!(e.contains("header.converter"), "{e}");
        let e = check(&STRUCTURED[..5], &conv).unwrap_err();
        assert!(e.contains("type:header"), "{e}");
        let e = check(
            &[STRUCTURED, &[("cloudevents.mode", "binary")]].concat(),
            &conv,
        )
        .unwrap_err();
        assert!(e.contains("keep one"), "{e}");
    }
}
