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
//! producer acknowledged the record it belongs to and every record before it.
//!
//! - `lsn_commit` is the end of the commit record of the last transaction Debezium processed
//!   completely (the position of pgoutput's Commit message, which its slot is confirmed at);
//! - `lsn` is the position of the last change it processed: inside the next transaction, when an
//!   offset was committed in the middle of one.
//!
//! Debezium resumes (its `WalPositionLocator`) after the change at `lsn`, or at the first
//! transaction committed after `lsn_commit`. outboxd skips the same events ([`Taken::skip`]):
//! every transaction whose commit record starts before `lsn_commit` (its Begin's `final_lsn` is
//! then below it: commit records do not overlap), and in the first transaction after it the
//! changes at or before `lsn` (a transaction's changes arrive in LSN order). The rule holds at
//! every start, so it is harmless to leave configured; once the slot is past `lsn_commit` it skips
//! nothing. Only outbox-table inserts are skipped: they are the records Debezium published.

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
        Ok(Some(Takeover {
            connector,
            server,
            store,
        }))
    }
}

/// Debezium's offset for one connector, as read from its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebeziumOffset {
    /// `lsn_commit`: the end of the last transaction processed completely.
    pub lsn_commit: Lsn,
    /// `lsn`: the last change processed (at or after `lsn_commit`).
    pub lsn: Lsn,
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
    let (commit, last) = (lsn("lsn_commit")?, lsn("lsn")?);
    match (commit, last) {
        (Some(lsn_commit), Some(lsn)) => Ok(Some(DebeziumOffset {
            lsn_commit,
            lsn: lsn.max(lsn_commit),
        })),
        // A snapshot's offset (`"snapshot": true`, no lsn_commit): nothing streamed yet.
        (None, Some(lsn)) => Ok(Some(DebeziumOffset {
            lsn_commit: lsn,
            lsn,
        })),
        _ => Err(OffsetError::Value(format!(
            "no lsn_commit/lsn in {}",
            String::from_utf8_lossy(bytes)
        ))),
    }
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
    /// The open transaction is the first one at or after `lsn_commit`.
    in_boundary: bool,
    /// That transaction was seen already (a later one is never the boundary).
    boundary_seen: bool,
    /// The open transaction is skipped whole.
    skipping_whole: bool,
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Publish,
    /// Debezium published it: in a transaction committed before `lsn_commit`.
    SkipCommitted,
    /// Debezium published it: a change at or before `lsn` in the transaction after `lsn_commit`.
    SkipProcessed,
}

impl Taken {
    pub fn new(offset: DebeziumOffset) -> Taken {
        Taken {
            offset,
            in_boundary: false,
            boundary_seen: false,
            skipping_whole: false,
        }
    }

    pub fn offset(&self) -> DebeziumOffset {
        self.offset
    }

    /// A transaction begins; `final_lsn` is its commit record's start (pgoutput's Begin).
    pub fn begin(&mut self, final_lsn: Lsn) {
        self.skipping_whole = final_lsn < self.offset.lsn_commit;
        self.in_boundary = !self.skipping_whole && !self.boundary_seen;
        if self.in_boundary {
            self.boundary_seen = true;
        }
    }

    /// The open transaction committed. Returns true when it was the first one after
    /// `lsn_commit`: nothing after it is skipped.
    pub fn commit(&mut self) -> bool {
        let boundary = self.in_boundary;
        self.skipping_whole = false;
        self.in_boundary = false;
        boundary
    }

    /// An outbox insert of the open transaction, at WAL position `lsn` (its XLogData start).
    pub fn skip(&self, lsn: Lsn) -> Verdict {
        if self.skipping_whole {
            Verdict::SkipCommitted
        } else if self.in_boundary
            && self.offset.lsn > self.offset.lsn_commit
            && lsn <= self.offset.lsn
        {
            Verdict::SkipProcessed
        } else {
            Verdict::Publish
        }
    }

    /// Whether the rule can skip anything from a stream that starts at `start` (the slot's
    /// confirmed position): not when Debezium's offset is behind it.
    pub fn applies_from(&self, start: Lsn) -> bool {
        self.offset.lsn > start || self.offset.lsn_commit > start
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
                lsn: Lsn(22449896)
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
                lsn: Lsn(100)
            })
        );
        assert!(parse_offset_value(Some(b"{}")).is_err());
        assert!(parse_offset_value(Some(br#"{"lsn_commit":"x","lsn":1}"#)).is_err());
        assert!(parse_offset_value(Some(b"not json")).is_err());
    }

    #[test]
    fn transactions_before_the_commit_and_changes_up_to_the_last_one_are_skipped() {
        // Debezium finished the transaction ending at 0x200 and processed the change at 0x260 of
        // the next one.
        let mut t = Taken::new(DebeziumOffset {
            lsn_commit: Lsn(0x200),
            lsn: Lsn(0x260),
        });
        t.begin(Lsn(0x1c0)); // commits at 0x1c0..0x200: done
        assert_eq!(t.skip(Lsn(0x180)), Verdict::SkipCommitted);
        t.commit();
        t.begin(Lsn(0x2a0)); // the boundary transaction
        assert_eq!(t.skip(Lsn(0x220)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x260)), Verdict::SkipProcessed);
        assert_eq!(t.skip(Lsn(0x270)), Verdict::Publish);
        t.commit();
        t.begin(Lsn(0x300)); // later transactions are published whole
        assert_eq!(
            t.skip(Lsn(0x240)),
            Verdict::Publish,
            "an earlier-LSN change of a later transaction"
        );
        t.commit();
        // An offset taken at a commit: nothing of the next transaction is skipped.
        let mut t = Taken::new(DebeziumOffset {
            lsn_commit: Lsn(0x200),
            lsn: Lsn(0x200),
        });
        t.begin(Lsn(0x2a0));
        assert_eq!(t.skip(Lsn(0x210)), Verdict::Publish);
        assert!(t.applies_from(Lsn(0x100)));
        assert!(!t.applies_from(Lsn(0x200)), "the slot is past the offset");
    }
}
