//! Poison events and the dead-letter queue, with Kafka Connect's `errors.*` settings.
//!
//! A poison event is an outbox row that can never be published as it is: the router cannot route
//! it (NULL id or routing value, a topic name Kafka refuses, a value the converter cannot write), or
//! Kafka rejects its record permanently (larger than `message.max.bytes`, topic authorization, ...).
//! With `errors.tolerance = none` (the default) the relay stops on it, without confirming its
//! transaction. With `errors.tolerance = all` it is written to the dead-letter topic instead, with
//! the original key, value and headers and headers describing the error and the source
//! ([`dead_letter_record`]).
//!
//! The LSN invariant is kept by the pipeline: the poison event keeps its checkpoint sequence
//! number, which is acknowledged only when the dead-letter record is. A crash in between sends it
//! again; nothing is confirmed past an event that is in neither its topic nor the dead-letter topic.
//!
//! This module is pure: the policy, the failure descriptions and the dead-letter records.

use std::collections::BTreeMap;

use crate::lsn::Lsn;
use crate::router::{check_topic_name, OutboxRecord};
use bytes::Bytes;

/// Kafka Connect's header prefix for the error context of a dead-letter record.
pub const CONNECT_ERRORS_PREFIX: &str = "__connect.errors.";
/// Header naming the transaction's commit LSN (`X/Y`).
pub const HEADER_SOURCE_LSN: &str = "outboxd.source.lsn";
/// Header naming the outbox table (`schema.table`).
pub const HEADER_SOURCE_TABLE: &str = "outboxd.source.table";
/// Header present when the value had to be left out; holds the original value's size in bytes.
pub const HEADER_VALUE_OMITTED: &str = "outboxd.errors.value.omitted.bytes";

/// `errors.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// Stop on the first poison event (Kafka Connect's default).
    None,
    /// Write poison events to the dead-letter topic and carry on.
    All,
}

/// A bad `[errors]` setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("errors.\"{key}\": {message}")]
pub struct ErrorsConfigError {
    pub key: String,
    pub message: String,
}

/// The validated `[errors]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub tolerance: Tolerance,
    /// `errors.deadletterqueue.topic.name`; required when the tolerance is `all`.
    pub dead_letter_topic: Option<String>,
    /// `errors.deadletterqueue.context.headers.enable` (default true).
    pub context_headers: bool,
    /// `errors.log.enable` (default false): log each poison event at ERROR instead of WARN, as
    /// Kafka Connect's log reporter does. Each one is logged either way.
    pub log_enable: bool,
    /// `errors.log.include.messages` (default false): the log line includes the key and value.
    pub log_include_messages: bool,
    /// `__connect.errors.connector.name`: the slot's name, which identifies the relay.
    pub connector_name: String,
}

const KNOWN_KEYS: &[&str] = &[
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.context.headers.enable",
    "errors.log.enable",
    "errors.log.include.messages",
];

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy::from_map(&BTreeMap::new(), "outboxd").expect("the defaults are valid")
    }
}

impl ErrorPolicy {
    /// Validates the `[errors]` section (Kafka Connect's names, case-insensitive values).
    /// `connector_name` becomes the `__connect.errors.connector.name` header.
    pub fn from_map(
        map: &BTreeMap<String, String>,
        connector_name: &str,
    ) -> Result<Self, ErrorsConfigError> {
        let err = |key: &str, message: String| ErrorsConfigError {
            key: key.into(),
            message,
        };
        for key in map.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                let hint = match key.as_str() {
                    "errors.retry.timeout" | "errors.retry.delay.max.ms" => {
                        " (outboxd retries transient errors by itself, without limit)"
                    }
                    "errors.deadletterqueue.topic.replication.factor" => {
                        " (outboxd does not create the dead-letter topic: create it, or let the broker auto-create it)"
                    }
                    _ => "",
                };
                return Err(err(
                    key,
                    format!(
                        "unknown setting{hint}; known settings: {}",
                        KNOWN_KEYS.join(", ")
                    ),
                ));
            }
        }
        let boolean = |key: &str, default: bool| -> Result<bool, ErrorsConfigError> {
            match map.get(key).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(err(key, format!("{v:?}: expected true or false"))),
            }
        };
        let tolerance = match map
            .get("errors.tolerance")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => Tolerance::None,
            Some("all") => Tolerance::All,
            Some(other) => {
                return Err(err(
                    "errors.tolerance",
                    format!("{other:?}: expected none or all"),
                ))
            }
        };
        let dead_letter_topic = match map.get("errors.deadletterqueue.topic.name") {
            None => None,
            Some(topic) if topic.trim().is_empty() => None,
            Some(topic) => {
                let topic = topic.trim();
                check_topic_name(topic).map_err(|problem| {
                    err(
                        "errors.deadletterqueue.topic.name",
                        format!("{topic:?} is not a valid Kafka topic name: {problem}"),
                    )
                })?;
                Some(topic.to_string())
            }
        };
        if tolerance == Tolerance::All && dead_letter_topic.is_none() {
            return Err(err(
                "errors.deadletterqueue.topic.name",
                "is required with errors.tolerance = all: poison events go to that topic (outboxd never drops an event)".into(),
            ));
        }
        Ok(ErrorPolicy {
            tolerance,
            dead_letter_topic,
            context_headers: boolean("errors.deadletterqueue.context.headers.enable", true)?,
            log_enable: boolean("errors.log.enable", false)?,
            log_include_messages: boolean("errors.log.include.messages", false)?,
            connector_name: connector_name.to_string(),
        })
    }

    /// The dead-letter topic when poison events are tolerated; `None`: they stop the relay.
    pub fn dead_letter_topic(&self) -> Option<&str> {
        match self.tolerance {
            Tolerance::All => self.dead_letter_topic.as_deref(),
            Tolerance::None => None,
        }
    }
}

/// Carried with a dead-letter record until Kafka acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterTag {
    /// [`Failure::reason`]: the metric label.
    pub reason: &'static str,
    /// The record was sent without its value (see [`without_value`]).
    pub value_omitted: bool,
}

/// Where in outboxd a poison event failed (Kafka Connect's `Stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The router (Connect: the EventRouter transformation).
    Transformation,
    /// Producing to Kafka.
    KafkaProduce,
}

impl Stage {
    /// `__connect.errors.stage`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Transformation => "TRANSFORMATION",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
        }
    }

    /// `__connect.errors.class.name`: what ran the stage.
    pub fn class_name(self) -> &'static str {
        match self {
            Stage::Transformation => "outboxd.router.EventRouter",
            Stage::KafkaProduce => "outboxd.sink.KafkaProducer",
        }
    }
}

/// Why an event is poison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    /// A short stable label for the metric: `unroutable` or the Kafka error in snake case
    /// (`message_size_too_large`, `topic_authorization_failed`, ...).
    pub reason: &'static str,
    /// `__connect.errors.exception.class.name`, e.g. `outboxd.kafka.MessageSizeTooLargeException`.
    pub exception_class: String,
    /// `__connect.errors.exception.message`.
    pub message: String,
    /// The topic the record was meant for, when one could be built (`__connect.errors.topic`).
    pub topic: Option<String>,
}

impl Failure {
    /// The router could not route the row.
    pub fn unroutable(message: String, topic: Option<String>) -> Failure {
        Failure {
            stage: Stage::Transformation,
            reason: "unroutable",
            exception_class: "outboxd.router.UnroutableRowException".into(),
            message,
            topic,
        }
    }

    /// Kafka rejected the record for `topic` (when enqueueing it or in its delivery report).
    /// `code` is the error code's name (`MessageSizeTooLarge`), `reason` its snake-case label.
    pub fn rejected(
        topic: &str,
        code: Option<&str>,
        reason: &'static str,
        message: String,
    ) -> Failure {
        Failure {
            stage: Stage::KafkaProduce,
            reason,
            exception_class: format!("outboxd.kafka.{}Exception", code.unwrap_or("Kafka")),
            message,
            topic: Some(topic.to_string()),
        }
    }
}

/// Where a poison event comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source<'a> {
    /// `schema.table`.
    pub table: &'a str,
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
}

/// The dead-letter record for `original` (the record as it would have been published, or for an
/// unroutable row the raw key, payload and `id` header): same key, value, headers and timestamp,
/// to `topic`, with the error context headers when `policy.context_headers`. The partition is
/// left to the partitioner.
pub fn dead_letter_record(
    policy: &ErrorPolicy,
    topic: &str,
    original: &OutboxRecord,
    failure: &Failure,
    source: &Source<'_>,
) -> OutboxRecord {
    let mut headers = original.headers.clone();
    if policy.context_headers {
        let mut add = |name: &str, value: &str| {
            headers.push((
                format!("{CONNECT_ERRORS_PREFIX}{name}"),
                Some(Bytes::copy_from_slice(value.as_bytes())),
            ))
        };
        if let Some(t) = &failure.topic {
            add("topic", t);
        }
        add("connector.name", &policy.connector_name);
        add("task.id", "0");
        add("stage", failure.stage.name());
        add("class.name", failure.stage.class_name());
        add("exception.class.name", &failure.exception_class);
        add("exception.message", &failure.message);
        headers.push((
            HEADER_SOURCE_LSN.into(),
            Some(Bytes::from(source.commit_lsn.to_string())),
        ));
        headers.push((
            HEADER_SOURCE_TABLE.into(),
            Some(Bytes::copy_from_slice(source.table.as_bytes())),
        ));
    }
    OutboxRecord {
        topic: topic.to_string(),
        partition: None,
        key: original.key.clone(),
        value: original.value.clone(),
        headers,
        timestamp_ms: original.timestamp_ms,
    }
}

/// The dead-letter record without its value, for when the value is what makes it too large: a
/// header says so and gives the original size. `None` when there is no value to leave out.
pub fn without_value(record: &OutboxRecord) -> Option<OutboxRecord> {
    let size = record.value.as_ref()?.len();
    let mut out = record.clone();
    out.value = None;
    out.headers.push((
        HEADER_VALUE_OMITTED.into(),
        Some(Bytes::from(size.to_string())),
    ));
    Some(out)
}

/// The event id of a record: its `id` header as text (`?` when absent or null).
pub fn event_id(record: &OutboxRecord) -> String {
    record
        .headers
        .iter()
        .find(|(k, _)| k == "id")
        .and_then(|(_, v)| v.as_ref())
        .map_or_else(|| "?".into(), |v| String::from_utf8_lossy(v).into_owned())
}

/// Up to `max` bytes of `bytes` as lossy text, for log lines.
pub fn preview(bytes: Option<&Bytes>, max: usize) -> String {
    match bytes {
        None => "null".into(),
        Some(b) if b.len() > max => format!(
            "{}… ({} bytes)",
            String::from_utf8_lossy(&b[..max]),
            b.len()
        ),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn policy(pairs: &[(&str, &str)]) -> Result<ErrorPolicy, ErrorsConfigError> {
        ErrorPolicy::from_map(&map(pairs), "outboxd")
    }

    fn header<'a>(r: &'a OutboxRecord, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    fn original() -> OutboxRecord {
        OutboxRecord {
            topic: "outbox.event.Order".into(),
            partition: Some(3),
            key: Some(Bytes::from_static(b"o-1")),
            value: Some(Bytes::from_static(b"{\"a\":1}")),
            headers: vec![("id".into(), Some(Bytes::from_static(b"e-1")))],
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn defaults_follow_kafka_connect() {
        let p = policy(&[]).unwrap();
        assert_eq!(p.tolerance, Tolerance::None);
        assert_eq!(p.dead_letter_topic(), None);
        assert!(p.context_headers);
        assert!(!p.log_enable && !p.log_include_messages);
        assert_eq!(ErrorPolicy::default(), p);
    }

    #[test]
    fn tolerance_all_needs_a_valid_dead_letter_topic() {
        let e = policy(&[("errors.tolerance", "all")]).unwrap_err();
        assert_eq!(e.key, "errors.deadletterqueue.topic.name");
        assert!(e.to_string().contains("required"), "{e}");
        let e = policy(&[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dead letters"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("not a valid Kafka topic name"),
            "{e}"
        );
        let p = policy(&[
            ("errors.tolerance", "ALL"),
            ("errors.deadletterqueue.topic.name", " outboxd.dlq "),
            ("errors.deadletterqueue.context.headers.enable", "False"),
            ("errors.log.enable", "true"),
            ("errors.log.include.messages", "true"),
        ])
        .unwrap();
        assert_eq!(p.dead_letter_topic(), Some("outboxd.dlq"));
        assert!(!p.context_headers && p.log_enable && p.log_include_messages);
        // A topic with tolerance none is accepted (as in Connect) and unused.
        let p = policy(&[("errors.deadletterqueue.topic.name", "outboxd.dlq")]).unwrap();
        assert_eq!(p.dead_letter_topic(), None);
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            policy(&[("errors.tolerance", "some")]).unwrap_err().key,
            "errors.tolerance"
        );
        let e = policy(&[("errors.retry.timeout", "0")]).unwrap_err();
        assert!(e.to_string().contains("retries transient errors"), "{e}");
        let e = policy(&[("errors.log.enable", "yes")]).unwrap_err();
        assert_eq!(e.key, "errors.log.enable");
    }

    #[test]
    fn dead_letter_record_keeps_the_original_and_adds_context_headers() {
        let p = policy(&[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dlq"),
        ])
        .unwrap();
        let failure = Failure::rejected(
            "outbox.event.Order",
            Some("TopicAuthorizationFailed"),
            "topic_authorization_failed",
            "Broker: Topic authorization failed".into(),
        );
        let source = Source {
            table: "public.outbox",
            commit_lsn: Lsn(0x1_0000_00AB),
        };
        let r = dead_letter_record(&p, "dlq", &original(), &failure, &source);
        assert_eq!(r.topic, "dlq");
        assert_eq!(r.partition, None, "the partitioner picks the DLQ partition");
        assert_eq!(r.key, original().key);
        assert_eq!(r.value, original().value);
        assert_eq!(r.timestamp_ms, original().timestamp_ms);
        assert_eq!(
            r.headers[0],
            original().headers[0],
            "original headers first"
        );
        assert_eq!(
            header(&r, "__connect.errors.topic"),
            Some("outbox.event.Order")
        );
        assert_eq!(header(&r, "__connect.errors.stage"), Some("KAFKA_PRODUCE"));
        assert_eq!(
            header(&r, "__connect.errors.exception.class.name"),
            Some("outboxd.kafka.TopicAuthorizationFailedException")
        );
        assert!(header(&r, "__connect.errors.exception.message")
            .unwrap()
            .contains("Topic authorization failed"));
        assert_eq!(
            header(&r, "__connect.errors.connector.name"),
            Some("outboxd")
        );
        assert_eq!(header(&r, "outboxd.source.lsn"), Some("1/AB"));
        assert_eq!(header(&r, "outboxd.source.table"), Some("public.outbox"));
        assert_eq!(event_id(&r), "e-1");

        let quiet = ErrorPolicy {
            context_headers: false,
            ..p
        };
        let r = dead_letter_record(&quiet, "dlq", &original(), &failure, &source);
        assert_eq!(r.headers, original().headers, "only the original headers");
    }

    #[test]
    fn the_value_can_be_left_out_saying_so() {
        let r = without_value(&original()).unwrap();
        assert_eq!(r.value, None);
        assert_eq!(r.key, original().key);
        assert_eq!(header(&r, HEADER_VALUE_OMITTED), Some("7"));
        let mut no_value = original();
        no_value.value = None;
        assert!(without_value(&no_value).is_none());
    }

    #[test]
    fn unroutable_rows_and_previews() {
        let f = Failure::unroutable("NULL routing value".into(), None);
        assert_eq!(f.reason, "unroutable");
        assert_eq!(f.stage.name(), "TRANSFORMATION");
        assert_eq!(preview(None, 4), "null");
        assert_eq!(preview(Some(&Bytes::from_static(b"ab")), 4), "ab");
        assert_eq!(
            preview(Some(&Bytes::from_static(b"abcdef")), 4),
            "abcd… (6 bytes)"
        );
    }
}
