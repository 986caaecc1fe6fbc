//! Decoder for the messages of PostgreSQL's built-in `pgoutput` logical decoding plugin.
//!
//! [`decode`] turns the payload of one `XLogData` (CopyData `w`) message into a [`Message`]:
//! Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate and logical decoding
//! messages (`pg_logical_emit_message`), as sent with `proto_version '1'`. The streaming
//! (`proto_version` 2+) and two-phase messages are recognised and rejected with
//! [`DecodeError::UnsupportedMessage`], because outboxd never asks for them.
//!
//! The decoder is pure (no I/O, no allocation beyond the decoded strings and vectors) and
//! zero-copy for column values and message contents, which are [`Bytes`] slices of the input.
//! Malformed input (truncated, unknown tags, negative lengths, invalid UTF-8, trailing bytes)
//! always yields a [`DecodeError`] naming the message type and field; it never panics.
//!
//! Wire format reference:
//! <https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html>.
//! Integers are big-endian, strings are NUL-terminated, timestamps are microseconds since
//! 2000-01-01 00:00:00 UTC (see [`PG_EPOCH_UNIX_US`]).
//!
//! # Layout
//! This file decodes: [`decode`] reads each message type's fields in wire order with the
//! `reader` cursor. The types it returns are in `messages`, its errors in `error` (both
//! re-exported here); the tests against captured server output are in `captured`.
//! Two thirds of this file are its tests: every message kind and every malformed variant built
//! by hand, field by field, which read best next to the decoder they pin.

use std::fmt;

use bytes::Bytes;

// `#[path]`: tests/fuzz compiles this file by path, which makes rustc look for its children
// beside it (src/source/), not in src/source/pgoutput/; the explicit paths are right for both.
#[cfg(test)]
#[path = "pgoutput/captured.rs"]
mod captured;
#[path = "pgoutput/error.rs"]
mod error;
#[path = "pgoutput/messages.rs"]
mod messages;
#[path = "pgoutput/reader.rs"]
mod reader;
#[cfg(test)]
#[path = "pgoutput/testing.rs"]
mod testing;

pub use error::DecodeError;
pub use messages::{
    Begin, Column, Commit, Delete, Insert, LogicalMessage, Message, OldTuple, Origin, Relation,
    Truncate, TupleData, TupleValue, TypeMessage, Update,
};
use reader::Reader;

/// The `proto_version` this decoder understands; pass it to `START_REPLICATION`.
pub const PROTO_VERSION: u32 = 1;

/// The PostgreSQL epoch (2000-01-01 00:00:00 UTC) in microseconds since the Unix epoch.
///
/// Add it to a `commit_time_us` to get microseconds since 1970-01-01.
pub const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

/// Decodes one pgoutput (protocol version 1) message: the payload of one `XLogData` message.
///
/// Column values and logical message contents are zero-copy slices of `data`. The whole input
/// must be exactly one message: bytes left after a complete message are an error
/// ([`DecodeError::TrailingBytes`]).
pub fn decode(data: Bytes) -> Result<Message, DecodeError> {
    let tag = *data.first().ok_or(DecodeError::Empty)?;
    let kind = match tag {
        b'B' => Kind::Begin,
        b'C' => Kind::Commit,
        b'O' => Kind::Origin,
        b'R' => Kind::Relation,
        b'Y' => Kind::Type,
        b'I' => Kind::Insert,
        b'U' => Kind::Update,
        b'D' => Kind::Delete,
        b'T' => Kind::Truncate,
        b'M' => Kind::LogicalMessage,
        t if unsupported_message_name(t).is_some() => {
            return Err(DecodeError::UnsupportedMessage(t))
        }
        t => return Err(DecodeError::UnknownMessage(t)),
    };
    let mut r = Reader {
        data: &data,
        pos: 1,
        message: kind.name(),
    };
    let message = match kind {
        Kind::Begin => Message::Begin(Begin {
            final_lsn: r.lsn("final LSN")?,
            commit_time_us: r.i64("commit timestamp")?,
            xid: r.u32("xid")?,
        }),
        Kind::Commit => Message::Commit(Commit {
            flags: r.u8("flags")?,
            commit_lsn: r.lsn("commit LSN")?,
            end_lsn: r.lsn("end LSN")?,
            commit_time_us: r.i64("commit timestamp")?,
        }),
        Kind::Origin => Message::Origin(Origin {
            commit_lsn: r.lsn("origin commit LSN")?,
            name: r.string("origin name")?,
        }),
        Kind::Relation => Message::Relation(r.relation()?),
        Kind::Type => Message::Type(TypeMessage {
            id: r.u32("type OID")?,
            namespace: r.string("type namespace")?,
            name: r.string("type name")?,
        }),
        Kind::Insert => {
            let relation_id = r.u32("relation OID")?;
            r.expect_marker(b'N', "new tuple marker", "'N'")?;
            let new = r.tuple("new tuple")?;
            Message::Insert(Insert { relation_id, new })
        }
        Kind::Update => {
            let relation_id = r.u32("relation OID")?;
            let marker = r.u8("tuple marker")?;
            let old = match marker {
                b'K' => Some(OldTuple::Key(r.tuple("old key tuple")?)),
                b'O' => Some(OldTuple::Full(r.tuple("old tuple")?)),
                b'N' => None,
                found => {
                    return Err(DecodeError::UnexpectedMarker {
                        message: r.message,
                        field: "tuple marker",
                        expected: "'K', 'O' or 'N'",
                        found,
                    })
                }
            };
            if old.is_some() {
                r.expect_marker(b'N', "new tuple marker", "'N'")?;
            }
            let new = r.tuple("new tuple")?;
            Message::Update(Update {
                relation_id,
                old,
                new,
            })
        }
        Kind::Delete => {
            let relation_id = r.u32("relation OID")?;
            let old = match r.u8("old tuple marker")? {
                b'K' => OldTuple::Key(r.tuple("old key tuple")?),
                b'O' => OldTuple::Full(r.tuple("old tuple")?),
                found => {
                    return Err(DecodeError::UnexpectedMarker {
                        message: r.message,
                        field: "old tuple marker",
                        expected: "'K' or 'O'",
                        found,
                    })
                }
            };
            Message::Delete(Delete { relation_id, old })
        }
        Kind::Truncate => {
            let count = r.count32("relation count")?;
            let options = r.u8("options")?;
            // Each relation OID takes four bytes: refuse an impossible count before allocating.
            let needed = count.saturating_mul(4);
            if needed > r.remaining() {
                return Err(DecodeError::Truncated {
                    message: r.message,
                    field: "relation OIDs",
                    needed,
                    available: r.remaining(),
                });
            }
            let mut relation_ids = Vec::with_capacity(count);
            for _ in 0..count {
                relation_ids.push(r.u32("relation OID")?);
            }
            Message::Truncate(Truncate {
                options,
                relation_ids,
            })
        }
        Kind::LogicalMessage => {
            let flags = r.u8("flags")?;
            let lsn = r.lsn("LSN")?;
            let prefix = r.string("prefix")?;
            let len = r.length("content length")?;
            let content = r.bytes(len, "content")?;
            Message::LogicalMessage(LogicalMessage {
                transactional: flags & LogicalMessage::TRANSACTIONAL != 0,
                lsn,
                prefix,
                content,
            })
        }
    };
    r.finish()?;
    Ok(message)
}

/// The message types this decoder accepts.
#[derive(Clone, Copy)]
enum Kind {
    Begin,
    Commit,
    Origin,
    Relation,
    Type,
    Insert,
    Update,
    Delete,
    Truncate,
    LogicalMessage,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Begin => "Begin",
            Kind::Commit => "Commit",
            Kind::Origin => "Origin",
            Kind::Relation => "Relation",
            Kind::Type => "Type",
            Kind::Insert => "Insert",
            Kind::Update => "Update",
            Kind::Delete => "Delete",
            Kind::Truncate => "Truncate",
            Kind::LogicalMessage => "LogicalMessage",
        }
    }
}

/// Names of the valid pgoutput messages that protocol version 1 never sends.
fn unsupported_message_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        b'S' => "Stream Start",
        b'E' => "Stream Stop",
        b'c' => "Stream Commit",
        b'A' => "Stream Abort",
        b'b' => "Begin Prepare",
        b'P' => "Prepare",
        b'K' => "Commit Prepared",
        b'r' => "Rollback Prepared",
        b'p' => "Stream Prepare",
        _ => return None,
    })
}

/// Shows a tag byte as `'B'`, or as `0x00` if it is not printable ASCII.
struct DisplayTag(u8);

impl fmt::Display for DisplayTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() && self.0 != b'\'' && self.0 != b'\\' {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TupleValue::{Null, UnchangedToast};
    use super::*;
    use crate::lsn::Lsn;
    use crate::source::pgoutput::testing::*;

    #[test]
    fn every_message_kind_decodes() {
        let cases: Vec<(Bytes, Message)> = vec![
            (
                W::tag(b'B')
                    .u64(0x1_0000_00AB)
                    .i64(-1)
                    .u32(u32::MAX)
                    .build(),
                Message::Begin(Begin {
                    final_lsn: Lsn(0x1_0000_00AB),
                    commit_time_us: -1,
                    xid: u32::MAX,
                }),
            ),
            (
                W::tag(b'C').u8(0).u64(5).u64(6).i64(7).build(),
                Message::Commit(Commit {
                    flags: 0,
                    commit_lsn: Lsn(5),
                    end_lsn: Lsn(6),
                    commit_time_us: 7,
                }),
            ),
            (
                W::tag(b'O').u64(u64::MAX).str("").build(),
                Message::Origin(Origin {
                    commit_lsn: Lsn(u64::MAX),
                    name: String::new(),
                }),
            ),
            (
                // pg_catalog relations have an empty namespace; a table may have no columns.
                W::tag(b'R').u32(1).str("").str("t").u8(b'n').i16(0).build(),
                Message::Relation(Relation {
                    id: 1,
                    namespace: String::new(),
                    name: "t".into(),
                    replica_identity: Relation::IDENTITY_NOTHING,
                    columns: vec![],
                }),
            ),
            (
                W::tag(b'R')
                    .u32(2)
                    .str("sch")
                    .str("täble")
                    .u8(b'i')
                    .i16(2)
                    .u8(1)
                    .str("k")
                    .u32(23)
                    .i32(-1)
                    .u8(0)
                    .str("v")
                    .u32(1043)
                    .i32(14)
                    .build(),
                Message::Relation(Relation {
                    id: 2,
                    namespace: "sch".into(),
                    name: "täble".into(),
                    replica_identity: Relation::IDENTITY_INDEX,
                    columns: vec![col(1, "k", 23, -1), col(0, "v", 1043, 14)],
                }),
            ),
            (
                W::tag(b'Y').u32(9).str("s").str("ty").build(),
                Message::Type(TypeMessage {
                    id: 9,
                    namespace: "s".into(),
                    name: "ty".into(),
                }),
            ),
            (
                // All four value kinds; an empty value; a value that is not UTF-8 (values are
                // raw bytes and are not validated).
                W::tag(b'I')
                    .u32(3)
                    .u8(b'N')
                    .i16(6)
                    .u8(b'n')
                    .u8(b'u')
                    .val(b't', b"hi")
                    .val(b'b', &[0, 1])
                    .val(b't', b"")
                    .val(b't', &[0xff, 0xfe])
                    .build(),
                Message::Insert(Insert {
                    relation_id: 3,
                    new: TupleData(vec![
                        Null,
                        UnchangedToast,
                        text("hi"),
                        bin(&[0, 1]),
                        text(""),
                        TupleValue::Text(Bytes::from_static(&[0xff, 0xfe])),
                    ]),
                }),
            ),
            (
                W::tag(b'I').u32(3).u8(b'N').i16(0).build(),
                Message::Insert(Insert {
                    relation_id: 3,
                    new: TupleData(vec![]),
                }),
            ),
            (
                W::tag(b'U').u32(4).u8(b'N').i16(1).val(b't', b"x").build(),
                Message::Update(Update {
                    relation_id: 4,
                    old: None,
                    new: TupleData(vec![text("x")]),
                }),
            ),
            (
                W::tag(b'U')
                    .u32(4)
                    .u8(b'K')
                    .i16(2)
                    .val(b't', b"1")
                    .u8(b'n')
                    .u8(b'N')
                    .i16(2)
                    .val(b't', b"2")
                    .u8(b'u')
                    .build(),
                Message::Update(Update {
                    relation_id: 4,
                    old: Some(OldTuple::Key(TupleData(vec![text("1"), Null]))),
                    new: TupleData(vec![text("2"), UnchangedToast]),
                }),
            ),
            (
                W::tag(b'U')
                    .u32(4)
                    .u8(b'O')
                    .i16(1)
                    .val(b'b', b"a")
                    .u8(b'N')
                    .i16(1)
                    .val(b'b', b"b")
                    .build(),
                Message::Update(Update {
                    relation_id: 4,
                    old: Some(OldTuple::Full(TupleData(vec![bin(b"a")]))),
                    new: TupleData(vec![bin(b"b")]),
                }),
            ),
            (
                W::tag(b'D').u32(5).u8(b'K').i16(1).val(b't', b"1").build(),
                Message::Delete(Delete {
                    relation_id: 5,
                    old: OldTuple::Key(TupleData(vec![text("1")])),
                }),
            ),
            (
                W::tag(b'D').u32(5).u8(b'O').i16(1).u8(b'n').build(),
                Message::Delete(Delete {
                    relation_id: 5,
                    old: OldTuple::Full(TupleData(vec![Null])),
                }),
            ),
            (
                W::tag(b'T').i32(0).u8(0).build(),
                Message::Truncate(Truncate {
                    options: 0,
                    relation_ids: vec![],
                }),
            ),
            (
                W::tag(b'T').i32(2).u8(1).u32(7).u32(u32::MAX).build(),
                Message::Truncate(Truncate {
                    options: Truncate::CASCADE,
                    relation_ids: vec![7, u32::MAX],
                }),
            ),
            (
                W::tag(b'M').u8(0).u64(8).str("").i32(0).build(),
                Message::LogicalMessage(LogicalMessage {
                    transactional: false,
                    lsn: Lsn(8),
                    prefix: String::new(),
                    content: Bytes::new(),
                }),
            ),
            (
                W::tag(b'M')
                    .u8(1)
                    .u64(9)
                    .str("p")
                    .i32(3)
                    .raw(&[0, 0xff, 0])
                    .build(),
                Message::LogicalMessage(LogicalMessage {
                    transactional: true,
                    lsn: Lsn(9),
                    prefix: "p".into(),
                    content: Bytes::from_static(&[0, 0xff, 0]),
                }),
            ),
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for (data, expected) in cases {
            assert_eq!(
                decode(data.clone()),
                Ok(expected.clone()),
                "{}",
                to_hex(&data)
            );
            kinds.insert(expected.kind());
        }
        assert_eq!(kinds.len(), 10, "every message kind is covered: {kinds:?}");
    }

    #[test]
    fn kind_names_match_variants() {
        let tuple = TupleData(vec![]);
        let names = [
            (
                Message::Begin(Begin {
                    final_lsn: Lsn(0),
                    commit_time_us: 0,
                    xid: 0,
                }),
                "Begin",
            ),
            (Message::Type(mood_type()), "Type"),
            (Message::Relation(items_relation()), "Relation"),
            (
                Message::Delete(Delete {
                    relation_id: 0,
                    old: OldTuple::Key(tuple.clone()),
                }),
                "Delete",
            ),
            (
                Message::LogicalMessage(LogicalMessage {
                    transactional: true,
                    lsn: Lsn(0),
                    prefix: String::new(),
                    content: Bytes::new(),
                }),
                "LogicalMessage",
            ),
        ];
        for (msg, name) in names {
            assert_eq!(msg.kind(), name);
        }
    }

    #[test]
    fn helpers() {
        let items = items_relation();
        assert_eq!(items.column_index("id"), Some(0));
        assert_eq!(items.column_index("qty"), Some(5));
        assert_eq!(items.column_index("feeling"), Some(9));
        assert_eq!(items.column_index("QTY"), None);
        assert_eq!(items.column_index("missing"), None);
        assert!(items.columns[0].is_key() && !items.columns[1].is_key());

        let old = OldTuple::Full(TupleData(vec![text("a"), Null]));
        assert_eq!(old.tuple().len(), 2);
        assert!(!old.tuple().is_empty());
        assert_eq!(
            old.tuple().get(0).and_then(TupleValue::as_bytes),
            Some(&Bytes::from("a"))
        );
        assert_eq!(old.tuple().get(1).and_then(TupleValue::as_bytes), None);
        assert_eq!(old.tuple().get(2), None);
        assert_eq!(UnchangedToast.as_bytes(), None);

        // 2000-01-01 is 10957 days after 1970-01-01.
        assert_eq!(PG_EPOCH_UNIX_US, 10_957 * 86_400 * 1_000_000);
    }

    #[test]
    fn malformed_messages_are_rejected_with_context() {
        use DecodeError::*;
        let cases: Vec<(Bytes, DecodeError)> = vec![
            (Bytes::new(), Empty),
            (W::tag(b'Z').build(), UnknownMessage(b'Z')),
            (W::tag(0).build(), UnknownMessage(0)),
            (
                W::tag(b'B').raw(&[0, 0, 0]).build(),
                Truncated {
                    message: "Begin",
                    field: "final LSN",
                    needed: 8,
                    available: 3,
                },
            ),
            (
                W::tag(b'B').u64(1).i64(2).u32(3).u8(0).build(),
                TrailingBytes {
                    message: "Begin",
                    count: 1,
                },
            ),
            (
                W::tag(b'C').u8(0).u64(1).u64(2).raw(&[0; 7]).build(),
                Truncated {
                    message: "Commit",
                    field: "commit timestamp",
                    needed: 8,
                    available: 7,
                },
            ),
            (
                W::tag(b'O').u64(1).raw(b"abc").build(),
                UnterminatedString {
                    message: "Origin",
                    field: "origin name",
                    available: 3,
                },
            ),
            (
                W::tag(b'R').u32(1).raw(&[0xc3, 0x28, 0]).str("t").build(),
                InvalidUtf8 {
                    message: "Relation",
                    field: "namespace",
                },
            ),
            (
                W::tag(b'R')
                    .u32(1)
                    .str("s")
                    .str("t")
                    .u8(b'd')
                    .i16(-1)
                    .build(),
                NegativeLength {
                    message: "Relation",
                    field: "column count",
                    value: -1,
                },
            ),
            (
                W::tag(b'R')
                    .u32(1)
                    .str("s")
                    .str("t")
                    .u8(b'd')
                    .i16(3)
                    .u8(0)
                    .str("a")
                    .u32(1)
                    .i32(-1)
                    .build(),
                Truncated {
                    message: "Relation",
                    field: "column flags",
                    needed: 1,
                    available: 0,
                },
            ),
            (
                W::tag(b'Y').u32(1).str("s").raw(b"no-nul").build(),
                UnterminatedString {
                    message: "Type",
                    field: "type name",
                    available: 6,
                },
            ),
            (
                W::tag(b'I').u32(1).u8(b'K').i16(0).build(),
                UnexpectedMarker {
                    message: "Insert",
                    field: "new tuple marker",
                    expected: "'N'",
                    found: b'K',
                },
            ),
            (
                W::tag(b'I')
                    .u32(1)
                    .u8(b'N')
                    .i16(2)
                    .u8(b'n')
                    .u8(b'x')
                    .build(),
                UnknownTupleKind {
                    message: "Insert",
                    tuple: "new tuple",
                    column: 1,
                    kind: b'x',
                },
            ),
            (
                W::tag(b'I').u32(1).u8(b'N').i16(1).u8(b't').i32(-1).build(),
                NegativeLength {
                    message: "Insert",
                    field: "tuple value length",
                    value: -1,
                },
            ),
            (
                W::tag(b'I')
                    .u32(1)
                    .u8(b'N')
                    .i16(1)
                    .u8(b'b')
                    .i32(100)
                    .raw(b"abc")
                    .build(),
                Truncated {
                    message: "Insert",
                    field: "tuple value",
                    needed: 100,
                    available: 3,
                },
            ),
            (
                W::tag(b'I').u32(1).u8(b'N').i16(i16::MIN).build(),
                NegativeLength {
                    message: "Insert",
                    field: "tuple column count",
                    value: -32768,
                },
            ),
            (
                W::tag(b'I').u32(1).u8(b'N').i16(i16::MAX).build(),
                Truncated {
                    message: "Insert",
                    field: "tuple value kind",
                    needed: 1,
                    available: 0,
                },
            ),
            (
                W::tag(b'U').u32(1).u8(b'X').build(),
                UnexpectedMarker {
                    message: "Update",
                    field: "tuple marker",
                    expected: "'K', 'O' or 'N'",
                    found: b'X',
                },
            ),
            (
                W::tag(b'U').u32(1).u8(b'K').i16(0).u8(b'O').i16(0).build(),
                UnexpectedMarker {
                    message: "Update",
                    field: "new tuple marker",
                    expected: "'N'",
                    found: b'O',
                },
            ),
            (
                W::tag(b'U').u32(1).u8(b'N').i16(0).u8(b'N').build(),
                TrailingBytes {
                    message: "Update",
                    count: 1,
                },
            ),
            (
                W::tag(b'U').u32(1).u8(b'O').i16(1).u8(b'?').build(),
                UnknownTupleKind {
                    message: "Update",
                    tuple: "old tuple",
                    column: 0,
                    kind: b'?',
                },
            ),
            (
                W::tag(b'D').u32(1).u8(b'N').i16(0).build(),
                UnexpectedMarker {
                    message: "Delete",
                    field: "old tuple marker",
                    expected: "'K' or 'O'",
                    found: b'N',
                },
            ),
            (
                W::tag(b'D').u32(1).build(),
                Truncated {
                    message: "Delete",
                    field: "old tuple marker",
                    needed: 1,
                    available: 0,
                },
            ),
            (
                W::tag(b'T').i32(-1).u8(0).build(),
                NegativeLength {
                    message: "Truncate",
                    field: "relation count",
                    value: -1,
                },
            ),
            (
                // A huge count is refused before anything is allocated for it.
                W::tag(b'T').i32(i32::MAX).u8(0).u32(1).build(),
                Truncated {
                    message: "Truncate",
                    field: "relation OIDs",
                    needed: (i32::MAX as usize).saturating_mul(4),
                    available: 4,
                },
            ),
            (
                W::tag(b'T').i32(1).u8(0).u32(1).u32(2).build(),
                TrailingBytes {
                    message: "Truncate",
                    count: 4,
                },
            ),
            (
                W::tag(b'M').u8(1).u64(1).str("p").i32(-5).build(),
                NegativeLength {
                    message: "LogicalMessage",
                    field: "content length",
                    value: -5,
                },
            ),
            (
                W::tag(b'M')
                    .u8(1)
                    .u64(1)
                    .str("p")
                    .i32(10)
                    .raw(b"ab")
                    .build(),
                Truncated {
                    message: "LogicalMessage",
                    field: "content",
                    needed: 10,
                    available: 2,
                },
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(decode(data.clone()), Err(expected), "{}", to_hex(&data));
        }
    }

    #[test]
    fn protocol_2_and_two_phase_messages_are_unsupported() {
        for tag in [b'S', b'E', b'c', b'A', b'b', b'P', b'K', b'r', b'p'] {
            // Whatever follows the tag, the answer is the same.
            for data in [W::tag(tag).build(), W::tag(tag).u32(1).u8(1).build()] {
                let err = decode(data).unwrap_err();
                assert_eq!(err, DecodeError::UnsupportedMessage(tag));
                assert!(err.to_string().contains("proto_version 1"), "{err}");
            }
        }
    }

    #[test]
    fn error_messages_name_the_message_and_field() {
        let msg = |data: Bytes| decode(data).unwrap_err().to_string();
        assert_eq!(
            msg(W::tag(b'S').build()),
            "unsupported pgoutput message 'S' (Stream Start): outboxd uses proto_version 1 \
             without streaming or two_phase, so the server should never send it"
        );
        assert_eq!(
            msg(W::tag(0x01).build()),
            "unknown pgoutput message tag 0x01: not a pgoutput protocol version 1 message \
             (is the slot using a plugin other than pgoutput?)"
        );
        assert_eq!(
            msg(W::tag(b'B').raw(&[0, 0, 0]).build()),
            "truncated pgoutput Begin message: final LSN needs 8 bytes but only 3 remain"
        );
        assert_eq!(
            msg(W::tag(b'I')
                .u32(1)
                .u8(b'N')
                .i16(3)
                .u8(b'n')
                .u8(b'n')
                .u8(b'\'')
                .build()),
            "invalid pgoutput Insert message: new tuple column 2 has unknown value kind 0x27, \
             expected 'n', 'u', 't' or 'b'"
        );
        assert_eq!(
            msg(W::tag(b'D').u32(1).u8(b'N').build()),
            "invalid pgoutput Delete message: old tuple marker is 'N', expected 'K' or 'O'"
        );
        assert_eq!(
            msg(W::tag(b'C').u8(0).u64(1).u64(2).i64(3).raw(b"xy").build()),
            "invalid pgoutput Commit message: 2 unexpected bytes after the end of the message \
             (is the slot sending a protocol version other than 1?)"
        );
        assert_eq!(
            msg(W::tag(b'Y').u32(1).raw(&[0xff, 0]).str("t").build()),
            "invalid pgoutput Type message: type namespace is not valid UTF-8 \
             (is the database or client_encoding not UTF8?)"
        );
    }
}
