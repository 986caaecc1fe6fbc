//! The connector keys of outboxd's `[router]` and `[converters]` sections: the options of the one
//! `EventRouter` transform (with `topic.prefix`), and the key, value and header converters taken
//! per side as Kafka Connect takes them (connector, else worker file, else Connect's default).
//!
//! A `org.apache.kafka.connect.transforms.HeaderFrom$Value` transform before the EventRouter
//! that copies `source`, `op` and `transaction` into headers (Debezium's CloudEvents outbox
//! setup) becomes `header.from.fields` / `header.from.headers`, with `debezium.source.db` from
//! `database.dbname`. Its predicate, if any, must be a `TopicNameMatches` that selects every
//! outbox table's change topic (`<topic.prefix>.<schema>.<table>`) or none of them (then the
//! transform does nothing): outboxd does not route per table. Predicates are accepted on that
//! transform only.
//!
//! Owns how these keys map, as [`Mapper`] methods. It must not touch the source or producer keys.

use std::collections::BTreeMap;

use regex::Regex;

use super::mapper::Mapper;
use super::{key_error, DebeziumError, EVENT_ROUTER};
use crate::config::TableName;
use crate::convert::{Converters, JSON_CONVERTER};
use crate::router::RouterOptions;

/// Kafka Connect's transform that copies value fields into headers.
pub const HEADER_FROM_VALUE: &str = "org.apache.kafka.connect.transforms.HeaderFrom$Value";

/// Kafka Connect's predicate on the topic name.
const TOPIC_NAME_MATCHES: &str = "org.apache.kafka.connect.transforms.predicates.TopicNameMatches";

impl Mapper<'_> {
    /// The transform chain → `[router]` (with `topic.prefix`).
    pub(super) fn router(&mut self) -> Result<BTreeMap<String, String>, DebeziumError> {
        let names: Vec<String> = self
            .get("transforms")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        let mut routers = Vec::new();
        let mut header_froms = Vec::new();
        let mut others = Vec::new();
        for name in &names {
            let key = format!("transforms.{name}.type");
            match self.get(&key) {
                Some(t) if t == EVENT_ROUTER => routers.push(name.clone()),
                Some(t) if t == HEADER_FROM_VALUE && routers.is_empty() => {
                    header_froms.push(name.clone())
                }
                Some(t) if t == HEADER_FROM_VALUE => {
                    return Err(key_error(&key, format!("a HeaderFrom$Value after the EventRouter reads the outbox payload, not Debezium's change event; outboxd supports it only before the EventRouter (transforms={name},…)")))
                }
                Some(t) => others.push(format!("{name} ({t})")),
                None => {
                    return Err(key_error(
                        &key,
                        "is missing: every transform needs its type",
                    ))
                }
            }
        }
        if !others.is_empty() {
            return Err(key_error(
                "transforms",
                format!("outboxd runs only {EVENT_ROUTER}; the chain also has {}: remove them, or keep this connector on Kafka Connect", others.join(", ")),
            ));
        }
        let name = match routers.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(key_error(
                    "transforms",
                    format!("no {EVENT_ROUTER} transform: outboxd replaces outbox connectors, e.g. transforms=outbox and transforms.outbox.type={EVENT_ROUTER}"),
                ))
            }
            _ => {
                return Err(key_error(
                    "transforms",
                    format!("{} EventRouter transforms ({}): outboxd runs exactly one", routers.len(), routers.join(", ")),
                ))
            }
        };
        let mut router = BTreeMap::new();
        match header_froms.as_slice() {
            [] => {}
            [one] => {
                if let Some((fields, headers)) = self.header_from(one)? {
                    router.insert("header.from.fields".to_string(), fields);
                    router.insert("header.from.headers".to_string(), headers);
                    if let Some(db) = self.cc.get("database.dbname") {
                        router.insert("debezium.source.db".to_string(), db.trim().to_string());
                    }
                }
            }
            _ => {
                return Err(key_error(
                    "transforms",
                    format!(
                        "{} HeaderFrom$Value transforms ({}): outboxd runs at most one",
                        header_froms.len(),
                        header_froms.join(", ")
                    ),
                ))
            }
        }
        // Predicate definitions no transform uses: Kafka Connect ignores them too.
        let keys: Vec<String> = self.cc.keys().cloned().collect();
        for key in keys
            .iter()
            .filter(|k| *k == "predicates" || k.starts_with("predicates."))
        {
            if !self.used.contains(key) {
                self.ignore(key);
            }
        }
        let prefix = format!("transforms.{name}.");
        let keys: Vec<String> = self.cc.keys().cloned().collect();
        for key in keys {
            let Some(option) = key.strip_prefix(&prefix) else {
                // Options of transforms not in the chain: Kafka Connect ignores them too.
                if key.starts_with("transforms.") && !self.used.contains(&key) {
                    self.ignore(&key);
                }
                continue;
            };
            if option == "type" {
                continue;
            }
            if option == "predicate" || option == "negate" {
                return Err(key_error(&key, "predicates are not supported: outboxd applies the EventRouter to every change of the outbox tables (those of table.include.list); remove the predicate"));
            }
            let value = self.cc[&key].clone();
            self.used.insert(key.clone());
            // Debezium 1.x's name of table.op.invalid.behavior; the new name wins.
            let option = if option == "debezium.op.invalid.behavior" {
                if self
                    .cc
                    .contains_key(&format!("{prefix}table.op.invalid.behavior"))
                {
                    self.ignored.insert(key.clone());
                    continue;
                }
                "table.op.invalid.behavior"
            } else {
                option
            };
            router.insert(option.to_string(), value);
        }
        // topic.prefix (Debezium 2+) or database.server.name (1.x): only the envelope schema's
        // name uses it, and outboxd does not require it.
        match (self.get("topic.prefix"), self.get("database.server.name")) {
            (Some(p), server_name) => {
                if server_name.is_some() {
                    self.ignored.insert("database.server.name".into());
                }
                router.insert("topic.prefix".into(), p);
            }
            (None, Some(p)) => {
                router.insert("topic.prefix".into(), p);
            }
            (None, None) => {}
        }
        RouterOptions::from_map(&router).map_err(|e| {
            let key = if e.key == "topic.prefix" {
                "topic.prefix".to_string()
            } else if e.key == "debezium.source.db" {
                "database.dbname".to_string()
            } else if let Some(option) = e.key.strip_prefix("header.from.") {
                format!("transforms.{}.{option}", header_froms.join(","))
            } else {
                format!("{prefix}{}", e.key)
            };
            key_error(&key, e.message)
        })?;
        Ok(router)
    }

    /// The HeaderFrom$Value transform `name`: its fields and headers, or `None` when its
    /// predicate selects none of the outbox tables' change topics.
    fn header_from(&mut self, name: &str) -> Result<Option<(String, String)>, DebeziumError> {
        let prefix = format!("transforms.{name}.");
        let key = |o: &str| format!("{prefix}{o}");
        let fields = self.get(&key("fields")).ok_or_else(|| {
            key_error(
                &key("fields"),
                "is missing: HeaderFrom needs the fields to copy (source,op,transaction)",
            )
        })?;
        let headers = self.get(&key("headers")).ok_or_else(|| {
            key_error(
                &key("headers"),
                "is missing: HeaderFrom needs a header name per field",
            )
        })?;
        match self
            .get(&key("operation"))
            .map(|o| o.to_ascii_lowercase())
            .as_deref()
        {
            // The EventRouter drops the change event either way.
            Some("copy") | Some("move") => {}
            Some(other) => {
                return Err(key_error(
                    &key("operation"),
                    format!("{other:?}: expected copy or move"),
                ))
            }
            None => {
                return Err(key_error(
                    &key("operation"),
                    "is missing: HeaderFrom needs copy or move",
                ))
            }
        }
        self.get(&key("replace.null.with.default"));
        let own: Vec<String> = self
            .cc
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        let predicate = self.get(&key("predicate"));
        let negate = match self
            .get(&key("negate"))
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(key_error(
                    &key("negate"),
                    format!("{v:?}: expected true or false"),
                ))
            }
        };
        for k in own {
            if !self.used.contains(&k) && k != key("type") {
                return Err(key_error(&k, "not an option outboxd knows of HeaderFrom (fields, headers, operation, replace.null.with.default, predicate, negate)"));
            }
        }
        let Some(predicate) = predicate else {
            return Ok(Some((fields, headers)));
        };
        let pkey = |o: &str| format!("predicates.{predicate}.{o}");
        self.get("predicates");
        match self.get(&pkey("type")) {
            Some(t) if t == TOPIC_NAME_MATCHES => {}
            Some(t) => return Err(key_error(&pkey("type"), format!("{t}: outboxd evaluates only {TOPIC_NAME_MATCHES} predicates (on the HeaderFrom transform)"))),
            None => return Err(key_error(&pkey("type"), format!("is missing: the predicate {predicate} of transforms.{name}.predicate needs a type"))),
        }
        let pattern = self.get(&pkey("pattern")).ok_or_else(|| {
            key_error(
                &pkey("pattern"),
                "is missing: TopicNameMatches needs a pattern",
            )
        })?;
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            key_error(
                &pkey("pattern"),
                format!("{pattern:?} is not a valid regular expression: {e}"),
            )
        })?;
        let topic_prefix = self
            .cc
            .get("topic.prefix")
            .or_else(|| self.cc.get("database.server.name"))
            .map(|p| p.trim().to_string())
            .unwrap_or_default();
        let tables: Vec<String> = self
            .cc
            .get("table.include.list")
            .map(|l| {
                l.split(',')
                    .filter_map(|t| TableName::parse(t.trim()).ok())
                    .map(|t| format!("{topic_prefix}.{}.{}", t.schema, t.name))
                    .collect()
            })
            .unwrap_or_default();
        let applies: Vec<bool> = tables.iter().map(|t| regex.is_match(t) != negate).collect();
        if applies.iter().all(|a| *a) {
            Ok(Some((fields, headers)))
        } else if applies.iter().all(|a| !*a) {
            self.warnings.push(format!("transforms.{name}: its predicate {predicate} selects none of the outbox tables' change topics ({}), so it adds no headers", tables.join(", ")));
            Ok(None)
        } else {
            Err(key_error(&key("predicate"), format!("{predicate} selects some of the outbox tables' change topics ({}) and not others; outboxd applies the transform to all outbox tables or none", tables.join(", "))))
        }
    }

    /// Key, value and header converters, as Kafka Connect picks them.
    pub(super) fn converters(&mut self) -> Result<BTreeMap<String, String>, DebeziumError> {
        let mut out = BTreeMap::new();
        let mut defaulted = Vec::new();
        for side in ["key", "value", "header"] {
            let class_key = format!("{side}.converter");
            let of = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                map.iter()
                    .filter(|(k, _)| {
                        **k == class_key
                            || k.strip_prefix(class_key.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                    .map(|(k, v)| (k.clone(), v.trim().to_string()))
                    .collect()
            };
            let from_connector = of(self.cc);
            let mut chosen = if from_connector.contains_key(&class_key) {
                for k in from_connector.keys() {
                    self.used.insert(k.clone());
                }
                from_connector
            } else {
                // Without the class, Kafka Connect uses the worker's converter and options, and
                // ignores the connector's `<side>.converter.*`.
                for k in from_connector.keys() {
                    self.ignore(k);
                }
                let mut from_worker = self.worker.map(of).unwrap_or_default();
                if side != "header" && !from_worker.contains_key(&class_key) {
                    from_worker.insert(class_key.clone(), JSON_CONVERTER.into());
                    if self.worker.is_none() {
                        defaulted.push(class_key.clone());
                    }
                }
                from_worker
            };
            // JsonConverter's schema cache size changes nothing in the bytes.
            chosen.retain(|k, _| !k.ends_with(".schemas.cache.size"));
            out.extend(chosen);
        }
        if !defaulted.is_empty() {
            self.warnings.push(format!(
                "{} not set in the connector and no worker file given (--worker-config): using Kafka Connect's default, JsonConverter with schemas.enable=true; if the Connect worker set other converters, pass its properties file with --worker-config",
                defaulted.join(" and ")
            ));
        }
        // Validated as [converters] is (io.debezium.converters.ByteBufferConverter, Debezium 1.x's
        // name of BinaryDataConverter, included).
        Converters::from_map(&out).map_err(|e| key_error(&e.key, e.message))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{Converter, BINARY_DATA_CONVERTER, BYTE_BUFFER_CONVERTER};
    use crate::debezium::testing::*;
    use crate::debezium::*;

    #[test]
    fn converters_are_picked_as_kafka_connect_picks_them() {
        // From the connector.
        let i = ok(&[
            ("key.converter", JSON_CONVERTER),
            ("key.converter.schemas.enable", "false"),
            ("value.converter", BINARY_DATA_CONVERTER),
            ("value.converter.delegate.converter.type", JSON_CONVERTER),
            (
                "value.converter.delegate.converter.type.schemas.enable",
                "false",
            ),
        ]);
        let conv = strings(&i.config().converters);
        let c = Converters::from_map(&conv).unwrap();
        assert_eq!(
            c.key,
            Converter::Json {
                schemas_enable: false
            }
        );
        assert_eq!(
            c.value,
            Converter::BinaryData {
                class: BINARY_DATA_CONVERTER,
                delegate: Some(Box::new(Converter::Json {
                    schemas_enable: false
                }))
            }
        );
        // Neither connector nor worker: Kafka Connect's default, with a warning.
        let i = ok(&[("key.converter", ""), ("value.converter", "")]);
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert_eq!(
            c.key,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("schemas.enable=true") && w.contains("--worker-config")),
            "{:?}",
            i.warnings
        );
        // From the worker: its options come with it, the connector's options without a class
        // are ignored (as Kafka Connect ignores them).
        let worker = parse_properties(
            "key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter.schemas.enable=false\n\
             value.converter.schemas.cache.size=500\n",
        )
        .unwrap();
        let i = import(
            &with(&[
                ("key.converter", ""),
                ("value.converter", ""),
                ("value.converter.schemas.enable", "true"),
            ]),
            Some(&worker),
        )
        .unwrap();
        let conv = strings(&i.config().converters);
        let c = Converters::from_map(&conv).unwrap();
        assert_eq!(c.key, Converter::String);
        // The worker names no value converter: Connect's default class with the worker's options.
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: false
            }
        );
        assert!(!conv.contains_key("value.converter.schemas.cache.size"));
        assert_eq!(
            i.ignored_keys,
            ["connector.class", "value.converter.schemas.enable"]
        );
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        // The connector's class wins over the worker's, with the connector's options only.
        let worker = pairs(&[
            ("value.converter", JSON_CONVERTER),
            ("value.converter.schemas.enable", "false"),
        ]);
        let i = import(&with(&[("value.converter", JSON_CONVERTER)]), Some(&worker)).unwrap();
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert_eq!(
            c.value,
            Converter::Json {
                schemas_enable: true
            }
        );
        // Debezium 1.x's ByteBufferConverter loads as itself.
        let i = ok(&[("value.converter", BYTE_BUFFER_CONVERTER)]);
        let c = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert!(matches!(
            c.value,
            Converter::BinaryData {
                class: BYTE_BUFFER_CONVERTER,
                ..
            }
        ));
        // Header converter: SimpleHeaderConverter or JsonConverter.
        ok(&[(
            "header.converter",
            "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        )]);
        ok(&[(
            "header.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        )]);
        err(
            &[(
                "header.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            )],
            "header.converter",
        );
        let e = err(
            &[("value.converter", "io.confluent.connect.avro.AvroConverter")],
            "value.converter",
        );
        assert!(e.contains("supported"), "{e}");
        err(
            &[("value.converter.schema.registry.url", "http://sr:8081")],
            "value.converter.schema.registry.url",
        );
    }

    #[test]
    fn the_event_router_options_become_the_router_section() {
        let i = ok(&[
            ("transforms", "outbox"),
            (
                "transforms.outbox.route.topic.replacement",
                "${routedByValue}.events",
            ),
            (
                "transforms.outbox.table.fields.additional.placement",
                "type:header:eventType",
            ),
            ("transforms.outbox.table.expand.json.payload", "true"),
            ("transforms.outbox.debezium.op.invalid.behavior", "fatal"),
            (
                "transforms.unused.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.unused.static.field", "x"),
        ]);
        let router = strings(&i.config().router);
        assert_eq!(
            router,
            pairs(&[
                ("route.topic.replacement", "${routedByValue}.events"),
                ("table.fields.additional.placement", "type:header:eventType"),
                ("table.expand.json.payload", "true"),
                ("table.op.invalid.behavior", "fatal"),
            ])
        );
        assert!(i
            .ignored_keys
            .contains(&"transforms.unused.static.field".to_string()));
        // Any transform name works.
        let c = ok(&[
            ("transforms", "router"),
            ("transforms.outbox.type", ""),
            ("transforms.router.type", EVENT_ROUTER),
            ("transforms.router.route.by.field", "type"),
        ])
        .config();
        assert_eq!(strings(&c.router), pairs(&[("route.by.field", "type")]));
        // Other transforms are listed in the error.
        let e = err(
            &[
                ("transforms", "unwrap,outbox,route"),
                (
                    "transforms.unwrap.type",
                    "io.debezium.transforms.ExtractNewRecordState",
                ),
                (
                    "transforms.route.type",
                    "org.apache.kafka.connect.transforms.RegexRouter",
                ),
            ],
            "transforms",
        );
        assert!(
            e.contains("unwrap (io.debezium.transforms.ExtractNewRecordState)")
                && e.contains("route (org.apache.kafka.connect.transforms.RegexRouter)"),
            "{e}"
        );
        let e = err(
            &[("transforms", ""), ("transforms.outbox.type", "")],
            "transforms",
        );
        assert!(e.contains(EVENT_ROUTER), "{e}");
        err(
            &[
                ("transforms", "a,b"),
                ("transforms.outbox.type", ""),
                ("transforms.a.type", EVENT_ROUTER),
                ("transforms.b.type", EVENT_ROUTER),
            ],
            "transforms",
        );
        err(&[("transforms", "outbox,x")], "transforms.x.type");
        err(
            &[("transforms.outbox.predicate", "isOutbox")],
            "transforms.outbox.predicate",
        );
        // A predicate no transform uses changes nothing.
        let i = ok(&[
            ("predicates", "isOutbox"),
            (
                "predicates.isOutbox.type",
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            ),
        ]);
        assert!(i.ignored_keys.contains(&"predicates".to_string()));
        let e = err(
            &[("transforms.outbox.route.topic.regex", "(")],
            "transforms.outbox.route.topic.regex",
        );
        assert!(e.contains("regular expression"), "{e}");
        err(
            &[("transforms.outbox.no.such.option", "1")],
            "transforms.outbox.no.such.option",
        );
    }

    #[test]
    fn topic_prefix_or_database_server_name_feed_the_router_and_neither_is_required() {
        let r = strings(&ok(&[("topic.prefix", "app")]).config().router);
        assert_eq!(r["topic.prefix"], "app");
        let r = strings(&ok(&[("database.server.name", "legacy")]).config().router);
        assert_eq!(r["topic.prefix"], "legacy");
        let i = ok(&[("topic.prefix", "app"), ("database.server.name", "legacy")]);
        assert_eq!(strings(&i.config().router)["topic.prefix"], "app");
        assert!(i.ignored_keys.contains(&"database.server.name".to_string()));
        assert!(!strings(&ok(&[]).config().router).contains_key("topic.prefix"));
        // Only envelope placements with schemas need it, as the router says.
        let envelope = [
            ("value.converter", JSON_CONVERTER),
            (
                "transforms.outbox.table.fields.additional.placement",
                "type:envelope:eventType",
            ),
        ];
        let e = err(&envelope, "topic.prefix");
        assert!(e.contains("database.server.name"), "{e}");
        let mut with_prefix = envelope.to_vec();
        with_prefix.push(("topic.prefix", "app"));
        ok(&with_prefix);
    }

    /// Debezium's documented CloudEvents outbox connector (cloudevents.adoc, 3.x).
    fn cloudevents_connector() -> Vec<(&'static str, &'static str)> {
        vec![
            ("topic.prefix", "live"),
            ("tombstones.on.delete", "false"),
            ("transforms", "addMetadataHeaders,outbox"),
            ("transforms.addMetadataHeaders.type", HEADER_FROM_VALUE),
            (
                "transforms.addMetadataHeaders.fields",
                "source,op,transaction",
            ),
            (
                "transforms.addMetadataHeaders.headers",
                "source,op,transaction",
            ),
            ("transforms.addMetadataHeaders.operation", "copy"),
            ("transforms.addMetadataHeaders.predicate", "isHeartbeat"),
            ("transforms.addMetadataHeaders.negate", "true"),
            ("transforms.outbox.table.expand.json.payload", "true"),
            (
                "transforms.outbox.table.fields.additional.placement",
                "type:header",
            ),
            ("predicates", "isHeartbeat"),
            ("predicates.isHeartbeat.type", TOPIC_NAME_MATCHES),
            ("predicates.isHeartbeat.pattern", "__debezium-heartbeat.*"),
            ("value.converter", crate::convert::CLOUD_EVENTS_CONVERTER),
            ("value.converter.metadata.source", "header"),
            ("header.converter", JSON_CONVERTER),
            ("header.converter.schemas.enable", "true"),
        ]
    }

    #[test]
    fn debeziums_cloudevents_outbox_connector_maps_to_header_from_and_the_converter() {
        let c = cloudevents_connector();
        let i = ok(&c);
        let router = strings(&i.config().router);
        assert_eq!(router["header.from.fields"], "source,op,transaction");
        assert_eq!(router["header.from.headers"], "source,op,transaction");
        assert_eq!(router["debezium.source.db"], "app");
        assert_eq!(router["topic.prefix"], "live");
        let conv = Converters::from_map(&strings(&i.config().converters)).unwrap();
        assert!(matches!(conv.value, Converter::CloudEvents(_)));
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        // A predicate that selects the outbox table's change topic: the transform runs.
        let mut c2 = c.clone();
        c2.retain(|(k, _)| *k != "transforms.addMetadataHeaders.negate");
        c2.push(("predicates.isHeartbeat.pattern", "live\\.public\\..*"));
        let i = ok(&c2);
        assert!(strings(&i.config().router).contains_key("header.from.fields"));
        // One that selects none: the transform adds nothing, so the converter would write null
        // values; outboxd says so.
        let mut c3 = c.clone();
        c3.retain(|(k, _)| *k != "transforms.addMetadataHeaders.negate");
        let e = err(&c3, "transforms");
        assert!(e.contains("null value"), "{e}");
        let mut c4 = c.clone();
        c4.push((
            "predicates.isHeartbeat.type",
            "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
        ));
        err(&c4, "predicates.isHeartbeat.type");
        let mut c5 = c.clone();
        c5.push(("transforms", "outbox,addMetadataHeaders"));
        err(&c5, "transforms.addMetadataHeaders.type");
        let mut c6 = c.clone();
        c6.push(("transforms.addMetadataHeaders.fields", "source,after"));
        c6.push(("transforms.addMetadataHeaders.headers", "source,after"));
        let e = err(&c6, "transforms.addMetadataHeaders.fields");
        assert!(e.contains("after"), "{e}");
        let mut c7 = c.clone();
        c7.push(("transforms.addMetadataHeaders.operation", "swap"));
        err(&c7, "transforms.addMetadataHeaders.operation");
        // Without the HeaderFrom transform, Debezium writes null values: refused with the fix.
        let mut c8 = c.clone();
        c8.push(("transforms", "outbox"));
        c8.retain(|(k, _)| !k.starts_with("transforms.addMetadataHeaders"));
        let e = err(&c8, "transforms");
        assert!(e.contains("HeaderFrom"), "{e}");
    }
}
