//! Logical decoding messages in the relay (`source.message_prefixes`): which ones are outbox
//! events, and sending those exactly like inserted rows (same sequence numbers, so the same LSN
//! checkpoint, the same poison-event handling). Turning a message into a record is the router's
//! job ([`crate::router::message`]).
//!
//! - a prefix not in the list: not an outbox event (pgoutput sends every message once asked
//!   for messages); counted in `outboxd_changes_ignored_total{table="message",
//!   operation="other_prefix"}`;
//! - a non-transactional message of a listed prefix: not atomic with any transaction (it is
//!   decoded even if the transaction that emitted it rolls back), so never an event: skipped with a
//!   warning and counted (`operation="non_transactional_message"`);
//! - a transactional message of a listed prefix: routed and sent with the transaction's commit
//!   time; content the router refuses is a poison event, as a bad row is.

use crate::lsn::Lsn;
use crate::router::RouteError;
use crate::source::pgoutput::LogicalMessage;

use super::{PipelineError, Relay};

/// A message that stops the relay.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("logical decoding message with prefix {prefix:?} at {lsn} (transaction at {commit_lsn}): {error}; the slot is not confirmed past it: fix what emits it (the content must be a JSON object of the outbox fields, see docs/configuration.md), or set errors.tolerance = all and errors.deadletterqueue.topic.name to send such messages to a dead-letter topic")]
    Unroutable {
        prefix: String,
        lsn: Lsn,
        commit_lsn: Lsn,
        error: RouteError,
    },
    #[error("source.message_prefixes needs PostgreSQL 14 or newer (pgoutput sends logical decoding messages since 14), and the server is {version}: upgrade it, or remove source.message_prefixes (message.prefix.include.list)")]
    ServerTooOld { version: String },
}

/// Fails when the server (its `server_version` parameter, e.g. `15.4 (Debian 15.4-1)`) is older
/// than 14. An unknown version passes: the server then answers for itself.
pub fn check_server_version(version: Option<&str>) -> Result<(), MessageError> {
    let Some(version) = version else {
        return Ok(());
    };
    let major: String = version
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match major.parse::<u32>() {
        Ok(major) if major < 14 => Err(MessageError::ServerTooOld {
            version: version.to_string(),
        }),
        _ => Ok(()),
    }
}

impl Relay<'_> {
    /// A pgoutput `Message`: see the module documentation.
    pub(super) fn on_logical_message(
        &mut self,
        message: LogicalMessage,
    ) -> Result<(), PipelineError> {
        let Some(relation_id) = self.router.message_relation_id(&message.prefix) else {
            // Bounded label: any prefix may come by.
            self.metrics
                .changes_ignored
                .with_label_values(&["message", "other_prefix"])
                .inc();
            tracing::trace!(prefix = %message.prefix, lsn = %message.lsn, "logical decoding message of a prefix not in source.message_prefixes ignored");
            return Ok(());
        };
        if !message.transactional {
            let label = self.router.outbox_table(relation_id).unwrap_or("message");
            self.metrics
                .changes_ignored
                .with_label_values(&[label, "non_transactional_message"])
                .inc();
            tracing::warn!(prefix = %message.prefix, lsn = %message.lsn, "non-transactional logical decoding message skipped: it is not atomic with the transaction that emitted it (it is published even if that transaction rolls back), so it is no outbox event; emit outbox messages with pg_logical_emit_message(true, prefix, content)");
            return Ok(());
        }
        match self.router.route_message(&message, self.commit_time_us) {
            Ok(routed) => self.send_routed(relation_id, routed),
            Err(error @ RouteError::BadRow { .. })
                if self.plan.errors.dead_letter_topic().is_some() =>
            {
                let raw = self.router.raw_message(&message);
                self.dead_letter_raw(relation_id, raw, error)
            }
            Err(error) => Err(MessageError::Unroutable {
                prefix: message.prefix,
                lsn: message.lsn,
                commit_lsn: self.final_lsn,
                error,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_need_postgres_14() {
        for ok in [
            None,
            Some("14.0"),
            Some("15.4 (Debian 15.4-1.pgdg120+1)"),
            Some("17devel"),
            Some("?"),
        ] {
            assert!(check_server_version(ok).is_ok(), "{ok:?}");
        }
        for old in ["13.12", "12.1 (Ubuntu)", "9.6.24"] {
            let err = check_server_version(Some(old)).unwrap_err().to_string();
            assert!(
                err.contains("PostgreSQL 14") && err.contains(old),
                "{old}: {err}"
            );
        }
    }
}
