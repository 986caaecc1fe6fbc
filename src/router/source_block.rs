//! Debezium's change event metadata that a `HeaderFrom$Value` transform copies into headers
//! before the EventRouter drops the event (`header.from.fields`), and that Debezium's
//! CloudEventsConverter reads back from them: the source block
//! (`io.debezium.connector.postgresql.Source` v1, Debezium 3.6's fields in its order), the
//! operation and the transaction block.
//!
//! The source block of a row committed at `ts` by transaction `xid`, its change at `lsn`:
//! `version` (`debezium.source.version`), `connector` `postgresql`, `name` (`topic.prefix`),
//! `ts_ms`/`ts_us`/`ts_ns` (the commit time), `snapshot` `false`, `db`
//! (`debezium.source.db`), `sequence` (`["<Begin's LSN>","<lsn>"]`, the LSNs as decimal text,
//! the first null when unknown), `schema`, `table`, `txId` (`xid`), `lsn`, and
//! `xmin`, `origin`, `origin_lsn` null. Where the caller does not know `xid` or `lsn` they are
//! null, and so is `sequence`.
//!
//! Owns these three values (schemas included). It must not write bytes: the header converter
//! and the CloudEvents converter do.

use crate::convert::cloudevents::transaction_block_schema;
use crate::convert::{Data, Field, Schema, Type, Value};
use crate::lsn::Lsn;
use crate::source::pgoutput::PG_EPOCH_UNIX_US;

use super::RouterOptions;

/// Where a routed change sits in the WAL: what Debezium's source block says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangePosition {
    /// The transaction's commit time, in µs since 2000-01-01 (pgoutput's Begin).
    pub commit_time_us: i64,
    /// The transaction id (pgoutput's Begin), `None` when the caller does not pass it.
    pub xid: Option<u32>,
    /// The change's own WAL position (its XLogData's start), `None` when not passed.
    pub lsn: Option<Lsn>,
    /// The WAL position of the transaction's Begin message, the first element of Debezium's
    /// `sequence` (Debezium 3.6.1 writes null there in the first transaction it streams after it
    /// starts, and then the Begin's position, which is the transaction's first change's when
    /// that is its first WAL record); `None`: null.
    pub begin_lsn: Option<Lsn>,
}

impl ChangePosition {
    /// A change known by its commit time alone.
    pub fn at(commit_time_us: i64) -> ChangePosition {
        ChangePosition {
            commit_time_us,
            ..ChangePosition::default()
        }
    }

    /// The commit time in µs since the Unix epoch.
    pub fn commit_unix_us(&self) -> i64 {
        self.commit_time_us + PG_EPOCH_UNIX_US
    }
}

/// The `allowed` parameter of the source block's `snapshot` enum.
const SNAPSHOT_VALUES: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

/// `io.debezium.connector.postgresql.Source` v1 (Debezium 3.6).
pub(super) fn source_schema() -> Schema {
    let f = |name: &str, kind: Type, optional: bool| Field {
        name: name.into(),
        schema: Schema::new(kind, optional),
    };
    let mut snapshot = Schema::new(Type::String, true).named("io.debezium.data.Enum", Some(1));
    snapshot.parameters = vec![("allowed".into(), SNAPSHOT_VALUES.into())];
    snapshot.default = Some("false".into());
    Schema::new(
        Type::Struct(vec![
            f("version", Type::String, false),
            f("connector", Type::String, false),
            f("name", Type::String, false),
            f("ts_ms", Type::Int64, false),
            Field {
                name: "snapshot".into(),
                schema: snapshot,
            },
            f("db", Type::String, false),
            f("sequence", Type::String, true),
            f("ts_us", Type::Int64, true),
            f("ts_ns", Type::Int64, true),
            f("schema", Type::String, false),
            f("table", Type::String, false),
            f("txId", Type::Int64, true),
            f("lsn", Type::Int64, true),
            f("xmin", Type::Int64, true),
            f("origin", Type::String, true),
            f("origin_lsn", Type::Int64, true),
        ]),
        false,
    )
    .named("io.debezium.connector.postgresql.Source", Some(1))
}

/// The source block of a change of `schema`.`table` at `at` (see the module documentation).
pub(super) fn source_block(
    o: &RouterOptions,
    schema: &str,
    table: &str,
    at: &ChangePosition,
) -> Data {
    let us = at.commit_unix_us();
    let text = |s: &str| Value::String(s.to_string());
    let lsn = |l: Option<Lsn>| l.map_or(Value::Null, |l| Value::Int64(l.0 as i64));
    let sequence = match at.lsn {
        Some(lsn) => {
            let last = at
                .begin_lsn
                .map_or("null".to_string(), |l| format!("\"{}\"", l.0));
            Value::String(format!("[{last},\"{}\"]", lsn.0))
        }
        None => Value::Null,
    };
    Data::new(
        source_schema(),
        Value::Struct(vec![
            text(&o.source_version),
            text("postgresql"),
            text(o.topic_prefix.as_deref().unwrap_or_default()),
            Value::Int64(us.div_euclid(1000)),
            text("false"),
            text(o.source_db.as_deref().unwrap_or_default()),
            sequence,
            Value::Int64(us),
            Value::Int64(us.saturating_mul(1000)),
            text(schema),
            text(table),
            at.xid.map_or(Value::Null, |x| Value::Int64(i64::from(x))),
            lsn(at.lsn),
            Value::Null,
            Value::Null,
            Value::Null,
        ]),
    )
}

/// The `op` field of an insert's change event.
pub(super) fn op_insert() -> Data {
    Data::new(Schema::new(Type::String, false), Value::String("c".into()))
}

/// The transaction block: null (outboxd writes no transaction metadata, as Debezium does without
/// `provide.transaction.metadata`).
pub(super) fn no_transaction() -> Data {
    Data::new(transaction_block_schema(), Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::HeaderConverter;
    use crate::router::testing::opts;

    fn json(d: &Data) -> String {
        let bytes = HeaderConverter::Json {
            schemas_enable: true,
        }
        .convert(d)
        .unwrap()
        .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn the_source_header_is_debeziums() {
        let o = opts(&[
            ("topic.prefix", "live"),
            ("debezium.source.db", "postgres"),
            ("header.from.fields", "source,op,transaction"),
        ]);
        // Recorded from Debezium 3.6.1 (its documented setup, scratch run): committed at
        // 2026-12-04T20:00:06.654234Z by xid 727, the change at 0/1529410.
        let at = ChangePosition {
            commit_time_us: 1_796_414_406_654_234 - PG_EPOCH_UNIX_US,
            xid: Some(727),
            lsn: Some(Lsn(22_189_328)),
            begin_lsn: None,
        };
        assert_eq!(
            json(&source_block(&o, "public", "outbox", &at)),
            r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1},"payload":{"version":"3.6.1.Final","connector":"postgresql","name":"live","ts_ms":1796414406654,"snapshot":"false","db":"postgres","sequence":"[null,\"22189328\"]","ts_us":1796414406654234,"ts_ns":1796414406654234000,"schema":"public","table":"outbox","txId":727,"lsn":22189328,"xmin":null,"origin":null,"origin_lsn":null}}"#
        );
        let after = ChangePosition {
            begin_lsn: Some(Lsn(22_189_000)),
            ..at
        };
        let text = json(&source_block(&o, "public", "outbox", &after));
        assert!(
            text.contains(r#""sequence":"[\"22189000\",\"22189328\"]""#),
            "{text}"
        );
        // Without the WAL position: null where Debezium has numbers.
        let text = json(&source_block(
            &o,
            "public",
            "outbox",
            &ChangePosition::at(0),
        ));
        assert!(
            text.contains(
                r#""ts_ms":946684800000,"snapshot":"false","db":"postgres","sequence":null"#
            ) && text.contains(r#""txId":null,"lsn":null"#),
            "{text}"
        );
        assert_eq!(
            json(&op_insert()),
            r#"{"schema":{"type":"string","optional":false},"payload":"c"}"#
        );
        assert_eq!(
            json(&no_transaction()),
            r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1},"payload":null}"#
        );
    }
}
