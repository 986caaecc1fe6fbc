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

use std::fmt;

use bytes::Bytes;

use crate::lsn::Lsn;

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

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `B`: start of a transaction; the changes up to the matching [`Message::Commit`] follow.
    Begin(Begin),
    /// `C`: end of a transaction.
    Commit(Commit),
    /// `O`: the transaction was replicated from another node (sent after Begin).
    Origin(Origin),
    /// `R`: a table's schema; sent before the first change of that table and after DDL.
    Relation(Relation),
    /// `Y`: a non-built-in type used by a following Relation message.
    Type(TypeMessage),
    /// `I`: a row was inserted.
    Insert(Insert),
    /// `U`: a row was updated.
    Update(Update),
    /// `D`: a row was deleted.
    Delete(Delete),
    /// `T`: one or more tables were truncated.
    Truncate(Truncate),
    /// `M`: a logical decoding message from `pg_logical_emit_message` (needs `messages 'true'`).
    LogicalMessage(LogicalMessage),
}

impl Message {
    /// The message type's name, equal to the variant name (e.g. `"Begin"`, `"LogicalMessage"`);
    /// for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Begin(_) => Kind::Begin.name(),
            Message::Commit(_) => Kind::Commit.name(),
            Message::Origin(_) => Kind::Origin.name(),
            Message::Relation(_) => Kind::Relation.name(),
            Message::Type(_) => Kind::Type.name(),
            Message::Insert(_) => Kind::Insert.name(),
            Message::Update(_) => Kind::Update.name(),
            Message::Delete(_) => Kind::Delete.name(),
            Message::Truncate(_) => Kind::Truncate.name(),
            Message::LogicalMessage(_) => Kind::LogicalMessage.name(),
        }
    }
}

/// Start of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time in microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_time_us: i64,
    /// Transaction id.
    pub xid: u32,
}

/// End of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Currently unused by PostgreSQL (always 0).
    pub flags: u8,
    /// LSN of the commit record (equals the Begin's `final_lsn`).
    pub commit_lsn: Lsn,
    /// LSN just past the commit record: the position to confirm once the transaction is durable.
    pub end_lsn: Lsn,
    /// Commit time in microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_time_us: i64,
}

/// The replication origin of the current transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Commit LSN on the origin server.
    pub commit_lsn: Lsn,
    /// Origin name.
    pub name: String,
}

/// A table's schema as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Relation OID; Insert/Update/Delete/Truncate refer to the table by it.
    pub id: u32,
    /// Schema name; empty for `pg_catalog`.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// `REPLICA IDENTITY` setting, one of the `IDENTITY_*` constants.
    pub replica_identity: u8,
    /// The published columns, in the order of the tuple values.
    pub columns: Vec<Column>,
}

impl Relation {
    /// `REPLICA IDENTITY DEFAULT`: the primary key.
    pub const IDENTITY_DEFAULT: u8 = b'd';
    /// `REPLICA IDENTITY NOTHING`.
    pub const IDENTITY_NOTHING: u8 = b'n';
    /// `REPLICA IDENTITY FULL`: all columns.
    pub const IDENTITY_FULL: u8 = b'f';
    /// `REPLICA IDENTITY USING INDEX`.
    pub const IDENTITY_INDEX: u8 = b'i';

    /// Position of the column called `name` (exact, case-sensitive match), which is also the
    /// position of its value in this relation's [`TupleData`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Bit 1 ([`Column::FLAG_KEY`]): the column is part of the replica identity key.
    pub flags: u8,
    /// Column name.
    pub name: String,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), e.g. `VARHDRSZ + n` for `varchar(n)`; -1 if none.
    pub type_modifier: i32,
}

impl Column {
    /// Flag bit: the column is part of the key.
    pub const FLAG_KEY: u8 = 1;

    /// Whether the column is part of the replica identity key.
    pub fn is_key(&self) -> bool {
        self.flags & Self::FLAG_KEY != 0
    }
}

/// A non-built-in data type (`Y`), e.g. an enum or a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMessage {
    /// Type OID.
    pub id: u32,
    /// Schema name; empty for `pg_catalog`.
    pub namespace: String,
    /// Type name.
    pub name: String,
}

/// An inserted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// OID of the table, as announced by a [`Relation`] message.
    pub relation_id: u32,
    /// The new row.
    pub new: TupleData,
}

/// An updated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// OID of the table, as announced by a [`Relation`] message.
    pub relation_id: u32,
    /// The old key (if the key changed) or the whole old row (`REPLICA IDENTITY FULL`); `None`
    /// when neither is sent.
    pub old: Option<OldTuple>,
    /// The new row; unchanged TOASTed values are [`TupleValue::UnchangedToast`].
    pub new: TupleData,
}

/// A deleted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// OID of the table, as announced by a [`Relation`] message.
    pub relation_id: u32,
    /// The deleted row's key or whole row.
    pub old: OldTuple,
}

/// The old row sent with an Update or Delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// `K`: only the replica identity key columns are meaningful; the others are `Null`.
    Key(TupleData),
    /// `O`: the whole old row (`REPLICA IDENTITY FULL`).
    Full(TupleData),
}

impl OldTuple {
    /// The tuple, whichever kind it is.
    pub fn tuple(&self) -> &TupleData {
        match self {
            OldTuple::Key(t) | OldTuple::Full(t) => t,
        }
    }
}

/// Truncated tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Bit set of [`Truncate::CASCADE`] and [`Truncate::RESTART_IDENTITY`].
    pub options: u8,
    /// OIDs of the truncated tables.
    pub relation_ids: Vec<u32>,
}

impl Truncate {
    /// Option bit: `TRUNCATE ... CASCADE`.
    pub const CASCADE: u8 = 1;
    /// Option bit: `TRUNCATE ... RESTART IDENTITY`.
    pub const RESTART_IDENTITY: u8 = 2;
}

/// A logical decoding message (`pg_logical_emit_message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage {
    /// Emitted with `transactional = true`: it is part of the enclosing Begin/Commit.
    /// Non-transactional messages arrive on their own, outside any transaction.
    pub transactional: bool,
    /// LSN of the message's WAL record.
    pub lsn: Lsn,
    /// The prefix given to `pg_logical_emit_message`.
    pub prefix: String,
    /// The content, as raw bytes (zero-copy slice of the input).
    pub content: Bytes,
}

impl LogicalMessage {
    /// Flag bit: the message is transactional.
    pub const TRANSACTIONAL: u8 = 1;
}

/// The column values of one row, in the order of the [`Relation`]'s columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleData(pub Vec<TupleValue>);

impl TupleData {
    /// The value at column position `index`.
    pub fn get(&self, index: usize) -> Option<&TupleValue> {
        self.0.get(index)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// `n`: SQL NULL.
    Null,
    /// `u`: an unchanged TOASTed value; the actual value is not sent.
    UnchangedToast,
    /// `t`: the value in the type's text output format (not NUL-terminated).
    Text(Bytes),
    /// `b`: the value in the type's binary send format (only with `binary 'true'`).
    Binary(Bytes),
}

impl TupleValue {
    /// The raw bytes of a `Text` or `Binary` value; `None` for `Null` and `UnchangedToast`.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            TupleValue::Text(b) | TupleValue::Binary(b) => Some(b),
            TupleValue::Null | TupleValue::UnchangedToast => None,
        }
    }
}

/// Why a pgoutput message could not be decoded.
///
/// `message` fields hold the message type name as returned by [`Message::kind`]; `field` fields
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

/// Bounds-checked big-endian cursor over one message.
struct Reader<'a> {
    data: &'a Bytes,
    /// Invariant: `pos <= data.len()`.
    pos: usize,
    message: &'static str,
}

impl Reader<'_> {
    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn remaining(&self) -> usize {
        self.rest().len()
    }

    fn truncated(&self, field: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            message: self.message,
            field,
            needed,
            available: self.remaining(),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let out: [u8; N] = self
            .rest()
            .get(..N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| self.truncated(field, N))?;
        self.pos += N;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn lsn(&mut self, field: &'static str) -> Result<Lsn, DecodeError> {
        self.array(field).map(|b| Lsn(u64::from_be_bytes(b)))
    }

    /// An Int32 length that must not be negative.
    fn length(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let value = self.i32(field)?;
        usize::try_from(value).map_err(|_| DecodeError::NegativeLength {
            message: self.message,
            field,
            value,
        })
    }

    /// An Int32 count that must not be negative.
    fn count32(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        self.length(field)
    }

    /// An Int16 count that must not be negative.
    fn count16(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let value = self.i16(field)?;
        usize::try_from(value).map_err(|_| DecodeError::NegativeLength {
            message: self.message,
            field,
            value: i32::from(value),
        })
    }

    /// `len` bytes as a zero-copy slice of the input.
    fn bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(self.truncated(field, len));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.data.slice(start..self.pos))
    }

    /// A NUL-terminated UTF-8 string.
    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::UnterminatedString {
                message: self.message,
                field,
                available: rest.len(),
            })?;
        let text = rest
            .get(..len)
            .and_then(|s| std::str::from_utf8(s).ok())
            .ok_or(DecodeError::InvalidUtf8 {
                message: self.message,
                field,
            })?
            .to_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn expect_marker(
        &mut self,
        marker: u8,
        field: &'static str,
        expected: &'static str,
    ) -> Result<(), DecodeError> {
        match self.u8(field)? {
            found if found == marker => Ok(()),
            found => Err(DecodeError::UnexpectedMarker {
                message: self.message,
                field,
                expected,
                found,
            }),
        }
    }

    fn relation(&mut self) -> Result<Relation, DecodeError> {
        let id = self.u32("relation OID")?;
        let namespace = self.string("namespace")?;
        let name = self.string("relation name")?;
        let replica_identity = self.u8("replica identity")?;
        let count = self.count16("column count")?;
        // A column takes at least 10 bytes (flags, empty name, type OID, modifier).
        let mut columns = Vec::with_capacity(count.min(self.remaining() / 10));
        for _ in 0..count {
            columns.push(Column {
                flags: self.u8("column flags")?,
                name: self.string("column name")?,
                type_oid: self.u32("column type OID")?,
                type_modifier: self.i32("column type modifier")?,
            });
        }
        Ok(Relation {
            id,
            namespace,
            name,
            replica_identity,
            columns,
        })
    }

    /// TupleData: Int16 column count, then one kind byte (and for `t`/`b` an Int32 length and
    /// the bytes) per column.
    fn tuple(&mut self, tuple: &'static str) -> Result<TupleData, DecodeError> {
        let count = self.count16("tuple column count")?;
        // Each value takes at least its kind byte.
        let mut values = Vec::with_capacity(count.min(self.remaining()));
        for column in 0..count {
            let value = match self.u8("tuple value kind")? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::UnchangedToast,
                b't' => {
                    let len = self.length("tuple value length")?;
                    TupleValue::Text(self.bytes(len, "tuple value")?)
                }
                b'b' => {
                    let len = self.length("tuple value length")?;
                    TupleValue::Binary(self.bytes(len, "tuple value")?)
                }
                kind => {
                    return Err(DecodeError::UnknownTupleKind {
                        message: self.message,
                        tuple,
                        column,
                        kind,
                    })
                }
            };
            values.push(value);
        }
        Ok(TupleData(values))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                message: self.message,
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TupleValue::{Null, UnchangedToast};
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    // ---------------------------------------------------------------------------------------
    // Fixtures captured from a real PostgreSQL 15 server (see testdata/pgoutput/capture.sql).
    // ---------------------------------------------------------------------------------------

    const TEXT: &str = include_str!("testdata/pgoutput/text.txt");
    const BINARY: &str = include_str!("testdata/pgoutput/binary.txt");

    const MOOD_OID: u32 = 16385;
    const ITEMS_OID: u32 = 16389;
    const OUTBOX_OID: u32 = 16396;
    const UUID_A: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    const UUID_B: &str = "b1ffcd00-0000-4000-8000-000000000002";
    const UUID_A_BIN: [u8; 16] = [
        0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a,
        0x11,
    ];
    const UUID_B_BIN: [u8; 16] = [
        0xb1, 0xff, 0xcd, 0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02,
    ];
    const PAYLOAD: &str = r#"{"k": [1, 2], "s": "ü"}"#;
    /// `2024-05-06 07:08:09.123456+00` in µs since 2000-01-01 (the binary timestamptz value).
    const CREATED_AT_US: i64 = 768_294_489_123_456;
    /// `md5('1')` and `md5('200')`: the first and last 32 characters of the TOASTed `big` value.
    const MD5_1: &str = "c4ca4238a0b923820dcc509a6f75849b";
    const MD5_200: &str = "3644a684f98ea8fe223c713b77189a77";

    /// Message kinds of both captures, in order, one transaction per line.
    #[rustfmt::skip]
    const KINDS: [&str; 44] = [
        "Begin", "Type", "Relation", "Insert", "Commit", // 730: insert into items
        "Begin", "Relation", "Insert", "Commit", // 731: insert into outbox_events
        "Begin", "Update", "Commit", // 732: update items, key unchanged, big TOASTed
        "Begin", "Update", "Commit", // 733: update items, key changed
        "Begin", "Update", "Commit", // 734: update outbox_events (REPLICA IDENTITY FULL)
        "Begin", "Insert", "LogicalMessage", "Commit", // 735: insert + transactional message
        "LogicalMessage", // non-transactional message
        "Begin", "Delete", "Commit", // 736: delete from items
        "Begin", "Delete", "Commit", // 737: delete from outbox_events
        "Begin", "Relation", "Truncate", "Commit", // 738: TRUNCATE outbox_events
        "Begin", "Type", "Relation", "Relation", "Truncate", "Commit", // 739: TRUNCATE both
        "Begin", "Origin", "Relation", "Insert", "Commit", // 740: with a replication origin
    ];

    /// (xid, final/commit LSN, end LSN, commit time) of the captured transactions, in order.
    const TXNS: [(u32, u64, u64, i64); 11] = [
        (730, 0x1533648, 0x1533678, 848_622_954_054_437),
        (731, 0x1533780, 0x15337b0, 848_622_954_054_988),
        (732, 0x15338b8, 0x15338e8, 848_622_954_055_843),
        (733, 0x1533a50, 0x1533a80, 848_622_954_056_109),
        (734, 0x1533b28, 0x1533b58, 848_622_954_056_467),
        (735, 0x1533c28, 0x1533c58, 848_622_954_056_925),
        (736, 0x1533dd0, 0x1533e00, 848_622_954_057_279),
        (737, 0x1533e50, 0x1533e80, 848_622_954_057_541),
        (738, 0x1534a30, 0x1534ba0, 848_622_954_058_751),
        (739, 0x1536288, 0x1536528, 848_622_954_064_027),
        // pg_replication_origin_xact_setup('0/ABCDEF12', '2024-01-02 03:04:05+00') sets the
        // commit time: 8767 days and 3:04:05 after 2000-01-01.
        (
            740,
            0x1536618,
            0x1536660,
            (8767 * 86_400 + 3 * 3600 + 4 * 60 + 5) * 1_000_000,
        ),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len() % 2 == 0, "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
            .collect()
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// (row LSN, message bytes) of a capture fixture; lines starting with `#` are comments.
    fn fixture(text: &str) -> Vec<(Lsn, Bytes)> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (lsn, data) = l.trim().split_once(' ').expect("line is `LSN HEX`");
                (lsn.parse().unwrap(), Bytes::from(unhex(data)))
            })
            .collect()
    }

    fn decoded(text: &str) -> Vec<(Lsn, Message)> {
        fixture(text)
            .into_iter()
            .map(|(lsn, data)| {
                let msg =
                    decode(data.clone()).unwrap_or_else(|e| panic!("{lsn} {}: {e}", to_hex(&data)));
                (lsn, msg)
            })
            .collect()
    }

    fn text(s: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn bin(b: &[u8]) -> TupleValue {
        TupleValue::Binary(Bytes::copy_from_slice(b))
    }

    fn jsonb(s: &str) -> TupleValue {
        bin(&[&[1u8][..], s.as_bytes()].concat())
    }

    fn col(flags: u8, name: &str, type_oid: u32, type_modifier: i32) -> Column {
        Column {
            flags,
            name: name.to_owned(),
            type_oid,
            type_modifier,
        }
    }

    fn items_relation() -> Relation {
        Relation {
            id: ITEMS_OID,
            namespace: "public".into(),
            name: "items".into(),
            replica_identity: Relation::IDENTITY_DEFAULT,
            columns: vec![
                col(1, "id", 2950, -1),         // uuid, the primary key
                col(0, "name", 25, -1),         // text
                col(0, "code", 1043, 4 + 16),   // varchar(16): VARHDRSZ + 16
                col(0, "payload", 3802, -1),    // jsonb
                col(0, "blob", 17, -1),         // bytea
                col(0, "qty", 23, -1),          // int4
                col(0, "created_at", 1184, -1), // timestamptz
                col(0, "note", 25, -1),
                col(0, "big", 25, -1),
                col(0, "feeling", MOOD_OID, -1), // enum mood
            ],
        }
    }

    fn outbox_relation() -> Relation {
        Relation {
            id: OUTBOX_OID,
            namespace: "public".into(),
            name: "outbox_events".into(),
            replica_identity: Relation::IDENTITY_FULL,
            // With REPLICA IDENTITY FULL every column is flagged as part of the key.
            columns: vec![
                col(1, "id", 20, -1),
                col(1, "aggregatetype", 1043, 4 + 255),
                col(1, "aggregateid", 25, -1),
                col(1, "payload", 3802, -1),
            ],
        }
    }

    fn mood_type() -> TypeMessage {
        TypeMessage {
            id: MOOD_OID,
            namespace: "public".into(),
            name: "mood".into(),
        }
    }

    /// Checks the message sequence, every Begin/Commit pair, Relation and Type message, and the
    /// server-reported row LSNs; identical for the text and the binary capture.
    fn check_structure(msgs: &[(Lsn, Message)]) {
        let kinds: Vec<&str> = msgs.iter().map(|(_, m)| m.kind()).collect();
        assert_eq!(kinds, KINDS);

        let mut txns = TXNS.iter();
        let mut open: Option<&(u32, u64, u64, i64)> = None;
        for (row_lsn, msg) in msgs {
            match msg {
                Message::Begin(b) => {
                    assert!(open.is_none(), "nested Begin at {row_lsn}");
                    let t = txns.next().expect("more transactions than expected");
                    assert_eq!(
                        b,
                        &Begin {
                            final_lsn: Lsn(t.1),
                            commit_time_us: t.3,
                            xid: t.0
                        }
                    );
                    open = Some(t);
                }
                Message::Commit(c) => {
                    let t = open.take().expect("Commit without Begin");
                    assert_eq!(
                        c,
                        &Commit {
                            flags: 0,
                            commit_lsn: Lsn(t.1),
                            end_lsn: Lsn(t.2),
                            commit_time_us: t.3
                        }
                    );
                    // The peek function reports a commit at its end LSN.
                    assert_eq!(*row_lsn, c.end_lsn);
                }
                Message::Relation(r) if r.id == ITEMS_OID => assert_eq!(r, &items_relation()),
                Message::Relation(r) => assert_eq!(r, &outbox_relation()),
                Message::Type(t) => assert_eq!(t, &mood_type()),
                Message::LogicalMessage(m) => assert_eq!(*row_lsn, m.lsn),
                _ => assert!(open.is_some(), "change outside a transaction at {row_lsn}"),
            }
        }
        assert!(txns.next().is_none() && open.is_none());

        // Messages without tuples.
        assert_eq!(
            msgs[20].1,
            Message::LogicalMessage(LogicalMessage {
                transactional: true,
                lsn: Lsn(0x1533c28),
                prefix: "outbox".into(),
                content: Bytes::from_static(br#"{"a":1}"#),
            })
        );
        assert_eq!(
            msgs[22].1,
            Message::LogicalMessage(LogicalMessage {
                transactional: false,
                lsn: Lsn(0x1533c98),
                prefix: "audit".into(),
                content: Bytes::from_static(b"plain"),
            })
        );
        assert_eq!(
            msgs[31].1,
            Message::Truncate(Truncate {
                options: 0,
                relation_ids: vec![OUTBOX_OID]
            })
        );
        assert_eq!(
            msgs[37].1,
            Message::Truncate(Truncate {
                options: Truncate::CASCADE | Truncate::RESTART_IDENTITY,
                relation_ids: vec![ITEMS_OID, OUTBOX_OID]
            })
        );
        assert_eq!(
            msgs[40].1,
            Message::Origin(Origin {
                commit_lsn: Lsn(0xABCD_EF12),
                name: "upstream".into()
            })
        );
    }

    /// The TOASTed `big` column: md5('1') || ... || md5('200').
    fn check_big(value: &TupleValue) {
        let b = value.as_bytes().expect("big has a value");
        assert_eq!(b.len(), 6400);
        assert!(b.starts_with(MD5_1.as_bytes()) && b.ends_with(MD5_200.as_bytes()));
        assert!(b.iter().all(u8::is_ascii_hexdigit));
    }

    fn insert(msg: &Message) -> &Insert {
        match msg {
            Message::Insert(i) => i,
            other => panic!("expected Insert, got {other:?}"),
        }
    }

    #[test]
    fn captured_text_stream() {
        let msgs = decoded(TEXT);
        check_structure(&msgs);

        let ts = "2024-05-06 07:08:09.123456+00";
        let first = insert(&msgs[3].1);
        assert_eq!(first.relation_id, ITEMS_OID);
        check_big(&first.new.0[8]);
        assert!(matches!(first.new.0[8], TupleValue::Text(_)));
        let mut row = vec![
            text(UUID_A),
            text("widget"),
            text("W-1"),
            text(PAYLOAD),
            text("\\xdeadbeef00ff"),
            text("42"),
            text(ts),
            Null,
            first.new.0[8].clone(),
            text("happy"),
        ];
        assert_eq!(first.new, TupleData(row.clone()));

        assert_eq!(
            msgs[7].1,
            Message::Insert(Insert {
                relation_id: OUTBOX_OID,
                new: TupleData(vec![
                    text("1"),
                    text("order"),
                    text("o-1"),
                    text(r#"{"total": 10}"#)
                ]),
            })
        );

        // Key unchanged: no old tuple; the TOASTed value was not rewritten, so it is not sent.
        row[5] = text("43");
        row[8] = UnchangedToast;
        assert_eq!(
            msgs[10].1,
            Message::Update(Update {
                relation_id: ITEMS_OID,
                old: None,
                new: TupleData(row.clone()),
            })
        );

        // Key changed: the old key is sent, non-key columns as NULL.
        let mut old_key = vec![Null; 10];
        old_key[0] = text(UUID_A);
        row[0] = text(UUID_B);
        row[5] = text("44");
        assert_eq!(
            msgs[13].1,
            Message::Update(Update {
                relation_id: ITEMS_OID,
                old: Some(OldTuple::Key(TupleData(old_key.clone()))),
                new: TupleData(row),
            })
        );

        // REPLICA IDENTITY FULL: the whole old row.
        assert_eq!(
            msgs[16].1,
            Message::Update(Update {
                relation_id: OUTBOX_OID,
                old: Some(OldTuple::Full(TupleData(vec![
                    text("1"),
                    text("order"),
                    text("o-1"),
                    text(r#"{"total": 10}"#)
                ]))),
                new: TupleData(vec![
                    text("1"),
                    text("order"),
                    text("o-1"),
                    text(r#"{"total": 11}"#)
                ]),
            })
        );

        let outbox2 = TupleData(vec![text("2"), text("order"), text("o-2"), Null]);
        assert_eq!(
            msgs[19].1,
            Message::Insert(Insert {
                relation_id: OUTBOX_OID,
                new: outbox2.clone()
            })
        );

        old_key[0] = text(UUID_B);
        assert_eq!(
            msgs[24].1,
            Message::Delete(Delete {
                relation_id: ITEMS_OID,
                old: OldTuple::Key(TupleData(old_key)),
            })
        );
        assert_eq!(
            msgs[27].1,
            Message::Delete(Delete {
                relation_id: OUTBOX_OID,
                old: OldTuple::Full(outbox2),
            })
        );

        assert_eq!(
            msgs[42].1,
            Message::Insert(Insert {
                relation_id: OUTBOX_OID,
                new: TupleData(vec![text("3"), text("user"), text("u-3"), text("[]")]),
            })
        );
    }

    #[test]
    fn captured_binary_stream() {
        let msgs = decoded(BINARY);
        check_structure(&msgs);

        // Everything but the tuple values is identical to the text-mode capture.
        for ((_, b), (_, t)) in msgs.iter().zip(decoded(TEXT).iter()) {
            if !matches!(
                b,
                Message::Insert(_) | Message::Update(_) | Message::Delete(_)
            ) {
                assert_eq!(b, t);
            }
        }

        let first = insert(&msgs[3].1);
        assert_eq!(first.relation_id, ITEMS_OID);
        check_big(&first.new.0[8]);
        // text's binary send format is its text: the same bytes as in the text capture.
        assert_eq!(
            first.new.0[8].as_bytes(),
            insert(&decoded(TEXT)[3].1).new.0[8].as_bytes()
        );
        let mut row = vec![
            bin(&UUID_A_BIN),
            bin(b"widget"),
            bin(b"W-1"),
            jsonb(PAYLOAD), // jsonb binary format: version byte 1, then the text
            bin(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
            bin(&42i32.to_be_bytes()),
            bin(&CREATED_AT_US.to_be_bytes()),
            Null,
            first.new.0[8].clone(),
            bin(b"happy"), // enums are sent as their label
        ];
        assert_eq!(first.new, TupleData(row.clone()));

        assert_eq!(
            insert(&msgs[7].1).new,
            TupleData(vec![
                bin(&1i64.to_be_bytes()),
                bin(b"order"),
                bin(b"o-1"),
                jsonb(r#"{"total": 10}"#)
            ])
        );

        let mut old_key = vec![Null; 10];
        old_key[0] = bin(&UUID_A_BIN);
        row[0] = bin(&UUID_B_BIN);
        row[5] = bin(&44i32.to_be_bytes());
        row[8] = UnchangedToast;
        assert_eq!(
            msgs[13].1,
            Message::Update(Update {
                relation_id: ITEMS_OID,
                old: Some(OldTuple::Key(TupleData(old_key))),
                new: TupleData(row),
            })
        );

        assert_eq!(
            msgs[27].1,
            Message::Delete(Delete {
                relation_id: OUTBOX_OID,
                old: OldTuple::Full(TupleData(vec![
                    bin(&2i64.to_be_bytes()),
                    bin(b"order"),
                    bin(b"o-2"),
                    Null
                ])),
            })
        );
    }

    #[test]
    fn values_are_zero_copy_slices_of_the_input() {
        let rows = fixture(TEXT);
        let within = |outer: &Bytes, inner: &Bytes| {
            let start = outer.as_ptr() as usize;
            let p = inner.as_ptr() as usize;
            p >= start && p + inner.len() <= start + outer.len()
        };
        let data = rows[3].1.clone();
        let msg = decode(data.clone()).unwrap();
        let values = &insert(&msg).new.0;
        for v in values {
            if let Some(b) = v.as_bytes() {
                assert!(within(&data, b));
            }
        }
        let data = rows[20].1.clone();
        match decode(data.clone()).unwrap() {
            Message::LogicalMessage(m) => assert!(within(&data, &m.content)),
            other => panic!("{other:?}"),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Hand-built messages.
    // ---------------------------------------------------------------------------------------

    /// Builds a message the way pgoutput's `logicalrep_write_*` functions do.
    struct W(Vec<u8>);

    impl W {
        fn tag(tag: u8) -> Self {
            W(vec![tag])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn raw(mut self, v: &[u8]) -> Self {
            self.0.extend_from_slice(v);
            self
        }
        fn i16(self, v: i16) -> Self {
            self.raw(&v.to_be_bytes())
        }
        fn u32(self, v: u32) -> Self {
            self.raw(&v.to_be_bytes())
        }
        fn i32(self, v: i32) -> Self {
            self.raw(&v.to_be_bytes())
        }
        fn u64(self, v: u64) -> Self {
            self.raw(&v.to_be_bytes())
        }
        fn i64(self, v: i64) -> Self {
            self.raw(&v.to_be_bytes())
        }
        fn str(self, s: &str) -> Self {
            self.raw(s.as_bytes()).u8(0)
        }
        /// A `t` or `b` tuple value.
        fn val(self, kind: u8, v: &[u8]) -> Self {
            self.u8(kind).i32(v.len() as i32).raw(v)
        }
        fn build(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

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

    // ---------------------------------------------------------------------------------------
    // Robustness: no input makes the decoder panic.
    // ---------------------------------------------------------------------------------------

    /// Decodes `data`, failing the test with the input in hex if the decoder panics.
    fn decode_no_panic(data: &[u8]) -> Result<Message, DecodeError> {
        let bytes = Bytes::copy_from_slice(data);
        catch_unwind(AssertUnwindSafe(|| decode(bytes)))
            .unwrap_or_else(|_| panic!("decode panicked on {}", to_hex(data)))
    }

    fn all_captured() -> Vec<Bytes> {
        fixture(TEXT)
            .into_iter()
            .chain(fixture(BINARY))
            .map(|(_, data)| data)
            .collect()
    }

    #[test]
    fn every_strict_prefix_of_a_captured_message_is_an_error() {
        for data in all_captured() {
            assert!(decode(data.clone()).is_ok());
            for len in 0..data.len() {
                assert!(
                    decode_no_panic(&data[..len]).is_err(),
                    "prefix {len} of {} decoded",
                    to_hex(&data)
                );
            }
        }
    }

    /// xorshift64*: a small deterministic generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform-enough in `0..n` (`n > 0`).
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn mutated_messages_never_panic() {
        const TAGS: &[u8] = b"BCORYIUDTMSEcAbPKrpNnutb";
        const INTERESTING_BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'n', b'u', b't', b'b', b'N'];
        const INTERESTING_I32: &[i32] = &[0, 1, -1, 2, 7, 255, 4096, i32::MAX, i32::MIN];
        let messages = all_captured();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut ok, mut err) = (0usize, 0usize);
        for _ in 0..20_000 {
            let mut data = messages[rng.below(messages.len())].to_vec();
            for _ in 0..1 + rng.below(4) {
                let len = data.len();
                match rng.below(9) {
                    0 if len > 0 => {
                        let i = rng.below(len);
                        data[i] ^= 1 << rng.below(8);
                    }
                    1 if len > 0 => {
                        let i = rng.below(len);
                        data[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
                    }
                    2 => data.truncate(rng.below(len + 1)),
                    3 => data.insert(rng.below(len + 1), rng.next() as u8),
                    4 if len > 0 => {
                        data.remove(rng.below(len));
                    }
                    5 if len >= 4 => {
                        // Overwrite what may be a length, count or OID.
                        let i = rng.below(len - 3);
                        let v = INTERESTING_I32[rng.below(INTERESTING_I32.len())];
                        data[i..i + 4].copy_from_slice(&v.to_be_bytes());
                    }
                    6 => {
                        for _ in 0..1 + rng.below(8) {
                            data.push(rng.next() as u8);
                        }
                    }
                    7 if len > 0 => data[0] = TAGS[rng.below(TAGS.len())],
                    8 => {
                        // Pure noise behind a valid tag.
                        data = vec![TAGS[rng.below(TAGS.len())]];
                        for _ in 0..rng.below(40) {
                            data.push(rng.next() as u8);
                        }
                    }
                    _ => {}
                }
            }
            match decode_no_panic(&data) {
                Ok(_) => ok += 1,
                Err(e) => {
                    // Every error renders without panicking too.
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
        // The loop exercised both outcomes (mutating a value's bytes leaves a valid message).
        assert!(ok > 100 && err > 1000, "ok {ok}, err {err}");
    }
}
