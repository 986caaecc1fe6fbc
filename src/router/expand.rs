//! `table.expand.json.payload`: a string payload holding JSON becomes a structured Connect value,
//! with the schema Debezium infers (`io.debezium.transforms.outbox.JsonSchemaData`).
//!
//! Parsing follows Jackson's defaults as Debezium uses them (`ObjectMapper.readTree`): strict JSON,
//! only a text starting with `{` or `[` is tried, content after the first value is ignored, a
//! repeated object key keeps its first position and its last value, integers are int32 when they
//! fit, else int64, numbers with a fraction or exponent are float64. Nesting is limited to 256
//! levels (Jackson allows 1000; the inference, checks and writers recurse, and 256 keeps them far
//! within a 2 MiB thread stack), so a deeper payload is not expanded.
//!
//! Inference: an object is an optional struct named by its path (`payload`, `payload.items`; a
//! struct inside an array inside an array is named `null`, as Debezium's Java string concatenation
//! does), its fields in document order; strings, booleans and numbers are optional primitives;
//! `null` fields and empty arrays are left out (`table.json.payload.null.behavior=ignore`) or
//! typed as optional bytes (`optional_bytes`, nulls only); an array takes its element type from its
//! first non-null element and must be homogeneous; the objects of an array are merged into one
//! struct (fields in first-seen order; a merged struct of differing objects is not optional, as in
//! Debezium, whose schema copy drops the flag).
//!
//! Where Debezium fails the connector task, outboxd decides instead (and the router reports it):
//! - a top-level JSON array becomes an optional array (Debezium dies with "Invalid type for ARRAY");
//! - a value that does not fit the inferred schema (an array of objects whose field types differ, an
//!   integer beyond int64) leaves the payload unexpanded, as any other expansion failure does.
//!
//! A top-level empty array has no element type; like Debezium, outboxd then keeps the text and
//! drops the schema (JsonConverter with schemas writes `"schema":null`).

use crate::convert::{Data, Field, Schema, Type, Value};

/// `table.json.payload.null.behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullBehavior {
    /// Null fields are left out of the schema (Debezium's default).
    Ignore,
    /// Null fields are optional bytes.
    OptionalBytes,
}

/// What expanding a payload gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    /// The structured payload.
    Expanded(Data),
    /// A top-level `[]`: the text without a schema (Debezium's result); the string says why.
    SchemaDropped(Data, String),
    /// Not expanded; the payload stays the string it was. The string says why.
    Kept(String),
}

/// Expands the payload `text`; `field` is the payload column's name (the struct's name).
pub fn expand(text: &str, field: &str, nulls: NullBehavior) -> Expansion {
    if !(text.starts_with('{') || text.starts_with('[')) {
        return Expansion::Kept(match text.chars().next() {
            Some(c) => format!("the payload starts with {c:?}, not with '{{' or '['"),
            None => "the payload is empty".into(),
        });
    }
    let node = match Parser::new(text).parse_root() {
        Ok(n) => n,
        Err(e) => return Expansion::Kept(format!("the payload is not valid JSON: {e}")),
    };
    if matches!(&node, Json::Array(items) if items.is_empty()) {
        return Expansion::SchemaDropped(
            Data {
                schema: None,
                value: Value::String(text.to_string()),
            },
            "the payload is an empty JSON array, whose element type cannot be inferred; it is kept as a string without schema, as Debezium does".into(),
        );
    }
    let inferred = Inference { nulls };
    let schema = match inferred.schema(Some(field), &node) {
        Ok(Some(s)) => s,
        Ok(None) => return Expansion::Kept("no schema can be inferred for the payload".into()),
        Err(e) => return Expansion::Kept(format!("no schema can be inferred: {e}")),
    };
    let value = match to_value(&node, &schema) {
        Ok(v) => v,
        Err(e) => {
            return Expansion::Kept(format!("the payload does not fit its inferred schema: {e}"))
        }
    };
    if let Err(e) = value.validate(&schema) {
        return Expansion::Kept(format!("the payload does not fit its inferred schema: {e}"));
    }
    Expansion::Expanded(Data::new(schema, value))
}

/// A parsed JSON document (Jackson's node types).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    /// An integer beyond int64 (Jackson's BigIntegerNode).
    BigInt(String),
    Double(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Jackson's `JsonNodeType`, for the homogeneity check of arrays.
    fn node_type(&self) -> u8 {
        match self {
            Json::Null => 0,
            Json::Bool(_) => 1,
            Json::Int(_) | Json::Long(_) | Json::BigInt(_) | Json::Double(_) => 2,
            Json::String(_) => 3,
            Json::Array(_) => 4,
            Json::Object(_) => 5,
        }
    }
}

/// Deepest nesting expanded (see the module documentation).
pub const MAX_DEPTH: usize = 256;
const MAX_NUMBER_LEN: usize = 1000;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn err(&self, what: &str) -> String {
        format!(
            "{what} at character {}",
            self.text[..self.pos].chars().count() + 1
        )
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The first JSON value; what follows it is ignored (Jackson's `FAIL_ON_TRAILING_TOKENS` is off).
    fn parse_root(&mut self) -> Result<Json, String> {
        self.skip_ws();
        self.value()
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Json, String>) -> Result<Json, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting deeper than 256 levels"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unrecognized token"))
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.pos += 1; // {
        let mut fields: Vec<(String, Json)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a field name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key, value)),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.err("invalid \\u escape"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // "
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.text[self.pos..].starts_with("\\u") {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            out.push(
                                char::from_u32(code)
                                    .ok_or_else(|| self.err("unpaired surrogate"))?,
                            );
                        }
                        _ => return Err(self.err("unrecognized character escape")),
                    }
                }
                Some(_) => return Err(self.err("unescaped control character in a string")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let int_digits = &self.text[int_start..self.pos];
        if int_digits.is_empty() {
            return Err(self.err("a number needs digits"));
        }
        if int_digits.len() > 1 && int_digits.starts_with('0') {
            return Err(self.err("leading zeros are not allowed"));
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let n = self.digits();
            if n == 0 {
                return Err(self.err("a fraction needs digits"));
            }
            is_float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("an exponent needs digits"));
            }
            is_float = true;
        }
        let text = &self.text[start..self.pos];
        if text.len() > MAX_NUMBER_LEN {
            return Err(self.err("number longer than 1000 characters"));
        }
        if is_float {
            return text
                .parse::<f64>()
                .map(Json::Double)
                .map_err(|_| self.err("invalid number"));
        }
        if let Ok(v) = text.parse::<i32>() {
            Ok(Json::Int(v))
        } else if let Ok(v) = text.parse::<i64>() {
            Ok(Json::Long(v))
        } else {
            Ok(Json::BigInt(text.to_string()))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }
}

fn optional(kind: Type) -> Schema {
    Schema::new(kind, true)
}

struct Inference {
    nulls: NullBehavior,
}

impl Inference {
    /// `JsonSchemaData.toConnectSchema(key, node)`; `None` where Debezium returns null.
    fn schema(&self, key: Option<&str>, node: &Json) -> Result<Option<Schema>, String> {
        Ok(match node {
            Json::String(_) => Some(optional(Type::String)),
            Json::Bool(_) => Some(optional(Type::Boolean)),
            Json::Int(_) => Some(optional(Type::Int32)),
            Json::Long(_) => Some(optional(Type::Int64)),
            Json::BigInt(_) | Json::Double(_) => Some(optional(Type::Float64)),
            Json::Array(items) if items.is_empty() => None,
            Json::Array(items) => Some(optional(Type::Array(Box::new(
                self.items_schema(key, items)?,
            )))),
            Json::Object(entries) => {
                let mut fields: Vec<Field> = Vec::new();
                for (name, value) in entries {
                    let child = format!("{}.{name}", key.unwrap_or("null"));
                    if let Some(schema) = self.schema(Some(&child), value)? {
                        if !fields.iter().any(|f| f.name == *name) {
                            fields.push(Field {
                                name: name.clone(),
                                schema,
                            });
                        }
                    }
                }
                Some(Schema {
                    kind: Type::Struct(fields),
                    optional: true,
                    name: key.map(str::to_string),
                    version: None,
                    doc: None,
                    parameters: Vec::new(),
                    default: None,
                })
            }
            Json::Null => match self.nulls {
                NullBehavior::OptionalBytes => Some(optional(Type::Bytes)),
                NullBehavior::Ignore => None,
            },
        })
    }

    /// The element schema of a non-empty array (`toConnectSchemaWithCycles`).
    fn items_schema(&self, key: Option<&str>, items: &[Json]) -> Result<Schema, String> {
        let sample = first_element(items)?;
        if let Json::Object(_) = sample {
            let mut distinct: Vec<Schema> = Vec::new();
            for item in items {
                if let Json::Object(_) = item {
                    if let Some(s) = self.schema(key, item)? {
                        if !distinct.contains(&s) {
                            distinct.push(s);
                        }
                    }
                }
            }
            let mut merged: Option<Schema> = None;
            for s in distinct {
                merged = Some(match merged {
                    None => s,
                    Some(left) => merge(left, s),
                });
            }
            merged.ok_or_else(|| "an array of objects without a schema".to_string())
        } else {
            self.schema(None, sample)?
                .ok_or_else(|| "an array whose members have no recognizable type".to_string())
        }
    }
}

/// The first non-null element, after checking that every non-null element has its JSON type (and,
/// for numbers, the same Connect type).
fn first_element(items: &[Json]) -> Result<&Json, String> {
    static NULL: Json = Json::Null;
    let mut first: Option<&Json> = None;
    let number_type = |n: &Json| match n {
        Json::Int(_) => Type::Int32,
        Json::Long(_) => Type::Int64,
        _ => Type::Float64,
    };
    for item in items {
        if *item == Json::Null {
            continue;
        }
        let reference = *first.get_or_insert(item);
        if item.node_type() != reference.node_type() {
            return Err("an array whose elements have different JSON types".into());
        }
        if item.node_type() == 2 && number_type(item) != number_type(reference) {
            return Err("an array mixing integer and decimal (or int32 and int64) numbers".into());
        }
    }
    Ok(first.unwrap_or(&NULL))
}

/// `JsonSchemaData.mergeSchema`: fields of `left`, then the new ones of `right`; a field typed
/// bytes (a null seen first) takes the other side's type. The result is not optional.
fn merge(left: Schema, right: Schema) -> Schema {
    let Type::Struct(mut fields) = left.kind else {
        return left;
    };
    for f in right.fields() {
        match fields.iter_mut().find(|old| old.name == f.name) {
            None => fields.push(f.clone()),
            Some(old) => {
                if old.schema != f.schema
                    && old.schema.kind == Type::Bytes
                    && f.schema.kind != Type::Bytes
                {
                    *old = f.clone();
                }
            }
        }
    }
    Schema {
        kind: Type::Struct(fields),
        optional: false,
        name: left.name,
        version: left.version,
        doc: left.doc,
        parameters: left.parameters,
        default: left.default,
    }
}

/// `JsonSchemaData.toConnectData`: the value for `schema`; struct fields missing from an object
/// are null.
fn to_value(node: &Json, schema: &Schema) -> Result<Value, String> {
    Ok(match node {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Int(v) => Value::Int32(*v),
        Json::Long(v) => Value::Int64(*v),
        Json::Double(v) => Value::Float64(*v),
        Json::BigInt(text) => {
            return Err(format!(
                "the integer {text} does not fit in 64 bits (Debezium has no type for it)"
            ))
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            let Type::Array(item_schema) = &schema.kind else {
                return Err(format!(
                    "an array where the schema has {}",
                    schema.kind.json_name()
                ));
            };
            Value::Array(
                items
                    .iter()
                    .map(|i| to_value(i, item_schema))
                    .collect::<Result<_, _>>()?,
            )
        }
        Json::Object(entries) => {
            let Type::Struct(fields) = &schema.kind else {
                return Err(format!(
                    "an object where the schema has {}",
                    schema.kind.json_name()
                ));
            };
            let mut values = Vec::with_capacity(fields.len());
            for f in fields {
                let v = match entries.iter().find(|(k, _)| *k == f.name) {
                    Some((_, child)) => to_value(child, &f.schema)?,
                    None => Value::Null,
                };
                v.validate(&f.schema)
                    .map_err(|e| format!("field {:?}: {e}", f.name))?;
                values.push(v);
            }
            Value::Struct(values)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Converter;

    fn json_with_schema(e: &Expansion) -> String {
        let Expansion::Expanded(d) = e else {
            panic!("not expanded: {e:?}")
        };
        let b = Converter::Json {
            schemas_enable: true,
        }
        .convert(d)
        .unwrap()
        .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn json_plain(e: &Expansion) -> String {
        let Expansion::Expanded(d) = e else {
            panic!("not expanded: {e:?}")
        };
        let b = Converter::Json {
            schemas_enable: false,
        }
        .convert(d)
        .unwrap()
        .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn golden_case_04_expanded_struct() {
        let e = expand(
            r#"{"id": 1, "note": "café \"q\"", "items": [{"qty": 2, "sku": "A"}]}"#,
            "payload",
            NullBehavior::Ignore,
        );
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"id"},{"type":"string","optional":true,"field":"note"},{"type":"array","items":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"qty"},{"type":"string","optional":true,"field":"sku"}],"optional":true,"name":"payload.items"},"optional":true,"field":"items"}],"optional":true,"name":"payload"},"payload":{"id":1,"note":"café \"q\"","items":[{"qty":2,"sku":"A"}]}}"#
        );
        assert_eq!(
            json_plain(&e),
            r#"{"id":1,"note":"café \"q\"","items":[{"qty":2,"sku":"A"}]}"#
        );
    }

    #[test]
    fn top_level_arrays_are_arrays() {
        let e = expand("[1, 2, 3]", "payload", NullBehavior::Ignore);
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"array","items":{"type":"int32","optional":true},"optional":true},"payload":[1,2,3]}"#
        );
        let e = expand(r#"[{"a": 1}, {"b": "x"}]"#, "body", NullBehavior::Ignore);
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"array","items":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"a"},{"type":"string","optional":true,"field":"b"}],"optional":false,"name":"body"},"optional":true},"payload":[{"a":1,"b":null},{"a":null,"b":"x"}]}"#
        );
        assert!(matches!(
            expand("[]", "payload", NullBehavior::Ignore),
            Expansion::SchemaDropped(Data { schema: None, .. }, _)
        ));
    }

    #[test]
    fn what_is_not_expanded() {
        for text in [
            "hello world",
            " {\"a\": 1}",
            "",
            "{\"a\": }",
            "{'a': 1}",
            "[1, \"x\"]",
            "[1, 1.5]",
            "[null]",
            "[[]]",
            "{\"a\": 01}",
            "{\"big\": 123456789012345678901234567890}",
            r#"[{"a": 1}, {"a": "x"}]"#,
        ] {
            assert!(
                matches!(
                    expand(text, "payload", NullBehavior::Ignore),
                    Expansion::Kept(_)
                ),
                "{text:?}"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            expand(&deep, "payload", NullBehavior::Ignore),
            Expansion::Kept(_)
        ));
    }

    #[test]
    fn the_deepest_accepted_nesting_is_expanded_and_written() {
        // Object and array alternate: MAX_DEPTH levels in all.
        let n = MAX_DEPTH / 2;
        let deep = "{\"a\": [".repeat(n) + "1" + &"]}".repeat(n);
        let e = expand(&deep, "payload", NullBehavior::Ignore);
        assert!(json_with_schema(&e).ends_with(&("[1".to_string() + &"]}".repeat(n) + "}")));
    }

    #[test]
    fn jackson_parsing_details() {
        // Trailing content after the first value is ignored; repeated keys keep the last value.
        // Written back, the emoji is Jackson's surrogate pair (convert::write_json_string).
        let e = expand(
            r#"{"a": 1, "b": 2, "a": "x"} trailing"#,
            "p",
            NullBehavior::Ignore,
        );
        assert_eq!(json_plain(&e), r#"{"a":"x","b":2}"#);
        let e = expand(
            r#"{"i": 2147483648, "d": 1e2, "z": -0, "s": "\u00e9\ud83d\ude00\n", "t": true}"#,
            "p",
            NullBehavior::Ignore,
        );
        assert_eq!(
            json_with_schema(&e),
            "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":true,\"field\":\"i\"},{\"type\":\"double\",\"optional\":true,\"field\":\"d\"},{\"type\":\"int32\",\"optional\":true,\"field\":\"z\"},{\"type\":\"string\",\"optional\":true,\"field\":\"s\"},{\"type\":\"boolean\",\"optional\":true,\"field\":\"t\"}],\"optional\":true,\"name\":\"p\"},\"payload\":{\"i\":2147483648,\"d\":100.0,\"z\":0,\"s\":\"é\\uD83D\\uDE00\\n\",\"t\":true}}"
        );
    }

    #[test]
    fn nulls_and_empty_arrays() {
        let text = r#"{"a": null, "e": [], "n": [1, null], "o": {}}"#;
        let e = expand(text, "payload", NullBehavior::Ignore);
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"struct","fields":[{"type":"array","items":{"type":"int32","optional":true},"optional":true,"field":"n"},{"type":"struct","fields":[],"optional":true,"name":"payload.o","field":"o"}],"optional":true,"name":"payload"},"payload":{"n":[1,null],"o":{}}}"#
        );
        let e = expand(text, "payload", NullBehavior::OptionalBytes);
        assert_eq!(json_plain(&e), r#"{"a":null,"n":[1,null],"o":{}}"#);
        // A field null in the first object and typed in the next takes the type.
        let e = expand(
            r#"[{"a": null}, {"a": 5}]"#,
            "payload",
            NullBehavior::OptionalBytes,
        );
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"array","items":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"a"}],"optional":false,"name":"payload"},"optional":true},"payload":[{"a":null},{"a":5}]}"#
        );
    }

    #[test]
    fn nested_arrays_of_objects_get_debeziums_null_names() {
        let e = expand(
            r#"{"m": [[{"x": {"y": 1}}]]}"#,
            "payload",
            NullBehavior::Ignore,
        );
        assert_eq!(
            json_with_schema(&e),
            r#"{"schema":{"type":"struct","fields":[{"type":"array","items":{"type":"array","items":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int32","optional":true,"field":"y"}],"optional":true,"name":"null.x","field":"x"}],"optional":true},"optional":true},"optional":true,"field":"m"}],"optional":true,"name":"payload"},"payload":{"m":[[{"x":{"y":1}}]]}}"#
        );
    }
}
