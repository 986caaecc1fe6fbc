//! Consumers that users actually run read outboxd's records: Kafka's own Java `KafkaConsumer`
//! fetches them and Kafka Connect's own converters (`connect-json`'s `JsonConverter`,
//! `connect-api`'s `StringConverter` and `SimpleHeaderConverter`) turn them back into Connect
//! data (`dev.outboxd.ConnectCheck` in tests/kafka/src, through [`support::java`]).
//!
//! For each converter mode outboxd emulates for JSON and text (JsonConverter with and without
//! schemas, with and without `table.expand.json.payload`, StringConverter) the test asserts the
//! schema and the value Connect gets for the key, the value and the `id` header, and that
//! Connect's `fromConnectData` of what it read gives back outboxd's bytes exactly (so the bytes
//! are Connect's own canonical form, not merely readable).
//!
//! SKIPs where Java or the Kafka jars are missing (run scripts/install-deps.sh).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::java::{connect_check, Converter};
use support::{unique, Broker, Outboxd, PgCluster};

const CONNECT_JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
const CONNECT_STRING: &str = "org.apache.kafka.connect.storage.StringConverter";

/// The rows of every case: (aggregateid, payload as inserted).
const ROWS: [(&str, &str); 2] = [
    (
        "o-1",
        r#"{"id": 1, "items": [{"sku": "A", "qty": 2}], "note": "café \"q\""}"#,
    ),
    (
        "c-9",
        r#"{"id": 2, "items": [{"sku": "B", "qty": 1}], "note": "second"}"#,
    ),
];

struct Case {
    name: &'static str,
    /// `[router]` and `[converters]` entries beyond the default routing.
    router: &'static str,
    converters: &'static str,
    key: Converter,
    value: Converter,
}

/// Runs outboxd with the case's configuration, inserts [`ROWS`], and returns what ConnectCheck
/// read (in offset order: the topic has one partition) with the ids and the payloads as
/// Postgres's jsonb prints them.
async fn run_case(
    pg: &PgCluster,
    client: &tokio_postgres::Client,
    case: &Case,
) -> (Vec<Value>, Vec<(String, String)>) {
    let aggregatetype = unique(case.name);
    let topic = format!("outbox.event.{aggregatetype}");
    let broker = Broker::shared();
    broker.create_topic(&topic, 1).await;
    let slot = unique("slot");
    let config = format!(
        r#"[source]
url = "{url}"
slot = "{slot}"
publication = "{slot}"
tables = ["public.outbox"]

[router]
"route.topic.replacement" = "outbox.event.${{routedByValue}}"
{router}

[converters]
{converters}

[kafka]
"bootstrap.servers" = "{bootstrap}"
"#,
        url = pg.url("postgres"),
        router = case.router,
        converters = case.converters,
        bootstrap = broker.bootstrap(),
    );
    let mut outboxd = Outboxd::streaming(&config).await;
    let mut rows = Vec::new();
    for (aggregateid, payload) in ROWS {
        let id =
            support::insert_outbox(client, &aggregatetype, aggregateid, "Created", payload).await;
        let printed: String = client
            .query_one(
                "SELECT payload::text FROM public.outbox WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        rows.push((id, printed));
    }
    let (b, t, key, value) = (broker.bootstrap().to_string(), topic, case.key, case.value);
    let read = tokio::task::spawn_blocking(move || connect_check(&b, &t, ROWS.len(), key, value))
        .await
        .unwrap();
    assert!(
        outboxd
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "{}",
        outboxd.log()
    );
    assert_eq!(read.len(), ROWS.len(), "{read:?}");
    (read, rows)
}

/// The `id` header reads back as Connect's string, and every side round-trips.
fn assert_common(record: &Value, id: &str, case: &str) {
    let headers = record["headers"].as_array().expect("headers");
    let header = headers
        .iter()
        .find(|h| h["key"] == "id")
        .unwrap_or_else(|| panic!("{case}: no id header in {record}"));
    assert_eq!(header["value"], json!(id), "{case}: {record}");
    assert_eq!(header["schema"]["type"], "string", "{case}: {record}");
    for side in ["key", "value"] {
        assert_eq!(
            record[side]["roundtrip"],
            json!(true),
            "{case}: Connect's converter writes other bytes for the {side} it read: {record}"
        );
    }
}

/// JsonConverter with `schemas.enable=true` on both sides, the Connect worker's default: the key
/// is a required string, the value Debezium's `io.debezium.data.Json` string of the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_converter_with_schemas_reads_keys_values_and_headers() {
    let name = "json_converter_with_schemas_reads_keys_values_and_headers";
    if let Err(why) = support::java::available() {
        return support::skip(name, &why);
    }
    let (pg, client) = support::database().await;
    let case = Case {
        name: "cjson",
        router: "",
        converters: concat!(
            "\"key.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
            "\"value.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
            "\"key.converter.schemas.enable\" = \"true\"\n",
            "\"value.converter.schemas.enable\" = \"true\"\n",
        ),
        key: Converter::Json,
        value: Converter::Json,
    };
    assert!(case.converters.contains(CONNECT_JSON));
    let (read, rows) = run_case(&pg, &client, &case).await;
    for (record, ((aggregateid, _), (id, payload))) in read.iter().zip(ROWS.iter().zip(&rows)) {
        assert_eq!(
            record["key"]["schema"],
            json!({"type": "string", "optional": false}),
            "{record}"
        );
        assert_eq!(record["key"]["value"], json!(aggregateid), "{record}");
        assert_eq!(
            record["value"]["schema"],
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Json", "version": 1}),
            "{record}"
        );
        assert_eq!(record["value"]["value"], json!(payload), "{record}");
        assert_common(record, id, case.name);
    }
}

/// JsonConverter with schemas and `table.expand.json.payload=true`: the value is a Connect
/// struct whose schema is inferred from the JSON (fields in jsonb's order, nested arrays of
/// structs named after their path), exactly as Debezium's EventRouter builds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_converter_reads_expanded_payloads_as_structs() {
    let name = "json_converter_reads_expanded_payloads_as_structs";
    if let Err(why) = support::java::available() {
        return support::skip(name, &why);
    }
    let (pg, client) = support::database().await;
    let case = Case {
        name: "cexpand",
        router: "\"table.expand.json.payload\" = \"true\"",
        converters: concat!(
            "\"key.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
            "\"value.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
        ),
        key: Converter::Json,
        value: Converter::Json,
    };
    let (read, rows) = run_case(&pg, &client, &case).await;
    let schema = json!({
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": true, "field": "id"},
            {"type": "string", "optional": true, "field": "note"},
            {"type": "array", "items": {
                "type": "struct",
                "fields": [
                    {"type": "int32", "optional": true, "field": "qty"},
                    {"type": "string", "optional": true, "field": "sku"}
                ],
                "optional": true,
                "name": "payload.items"
            }, "optional": true, "field": "items"}
        ],
        "optional": true,
        "name": "payload"
    });
    let values = [
        json!({"id": 1, "note": "café \"q\"", "items": [{"qty": 2, "sku": "A"}]}),
        json!({"id": 2, "note": "second", "items": [{"qty": 1, "sku": "B"}]}),
    ];
    for (record, ((aggregateid, _), ((id, _), value))) in
        read.iter().zip(ROWS.iter().zip(rows.iter().zip(&values)))
    {
        assert_eq!(record["key"]["value"], json!(aggregateid), "{record}");
        assert_eq!(record["value"]["schema"], schema, "{record}");
        assert_eq!(&record["value"]["value"], value, "{record}");
        assert_common(record, id, case.name);
    }
}

/// JsonConverter with `schemas.enable=false`: schemaless data, the key a JSON string and the
/// value the payload's text as a JSON string (Debezium's Json type is a string).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_converter_without_schemas_reads_plain_json() {
    let name = "json_converter_without_schemas_reads_plain_json";
    if let Err(why) = support::java::available() {
        return support::skip(name, &why);
    }
    let (pg, client) = support::database().await;
    let case = Case {
        name: "cnoschema",
        router: "",
        converters: concat!(
            "\"key.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
            "\"value.converter\" = \"org.apache.kafka.connect.json.JsonConverter\"\n",
            "\"key.converter.schemas.enable\" = \"false\"\n",
            "\"value.converter.schemas.enable\" = \"false\"\n",
        ),
        key: Converter::JsonNoSchema,
        value: Converter::JsonNoSchema,
    };
    let (read, rows) = run_case(&pg, &client, &case).await;
    for (record, ((aggregateid, _), (id, payload))) in read.iter().zip(ROWS.iter().zip(&rows)) {
        assert_eq!(record["key"]["schema"], Value::Null, "{record}");
        assert_eq!(record["key"]["value"], json!(aggregateid), "{record}");
        assert_eq!(record["value"]["schema"], Value::Null, "{record}");
        assert_eq!(record["value"]["value"], json!(payload), "{record}");
        assert_common(record, id, case.name);
    }
}

/// StringConverter on both sides: Connect reads optional strings, the payload's text as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_converter_reads_text() {
    let name = "string_converter_reads_text";
    if let Err(why) = support::java::available() {
        return support::skip(name, &why);
    }
    let (pg, client) = support::database().await;
    let case = Case {
        name: "cstring",
        router: "",
        converters: concat!(
            "\"key.converter\" = \"org.apache.kafka.connect.storage.StringConverter\"\n",
            "\"value.converter\" = \"org.apache.kafka.connect.storage.StringConverter\"\n",
        ),
        key: Converter::String,
        value: Converter::String,
    };
    assert!(case.converters.contains(CONNECT_STRING));
    let (read, rows) = run_case(&pg, &client, &case).await;
    let optional_string = json!({"type": "string", "optional": true});
    for (record, ((aggregateid, _), (id, payload))) in read.iter().zip(ROWS.iter().zip(&rows)) {
        assert_eq!(record["key"]["schema"], optional_string, "{record}");
        assert_eq!(record["key"]["value"], json!(aggregateid), "{record}");
        assert_eq!(record["value"]["schema"], optional_string, "{record}");
        assert_eq!(record["value"]["value"], json!(payload), "{record}");
        assert_common(record, id, case.name);
    }
}
