//! The converters a connector names (`key.converter`, `value.converter`): [`Converter`], what
//! each can carry ([`Converter::check`], before any row) and the bytes it writes
//! ([`Converter::convert`]); and `[converters]` parsed into [`Converters`].
//!
//! Owns the choice of converter and its options; the JSON and text forms are `json`'s and
//! `text`'s.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::cloudevents::{self, CloudEventsOptions, CLOUD_EVENTS_CONVERTER};
use super::decimal::decimal_text;
use super::json::write_schema;
use super::text::{header_bytes, java_to_string};
use super::{write_json, Data, Schema, Type, Value};

pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const BINARY_DATA_CONVERTER: &str = "io.debezium.converters.BinaryDataConverter";
pub const BYTE_BUFFER_CONVERTER: &str = "io.debezium.converters.ByteBufferConverter";
pub const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

/// The converter classes outboxd emulates, for error messages.
pub const SUPPORTED_CONVERTERS: &[&str] = &[
    STRING_CONVERTER,
    JSON_CONVERTER,
    BYTE_ARRAY_CONVERTER,
    BINARY_DATA_CONVERTER,
    BYTE_BUFFER_CONVERTER,
    CLOUD_EVENTS_CONVERTER,
];

/// A key or value converter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    /// outboxd's default: text as UTF-8, bytes raw, numbers as text, structs as schemaless JSON.
    Raw,
    String,
    Json {
        schemas_enable: bool,
    },
    ByteArray,
    /// `class` is the name it was configured with (BinaryDataConverter or ByteBufferConverter).
    BinaryData {
        class: &'static str,
        delegate: Option<Box<Converter>>,
    },
    /// Debezium's CloudEventsConverter (value only): the event needs the record's metadata, so
    /// the router writes it ([`cloudevents::write_structured`]), not [`Converter::convert`].
    CloudEvents(CloudEventsOptions),
}

impl Converter {
    /// The Kafka Connect class this converter emulates.
    pub fn class_name(&self) -> &'static str {
        match self {
            Converter::Raw => "outboxd default (raw text and bytes)",
            Converter::String => STRING_CONVERTER,
            Converter::Json { .. } => JSON_CONVERTER,
            Converter::ByteArray => BYTE_ARRAY_CONVERTER,
            Converter::BinaryData { class, .. } => class,
            Converter::CloudEvents(_) => CLOUD_EVENTS_CONVERTER,
        }
    }

    /// Whether this converter writes Connect schemas into the bytes (JsonConverter with
    /// `schemas.enable`, directly or as the delegate of BinaryDataConverter).
    pub fn writes_schemas(&self) -> bool {
        match self {
            Converter::Json { schemas_enable } => *schemas_enable,
            Converter::BinaryData {
                delegate: Some(d), ..
            } => d.writes_schemas(),
            _ => false,
        }
    }

    /// Checks up front that values of `schema` can be converted (a column whose type the converter
    /// cannot carry is a configuration problem, reported before any record is produced).
    pub fn check(&self, schema: &Schema) -> Result<(), String> {
        match self {
            Converter::Raw | Converter::Json { .. } => Ok(()),
            // A struct only, which is known per row (an expanded payload): checked there.
            Converter::CloudEvents(_) => Ok(()),
            Converter::String if schema.contains_bytes() => Err(format!(
                "{STRING_CONVERTER} cannot carry binary (bytea) data: Kafka Connect would write the Java object's description instead of the bytes; use {BYTE_ARRAY_CONVERTER} or {BINARY_DATA_CONVERTER}"
            )),
            Converter::String => Ok(()),
            Converter::ByteArray if schema.kind != Type::Bytes => Err(format!(
                "{BYTE_ARRAY_CONVERTER} only carries bytes, and this is a {} (Kafka Connect fails with \"Invalid schema type for ByteArrayConverter\"); use {STRING_CONVERTER} or {JSON_CONVERTER}",
                schema.kind.connect_name()
            )),
            Converter::ByteArray | Converter::BinaryData { .. } if schema.decimal_scale().is_some() => Err(format!(
                "{} carries byte arrays, and a numeric or money column is a Connect Decimal (a java.math.BigDecimal), which Kafka Connect refuses (\"not compatible with objects of type class java.math.BigDecimal\"); use {STRING_CONVERTER} or {JSON_CONVERTER}",
                self.class_name()
            )),
            Converter::ByteArray => Ok(()),
            Converter::BinaryData { .. } if schema.kind == Type::Bytes => Ok(()),
            Converter::BinaryData { class, delegate } => match delegate {
                Some(d) => d.check(schema),
                None => Err(format!(
                    "{class} passes a {} on to its delegate converter, and none is configured; set delegate.converter.type (e.g. \"value.converter.delegate.converter.type\" = \"{JSON_CONVERTER}\")",
                    schema.kind.connect_name()
                )),
            },
        }
    }

    /// Serializes `data`: `Ok(None)` is a null key or value.
    pub fn convert(&self, data: &Data) -> Result<Option<Bytes>, String> {
        let schema = data.schema.as_ref();
        match self {
            Converter::CloudEvents(_) => Err(format!(
                "{CLOUD_EVENTS_CONVERTER} writes an event from the record's metadata, not a value alone"
            )),
            Converter::Raw => match &data.value {
                Value::Null => Ok(None),
                value if decimal_text(schema, value, true).is_some() => {
                    Ok(decimal_text(schema, value, true).map(Bytes::from))
                }
                Value::String(s) => Ok(Some(Bytes::copy_from_slice(s.as_bytes()))),
                Value::Bytes(b) => Ok(Some(b.clone())),
                Value::Array(_) | Value::Struct(_) => {
                    let mut out = String::new();
                    write_json(&mut out, schema, &data.value)?;
                    Ok(Some(Bytes::from(out)))
                }
                other => {
                    let mut out = String::new();
                    java_to_string(&mut out, schema, other)?;
                    Ok(Some(Bytes::from(out)))
                }
            },
            Converter::String => match &data.value {
                Value::Null => Ok(None),
                value => {
                    let mut out = String::new();
                    java_to_string(&mut out, schema, value)?;
                    Ok(Some(Bytes::from(out)))
                }
            },
            Converter::Json { schemas_enable } => {
                if schema.is_none() && data.value == Value::Null {
                    return Ok(None);
                }
                let mut out = String::new();
                if *schemas_enable {
                    out.push_str("{\"schema\":");
                    match schema {
                        Some(s) => write_schema(&mut out, s, None),
                        None => out.push_str("null"),
                    }
                    out.push_str(",\"payload\":");
                    write_json(&mut out, schema, &data.value)?;
                    out.push('}');
                } else {
                    write_json(&mut out, schema, &data.value)?;
                }
                Ok(Some(Bytes::from(out)))
            }
            Converter::ByteArray => {
                if let Some(s) = schema {
                    if s.kind != Type::Bytes {
                        return Err(format!(
                            "Invalid schema type for ByteArrayConverter: {}",
                            s.kind.connect_name()
                        ));
                    }
                }
                match &data.value {
                    Value::Null => Ok(None),
                    Value::Bytes(_) if schema.and_then(Schema::decimal_scale).is_some() => Err(
                        "ByteArrayConverter is not compatible with objects of type class java.math.BigDecimal".into(),
                    ),
                    Value::Bytes(b) => Ok(Some(b.clone())),
                    other => Err(format!(
                        "ByteArrayConverter is not compatible with objects of type {}",
                        other.java_class()
                    )),
                }
            }
            Converter::BinaryData { class, delegate } => {
                if schema.and_then(Schema::decimal_scale).is_some() && data.value != Value::Null {
                    return Err(format!(
                        "{class} cannot convert a Decimal (class java.math.BigDecimal)"
                    ));
                }
                let is_bytes = schema.map_or(true, |s| s.kind == Type::Bytes);
                match (&data.value, is_bytes) {
                    (Value::Bytes(b), true) => Ok(Some(b.clone())),
                    (Value::Null, true) => Ok(None),
                    (value, _) => match delegate {
                        Some(d) => d.convert(data),
                        None => Err(format!(
                            "{class}: a value of type {} requires a delegate.converter.type to be configured",
                            schema.map_or(value.java_class(), |s| s.kind.connect_name())
                        )),
                    },
                }
            }
        }
    }
}

/// A bad `[converters]` option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("converter option \"{key}\": {message}")]
pub struct ConverterConfigError {
    pub key: String,
    pub message: String,
}

/// The header converter (`header.converter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderConverter {
    /// `SimpleHeaderConverter`, Kafka Connect's default ([`header_bytes`]).
    Simple,
    /// `JsonConverter` (with `header.converter.schemas.enable`, default true): each header value
    /// as JsonConverter writes a record value.
    Json { schemas_enable: bool },
}

impl HeaderConverter {
    /// A header value's bytes (`None`: a null header).
    pub fn convert(&self, data: &Data) -> Result<Option<Bytes>, String> {
        match self {
            HeaderConverter::Simple => Ok(header_bytes(data)),
            HeaderConverter::Json { schemas_enable } => Converter::Json {
                schemas_enable: *schemas_enable,
            }
            .convert(data),
        }
    }
}

/// The key, value and header converters (`[converters]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converters {
    pub key: Converter,
    pub value: Converter,
    pub header: HeaderConverter,
}

impl Default for Converters {
    fn default() -> Self {
        Converters {
            key: Converter::Raw,
            value: Converter::Raw,
            header: HeaderConverter::Simple,
        }
    }
}

impl Converters {
    /// Validates the `[converters]` section: Kafka Connect's worker/connector key names.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Converters, ConverterConfigError> {
        let err = |key: &str, message: String| ConverterConfigError {
            key: key.to_string(),
            message,
        };
        let mut known: Vec<String> = vec![
            "header.converter".into(),
            "header.converter.schemas.enable".into(),
        ];
        known.extend(cloudevents::option_keys("value.converter."));
        for side in ["key", "value"] {
            for suffix in [
                "converter",
                "converter.schemas.enable",
                "converter.delegate.converter.type",
                "converter.delegate.converter.type.schemas.enable",
            ] {
                known.push(format!("{side}.{suffix}"));
            }
        }
        for key in map.keys() {
            if !known.contains(key) {
                return Err(err(
                    key,
                    format!("unknown option; known options: {}", known.join(", ")),
                ));
            }
        }
        let boolean = |key: &str, default: bool| -> Result<bool, ConverterConfigError> {
            match map.get(key).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(err(key, format!("{v:?}: expected true or false"))),
            }
        };
        let class = |key: &str,
                     class: &str,
                     schemas_key: &str,
                     allow_binary: bool|
         -> Result<Converter, ConverterConfigError> {
            // JsonConverter's own default is schemas.enable=true.
            let schemas_enable = boolean(schemas_key, true)?;
            match class.trim() {
                STRING_CONVERTER => Ok(Converter::String),
                JSON_CONVERTER => Ok(Converter::Json { schemas_enable }),
                BYTE_ARRAY_CONVERTER => Ok(Converter::ByteArray),
                BINARY_DATA_CONVERTER | BYTE_BUFFER_CONVERTER if allow_binary => {
                    Ok(Converter::BinaryData {
                        class: if class.trim() == BINARY_DATA_CONVERTER {
                            BINARY_DATA_CONVERTER
                        } else {
                            BYTE_BUFFER_CONVERTER
                        },
                        delegate: None,
                    })
                }
                other => Err(err(
                    key,
                    format!(
                        "unknown or unsupported converter class {other:?}; supported: {}",
                        if allow_binary {
                            SUPPORTED_CONVERTERS.join(", ")
                        } else {
                            SUPPORTED_CONVERTERS[..3].join(", ")
                        }
                    ),
                )),
            }
        };
        let side = |side: &str| -> Result<Converter, ConverterConfigError> {
            let key = format!("{side}.converter");
            let Some(name) = map.get(&key) else {
                return Ok(Converter::Raw);
            };
            if name.trim() == CLOUD_EVENTS_CONVERTER {
                if side == "key" {
                    return Err(err(
                        &key,
                        format!("{CLOUD_EVENTS_CONVERTER} converts record values only (Debezium's converter fails on an outbox key: \"Mismatching schema\"); use it as value.converter"),
                    ));
                }
                return Ok(Converter::CloudEvents(CloudEventsOptions::from_map(
                    map,
                    &format!("{key}."),
                )?));
            }
            let mut converter = class(&key, name, &format!("{key}.schemas.enable"), true)?;
            if let Converter::BinaryData { delegate, .. } = &mut converter {
                let dkey = format!("{key}.delegate.converter.type");
                if let Some(dname) = map.get(&dkey) {
                    *delegate = Some(Box::new(class(
                        &dkey,
                        dname,
                        &format!("{dkey}.schemas.enable"),
                        false,
                    )?));
                }
            }
            Ok(converter)
        };
        let header = match map.get("header.converter").map(|c| c.trim()) {
            None | Some(SIMPLE_HEADER_CONVERTER) => HeaderConverter::Simple,
            Some(JSON_CONVERTER) => HeaderConverter::Json {
                schemas_enable: boolean("header.converter.schemas.enable", true)?,
            },
            Some(class) => {
                return Err(err(
                    "header.converter",
                    format!("{class:?} is not supported; outboxd writes headers as {SIMPLE_HEADER_CONVERTER} (Kafka Connect's default) or {JSON_CONVERTER} does"),
                ))
            }
        };
        if header == HeaderConverter::Simple && map.contains_key("header.converter.schemas.enable")
        {
            return Err(err(
                "header.converter.schemas.enable",
                format!("only {JSON_CONVERTER} as header.converter has this option; remove it"),
            ));
        }
        let value = side("value")?;
        if !matches!(value, Converter::CloudEvents(_)) {
            if let Some(k) = cloudevents::option_keys("value.converter.")
                .into_iter()
                .find(|k| map.contains_key(k))
            {
                return Err(err(
                    &k,
                    format!("an option of {CLOUD_EVENTS_CONVERTER}, and value.converter is {}; remove it", value.class_name()),
                ));
            }
        }
        Ok(Converters {
            key: side("key")?,
            value,
            header,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::*;
    use crate::convert::*;
    use bytes::Bytes;
    use std::collections::BTreeMap;

    #[test]
    fn json_converter_with_and_without_schemas_matches_golden_case_02_03() {
        let key = Data::new(string(false), s("o-1"));
        let with = Converter::Json {
            schemas_enable: true,
        };
        let without = Converter::Json {
            schemas_enable: false,
        };
        assert_eq!(
            conv(&with, &key).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"o-1"}"#
        );
        assert_eq!(conv(&without, &key).unwrap(), r#""o-1""#);
        let value = Data::new(json_doc(), s(r#"{"note": "café \"q\""}"#));
        assert_eq!(
            conv(&with, &value).unwrap(),
            r#"{"schema":{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1},"payload":"{\"note\": \"café \\\"q\\\"\"}"}"#
        );
        let null = Data::new(json_doc(), Value::Null);
        assert_eq!(
            conv(&with, &null).unwrap(),
            r#"{"schema":{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1},"payload":null}"#
        );
        assert_eq!(conv(&without, &null).unwrap(), "null");
        // A tombstone (no schema, no value) is a null record value for every converter.
        for c in [
            with,
            without,
            Converter::String,
            Converter::Raw,
            Converter::ByteArray,
        ] {
            assert_eq!(c.convert(&Data::tombstone()).unwrap(), None);
        }
    }

    #[test]
    fn bytes_are_raw_or_base64() {
        let bytes = Data::new(
            Schema::new(Type::Bytes, true),
            Value::Bytes(Bytes::from_static(&[0, 0, 0, 0, 0x2a, 1, 2, 0xff, 0])),
        );
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: true
                },
                &bytes
            )
            .unwrap(),
            r#"{"schema":{"type":"bytes","optional":true},"payload":"AAAAACoBAv8A"}"#
        );
        for c in [
            Converter::ByteArray,
            Converter::Raw,
            Converter::BinaryData {
                class: BINARY_DATA_CONVERTER,
                delegate: None,
            },
        ] {
            assert_eq!(
                c.convert(&bytes).unwrap().unwrap().as_ref(),
                &[0, 0, 0, 0, 0x2a, 1, 2, 0xff, 0]
            );
        }
        assert_eq!(header_bytes(&bytes).unwrap(), "AAAAACoBAv8A");
        assert!(Converter::String.convert(&bytes).is_err());
        assert!(Converter::String
            .check(bytes.schema.as_ref().unwrap())
            .is_err());
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn binary_data_converter_delegates_everything_but_bytes() {
        let text = Data::new(string(true), s("hi"));
        let bare = Converter::BinaryData {
            class: BINARY_DATA_CONVERTER,
            delegate: None,
        };
        assert!(bare.convert(&text).is_err());
        assert!(bare.check(&string(true)).is_err());
        assert!(bare.convert(&Data::new(string(true), Value::Null)).is_err());
        let json = Converter::BinaryData {
            class: BINARY_DATA_CONVERTER,
            delegate: Some(Box::new(Converter::Json {
                schemas_enable: true,
            })),
        };
        assert_eq!(
            conv(&json, &text).unwrap(),
            r#"{"schema":{"type":"string","optional":true},"payload":"hi"}"#
        );
        assert!(json.writes_schemas());
    }

    #[test]
    fn byte_array_converter_refuses_non_bytes() {
        let text = Data::new(string(false), s("k"));
        assert!(Converter::ByteArray.convert(&text).is_err());
        assert!(Converter::ByteArray.check(&string(false)).is_err());
    }

    #[test]
    fn integer_keys_keep_their_type() {
        let key = Data::new(Schema::new(Type::Int32, false), Value::Int32(42));
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: true
                },
                &key
            )
            .unwrap(),
            r#"{"schema":{"type":"int32","optional":false},"payload":42}"#
        );
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: false
                },
                &key
            )
            .unwrap(),
            "42"
        );
        assert_eq!(conv(&Converter::String, &key).unwrap(), "42");
        assert_eq!(conv(&Converter::Raw, &key).unwrap(), "42");
        assert_eq!(header_bytes(&key).unwrap(), "42");
    }

    #[test]
    fn converter_config() {
        assert_eq!(
            Converters::from_map(&BTreeMap::new()).unwrap(),
            Converters::default()
        );
        let c = Converters::from_map(&map(&[
            ("key.converter", JSON_CONVERTER),
            ("value.converter", JSON_CONVERTER),
            ("value.converter.schemas.enable", "false"),
            ("header.converter", SIMPLE_HEADER_CONVERTER),
        ]))
        .unwrap();
        assert_eq!(
            c.key,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: false
            }
        );
        let c = Converters::from_map(&map(&[
            ("key.converter", STRING_CONVERTER),
            ("value.converter", BYTE_BUFFER_CONVERTER),
            ("value.converter.delegate.converter.type", JSON_CONVERTER),
            (
                "value.converter.delegate.converter.type.schemas.enable",
                "false",
            ),
        ]))
        .unwrap();
        assert_eq!(c.key, Converter::String);
        assert_eq!(
            c.value,
            Converter::BinaryData {
                class: BYTE_BUFFER_CONVERTER,
                delegate: Some(Box::new(Converter::Json {
                    schemas_enable: false
                }))
            }
        );
        let err = Converters::from_map(&map(&[(
            "value.converter",
            "io.confluent.connect.avro.AvroConverter",
        )]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("AvroConverter")
                && err.contains(STRING_CONVERTER)
                && err.contains(BYTE_BUFFER_CONVERTER),
            "{err}"
        );
        let err = Converters::from_map(&map(&[(
            "header.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        )]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SimpleHeaderConverter") && err.contains(JSON_CONVERTER),
            "{err}"
        );
        let c = Converters::from_map(&map(&[
            ("header.converter", JSON_CONVERTER),
            ("header.converter.schemas.enable", "false"),
        ]))
        .unwrap();
        assert_eq!(
            c.header,
            HeaderConverter::Json {
                schemas_enable: false
            }
        );
        let err = Converters::from_map(&map(&[("header.converter.schemas.enable", "true")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("remove it"), "{err}");
        // CloudEventsConverter: the value only, its options only with it.
        let c = Converters::from_map(&map(&[
            ("value.converter", CLOUD_EVENTS_CONVERTER),
            ("value.converter.metadata.source", "header"),
        ]))
        .unwrap();
        assert!(matches!(c.value, Converter::CloudEvents(_)));
        let err = Converters::from_map(&map(&[("key.converter", CLOUD_EVENTS_CONVERTER)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("value.converter"), "{err}");
        let err = Converters::from_map(&map(&[
            ("value.converter", JSON_CONVERTER),
            ("value.converter.metadata.source", "header"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("value.converter.metadata.source"), "{err}");
        let err = Converters::from_map(&map(&[("value.converter.schema.enable", "false")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown option"), "{err}");
        let err = Converters::from_map(&map(&[
            ("key.converter", JSON_CONVERTER),
            ("key.converter.schemas.enable", "yes"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("true or false"), "{err}");
    }
}
