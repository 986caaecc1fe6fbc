//! The Postgres side of the pipeline: the walsender connection, the pgoutput decoder and the slot and
//! publication management.
//!
//! # Layout
//! - `connection`: the walsender connection (startup, authentication, TLS, `IDENTIFY_SYSTEM`,
//!   slots, `START_REPLICATION`, the CopyBoth stream); `protocol`: its wire encoding (pure);
//!   `error`: [`SourceError`] and which errors a retry may fix;
//! - `params`: the `postgres://` URL and its parameters (parsing only); `hosts`: which of several
//!   hosts to use (`target_session_attrs`); `tls`: rustls for both kinds of connection;
//!   `quote`: quoting names and values into SQL (pure, the one copy);
//! - `pgoutput` (with `pgoutput/`): the decoder of the plugin's messages (pure, fuzzed);
//! - `setup`: the slot and the publication over an ordinary connection, and `outboxd check`'s
//!   preflight; `partitioned`: partitioned outbox tables; `snapshot`: the rows already in the
//!   tables; `liveness`: telling a dead connection from a quiet one.

pub mod connection;
pub mod error;
pub mod hosts;
pub mod liveness;
pub mod params;
pub mod partitioned;
pub mod pgoutput;
pub mod protocol;
pub mod quote;
pub mod setup;
pub mod snapshot;
pub mod tls;

pub use connection::{
    ReplicationConnection, ReplicationMessage, ReplicationStream, SystemIdentity,
};
pub use error::{ServerError, SourceError};
pub use params::{ConnectParams, ParamsError, SslMode};
