//! The router on arbitrary logical decoding message contents (`source.message_prefixes`):
//! `Router::route_message` must return a record or an error, never panic, and `raw_message` (what
//! a refused message's dead-letter record carries) must never panic either. The first input byte
//! picks one of a few option/converter sets (defaults, JSON expansion with tombstones,
//! JsonConverter schemas with envelope placements, partition and timestamp fields); the rest is
//! the message content.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use outboxd_pure::convert::Converters;
use outboxd_pure::lsn::Lsn;
use outboxd_pure::router::{Router, RouterOptions};
use outboxd_pure::source::pgoutput::LogicalMessage;

const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";

/// (router options, converter options) pairs.
const SETS: &[(&[(&str, &str)], &[(&str, &str)])] = &[
    (&[], &[]),
    (
        &[
            ("table.expand.json.payload", "true"),
            ("route.tombstone.on.empty.payload", "true"),
        ],
        &[],
    ),
    (
        &[
            (
                "table.fields.additional.placement",
                "type:header:eventType,version:envelope:v",
            ),
            ("table.field.event.schema.version", "version"),
            ("topic.prefix", "app"),
        ],
        &[("key.converter", JSON), ("value.converter", JSON)],
    ),
    (
        &[
            (
                "table.fields.additional.placement",
                "part:partition,seq:header",
            ),
            ("table.field.additional.missing", "ignore"),
            ("table.field.event.timestamp", "ts"),
            ("tracing.span.context.field", "tracingspancontext"),
        ],
        &[],
    ),
];

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The option sets, parsed once; each input gets a fresh router.
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
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let (options, converters) = &parsed_sets()[usize::from(pick) % SETS.len()];
    let mut router = Router::new(options.clone(), Vec::new())
        .with_converters(converters.clone())
        .with_message_prefixes(vec!["outbox".into()]);
    assert_eq!(router.message_relation_id("outbox"), Some(0));
    let message = LogicalMessage {
        transactional: true,
        lsn: Lsn(1),
        prefix: "outbox".into(),
        content: Bytes::copy_from_slice(content),
    };
    let commit_time_us = i64::from(pick) * 1_000_003_000_000;
    match router.route_message(&message, commit_time_us) {
        Ok(routed) => {
            let _ = routed.record.size();
            for w in &routed.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let raw = router.raw_message(&message);
            assert_eq!(raw.table, "message:outbox");
        }
    }
});
