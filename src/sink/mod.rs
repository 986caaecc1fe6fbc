//! The Kafka side of the pipeline: producer settings (`config`) and the producer itself (`producer`).
//!
//! Records are enqueued in WAL order without waiting for each delivery; delivery reports come back
//! asynchronously, each tagged with the event's sequence number, and feed the checkpoint.

pub mod config;
pub mod errors;
pub mod offsets;
pub mod producer;
pub mod readback;
pub mod transactional;

pub use config::{producer_config, SinkConfigError};
pub use producer::{Delivery, DeliveryFailure, KafkaSink, Report, SendError, SendTag};
