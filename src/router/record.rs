//! What the router hands the pipeline: the Kafka record of a routed row ([`OutboxRecord`], with
//! the [`RouteWarning`]s to log), the raw cells of a row it refused ([`RawRow`], for the
//! dead-letter record) and why it refused it ([`RouteError`]).
//!
//! Owns these types only; it must not route anything.

use bytes::Bytes;

/// A record ready for the Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub topic: String,
    /// The partition from a `partition` placement; `None`: the producer's partitioner picks it
    /// from the key.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in order; a `None` value is a header with a null value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl OutboxRecord {
    /// Bytes this record holds in memory (what the in-flight byte cap counts).
    pub fn size(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum();
        (self.topic.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers) as u64
    }
}

/// The raw cells of an outbox row that could not be routed (see [`Router::raw_row`](super::Router::raw_row)). `None`:
/// NULL (or an unchanged TOASTed value, which pgoutput does not send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// `schema.table`.
    pub table: String,
    pub id: Option<Bytes>,
    pub key: Option<Bytes>,
    pub payload: Option<Bytes>,
    /// The topic the routing value leads to, valid or not; `None` when the value is NULL.
    pub topic: Option<String>,
}

/// A routed row: the record, and what the pipeline must log about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub record: OutboxRecord,
    pub warnings: Vec<RouteWarning>,
}

/// Something about a row that did not stop it from being published but that an operator should
/// see (never silent: the pipeline logs it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox row in {table} (id {id}): {message}")]
pub struct RouteWarning {
    pub table: String,
    pub id: String,
    /// A short stable label: `json_not_expanded` or `trace_context_ignored`.
    pub kind: &'static str,
    pub message: String,
}

/// A row that cannot be turned into a record. Never skipped silently: the relay stops.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("outbox table {table} has no column \"{column}\" (router option {option}); add the column or set {option} to the column that holds this value")]
    MissingColumn {
        table: String,
        column: String,
        option: &'static str,
    },
    #[error("outbox table {table}: {message}")]
    Unsupported { table: String, message: String },
    #[error("outbox row in {table} (id {id}): {problem}")]
    BadRow {
        table: String,
        id: String,
        problem: String,
    },
}
