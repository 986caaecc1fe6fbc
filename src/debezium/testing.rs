//! Test helpers shared by the debezium modules' unit tests: the smallest connector outboxd takes,
//! and imports of it with some keys changed.

use std::collections::BTreeMap;

use super::*;
use crate::config::Config;

/// The smallest connector outboxd takes: database, tables and the EventRouter.
pub(crate) fn minimal() -> BTreeMap<String, String> {
    pairs(&[
        ("connector.class", POSTGRES_CONNECTOR),
        ("plugin.name", "pgoutput"),
        ("snapshot.mode", "no_data"),
        ("database.hostname", "db.internal"),
        ("database.port", "5432"),
        ("database.user", "debezium"),
        ("database.dbname", "app"),
        ("table.include.list", "public.outbox"),
        ("transforms", "outbox"),
        ("transforms.outbox.type", EVENT_ROUTER),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
    ])
}

pub(crate) fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn connector(config: BTreeMap<String, String>) -> ConnectorJson {
    ConnectorJson { name: None, config }
}

/// `minimal()` with `set` applied (an empty value removes the key).
pub(crate) fn with(set: &[(&str, &str)]) -> ConnectorJson {
    let mut c = minimal();
    for (k, v) in set {
        if v.is_empty() {
            c.remove(*k);
        } else {
            c.insert(k.to_string(), v.to_string());
        }
    }
    connector(c)
}

pub(crate) fn ok(set: &[(&str, &str)]) -> Imported {
    import(&with(set), None).unwrap_or_else(|e| panic!("{set:?}: {e}"))
}

/// The error, which must name `key`.
pub(crate) fn err(set: &[(&str, &str)], key: &str) -> String {
    let e = import(&with(set), None)
        .map(|i| format!("unexpectedly imported: {i:?}"))
        .unwrap_or_else(|e| e.to_string());
    assert!(
        e.starts_with(&format!("connector key {key}: ")),
        "{set:?}: expected an error about {key}, got: {e}"
    );
    e
}

pub(crate) fn strings(map: &BTreeMap<String, toml::Value>) -> BTreeMap<String, String> {
    Config::string_map("test", map).unwrap()
}
