//! Kafka Connect config providers: `${file:PATH:KEY}`, `${env:VAR}` and `${dir:DIR:FILE}`
//! references in connector and worker values, resolved as the Connect worker resolves them before
//! the connector sees the values.
//!
//! Owns which providers exist (the worker's `config.providers`) and the reference syntax. It must
//! not do I/O itself: environment and files are reached only through the closures it is given.

use std::collections::BTreeMap;

use super::{key_error, parse_properties, DebeziumError};

/// Kafka Connect's `FileConfigProvider`: `${NAME:PATH:KEY}` is KEY of the properties file PATH.
pub const FILE_CONFIG_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
/// Kafka Connect's `EnvVarConfigProvider`: `${NAME:VAR}` is the environment variable VAR.
pub const ENV_VAR_CONFIG_PROVIDER: &str =
    "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
/// Kafka Connect's `DirectoryConfigProvider`: `${NAME:DIR:FILE}` is the content of DIR/FILE.
pub const DIRECTORY_CONFIG_PROVIDER: &str =
    "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// The config providers references may use, by name: `file` (FileConfigProvider) and `env`
/// (EnvVarConfigProvider), the names they are usually given, plus those the worker declares
/// (`config.providers=NAME,…`, `config.providers.NAME.class=…`).
pub fn config_providers(worker: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut providers = BTreeMap::from([
        ("file".to_string(), FILE_CONFIG_PROVIDER.to_string()),
        ("env".to_string(), ENV_VAR_CONFIG_PROVIDER.to_string()),
    ]);
    if let Some(worker) = worker {
        for name in worker
            .get("config.providers")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if let Some(class) = worker.get(&format!("config.providers.{name}.class")) {
                providers.insert(name.to_string(), class.trim().to_string());
            }
        }
    }
    providers
}

/// Resolves Kafka Connect config provider references (`${file:/secrets/db.properties:password}`,
/// `${env:DB_PASSWORD}`, `${dir:/run/secrets:db}`) in `values`, as the Connect worker does before
/// the connector sees them. References to providers not in `providers` are left as they are (so
/// is `${routedByValue}`). `origin` describes where the keys come from, for errors, which name the
/// key and the file or variable, never a value. I/O only through `env` and `read_file`.
pub fn resolve_config_providers(
    values: &mut BTreeMap<String, String>,
    origin: &str,
    providers: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<(), DebeziumError> {
    for (key, value) in values.iter_mut() {
        if !value.contains("${") {
            continue;
        }
        let err = |message: String| key_error(&format!("{key}{origin}"), message);
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let body = &rest[start + 2..];
            let Some(end) = body.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let inner = &body[..end];
            let parts: Vec<&str> = inner.splitn(3, ':').collect();
            let class = parts.first().and_then(|p| providers.get(*p));
            let (Some(class), true) = (class, parts.len() >= 2) else {
                out.push_str(&rest[start..start + 2 + end + 1]);
                rest = &body[end + 1..];
                continue;
            };
            let (path, item) = match parts.as_slice() {
                [_, item] => (None, *item),
                [_, path, item] => (Some(*path), *item),
                _ => unreachable!("splitn(3) gives at most 3 parts"),
            };
            let resolved = match class.as_str() {
                ENV_VAR_CONFIG_PROVIDER => env(item).ok_or_else(|| {
                    err(format!(
                        "refers to the environment variable {item}, which is not set"
                    ))
                })?,
                FILE_CONFIG_PROVIDER => {
                    let path = path.ok_or_else(|| {
                        err("a FileConfigProvider reference needs a file and a key: ${file:/path/to/file.properties:key}".into())
                    })?;
                    let text = read_file(path).map_err(|e| {
                        err(format!("refers to the file {path}, which cannot be read: {e}"))
                    })?;
                    let properties = parse_properties(&text)
                        .map_err(|_| err(format!("the file {path} is not a properties file")))?;
                    properties.get(item).cloned().ok_or_else(|| {
                        err(format!("refers to key {item} of the file {path}, which has no such key"))
                    })?
                }
                DIRECTORY_CONFIG_PROVIDER => {
                    let dir = path.ok_or_else(|| {
                        err("a DirectoryConfigProvider reference needs a directory and a file: ${dir:/run/secrets:name}".into())
                    })?;
                    let file = format!("{}/{item}", dir.trim_end_matches('/'));
                    read_file(&file).map_err(|e| {
                        err(format!("refers to the file {file}, which cannot be read: {e}"))
                    })?
                }
                other => {
                    return Err(err(format!(
                        "uses the config provider {} ({other}), which outboxd cannot resolve: write the value, or use PGPASSWORD for the database password",
                        parts[0]
                    )))
                }
            };
            out.push_str(&resolved);
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        *value = out;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::testing::*;

    #[test]
    fn config_provider_references_are_resolved_and_errors_name_no_value() {
        let worker = pairs(&[
            ("config.providers", "secrets,dir"),
            ("config.providers.secrets.class", FILE_CONFIG_PROVIDER),
            ("config.providers.dir.class", DIRECTORY_CONFIG_PROVIDER),
        ]);
        let providers = config_providers(Some(&worker));
        let env = |name: &str| (name == "DB_USER").then(|| "from-env".to_string());
        let read = |path: &str| match path {
            "/s/db.properties" => Ok("password = top-secret\n".to_string()),
            "/run/secrets/kafka" => Ok("kafka-pass".to_string()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file",
            )),
        };
        let mut values = pairs(&[
            ("database.user", "${env:DB_USER}"),
            ("database.password", "${secrets:/s/db.properties:password}"),
            (
                "producer.override.sasl.password",
                "${dir:/run/secrets:kafka}",
            ),
            (
                "transforms.outbox.route.topic.replacement",
                "${routedByValue}.x",
            ),
            ("other", "${unknown:a:b}"),
        ]);
        resolve_config_providers(&mut values, "", &providers, &env, &read).unwrap();
        assert_eq!(values["database.user"], "from-env");
        assert_eq!(values["database.password"], "top-secret");
        assert_eq!(values["producer.override.sasl.password"], "kafka-pass");
        assert_eq!(
            values["transforms.outbox.route.topic.replacement"],
            "${routedByValue}.x"
        );
        assert_eq!(values["other"], "${unknown:a:b}");
        for (value, needle) in [
            ("${env:NOPE}", "environment variable NOPE"),
            ("${secrets:/missing:password}", "/missing"),
            ("${secrets:/s/db.properties:nokey}", "no such key"),
            ("${secrets:password}", "needs a file and a key"),
        ] {
            let mut v = pairs(&[("database.password", value)]);
            let e = resolve_config_providers(&mut v, " (worker file)", &providers, &env, &read)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(needle) && e.contains("database.password (worker file)"),
                "{e}"
            );
            assert!(!e.contains("top-secret"), "{e}");
        }
    }
}
