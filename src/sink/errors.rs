//! Which Kafka errors a retry cannot fix: the explicit list of permanent `RDKafkaErrorCode`s
//! (the record or the permissions are wrong), as opposed to everything else, which a restart from
//! the slot may get past; and how a rejected record is described for the dead-letter queue.
//!
//! Owns the classification only; what to do about a permanent error (stop, or dead-letter the
//! event) is the pipeline's and `dead_letter`'s.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::dead_letter::Failure;

/// Kafka errors that a retry cannot fix (the record, the topic or the permissions are wrong).
///
/// A topic that does not exist (on a cluster that does not auto-create topics) reaches a
/// delivery report only after librdkafka waited `topic.metadata.propagation.max.ms` for it:
/// `UnknownTopic` (librdkafka's own code, tansu's answer) or `UnknownTopicOrPartition` (Apache
/// Kafka's). librdkafka retries the transient cases of the latter (a partition moving between
/// brokers) itself, so in a delivery report it means the topic is missing.
pub fn is_permanent_kafka_error(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            MessageSizeTooLarge
                | InvalidMessageSize
                | InvalidMessage
                | TopicAuthorizationFailed
                | ClusterAuthorizationFailed
                | MessageBatchTooLarge
                | InvalidTopic
                | InvalidRecord
                | UnknownTopic
                | UnknownTopicOrPartition
                | PolicyViolation
                | InvalidRequiredAcks
        )
    )
}

/// What the operator can do about a permanent Kafka error, for the message that stops the relay.
pub fn rejection_fix(error: &KafkaError) -> &'static str {
    use RDKafkaErrorCode::*;
    match error.rdkafka_error_code() {
        Some(UnknownTopic | UnknownTopicOrPartition) => {
            "create the topic (the brokers do not create it: auto.create.topics.enable=false), \
             then start outboxd again"
        }
        Some(MessageSizeTooLarge | InvalidMessageSize | MessageBatchTooLarge) => {
            "raise message.max.bytes (outboxd's [kafka] and the topic's max.message.bytes)"
        }
        Some(TopicAuthorizationFailed | ClusterAuthorizationFailed) => {
            "grant outboxd's principal Write on the topic (its ACLs)"
        }
        _ => "fix the cause (message.max.bytes, the topic, its ACLs)",
    }
}

/// Whether the error says the record is too large.
pub fn is_size_error(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(MessageSizeTooLarge | InvalidMessageSize | MessageBatchTooLarge)
    )
}

/// A record Kafka rejected for `topic`, described for the dead-letter queue: the metric label is
/// the error code in snake case for the permanent errors, `kafka_error` for any other.
pub fn kafka_failure(topic: &str, error: &KafkaError) -> Failure {
    use RDKafkaErrorCode::*;
    let code = error.rdkafka_error_code();
    let reason = match code {
        Some(MessageSizeTooLarge) => "message_size_too_large",
        Some(InvalidMessageSize) => "invalid_message_size",
        Some(InvalidMessage) => "invalid_message",
        Some(TopicAuthorizationFailed) => "topic_authorization_failed",
        Some(ClusterAuthorizationFailed) => "cluster_authorization_failed",
        Some(MessageBatchTooLarge) => "message_batch_too_large",
        Some(InvalidTopic) => "invalid_topic",
        Some(InvalidRecord) => "invalid_record",
        Some(UnknownTopic) => "unknown_topic",
        Some(UnknownTopicOrPartition) => "unknown_topic_or_partition",
        Some(PolicyViolation) => "policy_violation",
        Some(InvalidRequiredAcks) => "invalid_required_acks",
        _ => "kafka_error",
    };
    Failure::rejected(
        topic,
        code.map(|c| format!("{c:?}")).as_deref(),
        reason,
        error.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permanent_list_and_the_size_errors() {
        let e = |code| KafkaError::MessageProduction(code);
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::PolicyViolation,
        ] {
            assert!(is_permanent_kafka_error(&e(code)), "{code:?}");
        }
        // A topic the brokers do not have and do not create: the fix is named.
        for code in [
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert!(
                rejection_fix(&e(code)).contains("create the topic"),
                "{code:?}"
            );
        }
        assert_eq!(
            kafka_failure("t", &e(RDKafkaErrorCode::UnknownTopicOrPartition)).reason,
            "unknown_topic_or_partition"
        );
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::BrokerTransportFailure,
        ] {
            assert!(!is_permanent_kafka_error(&e(code)), "{code:?}");
        }
        assert!(is_size_error(&e(RDKafkaErrorCode::MessageBatchTooLarge)));
        assert!(!is_size_error(&e(
            RDKafkaErrorCode::TopicAuthorizationFailed
        )));
        assert_eq!(
            kafka_failure("t", &e(RDKafkaErrorCode::MessageTimedOut)).reason,
            "kafka_error"
        );
    }
}
