//! What Kafka Connect hands outboxd, as text: a connector's JSON (the REST form or the flat
//! `config` object) and a worker's properties file, each read into keys and values.
//!
//! Owns the two file forms only. It must not interpret a key (that is `mapper`) nor read
//! a file or the environment (the caller passes the text in).

use std::collections::BTreeMap;
use std::fmt;

use super::{key_error, DebeziumError};
use crate::config::java_properties;

/// A connector's configuration: its name (when the JSON has one) and its keys, values as text.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectorJson {
    pub name: Option<String>,
    pub config: BTreeMap<String, String>,
}

impl fmt::Debug for ConnectorJson {
    /// Keys only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorJson")
            .field("name", &self.name)
            .field("keys", &self.config.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether a configuration file's text is JSON (a connector) rather than TOML. A TOML document
/// cannot start with `{`.
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
}

/// Parses a connector JSON: the REST form `{"name": …, "config": {…}}` (other members, such as
/// `tasks` and `type` of a `GET /connectors/NAME` answer, are ignored) or the flat form `{…}`.
/// Values may be strings, numbers or booleans, as Kafka Connect accepts them; `null` counts as
/// absent.
pub fn parse_connector_json(text: &str) -> Result<ConnectorJson, DebeziumError> {
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| DebeziumError::Json(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(top) = value else {
        return Err(DebeziumError::Json(
            "expected a JSON object, {\"name\": …, \"config\": {…}} or the config object alone"
                .into(),
        ));
    };
    let (name, object) = match top.get("config") {
        Some(serde_json::Value::Object(config)) => (top.get("name").cloned(), config.clone()),
        _ => (top.get("name").cloned(), top),
    };
    let mut config = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => {
                return Err(key_error(
                    &key,
                    "expected a string, number or boolean (Kafka Connect configuration values are text)",
                ))
            }
        };
        config.insert(key, text);
    }
    let name = match name {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => config.get("name").cloned(),
    };
    Ok(ConnectorJson { name, config })
}

/// Parses a Java properties file (a Kafka Connect worker's `connect-distributed.properties`) with
/// [`crate::config::java_properties`]. A key given twice keeps its last value, as
/// `java.util.Properties` does; a malformed `\uXXXX` escape is an error naming the line.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, DebeziumError> {
    let entries = java_properties::parse(text).map_err(|e| DebeziumError::Properties {
        line: e.line,
        message: e.to_string(),
    })?;
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::testing::*;
    use crate::debezium::*;

    #[test]
    fn the_rest_form_and_the_flat_form_give_the_same_configuration() {
        let flat = serde_json::to_string(&minimal()).unwrap();
        let rest = format!(
            r#"{{"name": "outbox-connector", "config": {flat}, "tasks": [], "type": "source"}}"#
        );
        let a = parse_connector_json(&rest).unwrap();
        let b = parse_connector_json(&flat).unwrap();
        assert_eq!(a.name.as_deref(), Some("outbox-connector"));
        assert_eq!(b.name, None);
        assert_eq!(a.config, b.config);
        let (a, b) = (import(&a, None).unwrap(), import(&b, None).unwrap());
        assert_eq!(
            a.to_toml().lines().skip(1).collect::<Vec<_>>(),
            b.to_toml().lines().skip(1).collect::<Vec<_>>()
        );
        assert!(a.to_toml().contains("from connector outbox-connector"));
        // A flat config may carry its name as a key.
        let named =
            parse_connector_json(r#"{"name": "n", "database.port": 5432, "x": true, "y": null}"#)
                .unwrap();
        assert_eq!(named.name.as_deref(), Some("n"));
        assert_eq!(named.config["database.port"], "5432");
        assert_eq!(named.config["x"], "true");
        assert!(!named.config.contains_key("y"));
    }

    #[test]
    fn malformed_json_is_refused() {
        for (text, needle) in [
            ("{", "invalid JSON"),
            ("[1]", "expected a JSON object"),
            (
                r#"{"config": {"slot.name": ["a"]}}"#,
                "connector key slot.name",
            ),
        ] {
            let e = parse_connector_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(looks_like_json("\u{feff}  \n{\"a\": 1}"));
        assert!(!looks_like_json("[source]\nurl = \"x\"\n"));
        assert!(!looks_like_json("# {\n[source]"));
    }

    #[test]
    fn java_properties_are_parsed_as_java_does() {
        let p = parse_properties(
            "# comment\n\
             ! another\n\
             \n\
             a=1\n\
             b : 2\n\
             c 3\n\
             d=x\\\n\
             \x20  y\\\n\
             \tz\n\
             e=ends with backslash\\\\\n\
             f=\\u00e9t\\u00E9 \\t tab\n\
             key\\ with\\=sep = v\n\
             empty=\n\
             a=last wins\n\
             # c=comment \\\n\
             g=after comment\n",
        )
        .unwrap();
        assert_eq!(
            p,
            pairs(&[
                ("a", "last wins"),
                ("b", "2"),
                ("c", "3"),
                ("d", "xyz"),
                ("e", "ends with backslash\\"),
                ("empty", ""),
                ("f", "été \t tab"),
                ("g", "after comment"),
                ("key with=sep", "v"),
            ])
        );
        let e = parse_properties("x=1\ny=\\u12\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
