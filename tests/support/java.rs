//! The Java side of the tests (`tests/kafka/src`, built by `scripts/install-deps.sh` into
//! `.tools/kafka/build/classes`): programs that read outboxd's records the way Java users do.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::broker::{kafka_available, kafka_lib};
use super::repo_root;

/// The compiled classes of `tests/kafka/src`.
pub fn classes() -> PathBuf {
    repo_root().join(".tools/kafka/build/classes")
}

/// Whether the Java checks can run; `Err` says what is missing.
pub fn available() -> Result<(), String> {
    kafka_available()?;
    if !classes().join("dev/outboxd/ConnectCheck.class").is_file() {
        return Err(format!(
            "{} has no ConnectCheck.class (run scripts/install-deps.sh)",
            classes().display()
        ));
    }
    Ok(())
}

/// A Kafka Connect converter as `dev.outboxd.ConnectCheck` names it.
#[derive(Debug, Clone, Copy)]
pub enum Converter {
    /// `org.apache.kafka.connect.storage.StringConverter`
    String,
    /// `org.apache.kafka.connect.json.JsonConverter`, `schemas.enable=true`
    Json,
    /// `org.apache.kafka.connect.json.JsonConverter`, `schemas.enable=false`
    JsonNoSchema,
}

impl Converter {
    fn arg(self) -> &'static str {
        match self {
            Converter::String => "string",
            Converter::Json => "json",
            Converter::JsonNoSchema => "json-noschema",
        }
    }
}

/// Reads `count` records of `topic` with Kafka's `KafkaConsumer` (read_committed) and Kafka
/// Connect's converters (`dev.outboxd.ConnectCheck`), and returns one JSON object per record:
/// `{"partition", "offset", "key": {"schema", "value", "roundtrip"}, "value": {...},
/// "headers": [{"key", "schema", "value"}]}`. Panics with the program's stderr when a converter
/// refuses a record or fewer records arrive. Blocking.
pub fn connect_check(
    bootstrap: &str,
    topic: &str,
    count: usize,
    key: Converter,
    value: Converter,
) -> Vec<serde_json::Value> {
    let classpath = format!("{}:{}/*", classes().display(), kafka_lib().display());
    let started = std::time::Instant::now();
    let out = Command::new("java")
        .args(["-Xmx256m", "-cp", &classpath, "dev.outboxd.ConnectCheck"])
        .args([bootstrap, topic, &count.to_string(), key.arg(), value.arg()])
        .output()
        .expect("run java");
    assert!(
        out.status.success(),
        "ConnectCheck on {topic} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "[support] ConnectCheck read {count} records of {topic} in {:?}",
        started.elapsed().max(Duration::ZERO)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ConnectCheck line {l:?}: {e}")))
        .collect()
}
