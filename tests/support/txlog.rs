//! What a `read_committed` consumer is entitled to see, computed from the log itself.
//!
//! A Kafka transaction ends with a control batch in every partition it wrote: a COMMIT or an
//! ABORT marker from its producer id. Apache Kafka's brokers also list the aborted transactions
//! in each fetch response, and librdkafka's `read_committed` consumer drops records by that
//! list; tansu 0.6 writes the markers but sends no list, so its `read_committed` consumers see
//! aborted records (tests/transactions.rs pins this). This module reads the raw record batches
//! (Fetch v4, `read_uncommitted`), follows the markers per producer id, and so tells which offsets
//! belong to committed transactions (or to no transaction), which to aborted ones, and which to
//! transactions still open. The exactly-once verifications filter consumed records through it,
//! so they hold on any broker that writes the markers, whatever it sends in fetch responses.
//!
//! Only batch headers and control records are decoded (never compressed), so it works whatever
//! compression the producer used. Blocking; call from `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::kafka::{consume_topics_with, consumer, Record};

/// The outcome of the transaction (if any) an offset range belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Not transactional, or its transaction committed.
    Visible,
    /// Its transaction was aborted.
    Aborted,
    /// Its transaction has no marker yet.
    Open,
}

/// One record batch's header, as far as visibility needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// For a control batch: `Some(true)` for COMMIT, `Some(false)` for ABORT.
    pub control: Option<bool>,
}

/// The fate of every data offset of one partition (control batches excluded), in ranges.
#[derive(Debug, Default, Clone)]
pub struct PartitionLog {
    /// (first offset, last offset, fate), sorted by first offset.
    ranges: Vec<(i64, i64, Fate)>,
}

impl PartitionLog {
    /// Follows the markers over `batches` (in log order).
    pub fn from_batches(batches: &[Batch]) -> PartitionLog {
        let mut pending: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        let mut ranges = Vec::new();
        for b in batches {
            match b.control {
                Some(commit) => {
                    let fate = if commit { Fate::Visible } else { Fate::Aborted };
                    for (first, last) in pending.remove(&b.producer_id).unwrap_or_default() {
                        ranges.push((first, last, fate));
                    }
                }
                None if b.transactional => pending
                    .entry(b.producer_id)
                    .or_default()
                    .push((b.base_offset, b.last_offset)),
                None => ranges.push((b.base_offset, b.last_offset, Fate::Visible)),
            }
        }
        for (first, last) in pending.into_values().flatten() {
            ranges.push((first, last, Fate::Open));
        }
        ranges.sort_unstable_by_key(|r| r.0);
        PartitionLog { ranges }
    }

    /// The fate of `offset`; `None` when no data batch scanned holds it.
    pub fn fate(&self, offset: i64) -> Option<Fate> {
        let i = self
            .ranges
            .partition_point(|(first, _, _)| *first <= offset);
        let (first, last, fate) = *self.ranges.get(i.checked_sub(1)?)?;
        (first..=last).contains(&offset).then_some(fate)
    }

    /// How many offsets have `fate`.
    pub fn count(&self, fate: Fate) -> i64 {
        self.ranges
            .iter()
            .filter(|r| r.2 == fate)
            .map(|(first, last, _)| last - first + 1)
            .sum()
    }
}

/// Scans every partition of `topic` from offset 0 to its high watermark. Panics with the reason
/// when the broker cannot be read.
pub fn scan(bootstrap: &str, topic: &str) -> BTreeMap<i32, PartitionLog> {
    let leaders = leaders(bootstrap, topic);
    leaders
        .into_iter()
        .map(|(partition, addr)| {
            let batches = fetch_all(&addr, topic, partition)
                .unwrap_or_else(|e| panic!("reading {topic}/{partition} raw at {addr}: {e}"));
            (partition, PartitionLog::from_batches(&batches))
        })
        .collect()
}

/// What a `read_committed` consumer may see of `topics`: records are consumed (librdkafka's
/// `read_committed`, which on tansu hides only open transactions), then every one whose offset the
/// log shows aborted, open or not yet scanned is dropped. Waits until `expected` records remain or
/// `timeout` passed, and returns them with how many aborted records were dropped.
pub fn committed_records(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> (Vec<Record>, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let records = consume_topics_with(bootstrap, &[], topics, usize::MAX, quiet_read(timeout));
        let logs: HashMap<&str, BTreeMap<i32, PartitionLog>> =
            topics.iter().map(|t| (*t, scan(bootstrap, t))).collect();
        let fate = |r: &Record| {
            logs.get(r.topic.as_str())
                .and_then(|p| p.get(&r.partition))
                .and_then(|l| l.fate(r.offset))
        };
        let aborted = records
            .iter()
            .filter(|r| fate(r) == Some(Fate::Aborted))
            .count();
        let visible: Vec<Record> = records
            .into_iter()
            .filter(|r| fate(r) == Some(Fate::Visible))
            .collect();
        if visible.len() >= expected || Instant::now() >= deadline {
            return (visible, aborted);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How long one pass reads (everything there is arrives well within it on loopback).
fn quiet_read(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(3))
}

/// Partition → leader address, from metadata.
fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, String> {
    let md = consumer(bootstrap, &[])
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let brokers: HashMap<i32, String> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("topic {topic} not in metadata"));
    t.partitions()
        .iter()
        .map(|p| {
            let addr = brokers
                .get(&p.leader())
                .unwrap_or_else(|| panic!("{topic}/{}: leader {} unknown", p.id(), p.leader()));
            (p.id(), addr.clone())
        })
        .collect()
}

/// Fetches every batch of `topic`/`partition` from offset 0 up to the high watermark.
fn fetch_all(addr: &str, topic: &str, partition: i32) -> std::io::Result<Vec<Batch>> {
    let mut socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    socket.set_nodelay(true)?;
    let mut batches = Vec::new();
    let mut offset = 0i64;
    let mut empty = 0;
    for correlation in 1.. {
        let (high_watermark, records) = fetch(&mut socket, correlation, topic, partition, offset)?;
        let before = batches.len();
        parse_batches(&records, &mut batches).map_err(invalid)?;
        if let Some(last) = batches.last() {
            offset = offset.max(last.last_offset + 1);
        }
        if offset >= high_watermark {
            break;
        }
        if batches.len() == before {
            // Below the high watermark and nothing came: a broker lagging its own watermark.
            empty += 1;
            if empty > 20 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(batches)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// One Fetch v4 (`read_uncommitted`) of one partition: (high watermark, record batches bytes).
fn fetch(
    socket: &mut TcpStream,
    correlation: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> std::io::Result<(i64, Vec<u8>)> {
    const MAX_BYTES: i32 = 8 << 20;
    let mut body = Vec::new();
    body.extend_from_slice(&1i16.to_be_bytes()); // Fetch
    body.extend_from_slice(&4i16.to_be_bytes()); // v4
    body.extend_from_slice(&correlation.to_be_bytes());
    put_string(&mut body, "outboxd-test-txlog");
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    body.extend_from_slice(&100i32.to_be_bytes()); // max wait ms
    body.extend_from_slice(&0i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&MAX_BYTES.to_be_bytes());
    body.push(0); // read_uncommitted
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&MAX_BYTES.to_be_bytes());
    socket.write_all(&(body.len() as i32).to_be_bytes())?;
    socket.write_all(&body)?;

    let mut len = [0u8; 4];
    socket.read_exact(&mut len)?;
    let mut response = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    socket.read_exact(&mut response)?;
    let mut r = Reader(&response);
    let got = r.i32()?;
    if got != correlation {
        return Err(invalid(format!(
            "correlation id {got}, expected {correlation}"
        )));
    }
    r.i32()?; // throttle time
    let (mut high_watermark, mut records) = (0, Vec::new());
    for _ in 0..r.i32()? {
        r.string()?;
        for _ in 0..r.i32()? {
            r.i32()?; // partition
            let error = r.i16()?;
            if error != 0 {
                return Err(invalid(format!("fetch error code {error}")));
            }
            high_watermark = r.i64()?;
            r.i64()?; // last stable offset
            let aborted = r.i32()?;
            for _ in 0..aborted.max(0) {
                r.i64()?;
                r.i64()?;
            }
            let n = r.i32()?;
            if n > 0 {
                records = r.take(n as usize)?.to_vec();
            }
        }
    }
    Ok((high_watermark, records))
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Parses the complete v2 record batches in `bytes` (a trailing partial one is ignored).
pub fn parse_batches(bytes: &[u8], out: &mut Vec<Batch>) -> Result<(), String> {
    let mut rest = bytes;
    while rest.len() >= 12 {
        let base_offset = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        let length = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        let total = 12 + length.max(0) as usize;
        if rest.len() < total {
            break;
        }
        let batch = &rest[..total];
        rest = &rest[total..];
        if batch.len() < 61 {
            return Err(format!("record batch of {} bytes", batch.len()));
        }
        let magic = batch[16];
        if magic != 2 {
            return Err(format!("record batch magic {magic} (only v2 is read)"));
        }
        let attributes = i16::from_be_bytes(batch[21..23].try_into().unwrap());
        let last_offset_delta = i32::from_be_bytes(batch[23..27].try_into().unwrap());
        let producer_id = i64::from_be_bytes(batch[43..51].try_into().unwrap());
        let control = if attributes & 0x20 != 0 {
            Some(control_is_commit(&batch[61..])?)
        } else {
            None
        };
        out.push(Batch {
            base_offset,
            last_offset: base_offset + i64::from(last_offset_delta),
            producer_id,
            transactional: attributes & 0x10 != 0,
            control,
        });
    }
    Ok(())
}

/// The first record of a control batch: its key is (version i16, type i16), type 1 = COMMIT.
fn control_is_commit(records: &[u8]) -> Result<bool, String> {
    let mut r = Reader(records);
    let e = |e: std::io::Error| format!("control record: {e}");
    r.varint().map_err(e)?; // record length
    r.take(1).map_err(e)?; // attributes
    r.varint().map_err(e)?; // timestamp delta
    r.varint().map_err(e)?; // offset delta
    let key_len = r.varint().map_err(e)?;
    if key_len < 4 {
        return Err(format!("control record key of {key_len} bytes"));
    }
    r.i16().map_err(e)?; // version
    match r.i16().map_err(e)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(format!("control record type {other}")),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "short response",
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i16(&mut self) -> std::io::Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> std::io::Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> std::io::Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> std::io::Result<String> {
        let n = self.i16()?;
        Ok(String::from_utf8_lossy(self.take(n.max(0) as usize)?).into_owned())
    }
    /// A zigzag varint (record fields).
    fn varint(&mut self) -> std::io::Result<i64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "varint too long",
        ))
    }
}
