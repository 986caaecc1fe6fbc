//! Which Kafka errors a retry cannot fix: the explicit list of permanent `RDKafkaErrorCode`s
//! (the record or the permissions are wrong), as opposed to everything else, which a restart from
//! the slot may get past; and how a rejected record is described for the dead-letter queue.
//!
//! Owns the classification only; what to do about a permanent error (stop, or dead-letter the
//! event) is the pipeline's and `dead_letter`'s.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::dead_letter::Failure;

/// Kafka errors that a retry cannot fix (the record or the permissions are wrong).
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
                | PolicyViolation
                | InvalidRequiredAcks
        )
    )
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
            RDKafkaErrorCode::PolicyViolation,
        ] {
            assert!(is_permanent_kafka_error(&e(code)), "{code:?}");
        }
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
