//! Prometheus metrics (served on `GET /metrics`) and the liveness/readiness state behind
//! `/healthz` and `/readyz`.
//!
//! Names follow Prometheus conventions: `outboxd_<what>_<unit>_total` for counters. docs/metrics.md
//! lists them all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Every metric outboxd exports, registered in one registry.
pub struct Metrics {
    pub registry: Registry,
    /// Outbox rows read from WAL (inserts routed to Kafka), by table.
    pub events_read: IntCounterVec,
    /// Records Kafka acknowledged.
    pub events_published: IntCounter,
    /// Bytes (key + value + headers) of acknowledged records.
    pub bytes_published: IntCounter,
    /// Records Kafka did not accept (each stops the relay).
    pub events_failed: IntCounter,
    /// Changes to outbox rows that are not events (UPDATE, DELETE), by table and operation.
    pub changes_ignored: IntCounterVec,
    /// Events sent and not yet acknowledged.
    pub events_in_flight: IntGauge,
    /// Bytes of events sent and not yet acknowledged.
    pub bytes_in_flight: IntGauge,
    /// The last LSN confirmed to Postgres, as a number.
    pub confirmed_lsn: IntGauge,
    /// Restarts of the pipeline after a transient error.
    pub restarts: IntCounter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        Arc::new(Metrics {
            events_read: counter_vec(
                "outboxd_events_read_total",
                "Outbox rows (inserts) read from WAL and handed to Kafka.",
                &["table"],
            ),
            events_published: counter(
                "outboxd_events_published_total",
                "Records acknowledged by Kafka.",
            ),
            bytes_published: counter(
                "outboxd_published_bytes_total",
                "Bytes (key, value and headers) of records acknowledged by Kafka.",
            ),
            events_failed: counter(
                "outboxd_events_failed_total",
                "Records Kafka did not accept; each one stops the relay before its LSN is confirmed.",
            ),
            changes_ignored: counter_vec(
                "outboxd_changes_ignored_total",
                "UPDATEs and DELETEs of outbox rows, which are not events and are not published.",
                &["table", "operation"],
            ),
            events_in_flight: gauge(
                "outboxd_events_in_flight",
                "Events sent to Kafka and not yet acknowledged.",
            ),
            bytes_in_flight: gauge(
                "outboxd_in_flight_bytes",
                "Bytes of events sent to Kafka and not yet acknowledged.",
            ),
            confirmed_lsn: gauge(
                "outboxd_confirmed_lsn",
                "The WAL position last confirmed to Postgres (as a 64-bit number).",
            ),
            restarts: counter(
                "outboxd_restarts_total",
                "Restarts of the pipeline (reconnects) after a transient error.",
            ),
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Liveness and readiness, shared between the pipeline and the HTTP listener.
#[derive(Default)]
pub struct Health {
    /// Milliseconds since the Unix epoch when the main loop last went round.
    last_beat_ms: AtomicU64,
    /// Connected to Postgres and Kafka and streaming.
    streaming: AtomicBool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Health {
    /// The main loop made progress (called every iteration and while waiting to retry).
    pub fn beat(&self) {
        self.last_beat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn set_streaming(&self, streaming: bool) {
        self.streaming.store(streaming, Ordering::Relaxed);
    }

    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    /// Alive when the main loop went round within `max_silence_ms`.
    pub fn is_alive(&self, max_silence_ms: u64) -> bool {
        now_ms().saturating_sub(self.last_beat_ms.load(Ordering::Relaxed)) <= max_silence_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.events_read.with_label_values(&["public.outbox"]).inc();
        m.confirmed_lsn.set(42);
        let text = m.render();
        assert!(
            text.contains("outboxd_events_read_total{table=\"public.outbox\"} 1"),
            "{text}"
        );
        assert!(text.contains("outboxd_confirmed_lsn 42"), "{text}");
    }

    #[test]
    fn health_tracks_beats_and_streaming() {
        let h = Health::default();
        assert!(!h.is_alive(1000), "never beat");
        h.beat();
        assert!(h.is_alive(1000));
        assert!(!h.is_streaming());
        h.set_streaming(true);
        assert!(h.is_streaming());
    }
}
