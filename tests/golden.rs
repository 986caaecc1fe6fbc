//! Golden tests: the records outboxd writes, byte for byte, against the records Debezium 3.6.3
//! wrote for the same rows (`tests/golden/debezium-3.6.3/`, a copy of the reference set; see its
//! README for how they were made).
//!
//! Every one of the 15 cases runs end to end: one PostgreSQL cluster (a database per case with
//! the golden README's three tables), the shared broker, and an `outboxd run` per case whose
//! configuration is derived from the case's `connector_config` when the test runs (the
//! `transforms.outbox.*` options go to `[router]`, `topic.prefix` too, the `*.converter*` keys to
//! `[converters]`, `table.include.list` to `source.tables`). Each case's `source_sql` then runs,
//! one transaction per statement, and the records read back are compared with the golden ones in
//! (topic, partition, offset) order: topic, partition, key bytes, value bytes, and the headers in
//! order. Deliberately not compared:
//! - the `__debezium.context.*` headers Debezium 3.3+ adds (connector name, task id, run id),
//!   which outboxd does not emulate;
//! - timestamps, except in case 09 (`table.field.event.timestamp`): elsewhere Debezium's are its
//!   processing time and outboxd's are the commit time.
//!
//! Topics get a per-run prefix (`<tag>.outbox.event.Order`: `route.topic.replacement` is prefixed)
//! so runs sharing a broker never read each other's records; the partition, computed from the key
//! bytes, does not depend on the topic name.
//!
//! Rows Debezium could not publish are asserted too, with what outboxd emits instead:
//! - cases 04 and 05 (`table.expand.json.payload`): the golden SQL leaves out the row whose payload
//!   is the top-level JSON array `[1, 2, 3]` (Debezium's task dies on it); here it is inserted
//!   and must come out as an array (`{"type":"array",...}` schema with schemas, `[1,2,3]` without);
//! - case 09 with a `timestamptz` column (`ts`) as `table.field.event.timestamp` (Debezium dies:
//!   "not of type INT64"): the same records, with the same timestamps as `ts_local` gives.
//!
//! CloudEvents (`tests/golden/cloudevents/`, see its README) run the same way:
//! - `01-structured-debezium`: what Debezium 3.6.1 wrote with its documented CloudEvents outbox
//!   setup (a `HeaderFrom$Value` before the EventRouter, `CloudEventsConverter` with
//!   `metadata.source=header`, JsonConverter headers). The HeaderFrom transform maps to
//!   `header.from.fields`/`headers` and `database.dbname` to `debezium.source.db` (the case runs
//!   in a database of that name). Compared byte for byte but for the values that are the run's:
//!   the commit time (`time`, `iodebeziumts{ms,us,ns}`, the source header's `ts_{ms,us,ns}`), which
//!   in outboxd's records must instead agree with each other and with the record timestamp (the
//!   commit time), and the transaction id and LSNs (`txId`, `lsn`, `sequence`: null in outboxd,
//!   whose router is not given them yet; numbers that agree with each other if it is);
//! - `02-binary`: outboxd's CloudEvents binary content mode, whose records the Kafka protocol
//!   binding fixes (Debezium has no binary mode): Debezium's key, value, topic and partition of
//!   case 01 with the `ce_*` and `content-type` headers; the file's `outboxd_router` holds the
//!   `[router]` keys that are outboxd's own. Compared in full, timestamps included
//!   (`table.field.event.timestamp=ts_local`).
//!
//! The whole run takes about half a minute; cases run eight at a time.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use support::{
    consume_topics, slot_confirmed_lsn, unique, wait_until, Broker, Outboxd, PgCluster, Record,
};

/// A byte string as the golden files write it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Enc {
    Utf8(String),
    Base64(String),
}

impl Enc {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Enc::Utf8(s) => s.as_bytes().to_vec(),
            Enc::Base64(s) => base64_decode(s),
        }
    }
}

/// Headers in file order (serde_json's map would sort them).
#[derive(Debug, Clone)]
struct Headers(Vec<(String, Option<Enc>)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of headers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Option<Enc>>()? {
                    out.push((k, v));
                }
                Ok(Headers(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct GoldenRecord {
    topic: String,
    partition: i32,
    timestamp_ms: i64,
    key: Option<Enc>,
    value: Option<Enc>,
    headers: Headers,
}

#[derive(Debug, Clone, Deserialize)]
struct Golden {
    connector_config: BTreeMap<String, String>,
    /// `[router]` keys that are outboxd's own (no connector key maps to them).
    #[serde(default)]
    outboxd_router: BTreeMap<String, String>,
    source_sql: Vec<String>,
    topic_partitions: BTreeMap<String, i32>,
    records: Vec<GoldenRecord>,
}

/// One expected record, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    topic: String,
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    /// Compared only when set.
    timestamp_ms: Option<i64>,
}

/// One run: a configuration, the SQL, and the records it must produce.
struct Case {
    name: String,
    connector_config: BTreeMap<String, String>,
    outboxd_router: BTreeMap<String, String>,
    /// Structured CloudEvents: the run's times, transaction id and LSNs masked (see the module
    /// documentation).
    masked: bool,
    sql: Vec<String>,
    topic_partitions: BTreeMap<String, i32>,
    expected: Vec<Expected>,
}

fn golden_dir() -> PathBuf {
    std::env::var_os("OUTBOXD_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join("tests/golden/debezium-3.6.3"))
}

fn load_golden() -> Vec<(String, Golden)> {
    load_golden_from(&golden_dir())
}

fn cloudevents_dir() -> PathBuf {
    support::repo_root().join("tests/golden/cloudevents")
}

fn load_golden_from(dir: &std::path::Path) -> Vec<(String, Golden)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("golden directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let golden: Golden =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                golden,
            )
        })
        .collect()
}

fn expected_from_golden(g: &Golden, with_timestamps: bool) -> Vec<Expected> {
    g.records
        .iter()
        .map(|r| Expected {
            topic: r.topic.clone(),
            partition: r.partition,
            key: r.key.as_ref().map(Enc::bytes),
            value: r.value.as_ref().map(Enc::bytes),
            headers: r
                .headers
                .0
                .iter()
                .filter(|(k, _)| !k.starts_with("__debezium.context."))
                .map(|(k, v)| (k.clone(), v.as_ref().map(Enc::bytes)))
                .collect(),
            timestamp_ms: with_timestamps.then_some(r.timestamp_ms),
        })
        .collect()
}

/// The SQL of the row cases 04 and 05 leave out (Debezium dies on its top-level array payload).
const ARRAY_ROW_SQL: &str = "INSERT INTO public.outbox VALUES ('22222222-2222-4222-8222-222222222222', 'Customer', 'c-9', 'CustomerMoved', '[1, 2, 3]', '2026-11-21 10:00:01+02', 2, 1, NULL, NULL, '2026-11-21 08:00:01')";

/// Every golden case, plus what outboxd must do where Debezium could not.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (name, g) in load_golden() {
        let number = &name[..2];
        let mut case = Case {
            name: name.clone(),
            connector_config: g.connector_config.clone(),
            outboxd_router: BTreeMap::new(),
            masked: false,
            sql: g.source_sql.clone(),
            topic_partitions: g.topic_partitions.clone(),
            expected: expected_from_golden(&g, number == "09"),
        };
        if number == "04" || number == "05" {
            assert!(
                !case.sql.iter().any(|s| s.contains("'[1, 2, 3]'")),
                "{name}: the golden SQL now has the array row"
            );
            case.sql.insert(1, ARRAY_ROW_SQL.to_string());
            case.topic_partitions
                .insert("outbox.event.Customer".into(), 4);
            let with_schemas = number == "04";
            let key: &[u8] = if with_schemas {
                br#"{"schema":{"type":"string","optional":false},"payload":"c-9"}"#
            } else {
                br#""c-9""#
            };
            let value: &[u8] = if with_schemas {
                br#"{"schema":{"type":"array","items":{"type":"int32","optional":true},"optional":true},"payload":[1,2,3]}"#
            } else {
                b"[1,2,3]"
            };
            case.expected.insert(
                0,
                Expected {
                    topic: "outbox.event.Customer".into(),
                    partition: java_partition(key, 4),
                    key: Some(key.to_vec()),
                    value: Some(value.to_vec()),
                    headers: vec![(
                        "id".into(),
                        Some(b"22222222-2222-4222-8222-222222222222".to_vec()),
                    )],
                    timestamp_ms: None,
                },
            );
        }
        if number == "09" {
            let mut tz = Case {
                name: format!("{name}-timestamptz"),
                connector_config: g.connector_config.clone(),
                outboxd_router: BTreeMap::new(),
                masked: false,
                sql: g.source_sql.clone(),
                topic_partitions: g.topic_partitions.clone(),
                expected: expected_from_golden(&g, true),
            };
            tz.connector_config.insert(
                "transforms.outbox.table.field.event.timestamp".into(),
                "ts".into(),
            );
            out.push(tz);
        }
        out.push(case);
    }
    assert_eq!(
        out.len(),
        16,
        "15 golden cases and the timestamptz variant of 09"
    );
    let cloudevents = load_golden_from(&cloudevents_dir());
    assert_eq!(cloudevents.len(), 2, "the structured and the binary case");
    for (name, g) in cloudevents {
        let structured = g
            .connector_config
            .get("value.converter")
            .map(String::as_str)
            == Some("io.debezium.converters.CloudEventsConverter");
        out.push(Case {
            name: format!("cloudevents/{name}"),
            connector_config: g.connector_config.clone(),
            outboxd_router: g.outboxd_router.clone(),
            masked: structured,
            sql: g.source_sql.clone(),
            topic_partitions: g.topic_partitions.clone(),
            expected: expected_from_golden(&g, !structured),
        });
    }
    out
}

/// The run's values in a structured CloudEvents record (see the module documentation), each
/// replaced by its name: value attributes, then the source header's fields.
const MASKED: &[(&str, &str)] = &[
    ("time", r#""time":"[^"]*""#),
    ("iodebeziumtsms", r#""iodebeziumtsms":"\d+""#),
    ("iodebeziumtsus", r#""iodebeziumtsus":"\d+""#),
    ("iodebeziumtsns", r#""iodebeziumtsns":"\d+""#),
    (
        "iodebeziumsequence",
        r#""iodebeziumsequence":(?:null|"(?:[^"\\]|\\.)*")"#,
    ),
    ("iodebeziumtxId", r#""iodebeziumtxId":(?:null|"\d+")"#),
    ("iodebeziumlsn", r#""iodebeziumlsn":(?:null|"\d+")"#),
    ("ts_ms", r#""ts_ms":\d+"#),
    ("ts_us", r#""ts_us":\d+"#),
    ("ts_ns", r#""ts_ns":\d+"#),
    ("sequence", r#""sequence":(?:null|"(?:[^"\\]|\\.)*")"#),
    ("txId", r#""txId":(?:null|\d+)"#),
    ("lsn", r#""lsn":(?:null|\d+)"#),
];

/// `bytes` with the [`MASKED`] values replaced by `"<name>":…`; the values found, by name.
fn mask(bytes: &[u8]) -> (Vec<u8>, BTreeMap<&'static str, String>) {
    let mut text = String::from_utf8(bytes.to_vec()).expect("CloudEvents JSON is UTF-8");
    let mut found = BTreeMap::new();
    for (name, pattern) in MASKED {
        let re = regex::Regex::new(pattern).unwrap();
        if let Some(m) = re.find(&text) {
            let value = m
                .as_str()
                .split_once(':')
                .unwrap()
                .1
                .trim_matches('"')
                .to_string();
            found.insert(*name, value);
        }
        text = re
            .replace_all(&text, format!("\"{name}\":…").as_str())
            .into_owned();
    }
    (text.into_bytes(), found)
}

/// Masks a structured CloudEvents record; for outboxd's (`own`), checks the masked values agree
/// with each other and with the record timestamp.
fn mask_record(r: &mut Expected, own: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut values = BTreeMap::new();
    if let Some(v) = r.value.as_mut() {
        let (masked, found) = mask(v);
        *v = masked;
        values.extend(found);
    }
    for (k, v) in &mut r.headers {
        if k == "source" {
            if let Some(v) = v.as_mut() {
                let (masked, found) = mask(v);
                *v = masked;
                values.extend(found);
            }
        }
    }
    if own {
        let ts = r.timestamp_ms.take();
        let num = |k: &str| values.get(k).and_then(|v| v.parse::<i64>().ok());
        let (ms, us, ns) = (num("ts_ms"), num("ts_us"), num("ts_ns"));
        if ms.is_none()
            || ms != ts
            || us.map(|u| u.div_euclid(1000)) != ms
            || ns != us.map(|u| u * 1000)
        {
            problems.push(format!("the source header's times {values:?} disagree with each other or with the record timestamp {ts:?} (the commit time)"));
        }
        if r.value.is_some() {
            let time = ms.map(outboxd::convert::cloudevents::iso_millis);
            if num("iodebeziumtsms") != ms
                || num("iodebeziumtsus") != us
                || num("iodebeziumtsns") != ns
                || values.get("time") != time.as_ref()
            {
                problems.push(format!(
                    "the event's times {values:?} are not the source header's"
                ));
            }
        }
        match (
            values.get("lsn").map(String::as_str),
            values.get("sequence"),
        ) {
            (Some("null"), Some(seq)) if seq == "null" => {}
            (Some(lsn), Some(seq))
                if lsn != "null" && seq.ends_with(&format!("\\\"{lsn}\\\"]")) => {}
            other => problems.push(format!("lsn and sequence disagree: {other:?}")),
        }
    } else {
        r.timestamp_ms = None;
    }
    problems
}

/// Kafka's `Utils.murmur2` (the Java client's default partitioner for keyed records).
fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {s:?}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

const TABLES_DDL: &str = "
CREATE TABLE public.outbox (
  id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL, payload jsonb, ts timestamptz NOT NULL, seq bigint NOT NULL,
  part int NOT NULL DEFAULT 0, version int, tracingspancontext varchar(256), ts_local timestamp);
CREATE TABLE public.binbox (
  id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL, payload bytea);
CREATE TABLE public.textbox (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, aggregatetype text NOT NULL,
  aggregateid integer NOT NULL, type text NOT NULL, payload text);
";

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The outboxd configuration equivalent to a case's connector configuration.
fn outboxd_config(case: &Case, pg_url: &str, slot: &str, tag: &str, bootstrap: &str) -> String {
    let cc = &case.connector_config;
    let tables: Vec<String> = cc
        .get("table.include.list")
        .expect("table.include.list")
        .split(',')
        .map(|t| toml_str(t.trim()))
        .collect();
    let mut router: BTreeMap<String, String> = cc
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("transforms.outbox.")
                .filter(|k| *k != "type")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    if let Some(prefix) = cc.get("topic.prefix") {
        router.insert("topic.prefix".into(), prefix.clone());
    }
    // A HeaderFrom$Value transform before the EventRouter (Debezium's CloudEvents outbox setup;
    // its heartbeat predicate selects no outbox topic).
    if let Some(fields) = cc.get("transforms.addMetadataHeaders.fields") {
        router.insert("header.from.fields".into(), fields.clone());
        router.insert(
            "header.from.headers".into(),
            cc["transforms.addMetadataHeaders.headers"].clone(),
        );
        router.insert("debezium.source.db".into(), cc["database.dbname"].clone());
    }
    router.extend(case.outboxd_router.clone());
    let replacement = router
        .get("route.topic.replacement")
        .cloned()
        .unwrap_or_else(|| "outbox.event.${routedByValue}".into());
    router.insert(
        "route.topic.replacement".into(),
        format!("{tag}.{replacement}"),
    );
    let mut text = format!(
        "[source]\nurl = {}\nslot = {}\npublication = {}\ntables = [{}]\n\n[router]\n",
        toml_str(pg_url),
        toml_str(slot),
        toml_str(slot),
        tables.join(", ")
    );
    for (k, v) in &router {
        let _ = writeln!(text, "{} = {}", toml_str(k), toml_str(v));
    }
    text.push_str("\n[converters]\n");
    for (k, v) in cc {
        if k.starts_with("key.converter")
            || k.starts_with("value.converter")
            || k.starts_with("header.converter")
        {
            let _ = writeln!(text, "{} = {}", toml_str(k), toml_str(v));
        }
    }
    let _ = write!(
        text,
        "\n[kafka]\n\"bootstrap.servers\" = {}\n",
        toml_str(bootstrap)
    );
    text
}

/// Runs one case end to end; returns the mismatches (empty: identical).
async fn run_case(pg: &PgCluster, broker: &Broker, index: usize, case: &Case) -> Vec<String> {
    // The database the recording named (it reaches the source block), else one per case.
    let db = case
        .connector_config
        .get("database.dbname")
        .cloned()
        .unwrap_or_else(|| format!("case{index}"));
    let admin = pg.client().await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let client = pg.client_db(&db).await;
    client.batch_execute(TABLES_DDL).await.unwrap();

    let tag = unique("golden");
    let slot = format!("s_{db}");
    for (topic, partitions) in &case.topic_partitions {
        broker
            .create_topic(&format!("{tag}.{topic}"), *partitions)
            .await;
    }
    let config = outboxd_config(case, &pg.url(&db), &slot, &tag, broker.bootstrap());
    let outboxd = Outboxd::start_with(&config, &[], &[("RUST_LOG", "info")]);
    if !outboxd
        .wait_for_log("streaming", Duration::from_secs(60))
        .await
    {
        return vec![format!(
            "outboxd did not start streaming; config:\n{config}\nlog:\n{}",
            outboxd.log()
        )];
    }
    for stmt in &case.sql {
        client
            .batch_execute(stmt)
            .await
            .unwrap_or_else(|e| panic!("{}: {stmt}: {e}", case.name));
    }
    let lsn_after = support::current_wal_lsn(&client).await;
    let caught_up = wait_until(Duration::from_secs(60), || async {
        slot_confirmed_lsn(&client, &slot)
            .await
            .is_some_and(|l| l >= lsn_after)
    })
    .await;
    if !caught_up {
        return vec![format!(
            "the slot did not reach {lsn_after:X}; outboxd log:\n{}",
            outboxd.log()
        )];
    }
    // Everything is acknowledged by now; ask for one more record than expected to catch extras.
    let topics: Vec<String> = case
        .topic_partitions
        .keys()
        .map(|t| format!("{tag}.{t}"))
        .collect();
    let (bootstrap, want) = (broker.bootstrap().to_string(), case.expected.len() + 1);
    let mut records: Vec<Record> = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consume_topics(&bootstrap, &refs, want, Duration::from_secs(4))
    })
    .await
    .unwrap();
    records
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let mut expected = case.expected.clone();
    for e in &mut expected {
        e.topic = format!("{tag}.{}", e.topic);
    }
    expected.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let got: Vec<Expected> = records
        .iter()
        .map(|r| Expected {
            topic: r.topic.clone(),
            partition: r.partition,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
            timestamp_ms: r.timestamp_ms,
        })
        .collect();
    let mut problems = Vec::new();
    if got.len() != expected.len() {
        problems.push(format!(
            "{} records, expected {}",
            got.len(),
            expected.len()
        ));
    }
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        let mut g = g.clone();
        let mut e = e.clone();
        if case.masked {
            for p in mask_record(&mut g, true) {
                problems.push(format!("record {i}: {p}"));
            }
            mask_record(&mut e, false);
        }
        if e.timestamp_ms.is_none() {
            g.timestamp_ms = None;
        }
        if g != e {
            problems.push(format!(
                "record {i} differs:\n  outboxd:  {}\n  expected: {}",
                show(&g),
                show(&e)
            ));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("outboxd log:\n{}", outboxd.log()));
    }
    problems
}

fn show(r: &Expected) -> String {
    let s = |b: &Option<Vec<u8>>| match b {
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        None => "null".into(),
    };
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    format!(
        "{} p{} ts={:?} key={} value={} headers=[{}]",
        r.topic,
        r.partition,
        r.timestamp_ms,
        s(&r.key),
        s(&r.value),
        headers.join(", ")
    )
}

#[test]
fn golden_partitions_are_the_java_clients_murmur2() {
    for (name, g) in load_golden() {
        let partitioned_by_column = g
            .connector_config
            .get("transforms.outbox.table.fields.additional.placement")
            .is_some_and(|p| p.contains(":partition"));
        if partitioned_by_column {
            continue;
        }
        for r in &g.records {
            let key = r.key.as_ref().map(Enc::bytes).unwrap();
            assert_eq!(
                java_partition(&key, g.topic_partitions[&r.topic]),
                r.partition,
                "{name}: {}",
                r.topic
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outboxd_writes_the_bytes_debezium_wrote() {
    let broker = Broker::shared();
    let pg = Arc::new(PgCluster::start());
    let cases = Arc::new(cases());
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut runs = Vec::new();
    for i in 0..cases.len() {
        let (pg, cases, limit) = (pg.clone(), cases.clone(), limit.clone());
        runs.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let case = &cases[i];
            (case.name.clone(), run_case(&pg, broker, i, case).await)
        }));
    }
    let mut failures = Vec::new();
    for run in runs {
        let (name, problems) = run.await.expect("case task panicked");
        if problems.is_empty() {
            eprintln!("golden {name}: identical");
        } else {
            failures.push(format!("=== {name}\n{}", problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Debezium:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
