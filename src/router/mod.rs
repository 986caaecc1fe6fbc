//! The outbox router: turns an inserted outbox row into a Kafka record, with the rules, option
//! names and defaults of Debezium's `io.debezium.transforms.outbox.EventRouter` (Debezium 3.x).
//!
//! - topic: the `route.by.field` column (default `aggregatetype`) is matched in full against
//!   `route.topic.regex` (default `(?<routedByValue>.*)`) and expanded into
//!   `route.topic.replacement` (default `outbox.event.${routedByValue}`); a value the regex does not
//!   match is used as the topic as it is, as Kafka Connect's `RegexRouter` does;
//! - key: the `table.field.event.key` column (default `aggregateid`), typed as Debezium types the
//!   column (an `integer` key stays an int32); NULL gives no key;
//! - header `id`: the `table.field.event.id` column (default `id`);
//! - value: the `table.field.event.payload` column (default `payload`), optionally expanded from
//!   JSON text into a structure (`table.expand.json.payload`, see [`expand`]) and wrapped with
//!   `envelope` placements into a struct; a NULL (or blank, with
//!   `route.tombstone.on.empty.payload`) payload gives a null value;
//! - `table.fields.additional.placement`: extra columns as headers, envelope fields or the
//!   partition;
//! - timestamp: the `table.field.event.timestamp` column, else the transaction's commit time;
//! - `tracing.span.context.field`: the W3C trace context stored with the row, as headers;
//! - `header.from.fields`: what a `HeaderFrom$Value` transform before the EventRouter copies into
//!   headers (Debezium's source block, `op`, `transaction`: `source_block`), first;
//! - CloudEvents: `cloudevents.mode = binary` adds `ce_*` headers beside the payload; with
//!   `io.debezium.converters.CloudEventsConverter` as value converter the value is the
//!   structured event that converter writes, built from the headers as it builds it
//!   ([`crate::convert::cloudevents`]).
//!
//! The router builds Kafka Connect values ([`crate::convert::Data`]), and the configured converters
//! turn them into bytes exactly as a Kafka Connect worker would.
//!
//! The router is pure: it sees decoded pgoutput messages and returns records, warnings and errors;
//! logging and metrics are the pipeline's job.
//!
//! # Layout
//! - [`options`]: `[router]` parsed and checked into [`RouterOptions`];
//! - `layout`: an outbox table's relation checked once into a `TableLayout`;
//! - `route`: one row into an [`OutboxRecord`]; [`topic`]: the topic name rules;
//! - [`record`]: the record, warning and error types;
//! - `columns`: Postgres column values typed as Debezium types them; [`expand`]: JSON payload
//!   expansion; [`message`]: logical decoding messages as rows; `span_context`: tracing headers;
//!   `source_block`: Debezium's source block and [`ChangePosition`].
//!
//! This file is the facade: [`Router`], its state and its public methods.

mod columns;
pub mod expand;
mod layout;
pub mod message;
pub mod options;
pub mod record;
mod route;
mod source_block;
mod span_context;
#[cfg(test)]
mod testing;
pub mod topic;

use std::collections::{HashMap, HashSet};

use crate::config::TableName;
use crate::convert::Converters;
use crate::source::pgoutput::{LogicalMessage, Relation, TupleData, TupleValue};

pub use columns::{oid, Kind};
pub use expand::NullBehavior;
pub use options::{
    BinaryCloudEvents, EnvelopeField, InvalidOpBehavior, Placement, PlacementTarget,
    RouterConfigError, RouterOptions,
};
pub use record::{OutboxRecord, RawRow, RouteError, RouteWarning, Routed};
pub use source_block::ChangePosition;
pub use topic::check_topic_name;

use layout::{Column, TableLayout};
use route::EnvelopeNames;
use topic::{route_topic, TopicCache};

/// Routes rows of the configured outbox tables; other relations are not its business.
#[derive(Debug)]
pub struct Router {
    options: RouterOptions,
    converters: Converters,
    tables: Vec<TableName>,
    /// NOT NULL columns of each outbox table, when known (Connect schemas' `optional` flag).
    not_null: HashMap<TableName, HashSet<String>>,
    /// Layouts of the outbox tables by pgoutput relation id, from Relation messages.
    layouts: HashMap<u32, TableLayout>,
    envelope_names: EnvelopeNames,
    /// `source.message_prefixes`: the logical decoding message prefixes whose transactional
    /// messages are outbox events; the index is the message's pseudo relation id
    /// ([`message::relation_id`]).
    message_prefixes: Vec<String>,
    /// `message:<prefix>` for each of `message_prefixes`: the name messages go by in metrics,
    /// logs and dead-letter records, where rows give `schema.table`.
    message_labels: Vec<String>,
    /// Topics already built from routing values.
    topics: TopicCache,
}

impl Router {
    pub fn new(options: RouterOptions, tables: Vec<TableName>) -> Self {
        Router {
            options,
            converters: Converters::default(),
            tables,
            not_null: HashMap::new(),
            layouts: HashMap::new(),
            envelope_names: EnvelopeNames::default(),
            message_prefixes: Vec::new(),
            message_labels: Vec::new(),
            topics: TopicCache::default(),
        }
    }

    /// Routes transactional logical decoding messages with these prefixes (exact names) as outbox
    /// events (see [`message`]).
    pub fn with_message_prefixes(mut self, prefixes: Vec<String>) -> Self {
        self.message_labels = prefixes.iter().map(|p| message::label(p)).collect();
        self.message_prefixes = prefixes;
        self
    }

    /// The pseudo relation id of a configured message prefix; `None` for any other prefix.
    pub fn message_relation_id(&self, prefix: &str) -> Option<u32> {
        self.message_prefixes
            .iter()
            .position(|p| p == prefix)
            .map(message::relation_id)
    }

    /// Uses these key and value converters (default: outboxd's raw text and bytes).
    pub fn with_converters(mut self, converters: Converters) -> Self {
        self.converters = converters;
        self
    }

    /// Tells the router which columns of `table` are NOT NULL (from the catalog: pgoutput does
    /// not say). Without it, only replica identity columns count as NOT NULL.
    pub fn set_not_null_columns(&mut self, table: TableName, columns: HashSet<String>) {
        self.not_null.insert(table, columns);
    }

    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    /// Learns a relation (pgoutput `Relation`, sent before the first change of a table and again
    /// after its schema changes). Errors when an outbox table lacks a column the router needs, or
    /// has a column type the options or converters cannot carry.
    pub fn on_relation(&mut self, relation: &Relation) -> Result<(), RouteError> {
        let Some(table_name) = self
            .tables
            .iter()
            .find(|t| t.schema == relation.namespace && t.name == relation.name)
        else {
            self.layouts.remove(&relation.id);
            return Ok(());
        };
        let table = format!("{}.{}", relation.namespace, relation.name);
        let schema_prefix = format!(
            "{}.{}.{}",
            self.options.topic_prefix.as_deref().unwrap_or("outboxd"),
            relation.namespace,
            relation.name
        );
        let layout = self.layout(
            relation,
            table,
            schema_prefix,
            self.not_null.get(table_name),
        )?;
        self.layouts.insert(relation.id, layout);
        Ok(())
    }

    /// The `schema.table` name of an outbox relation, `message:<prefix>` for the pseudo relation
    /// id of a message prefix, or `None` for any other relation.
    pub fn outbox_table(&self, relation_id: u32) -> Option<&str> {
        match self.layouts.get(&relation_id) {
            Some(l) => Some(l.table.as_str()),
            None => self
                .message_labels
                .get(usize::try_from(relation_id).ok()?)
                .map(String::as_str),
        }
    }

    /// The row's raw cells, for a row [`route_insert`](Self::route_insert) refused (a poison
    /// event): the id, key and payload columns' bytes as pgoutput sent them, and the topic the
    /// routing value leads to (not checked). `None` when the relation is not an outbox table.
    pub fn raw_row(&self, relation_id: u32, row: &TupleData) -> Option<RawRow> {
        let layout = self.layouts.get(&relation_id)?;
        let raw = |c: &Column| row.get(c.index).and_then(TupleValue::as_bytes).cloned();
        let topic = raw(&layout.route_by)
            .map(|value| route_topic(&self.options, &String::from_utf8_lossy(&value)));
        Some(RawRow {
            table: layout.table.clone(),
            id: raw(&layout.id),
            key: raw(&layout.key),
            payload: raw(&layout.payload),
            topic,
        })
    }

    /// Routes an inserted row. `Ok(None)`: the relation is not an outbox table.
    pub fn route_insert(
        &mut self,
        relation_id: u32,
        row: &TupleData,
        commit_time_us: i64,
    ) -> Result<Option<Routed>, RouteError> {
        self.route_insert_at(relation_id, row, &ChangePosition::at(commit_time_us))
    }

    /// Routes an inserted row at a known WAL position (the transaction id and the change's LSN,
    /// which Debezium's source block carries: `header.from.fields`). `Ok(None)`: the relation is
    /// not an outbox table.
    pub fn route_insert_at(
        &mut self,
        relation_id: u32,
        row: &TupleData,
        at: &ChangePosition,
    ) -> Result<Option<Routed>, RouteError> {
        let Some(layout) = self.layouts.get(&relation_id) else {
            return Ok(None);
        };
        Self::route_row(
            &self.options,
            &self.converters,
            &mut self.envelope_names,
            &mut self.topics,
            layout,
            row,
            at,
        )
        .map(Some)
    }

    /// Routes a transactional logical decoding message of a configured prefix (the caller checks
    /// [`Router::message_relation_id`] and `transactional`) exactly as the row its content
    /// stands for (see [`message`]). Content that is no such row is a
    /// [`RouteError::BadRow`], as a bad row is.
    pub fn route_message(
        &mut self,
        msg: &LogicalMessage,
        commit_time_us: i64,
    ) -> Result<Routed, RouteError> {
        let table = message::label(&msg.prefix);
        let bad = |id: &str, problem: String| RouteError::BadRow {
            table: table.clone(),
            id: id.to_string(),
            problem,
        };
        let row =
            message::message_row(&self.options, &msg.content).map_err(|e| bad(&e.id, e.problem))?;
        let schema_prefix = format!(
            "{}.message.{}",
            self.options.topic_prefix.as_deref().unwrap_or("outboxd"),
            msg.prefix
        );
        // A field the options need but the content lacks, or of a type they cannot use, is a
        // problem of this message, not of the configuration.
        let layout = self
            .layout(
                &row.relation,
                table.clone(),
                schema_prefix,
                Some(&row.not_null),
            )
            .map_err(|e| bad(&row.id, e.to_string()))?;
        Self::route_row(
            &self.options,
            &self.converters,
            &mut self.envelope_names,
            &mut self.topics,
            &layout,
            &row.values,
            &ChangePosition::at(commit_time_us),
        )
    }

    /// The raw fields of a message [`route_message`](Self::route_message) refused (a poison
    /// event), as [`raw_row`](Self::raw_row) gives them for a row; the whole content as the
    /// payload when it is not a JSON object.
    pub fn raw_message(&self, msg: &LogicalMessage) -> RawRow {
        message::raw_message(&self.options, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::testing::*;

    #[test]
    fn other_relations_are_not_routed() {
        let mut r = default_router();
        r.on_relation(&relation(1, "public", "orders", &[("id", oid::INT4)]))
            .unwrap();
        assert_eq!(r.route_insert(1, &row(vec![text("1")]), 0), Ok(None));
        assert_eq!(r.outbox_table(1), None);
        assert_eq!(r.outbox_table(16384), Some("public.outbox"));
    }

    #[test]
    fn raw_rows_carry_the_cells_of_refused_rows() {
        let mut r = default_router();
        let values = vec![
            text("aaaaaaaa-0000-4000-8000-000000000001"),
            text("Bad Topic"),
            text("k-1"),
            text("E"),
            text("{\"a\": 1}"),
        ];
        assert!(route(&mut r, values.clone()).is_err());
        let raw = r.raw_row(16384, &row(values)).unwrap();
        assert_eq!(raw.table, "public.outbox");
        assert_eq!(utf8(&raw.id), Some("aaaaaaaa-0000-4000-8000-000000000001"));
        assert_eq!(utf8(&raw.key), Some("k-1"));
        assert_eq!(utf8(&raw.payload), Some("{\"a\": 1}"));
        assert_eq!(raw.topic.as_deref(), Some("outbox.event.Bad Topic"));
        let nulls = row(vec![TupleValue::Null; 5]);
        let raw = r.raw_row(16384, &nulls).unwrap();
        assert_eq!(
            (raw.id, raw.key, raw.payload, raw.topic),
            (None, None, None, None)
        );
        assert!(r.raw_row(1, &nulls).is_none(), "not an outbox table");
    }

    #[test]
    fn golden_case_06_header_placements() {
        let mut r = golden_router(
            &[(
                "table.fields.additional.placement",
                "type:header:eventType,ts:header,seq:header:seq,version:header",
            )],
            &[],
        );
        let routed = route_all(&mut r);
        let headers = |i: usize| header_pairs(&routed[i]);
        let h = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            headers(0),
            vec![
                h("id", Some("11111111-1111-4111-8111-111111111111")),
                h("eventType", Some("OrderCreated")),
                h("ts", Some("2026-11-21T10:00:00.123456Z")),
                h("seq", Some("1")),
                h("version", Some("3")),
            ]
        );
        assert_eq!(headers(1)[2], h("ts", Some("2026-11-21T08:00:01.000000Z")));
        assert_eq!(headers(1)[4], h("version", None));
        // No traceparent: tracing.span.context.field is not set.
        assert_eq!(headers(0).len(), 5);
    }

    #[test]
    fn golden_case_07_envelope_schema_names_are_cached_per_version_as_debezium_does() {
        let mut r = golden_router(
            &[
                (
                    "table.fields.additional.placement",
                    "type:envelope:eventType,seq:envelope",
                ),
                ("table.field.event.schema.version", "version"),
                ("topic.prefix", "golden"),
            ],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        let routed = route_all(&mut r);
        let fields = r#"{"type":"struct","fields":[{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"payload"},{"type":"string","optional":false,"field":"eventType"},{"type":"int64","optional":false,"field":"seq"}],"optional":false"#;
        assert_eq!(
            utf8(&routed[0].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Order.Value","version":3}},"payload":{{"payload":"{{\"id\": 1, \"note\": \"café \\\"q\\\"\", \"items\": [{{\"qty\": 2, \"sku\": \"A\"}}]}}","eventType":"OrderCreated","seq":1}}}}"#
            )
        );
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Customer.Value"}},"payload":{{"payload":"[1, 2, 3]","eventType":"CustomerMoved","seq":2}}}}"#
            )
        );
        // Version NULL again: Debezium reuses the schema it built for the Customer row.
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            format!(
                r#"{{"schema":{fields},"name":"golden.public.outbox.Customer.Value"}},"payload":{{"payload":null,"eventType":"OrderDeleted","seq":3}}}}"#
            )
        );
        assert_eq!(
            utf8(&routed[0].record.key).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"o-1"}"#
        );
    }

    #[test]
    fn golden_case_08_envelope_without_schemas() {
        let mut r = golden_router(
            &[(
                "table.fields.additional.placement",
                "type:envelope:eventType,ts:envelope",
            )],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
                ("key.converter.schemas.enable", "false"),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        let routed = route_all(&mut r);
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            r#"{"payload":"[1, 2, 3]","eventType":"CustomerMoved","ts":"2026-11-21T08:00:01.000000Z"}"#
        );
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            r#"{"payload":null,"eventType":"OrderDeleted","ts":"2026-11-21T10:00:02.000000Z"}"#
        );
        assert_eq!(utf8(&routed[2].record.key).unwrap(), r#""o-1""#);
    }

    #[test]
    fn golden_case_09_partition_and_timestamp() {
        let mut r = golden_router(
            &[
                ("table.fields.additional.placement", "part:partition"),
                ("table.field.event.timestamp", "ts_local"),
            ],
            &[],
        );
        let got: Vec<(Option<i32>, i64)> = route_all(&mut r)
            .iter()
            .map(|x| (x.record.partition, x.record.timestamp_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(2), 1_795_255_200_123),
                (Some(1), 1_795_248_001_000),
                (Some(0), 1_795_255_202_000)
            ]
        );
        // Where Debezium dies (timestamptz), outboxd takes the instant.
        let mut r = golden_router(&[("table.field.event.timestamp", "ts")], &[]);
        let got: Vec<i64> = route_all(&mut r)
            .iter()
            .map(|x| x.record.timestamp_ms)
            .collect();
        assert_eq!(
            got,
            vec![1_795_255_200_123, 1_795_248_001_000, 1_795_255_202_000]
        );
    }

    #[test]
    fn golden_cases_04_05_expanded_payloads_and_top_level_arrays() {
        let mut r = golden_router(
            &[("table.expand.json.payload", "true")],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        let routed = route_all(&mut r);
        assert!(utf8(&routed[0].record.value).unwrap().starts_with(
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"id"}"#
        ));
        assert_eq!(
            utf8(&routed[1].record.value).unwrap(),
            r#"{"schema":{"type":"array","items":{"type":"int32","optional":true},"optional":true},"payload":[1,2,3]}"#
        );
        assert_eq!(
            utf8(&routed[2].record.value).unwrap(),
            r#"{"schema":{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1},"payload":null}"#
        );
        assert!(routed.iter().all(|x| x.warnings.is_empty()));
        let mut r = golden_router(
            &[("table.expand.json.payload", "true")],
            &[
                ("value.converter", JSON_CONVERTER),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        let routed = route_all(&mut r);
        assert_eq!(
            utf8(&routed[0].record.value).unwrap(),
            r#"{"id":1,"note":"café \"q\"","items":[{"qty":2,"sku":"A"}]}"#
        );
        assert_eq!(utf8(&routed[1].record.value).unwrap(), "[1,2,3]");
        assert_eq!(utf8(&routed[2].record.value).unwrap(), "null");
    }

    #[test]
    fn golden_cases_14_15_integer_keys_and_text_payloads() {
        let table = TableName::parse("public.textbox").unwrap();
        let textbox = Relation {
            columns: relation(
                4,
                "public",
                "textbox",
                &[
                    ("id", oid::INT8),
                    ("aggregatetype", oid::TEXT),
                    ("aggregateid", oid::INT4),
                    ("type", oid::TEXT),
                    ("payload", oid::TEXT),
                ],
            )
            .columns,
            ..relation(4, "public", "textbox", &[])
        };
        let not_null: HashSet<String> = ["id", "aggregatetype", "aggregateid", "type"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows = [
            row(vec![
                text("1"),
                text("Text"),
                text("42"),
                text("Plain"),
                text(r#"{"a":1}"#),
            ]),
            row(vec![
                text("2"),
                text("Text"),
                text("43"),
                text("NotJson"),
                text("hello world"),
            ]),
        ];
        let run = |router: &[(&str, &str)], conv: &[(&str, &str)]| -> Vec<Routed> {
            let mut r =
                Router::new(opts(router), vec![table.clone()]).with_converters(converters(conv));
            r.set_not_null_columns(table.clone(), not_null.clone());
            r.on_relation(&textbox).unwrap();
            rows.iter()
                .map(|row| r.route_insert(4, row, 0).unwrap().unwrap())
                .collect()
        };
        let with_schemas = run(
            &[],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
            ],
        );
        assert_eq!(
            utf8(&with_schemas[0].record.key).unwrap(),
            r#"{"schema":{"type":"int32","optional":false},"payload":42}"#
        );
        assert_eq!(
            utf8(&with_schemas[1].record.value).unwrap(),
            r#"{"schema":{"type":"string","optional":true},"payload":"hello world"}"#
        );
        assert_eq!(utf8(&with_schemas[0].record.headers[0].1), Some("1"));
        let expanded = run(
            &[("table.expand.json.payload", "true")],
            &[
                ("key.converter", JSON_CONVERTER),
                ("value.converter", JSON_CONVERTER),
                ("key.converter.schemas.enable", "false"),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        assert_eq!(utf8(&expanded[0].record.key).unwrap(), "42");
        assert_eq!(utf8(&expanded[0].record.value).unwrap(), r#"{"a":1}"#);
        assert_eq!(utf8(&expanded[1].record.value).unwrap(), r#""hello world""#);
        // Not JSON: published unchanged, and the pipeline is told.
        assert_eq!(expanded[1].warnings.len(), 1);
        assert_eq!(expanded[1].warnings[0].kind, "json_not_expanded");
        assert!(expanded[1].warnings[0].to_string().contains("id 2"));
    }
}
