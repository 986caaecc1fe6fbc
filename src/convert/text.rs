//! Connect's two text forms of a value: `Values.convertToString` (what SimpleHeaderConverter
//! writes for headers: strings as they are, numbers in Java's format, bytes as base64, structs
//! and arrays as JSON-like text) and Java's `toString()` of the value Connect holds (what
//! StringConverter writes: `Struct{a=1,b=x}`, `[1, 2]`).
//!
//! Owns these two layouts only.

use std::fmt::Write as _;

use bytes::Bytes;

use super::decimal::decimal_text;
use super::{base64, java_double, java_float, Data, Schema, Value, STRING_CONVERTER};

/// `SimpleHeaderConverter.fromConnectHeader`: null stays null, everything else is
/// `Values.convertToString` in UTF-8.
pub fn header_bytes(data: &Data) -> Option<Bytes> {
    if data.value == Value::Null {
        return None;
    }
    let mut out = String::new();
    values_append(&mut out, data.schema.as_ref(), &data.value, false);
    Some(Bytes::from(out))
}

/// Connect's `Values.append`: strings bare at top level and quoted when embedded, bytes as base64,
/// lists as `[a,b]`, structs as `{"f":v}`.
pub(super) fn values_append(
    out: &mut String,
    schema: Option<&Schema>,
    value: &Value,
    embedded: bool,
) {
    match value {
        Value::Null => out.push_str("null"),
        Value::String(s) if embedded => {
            out.push('"');
            for c in s.chars() {
                if c == '\\' || c == '"' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Value::String(s) => out.push_str(s),
        Value::Bytes(_) if decimal_text(schema, value, false).is_some() => {
            // A BigDecimal is a Number: appended with its toString(), quoted or not.
            out.push_str(&decimal_text(schema, value, false).unwrap_or_default());
        }
        Value::Bytes(b) => {
            let encoded = base64(b);
            if embedded {
                let _ = write!(out, "\"{encoded}\"");
            } else {
                out.push_str(&encoded);
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                values_append(out, item_schema, v, true);
            }
            out.push(']');
        }
        Value::Struct(values) => {
            let fields = schema.map_or(&[][..], Schema::fields);
            out.push('{');
            for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                values_append(out, None, &Value::String(f.name.clone()), true);
                out.push(':');
                values_append(out, Some(&f.schema), v, true);
            }
            out.push('}');
        }
        scalar => {
            let _ = java_to_string(out, schema, scalar);
        }
    }
}

/// Java's `toString()` of the value Connect holds (what StringConverter writes).
pub(super) fn java_to_string(
    out: &mut String,
    schema: Option<&Schema>,
    value: &Value,
) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
            if let Some(v) = value.integer() {
                let _ = write!(out, "{v}");
            }
        }
        Value::Float32(v) => out.push_str(&java_float(*v)),
        Value::Float64(v) => out.push_str(&java_double(*v)),
        Value::String(s) => out.push_str(s),
        Value::Bytes(_) if decimal_text(schema, value, false).is_some() => {
            out.push_str(&decimal_text(schema, value, false).unwrap_or_default());
        }
        Value::Bytes(_) => {
            return Err(format!(
                "{STRING_CONVERTER} cannot carry binary data (Kafka Connect writes the Java object's description)"
            ))
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                java_to_string(out, item_schema, v)?;
            }
            out.push(']');
        }
        Value::Struct(values) => {
            // Struct.toString(): non-null fields only, `name=value` joined by ",".
            let fields = schema.map_or(&[][..], Schema::fields);
            out.push_str("Struct{");
            let mut first = true;
            for (f, v) in fields.iter().zip(values) {
                if *v == Value::Null {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&f.name);
                out.push('=');
                java_to_string(out, Some(&f.schema), v)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::*;
    use crate::convert::*;

    #[test]
    fn simple_header_converter_formats() {
        assert_eq!(header_bytes(&Data::new(string(true), Value::Null)), None);
        assert_eq!(
            header_bytes(&Data::new(Schema::new(Type::Int64, false), Value::Int64(2))).unwrap(),
            "2"
        );
        assert_eq!(
            header_bytes(&Data::new(
                Schema::new(Type::Boolean, false),
                Value::Boolean(true)
            ))
            .unwrap(),
            "true"
        );
        assert_eq!(
            header_bytes(&Data::new(
                Schema::new(Type::Float64, false),
                Value::Float64(2.0)
            ))
            .unwrap(),
            "2.0"
        );
        let arr = Schema::new(Type::Array(Box::new(string(true))), true);
        assert_eq!(
            header_bytes(&Data::new(arr, Value::Array(vec![s("a\"b"), Value::Null]))).unwrap(),
            r#"["a\"b",null]"#
        );
    }
}
