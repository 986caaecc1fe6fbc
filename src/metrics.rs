//! Prometheus metrics (served on `GET /metrics`) and the liveness/readiness state behind
//! `/healthz` and `/readyz`.
//!
//! Names follow Prometheus conventions: `outboxd_<what>_<unit>_total` for counters. docs/metrics.md
//! lists them all.
//!
//! # Adding a metric
//! Start here: a field of [`Metrics`] and its registration in [`Metrics::new`]. Then, each checked
//! by a test that fails until it is done: a row in docs/metrics.md's table (tests/deploy.rs), a
//! panel in docker/grafana/outboxd-dashboard.json (tests/deploy.rs), and, for a labelled family,
//! a sample in tests/support/catalog.rs (so the catalogue renders it). An alert on it goes in the
//! chart's rules (charts/outboxd, tests/helm.rs checks the names).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Every metric outboxd exports, registered in one registry.
pub struct Metrics {
    pub registry: Registry,
    /// Outbox rows read from WAL (inserts routed to Kafka), by table.
    pub events_read: IntCounterVec,
    /// Records Kafka acknowledged, by topic.
    pub events_published: IntCounterVec,
    /// Bytes (key + value) of acknowledged records, by topic.
    pub bytes_published: IntCounterVec,
    /// Records Kafka did not accept (each stops the relay, or goes to the dead-letter topic), by
    /// topic.
    pub events_failed: IntCounterVec,
    /// Poison events written to the dead-letter topic (and acknowledged there), by table and
    /// reason.
    pub events_dead_lettered: IntCounterVec,
    /// From the transaction's commit to Kafka's acknowledgement, in seconds.
    pub commit_to_ack_seconds: Histogram,
    /// Records in the producer's queue (enqueued, not yet reported), sampled.
    pub producer_queue_depth: IntGauge,
    /// The server's WAL position minus the slot's confirmed position, in bytes (polled).
    pub slot_lag_bytes: IntGauge,
    /// Seconds since a status update last moved the confirmed position forward (computed when
    /// scraped, from `last_confirmation_unix_ms`).
    pub last_confirmation_age_seconds: Gauge,
    /// When the confirmed position last moved (ms since the Unix epoch; 0 = never).
    last_confirmation_unix_ms: AtomicU64,
    /// Changes to outbox rows that are not events (UPDATE, DELETE), by table and operation.
    pub changes_ignored: IntCounterVec,
    /// Events sent and not yet acknowledged.
    pub events_in_flight: IntGauge,
    /// Bytes of events sent and not yet acknowledged.
    pub bytes_in_flight: IntGauge,
    /// The last LSN confirmed to Postgres, as a number.
    pub confirmed_lsn: IntGauge,
    /// Reconnects: restarts of the pipeline after a transient error.
    pub reconnects: IntCounter,
    /// Exactly-once mode: Kafka transactions by outcome (`committed`, `failed`; after a failed one,
    /// `restated` or `restate_failed`: see `sink::transactional`).
    pub kafka_transactions: IntCounterVec,
    /// Exactly-once mode: how long a Kafka commit took.
    pub kafka_commit_seconds: Histogram,
    /// Postgres transactions sent again that the recorded position covers, skipped (both modes).
    pub transactions_skipped: IntCounter,
    /// Their outbox events, not published again, by table.
    pub replayed_events_skipped: IntCounterVec,
    /// At-least-once mode: position records written to the offsets topic, by outcome.
    pub position_records: IntCounterVec,
    /// The position last recorded in the offsets topic (as a 64-bit number).
    pub recorded_lsn: IntGauge,
    /// Take-over from Debezium: outbox events not published again, Debezium's offset saying it
    /// published them, by table.
    pub takeover_events_skipped: IntCounterVec,
    /// `[cleanup]`: outbox rows deleted after their events were confirmed, by table.
    pub cleanup_rows_deleted: IntCounterVec,
    /// `[cleanup]`: failed connections and statements of the cleanup, by stage (`connect`,
    /// `mark`, `delete`); each is retried.
    pub cleanup_errors: IntCounterVec,
    /// The position last confirmed to Postgres outside a snapshot (never backwards): what
    /// `[cleanup]` may delete up to (`crate::cleanup`). Set by the relay's status updates.
    pub confirmed_position: tokio::sync::watch::Sender<crate::lsn::Lsn>,
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
            events_published: counter_vec(
                "outboxd_events_published_total",
                "Records acknowledged by Kafka.",
                &["topic"],
            ),
            bytes_published: counter_vec(
                "outboxd_published_bytes_total",
                "Bytes (key and value) of records acknowledged by Kafka.",
                &["topic"],
            ),
            events_failed: counter_vec(
                "outboxd_events_failed_total",
                "Records Kafka did not accept; each one stops the relay before its LSN is confirmed, or with errors.tolerance=all goes to the dead-letter topic.",
                &["topic"],
            ),
            events_dead_lettered: counter_vec(
                "outboxd_events_dead_lettered_total",
                "Poison events (unroutable rows, records Kafka rejects permanently) written to the dead-letter topic and acknowledged there.",
                &["table", "reason"],
            ),
            kafka_transactions: counter_vec(
                "outboxd_kafka_transactions_total",
                "Exactly-once mode: Kafka transactions (events and the offsets record) by outcome.",
                &["outcome"],
            ),
            kafka_commit_seconds: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "outboxd_kafka_commit_seconds",
                        "Exactly-once mode: time to commit a Kafka transaction (offsets record, deliveries, commit).",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ]),
                )
                .expect("valid histogram");
                registry.register(Box::new(h.clone())).expect("unique metric");
                h
            },
            transactions_skipped: counter(
                "outboxd_transactions_skipped_total",
                "Postgres transactions sent again by Postgres (its restart, or outboxd's) that the position recorded in the offsets topic covers: skipped, being already published.",
            ),
            replayed_events_skipped: counter_vec(
                "outboxd_replayed_events_skipped_total",
                "Outbox events of those transactions, not published again, by table.",
                &["table"],
            ),
            takeover_events_skipped: counter_vec(
                "outboxd_takeover_events_skipped_total",
                "Take-over from Debezium ([takeover]): outbox events not published, Debezium's stored offset saying it published them, by table.",
                &["table"],
            ),
            position_records: counter_vec(
                "outboxd_position_records_total",
                "At-least-once mode: records of the published position written to the offsets topic (offsets.topic), by outcome (acknowledged, failed).",
                &["outcome"],
            ),
            recorded_lsn: gauge(
                "outboxd_recorded_lsn",
                "The position last recorded in the offsets topic, which the confirmed position never passes (as a 64-bit number).",
            ),
            cleanup_rows_deleted: counter_vec(
                "outboxd_cleanup_rows_deleted_total",
                "[cleanup]: outbox rows deleted after their events were acknowledged by Kafka and confirmed, by table.",
                &["table"],
            ),
            cleanup_errors: counter_vec(
                "outboxd_cleanup_errors_total",
                "[cleanup]: failed connections or statements of the cleanup (retried), by stage (connect, mark, delete).",
                &["stage"],
            ),
            confirmed_position: tokio::sync::watch::channel(crate::lsn::Lsn::ZERO).0,
            commit_to_ack_seconds: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "outboxd_commit_to_ack_seconds",
                        "From the transaction's commit in Postgres to Kafka's acknowledgement of its event.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25,
                        0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ]),
                )
                .expect("valid histogram");
                registry.register(Box::new(h.clone())).expect("unique metric");
                h
            },
            producer_queue_depth: gauge(
                "outboxd_producer_queue_depth",
                "Records in the Kafka producer's queue, not yet acknowledged or failed.",
            ),
            slot_lag_bytes: gauge(
                "outboxd_slot_lag_bytes",
                "pg_current_wal_lsn() minus the slot's confirmed_flush_lsn, polled every 10 s.",
            ),
            last_confirmation_age_seconds: {
                let g = Gauge::new(
                    "outboxd_last_confirmation_age_seconds",
                    "Seconds since the confirmed position last moved forward (-1: never in this process).",
                )
                .expect("valid metric name");
                registry.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            last_confirmation_unix_ms: AtomicU64::new(0),
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
            reconnects: counter(
                "outboxd_reconnects_total",
                "Restarts of the pipeline (reconnects to Postgres and Kafka) after a transient error.",
            ),
            registry,
        })
    }

    /// A status update confirmed `lsn` outside a snapshot: what `[cleanup]` may delete up to
    /// (only ever grows).
    pub fn confirmed_outside_snapshot(&self, lsn: crate::lsn::Lsn) {
        self.confirmed_position.send_if_modified(|c| {
            let moved = lsn > *c;
            if moved {
                *c = lsn;
            }
            moved
        });
    }

    /// The confirmed position moved forward now.
    pub fn confirmed_now(&self) {
        self.last_confirmation_unix_ms
            .store(now_ms(), Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let last = self.last_confirmation_unix_ms.load(Ordering::Relaxed);
        self.last_confirmation_age_seconds.set(if last == 0 {
            -1.0
        } else {
            now_ms().saturating_sub(last) as f64 / 1000.0
        });
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
    /// librdkafka reported every broker down or a failed authentication, and no delivery or
    /// metadata request succeeded since.
    kafka_down: AtomicBool,
    /// What librdkafka said then.
    kafka_problem: std::sync::Mutex<Option<String>>,
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

    /// Kafka cannot be reached (every broker down, authentication refused): `why`.
    pub fn kafka_unreachable(&self, why: String) {
        if let Ok(mut problem) = self.kafka_problem.lock() {
            *problem = Some(why);
        }
        self.kafka_down.store(true, Ordering::Relaxed);
    }

    /// Kafka answered (a delivery or a metadata request succeeded). Cheap when nothing changes.
    pub fn kafka_reachable(&self) {
        if self.kafka_down.swap(false, Ordering::Relaxed) {
            if let Ok(mut problem) = self.kafka_problem.lock() {
                *problem = None;
            }
        }
    }

    /// Why Kafka is unreachable, `None` while it answers.
    pub fn kafka_problem(&self) -> Option<String> {
        if !self.kafka_down.load(Ordering::Relaxed) {
            return None;
        }
        self.kafka_problem
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .or_else(|| Some("unreachable".into()))
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
    fn kafka_reachability_is_tracked_with_the_reason() {
        let h = Health::default();
        assert_eq!(h.kafka_problem(), None);
        h.kafka_unreachable("1/1 brokers are down".into());
        assert_eq!(h.kafka_problem().as_deref(), Some("1/1 brokers are down"));
        h.kafka_reachable();
        assert_eq!(h.kafka_problem(), None);
        h.kafka_reachable();
        assert_eq!(h.kafka_problem(), None);
    }

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.events_read.with_label_values(&["public.outbox"]).inc();
        m.confirmed_lsn.set(42);
        m.events_published.with_label_values(&["t"]).inc();
        m.commit_to_ack_seconds.observe(0.003);
        m.events_dead_lettered
            .with_label_values(&["public.outbox", "unroutable"])
            .inc();
        let text = m.render();
        assert!(
            text.contains(
                "outboxd_events_dead_lettered_total{reason=\"unroutable\",table=\"public.outbox\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("outboxd_events_published_total{topic=\"t\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("outboxd_commit_to_ack_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        // Buckets around the 20 ms latency target (docs/benchmarks.md reads them).
        for le in ["0.0025", "0.0075", "0.015", "0.02"] {
            let count = if le == "0.0025" { 0 } else { 1 };
            assert!(
                text.contains(&format!(
                    "outboxd_commit_to_ack_seconds_bucket{{le=\"{le}\"}} {count}"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("outboxd_last_confirmation_age_seconds -1"),
            "{text}"
        );
        m.confirmed_now();
        let text = m.render();
        assert!(
            text.contains("outboxd_last_confirmation_age_seconds 0"),
            "{text}"
        );
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
