//! The producer: the worker's `bootstrap.servers` and `producer.*`, then the connector's
//! `producer.override.*` (as a Connect worker builds a source task's producer), translated from
//! the Java client's names to librdkafka's where they differ (`sasl.jaas.config`,
//! `max.request.size`, Java key stores refused), and which of them are secrets.
//!
//! Owns the Java → librdkafka translation and the secret rule. Each property is checked against
//! librdkafka in memory; nothing connects.

use std::collections::{BTreeMap, BTreeSet};

use super::mapper::Mapper;
use super::{key_error, DebeziumError};

impl Mapper<'_> {
    /// Producer properties: the worker's `bootstrap.servers` and `producer.*`, then the
    /// connector's `producer.override.*`, translated to librdkafka.
    pub(super) fn kafka(
        &mut self,
    ) -> Result<(BTreeMap<String, String>, BTreeSet<String>), DebeziumError> {
        let mut kafka = BTreeMap::new();
        let mut secrets = BTreeSet::new();
        let mut sources: Vec<(String, String, String)> = Vec::new(); // (origin key, property, value)
        if let Some(worker) = self.worker {
            if let Some(b) = worker.get("bootstrap.servers").map(|b| b.trim()) {
                if !b.is_empty() {
                    kafka.insert("bootstrap.servers".to_string(), b.to_string());
                }
            }
            for (k, v) in worker {
                if let Some(p) = k.strip_prefix("producer.") {
                    sources.push((format!("{k} (worker file)"), p.to_string(), v.clone()));
                }
            }
        }
        for (k, v) in self.cc {
            if let Some(p) = k.strip_prefix("producer.override.") {
                sources.push((k.clone(), p.to_string(), v.clone()));
                self.used.insert(k.clone());
            }
        }
        // Later sources win: the connector's overrides over the worker's producer.* settings.
        for (origin, property, value) in sources {
            for (p, v) in translate_producer_property(&origin, &property, &value)? {
                if is_secret(&p) {
                    secrets.insert(p.clone());
                } else {
                    secrets.remove(&p);
                }
                kafka.insert(p, v);
            }
        }
        Ok((kafka, secrets))
    }
}

/// Whether the value of a connector or worker key is a secret that [`Imported::to_toml`](super::Imported::to_toml) leaves
/// out (so `import-debezium` need not resolve its config provider reference): the database
/// password and the producer's passwords. Not `sasl.jaas.config`, whose user name is printed.
pub fn is_unprinted_secret(key: &str) -> bool {
    if key == "database.password" {
        return true;
    }
    key.strip_prefix("producer.override.")
        .or_else(|| key.strip_prefix("producer."))
        .is_some_and(|p| p != "sasl.jaas.config" && is_secret(p))
}

/// Whether a librdkafka property holds a secret (never printed).
fn is_secret(property: &str) -> bool {
    let p = property.to_ascii_lowercase();
    p.contains("password")
        || p.contains("secret")
        || p.contains("jaas")
        || p == "sasl.oauthbearer.config"
        || p == "ssl.key.pem"
        || p == "ssl_key"
}

/// One Java producer property of Kafka Connect → librdkafka properties. `origin` names the key in
/// errors.
fn translate_producer_property(
    origin: &str,
    property: &str,
    value: &str,
) -> Result<Vec<(String, String)>, DebeziumError> {
    let value = value.trim();
    let out = match property {
        "sasl.jaas.config" => {
            let (username, password) = parse_jaas(value).map_err(|m| key_error(origin, m))?;
            vec![
                ("sasl.username".to_string(), username),
                ("sasl.password".to_string(), password),
            ]
        }
        "max.request.size" => vec![("message.max.bytes".to_string(), value.to_string())],
        "ssl.endpoint.identification.algorithm" if value.is_empty() => {
            vec![(property.to_string(), "none".to_string())]
        }
        "ssl.keystore.type" if value.eq_ignore_ascii_case("pkcs12") => Vec::new(),
        "ssl.truststore.location"
        | "ssl.truststore.password"
        | "ssl.truststore.type"
        | "ssl.truststore.certificates"
        | "ssl.keystore.type" => {
            return Err(key_error(
                origin,
                "Java key stores are not readable by librdkafka (outboxd's Kafka client): export the CA certificates to a PEM file (keytool -exportcert -rfc) and set producer.override.ssl.ca.location; a client certificate goes in ssl.certificate.location + ssl.key.location (PEM) or ssl.keystore.location (PKCS#12)",
            ))
        }
        "buffer.memory" => {
            return Err(key_error(
                origin,
                "librdkafka's equivalent is queue.buffering.max.kbytes (in KiB); outboxd bounds memory with [pipeline] max_in_flight_bytes. Remove the key",
            ))
        }
        "key.serializer" | "value.serializer" => {
            return Err(key_error(
                origin,
                "serializers are Kafka Connect's business: the converters decide the bytes. Remove the key",
            ))
        }
        _ => vec![(property.to_string(), value.to_string())],
    };
    // librdkafka must know each property (checked in memory, without connecting).
    for (p, v) in &out {
        let mut one = rdkafka::ClientConfig::new();
        one.set(p, v);
        if let Err(e) = one.create_native_config() {
            let message = match e {
                rdkafka::error::KafkaError::ClientConfig(
                    rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                    ..,
                ) => format!("librdkafka (outboxd's Kafka client) has no property {p}; the librdkafka names of Java client settings are in docs/migration-from-debezium.md"),
                rdkafka::error::KafkaError::ClientConfig(_, desc, ..) if !is_secret(p) => {
                    format!("librdkafka refuses it: {desc}")
                }
                _ => format!("librdkafka refuses the value of {p}"),
            };
            return Err(key_error(origin, message));
        }
    }
    Ok(out)
}

/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
/// (or `...scram.ScramLoginModule`) → (username, password). Never echoes the value.
fn parse_jaas(text: &str) -> Result<(String, String), String> {
    let unsupported = "only PlainLoginModule and ScramLoginModule with username and password translate to librdkafka (sasl.username, sasl.password); for other SASL mechanisms write an outboxd TOML file with librdkafka's sasl.* properties";
    let text = text.trim().trim_end_matches(';').trim();
    let mut parts = text.splitn(2, char::is_whitespace);
    let module = parts.next().unwrap_or_default();
    if module != "org.apache.kafka.common.security.plain.PlainLoginModule"
        && module != "org.apache.kafka.common.security.scram.ScramLoginModule"
    {
        return Err(unsupported.into());
    }
    let rest = parts.next().unwrap_or_default().trim_start();
    let rest = rest
        .split_once(char::is_whitespace)
        .filter(|(flag, _)| ["required", "requisite", "sufficient", "optional"].contains(flag))
        .map(|(_, r)| r)
        .ok_or_else(|| {
            "sasl.jaas.config: expected a control flag (required) after the login module"
                .to_string()
        })?;
    let mut options = BTreeMap::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if i >= chars.len() || chars[i] != '=' {
            return Err("sasl.jaas.config: malformed option (expected key=\"value\")".into());
        }
        i += 1;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("sasl.jaas.config: unterminated quoted value".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = chars.get(i + 1) {
                            value.push(*c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        options.insert(key, value);
    }
    match (options.remove("username"), options.remove("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(unsupported.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::testing::*;
    use crate::debezium::*;
    use crate::pipeline::Plan;

    #[test]
    fn the_producer_gets_the_workers_settings_and_the_connectors_overrides() {
        let worker = parse_properties(
            "# Connect worker\n\
             bootstrap.servers = kafka-1:9092,\\\n\
             \x20   kafka-2:9092\n\
             group.id=connect\n\
             security.protocol=SSL\n\
             producer.security.protocol=SASL_SSL\n\
             producer.compression.type=lz4\n\
             producer.max.request.size=2097152\n",
        )
        .unwrap();
        let i = import(
            &with(&[
                ("producer.override.compression.type", "zstd"),
                ("producer.override.sasl.mechanism", "SCRAM-SHA-512"),
                (
                    "producer.override.sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"k\\\"afka-secret\";",
                ),
                ("producer.override.ssl.endpoint.identification.algorithm", " "),
                ("producer.override.ssl.key.password", "key-secret"),
            ]),
            Some(&worker),
        )
        .unwrap();
        let kafka = strings(&i.config().kafka);
        assert_eq!(
            kafka,
            pairs(&[
                ("bootstrap.servers", "kafka-1:9092,kafka-2:9092"),
                ("compression.type", "zstd"),
                ("message.max.bytes", "2097152"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.password", "k\"afka-secret"),
                ("sasl.username", "alice"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.endpoint.identification.algorithm", "none"),
                ("ssl.key.password", "key-secret"),
            ])
        );
        let toml = i.to_toml();
        assert!(
            !toml.contains("afka-secret") && !toml.contains("key-secret"),
            "{toml}"
        );
        assert!(toml.contains("# \"sasl.password\" = \"...\""), "{toml}");
        assert!(toml.contains("\"sasl.username\" = \"alice\""), "{toml}");
        // The whole plan resolves (the producer settings included).
        Plan::from_config(&i.config()).unwrap();
        // Java-only settings are refused with their librdkafka equivalent.
        for (key, needle) in [
            (
                "producer.override.ssl.truststore.location",
                "ssl.ca.location",
            ),
            (
                "producer.override.buffer.memory",
                "queue.buffering.max.kbytes",
            ),
            ("producer.override.no.such.property", "librdkafka"),
        ] {
            let e = err(&[(key, "/x")], key);
            assert!(e.contains(needle), "{e}");
        }
        let e = err(
            &[("producer.override.sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\" principal=\"p\";")],
            "producer.override.sasl.jaas.config",
        );
        assert!(e.contains("PlainLoginModule") && !e.contains("Krb5"), "{e}");
        // Without bootstrap servers anywhere the import still works (the flag may give them).
        assert!(!strings(&ok(&[]).config().kafka).contains_key("bootstrap.servers"));
        assert!(ok(&[]).to_toml().contains("# \"bootstrap.servers\""));
    }

    #[test]
    fn unprinted_secrets_are_the_database_and_producer_passwords() {
        for key in [
            "database.password",
            "producer.override.sasl.password",
            "producer.override.ssl.key.password",
            "producer.ssl.keystore.password",
        ] {
            assert!(is_unprinted_secret(key), "{key}");
        }
        for key in [
            "database.user",
            "producer.override.sasl.jaas.config",
            "producer.override.sasl.username",
            "transforms.outbox.table.field.event.payload",
        ] {
            assert!(!is_unprinted_secret(key), "{key}");
        }
        // An unresolved reference there (a provider outboxd does not know) is an error.
        err(
            &[("producer.override.ssl.key.password", "${vault:kafka:key}")],
            "producer.override.ssl.key.password",
        );
    }
}
