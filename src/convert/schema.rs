//! Kafka Connect's data model, the part outbox records use: a [`Schema`] (type, optional flag,
//! name, version, doc, parameters, struct fields in order), a [`Value`], and the two together
//! ([`Data`], Connect's `SchemaAndValue`); with the logical types Debezium's columns use
//! (`Decimal`, `VariableScaleDecimal`).
//!
//! Owns the types and their checks; turning them into bytes is the converters' job.

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
    pub(super) fn connect_name(&self) -> &'static str {
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

/// A Connect schema. `doc` and `parameters` (in insertion order, as Connect's `SchemaBuilder`
/// keeps them) are what Debezium's decimal types carry; `default` (a string default, the only
/// kind outboxd writes) is what the `snapshot` field of Debezium's source block carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    pub kind: Type,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: Vec<(String, String)>,
    pub default: Option<String>,
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
            default: None,
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

    /// The element schema of an array schema, `None` for other types.
    pub fn items(&self) -> Option<&Schema> {
        match &self.kind {
            Type::Array(items) => Some(items),
            _ => None,
        }
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
    /// The value of an integer type (INT8 to INT64) widened to i64; `None` for every other type.
    pub fn integer(&self) -> Option<i64> {
        match *self {
            Value::Int8(v) => Some(v.into()),
            Value::Int16(v) => Some(v.into()),
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }

    /// The Java class Connect would hold, for error messages.
    pub fn java_class(&self) -> &'static str {
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

/// Debezium's `io.debezium.data.VariableScaleDecimal`: a struct of `scale` (INT32) and `value`
/// (the unscaled value's bytes), for `numeric` columns without a fixed scale.
pub const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";
