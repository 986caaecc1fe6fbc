//! outboxd: a transactional-outbox relay from PostgreSQL logical replication (`pgoutput`) to Kafka.
//!
//! # Layout
//! The data flow is `source → router → sink → checkpoint`, one module each:
//!
//! - [`source`]: the Postgres side. `connection` speaks the walsender protocol (startup, auth, TLS,
//!   CopyBoth), `pgoutput` decodes the plugin's messages (pure, no I/O), `setup` manages the slot and
//!   publication and runs the preflight checks over an ordinary SQL connection, `snapshot` reads
//!   the rows already in the outbox tables in the slot's exported snapshot (`snapshot_mode`).
//! - [`router`]: turns an outbox row (or a logical decoding message standing for one) into a Kafka
//!   record with Debezium's EventRouter rules (pure).
//! - [`convert`]: Kafka Connect's data model and converters (StringConverter, JsonConverter, ...), so
//!   the record bytes equal what a Kafka Connect worker would write (pure).
//! - [`sink`]: the Kafka producer; enqueues records in WAL order and reports deliveries asynchronously.
//! - [`checkpoint`]: the LSN confirmation invariant: which WAL position may be confirmed to Postgres.
//! - [`exactly_once`]: the opt-in exactly-once mode's rules (Kafka transactions with the position in
//!   an offsets topic: what to skip after a replay, when to commit, how far to confirm); its Kafka
//!   I/O is `sink::transactional`.
//! - [`position`]: slot safety: the published position recorded in an offsets topic, never
//!   confirmed past, and checked against the slot at start (a slot moved by someone else stops
//!   outboxd); its Kafka I/O is `sink::offsets`.
//! - [`dead_letter`]: poison events (rows the router refuses, records Kafka rejects for good) and
//!   the dead-letter queue, with Kafka Connect's `errors.*` settings (pure).
//! - [`pipeline`]: wires the four together in one event loop, with backpressure and shutdown
//!   (`pipeline/messages.rs`: which logical decoding messages are events).
//! - [`config`], [`cli`]: the TOML configuration and the command line; [`debezium`]: a Debezium
//!   connector's JSON (and Kafka Connect worker properties) mapped to that configuration (pure);
//!   [`check`] and [`admin`]: the preflight checks and the `status` / `slot drop` commands;
//!   [`metrics`], [`http`]: observability.
//! - [`lsn`]: the `Lsn` newtype shared by all of the above.
//!
//! # Errors
//! Library modules return `thiserror` enums whose messages name the offending thing and the fix;
//! `anyhow` is used only at the top (`cli`), which prints the chain and picks the exit code.

pub mod admin;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod convert;
pub mod dead_letter;
pub mod debezium;
pub mod exactly_once;
pub mod http;
pub mod lsn;
pub mod metrics;
pub mod pipeline;
pub mod position;
pub mod router;
pub mod secrets;
pub mod sink;
pub mod source;
