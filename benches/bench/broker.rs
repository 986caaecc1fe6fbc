//! The broker of a scenario: a fresh tansu per drain, per baseline and for the steady state, or
//! the Kafka named by `KAFKA_BOOTSTRAP_SERVERS`; behind the delay line with `--broker-delay-ms`.
//! Brokers are started by tests/support ([`LocalBroker`]), as the tests start theirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::delay_line;
use crate::support::broker::{wait_broker_ready, KafkaOptions, Kind, LocalBroker};
use crate::support::free_port;

pub use crate::support::broker::tansu_bin;
pub use crate::support::external_kafka;

/// `--broker-delay-ms`, set once at start.
pub static BROKER_DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// A broker started for one scenario (killed, and its data removed, on drop; its log is copied
/// into the work directory first), or the external cluster.
pub struct Broker {
    pub bootstrap: String,
    local: Option<LocalBroker>,
    /// Where the log is copied on drop.
    keep_log: PathBuf,
}

impl Broker {
    pub fn start(work: &Path, name: &str) -> Result<Broker> {
        let kind = Kind::Tansu;
        let keep_log = work.join(format!("tansu-{name}.log"));
        if let Some(bootstrap) = external_kafka() {
            return Ok(Broker {
                bootstrap,
                local: None,
                keep_log,
            });
        }
        // Behind the delay line, the broker advertises the proxy's address, so that every client
        // connection goes through it.
        let port = free_port();
        let advertised = match BROKER_DELAY.get().copied().filter(|d| !d.is_zero()) {
            Some(delay) => Some(delay_line::start(&format!("127.0.0.1:{port}"), delay)?),
            None => None,
        };
        let local = LocalBroker::spawn(
            kind,
            KafkaOptions {
                port: Some(port),
                advertised_port: advertised,
                ..KafkaOptions::default()
            },
        );
        wait_broker_ready(local.bootstrap(), local.log_path());
        Ok(Broker {
            bootstrap: local.bootstrap().to_string(),
            local: Some(local),
            keep_log,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.local.as_ref().and_then(LocalBroker::pid)
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        crate::support::kafka::create_topic(&self.bootstrap, name, partitions).await;
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut local) = self.local.take() {
            local.kill9();
            let _ = std::fs::copy(local.log_path(), &self.keep_log);
            if local.kind() == Kind::Tansu {
                // tests/support leaves tansu's log in target/tmp; the copy is in the work dir.
                let _ = std::fs::remove_file(local.log_path());
            }
        }
    }
}
