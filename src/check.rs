//! `outboxd check`: preflight checks of the database, the slot, the publication and Kafka, each
//! failure with the SQL or setting that fixes it.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};
use tokio_postgres::Client;

use crate::pipeline::Plan;
use crate::sink::offsets::filters_aborted;
use crate::source::connection::ReplicationConnection;
use crate::source::quote::quote_ident;
use crate::source::setup::{self, quote_table};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// What was found.
    pub detail: String,
    /// How to fix a failure.
    pub fix: Option<String>,
}

impl CheckResult {
    fn pass(name: &str, detail: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            passed: true,
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            passed: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check; never stops at the first failure unless later checks cannot run.
pub async fn run_checks(plan: &Plan) -> Vec<CheckResult> {
    let mut results = Vec::new();
    match plan.params.connect_sql().await {
        Ok(client) => {
            results.push(CheckResult::pass(
                "postgres connection",
                format!("connected to {}", plan.params.redacted_url()),
            ));
            database_checks(&client, plan, &mut results).await;
            partition_and_cleanup_checks(&client, plan, &mut results).await;
            failover_checks(&client, plan, &mut results).await;
        }
        Err(e) => results.push(CheckResult::fail(
            "postgres connection",
            e.to_string(),
            "check source.url (host, port, user, database, sslmode) and the password (URL or PGPASSWORD)",
        )),
    }
    results.push(replication_connection_check(plan).await);
    results.extend(kafka_checks(plan).await);
    results
}

async fn database_checks(client: &Client, plan: &Plan, out: &mut Vec<CheckResult>) {
    let one = |sql: &'static str| async move {
        client.query_one(sql, &[]).await.map_err(|e| e.to_string())
    };

    match one("SELECT current_setting('wal_level')").await {
        Ok(row) => {
            let level: String = row.get(0);
            out.push(if level == "logical" {
                CheckResult::pass("wal_level", "logical")
            } else {
                CheckResult::fail(
                    "wal_level",
                    format!("wal_level is {level}, logical decoding needs logical"),
                    "ALTER SYSTEM SET wal_level = logical; then restart Postgres (on managed services: enable logical replication in the parameter group)",
                )
            });
        }
        Err(e) => out.push(CheckResult::fail("wal_level", e, "check the connection")),
    }

    match one("SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").await {
        Ok(row) => {
            let (user, may): (String, bool) = (row.get(0), row.get(1));
            out.push(if may {
                CheckResult::pass("replication privilege", format!("role {user} has REPLICATION or is superuser"))
            } else {
                CheckResult::fail(
                    "replication privilege",
                    format!("role {user} has neither REPLICATION nor superuser"),
                    format!("ALTER ROLE {} WITH REPLICATION;", quote_ident(&user)),
                )
            });
        }
        Err(e) => out.push(CheckResult::fail("replication privilege", e, "check the connection")),
    }

    match one(
        "SELECT current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication)::int",
    )
    .await
    {
        Ok(row) => {
            let free: i32 = row.get(0);
            out.push(if free > 0 {
                CheckResult::pass("wal senders", format!("{free} free"))
            } else {
                CheckResult::fail(
                    "wal senders",
                    "every max_wal_senders connection is in use",
                    "ALTER SYSTEM SET max_wal_senders = <more>; then restart Postgres",
                )
            });
        }
        Err(e) => out.push(CheckResult::fail("wal senders", e, "check the connection")),
    }

    for table in &plan.setup.tables {
        let name = format!("table {table}");
        match setup::table_columns(client, table).await {
            Ok(Some(columns)) => {
                let missing: Vec<&String> = plan
                    .setup
                    .required_columns
                    .iter()
                    .filter(|c| !columns.contains(c))
                    .collect();
                out.push(if missing.is_empty() {
                    CheckResult::pass(&name, format!("has the columns {:?}", plan.setup.required_columns))
                } else {
                    CheckResult::fail(
                        &name,
                        format!("lacks the column(s) {missing:?}; it has {columns:?}"),
                        "add the columns, or point the [router] options table.field.event.id / .key / .payload and route.by.field at the columns the table has",
                    )
                });
            }
            Ok(None) => out.push(CheckResult::fail(
                &name,
                "does not exist",
                format!("CREATE TABLE {} (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb); or fix source.tables", quote_table(table)),
            )),
            Err(e) => out.push(CheckResult::fail(&name, e.to_string(), "check the connection")),
        }
    }

    let publication = &plan.setup.publication;
    let name = format!("publication {publication}");
    match setup::publication_tables(client, publication).await {
        Ok(Some((inserts, published))) => {
            let missing: Vec<String> = plan
                .setup
                .tables
                .iter()
                .filter(|t| !published.contains(t))
                .map(quote_table)
                .collect();
            out.push(if !inserts {
                CheckResult::fail(
                    &name,
                    "does not publish inserts",
                    format!(
                        "ALTER PUBLICATION {} SET (publish = 'insert, update, delete');",
                        quote_ident(publication)
                    ),
                )
            } else if !missing.is_empty() {
                CheckResult::fail(
                    &name,
                    format!("does not contain {}", missing.join(", ")),
                    format!(
                        "ALTER PUBLICATION {} ADD TABLE {};",
                        quote_ident(publication),
                        missing.join(", ")
                    ),
                )
            } else {
                CheckResult::pass(&name, "exists and contains the outbox tables")
            });
        }
        Ok(None) if plan.setup.create_publication => out.push(CheckResult::pass(
            &name,
            "does not exist yet; outboxd will create it (source.create_publication = true)",
        )),
        Ok(None) => out.push(CheckResult::fail(
            &name,
            "does not exist and source.create_publication is false",
            format!(
                "CREATE PUBLICATION {} FOR TABLE {};",
                quote_ident(publication),
                plan.setup
                    .tables
                    .iter()
                    .map(quote_table)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Err(e) => out.push(CheckResult::fail(
            &name,
            e.to_string(),
            "check the connection",
        )),
    }

    let slot = &plan.setup.slot;
    let name = format!("slot {slot}");
    match setup::slot_row(client, slot).await {
        Ok(Some(row)) => match setup::check_slot_fits(client, slot, &row).await {
            Ok(()) => {
                let position = row
                    .confirmed_flush_lsn
                    .map_or_else(|| "unknown".to_string(), |l| l.to_string());
                let detail = match row.active_pid {
                    Some(pid) => format!("pgoutput slot at {position}, in use by PID {pid} (another instance is streaming; this one would wait for it)"),
                    None => format!("pgoutput slot at {position}, not in use"),
                };
                out.push(CheckResult::pass(&name, detail));
            }
            Err(e) => out.push(CheckResult::fail(&name, e.to_string(), "see above")),
        },
        Ok(None) if plan.setup.create_slot => {
            match one("SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int").await {
                Ok(row) if row.get::<_, i32>(0) > 0 => out.push(CheckResult::pass(
                    &name,
                    "does not exist yet; outboxd will create it (source.create_slot = true)",
                )),
                Ok(_) => out.push(CheckResult::fail(
                    &name,
                    "does not exist, and every max_replication_slots slot is taken",
                    "drop an unused slot (SELECT pg_drop_replication_slot('name');) or ALTER SYSTEM SET max_replication_slots = <more>; then restart Postgres",
                )),
                Err(e) => out.push(CheckResult::fail(&name, e, "check the connection")),
            }
        }
        Ok(None) => out.push(CheckResult::fail(
            &name,
            "does not exist and source.create_slot is false",
            format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');"),
        )),
        Err(e) => out.push(CheckResult::fail(&name, e.to_string(), "check the connection")),
    }

    if !plan.message_prefixes.is_empty() {
        let name = "logical decoding messages";
        out.push(match one("SELECT current_setting('server_version_num')::int").await {
            Ok(row) if row.get::<_, i32>(0) >= 140_000 => CheckResult::pass(
                name,
                format!(
                    "PostgreSQL {} sends them to pgoutput; prefixes {}",
                    row.get::<_, i32>(0),
                    plan.message_prefixes.join(", ")
                ),
            ),
            Ok(row) => CheckResult::fail(
                name,
                format!(
                    "source.message_prefixes is set, and PostgreSQL {} cannot send logical decoding messages to pgoutput (14 or newer can)",
                    row.get::<_, i32>(0)
                ),
                "upgrade to PostgreSQL 14 or newer, or remove source.message_prefixes",
            ),
            Err(e) => CheckResult::fail(name, e, "check the connection"),
        });
    }
}

/// Whether the slot would survive a promotion (PostgreSQL 17+ failover slots): the slot's
/// `failover` flag and the primary's `synchronized_standby_slots` here, and on every other host
/// of the URL that is a standby, what slot synchronization needs, and whether the slot is
/// synchronized there now.
/// Partitioned outbox tables against the publication's `publish_via_partition_root`
/// (`source::partitioned`), and `[cleanup]`'s primary keys.
async fn partition_and_cleanup_checks(client: &Client, plan: &Plan, out: &mut Vec<CheckResult>) {
    use crate::source::partitioned;
    let name = "partitioned outbox tables";
    let checked = async {
        let major = setup::server_major(client).await?;
        let kinds = partitioned::table_kinds(client, &plan.setup.tables).await?;
        let via_root = partitioned::publication_via_root(client, &plan.setup.publication).await?;
        partitioned::check(
            &kinds,
            &plan.setup.publication,
            via_root,
            plan.setup.publish_via_partition_root,
            major,
        )?;
        Ok::<_, setup::SetupError>(kinds.iter().filter(|k| k.partitioned).count())
    };
    // Reported only when there is a partitioned table or a problem.
    out.extend(match checked.await {
        Ok(0) => None,
        Ok(n) => Some(CheckResult::pass(
            name,
            format!("{n}, published as themselves (publish_via_partition_root)"),
        )),
        Err(e) => Some(CheckResult::fail(name, e.to_string(), "see above")),
    });
    let Some(cleanup) = &plan.cleanup else {
        return;
    };
    for table in &cleanup.tables {
        let name = format!("cleanup of {table}");
        let key = client
            .query(crate::cleanup::PRIMARY_KEY_SQL, &[&quote_table(table)])
            .await;
        out.push(match key {
            Ok(rows) if rows.is_empty() => CheckResult::fail(
                &name,
                "no primary key ([cleanup] deletes by primary key)",
                format!(
                    "ALTER TABLE {} ADD PRIMARY KEY (id); or leave the table out of cleanup.tables",
                    quote_table(table)
                ),
            ),
            Ok(rows) => CheckResult::pass(
                &name,
                format!(
                    "by primary key ({})",
                    rows.iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Err(e) => CheckResult::fail(&name, e.to_string(), "check the connection"),
        });
    }
}

async fn failover_checks(primary: &Client, plan: &Plan, out: &mut Vec<CheckResult>) {
    let name = "failover slot";
    let slot = &plan.setup.slot;
    let major = match setup::server_major(primary).await {
        Ok(m) => m,
        Err(e) => {
            return out.push(CheckResult::fail(
                name,
                e.to_string(),
                "check the connection",
            ))
        }
    };
    let wanted = match setup::wants_failover(plan.setup.failover_slot, major) {
        Ok(w) => w,
        Err(e) => {
            return out.push(CheckResult::fail(
                name,
                e.to_string(),
                "remove source.failover_slot, or upgrade to PostgreSQL 17",
            ))
        }
    };
    if major < 17 {
        return out.push(CheckResult::pass(
            name,
            format!("PostgreSQL {major} keeps logical slots on the primary only: after a failover the slot is missing, and outboxd stops saying so (PostgreSQL 17+ synchronizes failover slots; docs/operations.md, Primary failover)"),
        ));
    }
    let flag = setup::slot_row(primary, slot)
        .await
        .ok()
        .flatten()
        .and_then(|row| row.failover);
    out.push(match (flag, wanted) {
        (Some(true), _) => CheckResult::pass(name, format!("slot {slot} is a failover slot")),
        (_, true) => CheckResult::pass(
            name,
            format!("slot {slot} will be a failover slot once outboxd runs (source.failover_slot)"),
        ),
        (_, false) => CheckResult::pass(
            name,
            format!("slot {slot} is not a failover slot (source.failover_slot = false): it does not survive a promotion"),
        ),
    });
    let synchronized: String = primary
        .query_one("SELECT current_setting('synchronized_standby_slots')", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    let synchronized: Vec<&str> = synchronized
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    // The other hosts of the URL: those in recovery are standbys to check.
    for candidate in plan.params.candidates() {
        let any = crate::source::ConnectParams {
            target_session_attrs: crate::source::params::TargetSessionAttrs::Any,
            ..candidate.clone()
        };
        let Ok(client) = any.connect_sql().await else {
            continue;
        };
        let standby = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .is_ok_and(|r| r.get::<_, bool>(0));
        if standby {
            out.push(standby_check(&client, &candidate.host_port(), slot, &synchronized).await);
        }
    }
}

/// One standby: `sync_replication_slots`, `hot_standby_feedback`, `primary_slot_name` (listed in
/// the primary's `synchronized_standby_slots`), and the slot's state there.
async fn standby_check(
    standby: &Client,
    host: &str,
    slot: &str,
    synchronized_standby_slots: &[&str],
) -> CheckResult {
    let name = format!("standby {host}");
    let setting = |name: &'static str| async move {
        standby
            .query_one("SELECT current_setting($1, true)", &[&name])
            .await
            .ok()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .unwrap_or_default()
    };
    let (sync, feedback, physical) = (
        setting("sync_replication_slots").await,
        setting("hot_standby_feedback").await,
        setting("primary_slot_name").await,
    );
    let mut fixes = Vec::new();
    if sync != "on" {
        fixes.push(format!("on {host}: ALTER SYSTEM SET sync_replication_slots = on (with dbname=... in primary_conninfo)"));
    }
    if feedback != "on" {
        fixes.push(format!(
            "on {host}: ALTER SYSTEM SET hot_standby_feedback = on"
        ));
    }
    if physical.is_empty() {
        fixes.push(format!("on {host}: a physical slot of its own on the primary (SELECT pg_create_physical_replication_slot('standby');) and ALTER SYSTEM SET primary_slot_name = 'standby'"));
    } else if !synchronized_standby_slots.contains(&physical.as_str()) {
        fixes.push(format!("on the primary: ALTER SYSTEM SET synchronized_standby_slots = '{physical}' (so it never sends logical decoding ahead of this standby)"));
    }
    if !fixes.is_empty() {
        return CheckResult::fail(
            &name,
            format!("slot {slot} is not synchronized to the standby {host}: a promotion of it would lose the slot"),
            format!("{}; then SELECT pg_reload_conf(); on each", fixes.join("; ")),
        );
    }
    let state = standby
        .query_opt(
            "SELECT synced, temporary FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .ok()
        .flatten()
        .map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1)));
    match state {
        Some((true, false)) => CheckResult::pass(
            &name,
            format!("slot {slot} is synchronized to the standby {host} (sync_replication_slots, hot_standby_feedback, primary_slot_name {physical} in synchronized_standby_slots)"),
        ),
        _ => CheckResult::pass(
            &name,
            format!("the standby {host} is set up to synchronize failover slots, and slot {slot} is not synchronized yet (it is once outboxd has confirmed positions past what the standby has; until then a promotion would lose it)"),
        ),
    }
}

async fn replication_connection_check(plan: &Plan) -> CheckResult {
    let name = "replication connection";
    let attempt = async {
        let mut conn = ReplicationConnection::connect(&plan.params).await?;
        let system = conn.identify_system().await?;
        Ok::<_, crate::source::SourceError>(system)
    };
    match attempt.await {
        Ok(system) => CheckResult::pass(
            name,
            format!(
                "IDENTIFY_SYSTEM: timeline {}, WAL at {}",
                system.timeline, system.xlogpos
            ),
        ),
        Err(e) => CheckResult::fail(
            name,
            e.to_string(),
            "allow the role to connect with replication=database in pg_hba.conf (the database's own line applies to logical replication) and grant it REPLICATION",
        ),
    }
}

/// The brokers answer; and the dead-letter topic, when poison events go to one, exists.
async fn kafka_checks(plan: &Plan) -> Vec<CheckResult> {
    let name = "kafka";
    let servers = plan
        .producer
        .get("bootstrap.servers")
        .unwrap_or("")
        .to_string();
    let config = plan.producer.clone();
    let result = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = config.create().map_err(|e| e.to_string())?;
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| {
                let topics: Vec<(String, usize)> = m
                    .topics()
                    .iter()
                    .map(|t| (t.name().to_string(), t.partitions().len()))
                    .collect();
                (m.brokers().len(), topics)
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (brokers, topics) = match result {
        Ok(found) => found,
        Err(e) => {
            return vec![CheckResult::fail(
                name,
                format!("{servers}: {e}"),
                "check kafka.\"bootstrap.servers\" (or --kafka-bootstrap-servers) and the security settings in [kafka]",
            )]
        }
    };
    let mut results = vec![CheckResult::pass(
        name,
        format!("{servers}: {brokers} broker(s)"),
    )];
    if let Some(dlq) = plan.errors.dead_letter_topic() {
        results.push(dead_letter_topic_check(dlq, &topics));
    }
    if let Some(settings) = &plan.exactly_once {
        results.push(exactly_once_check(plan, settings, &topics).await);
    }
    if let Some(offsets) = &plan.offsets {
        results.push(offsets_topic_check(&offsets.topic, &topics));
    }
    results
}

/// `[offsets]` in at-least-once mode: where the published position is recorded (pure: from the
/// metadata). A missing topic passes: outboxd creates it at start.
fn offsets_topic_check(topic: &str, topics: &[(String, usize)]) -> CheckResult {
    let name = "offsets topic";
    match topics.iter().find(|(t, _)| t == topic) {
        Some((_, partitions)) => CheckResult::pass(
            name,
            format!("{topic} exists ({partitions} partition(s)); outboxd records the published position there"),
        ),
        None => CheckResult::pass(
            name,
            format!("{topic} does not exist yet: outboxd creates it at start (1 partition, compacted; with ACLs it needs CREATE, or create it and grant READ, WRITE and DESCRIBE on it)"),
        ),
    }
}

/// Exactly-once mode: the brokers run transactions for outboxd (tried with the transactional id
/// `<transactional_id>-check`, so a running instance is not fenced), and where positions go.
async fn exactly_once_check(
    plan: &Plan,
    settings: &crate::exactly_once::ExactlyOnce,
    topics: &[(String, usize)],
) -> CheckResult {
    let name = "exactly-once";
    let probe_id = format!("{}-check", settings.transactional_id);
    let mut config = plan.producer.clone();
    config.set("transactional.id", &probe_id);
    let result = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = config.create().map_err(|e| e.to_string())?;
        producer
            .init_transactions(Duration::from_secs(15))
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let offsets = &settings.offsets_topic;
    let exists = topics.iter().find(|(t, _)| t == offsets);
    let where_positions_go = match exists {
        Some((_, partitions)) => format!("offsets topic {offsets} exists ({partitions} partition(s))"),
        None => format!("offsets topic {offsets} does not exist yet: outboxd creates it at start (1 partition, compacted)"),
    };
    match result {
        Ok(()) => {
            let aborted = match exists {
                Some(_) => {
                    let unknown = |e: String| format!("whether read_committed readers skip aborted transactions is unknown ({e})");
                    let (p, t, id) = (plan.producer.clone(), offsets.clone(), probe_id.clone());
                    match tokio::task::spawn_blocking(move || {
                        filters_aborted(&p, &t, &id, "outboxd-check/aborted-probe", Duration::from_secs(15))
                    })
                    .await
                    {
                        Ok(Ok(filters)) => aborted_records_line(filters).to_string(),
                        Ok(Err(e)) => unknown(e.to_string()),
                        Err(e) => unknown(e.to_string()),
                    }
                }
                None => "whether read_committed readers skip aborted transactions is asked once the offsets topic exists".to_string(),
            };
            CheckResult::pass(
                name,
                format!("the brokers run transactions (init_transactions as {probe_id}); {aborted}; {where_positions_go}"),
            )
        }
        Err(e) => CheckResult::fail(
            name,
            format!("init_transactions as {probe_id}: {e}"),
            format!("exactly-once mode needs brokers with transactions (Kafka 0.11+, transaction.state.log.replication.factor and min.isr no larger than the cluster) and, with ACLs, WRITE and DESCRIBE on the TransactionalId {id} (and {probe_id} for this check, {id}-probe for the probe a start may make), READ and WRITE on {offsets}; or turn [exactly_once] enabled off", id = settings.transactional_id),
        ),
    }
}

/// What `outboxd check` says of the brokers' `read_committed` readers and aborted transactions.
fn aborted_records_line(filters: bool) -> &'static str {
    if filters {
        "read_committed readers skip the records of aborted transactions"
    } else {
        "the brokers show the records of aborted transactions to read_committed readers (tansu 0.6 does): consumers of the event topics will also see the events of aborted Kafka transactions, which outboxd sends again, so they get duplicates; outboxd's own position stays safe (docs/operations.md, exactly-once limitations)"
    }
}

/// `errors.deadletterqueue.topic.name` must name an existing topic (pure: from the metadata).
fn dead_letter_topic_check(dlq: &str, topics: &[(String, usize)]) -> CheckResult {
    let name = "dead-letter topic";
    match topics.iter().find(|(t, _)| t == dlq) {
        Some((_, partitions)) => {
            CheckResult::pass(name, format!("{dlq} exists ({partitions} partition(s))"))
        }
        None => CheckResult::fail(
            name,
            format!("{dlq} (errors.deadletterqueue.topic.name) does not exist"),
            format!("create it, e.g. kafka-topics.sh --create --topic {dlq} --partitions 1 (with broker auto-creation it would appear at the first poison event, with the broker's defaults; create it to choose its retention and ACLs)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offsets_topic_line_says_where_positions_go() {
        let topics = vec![("outboxd-offsets".to_string(), 1)];
        let there = offsets_topic_check("outboxd-offsets", &topics);
        assert!(
            there.passed && there.detail.contains("exists (1 partition"),
            "{there:?}"
        );
        let missing = offsets_topic_check("positions", &topics);
        assert!(
            missing.passed && missing.detail.contains("creates it at start"),
            "{missing:?}"
        );
    }

    #[test]
    fn the_dead_letter_topic_must_exist() {
        let topics = vec![
            ("outbox.event.Order".to_string(), 4),
            ("dlq".to_string(), 1),
        ];
        let ok = dead_letter_topic_check("dlq", &topics);
        assert!(ok.passed, "{ok:?}");
        assert!(ok.detail.contains("1 partition"), "{ok:?}");
        let missing = dead_letter_topic_check("dlq.orders", &topics);
        assert!(!missing.passed);
        assert!(
            missing.detail.contains("dlq.orders")
                && missing
                    .fix
                    .as_deref()
                    .unwrap()
                    .contains("--topic dlq.orders"),
            "{missing:?}"
        );
    }
}
