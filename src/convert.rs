//! Kafka Connect's data model (the part outbox records use) and its converters, byte for byte.
//!
//! Debezium's EventRouter hands Kafka Connect a record whose key, value and headers are Connect
//! values: a [`Schema`] (type, optional flag, name, version, struct fields in order) and a [`Value`].
//! The worker's converters then turn them into bytes. The router builds the same typed values
//! ([`Data`]); this module serializes them the way Kafka Connect 3.x/4.x does:
//!
//! - [`Converter::String`]: `org.apache.kafka.connect.storage.StringConverter`, Java's `toString()`
//!   of the value in UTF-8 (`Struct{a=1,b=x}` for structs, `[1, 2]` for arrays);
//! - [`Converter::Json`]: `org.apache.kafka.connect.json.JsonConverter`, with `schemas.enable` the
//!   `{"schema":…,"payload":…}` envelope (Connect's schema JSON: `type`, `fields`/`items`,
//!   `optional`, `name`, `version`, and `field` last in struct fields), without it the bare JSON.
//!   Output is Jackson's: compact, non-ASCII unescaped, control characters as `\n` or `\u00XX`
//!   (upper-case hex), doubles as Java's `Double.toString` (`1.0E10`), bytes as base64;
//! - [`Converter::ByteArray`]: `org.apache.kafka.connect.converters.ByteArrayConverter`, bytes only;
//! - [`Converter::BinaryData`]: `io.debezium.converters.BinaryDataConverter` (and its old name
//!   `io.debezium.converters.ByteBufferConverter`): bytes as they are, anything else through the
//!   `delegate.converter.type` converter;
//! - [`Converter::Raw`]: outboxd's own default: text as UTF-8, bytes as they are, numbers and
//!   booleans as their text, structs and arrays as schemaless JSON;
//! - [`header_bytes`]: `org.apache.kafka.connect.storage.SimpleHeaderConverter` (Connect's
//!   `Values.convertToString`: strings as they are, numbers in Java's format, bytes as base64).
//!
//! A value a converter cannot represent is an error, never a silently different record.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;

/// A Connect schema type. Arrays and structs carry their element and field schemas.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Array(Box<Schema>),
    Struct(Vec<Field>),
}

impl Type {
    /// The name Connect's JSON schema uses (`Schema.Type` in lower case; FLOAT32/64 are
    /// `float`/`double`).
    pub fn json_name(&self) -> &'static str {
        match self {
            Type::Boolean => "boolean",
            Type::Int8 => "int8",
            Type::Int16 => "int16",
            Type::Int32 => "int32",
            Type::Int64 => "int64",
            Type::Float32 => "float",
            Type::Float64 => "double",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Array(_) => "array",
            Type::Struct(_) => "struct",
        }
    }

    /// Connect's `Schema.Type` name, as Connect's error messages print it.
    fn connect_name(&self) -> &'static str {
        match self {
            Type::Boolean => "BOOLEAN",
            Type::Int8 => "INT8",
            Type::Int16 => "INT16",
            Type::Int32 => "INT32",
            Type::Int64 => "INT64",
            Type::Float32 => "FLOAT32",
            Type::Float64 => "FLOAT64",
            Type::String => "STRING",
            Type::Bytes => "BYTES",
            Type::Array(_) => "ARRAY",
            Type::Struct(_) => "STRUCT",
        }
    }
}

/// A Connect schema (no defaults: nothing outboxd produces has them). `doc` and `parameters`
/// (in insertion order, as Connect's `SchemaBuilder` keeps them) are what Debezium's decimal
/// types carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    pub kind: Type,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: Vec<(String, String)>,
}

/// Connect's `Decimal` logical type: BYTES holding the two's-complement big-endian unscaled
/// value, the scale in the `scale` parameter. Connect holds it as a `java.math.BigDecimal`.
pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// A struct field: name and schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Schema {
    pub fn new(kind: Type, optional: bool) -> Schema {
        Schema {
            kind,
            optional,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
        }
    }

    /// Connect's `Decimal` v1 of `scale` (parameter `scale`), with Debezium's
    /// `connect.decimal.precision` parameter after it when the column has a precision.
    pub fn decimal(scale: i32, precision: Option<i32>, optional: bool) -> Schema {
        let mut schema = Schema::new(Type::Bytes, optional).named(DECIMAL, Some(1));
        schema.parameters = vec![("scale".into(), scale.to_string())];
        if let Some(p) = precision {
            schema
                .parameters
                .push(("connect.decimal.precision".into(), p.to_string()));
        }
        schema
    }

    /// Debezium's [`VARIABLE_SCALE_DECIMAL`] v1: a struct of `scale` (INT32) and `value` (BYTES),
    /// with Debezium's doc.
    pub fn variable_scale_decimal(optional: bool) -> Schema {
        let mut schema = Schema::new(
            Type::Struct(vec![
                Field {
                    name: "scale".into(),
                    schema: Schema::new(Type::Int32, false),
                },
                Field {
                    name: "value".into(),
                    schema: Schema::new(Type::Bytes, false),
                },
            ]),
            optional,
        )
        .named(VARIABLE_SCALE_DECIMAL, Some(1));
        schema.doc = Some("Variable scaled decimal".into());
        schema
    }

    /// The scale of a `Decimal` schema (`None` for any other schema).
    pub fn decimal_scale(&self) -> Option<i32> {
        if self.kind != Type::Bytes || self.name.as_deref() != Some(DECIMAL) {
            return None;
        }
        self.parameters
            .iter()
            .find(|(k, _)| k == "scale")
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The same schema with a (semantic) name and version, e.g. `io.debezium.data.Json` v1.
    pub fn named(mut self, name: &str, version: Option<i32>) -> Schema {
        self.name = Some(name.to_string());
        self.version = version;
        self
    }

    /// The struct fields, empty for other types.
    pub fn fields(&self) -> &[Field] {
        match &self.kind {
            Type::Struct(fields) => fields,
            _ => &[],
        }
    }

    /// Whether a BYTES schema that Connect holds as a byte array (not a `Decimal`, held as a
    /// `BigDecimal`) appears anywhere in this schema.
    pub fn contains_bytes(&self) -> bool {
        match &self.kind {
            Type::Bytes => self.decimal_scale().is_none(),
            Type::Array(items) => items.contains_bytes(),
            Type::Struct(fields) => fields.iter().any(|f| f.schema.contains_bytes()),
            _ => false,
        }
    }
}

/// A Connect value. Struct values hold one value per schema field, in field order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Bytes),
    Array(Vec<Value>),
    Struct(Vec<Value>),
}

impl Value {
    /// The Java class Connect would hold, for error messages.
    fn java_class(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "class java.lang.Boolean",
            Value::Int8(_) => "class java.lang.Byte",
            Value::Int16(_) => "class java.lang.Short",
            Value::Int32(_) => "class java.lang.Integer",
            Value::Int64(_) => "class java.lang.Long",
            Value::Float32(_) => "class java.lang.Float",
            Value::Float64(_) => "class java.lang.Double",
            Value::String(_) => "class java.lang.String",
            Value::Bytes(_) => "class [B",
            Value::Array(_) => "class java.util.ArrayList",
            Value::Struct(_) => "class org.apache.kafka.connect.data.Struct",
        }
    }

    /// Whether `self` is a valid value for `schema` (Connect's `ConnectSchema.validateValue`).
    pub fn validate(&self, schema: &Schema) -> Result<(), String> {
        let ok = match (&schema.kind, self) {
            (_, Value::Null) => {
                return if schema.optional {
                    Ok(())
                } else {
                    Err(format!(
                        "null value for a required {} field",
                        schema.kind.connect_name()
                    ))
                }
            }
            (Type::Boolean, Value::Boolean(_))
            | (Type::Int8, Value::Int8(_))
            | (Type::Int16, Value::Int16(_))
            | (Type::Int32, Value::Int32(_))
            | (Type::Int64, Value::Int64(_))
            | (Type::Float32, Value::Float32(_))
            | (Type::Float64, Value::Float64(_))
            | (Type::String, Value::String(_))
            | (Type::Bytes, Value::Bytes(_)) => true,
            (Type::Array(items), Value::Array(values)) => {
                for v in values {
                    v.validate(items)?;
                }
                true
            }
            (Type::Struct(fields), Value::Struct(values)) => {
                if fields.len() != values.len() {
                    return Err("struct value does not match its schema".into());
                }
                for (f, v) in fields.iter().zip(values) {
                    v.validate(&f.schema)
                        .map_err(|e| format!("field {:?}: {e}", f.name))?;
                }
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Invalid Java object for schema type {}: {}",
                schema.kind.connect_name(),
                self.java_class()
            ))
        }
    }
}

/// A schema and a value: Connect's `SchemaAndValue`. `schema` is `None` for a tombstone (and the
/// rare value Debezium emits without a schema).
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub schema: Option<Schema>,
    pub value: Value,
}

impl Data {
    pub fn new(schema: Schema, value: Value) -> Data {
        Data {
            schema: Some(schema),
            value,
        }
    }

    /// No schema, no value: what a tombstone carries.
    pub fn tombstone() -> Data {
        Data {
            schema: None,
            value: Value::Null,
        }
    }
}

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
fn values_append(out: &mut String, schema: Option<&Schema>, value: &Value, embedded: bool) {
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
            let item_schema = match schema.map(|s| &s.kind) {
                Some(Type::Array(items)) => Some(&**items),
                _ => None,
            };
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
fn java_to_string(out: &mut String, schema: Option<&Schema>, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int8(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int16(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int32(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
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
            let item_schema = match schema.map(|s| &s.kind) {
                Some(Type::Array(items)) => Some(&**items),
                _ => None,
            };
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

/// Connect's JSON form of a schema (`JsonConverter.asJsonSchema`); `field` is appended last for
/// struct fields.
fn write_schema(out: &mut String, schema: &Schema, field: Option<&str>) {
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
        Value::Int8(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int16(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int32(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
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
            let item_schema = match schema.map(|s| &s.kind) {
                Some(Type::Array(items)) => Some(&**items),
                _ => None,
            };
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
fn check_json_type(schema: &Schema, value: &Value) -> Result<(), String> {
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
/// `\t`, `\n`, `\f`, `\r` or `\u00XX` (upper-case hex), everything else (non-ASCII included) as is.
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
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Debezium's `io.debezium.data.VariableScaleDecimal`: a struct of `scale` (INT32) and `value`
/// (the unscaled value's bytes), for `numeric` columns without a fixed scale.
pub const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// The text of a decimal value: a `Decimal` as Java's `BigDecimal.toString()` (or
/// `toPlainString()` when `plain`), and, when `plain`, a `VariableScaleDecimal` struct too.
/// `None` for anything else.
fn decimal_text(schema: Option<&Schema>, value: &Value, plain: bool) -> Option<String> {
    let schema = schema?;
    match value {
        Value::Bytes(b) => schema
            .decimal_scale()
            .map(|scale| big_decimal_string(b, scale, plain)),
        Value::Struct(fields)
            if plain && schema.name.as_deref() == Some(VARIABLE_SCALE_DECIMAL) =>
        {
            match fields.as_slice() {
                [Value::Int32(scale), Value::Bytes(b)] => Some(big_decimal_string(b, *scale, true)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A magnitude as little-endian base-2^32 limbs, from decimal digits (`[0-9]*`).
fn limbs_from_digits(digits: &str) -> Vec<u32> {
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.as_bytes().chunks(9) {
        let mut mul = 1u64;
        let mut add = 0u64;
        for d in chunk {
            mul *= 10;
            add = add * 10 + u64::from(d - b'0');
        }
        let mut carry = add;
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    limbs
}

/// Decimal digits of a magnitude (little-endian base-2^32 limbs); "0" for zero.
fn digits_from_limbs(mut limbs: Vec<u32>) -> String {
    let mut parts: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / 1_000_000_000) as u32;
            rem = v % 1_000_000_000;
        }
        parts.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let Some(top) = parts.pop() else {
        return "0".into();
    };
    let mut out = top.to_string();
    for p in parts.iter().rev() {
        let _ = write!(out, "{p:09}");
    }
    out
}

/// Two's-complement negation of big-endian bytes in place: invert, add one (a magnitude's
/// negative, or a negative value's magnitude).
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes.iter_mut().rev() {
        *b = !*b;
        if carry {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            carry = overflow;
        }
    }
}

/// Java's `BigInteger.toByteArray()` of a decimal integer (`digits` without sign, `[0-9]+`): the
/// shortest two's-complement big-endian bytes, at least one.
pub fn twos_complement_from_digits(negative: bool, digits: &str) -> Vec<u8> {
    let limbs = limbs_from_digits(digits);
    let mut magnitude: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let first = magnitude.iter().position(|&b| b != 0);
    let Some(first) = first else {
        return vec![0];
    };
    magnitude.drain(..first);
    if !negative {
        if magnitude[0] & 0x80 != 0 {
            magnitude.insert(0, 0);
        }
        return magnitude;
    }
    negate(&mut magnitude);
    if magnitude[0] & 0x80 == 0 {
        magnitude.insert(0, 0xff);
    }
    magnitude
}

/// The sign and decimal digits of two's-complement big-endian bytes (`new BigInteger(bytes)`).
fn digits_from_twos_complement(bytes: &[u8]) -> (bool, String) {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = bytes.to_vec();
    if negative {
        negate(&mut magnitude);
    }
    let mut limbs = Vec::with_capacity(magnitude.len() / 4 + 1);
    for chunk in magnitude.rchunks(4) {
        let mut a = [0u8; 4];
        a[4 - chunk.len()..].copy_from_slice(chunk);
        limbs.push(u32::from_be_bytes(a));
    }
    (negative, digits_from_limbs(limbs))
}

/// `new BigDecimal(new BigInteger(unscaled), scale)`'s `toString()` (scientific notation when
/// the scale is negative or the adjusted exponent is below -6, as Java does) or, with `plain`,
/// `toPlainString()`.
pub fn big_decimal_string(unscaled: &[u8], scale: i32, plain: bool) -> String {
    let (negative, coeff) = digits_from_twos_complement(unscaled);
    let mut out = String::new();
    if negative && coeff != "0" {
        out.push('-');
    }
    let len = coeff.len() as i64;
    let scale = i64::from(scale);
    let adjusted = -scale + (len - 1);
    if plain || (scale >= 0 && adjusted >= -6) {
        if scale <= 0 {
            out.push_str(&coeff);
            if scale < 0 {
                out.extend(std::iter::repeat('0').take((-scale) as usize));
            }
        } else if len > scale {
            let point = (len - scale) as usize;
            out.push_str(&coeff[..point]);
            out.push('.');
            out.push_str(&coeff[point..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat('0').take((scale - len) as usize));
            out.push_str(&coeff);
        }
    } else {
        out.push_str(&coeff[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&coeff[1..]);
        }
        out.push('E');
        if adjusted > 0 {
            out.push('+');
        }
        let _ = write!(out, "{adjusted}");
    }
    out
}

/// Standard base64 with padding (`java.util.Base64.getEncoder()`, Jackson's binary nodes).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Java's `Double.toString` (JDK 19+: the shortest decimal that rounds to the value, at least two
/// digits when a two-digit decimal is closer): `1.0`, `0.001`, `1.0E7`, `1.2E-5`, `NaN`.
pub fn java_double(x: f64) -> String {
    java_floating(x)
}

/// Java's `Float.toString`, like [`java_double`] for 32-bit floats.
pub fn java_float(x: f32) -> String {
    java_floating(x)
}

/// [`java_double`] and [`java_float`]: the special values from the value widened to `f64`
/// (exact), the digits from `T` itself (the shortest decimal that rounds to a `T`).
fn java_floating<T>(x: T) -> String
where
    T: Copy + PartialEq + Into<f64> + std::fmt::LowerExp + std::str::FromStr,
{
    let wide: f64 = x.into();
    if wide.is_nan() {
        return "NaN".into();
    }
    if wide.is_infinite() {
        return if wide > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if wide == 0.0 {
        return if wide.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }
    let mut sci = format!("{x:e}");
    if !sci.contains('.') {
        let two = format!("{x:.1e}");
        if two.parse::<T>().ok() == Some(x) {
            sci = two;
        }
    }
    java_from_sci(&sci)
}

/// Lays out Rust's `{:e}` digits (`-1.25e-7`) the way Java does: plain for 10^-3 <= |x| < 10^7,
/// otherwise `d.dddE±n`; always at least one fraction digit.
fn java_from_sci(sci: &str) -> String {
    let (neg, rest) = match sci.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, sci),
    };
    let (mantissa, exp) = rest.split_once('e').unwrap_or((rest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat('0').take(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat('0').take((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        let _ = write!(out, "E{exp}");
    }
    out
}

/// A bad `[converters]` option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("converter option \"{key}\": {message}")]
pub struct ConverterConfigError {
    pub key: String,
    pub message: String,
}

/// The key and value converters (`[converters]`). Headers always use SimpleHeaderConverter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converters {
    pub key: Converter,
    pub value: Converter,
}

impl Default for Converters {
    fn default() -> Self {
        Converters {
            key: Converter::Raw,
            value: Converter::Raw,
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
        let mut known: Vec<String> = vec!["header.converter".into()];
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
        if let Some(class) = map.get("header.converter") {
            if class.trim() != SIMPLE_HEADER_CONVERTER {
                return Err(err(
                    "header.converter",
                    format!("{class:?} is not supported; outboxd writes headers as {SIMPLE_HEADER_CONVERTER} does (Kafka Connect's default), the only header converter it supports"),
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
        Ok(Converters {
            key: side("key")?,
            value: side("value")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(optional: bool) -> Schema {
        Schema::new(Type::String, optional)
    }

    fn json_doc() -> Schema {
        string(true).named("io.debezium.data.Json", Some(1))
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn conv(c: &Converter, d: &Data) -> Option<String> {
        c.convert(d)
            .unwrap()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

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
    fn jackson_string_escapes() {
        let mut out = String::new();
        write_json_string(&mut out, "a\"b\\c\n\t\u{1}\u{1f}\u{7f}é/€");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001F\u{7f}é/€\"");
    }

    #[test]
    fn java_number_formats() {
        for (x, s) in [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (123_456.789, "123456.789"),
            (1.2345e-5, "1.2345E-5"),
            (-2.5e20, "-2.5E20"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MIN_POSITIVE * f64::EPSILON, "4.9E-324"),
            (1e23, "1.0E23"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_double(x), s, "{x:e}");
        }
        assert_eq!(java_float(1.1f32), "1.1");
        assert_eq!(java_float(1e10f32), "1.0E10");
        let mut out = String::new();
        write_json(&mut out, None, &Value::Float64(f64::INFINITY)).unwrap();
        assert_eq!(out, "\"Infinity\"");
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

    fn decimal(scale: i32, precision: Option<i32>, optional: bool) -> Schema {
        Schema::decimal(scale, precision, optional)
    }

    #[test]
    fn big_integers_are_javas_two_complement_bytes() {
        for (negative, digits, bytes) in [
            (false, "1234", &[0x04, 0xd2][..]),
            (true, "1234", &[0xfb, 0x2e]),
            (false, "0", &[0x00]),
            (true, "0", &[0x00]),
            (false, "000", &[0x00]),
            (false, "128", &[0x00, 0x80]),
            (true, "128", &[0x80]),
            (true, "129", &[0xff, 0x7f]),
            (false, "255", &[0x00, 0xff]),
            (true, "256", &[0xff, 0x00]),
            (
                false,
                "12345678901234567890123456789",
                &[
                    0x27, 0xe4, 0x1b, 0x32, 0x46, 0xbe, 0xc9, 0xb1, 0x6e, 0x39, 0x81, 0x15,
                ],
            ),
        ] {
            let got = twos_complement_from_digits(negative, digits);
            assert_eq!(got, bytes, "{negative} {digits}");
            let (neg, back) = digits_from_twos_complement(&got);
            assert_eq!(
                back,
                digits.trim_start_matches('0').to_string()
                    + if digits.trim_start_matches('0').is_empty() {
                        "0"
                    } else {
                        ""
                    }
            );
            assert_eq!(neg, negative && back != "0");
        }
    }

    #[test]
    fn big_decimal_to_string_is_javas() {
        for (negative, digits, scale, text, plain) in [
            (false, "1234", 2, "12.34", "12.34"),
            (true, "1234", 2, "-12.34", "-12.34"),
            (false, "0", 2, "0.00", "0.00"),
            (false, "0", 10, "0E-10", "0.0000000000"),
            (false, "1", 7, "1E-7", "0.0000001"),
            (false, "1", 6, "0.000001", "0.000001"),
            (true, "12", 8, "-1.2E-7", "-0.00000012"),
            (false, "5", 0, "5", "5"),
            (false, "1", -2, "1E+2", "100"),
            (false, "12345", 3, "12.345", "12.345"),
        ] {
            let bytes = twos_complement_from_digits(negative, digits);
            assert_eq!(big_decimal_string(&bytes, scale, false), text);
            assert_eq!(big_decimal_string(&bytes, scale, true), plain);
        }
    }

    #[test]
    fn decimals_are_bytes_in_json_and_big_decimals_in_text() {
        // numeric(10,2) 12.34: unscaled 1234.
        let data = Data::new(
            decimal(2, Some(10), false),
            Value::Bytes(Bytes::from_static(&[0x04, 0xd2])),
        );
        let json = |schemas_enable| Converter::Json { schemas_enable };
        assert_eq!(
            conv(&json(true), &data).unwrap(),
            r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}},"payload":"BNI="}"#
        );
        assert_eq!(conv(&json(false), &data).unwrap(), r#""BNI=""#);
        assert_eq!(conv(&Converter::String, &data).unwrap(), "12.34");
        assert_eq!(conv(&Converter::Raw, &data).unwrap(), "12.34");
        assert_eq!(header_bytes(&data).unwrap(), "12.34");
        let small = Data::new(
            decimal(7, Some(8), true),
            Value::Bytes(Bytes::from_static(&[0x01])),
        );
        assert_eq!(conv(&Converter::String, &small).unwrap(), "1E-7");
        assert_eq!(header_bytes(&small).unwrap(), "1E-7");
        assert_eq!(conv(&Converter::Raw, &small).unwrap(), "0.0000001");
        assert!(Converter::String.check(&decimal(2, None, true)).is_ok());
        // Connect holds a BigDecimal, which the byte array converters refuse.
        for c in [
            Converter::ByteArray,
            Converter::BinaryData {
                class: BINARY_DATA_CONVERTER,
                delegate: Some(Box::new(json(true))),
            },
        ] {
            assert!(c.check(&decimal(2, None, true)).is_err());
            assert!(c.convert(&data).unwrap_err().contains("BigDecimal"));
        }
        // Embedded in a struct (an envelope field): a bare number in headers and text.
        let schema = Schema::new(
            Type::Struct(vec![Field {
                name: "amount".into(),
                schema: decimal(2, Some(10), false),
            }]),
            false,
        );
        let data = Data::new(
            schema,
            Value::Struct(vec![Value::Bytes(Bytes::from_static(&[0xfb, 0x2e]))]),
        );
        assert_eq!(header_bytes(&data).unwrap(), r#"{"amount":-12.34}"#);
        assert_eq!(
            conv(&Converter::String, &data).unwrap(),
            "Struct{amount=-12.34}"
        );
        assert_eq!(
            conv(&json(true), &data).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"amount"}],"optional":false},"payload":{"amount":"+y4="}}"#
        );
    }

    #[test]
    fn variable_scale_decimals_are_structs_with_their_doc() {
        let schema = Schema::variable_scale_decimal(true);
        let data = Data::new(
            schema.clone(),
            Value::Struct(vec![
                Value::Int32(1),
                Value::Bytes(Bytes::from_static(&[0x0f])),
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
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}],"optional":true,"name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal"},"payload":{"scale":1,"value":"Dw=="}}"#
        );
        assert_eq!(
            header_bytes(&data).unwrap(),
            r#"{"scale":1,"value":"Dw=="}"#
        );
        assert_eq!(conv(&Converter::Raw, &data).unwrap(), "1.5");
        // StringConverter would print the byte array's identity hash: refused.
        assert!(Converter::String.check(&schema).is_err());
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
            "org.apache.kafka.connect.json.JsonConverter",
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("SimpleHeaderConverter"), "{err}");
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
