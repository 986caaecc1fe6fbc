//! The messages [`super::decode`] returns: one type per pgoutput message (Begin, Commit,
//! Origin, Relation, Type, Insert, Update, Delete, Truncate, logical decoding messages) and the
//! row data they carry, column values as zero-copy [`Bytes`] slices of the input.
//!
//! What the router, the pipeline and the snapshot reader see of the decoder; owns the types only.

use bytes::Bytes;

use super::Kind;
use crate::lsn::Lsn;

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
