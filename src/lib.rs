//! outboxd: a transactional-outbox relay from PostgreSQL logical replication (`pgoutput`) to Kafka.
//!
//! # Layout
//! The data flow is `source → router → sink → checkpoint`, one module each. Where a module is a
//! folder, its `mod.rs` (or the facade file) says what each file owns.
//!
//! - [`source`]: the Postgres side.
//!   - `params`, `tls`: the `postgres://` URL (one host or several) and `sslmode` → rustls;
//!     `hosts`: which of several hosts to use (`target_session_attrs`: the primary, after a
//!     failover too);
//!   - `connection`, `protocol`: the walsender protocol (startup, auth, TLS, CopyBoth), the only
//!     code on the replication socket, and its pure framing;
//!   - `pgoutput`: decodes the plugin's messages (pure, no I/O; `pgoutput/` holds the message
//!     types, the errors and the byte cursor);
//!   - `liveness`: a dead connection told from a quiet one; `setup`: the slot (a failover slot
//!     on PostgreSQL 17+) and the publication, and the catalog queries [`check`] runs, over an
//!     ordinary SQL connection;
//!     `snapshot`: the rows already in the outbox tables, read in the slot's exported snapshot;
//!     `partitioned`: partitioned outbox tables (`publish_via_partition_root`).
//! - [`router`]: an outbox row (or a logical decoding message standing for one) into a Kafka
//!   record with Debezium's EventRouter rules (pure). `options` (`[router]`), `layout` (a table's
//!   columns, checked once), `route` (one row), `topic`, `record` (the output and error types),
//!   `columns/` (Postgres values typed as Debezium types them), `expand`, `message`,
//!   `span_context`, `source_block` (Debezium's source block, for `header.from.fields` and
//!   CloudEvents).
//! - [`convert`]: Kafka Connect's data model and converters, so the record bytes equal what a
//!   Connect worker writes (pure): `schema`, `converter` (the converter choice; a new converter
//!   is a `Converter` variant there, its bytes in a file of its own), `cloudevents` (Debezium's
//!   CloudEventsConverter), `json`, `text`, `decimal`, `java_text`.
//! - [`sink`]: the Kafka producer (`config`, `producer`: records enqueued in WAL order, deliveries
//!   reported asynchronously), `errors` (which Kafka errors are permanent), and the Kafka I/O of
//!   `position` (`offsets`) and `exactly_once` (`transactional`).
//! - [`checkpoint`]: which transactions Kafka acknowledged in full (contiguous acknowledgements);
//!   [`confirm`]: the confirm rule, which WAL position may be confirmed now (the checkpoint's,
//!   capped at the position recorded in Kafka, never backwards).
//! - [`cleanup`]: `[cleanup]`, deleting outbox rows once confirmed: which rows may go (pure);
//!   the task that deletes them is `pipeline::cleanup`.
//! - [`position`]: slot safety: the published position recorded in an offsets topic, never
//!   confirmed past, and checked against the slot at start (a slot moved by someone else, or
//!   missing after a failover, stops outboxd); its Kafka I/O is `sink::offsets`.
//! - [`exactly_once`]: the opt-in exactly-once mode's rules (Kafka transactions with the position
//!   in an offsets topic: what to skip after a replay, when to commit, how far to confirm); its
//!   Kafka I/O is `sink::transactional`.
//! - [`dead_letter`]: poison events (rows the router refuses, records Kafka rejects for good) and
//!   the dead-letter queue, with Kafka Connect's `errors.*` settings (pure).
//! - [`pipeline`]: wires the four together in one event loop, with backpressure, restarts and
//!   shutdown. `plan` (the configuration resolved, no I/O), `start` (a run up to streaming),
//!   `relay` (the loop) and one file per kind of event: `wal`, `deliveries`, `dead_letters`,
//!   `status`, `snapshot`, `transactions`, `messages`, `shutdown`, `replay` (skipping what the
//!   recorded position covers), `takeover` (skipping what a Debezium connector already published); `cleanup` (the `[cleanup]` task, beside the relay).
//!   A new restart reason is a [`pipeline::PipelineError`] variant and its `is_transient` arm.
//! - [`config`]: the TOML configuration (and `java_properties`, the one `.properties` reader);
//!   [`secrets`]: `${env:…}` / `${file:…}` references in it.
//! - [`debezium`]: a Debezium connector's JSON (and Kafka Connect worker properties) mapped to
//!   that configuration (pure): `input`, `forms` (Strimzi `KafkaConnector` YAML, Debezium
//!   Server properties), `providers`, `mapper` with one file per section (`source`, `router`,
//!   `kafka_properties`), `toml_out`; `offsets` (the connector's stored offset, for
//!   `[takeover]`). A new EventRouter option goes in `router::options` (parsed) and
//!   `router::route` (applied), its Debezium key in `debezium::router`.
//! - [`cli`]: the command line; [`check`]: the preflight checks (`outboxd check`); [`admin`]:
//!   `status` and `slot drop`; [`metrics`], [`http`]: observability.
//! - [`lsn`]: the `Lsn` newtype shared by all of the above.
//!
//! # Errors
//! Library modules return `thiserror` enums whose messages name the offending thing and the fix;
//! `anyhow` is used only at the top (`cli`), which prints the chain and picks the exit code.

pub mod admin;
pub mod check;
pub mod checkpoint;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod confirm;
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
