//! Pure wire encoding and decoding for the walsender connection: no I/O, unit-tested.
//!
//! Owns: framing of backend messages (including `CopyBothResponse`, which
//! `postgres_protocol::message::backend::Message::parse` does not know), the CopyData payloads of
//! streaming replication (`w` XLogData, `k` primary keepalive, `r` standby status update), the
//! Postgres epoch clock, and the quoting of `START_REPLICATION` commands.
//!
//! Reference: <https://www.postgresql.org/docs/current/protocol-replication.html>.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::message::backend::Message;

use super::error::SourceError;
use super::pgoutput::PG_EPOCH_UNIX_US;
use super::quote::{quote_ident, quote_literal};
use crate::lsn::Lsn;

/// Tag of `CopyBothResponse`, the answer to `START_REPLICATION`.
pub const COPY_BOTH_RESPONSE_TAG: u8 = b'W';

/// Largest backend message accepted (Postgres' own limit for one allocation is 1 GiB).
pub const MAX_MESSAGE_LEN: usize = (1 << 30) + (1 << 16);

/// One message of the replication stream, as the server sent it inside `CopyData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    /// `w`: a chunk of WAL data; for logical replication, one output-plugin message (pgoutput).
    XLogData {
        /// WAL position where the data starts (for pgoutput, the LSN of the change / commit).
        wal_start: Lsn,
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// Server clock when sent, in µs since 2000-01-01 UTC.
        send_time_us: i64,
        /// The payload (pgoutput message, first byte is its type: `B`, `I`, `C`, ...).
        data: Bytes,
    },
    /// `k`: the server is alive; when `reply_requested`, answer with a status update at once or
    /// the server disconnects after `wal_sender_timeout`.
    Keepalive {
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// Server clock when sent, in µs since 2000-01-01 UTC.
        send_time_us: i64,
        /// The server asks for an immediate standby status update.
        reply_requested: bool,
    },
}

/// A complete backend message taken off the read buffer.
pub enum Frame {
    /// `CopyBothResponse` (`W`); its column formats are irrelevant for replication.
    CopyBothResponse,
    /// Anything `postgres-protocol` can parse.
    Message(Message),
}

/// Takes one complete backend message off the front of `buf`, or returns `Ok(None)` (having
/// reserved room for the rest) when `buf` does not hold a complete one yet. Never consumes a
/// partial message, so a caller that reads with `read_buf` and then calls this is cancel-safe.
pub fn parse_frame(buf: &mut BytesMut) -> Result<Option<Frame>, SourceError> {
    if buf.len() < 5 {
        buf.reserve(5 - buf.len());
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 {
        return Err(SourceError::Protocol(format!(
            "backend message {:?} has invalid length {len}",
            char::from(tag)
        )));
    }
    if len > MAX_MESSAGE_LEN {
        return Err(SourceError::Protocol(format!(
            "backend message {:?} of {len} bytes exceeds the limit of {MAX_MESSAGE_LEN}",
            char::from(tag)
        )));
    }
    let total = len + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if tag == COPY_BOTH_RESPONSE_TAG {
        buf.advance(total);
        return Ok(Some(Frame::CopyBothResponse));
    }
    let mut frame = buf.split_to(total);
    match Message::parse(&mut frame) {
        Ok(Some(msg)) => Ok(Some(Frame::Message(msg))),
        Ok(None) => Err(SourceError::Protocol(format!(
            "backend message {:?} could not be parsed although complete",
            char::from(tag)
        ))),
        Err(e) => Err(SourceError::Protocol(format!(
            "malformed backend message {:?}: {e}",
            char::from(tag)
        ))),
    }
}

/// Decodes the payload of a `CopyData` sent by the walsender. `Ok(None)` for message kinds this
/// program does not know (newer servers may add some): the caller skips them.
pub fn decode_copy_data(payload: Bytes) -> Result<Option<ReplicationMessage>, SourceError> {
    let Some(&kind) = payload.first() else {
        return Err(SourceError::Protocol("empty CopyData message".to_string()));
    };
    match kind {
        b'w' => {
            if payload.len() < 25 {
                return Err(SourceError::Protocol(format!(
                    "XLogData message of {} bytes is shorter than its 25-byte header",
                    payload.len()
                )));
            }
            let mut header = &payload[1..25];
            let wal_start = Lsn(header.get_u64());
            let wal_end = Lsn(header.get_u64());
            let send_time_us = header.get_i64();
            Ok(Some(ReplicationMessage::XLogData {
                wal_start,
                wal_end,
                send_time_us,
                data: payload.slice(25..),
            }))
        }
        b'k' => {
            if payload.len() != 18 {
                return Err(SourceError::Protocol(format!(
                    "primary keepalive message has {} bytes, expected 18",
                    payload.len()
                )));
            }
            let mut body = &payload[1..];
            let wal_end = Lsn(body.get_u64());
            let send_time_us = body.get_i64();
            let reply_requested = body.get_u8() != 0;
            Ok(Some(ReplicationMessage::Keepalive {
                wal_end,
                send_time_us,
                reply_requested,
            }))
        }
        _ => Ok(None),
    }
}

/// Encodes a standby status update (`r`), the CopyData payload only (34 bytes).
pub fn encode_status_update(
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    client_time_us: i64,
    reply_requested: bool,
) -> [u8; 34] {
    let mut out = [0u8; 34];
    let mut buf = &mut out[..];
    buf.put_u8(b'r');
    buf.put_u64(write.0);
    buf.put_u64(flush.0);
    buf.put_u64(apply.0);
    buf.put_i64(client_time_us);
    buf.put_u8(u8::from(reply_requested));
    out
}

/// Decodes a standby status update payload (the inverse of [`encode_status_update`]); returns
/// `(write, flush, apply, client_time_us, reply_requested)`. Used by tests and tooling.
pub fn decode_status_update(payload: &[u8]) -> Option<(Lsn, Lsn, Lsn, i64, bool)> {
    if payload.len() != 34 || payload[0] != b'r' {
        return None;
    }
    let mut body = &payload[1..];
    Some((
        Lsn(body.get_u64()),
        Lsn(body.get_u64()),
        Lsn(body.get_u64()),
        body.get_i64(),
        body.get_u8() != 0,
    ))
}

/// Encodes an XLogData payload (`w`); the inverse of [`decode_copy_data`], for tests and tooling.
pub fn encode_xlog_data(wal_start: Lsn, wal_end: Lsn, send_time_us: i64, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(25 + data.len());
    buf.put_u8(b'w');
    buf.put_u64(wal_start.0);
    buf.put_u64(wal_end.0);
    buf.put_i64(send_time_us);
    buf.put_slice(data);
    buf.freeze()
}

/// Encodes a primary keepalive payload (`k`); the inverse of [`decode_copy_data`].
pub fn encode_keepalive(wal_end: Lsn, send_time_us: i64, reply_requested: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(18);
    buf.put_u8(b'k');
    buf.put_u64(wal_end.0);
    buf.put_i64(send_time_us);
    buf.put_u8(u8::from(reply_requested));
    buf.freeze()
}

/// Wraps a payload in a frontend `CopyData` message (`d`, length, payload).
pub fn copy_data_frame(payload: &[u8], out: &mut BytesMut) {
    out.reserve(5 + payload.len());
    out.put_u8(b'd');
    // Payloads built here are tiny (status updates); the cast cannot truncate.
    out.put_u32((payload.len() + 4) as u32);
    out.put_slice(payload);
}

/// The current time in µs since the Postgres epoch (2000-01-01 UTC).
pub fn pg_now_us() -> i64 {
    unix_us_to_pg(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

/// Converts µs since the Unix epoch to µs since the Postgres epoch.
pub fn unix_us_to_pg(unix_us: i64) -> i64 {
    unix_us.saturating_sub(PG_EPOCH_UNIX_US)
}

/// Converts µs since the Postgres epoch to a `SystemTime`.
pub fn pg_us_to_system_time(pg_us: i64) -> SystemTime {
    let unix_us = pg_us.saturating_add(PG_EPOCH_UNIX_US);
    if unix_us >= 0 {
        UNIX_EPOCH + std::time::Duration::from_micros(unix_us.unsigned_abs())
    } else {
        UNIX_EPOCH - std::time::Duration::from_micros(unix_us.unsigned_abs())
    }
}

/// Builds `START_REPLICATION SLOT "slot" LOGICAL X/Y ("name" 'value', ...)`.
///
/// Fails for names or values containing a NUL byte (the protocol cannot carry them) and for an
/// empty slot name.
pub fn start_replication_command(
    slot: &str,
    start: Lsn,
    options: &[(&str, &str)],
) -> Result<String, SourceError> {
    if slot.is_empty() {
        return Err(SourceError::InvalidArgument(
            "the replication slot name is empty".to_string(),
        ));
    }
    for s in std::iter::once(slot).chain(options.iter().flat_map(|(n, v)| [*n, *v])) {
        if s.contains('\0') {
            return Err(SourceError::InvalidArgument(format!(
                "{s:?} contains a NUL byte and cannot be sent to Postgres"
            )));
        }
    }
    let mut cmd = format!(
        "START_REPLICATION SLOT {} LOGICAL {start}",
        quote_ident(slot)
    );
    if !options.is_empty() {
        let opts: Vec<String> = options
            .iter()
            .map(|(name, value)| format!("{} {}", quote_ident(name), quote_literal(value)))
            .collect();
        cmd.push_str(" (");
        cmd.push_str(&opts.join(", "));
        cmd.push(')');
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlog_data_round_trip() {
        let payload = encode_xlog_data(Lsn(0x1_0000_0010), Lsn(0x1_0000_0100), 123_456, b"Bxyz");
        assert_eq!(payload.len(), 25 + 4);
        assert_eq!(payload[0], b'w');
        assert_eq!(
            decode_copy_data(payload).unwrap(),
            Some(ReplicationMessage::XLogData {
                wal_start: Lsn(0x1_0000_0010),
                wal_end: Lsn(0x1_0000_0100),
                send_time_us: 123_456,
                data: Bytes::from_static(b"Bxyz"),
            })
        );
    }

    #[test]
    fn xlog_data_exact_bytes() {
        let mut raw = vec![b'w'];
        raw.extend_from_slice(&1u64.to_be_bytes());
        raw.extend_from_slice(&2u64.to_be_bytes());
        raw.extend_from_slice(&(-3i64).to_be_bytes());
        let msg = decode_copy_data(Bytes::from(raw)).unwrap().unwrap();
        assert_eq!(
            msg,
            ReplicationMessage::XLogData {
                wal_start: Lsn(1),
                wal_end: Lsn(2),
                send_time_us: -3,
                data: Bytes::new(),
            }
        );
    }

    #[test]
    fn keepalive_round_trip() {
        for reply in [false, true] {
            let payload = encode_keepalive(Lsn(0xABCD), 42, reply);
            assert_eq!(payload.len(), 18);
            assert_eq!(
                decode_copy_data(payload).unwrap(),
                Some(ReplicationMessage::Keepalive {
                    wal_end: Lsn(0xABCD),
                    send_time_us: 42,
                    reply_requested: reply,
                })
            );
        }
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        assert!(decode_copy_data(Bytes::new()).is_err());
        assert!(decode_copy_data(Bytes::from_static(b"w123")).is_err());
        assert!(decode_copy_data(Bytes::from_static(b"k123")).is_err());
        let mut long = encode_keepalive(Lsn(1), 1, true).to_vec();
        long.push(0);
        assert!(decode_copy_data(Bytes::from(long)).is_err());
        // Unknown kinds are skipped, not fatal.
        assert_eq!(
            decode_copy_data(Bytes::from_static(b"s12345")).unwrap(),
            None
        );
    }

    #[test]
    fn status_update_layout() {
        let out = encode_status_update(Lsn(1), Lsn(2), Lsn(3), 4, true);
        let mut expected = vec![b'r'];
        for v in [1u64, 2, 3, 4] {
            expected.extend_from_slice(&v.to_be_bytes());
        }
        expected.push(1);
        assert_eq!(out.to_vec(), expected);
        assert_eq!(
            decode_status_update(&out),
            Some((Lsn(1), Lsn(2), Lsn(3), 4, true))
        );
        assert_eq!(
            encode_status_update(Lsn(1), Lsn(2), Lsn(3), 4, false)[33],
            0
        );
        assert_eq!(decode_status_update(&out[..33]), None);
    }

    #[test]
    fn copy_data_framing() {
        let mut out = BytesMut::new();
        copy_data_frame(b"abc", &mut out);
        assert_eq!(&out[..], b"d\x00\x00\x00\x07abc");
    }

    #[test]
    fn pg_epoch() {
        assert_eq!(unix_us_to_pg(PG_EPOCH_UNIX_US), 0);
        assert_eq!(
            pg_us_to_system_time(0),
            UNIX_EPOCH + std::time::Duration::from_secs(946_684_800)
        );
        let now = pg_now_us();
        // Some time after 2020-01-01 (631152000 s after the Postgres epoch).
        assert!(now > 631_152_000_000_000, "{now}");
        assert!(pg_us_to_system_time(i64::MIN) <= UNIX_EPOCH);
    }

    #[test]
    fn start_replication_quoting() {
        let cmd = start_replication_command(
            "outboxd",
            Lsn(0x16B3748),
            &[("proto_version", "1"), ("publication_names", "\"outboxd\"")],
        )
        .unwrap();
        assert_eq!(
            cmd,
            "START_REPLICATION SLOT \"outboxd\" LOGICAL 0/16B3748 \
             (\"proto_version\" '1', \"publication_names\" '\"outboxd\"')"
        );
        assert_eq!(
            start_replication_command("s", Lsn::ZERO, &[]).unwrap(),
            "START_REPLICATION SLOT \"s\" LOGICAL 0/0"
        );
        assert!(start_replication_command("", Lsn::ZERO, &[]).is_err());
        assert!(start_replication_command("s", Lsn::ZERO, &[("a", "b\0")]).is_err());
    }

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn frames_are_taken_only_when_complete() {
        let mut wire = frame(b'W', &[0, 0, 0]);
        wire.extend(frame(b'd', &encode_keepalive(Lsn(7), 1, false)));
        wire.extend(frame(b'Z', b"I"));
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        // Feed one byte at a time: nothing is consumed until a frame is complete.
        for b in wire {
            buf.put_u8(b);
            while let Some(f) = parse_frame(&mut buf).unwrap() {
                seen.push(match f {
                    Frame::CopyBothResponse => "W".to_string(),
                    Frame::Message(Message::CopyData(body)) => {
                        let msg = decode_copy_data(body.into_bytes()).unwrap();
                        format!("{msg:?}")
                    }
                    Frame::Message(Message::ReadyForQuery(_)) => "Z".to_string(),
                    Frame::Message(_) => "other".to_string(),
                });
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], "W");
        assert!(seen[1].contains("Keepalive"), "{}", seen[1]);
        assert_eq!(seen[2], "Z");
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut buf = BytesMut::from(&b"d\x00\x00\x00\x02"[..]);
        assert!(parse_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
        assert!(parse_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&frame(b'?', b"")[..]);
        assert!(parse_frame(&mut buf).is_err());
    }
}
