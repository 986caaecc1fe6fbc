//! Debezium itself against outboxd, live: the same rows, the same connector configuration, the
//! records compared byte for byte.
//!
//! One PostgreSQL cluster with Debezium's outbox table, the shared broker, and per variant (a
//! converter setting) one Debezium (Kafka Connect 4.3 standalone worker, Debezium 3.6.1's
//! PostgreSQL connector and Outbox EventRouter: `scripts/debezium.sh run`, jars from
//! `tests/debezium/pom.xml`) and one outboxd. outboxd is given Debezium's own configuration: the
//! connector properties the launcher wrote, as a connector JSON (`outboxd run --config
//! connector.json`), with the launcher's `worker.properties` as `--worker-config`. Only three keys
//! differ: `slot.name` and `publication.name` (each its own), and
//! `transforms.outbox.route.topic.replacement`, whose value starts with a per-side prefix so the
//! two write to different topics.
//!
//! Variants: the worker's converters (JsonConverter, `schemas.enable` at its default, true: what a
//! connector that names no converter gets), StringConverter for keys and values with a
//! `type:header:eventType` placement, and Debezium's documented CloudEvents outbox setup
//! (`cloudevents`: a `HeaderFrom$Value` copying `source,op,transaction` into headers before the
//! EventRouter, an expanded payload with a `type:header` placement,
//! `value.converter=io.debezium.converters.CloudEventsConverter` with `metadata.source=header`,
//! JsonConverter headers). Debezium's converter kills the task on a value that is no struct (a
//! payload that is a JSON array or string), so that variant reads its own table,
//! `public.ce_outbox`, which gets the same transactions without those rows (5, 6, 7, and 9 whose
//! number neither can expand; outboxd's refusal of them is unit-tested). In its records only the
//! source block's `sequence` (in the value and the `source` header) is not compared: its first
//! element is null in the first transaction Debezium streams after its task starts and the
//! Begin's position after, which depends on when the process started; everything else is, the
//! transaction id, each change's LSN and the commit time included. The four processes start concurrently; once every task
//! streams, one set of transactions runs: several aggregate types and ids, a null payload,
//! non-ASCII text (in payloads, a key and a header), a top-level JSON array, JSON scalars, an
//! insert deleted in its own transaction (still published), an UPDATE and a DELETE (both dropped).
//!
//! Compared, pairing the records by their `id` header: topic (without the side's prefix),
//! partition, key bytes, value bytes, and the headers in order; also the order of the ids in each
//! partition and that neither side wrote a record the other did not. Not compared, as in
//! `tests/golden.rs`: the `__debezium.context.*` headers Debezium 3.3+ adds (connector name, task
//! id, run id: values of Debezium's process, which outboxd does not emulate), and timestamps
//! (Debezium's are its processing time, outboxd's the commit time). Printed: how long Debezium's
//! worker took to start its task, and how long each side took to publish.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use support::debezium::{self, Debezium};
use support::{consume_topics, unique, Broker, Outboxd, PgCluster, Record};

const TEST: &str = "debezium_and_outboxd_write_the_same_records";

/// The aggregate types the rows use (one topic each, 4 partitions).
const AGGREGATES: [&str; 3] = ["Order", "Customer", "Invoice"];

/// Partitions of every topic, so the key's murmur2 decides.
const PARTITIONS: i32 = 4;

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// One outbox row: id number, aggregate type, aggregate id (an SQL literal), event type, payload
/// (jsonb text, `None` for NULL).
type Row = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const ROWS: [Row; 10] = [
    (
        1,
        "Order",
        "'o-1'",
        "OrderCreated",
        Some(r#"{"id": "o-1", "total": 12.50, "items": [{"sku": "A-1", "qty": 2}]}"#),
    ),
    (2, "Order", "'o-1'", "OrderPaid", Some(r#"{"paid": true}"#)),
    // A null payload.
    (3, "Order", "'o-2'", "OrderCreated", None),
    // Non-ASCII text (one character outside the BMP) and JSON string escapes in the payload.
    (
        4,
        "Customer",
        "'c-1'",
        "CustomerRegistered",
        Some(
            r#"{"name": "Zoë Ångström", "city": "Kraków", "note": "東京 🦀", "quote": "he said \"hi\"\n", "path": "C:\\tmp"}"#,
        ),
    ),
    // A non-ASCII key, a top-level JSON array payload, a non-ASCII event type (a header in the
    // StringConverter variant) with a character outside the BMP.
    (
        5,
        "Customer",
        "'c-ü-東'",
        "Kunde_geändert_🦀",
        Some(r#"[1, 2, "three", {"four": 4}, null]"#),
    ),
    // An empty array and a JSON string scalar.
    (6, "Invoice", "'inv-1'", "InvoiceIssued", Some("[]")),
    (7, "Invoice", "'inv-1'", "InvoiceVoided", Some(r#""void""#)),
    // Deleted in its own transaction (the Quarkus extension's way): published all the same.
    (
        8,
        "Order",
        "'o-3'",
        "OrderCancelled",
        Some(r#"{"reason": "changed my mind"}"#),
    ),
    // Numbers as jsonb writes them, and a longer key.
    (
        9,
        "Order",
        "'order-with-a-longer-key-0009'",
        "OrderShipped",
        Some(r#"{"big": 12345678901234567890, "small": 1e-7, "neg": -0.0, "exp": 1.5E+300}"#),
    ),
    // A key with control characters, DEL, U+2028 and a character outside the BMP: what a JSON
    // writer must escape, and what it may.
    (
        10,
        "Customer",
        r"E'c-\t\x01\x1f\x7f\u2028-🦀'",
        "CustomerTagged",
        Some(r#"{"tag": 1}"#),
    ),
];

fn insert(row: &Row) -> String {
    let (n, agg, key, ty, payload) = *row;
    let payload = payload.map_or("NULL".to_string(), |p| {
        format!("'{}'::jsonb", p.replace('\'', "''"))
    });
    format!(
        "INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) \
         VALUES ('{}', '{agg}', {key}, '{ty}', {payload});",
        id(n)
    )
}

/// The transactions, one `batch_execute` each; every row of [`ROWS`] is published, nothing else.
fn transactions() -> Vec<String> {
    let ins = |n: u32| insert(&ROWS[n as usize - 1]);
    vec![
        // Two events of one aggregate in one transaction.
        format!("BEGIN; {} {} COMMIT;", ins(1), ins(2)),
        ins(3),
        ins(4),
        ins(5),
        format!("BEGIN; {} {} COMMIT;", ins(6), ins(7)),
        format!(
            "BEGIN; {} DELETE FROM public.outbox WHERE id = '{}'; COMMIT;",
            ins(8),
            id(8)
        ),
        // An UPDATE and a DELETE: neither publishes anything.
        format!(
            "UPDATE public.outbox SET payload = '{{\"paid\": false}}' WHERE id = '{}';",
            id(2)
        ),
        format!("DELETE FROM public.outbox WHERE id = '{}';", id(7)),
        ins(9),
        ins(10),
    ]
}

/// A converter setting both sides get.
struct Variant {
    name: &'static str,
    /// Extra connector properties (`scripts/debezium.sh --connector`).
    connector: &'static [&'static str],
    /// The outbox table the variant reads.
    table: &'static str,
    /// Rows (by number) left out of its table.
    excluded: &'static [u32],
    /// The transaction id and LSNs are masked (see the module documentation).
    masked: bool,
}

impl Variant {
    fn expected(&self) -> usize {
        ROWS.len() - self.excluded.len()
    }
}

const VARIANTS: [Variant; 3] = [
    Variant {
        // No converter on the connector: the worker's JsonConverter, schemas.enable=true.
        name: "json-schemas",
        connector: &[],
        table: "public.outbox",
        excluded: &[],
        masked: false,
    },
    Variant {
        name: "string",
        connector: &[
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "value.converter=org.apache.kafka.connect.storage.StringConverter",
            "transforms.outbox.table.fields.additional.placement=type:header:eventType",
        ],
        table: "public.outbox",
        excluded: &[],
        masked: false,
    },
    Variant {
        name: "cloudevents",
        connector: &[
            "tombstones.on.delete=false",
            "transforms=addMetadataHeaders,outbox",
            "transforms.addMetadataHeaders.type=org.apache.kafka.connect.transforms.HeaderFrom$Value",
            "transforms.addMetadataHeaders.fields=source,op,transaction",
            "transforms.addMetadataHeaders.headers=source,op,transaction",
            "transforms.addMetadataHeaders.operation=copy",
            "transforms.addMetadataHeaders.predicate=isHeartbeat",
            "transforms.addMetadataHeaders.negate=true",
            "transforms.outbox.table.expand.json.payload=true",
            "transforms.outbox.table.fields.additional.placement=type:header",
            "predicates=isHeartbeat",
            "predicates.isHeartbeat.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            "predicates.isHeartbeat.pattern=__debezium-heartbeat.*",
            "value.converter=io.debezium.converters.CloudEventsConverter",
            "value.converter.metadata.source=header",
            "header.converter=org.apache.kafka.connect.json.JsonConverter",
            "header.converter.schemas.enable=true",
        ],
        table: "public.ce_outbox",
        // A top-level array, an empty array, a JSON string: no struct. And a number beyond
        // int64 and double precision, which Debezium's JSON expansion cannot type (it dies:
        // "Invalid Java object for schema with type FLOAT64: class java.math.BigDecimal"), nor
        // outboxd's (it refuses the text payload as no struct).
        excluded: &[5, 6, 7, 9],
        masked: true,
    },
];

/// [`transactions`] on `table` without the `excluded` rows (a transaction left empty commits
/// nothing).
fn transactions_on(table: &str, excluded: &[u32]) -> Vec<String> {
    transactions()
        .into_iter()
        .map(|mut sql| {
            for n in excluded {
                sql = sql.replace(&insert(&ROWS[*n as usize - 1]), "");
            }
            sql.replace("public.outbox", table)
        })
        .collect()
}

/// The `sequence` of Debezium's source block in a CloudEvents record, masked: its first element
/// is null in the first transaction Debezium streams after its task starts, and the Begin's
/// position after (see the module documentation). The transaction id and the change's LSN are the
/// same on both sides (the same transactions, the same WAL) and are compared.
fn mask_wal_position(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut text = text.into_owned();
    for (name, pattern) in [
        (
            "iodebeziumsequence",
            r#""iodebeziumsequence":(?:null|"(?:[^"\\]|\\.)*")"#,
        ),
        ("sequence", r#""sequence":(?:null|"(?:[^"\\]|\\.)*")"#),
    ] {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, format!("\"{name}\":…").as_str())
            .into_owned();
    }
    text.into_bytes()
}

/// One variant's two sides, running.
struct Pair {
    variant: &'static Variant,
    debezium: Debezium,
    outboxd: Option<Outboxd>,
    /// Topic prefixes (`<tag>.dbz.`, `<tag>.obx.`).
    dbz_prefix: String,
    obx_prefix: String,
    dbz_start: Duration,
}

fn topics(prefix: &str) -> Vec<String> {
    AGGREGATES
        .iter()
        .map(|a| format!("{prefix}outbox.event.{a}"))
        .collect()
}

/// The connector JSON outboxd runs: Debezium's connector properties, with outboxd's own slot and
/// publication, and the topic replacement's `dbz_prefix` replaced by `obx_prefix`.
fn outboxd_connector_json(
    dbz: &[(String, String)],
    slot: &str,
    dbz_prefix: &str,
    obx_prefix: &str,
) -> String {
    let mut config = serde_json::Map::new();
    let mut name = String::new();
    let mut changed = 0;
    for (k, v) in dbz {
        let v = match k.as_str() {
            "name" => {
                name = v.clone();
                continue;
            }
            "slot.name" | "publication.name" => {
                changed += 1;
                slot.to_string()
            }
            "transforms.outbox.route.topic.replacement" => {
                changed += 1;
                let rest = v
                    .strip_prefix(dbz_prefix)
                    .unwrap_or_else(|| panic!("{k}={v} does not start with {dbz_prefix}"));
                format!("{obx_prefix}{rest}")
            }
            _ => v.clone(),
        };
        config.insert(k.clone(), serde_json::Value::String(v));
    }
    assert_eq!(
        changed, 3,
        "connector.properties lacks slot.name, publication.name or the topic replacement: {dbz:?}"
    );
    serde_json::to_string_pretty(&serde_json::json!({ "name": name, "config": config }))
        .expect("serialize the connector JSON")
}

async fn start_pair(
    variant: &'static Variant,
    pg: &PgCluster,
    broker: &Broker,
    tag: &str,
) -> Result<Pair, String> {
    let side = |s: &str| format!("{tag}_{}_{s}", variant.name.replace('-', "_"));
    let (dbz_slot, obx_slot) = (side("dbz"), side("obx"));
    let dbz_prefix = format!("{tag}.{}.dbz.", variant.name);
    let obx_prefix = format!("{tag}.{}.obx.", variant.name);
    for t in topics(&dbz_prefix).iter().chain(&topics(&obx_prefix)) {
        broker.create_topic(t, PARTITIONS).await;
    }

    let mut args: Vec<String> = [
        "--bootstrap",
        broker.bootstrap(),
        "--pg-url",
        &pg.url("postgres"),
        "--slot",
        &dbz_slot,
        "--publication",
        &dbz_slot,
        "--table",
        variant.table,
        "--topic-prefix",
        "live",
        "--name",
        &format!("outbox-{}", variant.name),
        "--heap",
        "384m",
        "--connector",
        &format!(
            "transforms.outbox.route.topic.replacement={dbz_prefix}outbox.event.${{routedByValue}}"
        ),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in variant.connector {
        args.extend(["--connector".to_string(), c.to_string()]);
    }

    let mut debezium = Debezium::spawn(&args);
    // The launcher writes its two files before it starts the JVM.
    let files = support::wait_until(Duration::from_secs(10), || async {
        debezium.dir().join("rest").exists()
    })
    .await;
    if !files {
        return Err(format!(
            "{}: scripts/debezium.sh wrote no configuration:\n{}",
            variant.name,
            debezium.log()
        ));
    }
    let json = outboxd_connector_json(
        &debezium.connector_config(),
        &obx_slot,
        &dbz_prefix,
        &obx_prefix,
    );
    let worker = debezium.worker_properties().display().to_string();
    let outboxd = Outboxd::start_with(
        &json,
        &["--worker-config", &worker],
        &[("RUST_LOG", "info")],
    );
    let dbz_start = debezium
        .wait_running(Duration::from_secs(120))
        .await
        .map_err(|e| format!("{}: Debezium did not start: {e}", variant.name))?;
    if !outboxd
        .wait_for_log("streaming", Duration::from_secs(60))
        .await
    {
        return Err(format!(
            "{}: outboxd did not start streaming; config:\n{json}\nlog:\n{}",
            variant.name,
            outboxd.log()
        ));
    }
    Ok(Pair {
        variant,
        debezium,
        outboxd: Some(outboxd),
        dbz_prefix,
        obx_prefix,
        dbz_start,
    })
}

/// Reads `want` records of `topics`, in a blocking task; returns them and how long it took.
async fn read(
    bootstrap: &str,
    topics: Vec<String>,
    want: usize,
    timeout: Duration,
) -> (Vec<Record>, Duration) {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let records = consume_topics(&bootstrap, &refs, want, timeout);
        (records, started.elapsed())
    })
    .await
    .expect("consumer task")
}

fn show(r: &Record, prefix: &str) -> String {
    let s = |b: &Option<Vec<u8>>| match b {
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        None => "null".into(),
    };
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|(k, v)| {
            let v = v.as_ref().map_or("null".to_string(), |v| {
                format!("{:?}", String::from_utf8_lossy(v))
            });
            format!("{k}={v}")
        })
        .collect();
    format!(
        "{} p{} @{} key={} value={} headers=[{}]",
        r.topic.strip_prefix(prefix).unwrap_or(&r.topic),
        r.partition,
        r.offset,
        s(&r.key),
        s(&r.value),
        headers.join(", ")
    )
}

/// Where two byte strings first differ: `at byte N: Debezium <hex>…, outboxd <hex>…`.
fn first_difference(what: &str, d: &Option<Vec<u8>>, o: &Option<Vec<u8>>) -> Option<String> {
    if d == o {
        return None;
    }
    let (Some(d), Some(o)) = (d, o) else {
        return Some(format!("{what}: Debezium {d:?}, outboxd {o:?}"));
    };
    let at = d.iter().zip(o).take_while(|(a, b)| a == b).count();
    let hex = |b: &[u8]| {
        let end = (at + 16).min(b.len());
        let bytes: Vec<String> = b[at..end].iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}{}",
            bytes.join(" "),
            if end < b.len() { " …" } else { "" }
        )
    };
    Some(format!(
        "{what}: {} and {} bytes, first difference at byte {at}: Debezium {}, outboxd {}",
        d.len(),
        o.len(),
        hex(d),
        hex(o)
    ))
}

/// What is compared of a record: topic without the prefix, partition, key, value, and the
/// headers but Debezium's `__debezium.context.*` ones (see the module documentation).
type Compared = (
    String,
    i32,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn compared(r: &Record, prefix: &str, masked: bool) -> Compared {
    let mask = |b: &Option<Vec<u8>>| match b {
        Some(b) if masked => Some(mask_wal_position(b)),
        other => other.clone(),
    };
    (
        r.topic.strip_prefix(prefix).unwrap_or(&r.topic).to_string(),
        r.partition,
        r.key.clone(),
        mask(&r.value),
        r.headers
            .iter()
            .filter(|(k, _)| !k.starts_with("__debezium.context."))
            .map(|(k, v)| (k.clone(), if k == "source" { mask(v) } else { v.clone() }))
            .collect(),
    )
}

/// Per (topic without prefix, partition): the `id` headers in offset order.
fn order(records: &[Record], prefix: &str) -> BTreeMap<(String, i32), Vec<String>> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| (r.topic.clone(), r.partition, r.offset));
    let mut out: BTreeMap<(String, i32), Vec<String>> = BTreeMap::new();
    for r in sorted {
        let topic = r.topic.strip_prefix(prefix).unwrap_or(&r.topic).to_string();
        out.entry((topic, r.partition))
            .or_default()
            .push(r.header_str("id").unwrap_or_default());
    }
    out
}

/// The differences between the two sides' records (empty: identical).
fn differences(pair: &Pair, dbz: &[Record], obx: &[Record], expected: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for (side, records) in [("Debezium", dbz), ("outboxd", obx)] {
        if records.len() != expected {
            problems.push(format!(
                "{side} wrote {} records, expected {expected}",
                records.len()
            ));
        }
    }
    let masked = pair.variant.masked;
    let by_id = |records: &[Record]| -> BTreeMap<String, Record> {
        records
            .iter()
            .map(|r| (r.header_str("id").unwrap_or_default(), r.clone()))
            .collect()
    };
    let (d, o) = (by_id(dbz), by_id(obx));
    for (id, dr) in &d {
        match o.get(id) {
            None => problems.push(format!(
                "only Debezium wrote id {id}: {}",
                show(dr, &pair.dbz_prefix)
            )),
            Some(or)
                if compared(dr, &pair.dbz_prefix, masked)
                    != compared(or, &pair.obx_prefix, masked) =>
            {
                let (dc, oc) = (
                    compared(dr, &pair.dbz_prefix, masked),
                    compared(or, &pair.obx_prefix, masked),
                );
                let mut what = Vec::new();
                if (&dc.0, dc.1) != (&oc.0, oc.1) {
                    what.push(format!(
                        "topic/partition: Debezium {} p{}, outboxd {} p{}",
                        dc.0, dc.1, oc.0, oc.1
                    ));
                }
                what.extend(first_difference("key", &dc.2, &oc.2));
                what.extend(first_difference("value", &dc.3, &oc.3));
                if dc.4 != oc.4 {
                    what.push("headers".into());
                }
                problems.push(format!(
                    "id {id} differs ({}):\n  Debezium: {}\n  outboxd:  {}",
                    what.join("; "),
                    show(dr, &pair.dbz_prefix),
                    show(or, &pair.obx_prefix)
                ))
            }
            Some(_) => {}
        }
    }
    for (id, or) in &o {
        if !d.contains_key(id) {
            problems.push(format!(
                "only outboxd wrote id {id}: {}",
                show(or, &pair.obx_prefix)
            ));
        }
    }
    // The order within each partition, of the records both sides put in that partition (a
    // record in another partition is reported above already).
    let (od, oo) = (order(dbz, &pair.dbz_prefix), order(obx, &pair.obx_prefix));
    for (tp, d_ids) in &od {
        let o_ids = oo.get(tp).cloned().unwrap_or_default();
        let common = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|id| b.contains(id)).cloned().collect()
        };
        let (d_common, o_common) = (common(d_ids, &o_ids), common(&o_ids, d_ids));
        if d_common != o_common {
            problems.push(format!(
                "{} p{}: the ids in another order:\n  Debezium: {d_common:?}\n  outboxd:  {o_common:?}",
                tp.0, tp.1
            ));
        }
    }
    problems
}

/// The WARN and ERROR lines of a Connect log (with the stack trace lines after them).
fn warnings(log: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in log.lines() {
        if line.starts_with('[') {
            inside = line.contains("] WARN ") || line.contains("] ERROR ");
        }
        if inside {
            out.push(line);
        }
    }
    out.join("\n")
}

/// Straight to the process's stderr (past libtest's capture), so CI's log shows it.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_and_outboxd_write_the_same_records() {
    if let Err(why) = debezium::available() {
        return support::skip(TEST, &why);
    }
    let started = Instant::now();
    let broker = Broker::shared();
    let pg = PgCluster::start();
    let client = pg.client().await;
    support::create_outbox_table(&client).await;
    client
        .batch_execute("CREATE TABLE public.ce_outbox (LIKE public.outbox INCLUDING ALL)")
        .await
        .expect("create public.ce_outbox");
    let tag = unique("dbzlive");

    // Both variants' four processes start at once.
    let starts = VARIANTS.iter().map(|v| start_pair(v, &pg, broker, &tag));
    let mut pairs = Vec::new();
    for result in futures::future::join_all(starts).await {
        pairs.push(result.unwrap_or_else(|e| panic!("{e}")));
    }

    let mut txs = transactions();
    txs.extend(
        VARIANTS
            .iter()
            .filter(|v| v.table != "public.outbox")
            .flat_map(|v| transactions_on(v.table, v.excluded)),
    );
    for sql in &txs {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let committed = Instant::now();

    // Everything published, on every side; then one more record asked for, to catch extras.
    let mut reads = Vec::new();
    for p in &pairs {
        for prefix in [&p.dbz_prefix, &p.obx_prefix] {
            reads.push(read(
                broker.bootstrap(),
                topics(prefix),
                p.variant.expected(),
                Duration::from_secs(60),
            ));
        }
    }
    let published: Vec<Duration> = futures::future::join_all(reads)
        .await
        .into_iter()
        .map(|(_, took)| took)
        .collect();
    let after_commit = committed.elapsed();
    let mut extras = Vec::new();
    for p in &pairs {
        for prefix in [&p.dbz_prefix, &p.obx_prefix] {
            extras.push(read(
                broker.bootstrap(),
                topics(prefix),
                p.variant.expected() + 1,
                Duration::from_secs(3),
            ));
        }
    }
    let records: Vec<Vec<Record>> = futures::future::join_all(extras)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    let mut failures = Vec::new();
    for (i, p) in pairs.iter_mut().enumerate() {
        let expected = p.variant.expected();
        let (dbz, obx) = (&records[2 * i], &records[2 * i + 1]);
        say(&format!(
            "debezium_live [{}]: Debezium's task ran {:.1?} after the launcher started; \
             all {expected} records read back {:.1?} after the last commit from Debezium, \
             {:.1?} from outboxd",
            p.variant.name,
            p.dbz_start,
            published[2 * i],
            published[2 * i + 1]
        ));
        let problems = differences(p, dbz, obx, expected);
        if problems.is_empty() {
            say(&format!(
                "debezium_live [{}]: {} records identical",
                p.variant.name,
                dbz.len()
            ));
        } else {
            let outboxd_log = p.outboxd.take().map(|o| o.log()).unwrap_or_default();
            failures.push(format!(
                "=== {}: outboxd differs from Debezium\n{}\n--- Debezium's warnings and errors ({}):\n{}\n--- outboxd log:\n{}",
                p.variant.name,
                problems.join("\n"),
                p.debezium.dir().join("connect.log").display(),
                warnings(&p.debezium.log()),
                outboxd_log
            ));
        }
    }
    let stopping = Instant::now();
    drop(pairs);
    say(&format!(
        "debezium_live: {} variants in {:.1?} ({:.1?} from the last commit to everything read, \
         Debezium stopped in {:.1?})",
        VARIANTS.len(),
        started.elapsed(),
        after_commit,
        stopping.elapsed()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
