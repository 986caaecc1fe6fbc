//! [`DecodeError`]: why a pgoutput message could not be decoded, naming the message type and the
//! field. The decoder never panics on input: every malformed message is one of these.

use super::{unsupported_message_name, DisplayTag};

/// Why a pgoutput message could not be decoded.
///
/// `message` fields hold the message type name as returned by [`Message::kind`](super::Message::kind); `field` fields
/// name the part of the message that was bad.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload had no bytes at all, not even the message tag.
    #[error("empty pgoutput message: expected at least the one-byte message tag")]
    Empty,
    /// The message ended before the field was complete.
    #[error(
        "truncated pgoutput {message} message: {field} needs {needed} bytes \
         but only {available} remain"
    )]
    Truncated {
        /// Message type.
        message: &'static str,
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A string field had no terminating NUL byte.
    #[error(
        "truncated pgoutput {message} message: {field} is not NUL-terminated \
         ({available} bytes remain)"
    )]
    UnterminatedString {
        /// Message type.
        message: &'static str,
        /// The string field.
        field: &'static str,
        /// Bytes that were left when the string started.
        available: usize,
    },
    /// A string field was not valid UTF-8 (outboxd requires UTF-8 names).
    #[error(
        "invalid pgoutput {message} message: {field} is not valid UTF-8 \
         (is the database or client_encoding not UTF8?)"
    )]
    InvalidUtf8 {
        /// Message type.
        message: &'static str,
        /// The string field.
        field: &'static str,
    },
    /// The first byte is not a pgoutput message tag.
    #[error(
        "unknown pgoutput message tag {}: not a pgoutput protocol version 1 message \
         (is the slot using a plugin other than pgoutput?)",
        DisplayTag(*.0)
    )]
    UnknownMessage(u8),
    /// A streaming (protocol version 2+) or two-phase message, which outboxd never requests.
    #[error(
        "unsupported pgoutput message {} ({}): outboxd uses proto_version 1 without \
         streaming or two_phase, so the server should never send it",
        DisplayTag(*.0),
        unsupported_message_name(*.0).unwrap_or("unknown")
    )]
    UnsupportedMessage(u8),
    /// A tuple column value had an unknown kind byte (expected `n`, `u`, `t` or `b`).
    #[error(
        "invalid pgoutput {message} message: {tuple} column {column} has unknown value kind \
         {}, expected 'n', 'u', 't' or 'b'",
        DisplayTag(*.kind)
    )]
    UnknownTupleKind {
        /// Message type.
        message: &'static str,
        /// Which tuple (e.g. "new tuple").
        tuple: &'static str,
        /// Zero-based column position.
        column: usize,
        /// The offending kind byte.
        kind: u8,
    },
    /// A tuple marker (`N`, `K`, `O`) was not one allowed at that point.
    #[error(
        "invalid pgoutput {message} message: {field} is {}, expected {expected}",
        DisplayTag(*.found)
    )]
    UnexpectedMarker {
        /// Message type.
        message: &'static str,
        /// The marker field.
        field: &'static str,
        /// The allowed markers.
        expected: &'static str,
        /// The byte found.
        found: u8,
    },
    /// A length or count field was negative.
    #[error("invalid pgoutput {message} message: {field} is negative ({value})")]
    NegativeLength {
        /// Message type.
        message: &'static str,
        /// The length or count field.
        field: &'static str,
        /// The value read.
        value: i32,
    },
    /// Bytes were left over after a complete message.
    #[error(
        "invalid pgoutput {message} message: {count} unexpected bytes after the end of the \
         message (is the slot sending a protocol version other than 1?)"
    )]
    TrailingBytes {
        /// Message type.
        message: &'static str,
        /// Number of leftover bytes.
        count: usize,
    },
}
