//! The connector keys of outboxd's `[source]` and `[exactly_once]` sections: `database.*` into
//! `source.url`, the tables, the slot and publication, snapshots, heartbeats, logical decoding
//! message prefixes and Debezium's exactly-once support.
//!
//! Owns how each of these keys maps, as [`Mapper`] methods. It must not touch the router,
//! converter or producer keys.

use super::mapper::{is_config_provider_reference, Mapper};
use super::{key_error, DebeziumError};
use crate::config::SnapshotMode;
use crate::source::params::percent_encode;
use crate::source::ConnectParams;

/// The entries of a comma-separated Debezium include list (blank ones skipped), each as written
/// and as the exact name it stands for: `\.` (how a careful regular expression writes a literal
/// dot) is read as the dot, any other regular expression character is an error whose fix is
/// `needed` ("the outbox tables named exactly; …").
fn exact_names(
    key: &str,
    list: &str,
    needed: &str,
) -> Result<Vec<(String, String)>, DebeziumError> {
    let mut names = Vec::new();
    for raw in list.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let name = entry.replace("\\.", ".");
        if let Some(c) = name.chars().find(|c| "\\^$*+?()[]{}|".contains(*c)) {
            return Err(key_error(
                key,
                format!("{entry:?} is a regular expression (it contains {c:?}): Debezium matches these entries as regular expressions, outboxd needs {needed}"),
            ));
        }
        names.push((entry.to_string(), name));
    }
    Ok(names)
}

impl Mapper<'_> {
    /// `database.*` → `source.url` (without and with the password).
    pub(super) fn url(&mut self) -> Result<(String, Option<String>), DebeziumError> {
        let required = |m: &mut Self, key: &str, what: &str| {
            m.get(key)
                .ok_or_else(|| key_error(key, format!("is required: the database {what}")))
        };
        let host = required(self, "database.hostname", "server's host name")?;
        if host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@[]".contains(c))
        {
            return Err(key_error(
                "database.hostname",
                format!("{host:?} is not a host name or IP address"),
            ));
        }
        let port = match self.get("database.port") {
            Some(p) => p.parse::<u16>().map_err(|_| {
                key_error("database.port", format!("{p:?} is not a TCP port number"))
            })?,
            None => 5432,
        };
        let user = required(self, "database.user", "user (a role with REPLICATION)")?;
        let dbname = required(self, "database.dbname", "name")?;
        let password = match self.cc.get("database.password") {
            Some(p) => {
                self.used.insert("database.password".into());
                if is_config_provider_reference(p) {
                    self.warnings.push("database.password is a config provider reference of a provider outboxd does not support: the password comes from the PGPASSWORD environment variable".into());
                    None
                } else {
                    Some(p.clone()).filter(|p| !p.is_empty())
                }
            }
            None => None,
        };
        let mut query = Vec::new();
        if let Some(mode) = self.get("database.sslmode") {
            let m = mode.to_ascii_lowercase().replace('_', "-");
            match m.as_str() {
                "disable" | "prefer" | "require" | "verify-ca" | "verify-full" => {
                    query.push(format!("sslmode={m}"))
                }
                "allow" => return Err(key_error(
                    "database.sslmode",
                    "allow is not supported (it tries without TLS first): use prefer (TLS when the server offers it) or disable",
                )),
                _ => return Err(key_error(
                    "database.sslmode",
                    format!("{mode:?}: expected disable, prefer, require, verify-ca or verify-full"),
                )),
            }
        }
        for (key, param) in [
            ("database.sslrootcert", "sslrootcert"),
            ("database.sslcert", "sslcert"),
            ("database.sslkey", "sslkey"),
        ] {
            if let Some(path) = self.get(key) {
                query.push(format!("{param}={}", percent_encode(&path)));
            }
        }
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let tail = format!(
            "{host_part}:{port}/{}{}{}",
            percent_encode(&dbname),
            if query.is_empty() { "" } else { "?" },
            query.join("&")
        );
        let url = format!("postgres://{}@{tail}", percent_encode(&user));
        // The URL must parse as outboxd parses it (nothing read from the environment here).
        ConnectParams::from_url_with_env(&url, |_| None).map_err(|e| {
            key_error(
                "database.hostname",
                format!("the connection settings do not form a valid source URL: {e}"),
            )
        })?;
        let with_password = password.map(|p| {
            format!(
                "postgres://{}:{}@{tail}",
                percent_encode(&user),
                percent_encode(&p)
            )
        });
        Ok((url, with_password))
    }

    /// `table.include.list` (`table.whitelist` before Debezium 1.3) → `source.tables`.
    pub(super) fn tables(&mut self) -> Result<Vec<String>, DebeziumError> {
        let (key, list) = match (
            self.get("table.include.list"),
            self.get("table.whitelist"),
        ) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "table.whitelist",
                    "is the old name of table.include.list; keep only table.include.list",
                ))
            }
            (Some(l), None) => ("table.include.list", l),
            (None, Some(l)) => ("table.whitelist", l),
            (None, None) => {
                return Err(key_error(
                    "table.include.list",
                    "is required: outboxd reads only the outbox tables, named as schema.table (e.g. public.outbox)",
                ))
            }
        };
        let mut tables = Vec::new();
        let entries = exact_names(
            key,
            &list,
            "the outbox tables named exactly; list them as schema.table, comma-separated (e.g. public.outbox,billing.outbox)",
        )?;
        for (entry, name) in entries {
            match name.split_once('.') {
                Some((schema, table))
                    if !schema.is_empty() && !table.is_empty() && !table.contains('.') => {}
                _ => {
                    return Err(key_error(
                        key,
                        format!("{entry:?}: expected schema.table (Debezium matches the schema-qualified name), e.g. public.outbox"),
                    ))
                }
            }
            tables.push(name);
        }
        if tables.is_empty() {
            return Err(key_error(key, "names no table"));
        }
        Ok(tables)
    }

    /// `message.prefix.include.list` → `source.message_prefixes`: exact prefixes, as
    /// `table.include.list` takes exact table names (Debezium matches its entries as anchored
    /// regular expressions; one without metacharacters matches exactly its text).
    pub(super) fn message_prefixes(&mut self) -> Result<Vec<String>, DebeziumError> {
        const KEY: &str = "message.prefix.include.list";
        let Some(list) = self.get(KEY) else {
            // `message.prefix.exclude.list` alone: no message is an outbox event (ignored key).
            return Ok(Vec::new());
        };
        if self.get("message.prefix.exclude.list").is_some() {
            return Err(key_error(
                "message.prefix.exclude.list",
                "cannot be combined with message.prefix.include.list (Debezium refuses both too); keep the include list",
            ));
        }
        let mut prefixes: Vec<String> = Vec::new();
        let entries = exact_names(
            KEY,
            &list,
            "the prefixes named exactly; list them comma-separated (e.g. outbox,billing)",
        )?;
        for (_, name) in entries {
            if !prefixes.contains(&name) {
                prefixes.push(name);
            }
        }
        if prefixes.is_empty() {
            return Err(key_error(KEY, "names no prefix"));
        }
        self.warnings.push(format!(
            "message.prefix.include.list: outboxd publishes the transactional logical decoding messages with the prefixes {} as outbox events, routed by the EventRouter options like rows (the content must be a JSON object of the outbox fields; see docs/configuration.md), where Debezium publishes every message as a <topic.prefix>.message change record; non-transactional messages are skipped with a warning",
            prefixes.join(", ")
        ));
        Ok(prefixes)
    }

    /// `plugin.name`: only `pgoutput` slots can be read.
    pub(super) fn plugin(&mut self) -> Result<(), DebeziumError> {
        match self.get("plugin.name").map(|p| p.to_ascii_lowercase()) {
            Some(p) if p == "pgoutput" => Ok(()),
            Some(p) => Err(key_error(
                "plugin.name",
                format!("{p}: outboxd reads only pgoutput slots, so it cannot continue this connector's slot. To switch: set plugin.name=pgoutput and a new slot.name (e.g. outboxd), create that publication and slot while the connector still runs (SQL in docs/migration-from-debezium.md), then stop the connector and start outboxd. Events committed between the new slot's creation and the connector's stop are published again (duplicates, never a gap); drop the old slot afterwards, as it holds WAL for as long as it exists"),
            )),
            None => {
                self.warnings.push("plugin.name is not set, and Debezium's default is decoderbufs: outboxd reads only pgoutput slots, and stops with an error if the slot exists with another plugin (see docs/migration-from-debezium.md)".into());
                Ok(())
            }
        }
    }

    /// `snapshot.mode` → `source.snapshot_mode` (Debezium's default: `initial`). Older names:
    /// `never` and `schema_only` (= `no_data`), `exported` (= `initial`).
    pub(super) fn snapshot(&mut self) -> Result<SnapshotMode, DebeziumError> {
        let Some(m) = self
            .get("snapshot.mode")
            .map(|m| m.trim().to_ascii_lowercase())
        else {
            return Ok(SnapshotMode::Initial);
        };
        Ok(match m.as_str() {
            "no_data" | "never" | "schema_only" => SnapshotMode::NoData,
            "initial" | "exported" | "" => SnapshotMode::Initial,
            "always" => SnapshotMode::Always,
            "initial_only" => SnapshotMode::InitialOnly,
            "when_needed" => SnapshotMode::WhenNeeded,
            _ => return Err(key_error(
                "snapshot.mode",
                format!("{m}: outboxd supports no_data (never, schema_only), initial (exported), always, initial_only and when_needed; recovery, custom and configuration_based have no outboxd equivalent: pick one of those (when outboxd takes over Debezium's slot, initial takes no snapshot: the slot exists)"),
            )),
        })
    }

    /// `publication.autocreate.mode` → `source.create_publication`.
    pub(super) fn publication_mode(&mut self) -> Result<bool, DebeziumError> {
        match self
            .get("publication.autocreate.mode")
            .map(|m| m.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("filtered") => Ok(true),
            Some("all_tables") => {
                self.warnings.push("publication.autocreate.mode=all_tables: outboxd creates a missing publication FOR TABLE the outbox tables only (the same events, less decoding work); an existing FOR ALL TABLES publication is used as it is".into());
                Ok(true)
            }
            Some("disabled") | Some("no_tables") => Ok(false),
            Some(other) => Err(key_error(
                "publication.autocreate.mode",
                format!("{other:?}: expected all_tables, filtered, disabled or no_tables"),
            )),
        }
    }

    /// Kafka Connect's exactly-once source support (KIP-618): `exactly.once.support=required` →
    /// `[exactly_once] enabled`, `transaction.boundary=interval` with
    /// `transaction.boundary.interval.ms` → `commit_interval_ms`. `offsets.storage.topic` is not
    /// taken over: Connect's offsets topic holds Connect's own records.
    pub(super) fn exactly_once(
        &mut self,
    ) -> Result<crate::exactly_once::ExactlyOnceConfig, DebeziumError> {
        let mut eos = crate::exactly_once::ExactlyOnceConfig::default();
        match self
            .get("exactly.once.support")
            .map(|v| v.to_ascii_lowercase())
        {
            None => {}
            Some(v) if v == "requested" => self.ignore("exactly.once.support"),
            Some(v) if v == "required" => eos.enabled = true,
            Some(v) => {
                return Err(key_error(
                    "exactly.once.support",
                    format!("{v:?}: expected requested or required"),
                ))
            }
        }
        if !eos.enabled {
            for key in [
                "transaction.boundary",
                "transaction.boundary.interval.ms",
                "offsets.storage.topic",
            ] {
                self.ignore(key);
            }
            return Ok(eos);
        }
        match self.get("transaction.boundary").map(|v| v.to_ascii_lowercase()) {
            None => self.ignore("transaction.boundary.interval.ms"),
            Some(v) if v == "poll" => self.ignore("transaction.boundary.interval.ms"),
            Some(v) if v == "interval" => {
                if let Some(ms) = self.get("transaction.boundary.interval.ms") {
                    eos.commit_interval_ms = ms.parse().map_err(|_| {
                        key_error(
                            "transaction.boundary.interval.ms",
                            format!("{ms:?}: expected milliseconds"),
                        )
                    })?;
                }
            }
            Some(v) => {
                return Err(key_error(
                    "transaction.boundary",
                    format!("{v:?}: outboxd supports poll (its default: a commit every 100 ms or 5000 events, whole Postgres transactions only) and interval; connector-defined boundaries do not apply to an outbox relay"),
                ))
            }
        }
        if let Some(topic) = self.get("offsets.storage.topic") {
            self.warnings.push(format!("offsets.storage.topic={topic}: outboxd keeps its positions in a topic of its own (offsets.topic, default outboxd-offsets), not in Kafka Connect's offsets topic"));
        }
        eos.resolve(
            "debezium",
            &crate::position::OffsetsConfig::default()
                .resolve()
                .expect("the defaults are valid"),
        )
        .map_err(|e| key_error("transaction.boundary.interval.ms", e.to_string()))?;
        Ok(eos)
    }

    /// `heartbeat.interval.ms` + `heartbeat.action.query` → `source.heartbeat_*`.
    pub(super) fn heartbeat(&mut self) -> Result<(u64, Option<String>), DebeziumError> {
        let interval = match self.get("heartbeat.interval.ms") {
            Some(v) => v.parse::<u64>().map_err(|_| {
                key_error(
                    "heartbeat.interval.ms",
                    format!("{v:?}: expected milliseconds (0 = off)"),
                )
            })?,
            None => 0,
        };
        let query = self.get("heartbeat.action.query");
        match (interval, query) {
            (ms, Some(q)) if ms > 0 => Ok((ms, Some(q))),
            // Alone, either does nothing in outboxd (Debezium: the interval alone writes
            // heartbeat records and flushes offsets; the query alone never runs).
            _ => {
                self.ignore("heartbeat.interval.ms");
                self.ignore("heartbeat.action.query");
                Ok((0, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::testing::*;
    use crate::debezium::*;

    #[test]
    fn database_keys_make_the_source_url() {
        let i = ok(&[
            ("database.hostname", "db.example.com"),
            ("database.port", "6543"),
            ("database.user", "dbz user"),
            ("database.dbname", "my db"),
            ("database.sslmode", "VERIFY-FULL"),
            ("database.sslrootcert", "/certs/ca.pem"),
            ("database.sslcert", "/certs/client.pem"),
            ("database.sslkey", "/certs/client.key"),
        ]);
        let url = &i.config().source.url;
        assert_eq!(
            url,
            "postgres://dbz%20user@db.example.com:6543/my%20db?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.pem&sslcert=%2Fcerts%2Fclient.pem&sslkey=%2Fcerts%2Fclient.key"
        );
        let p = ConnectParams::from_url_with_env(url, |_| None).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("db.example.com", 6543));
        assert_eq!((p.user.as_str(), p.dbname.as_str()), ("dbz user", "my db"));
        assert_eq!(
            p.sslrootcert.as_deref(),
            Some(std::path::Path::new("/certs/ca.pem"))
        );
        assert_eq!(
            p.sslkey.as_deref(),
            Some(std::path::Path::new("/certs/client.key"))
        );
        // Port defaults to 5432; an IPv6 address gets brackets.
        let i = ok(&[("database.port", ""), ("database.hostname", "::1")]);
        assert_eq!(i.config().source.url, "postgres://debezium@[::1]:5432/app");
        for key in ["database.hostname", "database.user", "database.dbname"] {
            let e = err(&[(key, "")], key);
            assert!(e.contains("required"), "{e}");
        }
        err(&[("database.port", "54x")], "database.port");
        err(&[("database.hostname", "db/x")], "database.hostname");
    }

    #[test]
    fn the_password_comes_from_the_json_percent_encoded_else_from_pgpassword() {
        let secret = "p@ss:w/rd%?#&é";
        let i = ok(&[("database.password", secret)]);
        assert!(i.has_password());
        let url = i.config().source.url;
        let p = ConnectParams::from_url_with_env(&url, |_| Some("from-env".into())).unwrap();
        assert_eq!(p.password.as_deref(), Some(secret));
        // Never in what is printed or debugged.
        assert!(!i.to_toml().contains("p@ss"), "{}", i.to_toml());
        assert!(!format!("{i:?}").contains("p@ss"));
        assert!(!format!("{:?}", with(&[("database.password", secret)])).contains("p@ss"));
        assert!(i.to_toml().contains("PGPASSWORD"));
        // Without one, the URL has none and PGPASSWORD applies.
        let i = ok(&[]);
        assert!(!i.has_password());
        let p = ConnectParams::from_url_with_env(&i.config().source.url, |k| {
            (k == "PGPASSWORD").then(|| "from-env".into())
        })
        .unwrap();
        assert_eq!(p.password.as_deref(), Some("from-env"));
        // An unresolved config provider reference: PGPASSWORD, with a warning.
        let i = ok(&[("database.password", "${vault:secret/db:password}")]);
        assert!(!i.has_password());
        assert!(
            i.warnings.iter().any(|w| w.contains("PGPASSWORD")),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn sslmode_takes_debeziums_values_and_encrypted_keys_are_refused() {
        for mode in [
            "disable",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
            "verify_ca",
        ] {
            let url = ok(&[("database.sslmode", mode)]).config().source.url;
            assert!(
                url.ends_with(&format!("?sslmode={}", mode.replace('_', "-"))),
                "{url}"
            );
        }
        let e = err(&[("database.sslmode", "allow")], "database.sslmode");
        assert!(e.contains("prefer"), "{e}");
        err(&[("database.sslmode", "on")], "database.sslmode");
        let e = err(&[("database.sslpassword", "x")], "database.sslpassword");
        assert!(
            e.contains("encrypted") && e.contains("database.sslkey"),
            "{e}"
        );
        assert!(!e.contains("\"x\""));
        ok(&[("database.sslpassword", "")]);
    }

    #[test]
    fn slot_and_publication_take_debeziums_defaults() {
        let c = ok(&[]).config();
        assert_eq!(c.source.slot, "debezium");
        assert_eq!(c.source.publication, "dbz_publication");
        assert!(c.source.create_slot && c.source.create_publication);
        assert_eq!(c.source.status_interval_ms, 1000);
        let c = ok(&[
            ("slot.name", "orders_slot"),
            ("publication.name", "orders_pub"),
            ("status.update.interval.ms", "10000"),
        ])
        .config();
        assert_eq!(c.source.slot, "orders_slot");
        assert_eq!(c.source.publication, "orders_pub");
        assert_eq!(c.source.status_interval_ms, 10_000);
        let e = err(&[("slot.name", "Orders-Slot")], "slot.name");
        assert!(e.contains("lower-case"), "{e}");
        err(&[("publication.name", "a b")], "publication.name");
        err(
            &[("status.update.interval.ms", "60000")],
            "status.update.interval.ms",
        );
    }

    #[test]
    fn publication_autocreate_mode_maps_to_create_publication() {
        let i = ok(&[("publication.autocreate.mode", "all_tables")]);
        assert!(i.config().source.create_publication);
        assert!(
            i.warnings.iter().any(|w| w.contains("FOR TABLE")),
            "{:?}",
            i.warnings
        );
        assert!(
            ok(&[("publication.autocreate.mode", "filtered")])
                .config()
                .source
                .create_publication
        );
        assert!(
            !ok(&[("publication.autocreate.mode", "DISABLED")])
                .config()
                .source
                .create_publication
        );
        assert!(
            !ok(&[("publication.autocreate.mode", "no_tables")])
                .config()
                .source
                .create_publication
        );
        err(
            &[("publication.autocreate.mode", "some")],
            "publication.autocreate.mode",
        );
    }

    #[test]
    fn table_include_list_takes_exact_names_only() {
        let c = ok(&[("table.include.list", " public.outbox , billing\\.outbox,")]).config();
        assert_eq!(c.source.tables, ["public.outbox", "billing.outbox"]);
        // Debezium 1.x's name.
        let c = ok(&[
            ("table.include.list", ""),
            ("table.whitelist", "app.outboxevent"),
        ])
        .config();
        assert_eq!(c.source.tables, ["app.outboxevent"]);
        let e = err(
            &[("table.include.list", "public.outbox_.*")],
            "table.include.list",
        );
        assert!(
            e.contains("regular expression") && e.contains("schema.table"),
            "{e}"
        );
        for bad in ["public.(a|b)", "^public.outbox$", "public.outbox[0-9]"] {
            err(&[("table.include.list", bad)], "table.include.list");
        }
        let e = err(&[("table.include.list", "outbox")], "table.include.list");
        assert!(e.contains("schema.table"), "{e}");
        err(&[("table.include.list", "a.b.c")], "table.include.list");
        err(&[("table.include.list", " , ")], "table.include.list");
        err(&[("table.include.list", "")], "table.include.list");
        err(&[("table.whitelist", "public.outbox")], "table.whitelist");
        err(
            &[("table.exclude.list", "public.other")],
            "table.exclude.list",
        );
    }

    #[test]
    fn only_pgoutput_is_accepted_and_the_error_says_how_to_switch() {
        ok(&[("plugin.name", "PGOUTPUT")]);
        for plugin in ["decoderbufs", "wal2json", "wal2json_streaming"] {
            let e = err(&[("plugin.name", plugin)], "plugin.name");
            assert!(
                e.contains("plugin.name=pgoutput")
                    && e.contains("new slot.name")
                    && e.contains("published again")
                    && e.contains("drop the old slot"),
                "{e}"
            );
        }
        let i = ok(&[("plugin.name", "")]);
        assert!(
            i.warnings.iter().any(|w| w.contains("decoderbufs")),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn snapshot_modes_map_to_snapshot_mode_with_debezium_default_initial() {
        for (mode, expected) in [
            ("no_data", SnapshotMode::NoData),
            ("never", SnapshotMode::NoData),
            ("schema_only", SnapshotMode::NoData),
            ("initial", SnapshotMode::Initial),
            ("Exported", SnapshotMode::Initial),
            ("always", SnapshotMode::Always),
            ("initial_only", SnapshotMode::InitialOnly),
            ("when_needed", SnapshotMode::WhenNeeded),
        ] {
            let c = ok(&[("snapshot.mode", mode)]).config();
            assert_eq!(c.source.snapshot_mode, expected, "{mode}");
        }
        assert_eq!(
            ok(&[("snapshot.mode", "")]).config().source.snapshot_mode,
            SnapshotMode::Initial,
            "Debezium's default"
        );
        for mode in ["custom", "configuration_based", "recovery"] {
            let e = err(&[("snapshot.mode", mode)], "snapshot.mode");
            assert!(e.contains("when_needed") && e.contains(mode), "{e}");
        }
    }

    #[test]
    fn heartbeats_need_both_keys() {
        let c = ok(&[
            ("heartbeat.interval.ms", "5000"),
            (
                "heartbeat.action.query",
                "INSERT INTO heartbeat VALUES (now())",
            ),
        ])
        .config();
        assert_eq!(c.source.heartbeat_interval_ms, 5000);
        assert_eq!(
            c.source.heartbeat_action_query.as_deref(),
            Some("INSERT INTO heartbeat VALUES (now())")
        );
        // Alone, either does nothing in outboxd: ignored.
        let i = ok(&[("heartbeat.interval.ms", "5000")]);
        assert_eq!(i.config().source.heartbeat_interval_ms, 0);
        assert!(i
            .ignored_keys
            .contains(&"heartbeat.interval.ms".to_string()));
        let i = ok(&[("heartbeat.action.query", "SELECT 1")]);
        assert_eq!(i.config().source.heartbeat_action_query, None);
        assert!(i
            .ignored_keys
            .contains(&"heartbeat.action.query".to_string()));
        let i = ok(&[
            ("heartbeat.interval.ms", "0"),
            ("heartbeat.action.query", "SELECT 1"),
        ]);
        assert_eq!(i.config().source.heartbeat_action_query, None);
        err(&[("heartbeat.interval.ms", "10s")], "heartbeat.interval.ms");
    }

    #[test]
    fn exactly_once_support_required_maps_to_exactly_once_mode() {
        let i = ok(&[
            ("exactly.once.support", "required"),
            ("transaction.boundary", "interval"),
            ("transaction.boundary.interval.ms", "250"),
            ("offsets.storage.topic", "connect-offsets"),
        ]);
        let c = i.config();
        assert!(c.exactly_once.enabled);
        assert_eq!(c.exactly_once.commit_interval_ms, 250);
        assert_eq!(
            c.exactly_once.offsets_topic, None,
            "offsets.topic's default"
        );
        assert!(
            i.warnings
                .iter()
                .any(|w| w.starts_with("offsets.storage.topic=connect-offsets: ")),
            "{:?}",
            i.warnings
        );
        let text = i.to_toml();
        let back = Config::from_toml(&text).unwrap();
        assert!(back.exactly_once.enabled, "{text}");
        assert_eq!(back.exactly_once.commit_interval_ms, 250);
        // With Debezium's default snapshot.mode (initial): a plan that runs.
        let mut c = c;
        c.source.snapshot_mode = crate::config::SnapshotMode::Initial;
        c.kafka.insert("bootstrap.servers".into(), "k:9092".into());
        let plan = crate::pipeline::Plan::from_config(&c).expect("exactly-once with initial");
        assert!(plan.exactly_once.is_some() && plan.offsets.is_none());
        // requested (Connect's default) is at-least-once when the worker cannot do better: ignored.
        let i = ok(&[
            ("exactly.once.support", "requested"),
            ("transaction.boundary", "connector"),
        ]);
        assert!(!i.config().exactly_once.enabled);
        assert!(i.ignored_keys.contains(&"transaction.boundary".to_string()));
        assert!(!i.to_toml().contains("[exactly_once]"));
        err(
            &[("exactly.once.support", "always")],
            "exactly.once.support",
        );
        err(
            &[
                ("exactly.once.support", "required"),
                ("transaction.boundary", "connector"),
            ],
            "transaction.boundary",
        );
        err(
            &[
                ("exactly.once.support", "required"),
                ("transaction.boundary", "interval"),
                ("transaction.boundary.interval.ms", "600000"),
            ],
            "transaction.boundary.interval.ms",
        );
    }

    #[test]
    fn slot_drop_on_stop_and_logical_messages() {
        let i = ok(&[("slot.drop.on.stop", "true")]);
        assert!(
            i.warnings.iter().any(|w| w.contains("outboxd slot drop")),
            "{:?}",
            i.warnings
        );
        assert!(ok(&[("slot.drop.on.stop", "false")])
            .warnings
            .iter()
            .all(|w| !w.contains("slot drop")));
        let e = err(
            &[("message.prefix.include.list", "audit.*")],
            "message.prefix.include.list",
        );
        assert!(e.contains("regular expression"), "{e}");
        let excluded = ok(&[("message.prefix.exclude.list", ".*")]);
        assert!(excluded
            .ignored_keys
            .contains(&"message.prefix.exclude.list".into()));
        assert!(excluded.config().source.message_prefixes.is_empty());
    }

    #[test]
    fn message_prefix_include_list_becomes_message_prefixes() {
        let i = ok(&[(
            "message.prefix.include.list",
            " outbox , billing\\.v1,outbox,",
        )]);
        assert_eq!(i.config().source.message_prefixes, ["outbox", "billing.v1"]);
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("message.prefix.include.list")
                    && w.contains("outbox, billing.v1")),
            "{:?}",
            i.warnings
        );
        assert!(!i
            .ignored_keys
            .contains(&"message.prefix.include.list".into()));
        // The TOML translation carries it and loads.
        let toml = i.to_toml();
        assert!(
            toml.contains("message_prefixes = [\"outbox\", \"billing.v1\"]"),
            "{toml}"
        );
        assert_eq!(
            Config::from_toml(&toml).unwrap().source.message_prefixes,
            ["outbox", "billing.v1"]
        );
        // Absent: no messages.
        assert!(ok(&[]).config().source.message_prefixes.is_empty());
        err(
            &[
                ("message.prefix.include.list", "outbox"),
                ("message.prefix.exclude.list", "x"),
            ],
            "message.prefix.exclude.list",
        );
        err(
            &[("message.prefix.include.list", " , ")],
            "message.prefix.include.list",
        );
        err(
            &[("message.prefix.include.list", "a|b")],
            "message.prefix.include.list",
        );
    }
}
