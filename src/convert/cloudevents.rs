//! Debezium's `io.debezium.converters.CloudEventsConverter` (3.6) as the value converter of an
//! outbox connector: its options ([`CloudEventsOptions`], the `value.converter.*` keys) and the
//! structured-mode JSON event it writes ([`write_structured`]).
//!
//! After the EventRouter the value is no Debezium change event, so the converter reads the
//! event's metadata from headers (`metadata.source=header`): the `source` block and `op` that a
//! `HeaderFrom$Value` transform copied there before the EventRouter ran, and the `id` and `type`
//! headers of the EventRouter. What it writes, in this order (JSON, compact, JsonConverter's
//! text):
//!
//! - `id`: the `id` header (`id:header`), or Debezium's generated
//!   `name:<name>;lsn:<lsn>;txId:<txId>;sequence:<sequence>` (`id:generate`);
//! - `source`: `/debezium/postgresql/<name>` (`name` is the connector's `topic.prefix`);
//! - `specversion` `1.0`; `type`: the `type` header (`type:header`), or
//!   `io.debezium.connector.postgresql.DataChangeEvent` (`type:generate`);
//! - `time`: the source block's `ts_ms` as `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC;
//! - `datacontenttype` `application/json`;
//! - with `extension.attributes.enable` (default): `iodebeziumop`, then one `iodebezium<field>`
//!   per source block field (the name stripped of everything but ASCII letters and digits,
//!   `ts_ms` → `iodebeziumtsms`; INT64 values as strings), then `iodebeziumtxid`,
//!   `iodebeziumtxtotalorder`, `iodebeziumtxdatacollectionorder` from the transaction block
//!   (null when there is none);
//! - `data`: the record value, a struct renamed `io.debezium.connector.postgresql.Data`,
//!   through a JsonConverter with `json.schemas.enable` (default true: the
//!   `{"schema":…,"payload":…}` envelope).
//!
//! Owns the options and the event's bytes. Building the source block and reading the headers is
//! the router's job.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::converter::ConverterConfigError;
use super::json::write_schema;
use super::{write_json, write_json_string, Data, Schema, Type, Value};

pub const CLOUD_EVENTS_CONVERTER: &str = "io.debezium.converters.CloudEventsConverter";

/// The `type` Debezium generates (`type:generate`) for a PostgreSQL connector.
pub const GENERATED_TYPE: &str = "io.debezium.connector.postgresql.DataChangeEvent";

/// The name Debezium gives the `data` attribute's schema (PostgreSQL connector).
pub const DATA_SCHEMA_NAME: &str = "io.debezium.connector.postgresql.Data";

/// Where an attribute's value comes from (`metadata.source`'s `<attribute>:<source>` pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// Read from the record header of that name.
    Header,
    /// Made up by the converter.
    Generate,
}

/// The CloudEventsConverter options outboxd emulates, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEventsOptions {
    /// `json.schemas.enable` (default true): the `data` attribute in JsonConverter's envelope.
    pub data_schemas: bool,
    /// `extension.attributes.enable` (default true): the `iodebezium*` attributes.
    pub extension_attributes: bool,
    /// Where `id` comes from (`metadata.source`).
    pub id: MetadataSource,
    /// Where `type` comes from (`metadata.source`).
    pub event_type: MetadataSource,
}

/// The option keys, after `value.converter.`.
const OPTIONS: &[&str] = &[
    "serializer.type",
    "data.serializer.type",
    "json.schemas.enable",
    "metadata.source",
    "extension.attributes.enable",
    "opentelemetry.tracing.attributes.enable",
    "schema.name.adjustment.mode",
    "schema.cloudevents.name",
    "schema.data.name.source.header.enable",
];

/// The option keys with `prefix` (`value.converter.`), for `[converters]`' list of known keys.
pub(super) fn option_keys(prefix: &str) -> Vec<String> {
    OPTIONS.iter().map(|o| format!("{prefix}{o}")).collect()
}

impl CloudEventsOptions {
    /// Validates the options (`map` holds every `[converters]` key; `prefix` is
    /// `value.converter.`).
    pub(super) fn from_map(
        map: &BTreeMap<String, String>,
        prefix: &str,
    ) -> Result<CloudEventsOptions, ConverterConfigError> {
        let err = |option: &str, message: String| ConverterConfigError {
            key: format!("{prefix}{option}"),
            message,
        };
        let get = |option: &str| map.get(&format!("{prefix}{option}")).map(|v| v.trim());
        let boolean =
            |option: &str, default: bool| match get(option).map(str::to_ascii_lowercase).as_deref()
            {
                None => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(v) => Err(err(option, format!("{v:?}: expected true or false"))),
            };
        for option in ["serializer.type", "data.serializer.type"] {
            match get(option).map(str::to_ascii_lowercase).as_deref() {
                None | Some("json") => {}
                Some(v) => {
                    return Err(err(
                        option,
                        format!("{v:?} is not supported: outboxd writes CloudEvents as JSON with JSON data only (json, the default); Avro needs a schema registry outboxd does not talk to"),
                    ))
                }
            }
        }
        if boolean("opentelemetry.tracing.attributes.enable", false)? {
            return Err(err(
                "opentelemetry.tracing.attributes.enable",
                "true is not supported: outboxd creates no tracing spans and so has no traceparent of its own for the event; remove the option (the W3C trace context of the row still reaches the record headers with the router's tracing.span.context.field)".into(),
            ));
        }
        match get("schema.name.adjustment.mode")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            // The adjusted name is the envelope schema's, which a JSON event does not carry.
            None | Some("none") | Some("avro") | Some("avro_unicode") => {}
            Some(v) => {
                return Err(err(
                    "schema.name.adjustment.mode",
                    format!("{v:?}: expected none, avro or avro_unicode"),
                ))
            }
        }
        // Only an Avro envelope is registered under schema.cloudevents.name, and only Avro data
        // takes its schema name from a header: neither reaches a JSON event.
        boolean("schema.data.name.source.header.enable", false)?;
        let (id, event_type) =
            parse_metadata_source(get("metadata.source")).map_err(|m| err("metadata.source", m))?;
        Ok(CloudEventsOptions {
            data_schemas: boolean("json.schemas.enable", true)?,
            extension_attributes: boolean("extension.attributes.enable", true)?,
            id,
            event_type,
        })
    }
}

/// `metadata.source`: the global source (`value` or `header`), then `<attribute>:<source>` pairs
/// (`id`, `type`, `traceparent`, `dataSchemaName`; `generate` or `header`). With a global
/// `header`, attributes not named come from headers too (Debezium's rule). Returns the sources of
/// `id` and `type`.
fn parse_metadata_source(text: Option<&str>) -> Result<(MetadataSource, MetadataSource), String> {
    let Some(text) = text else {
        return Err(VALUE_MEANS_NULL.into());
    };
    let mut parts = text.split(',').map(str::trim);
    match parts.next().map(str::to_ascii_lowercase).as_deref() {
        Some("header") => {}
        Some("value") => return Err(VALUE_MEANS_NULL.into()),
        other => {
            return Err(format!(
                "{text:?}: the first element must be value or header, not {:?}",
                other.unwrap_or_default()
            ))
        }
    }
    let (mut id, mut event_type) = (MetadataSource::Header, MetadataSource::Header);
    for pair in parts {
        let Some((attribute, source)) = pair.split_once(':') else {
            return Err(format!(
                "{pair:?} is not attribute:source (e.g. id:header or type:generate)"
            ));
        };
        let source = match source.trim().to_ascii_lowercase().as_str() {
            "header" => MetadataSource::Header,
            "generate" => MetadataSource::Generate,
            other => {
                return Err(format!(
                    "{pair:?}: unknown source {other:?}; expected header or generate"
                ))
            }
        };
        match attribute.trim() {
            "id" => id = source,
            "type" => event_type = source,
            "traceparent" | "dataSchemaName" => {}
            other => {
                return Err(format!(
                    "{pair:?}: unknown attribute {other:?}; expected id, type, traceparent or dataSchemaName"
                ))
            }
        }
    }
    Ok((id, event_type))
}

const VALUE_MEANS_NULL: &str = "set it to header: with metadata.source=value (the converter's default) Debezium's CloudEventsConverter reads the metadata from the record value, which after the EventRouter is no change event, and writes a null value for every outbox record. The documented outbox setup is metadata.source=header with a HeaderFrom$Value transform before the EventRouter that copies source,op,transaction into headers";

/// One event's attributes, as the converter reads them from the record.
#[derive(Debug, Clone, Copy)]
pub struct CloudEvent<'a> {
    /// The `id` header's text, for `id:header`.
    pub id_header: Option<&'a str>,
    /// The `type` header's text, for `type:header`.
    pub type_header: Option<&'a str>,
    /// The `op` header's value (`c` for the EventRouter's inserts).
    pub op: &'a str,
    /// Debezium's source block (`io.debezium.connector.postgresql.Source`), a struct.
    pub source: &'a Data,
    /// The transaction block, `None` when the connector writes none.
    pub transaction: Option<&'a Data>,
    /// The record value: a struct (an expanded JSON object payload, or the envelope).
    pub data: &'a Data,
}

/// The source block field `name`, or an error naming it.
fn source_field<'a>(source: &'a Data, name: &str) -> Result<&'a Value, String> {
    let schema = source
        .schema
        .as_ref()
        .ok_or("the source block has no schema")?;
    let Value::Struct(values) = &source.value else {
        return Err("the source block is not a struct".into());
    };
    schema
        .fields()
        .iter()
        .position(|f| f.name == name)
        .and_then(|i| values.get(i))
        .ok_or_else(|| format!("the source block has no field {name:?}"))
}

/// Java's `String.valueOf` of a source field, as Debezium concatenates it into a generated id.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Int64(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Boolean(v) => v.to_string(),
        other => format!("{other:?}"),
    }
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` in UTC (`Z`): Debezium's `time`.
pub fn iso_millis(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let ms = epoch_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Debezium's extension attribute name: `iodebezium` and the ASCII letters and digits of `name`.
fn extension_name(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    out.extend(name.chars().filter(char::is_ascii_alphanumeric));
    out
}

/// Writes one extension attribute per field of `block` (INT64 values as strings, as the
/// CloudEvents type system has no 64-bit integer); all null when `block` is `None`.
fn write_extensions(
    out: &mut String,
    prefix: &str,
    schema: &Schema,
    block: Option<&Value>,
) -> Result<(), String> {
    let values = match block {
        Some(Value::Struct(values)) => Some(values),
        Some(Value::Null) | None => None,
        Some(_) => return Err("a metadata block is not a struct".into()),
    };
    for (i, field) in schema.fields().iter().enumerate() {
        out.push(',');
        write_json_string(out, &extension_name(prefix, &field.name));
        out.push(':');
        match values.and_then(|v| v.get(i)).unwrap_or(&Value::Null) {
            Value::Null => out.push_str("null"),
            Value::Int64(v) => write_json_string(out, &v.to_string()),
            Value::Int8(_)
            | Value::Int16(_)
            | Value::Int32(_)
            | Value::Boolean(_)
            | Value::String(_) => write_json(out, Some(&field.schema), &values.unwrap()[i])?,
            other => {
                return Err(format!(
                    "source field {:?} of type {} cannot be a CloudEvents extension attribute",
                    field.name,
                    other.java_class()
                ))
            }
        }
    }
    Ok(())
}

/// The transaction block's schema (Debezium's `event.block` v1), for its extension attributes and
/// the `transaction` header.
pub fn transaction_block_schema() -> Schema {
    let field = |name: &str, kind: Type| super::Field {
        name: name.into(),
        schema: Schema::new(kind, false),
    };
    Schema::new(
        Type::Struct(vec![
            field("id", Type::String),
            field("total_order", Type::Int64),
            field("data_collection_order", Type::Int64),
        ]),
        true,
    )
    .named("event.block", Some(1))
}

/// The structured-mode event Debezium 3.6's CloudEventsConverter writes for `event` (see the
/// module documentation).
pub fn write_structured(o: &CloudEventsOptions, event: &CloudEvent) -> Result<Bytes, String> {
    let source = event.source;
    let text_field = |name: &str| -> Result<String, String> {
        match source_field(source, name)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("source field {name:?} is {other:?}, not a string")),
        }
    };
    let name = text_field("name")?;
    let id = match o.id {
        MetadataSource::Header => event
            .id_header
            .ok_or("no id header (metadata.source takes id from it)")?
            .to_string(),
        MetadataSource::Generate => format!(
            "name:{name};lsn:{};txId:{};sequence:{}",
            value_text(source_field(source, "lsn")?),
            value_text(source_field(source, "txId")?),
            value_text(source_field(source, "sequence")?)
        ),
    };
    let event_type = match o.event_type {
        MetadataSource::Header => event
            .type_header
            .ok_or("no type header (metadata.source takes type from it): add table.fields.additional.placement=type:header")?
            .to_string(),
        MetadataSource::Generate => GENERATED_TYPE.to_string(),
    };
    let Value::Int64(ts_ms) = source_field(source, "ts_ms")? else {
        return Err("source field \"ts_ms\" is not an int64".into());
    };
    let data_schema = match &event.data.schema {
        Some(s @ Schema {
            kind: Type::Struct(_),
            ..
        }) => Schema::new(s.kind.clone(), false).named(DATA_SCHEMA_NAME, None),
        Some(s) => {
            return Err(format!(
                "the value is a {}, and Debezium's CloudEventsConverter fails on anything but a struct (\"Mismatching schema\"): expand the payload (table.expand.json.payload=true) and store a JSON object, or add envelope placements",
                s.kind.json_name()
            ))
        }
        None => return Err("the value has no schema".into()),
    };

    let mut out = String::from("{\"id\":");
    write_json_string(&mut out, &id);
    out.push_str(",\"source\":");
    write_json_string(&mut out, &format!("/debezium/postgresql/{name}"));
    out.push_str(",\"specversion\":\"1.0\",\"type\":");
    write_json_string(&mut out, &event_type);
    out.push_str(",\"time\":");
    write_json_string(&mut out, &iso_millis(*ts_ms));
    out.push_str(",\"datacontenttype\":\"application/json\"");
    if o.extension_attributes {
        out.push_str(",\"iodebeziumop\":");
        write_json_string(&mut out, event.op);
        let source_schema = source
            .schema
            .as_ref()
            .ok_or("the source block has no schema")?;
        write_extensions(&mut out, "iodebezium", source_schema, Some(&source.value))?;
        write_extensions(
            &mut out,
            "iodebeziumtx",
            &transaction_block_schema(),
            event.transaction.map(|t| &t.value),
        )?;
    }
    out.push_str(",\"data\":");
    if o.data_schemas {
        out.push_str("{\"schema\":");
        write_schema(&mut out, &data_schema, None);
        out.push_str(",\"payload\":");
        write_json(&mut out, Some(&data_schema), &event.data.value)?;
        out.push('}');
    } else {
        write_json(&mut out, Some(&data_schema), &event.data.value)?;
    }
    out.push('}');
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::*;
    use crate::convert::Field;

    fn options(pairs: &[(&str, &str)]) -> Result<CloudEventsOptions, String> {
        let mut m = map(pairs);
        m.insert("value.converter".into(), CLOUD_EVENTS_CONVERTER.into());
        CloudEventsOptions::from_map(&m, "value.converter.").map_err(|e| e.to_string())
    }

    #[test]
    fn options_follow_debeziums_names_and_defaults() {
        let o = options(&[("value.converter.metadata.source", "header")]).unwrap();
        assert_eq!(
            o,
            CloudEventsOptions {
                data_schemas: true,
                extension_attributes: true,
                id: MetadataSource::Header,
                event_type: MetadataSource::Header,
            }
        );
        let o = options(&[
            (
                "value.converter.metadata.source",
                "header,id:generate,type:header,dataSchemaName:generate",
            ),
            ("value.converter.json.schemas.enable", "false"),
            ("value.converter.extension.attributes.enable", "FALSE"),
            ("value.converter.serializer.type", "json"),
            ("value.converter.schema.name.adjustment.mode", "avro"),
        ])
        .unwrap();
        assert_eq!(o.id, MetadataSource::Generate);
        assert_eq!(o.event_type, MetadataSource::Header);
        assert!(!o.data_schemas && !o.extension_attributes);
    }

    #[test]
    fn options_debezium_cannot_use_for_the_outbox_are_refused_with_the_fix() {
        let e = options(&[]).unwrap_err();
        assert!(
            e.contains("metadata.source") && e.contains("null value"),
            "{e}"
        );
        let e = options(&[("value.converter.metadata.source", "value,id:header")]).unwrap_err();
        assert!(e.contains("HeaderFrom"), "{e}");
        let e = options(&[("value.converter.metadata.source", "header,id:made")]).unwrap_err();
        assert!(e.contains("generate"), "{e}");
        let e = options(&[("value.converter.metadata.source", "header,key:header")]).unwrap_err();
        assert!(e.contains("unknown attribute"), "{e}");
        let e = options(&[
            ("value.converter.metadata.source", "header"),
            ("value.converter.data.serializer.type", "avro"),
        ])
        .unwrap_err();
        assert!(
            e.contains("data.serializer.type") && e.contains("Avro"),
            "{e}"
        );
        let e = options(&[
            ("value.converter.metadata.source", "header"),
            (
                "value.converter.opentelemetry.tracing.attributes.enable",
                "true",
            ),
        ])
        .unwrap_err();
        assert!(e.contains("traceparent"), "{e}");
    }

    #[test]
    fn times_are_millisecond_iso_instants_in_utc() {
        assert_eq!(iso_millis(1_796_414_406_654), "2026-12-04T20:00:06.654Z");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    fn source_block() -> Data {
        let f = |name: &str, kind: Type, optional: bool| Field {
            name: name.into(),
            schema: Schema::new(kind, optional),
        };
        Data::new(
            Schema::new(
                Type::Struct(vec![
                    f("name", Type::String, false),
                    f("ts_ms", Type::Int64, false),
                    f("sequence", Type::String, true),
                    f("txId", Type::Int64, true),
                    f("lsn", Type::Int64, true),
                    f("xmin", Type::Int64, true),
                ]),
                false,
            ),
            Value::Struct(vec![
                s("live"),
                Value::Int64(1_796_414_406_654),
                s("[null,\"22189328\"]"),
                Value::Int64(727),
                Value::Int64(22_189_328),
                Value::Null,
            ]),
        )
    }

    fn payload() -> Data {
        Data::new(
            Schema::new(
                Type::Struct(vec![Field {
                    name: "id".into(),
                    schema: Schema::new(Type::Int32, true),
                }]),
                false,
            ),
            Value::Struct(vec![Value::Int32(1)]),
        )
    }

    #[test]
    fn structured_events_are_debeziums_bytes() {
        let source = source_block();
        let data = payload();
        let event = CloudEvent {
            id_header: Some("11111111-1111-4111-8111-111111111111"),
            type_header: Some("OrderCreated"),
            op: "c",
            source: &source,
            transaction: None,
            data: &data,
        };
        let o = options(&[("value.converter.metadata.source", "header")]).unwrap();
        let text = |o: &CloudEventsOptions, e: &CloudEvent| {
            String::from_utf8(write_structured(o, e).unwrap().to_vec()).unwrap()
        };
        assert_eq!(
            text(&o, &event),
            r#"{"id":"11111111-1111-4111-8111-111111111111","source":"/debezium/postgresql/live","specversion":"1.0","type":"OrderCreated","time":"2026-12-04T20:00:06.654Z","datacontenttype":"application/json","iodebeziumop":"c","iodebeziumname":"live","iodebeziumtsms":"1796414406654","iodebeziumsequence":"[null,\"22189328\"]","iodebeziumtxId":"727","iodebeziumlsn":"22189328","iodebeziumxmin":null,"iodebeziumtxid":null,"iodebeziumtxtotalorder":null,"iodebeziumtxdatacollectionorder":null,"data":{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"id"}],"optional":false,"name":"io.debezium.connector.postgresql.Data"},"payload":{"id":1}}}"#
        );
        let o = options(&[
            (
                "value.converter.metadata.source",
                "header,id:generate,type:generate",
            ),
            ("value.converter.json.schemas.enable", "false"),
            ("value.converter.extension.attributes.enable", "false"),
        ])
        .unwrap();
        assert_eq!(
            text(&o, &event),
            r#"{"id":"name:live;lsn:22189328;txId:727;sequence:[null,\"22189328\"]","source":"/debezium/postgresql/live","specversion":"1.0","type":"io.debezium.connector.postgresql.DataChangeEvent","time":"2026-12-04T20:00:06.654Z","datacontenttype":"application/json","data":{"id":1}}"#
        );
        // A value that is no struct: Debezium's task dies on it ("Mismatching schema").
        let text_value = Data::new(json_doc(), s("[1, 2]"));
        let e = write_structured(
            &o,
            &CloudEvent {
                data: &text_value,
                ..event
            },
        )
        .unwrap_err();
        assert!(
            e.contains("Mismatching schema") && e.contains("table.expand.json.payload"),
            "{e}"
        );
        let o = options(&[("value.converter.metadata.source", "header")]).unwrap();
        let e = write_structured(
            &o,
            &CloudEvent {
                type_header: None,
                ..event
            },
        )
        .unwrap_err();
        assert!(e.contains("type:header"), "{e}");
    }
}
