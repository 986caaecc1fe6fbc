//! The broker probe (`--broker-probe-rate`): records from a producer in the harness with
//! outboxd's producer settings, in outboxd's topic during the steady state, timed from `send()`
//! by the same consumer: the broker path's own latency beside outboxd's.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::producer::{BaseProducer, Producer};
use serde::Serialize;

use crate::steady::{percentile, sorted_latencies, Sample};
use crate::system::now_us;

#[derive(Debug, Clone, Serialize)]
pub struct ProbeStats {
    pub received: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// The probe's latencies in `step`; None without probe samples.
pub fn probe_stats(samples: &[Sample], step: u32) -> Option<ProbeStats> {
    let lat = sorted_latencies(samples.iter().filter(|s| s.of(step, true)));
    if lat.is_empty() {
        return None;
    }
    Some(ProbeStats {
        received: lat.len() as u64,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        p999_ms: percentile(&lat, 0.999),
    })
}

/// The key prefix of the broker probe's records, which share outboxd's topic.
pub const PROBE_KEY_PREFIX: &[u8] = b"bench-probe-";

/// Sends `rate` records/s to `topic` (outboxd's topic: the same partitions, batches and fetches)
/// with outboxd's producer settings until `stop`, each keyed `bench-probe-<n % 1000>` and
/// carrying its send time and the current step, padded like the steady state's rows.
pub fn run_probe(
    producer: BaseProducer,
    topic: String,
    rate: u64,
    pad: usize,
    step: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    use rdkafka::producer::BaseRecord;
    let pad = "x".repeat(pad);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = format!(
            "{{\"ts\": {}, \"pad\": \"{pad}\", \"seq\": {n}, \"step\": {}}}",
            now_us(),
            step.load(Ordering::Relaxed)
        );
        let key = format!("bench-probe-{}", n % 1000);
        if let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(&key).payload(&value)) {
            eprintln!("[bench] broker probe: {e}");
        }
        n += 1;
        next += interval;
        loop {
            producer.poll(Duration::ZERO);
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(5)));
        }
    }
    producer
        .flush(Duration::from_secs(10))
        .context("broker probe flush")?;
    Ok(())
}
