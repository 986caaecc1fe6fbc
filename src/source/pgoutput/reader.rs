//! [`Reader`]: the bounds-checked big-endian cursor the decoder reads one message with (integers,
//! LSNs, NUL-terminated strings, counted byte strings), every short read a
//! [`DecodeError::Truncated`] naming the field.
//!
//! Owns the primitive reads only; which fields a message has is [`super::decode`]'s.

use bytes::Bytes;

use super::{Column, DecodeError, Relation, TupleData, TupleValue};
use crate::lsn::Lsn;

/// Bounds-checked big-endian cursor over one message.
pub(super) struct Reader<'a> {
    pub(super) data: &'a Bytes,
    /// Invariant: `pos <= data.len()`.
    pub(super) pos: usize,
    pub(super) message: &'static str,
}

impl Reader<'_> {
    pub(super) fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn remaining(&self) -> usize {
        self.rest().len()
    }

    pub(super) fn truncated(&self, field: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            message: self.message,
            field,
            needed,
            available: self.remaining(),
        }
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let out: [u8; N] = self
            .rest()
            .get(..N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| self.truncated(field, N))?;
        self.pos += N;
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub(super) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.array(field).map(i16::from_be_bytes)
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_be_bytes)
    }

    pub(super) fn lsn(&mut self, field: &'static str) -> Result<Lsn, DecodeError> {
        self.array(field).map(|b| Lsn(u64::from_be_bytes(b)))
    }

    /// An Int32 length that must not be negative.
    pub(super) fn length(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let value = self.i32(field)?;
        usize::try_from(value).map_err(|_| DecodeError::NegativeLength {
            message: self.message,
            field,
            value,
        })
    }

    /// An Int32 count that must not be negative.
    pub(super) fn count32(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        self.length(field)
    }

    /// An Int16 count that must not be negative.
    pub(super) fn count16(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let value = self.i16(field)?;
        usize::try_from(value).map_err(|_| DecodeError::NegativeLength {
            message: self.message,
            field,
            value: i32::from(value),
        })
    }

    /// `len` bytes as a zero-copy slice of the input.
    pub(super) fn bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(self.truncated(field, len));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.data.slice(start..self.pos))
    }

    /// A NUL-terminated UTF-8 string.
    pub(super) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
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

    pub(super) fn expect_marker(
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

    pub(super) fn relation(&mut self) -> Result<Relation, DecodeError> {
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
    pub(super) fn tuple(&mut self, tuple: &'static str) -> Result<TupleData, DecodeError> {
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

    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                message: self.message,
                count,
            }),
        }
    }
}
