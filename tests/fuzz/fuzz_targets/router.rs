//! The router on arbitrary rows of a fixed outbox table: `Router::route_insert` must return a
//! record or an error, never panic. The first input byte picks one of a few option/converter
//! sets (defaults, JSON expansion, JsonConverter schemas, every placement, regex routing), the
//! rest is the row: cells separated by 0x1F, each starting with `n` (NULL), `u` (unchanged
//! TOAST), `b` (binary format) or anything else (text format, the byte included).
#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use outboxd_pure::config::TableName;
use outboxd_pure::convert::Converters;
use outboxd_pure::router::{oid, Router, RouterOptions};
use outboxd_pure::source::pgoutput::{Column, Relation, TupleData, TupleValue};

/// (router options, converter options) pairs.
const SETS: &[(&[(&str, &str)], &[(&str, &str)])] = &[
    (&[], &[]),
    (
        &[
            ("table.expand.json.payload", "true"),
            ("route.tombstone.on.empty.payload", "true"),
            ("table.json.payload.null.behavior", "optional_bytes"),
        ],
        &[],
    ),
    (
        &[("table.expand.json.payload", "true")],
        &[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
        ],
    ),
    (
        &[
            (
                "table.fields.additional.placement",
                "type:header:eventType,part:partition,version:envelope:v,seq:header,ts:envelope",
            ),
            ("table.field.event.timestamp", "ts"),
            ("table.field.event.schema.version", "version"),
            ("tracing.span.context.field", "tracingspancontext"),
            ("topic.prefix", "golden"),
            ("table.expand.json.payload", "true"),
        ],
        &[(
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        )],
    ),
    (
        &[
            ("route.topic.regex", "(?<routedByValue>[a-z]+)_(.*)"),
            ("route.topic.replacement", "t.${routedByValue}.$2"),
            ("table.field.event.timestamp", "ts_local"),
            (
                "table.fields.additional.placement",
                "ts_local:header,seq:partition",
            ),
        ],
        &[
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
        ],
    ),
];

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The golden files' `public.outbox`: every column the option sets refer to.
fn relation() -> Relation {
    let cols = [
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
    ];
    Relation {
        id: 7,
        namespace: "public".into(),
        name: "outbox".into(),
        replica_identity: Relation::IDENTITY_DEFAULT,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, (name, type_oid))| Column {
                flags: u8::from(i == 0),
                name: (*name).into(),
                type_oid: *type_oid,
                type_modifier: -1,
            })
            .collect(),
    }
}

/// The option sets, parsed once (compiling their regular expressions is what takes time); each
/// input gets a fresh router, so that no state carries over from one input to the next.
fn parsed_sets() -> &'static [(RouterOptions, Converters)] {
    static SETS_PARSED: OnceLock<Vec<(RouterOptions, Converters)>> = OnceLock::new();
    SETS_PARSED.get_or_init(|| {
        SETS.iter()
            .map(|(router, converters)| {
                (
                    RouterOptions::from_map(&map(router)).expect("valid option set"),
                    Converters::from_map(&map(converters)).expect("valid converters"),
                )
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, row)) = data.split_first() else {
        return;
    };
    let (options, converters) = &parsed_sets()[usize::from(pick) % SETS.len()];
    let table = TableName::parse("public.outbox").unwrap();
    let mut router =
        Router::new(options.clone(), vec![table.clone()]).with_converters(converters.clone());
    if pick & 0x80 != 0 {
        let not_null: HashSet<String> = ["id", "aggregatetype", "aggregateid", "type", "seq"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        router.set_not_null_columns(table, not_null);
    }
    if router.on_relation(&relation()).is_err() {
        return;
    }
    let values = row
        .split(|&b| b == 0x1F)
        .map(|cell| match cell.first() {
            Some(b'n') => TupleValue::Null,
            Some(b'u') => TupleValue::UnchangedToast,
            Some(b'b') => TupleValue::Binary(Bytes::copy_from_slice(&cell[1..])),
            _ => TupleValue::Text(Bytes::copy_from_slice(cell)),
        })
        .collect();
    let commit_time_us = i64::from(pick) * 1_000_003_000_000;
    match router.route_insert(7, &TupleData(values), commit_time_us) {
        Ok(Some(routed)) => {
            let _ = routed.record.size();
            for w in &routed.warnings {
                let _ = w.to_string();
            }
        }
        Ok(None) => unreachable!("relation 7 is an outbox table"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
