//! [`Plan`]: everything a run needs, resolved and validated from the configuration once, before
//! any I/O (`outboxd check` and `run` build the same plan).
//!
//! Owns the resolution only; it must not connect to anything.

use std::time::Duration;

use crate::config::{Config, ConfigError, SnapshotMode, TableName};
use crate::convert::Converters;
use crate::dead_letter::ErrorPolicy;
use crate::exactly_once::ExactlyOnce;
use crate::position::Offsets;
use crate::router::RouterOptions;
use crate::sink::producer_config;
use crate::sink::transactional;
use crate::source::params::ConnectParams;
use crate::source::setup::SetupPlan;
use crate::source::SourceError;

use super::PipelineError;

/// Debezium's `heartbeat.action.query`, run every `heartbeat.interval.ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub interval: Duration,
    pub query: String,
}

/// Everything a run needs, resolved from the configuration once.
pub struct Plan {
    pub params: ConnectParams,
    pub setup: SetupPlan,
    pub tables: Vec<TableName>,
    pub router: RouterOptions,
    pub converters: Converters,
    pub producer: rdkafka::ClientConfig,
    pub status_interval: Duration,
    /// `source.receive_timeout_ms` (`None`: off).
    pub receive_timeout: Option<Duration>,
    /// `source.heartbeat_*`: a query run periodically on an ordinary connection.
    pub heartbeat: Option<Heartbeat>,
    pub max_in_flight_events: u64,
    pub max_in_flight_bytes: u64,
    pub shutdown_timeout: Duration,
    /// `[errors]`: what happens to poison events.
    pub errors: ErrorPolicy,
    /// `[exactly_once]`, when enabled (`producer` is then transactional).
    pub exactly_once: Option<ExactlyOnce>,
    /// `[offsets]` in at-least-once mode, when enabled: positions recorded and checked
    /// (`position`).
    pub offsets: Option<Offsets>,
    /// `source.message_prefixes`: logical decoding messages routed as outbox events.
    pub message_prefixes: Vec<String>,
    /// Where positions are recorded, in either mode (None: `offsets.enabled = false` in
    /// at-least-once mode), and `offsets.accept_missing_slot`: for the missing-slot check at
    /// start (`position::missing_slot`).
    pub positions_topic: Option<String>,
    pub accept_missing_slot: Option<crate::lsn::Lsn>,
    /// `[takeover]`, when enabled: Debezium's offset, read at start (`debezium::offsets`).
    pub takeover: Option<crate::debezium::offsets::Takeover>,
    /// `[cleanup]`, when enabled: confirmed outbox rows deleted (`crate::cleanup`).
    pub cleanup: Option<crate::cleanup::Cleanup>,
}

impl Plan {
    /// Resolves and validates the configuration (no I/O).
    pub fn from_config(config: &Config) -> Result<Plan, PipelineError> {
        let url = crate::secrets::resolve("source.url", &config.source.url)?;
        let params = ConnectParams::from_url(&url).map_err(SourceError::from)?;
        let tables = config.tables()?;
        let router = RouterOptions::from_map(&Config::string_map("router", &config.router)?)?;
        let converters =
            Converters::from_map(&Config::string_map("converters", &config.converters)?)?;
        router.check_converters(&converters)?;
        let errors = ErrorPolicy::from_map(
            &Config::string_map("errors", &config.errors)?,
            &config.source.slot,
        )?;
        let producer = producer_config(
            &Config::string_map("kafka", &config.kafka)?,
            config.pipeline.max_in_flight_events,
        )?;
        let offsets = config.offsets.resolve()?;
        let exactly_once = config.exactly_once.resolve(&config.source.slot, &offsets)?;
        if exactly_once.is_some() && config.source.snapshot_mode == SnapshotMode::InitialOnly {
            // initial_only publishes from a temporary slot and keeps no position.
            return Err(ConfigError::Invalid {
                key: "source.snapshot_mode".into(),
                message: "initial_only cannot be combined with [exactly_once]: it reads the tables once from a temporary slot and records no position; use initial (the rows, then the stream, exactly once) or run initial_only in at-least-once mode".into(),
            }
            .into());
        }
        let producer = match &exactly_once {
            Some(eos) => transactional::transactional_config(producer, eos),
            None => producer,
        };
        let setup = SetupPlan {
            slot: config.source.slot.clone(),
            publication: config.source.publication.clone(),
            tables: tables.clone(),
            create_slot: config.source.create_slot,
            failover_slot: config.source.failover_slot,
            create_publication: config.source.create_publication,
            required_columns: router.required_columns(),
            snapshot_mode: config.source.snapshot_mode,
            publish_via_partition_root: config.source.publish_via_partition_root,
        };
        let cleanup = config
            .cleanup
            .resolve(&tables, config.source.snapshot_mode)?;
        Ok(Plan {
            params,
            setup,
            tables,
            router,
            converters,
            producer,
            status_interval: Duration::from_millis(config.source.status_interval_ms),
            receive_timeout: Some(Duration::from_millis(config.source.receive_timeout_ms))
                .filter(|t| !t.is_zero()),
            heartbeat: match (
                config.source.heartbeat_interval_ms,
                &config.source.heartbeat_action_query,
            ) {
                (ms, Some(query)) if ms > 0 => Some(Heartbeat {
                    interval: Duration::from_millis(ms),
                    query: query.clone(),
                }),
                _ => None,
            },
            max_in_flight_events: config.pipeline.max_in_flight_events,
            max_in_flight_bytes: config.pipeline.max_in_flight_bytes,
            shutdown_timeout: Duration::from_millis(config.pipeline.shutdown_timeout_ms),
            errors,
            positions_topic: match &exactly_once {
                Some(eo) => Some(eo.offsets_topic.clone()),
                None => config.offsets.enabled.then(|| offsets.topic.clone()),
            },
            accept_missing_slot: offsets.accept_missing_slot,
            takeover: crate::debezium::offsets::Takeover::resolve(&config.takeover)?,
            // Exactly-once mode records positions in its transactions.
            offsets: (config.offsets.enabled && exactly_once.is_none()).then_some(offsets),
            exactly_once,
            message_prefixes: config.source.message_prefixes.clone(),
            cleanup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_initial_only_snapshots_are_refused_with_exactly_once() {
        let base = "[source]\nurl = \"postgres://u@h/db\"\nsnapshot_mode = \"MODE\"\n\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n\n[exactly_once]\nenabled = true\n";
        let plan = |mode: &str| {
            Plan::from_config(&Config::from_toml(&base.replace("MODE", mode)).unwrap())
        };
        for mode in ["no_data", "initial", "always", "when_needed"] {
            assert!(plan(mode).is_ok(), "{mode}");
        }
        let e = plan("initial_only").err().expect("refused").to_string();
        assert!(
            e.contains("source.snapshot_mode") && e.contains("exactly_once"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_config_resolves() {
        let config = Config::from_toml(include_str!("../../config/outboxd.toml")).unwrap();
        let plan = Plan::from_config(&config).unwrap();
        assert_eq!(plan.setup.slot, "outboxd");
        assert_eq!(plan.producer.get("partitioner"), Some("murmur2_random"));
        assert_eq!(
            plan.router.topic_replacement,
            "outbox.event.${routedByValue}"
        );
        assert_eq!(plan.status_interval, Duration::from_secs(1));
    }

    #[test]
    fn heartbeat_settings_reach_the_plan() {
        let text = "[source]\nurl = \"postgres://u@h/d\"\nheartbeat_interval_ms = 250\nheartbeat_action_query = \"INSERT INTO hb DEFAULT VALUES\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n";
        let plan = Plan::from_config(&Config::from_toml(text).unwrap()).unwrap();
        assert_eq!(
            plan.heartbeat,
            Some(Heartbeat {
                interval: Duration::from_millis(250),
                query: "INSERT INTO hb DEFAULT VALUES".into()
            })
        );
        let config = Config::from_toml(include_str!("../../config/outboxd.toml")).unwrap();
        assert_eq!(Plan::from_config(&config).unwrap().heartbeat, None);
    }

    #[test]
    fn the_errors_section_reaches_the_plan() {
        let base = "[source]\nurl = \"postgres://u@h/d\"\nslot = \"s1\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n";
        let plan = Plan::from_config(&Config::from_toml(base).unwrap()).unwrap();
        assert_eq!(
            plan.errors.dead_letter_topic(),
            None,
            "tolerance none by default"
        );
        let text = format!(
            "{base}[errors]\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"outboxd.dlq\"\n\"errors.deadletterqueue.context.headers.enable\" = false\n"
        );
        let plan = Plan::from_config(&Config::from_toml(&text).unwrap()).unwrap();
        assert_eq!(plan.errors.dead_letter_topic(), Some("outboxd.dlq"));
        assert!(!plan.errors.context_headers);
        assert_eq!(plan.errors.connector_name, "s1");
        let missing = format!("{base}[errors]\n\"errors.tolerance\" = \"all\"\n");
        let err = Plan::from_config(&Config::from_toml(&missing).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("errors.\"errors.deadletterqueue.topic.name\""),
            "{err}"
        );
        let err = Config::from_toml(&format!("{base}[errors]\n\"errors.tolerance\" = [1]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("errors.\"errors.tolerance\""), "{err}");
    }
}
