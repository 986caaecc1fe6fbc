//! Test helpers shared by the router modules' unit tests: outbox relations and rows (Debezium's
//! golden cases among them) and routers with given options.

pub(crate) use std::collections::HashSet;

pub(crate) use bytes::Bytes;

pub(crate) use super::*;
pub(crate) use crate::config::TableName;
pub(crate) use crate::convert::{
    Converters, BINARY_DATA_CONVERTER, JSON_CONVERTER, STRING_CONVERTER,
};
pub(crate) use crate::source::pgoutput::{Column as PgColumn, Relation, TupleData, TupleValue};

pub(crate) fn relation(id: u32, namespace: &str, name: &str, cols: &[(&str, u32)]) -> Relation {
    Relation {
        id,
        namespace: namespace.into(),
        name: name.into(),
        replica_identity: b'd',
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, (n, t))| PgColumn {
                flags: u8::from(i == 0),
                name: (*n).into(),
                type_oid: *t,
                type_modifier: -1,
            })
            .collect(),
    }
}

pub(crate) fn outbox_relation() -> Relation {
    relation(
        16384,
        "public",
        "outbox",
        &[
            ("id", oid::UUID),
            ("aggregatetype", oid::VARCHAR),
            ("aggregateid", oid::VARCHAR),
            ("type", oid::VARCHAR),
            ("payload", oid::JSONB),
        ],
    )
}

/// The golden files' `public.outbox` (debezium-golden/README.md).
pub(crate) fn golden_relation() -> Relation {
    relation(
        7,
        "public",
        "outbox",
        &[
            ("id", oid::UUID),
            ("aggregatetype", oid::VARCHAR),
            ("aggregateid", oid::VARCHAR),
            ("type", oid::VARCHAR),
            ("payload", oid::JSONB),
            ("ts", oid::TIMESTAMPTZ),
            ("seq", oid::INT8),
            ("part", oid::INT4),
            ("version", oid::INT4),
            ("tracingspancontext", oid::VARCHAR),
            ("ts_local", oid::TIMESTAMP),
        ],
    )
}

pub(crate) fn golden_not_null() -> HashSet<String> {
    [
        "id",
        "aggregatetype",
        "aggregateid",
        "type",
        "ts",
        "seq",
        "part",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) const ORDER_PAYLOAD: &str =
    r#"{"id": 1, "note": "café \"q\"", "items": [{"qty": 2, "sku": "A"}]}"#;

/// The three rows of the golden SQL, as pgoutput sends them (session time zone UTC).
pub(crate) fn golden_rows() -> Vec<TupleData> {
    let t = |s: &str| text(s);
    vec![
        row(vec![
            t("11111111-1111-4111-8111-111111111111"),
            t("Order"),
            t("o-1"),
            t("OrderCreated"),
            t(ORDER_PAYLOAD),
            t("2026-11-21 10:00:00.123456+00"),
            t("1"),
            t("2"),
            t("3"),
            t("#comment\ntraceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"),
            t("2026-11-21 10:00:00.123456"),
        ]),
        row(vec![
            t("22222222-2222-4222-8222-222222222222"),
            t("Customer"),
            t("c-9"),
            t("CustomerMoved"),
            t("[1, 2, 3]"),
            t("2026-11-21 08:00:01+00"),
            t("2"),
            t("1"),
            TupleValue::Null,
            TupleValue::Null,
            t("2026-11-21 08:00:01"),
        ]),
        row(vec![
            t("33333333-3333-4333-8333-333333333333"),
            t("Order"),
            t("o-1"),
            t("OrderDeleted"),
            TupleValue::Null,
            t("2026-11-21 10:00:02+00"),
            t("3"),
            t("0"),
            TupleValue::Null,
            TupleValue::Null,
            t("2026-11-21 10:00:02"),
        ]),
    ]
}

pub(crate) fn opts(pairs: &[(&str, &str)]) -> RouterOptions {
    RouterOptions::from_map(
        &pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap()
}

pub(crate) fn converters(pairs: &[(&str, &str)]) -> Converters {
    Converters::from_map(
        &pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap()
}

pub(crate) fn golden_router(router: &[(&str, &str)], conv: &[(&str, &str)]) -> Router {
    let table = TableName::parse("public.outbox").unwrap();
    let mut r = Router::new(opts(router), vec![table.clone()]).with_converters(converters(conv));
    r.set_not_null_columns(table, golden_not_null());
    r.on_relation(&golden_relation()).unwrap();
    r
}

pub(crate) fn route_all(r: &mut Router) -> Vec<Routed> {
    golden_rows()
        .iter()
        .map(|row| r.route_insert(7, row, 0).unwrap().unwrap())
        .collect()
}

/// A routed record's headers as (name, UTF-8 value) pairs.
pub(crate) fn header_pairs(routed: &Routed) -> Vec<(String, Option<String>)> {
    routed
        .record
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), utf8(v).map(str::to_string)))
        .collect()
}

pub(crate) fn utf8(b: &Option<Bytes>) -> Option<&str> {
    b.as_deref().map(|b| std::str::from_utf8(b).unwrap())
}

pub(crate) fn text(s: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
}

pub(crate) fn row(values: Vec<TupleValue>) -> TupleData {
    TupleData(values)
}

pub(crate) fn default_router() -> Router {
    let mut r = Router::new(
        RouterOptions::default(),
        vec![TableName::parse("public.outbox").unwrap()],
    );
    r.on_relation(&outbox_relation()).unwrap();
    r
}

pub(crate) fn route(r: &mut Router, values: Vec<TupleValue>) -> Result<OutboxRecord, RouteError> {
    r.route_insert(16384, &row(values), 0)
        .map(|routed| routed.unwrap().record)
}
