//! The Postgres side of the pipeline: the walsender connection, the pgoutput decoder and the slot and
//! publication management.

pub mod connection;
pub mod error;
pub mod hosts;
pub mod liveness;
pub mod params;
pub mod partitioned;
pub mod pgoutput;
pub mod protocol;
pub mod setup;
pub mod snapshot;
pub mod tls;

pub use connection::{
    ReplicationConnection, ReplicationMessage, ReplicationStream, SystemIdentity,
};
pub use error::{ServerError, SourceError};
pub use params::{ConnectParams, ParamsError, SslMode};
