//! The Kafka side of the pipeline: producer settings (`config`) and the producer itself (`producer`).
//!
//! Records are enqueued in WAL order without waiting for each delivery; delivery reports come back
//! asynchronously, each tagged with the event's sequence number, and feed the checkpoint.
//!
//! # Layout
//! - `config`: the librdkafka properties (the user's `[kafka]` over outboxd's defaults);
//! - `producer`: the producer, its delivery reports ([`Report`]) and what a send carries;
//! - `errors`: which Kafka errors a retry cannot fix; `repeats`: one log line per cause of
//!   librdkafka's while Kafka is unreachable, with back-off;
//! - `offsets`: the offsets topic (creating it, reading and writing a slot's position), the
//!   Kafka side of `crate::position`;
//! - `transactional`: exactly-once mode's transactional producer, the Kafka side of
//!   `crate::exactly_once`;
//! - `readback`: reading back the `id` headers already in the destination topics (the take-over
//!   from Debezium, `crate::debezium::tail`).

pub mod config;
pub mod errors;
pub mod offsets;
pub mod producer;
pub mod readback;
pub mod repeats;
pub mod transactional;

pub use config::{producer_config, SinkConfigError};
pub use producer::{Delivery, DeliveryFailure, KafkaSink, Report, SendError, SendTag};
