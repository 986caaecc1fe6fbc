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
//! - [`Converter::CloudEvents`]: `io.debezium.converters.CloudEventsConverter`, a structured-mode
//!   CloudEvent around the value (see [`cloudevents`]);
//! - [`header_bytes`]: `org.apache.kafka.connect.storage.SimpleHeaderConverter` (Connect's
//!   `Values.convertToString`: strings as they are, numbers in Java's format, bytes as base64);
//!   [`HeaderConverter::Json`]: JsonConverter as `header.converter`.
//!
//! A value a converter cannot represent is an error, never a silently different record.
//!
//! # Layout
//! `schema` (the data model), `converter` (the converters and `[converters]`), `cloudevents`
//! (CloudEventsConverter's options and events), `json`
//! (JsonConverter), `text` (SimpleHeaderConverter and StringConverter text), `decimal` (Connect's
//! decimal bytes and text), `java_text` (Java's number text and base64). This file re-exports
//! their public items.

// `#[path]`: tests/fuzz compiles this file by path, which makes rustc look for its children
// beside it (src/), not in src/convert/; the explicit paths are right for both builds.
#[path = "convert/cloudevents.rs"]
pub mod cloudevents;
#[path = "convert/converter.rs"]
mod converter;
#[path = "convert/decimal.rs"]
mod decimal;
#[path = "convert/java_text.rs"]
mod java_text;
#[path = "convert/json.rs"]
mod json;
#[path = "convert/schema.rs"]
mod schema;
#[cfg(test)]
#[path = "convert/testing.rs"]
mod testing;
#[path = "convert/text.rs"]
mod text;

pub use cloudevents::CLOUD_EVENTS_CONVERTER;
pub use converter::{
    Converter, ConverterConfigError, Converters, HeaderConverter, BINARY_DATA_CONVERTER,
    BYTE_ARRAY_CONVERTER, BYTE_BUFFER_CONVERTER, JSON_CONVERTER, SIMPLE_HEADER_CONVERTER,
    STRING_CONVERTER, SUPPORTED_CONVERTERS,
};
pub use decimal::{big_decimal_string, twos_complement_from_digits};
pub use java_text::{base64, java_double, java_float};
pub use json::{write_json, write_json_string};
pub use schema::{Data, Field, Schema, Type, Value, DECIMAL, VARIABLE_SCALE_DECIMAL};
pub use text::header_bytes;
