//! Debezium's source offset, and the rule that skips what it says Debezium already published
//! (`outboxd run --take-over-offsets`, `[takeover]`). Pure: the caller reads the offsets topic or
//! file and hands the bytes in.
//!
//! # What Debezium records
//! Kafka Connect stores a source connector's offsets under the key
//! `["<connector name>",{"server":"<topic.prefix>"}]` (JSON), in the worker's offsets topic
//! (`offset.storage.topic`, distributed mode) or file (`offset.storage.file.filename`: standalone
//! mode and Debezium Server; a Java-serialized `HashMap` of byte arrays, [`parse_offset_file`]).
//! Debezium's PostgreSQL connector writes `{"lsn_commit": C, "lsn": L, "lsn_proc": P, "txId": …,
//! "ts_usec": …, "messageType": …}` with LSNs as numbers. Connect commits an offset only once the
//! producer acknowledged the record it belongs to and every record before it. What the fields
//! hold (read in Debezium's `PostgresStreamingChangeEventSource`, `PostgresOffsetContext` and
//! `WalPositionLocator`, and PostgreSQL's `logical.c`):
//!
//! - `lsn_commit` is the end of the commit record of the last transaction Debezium processed
//!   completely: pgoutput's `Commit.end_lsn`, which its slot is confirmed at. In a change
//!   record's offset it is the commit of the *previous* transaction (in commit order);
//! - `lsn_proc` (and `lsn`) is the WAL position of the last change processed: in a change
//!   record's offset, the change's own, inside the next transaction (`txId` is that
//!   transaction's id, `messageType` the change's kind, e.g. `INSERT`). Transactions interleave
//!   in the WAL, so it may well be *below* `lsn_commit`: a change position is comparable only
//!   with the other changes of its transaction. In an offset taken at a commit (a heartbeat
//!   after it, `messageType` `COMMIT`), all three are that commit's end and `txId` is the
//!   committed transaction's.
//!
//! Debezium resumes (its `WalPositionLocator`) after every transaction that committed at or
//! before `lsn_commit`, and, in the next one, after the change at `lsn_proc`. outboxd skips the
//! same events ([`Taken::skip`]): every transaction whose commit record starts before
//! `lsn_commit` (its Begin's `final_lsn` is then below it: commit records do not overlap), and, in
//! the first transaction after it, when the offset was taken at a change of that very
//! transaction (`messageType` a change, and `txId` its xid), the changes at or before
//! `lsn_proc` (a transaction's changes arrive in WAL order). Where several changes share
//! `lsn_proc` (a COPY: one WAL record for many rows), the offset cannot say how many of them
//! Debezium published (unless it has `lsn_events_processed`): outboxd takes the first as
//! published and publishes the others, which may come twice (Debezium itself would skip them
//! all, losing those it had not published). The rule holds at every start, so it is harmless to
//! leave configured; once the slot is past the boundary transaction it skips nothing. Only
//! outbox-table inserts are skipped: they are the records Debezium published.

use std::path::PathBuf;

use serde_json::Value;

use crate::config::{ConfigError, TakeoverConfig};
use crate::lsn::Lsn;

/// Where the connector's offset is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetStore {
    /// Kafka Connect's offsets topic (distributed mode), on the `[kafka]` cluster.
    Topic(String),
    /// Kafka Connect's offset file (standalone mode, Debezium Server).
    File(PathBuf),
}

/// `[takeover]`, resolved: whose offset, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub connector: String,
    pub server: String,
    pub store: OffsetStore,
    /// `read_back`: the margin before the offset's commit time the read-back of the destination
    /// topics starts at (`None`: no read-back). See [`super::tail`].
    pub read_back: Option<std::time::Duration>,
}

impl Takeover {
    /// `None` unless `[takeover] enabled`; then the connector, its server and one store are
    /// required.
    pub fn resolve(config: &TakeoverConfig) -> Result<Option<Takeover>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("takeover.{key}"),
            message: message.into(),
        };
        let named = |v: &Option<String>, key: &str, what: &str| match v.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
            _ => Err(invalid(key, what)),
        };
        let connector = named(
            &config.connector_name,
            "connector_name",
            "the Debezium connector's name is needed (Kafka Connect's name; with a connector JSON, use its REST form {\"name\": …, \"config\": …})",
        )?;
        let server = named(
            &config.server,
            "server",
            "the connector's topic.prefix (database.server.name before Debezium 2) is needed",
        )?;
        let store = match (&config.offsets_topic, &config.offsets_file) {
            (Some(topic), None) if !topic.trim().is_empty() => OffsetStore::Topic(topic.clone()),
            (None, Some(file)) => OffsetStore::File(file.clone()),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "offsets_topic",
                    "give offsets_topic (a distributed worker's offset.storage.topic) or offsets_file (a standalone worker's or Debezium Server's offset.storage.file.filename), not both",
                ))
            }
            _ => {
                return Err(invalid(
                    "offsets_topic",
                    "where the connector's offset is stored is needed: offsets_topic (a distributed worker's offset.storage.topic) or offsets_file (a standalone worker's or Debezium Server's offset.storage.file.filename); with a connector JSON, pass the worker's properties file with --worker-config",
                ))
            }
        };
        let margin = config.read_back_margin_ms.unwrap_or(60_000);
        if margin > 86_400_000 {
            return Err(invalid(
                "read_back_margin_ms",
                "must be at most 86400000 (a day); it only allows for clocks that differ",
            ));
        }
        Ok(Some(Takeover {
            connector,
            server,
            store,
            read_back: config
                .read_back
                .unwrap_or(true)
                .then(|| std::time::Duration::from_millis(margin)),
        }))
    }
}

/// Debezium's offset for one connector, as read from its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebeziumOffset {
    /// `lsn_commit`: the end of the last transaction processed completely.
    pub lsn_commit: Lsn,
    /// `lsn_proc` (`lsn` where absent): the last change processed.
    pub lsn_proc: Lsn,
    /// `txId`: the transaction `lsn_proc` belongs to (`None`: not recorded).
    pub tx_id: Option<u64>,
    /// Whether the offset was taken at a change (`messageType` a change) or at a commit.
    pub at: OffsetAt,
    /// `lsn_events_processed`: how many changes at `lsn_proc` Debezium processed (newer
    /// Debezium versions; `None`: not recorded).
    pub events_at_proc: Option<u64>,
    /// `ts_usec`: the commit time of `lsn_proc`'s transaction, in microseconds since the Unix
    /// epoch (`None`: not recorded).
    pub ts_usec: Option<u64>,
}

/// Where Debezium took its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetAt {
    /// At a change of the transaction after `lsn_commit` (`messageType` `INSERT`, `UPDATE`,
    /// `DELETE`, `TRUNCATE`, `MESSAGE`; or, with no `messageType`, `lsn_proc` differing from
    /// `lsn_commit`): its changes up to `lsn_proc` were published.
    Change,
    /// At a commit, a transaction's begin, or the end of a snapshot: nothing of the next
    /// transaction was published.
    Commit,
}

/// Why an offset could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error("not a Kafka Connect offset file (a Java-serialized HashMap of byte arrays): {0}")]
    File(String),
    #[error("Debezium's offset is not what its PostgreSQL connector writes ({0}); expected JSON with numeric lsn_commit and lsn")]
    Value(String),
}

/// The offsets key of a connector: `["<name>",{"server":"<server>"}]`.
pub fn offset_key(connector: &str, server: &str) -> String {
    serde_json::json!([connector, { "server": server }]).to_string()
}

/// Whether `key` (bytes of the offsets store) is the one of `connector` and `server`: compared as
/// JSON, so spacing does not matter.
pub fn is_key_of(key: &[u8], connector: &str, server: &str) -> bool {
    serde_json::from_slice::<Value>(key)
        .is_ok_and(|k| k == serde_json::json!([connector, { "server": server }]))
}

/// Parses Debezium's offset value (`None` for a tombstone: the offset was deleted).
pub fn parse_offset_value(value: Option<&[u8]>) -> Result<Option<DebeziumOffset>, OffsetError> {
    let Some(bytes) = value else {
        return Ok(None);
    };
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| OffsetError::Value(format!("not JSON: {e}")))?;
    let lsn = |name: &str| -> Result<Option<Lsn>, OffsetError> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .map(|n| Some(Lsn(n)))
                .ok_or_else(|| OffsetError::Value(format!("{name} is {n}, not a number"))),
        }
    };
    let (commit, last, proc) = (lsn("lsn_commit")?, lsn("lsn")?, lsn("lsn_proc")?);
    let tx_id = match v.get("txId") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .ok_or_else(|| OffsetError::Value(format!("txId is {n}, not a number")))?,
        ),
    };
    let events_at_proc = match v.get("lsn_events_processed") {
        None | Some(Value::Null) => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| {
            OffsetError::Value(format!("lsn_events_processed is {n}, not a number"))
        })?),
    };
    let ts_usec = v.get("ts_usec").and_then(Value::as_u64);
    let message_type = v.get("messageType").and_then(Value::as_str);
    let snapshot = v.get("snapshot").and_then(Value::as_bool) == Some(true);
    let Some(lsn_proc) = proc.or(last) else {
        return Err(OffsetError::Value(format!(
            "no lsn_proc/lsn in {}",
            String::from_utf8_lossy(bytes)
        )));
    };
    // A snapshot's offset (`"snapshot": true`, no lsn_commit): nothing streamed yet.
    let lsn_commit = commit.unwrap_or(lsn_proc);
    let at = match message_type {
        _ if snapshot || commit.is_none() => OffsetAt::Commit,
        Some("COMMIT" | "BEGIN") => OffsetAt::Commit,
        Some(_) => OffsetAt::Change,
        // Older versions: at a commit the three positions are that commit's end.
        None if lsn_proc == lsn_commit => OffsetAt::Commit,
        None => OffsetAt::Change,
    };
    Ok(Some(DebeziumOffset {
        lsn_commit,
        lsn_proc,
        tx_id,
        at,
        events_at_proc,
        ts_usec,
    }))
}

/// One entry of an offsets store: the key's bytes, the value's (`None`: a tombstone).
pub type OffsetEntry = (Vec<u8>, Option<Vec<u8>>);

/// The entries of a Kafka Connect offset file: Java serialization of a
/// `java.util.HashMap<byte[], byte[]>` (Kafka Connect's `FileOffsetBackingStore`).
pub fn parse_offset_file(bytes: &[u8]) -> Result<Vec<OffsetEntry>, OffsetError> {
    let mut r = JavaStream::new(bytes);
    r.expect(&[0xAC, 0xED, 0x00, 0x05], "the Java serialization header")?;
    r.expect(&[TC_OBJECT], "an object")?;
    let class = r.class_desc()?;
    r.handles.push(None); // the map object
    if class != "java.util.HashMap" {
        return Err(OffsetError::File(format!(
            "the object is a {class}, not a java.util.HashMap"
        )));
    }
    r.take(8)?; // the fields: float loadFactor, int threshold
    r.expect(&[TC_BLOCKDATA, 8], "HashMap's block data")?;
    r.take(4)?; // capacity
    let size = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..size {
        let key = r
            .byte_array()?
            .ok_or_else(|| OffsetError::File("a null key".into()))?;
        let value = r.byte_array()?;
        entries.push((key, value));
    }
    Ok(entries)
}

const TC_NULL: u8 = 0x70;
const TC_REFERENCE: u8 = 0x71;
const TC_CLASSDESC: u8 = 0x72;
const TC_OBJECT: u8 = 0x73;
const TC_ARRAY: u8 = 0x75;
const TC_BLOCKDATA: u8 = 0x77;
const TC_ENDBLOCKDATA: u8 = 0x78;

/// The few Java serialization grammar rules an offset file uses.
struct JavaStream<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Class names by handle (other handles: `None`).
    handles: Vec<Option<String>>,
}

impl<'a> JavaStream<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        JavaStream {
            bytes,
            at: 0,
            handles: Vec::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OffsetError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| OffsetError::File(format!("cut short at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, OffsetError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, OffsetError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, OffsetError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn expect(&mut self, want: &[u8], what: &str) -> Result<(), OffsetError> {
        let at = self.at;
        if self.take(want.len())? != want {
            return Err(OffsetError::File(format!("expected {what} at byte {at}")));
        }
        Ok(())
    }

    fn utf(&mut self) -> Result<String, OffsetError> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| OffsetError::File("a class name is not UTF-8".into()))
    }

    /// A class descriptor (new, or a reference to one read before): its class name.
    fn class_desc(&mut self) -> Result<String, OffsetError> {
        match self.u8()? {
            TC_CLASSDESC => {
                let name = self.utf()?;
                self.take(8)?; // serialVersionUID
                self.handles.push(Some(name.clone()));
                self.take(1)?; // flags
                let fields = self.u16()?;
                for _ in 0..fields {
                    let type_code = self.u8()?;
                    self.utf()?;
                    if matches!(type_code, b'L' | b'[') {
                        // The field's type name: a string (new or a reference).
                        match self.u8()? {
                            0x74 => {
                                self.utf()?;
                                self.handles.push(None);
                            }
                            TC_REFERENCE => {
                                self.take(4)?;
                            }
                            t => {
                                return Err(OffsetError::File(format!(
                                    "unexpected tag {t:#04x} in a field type"
                                )))
                            }
                        }
                    }
                }
                self.expect(&[TC_ENDBLOCKDATA], "the end of the class annotations")?;
                // The superclass descriptor: none for the classes here.
                self.expect(&[TC_NULL], "no superclass")?;
                // The object (or array) itself gets the next handle: the caller's.
                Ok(name)
            }
            TC_REFERENCE => {
                let handle = self.u32()?.wrapping_sub(0x7E_0000) as usize;
                self.handles.get(handle).cloned().flatten().ok_or_else(|| {
                    OffsetError::File(format!("a reference to handle {handle}, not a class"))
                })
            }
            t => Err(OffsetError::File(format!(
                "unexpected tag {t:#04x} for a class descriptor"
            ))),
        }
    }

    /// A `byte[]` (or null).
    fn byte_array(&mut self) -> Result<Option<Vec<u8>>, OffsetError> {
        match self.u8()? {
            TC_NULL => Ok(None),
            TC_ARRAY => {
                let class = self.class_desc()?;
                if class != "[B" {
                    return Err(OffsetError::File(format!(
                        "an array of {class}, not of bytes"
                    )));
                }
                self.handles.push(None); // the array
                let n = self.u32()? as usize;
                Ok(Some(self.take(n)?.to_vec()))
            }
            t => Err(OffsetError::File(format!(
                "unexpected tag {t:#04x} where a byte array belongs"
            ))),
        }
    }
}

/// The skip rule of a take-over: see the module documentation.
#[derive(Debug, Clone)]
pub struct Taken {
    offset: DebeziumOffset,
    /// The slot's position the stream starts from.
    start: Lsn,
    /// The open transaction is the first one at or after `lsn_commit`.
    in_boundary: bool,
    /// That transaction was seen already (a later one is never the boundary).
    boundary_seen: bool,
    /// The open transaction is skipped whole.
    skipping_whole: bool,
    /// The boundary transaction is the one of Debezium's offset.
    matched: bool,
    /// In it, the changes up to `lsn_proc` are being skipped.
    skipping_processed: bool,
    /// Changes at exactly `lsn_proc` seen in the boundary transaction.
    at_proc: u64,
    /// Of those, published because the offset cannot tell whether Debezium had.
    at_proc_published: u64,
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Publish,
    /// Debezium published it: in a transaction committed before `lsn_commit`.
    SkipCommitted,
    /// Debezium published it: a change at or before `lsn_proc` in the transaction after
    /// `lsn_commit`.
    SkipProcessed,
}

/// The boundary transaction committed: what the rule made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// Whether it was the transaction of Debezium's offset (its changes up to `lsn_proc` were
    /// skipped); false when the offset was taken at a commit, or `txId` named another
    /// transaction.
    pub matched: bool,
    /// Its xid.
    pub xid: u32,
    /// Changes at exactly `lsn_proc` published although one of them may have been Debezium's
    /// (see the module documentation).
    pub at_proc_published: u64,
}

impl Taken {
    /// The rule for `offset`, on a stream that starts at `start` (the slot's confirmed position).
    pub fn new(offset: DebeziumOffset, start: Lsn) -> Taken {
        Taken {
            offset,
            start,
            in_boundary: false,
            boundary_seen: false,
            skipping_whole: false,
            matched: false,
            skipping_processed: false,
            at_proc: 0,
            at_proc_published: 0,
        }
    }

    pub fn offset(&self) -> DebeziumOffset {
        self.offset
    }

    /// A transaction begins; `final_lsn` is its commit record's start (pgoutput's Begin).
    pub fn begin(&mut self, final_lsn: Lsn, xid: u32) {
        self.skipping_whole = final_lsn < self.offset.lsn_commit;
        self.in_boundary = !self.skipping_whole && !self.boundary_seen;
        self.matched = false;
        if self.in_boundary {
            self.boundary_seen = true;
            self.matched = self.offset.at == OffsetAt::Change
                && match self.offset.tx_id {
                    Some(tx_id) => tx_id == u64::from(xid),
                    // Without txId, the first transaction after `lsn_commit` is Debezium's
                    // only when the server sends it: when the stream starts at or before
                    // `lsn_commit` (the slot is confirmed there, Debezium's own confirmation).
                    None => self.start <= self.offset.lsn_commit,
                };
        }
        self.skipping_processed = self.matched;
    }

    /// The open transaction committed. Returns what became of the boundary transaction when this
    /// was it: nothing after it is skipped.
    pub fn commit(&mut self, xid: u32) -> Option<Boundary> {
        let boundary = self.in_boundary.then_some(Boundary {
            matched: self.matched,
            xid,
            at_proc_published: self.at_proc_published,
        });
        self.skipping_whole = false;
        self.in_boundary = false;
        self.matched = false;
        self.skipping_processed = false;
        boundary
    }

    /// An outbox insert of the open transaction, at WAL position `lsn` (its XLogData start).
    pub fn skip(&mut self, lsn: Lsn) -> Verdict {
        if self.skipping_whole {
            return Verdict::SkipCommitted;
        }
        if !self.skipping_processed {
            return Verdict::Publish;
        }
        match lsn.cmp(&self.offset.lsn_proc) {
            std::cmp::Ordering::Less => Verdict::SkipProcessed,
            std::cmp::Ordering::Equal => {
                self.at_proc += 1;
                if self.at_proc <= self.offset.events_at_proc.unwrap_or(1) {
                    Verdict::SkipProcessed
                } else {
                    self.at_proc_published += 1;
                    Verdict::Publish
                }
            }
            std::cmp::Ordering::Greater => {
                // The changes after `lsn_proc`: Debezium had not processed them.
                self.skipping_processed = false;
                Verdict::Publish
            }
        }
    }

    /// Whether the rule can skip anything from a stream that starts at the slot's position:
    /// not when the offset was taken at a commit the slot is already at or past.
    pub fn applies(&self) -> bool {
        self.offset.lsn_commit > self.start
            || (self.offset.at == OffsetAt::Change
                && (self.offset.tx_id.is_some() || self.start <= self.offset.lsn_commit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset file a Kafka Connect 4.3.2 standalone worker wrote for Debezium 3.6.1 (one
    /// connector `outbox-connector`, topic.prefix `dx`; its last record the second change of a
    /// two-row transaction), copied as it was.
    fn file() -> Vec<u8> {
        include_bytes!("testdata/connect-4.3.2-standalone.offsets").to_vec()
    }

    #[test]
    fn the_offset_file_of_a_standalone_worker_is_read() {
        let entries = parse_offset_file(&file()).unwrap();
        assert_eq!(entries.len(), 1);
        let (key, value) = &entries[0];
        assert!(is_key_of(key, "outbox-connector", "dx"));
        assert!(!is_key_of(key, "outbox-connector", "other"));
        assert_eq!(
            parse_offset_value(value.as_deref()).unwrap(),
            Some(DebeziumOffset {
                lsn_commit: Lsn(22449704),
                lsn_proc: Lsn(22449896),
                tx_id: Some(740),
                at: OffsetAt::Change,
                events_at_proc: None,
                ts_usec: Some(1796415373128687),
            })
        );
        for bad in [&b"nope"[..], &file()[..40], &[]] {
            assert!(parse_offset_file(bad).is_err());
        }
    }

    #[test]
    fn the_takeover_section_needs_a_connector_a_server_and_one_store() {
        let mut c = TakeoverConfig::default();
        assert_eq!(Takeover::resolve(&c).unwrap(), None, "off by default");
        c.enabled = true;
        let e = Takeover::resolve(&c).unwrap_err().to_string();
        assert!(e.contains("takeover.connector_name"), "{e}");
        c.connector_name = Some("outbox".into());
        c.server = Some("app".into());
        let e = Takeover::resolve(&c).unwrap_err().to_string();
        assert!(e.contains("--worker-config"), "{e}");
        c.offsets_topic = Some("connect-offsets".into());
        assert_eq!(
            Takeover::resolve(&c).unwrap().unwrap().store,
            OffsetStore::Topic("connect-offsets".into())
        );
        c.offsets_file = Some("/data/offsets".into());
        assert!(Takeover::resolve(&c).is_err(), "both");
        c.offsets_topic = None;
        assert_eq!(
            Takeover::resolve(&c).unwrap().unwrap().store,
            OffsetStore::File("/data/offsets".into())
        );
    }

    #[test]
    fn offset_values_and_keys() {
        assert_eq!(offset_key("c", "s"), r#"["c",{"server":"s"}]"#);
        assert!(is_key_of(br#"[ "c" , { "server" : "s" } ]"#, "c", "s"));
        assert_eq!(parse_offset_value(None).unwrap(), None);
        // A snapshot's offset: only lsn.
        assert_eq!(
            parse_offset_value(Some(
                br#"{"last_snapshot_record":true,"lsn":100,"txId":1,"snapshot":true}"#
            ))
            .unwrap(),
            Some(DebeziumOffset {
                lsn_commit: Lsn(100),
                lsn_proc: Lsn(100),
                tx_id: Some(1),
                at: OffsetAt::Commit,
                events_at_proc: None,
                ts_usec: None,
            })
        );
        let parse = |json: &str| parse_offset_value(Some(json.as_bytes())).unwrap().unwrap();
        // lsn_proc is the last change processed; lsn only stands in for it where it is absent.
        let o =
            parse(r#"{"lsn_proc":300,"lsn":310,"lsn_commit":200,"txId":7,"messageType":"INSERT"}"#);
        assert_eq!(
            (o.lsn_proc, o.tx_id, o.at),
            (Lsn(300), Some(7), OffsetAt::Change)
        );
        // Interleaved transactions: the change lies below the previous commit's end.
        let o =
            parse(r#"{"lsn_proc":150,"lsn":150,"lsn_commit":200,"txId":7,"messageType":"UPDATE"}"#);
        assert_eq!(
            (o.lsn_commit, o.lsn_proc, o.at),
            (Lsn(200), Lsn(150), OffsetAt::Change)
        );
        // Taken at a commit (a heartbeat after it) or at a begin: nothing of the next one.
        for kind in ["COMMIT", "BEGIN"] {
            let o = parse(&format!(
                r#"{{"lsn_proc":200,"lsn":200,"lsn_commit":200,"txId":6,"messageType":"{kind}"}}"#
            ));
            assert_eq!(o.at, OffsetAt::Commit, "{kind}");
        }
        // Older versions without messageType: at a commit the three positions are equal.
        assert_eq!(
            parse(r#"{"lsn":200,"lsn_commit":200}"#).at,
            OffsetAt::Commit
        );
        let o = parse(r#"{"lsn":260,"lsn_commit":200}"#);
        assert_eq!(
            (o.lsn_proc, o.tx_id, o.at),
            (Lsn(260), None, OffsetAt::Change)
        );
        // Newer versions count the changes processed at lsn_proc.
        let o = parse(
            r#"{"lsn_proc":300,"lsn_commit":200,"txId":7,"messageType":"INSERT","lsn_events_processed":2}"#,
        );
        assert_eq!(o.events_at_proc, Some(2));
        assert!(parse_offset_value(Some(br#"{"lsn_proc":1,"lsn_commit":1,"txId":"x"}"#)).is_err());
        assert!(parse_offset_value(Some(b"{}")).is_err());
        assert!(parse_offset_value(Some(br#"{"lsn_commit":"x","lsn":1}"#)).is_err());
        assert!(parse_offset_value(Some(b"not json")).is_err());
    }

    fn change_offset(lsn_commit: u64, lsn_proc: u64, tx_id: Option<u64>) -> DebeziumOffset {
        DebeziumOffset {
            lsn_commit: Lsn(lsn_commit),
            lsn_proc: Lsn(lsn_proc),
            tx_id,
            at: OffsetAt::Change,
            events_at_proc: None,
            ts_usec: None,
        }
    }

    #[test]
    fn transactions_before_the_commit_and_changes_up_to_the_last_one_are_skipped() {
        // Debezium finished the transaction ending at 0x200 and processed the change at 0x260 of
        // the next one (xid 7).
        let mut t = Taken::new(change_offset(0x200, 0x260, Some(7)), Lsn(0x100));
        assert!(t.applies());
        t.begin(Lsn(0x1c0), 6); // commits at 0x1c0..0x200: done
        assert_eq!(t.skip(Lsn(0x180)), Verdict::SkipCommitted);
        assert_eq!(t.commit(6), None, "not the boundary");
        t.begin(Lsn(0x2a0), 7); // the boundary transaction
        assert_eq!(t.skip(Lsn(0x220)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x260)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x270)), Verdict::Publish);
        assert_eq!(
            t.commit(7),
            Some(Boundary {
                matched: true,
                xid: 7,
                at_proc_published: 0
            })
        );
        t.begin(Lsn(0x300), 8); // later transactions are published whole
        assert_eq!(
            t.skip(Lsn(0x240)),
            Verdict::Publish,
            "an earlier-LSN change of a later transaction"
        );
        assert_eq!(t.commit(8), None);
    }

    #[test]
    fn an_offset_taken_at_a_commit_skips_nothing_of_the_next_transaction() {
        let at_commit = DebeziumOffset {
            lsn_commit: Lsn(0x200),
            lsn_proc: Lsn(0x200),
            tx_id: Some(6),
            at: OffsetAt::Commit,
            events_at_proc: None,
            ts_usec: None,
        };
        let mut t = Taken::new(at_commit, Lsn(0x100));
        assert!(t.applies(), "the transactions before 0x200 are sent again");
        t.begin(Lsn(0x1c0), 6);
        assert_eq!(t.skip(Lsn(0x1d0)), Verdict::SkipCommitted);
        t.commit(6);
        t.begin(Lsn(0x2a0), 7);
        assert_eq!(t.skip(Lsn(0x210)), Verdict::Publish);
        assert_eq!(t.skip(Lsn(0x200)), Verdict::Publish);
        assert_eq!(t.commit(7).map(|b| b.matched), Some(false));
        // The slot at the offset's commit: nothing to skip at all.
        assert!(!Taken::new(at_commit, Lsn(0x200)).applies());
    }

    /// The duplicates seen after a SIGTERM of Debezium under load: its last record was a change
    /// of a transaction that began before the previous one committed, so `lsn_proc` is below
    /// `lsn_commit` (the slot's position). Debezium skips that transaction's changes up to it;
    /// so must outboxd.
    #[test]
    fn a_change_below_lsn_commit_in_an_interleaved_transaction_is_still_skipped() {
        let mut t = Taken::new(change_offset(0x200, 0x150, Some(7)), Lsn(0x200));
        assert!(
            t.applies(),
            "the slot at lsn_commit still sends transaction 7"
        );
        t.begin(Lsn(0x280), 7);
        assert_eq!(t.skip(Lsn(0x120)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x150)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x210)), Verdict::Publish);
        assert_eq!(t.commit(7).map(|b| b.matched), Some(true));
    }

    #[test]
    fn a_transaction_other_than_the_offsets_is_published_whole() {
        // txId names transaction 7, but the first one after lsn_commit is 9 (the slot was past
        // 7): none of 9's changes is skipped, however low their positions.
        let mut t = Taken::new(change_offset(0x200, 0x260, Some(7)), Lsn(0x300));
        t.begin(Lsn(0x380), 9);
        assert_eq!(t.skip(Lsn(0x240)), Verdict::Publish);
        assert_eq!(
            t.commit(9),
            Some(Boundary {
                matched: false,
                xid: 9,
                at_proc_published: 0
            })
        );
        // Without txId (older versions), only when the stream starts at or before lsn_commit.
        let mut t = Taken::new(change_offset(0x200, 0x260, None), Lsn(0x200));
        t.begin(Lsn(0x2a0), 9);
        assert_eq!(t.skip(Lsn(0x250)), Verdict::SkipProcessed);
        let t = Taken::new(change_offset(0x200, 0x260, None), Lsn(0x300));
        assert!(!t.applies(), "the slot is past the offset's transaction");
    }

    #[test]
    fn changes_sharing_lsn_proc_are_skipped_as_far_as_the_offset_says() {
        // A COPY: one WAL record at 0x260 for three rows. The offset cannot say how many
        // Debezium published: the first is taken as published, the others are published.
        let mut t = Taken::new(change_offset(0x200, 0x260, Some(7)), Lsn(0x200));
        t.begin(Lsn(0x2a0), 7);
        assert_eq!(t.skip(Lsn(0x240)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x260)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x260)), Verdict::Publish);
        assert_eq!(t.skip(Lsn(0x260)), Verdict::Publish);
        assert_eq!(t.commit(7).map(|b| b.at_proc_published), Some(2));
        // With lsn_events_processed, exactly that many.
        let mut offset = change_offset(0x200, 0x260, Some(7));
        offset.events_at_proc = Some(2);
        let mut t = Taken::new(offset, Lsn(0x200));
        t.begin(Lsn(0x2a0), 7);
        let verdicts: Vec<Verdict> = (0..3).map(|_| t.skip(Lsn(0x260))).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::SkipProcessed,
                Verdict::SkipProcessed,
                Verdict::Publish
            ]
        );
        assert_eq!(t.commit(7).map(|b| b.at_proc_published), Some(1));
    }

    /// A transaction larger than the producer's in-flight window is read in pieces (the relay
    /// stops reading while the window is full); the rule only sees its changes in WAL order, so
    /// it skips exactly those up to lsn_proc however the reading is paced.
    #[test]
    fn a_large_transaction_partly_published_is_resumed_after_lsn_proc() {
        let change = |i: u64| Lsn(0x10_000 + i * 0x40);
        let mut t = Taken::new(
            change_offset(0x8000, change(14_999).0, Some(42)),
            Lsn(0x8000),
        );
        t.begin(change(20_000), 42);
        let skipped = (0..20_000)
            .filter(|&i| t.skip(change(i)) != Verdict::Publish)
            .count();
        assert_eq!(skipped, 15_000);
        assert_eq!(t.commit(42).map(|b| b.matched), Some(true));
    }
}
