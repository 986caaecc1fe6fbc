//! librdkafka producer properties: the user's `[kafka]` section on top of outboxd's defaults, with the
//! settings the delivery guarantee depends on enforced.
//!
//! - `enable.idempotence=true` and `acks=all`: no loss and no reordering on retries; refused if the
//!   user weakens them.
//! - `partitioner=murmur2_random`: a key lands on the partition Java clients (Debezium) choose.
//! - `linger.ms=5` unless set (librdkafka's and the Java client's default, written out because the
//!   latency at low rates is this number): measured on Apache Kafka against 10.
//! - `queue.buffering.max.messages` must hold the pipeline's in-flight cap, so that enqueueing never
//!   hits `QueueFull` (the pipeline stops reading WAL first).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// A `[kafka]` setting outboxd cannot run with, naming the key and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("kafka.\"{key}\": {message}")]
pub struct SinkConfigError {
    pub key: String,
    pub message: String,
}

/// Defaults applied unless the user sets the key.
const DEFAULTS: &[(&str, &str)] = &[
    ("partitioner", "murmur2_random"),
    ("client.id", "outboxd"),
    // Measured on 2 cores with Apache Kafka 4.4 (docs/benchmarks.md, "linger.ms"): against 10,
    // p99 commit -> consumer 8.9-9.0 ms instead of 13.3-14.7 at 1k ev/s and 8.1-8.8 instead of
    // 13.1-13.6 at 5k, for 20-25 % more CPU (more, smaller produce requests: librdkafka sends one
    // per partition). On tansu (run M of bench/history.md) 10 had been the better choice.
    ("linger.ms", "5"),
];

/// Builds the producer configuration. `max_in_flight_events` is the pipeline's cap.
pub fn producer_config(
    user: &BTreeMap<String, String>,
    max_in_flight_events: u64,
) -> Result<ClientConfig, SinkConfigError> {
    let err = |key: &str, message: &str| SinkConfigError {
        key: key.into(),
        message: message.into(),
    };
    match user.get("bootstrap.servers").map(|s| s.trim()) {
        None | Some("") => {
            return Err(err(
                "bootstrap.servers",
                "is required: set it in [kafka], or pass --kafka-bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS",
            ))
        }
        Some(_) => {}
    }
    if let Some(v) = user.get("enable.idempotence") {
        if v != "true" {
            return Err(err("enable.idempotence", "must stay true: outboxd relies on the idempotent producer for per-key order and no duplicates on retries; remove the key"));
        }
    }
    if let Some(v) = user
        .get("acks")
        .or_else(|| user.get("request.required.acks"))
    {
        if v != "all" && v != "-1" {
            return Err(err("acks", "must be all (or -1): an event is confirmed to Postgres only once every in-sync replica has it; remove the key"));
        }
    }
    for key in [
        "transactional.id",
        "delivery.report.only.error",
        "dr_cb",
        "dr_msg_cb",
    ] {
        if user.contains_key(key) {
            return Err(err(
                key,
                "is managed by outboxd and cannot be set; remove the key",
            ));
        }
    }
    if let Some(v) = user.get("queue.buffering.max.messages") {
        match v.parse::<u64>() {
            Ok(n) if n >= max_in_flight_events => {}
            _ => {
                return Err(err(
                    "queue.buffering.max.messages",
                    &format!("must be a number at least pipeline.max_in_flight_events ({max_in_flight_events}), or be removed"),
                ))
            }
        }
    }

    let mut config = ClientConfig::new();
    for (k, v) in DEFAULTS {
        config.set(*k, *v);
    }
    if !user.contains_key("queue.buffering.max.messages") {
        config.set(
            "queue.buffering.max.messages",
            max_in_flight_events.max(100_000).to_string(),
        );
    }
    for (k, v) in user {
        config.set(k, v);
    }
    config.set("enable.idempotence", "true");
    config.set("acks", "all");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn enforces_the_delivery_guarantee_and_java_partitioning() {
        let c = producer_config(&user(&[("bootstrap.servers", "k:9092")]), 10_000).unwrap();
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("partitioner"), Some("murmur2_random"));
        assert_eq!(c.get("bootstrap.servers"), Some("k:9092"));
        assert_eq!(c.get("queue.buffering.max.messages"), Some("100000"));
        assert_eq!(c.get("linger.ms"), Some("5"), "outboxd's default");
    }

    #[test]
    fn passes_other_properties_through() {
        let c = producer_config(
            &user(&[
                ("bootstrap.servers", "k:9092"),
                ("linger.ms", "20"),
                ("compression.type", "zstd"),
                ("partitioner", "consistent_random"),
            ]),
            10,
        )
        .unwrap();
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("compression.type"), Some("zstd"));
        assert_eq!(c.get("partitioner"), Some("consistent_random"));
    }

    #[test]
    fn refuses_settings_that_break_the_guarantee() {
        let e = |pairs: &[(&str, &str)]| {
            let mut all = vec![("bootstrap.servers", "k:9092")];
            all.extend_from_slice(pairs);
            producer_config(&user(&all), 10_000).unwrap_err()
        };
        assert_eq!(
            e(&[("enable.idempotence", "false")]).key,
            "enable.idempotence"
        );
        assert_eq!(e(&[("acks", "1")]).key, "acks");
        assert_eq!(e(&[("transactional.id", "x")]).key, "transactional.id");
        assert_eq!(
            e(&[("queue.buffering.max.messages", "10")]).key,
            "queue.buffering.max.messages"
        );
        let missing = producer_config(&user(&[]), 1).unwrap_err();
        assert!(missing.to_string().contains("--kafka-bootstrap-servers"));
    }
}
