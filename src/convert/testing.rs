//! Test helpers shared by the convert modules' unit tests: common schemas and values, a
//! converter run as text, a `[converters]` map.

use std::collections::BTreeMap;

use super::*;

pub(crate) fn string(optional: bool) -> Schema {
    Schema::new(Type::String, optional)
}

pub(crate) fn json_doc() -> Schema {
    string(true).named("io.debezium.data.Json", Some(1))
}

pub(crate) fn s(v: &str) -> Value {
    Value::String(v.into())
}

pub(crate) fn conv(c: &Converter, d: &Data) -> Option<String> {
    c.convert(d)
        .unwrap()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
}

pub(crate) fn decimal(scale: i32, precision: Option<i32>, optional: bool) -> Schema {
    Schema::decimal(scale, precision, optional)
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
