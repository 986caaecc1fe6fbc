//! JsonConverter's output: Connect's schema JSON (`JsonConverter.asJsonSchema`, `field` last in
//! struct fields) and values as Jackson writes them (compact, non-ASCII unescaped, control
//! characters as `\n` or `\u00XX`, doubles as Java's `Double.toString`, bytes as base64), with
//! Connect's type checks.
//!
//! Owns the JSON text only.

use std::fmt::Write as _;

use super::{base64, java_double, java_float, Schema, Type, Value};

/// Connect's JSON form of a schema (`JsonConverter.asJsonSchema`); `field` is appended last for
/// struct fields.
pub(super) fn write_schema(out: &mut String, schema: &Schema, field: Option<&str>) {
    out.push_str("{\"type\":\"");
    out.push_str(schema.kind.json_name());
    out.push('"');
    match &schema.kind {
        Type::Array(items) => {
            out.push_str(",\"items\":");
            write_schema(out, items, None);
        }
        Type::Struct(fields) => {
            out.push_str(",\"fields\":[");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_schema(out, &f.schema, Some(&f.name));
            }
            out.push(']');
        }
        _ => {}
    }
    out.push_str(",\"optional\":");
    out.push_str(if schema.optional { "true" } else { "false" });
    if let Some(name) = &schema.name {
        out.push_str(",\"name\":");
        write_json_string(out, name);
    }
    if let Some(version) = schema.version {
        let _ = write!(out, ",\"version\":{version}");
    }
    if let Some(doc) = &schema.doc {
        out.push_str(",\"doc\":");
        write_json_string(out, doc);
    }
    if !schema.parameters.is_empty() {
        out.push_str(",\"parameters\":{");
        for (i, (k, v)) in schema.parameters.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_string(out, k);
            out.push(':');
            write_json_string(out, v);
        }
        out.push('}');
    }
    if let Some(default) = &schema.default {
        out.push_str(",\"default\":");
        write_json_string(out, default);
    }
    if let Some(field) = field {
        out.push_str(",\"field\":");
        write_json_string(out, field);
    }
    out.push('}');
}

/// `JsonConverter.convertToJson` + Jackson: the value as JSON, checked against its schema.
/// Without a schema the type is taken from the value, as Connect does.
pub fn write_json(out: &mut String, schema: Option<&Schema>, value: &Value) -> Result<(), String> {
    if let Some(s) = schema {
        if *value != Value::Null {
            check_json_type(s, value)?;
        } else if !s.optional {
            return Err(
                "Conversion error: null value for field that is required and has no default value"
                    .into(),
            );
        }
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
            if let Some(v) = value.integer() {
                let _ = write!(out, "{v}");
            }
        }
        Value::Float32(v) if v.is_finite() => out.push_str(&java_float(*v)),
        Value::Float64(v) if v.is_finite() => out.push_str(&java_double(*v)),
        // Jackson writes NaN and infinities as strings (WRITE_NAN_AS_STRINGS).
        Value::Float32(v) => write_json_string(out, &java_float(*v)),
        Value::Float64(v) => write_json_string(out, &java_double(*v)),
        Value::String(s) => write_json_string(out, s),
        Value::Bytes(b) => {
            out.push('"');
            out.push_str(&base64(b));
            out.push('"');
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item_schema, v)?;
            }
            out.push(']');
        }
        Value::Struct(values) => {
            let Some(s) = schema else {
                return Err("a struct value needs a schema".into());
            };
            out.push('{');
            for (i, (f, v)) in s.fields().iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, &f.name);
                out.push(':');
                write_json(out, Some(&f.schema), v)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// JsonConverter's type check: "Invalid type for STRUCT: class java.lang.String".
pub(super) fn check_json_type(schema: &Schema, value: &Value) -> Result<(), String> {
    let ok = matches!(
        (&schema.kind, value),
        (Type::Boolean, Value::Boolean(_))
            | (Type::Int8, Value::Int8(_))
            | (Type::Int16, Value::Int16(_))
            | (Type::Int32, Value::Int32(_))
            | (Type::Int64, Value::Int64(_))
            | (Type::Float32, Value::Float32(_))
            | (Type::Float64, Value::Float64(_))
            | (Type::String, Value::String(_))
            | (Type::Bytes, Value::Bytes(_))
            | (Type::Array(_), Value::Array(_))
    ) || matches!((&schema.kind, value), (Type::Struct(f), Value::Struct(v)) if f.len() == v.len());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid type for {}: {}",
            schema.kind.connect_name(),
            value.java_class()
        ))
    }
}

/// A JSON string literal as Jackson writes it: `"` and `\` escaped, control characters as `\b`,
/// `\t`, `\n`, `\f`, `\r` or `\u00XX` (upper-case hex), a character outside the Basic
/// Multilingual Plane (U+10000 and above, emoji among them) as its UTF-16 surrogate pair
/// `\uD83E\uDD80` (Jackson's UTF-8 generator does not combine surrogates by default), everything
/// else (other non-ASCII included) as is.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) > 0xFFFF => {
                let mut pair = [0u16; 2];
                for unit in c.encode_utf16(&mut pair) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::*;
    use crate::convert::*;

    #[test]
    fn struct_schemas_put_field_last_and_name_version_after_optional() {
        let schema = Schema {
            kind: Type::Struct(vec![
                Field {
                    name: "payload".into(),
                    schema: json_doc(),
                },
                Field {
                    name: "seq".into(),
                    schema: Schema::new(Type::Int64, false),
                },
                Field {
                    name: "items".into(),
                    schema: Schema::new(
                        Type::Array(Box::new(Schema::new(Type::Int32, true))),
                        true,
                    ),
                },
            ]),
            optional: false,
            name: Some("golden.public.outbox.Order.Value".into()),
            version: Some(3),
            doc: None,
            parameters: Vec::new(),
            default: None,
        };
        let data = Data::new(
            schema,
            Value::Struct(vec![
                s("x"),
                Value::Int64(1),
                Value::Array(vec![Value::Int32(1), Value::Null]),
            ]),
        );
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: true
                },
                &data
            )
            .unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"payload"},{"type":"int64","optional":false,"field":"seq"},{"type":"array","items":{"type":"int32","optional":true},"optional":true,"field":"items"}],"optional":false,"name":"golden.public.outbox.Order.Value","version":3},"payload":{"payload":"x","seq":1,"items":[1,null]}}"#
        );
        assert_eq!(
            conv(&Converter::String, &data).unwrap(),
            "Struct{payload=x,seq=1,items=[1, null]}"
        );
        assert_eq!(
            conv(&Converter::Raw, &data).unwrap(),
            r#"{"payload":"x","seq":1,"items":[1,null]}"#
        );
    }

    #[test]
    fn jackson_string_escapes() {
        let mut out = String::new();
        write_json_string(&mut out, "a\"b\\c\n\t\u{1}\u{1f}\u{7f}é/€");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001F\u{7f}é/€\"");
        // Outside the BMP: the surrogate pair, upper-case, as Connect's JsonConverter writes
        // (checked with connect-json 4.4.0: "x\uD83E\uDD80y" for "x🦀y"); U+2028 stays as is.
        let mut out = String::new();
        write_json_string(&mut out, "x\u{1F980}y\u{2028}\u{10FFFF}");
        assert_eq!(out, "\"x\\uD83E\\uDD80y\u{2028}\\uDBFF\\uDFFF\"");
    }

    #[test]
    fn json_converter_checks_types_like_connect() {
        let array = Schema::new(Type::Array(Box::new(Schema::new(Type::Int32, true))), true);
        let err = Converter::Json {
            schemas_enable: false,
        }
        .convert(&Data::new(array, s("[1, 2, 3]")))
        .unwrap_err();
        assert_eq!(err, "Invalid type for ARRAY: class java.lang.String");
        let err = Converter::Json {
            schemas_enable: false,
        }
        .convert(&Data::new(string(false), Value::Null))
        .unwrap_err();
        assert!(err.contains("required"), "{err}");
        // No schema: typed from the value (Debezium's empty-array expansion).
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: true
                },
                &Data {
                    schema: None,
                    value: s("[]")
                }
            )
            .unwrap(),
            r#"{"schema":null,"payload":"[]"}"#
        );
    }
}
