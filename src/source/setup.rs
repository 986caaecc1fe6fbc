//! Slot and publication management, and the preflight checks of `outboxd check`, over an ordinary
//! SQL connection (tokio-postgres).
//!
//! Order matters: the publication is created before the slot, because pgoutput resolves
//! publications as of each change's position in WAL, and a slot whose start predates its publication
//! fails to decode.

use tokio_postgres::Client;

use crate::config::{SnapshotMode, TableName};
use crate::lsn::Lsn;
use crate::source::quote::quote_ident;

/// What `run` needs to know to fill its plan.
#[derive(Debug, Clone)]
pub struct SetupPlan {
    pub slot: String,
    pub publication: String,
    pub tables: Vec<TableName>,
    pub create_slot: bool,
    pub create_publication: bool,
    /// Columns the router reads from each outbox table.
    pub required_columns: Vec<String>,
    /// `source.snapshot_mode`.
    pub snapshot_mode: SnapshotMode,
    /// `source.failover_slot`.
    pub failover_slot: Option<bool>,
    /// `source.publish_via_partition_root` (`source::partitioned`).
    pub publish_via_partition_root: bool,
}

/// The slot as it is after setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// Where streaming resumes: the slot's `confirmed_flush_lsn`.
    pub confirmed_flush_lsn: Lsn,
    /// Whether outboxd created the slot just now.
    pub created: bool,
    /// Whether and how the rows already in the tables are read first.
    pub snapshot: SnapshotPlan,
    /// Whether the slot is (or is to be created as) a failover slot (PostgreSQL 17+), and
    /// whether an existing slot still has to be made one (`ALTER_REPLICATION_SLOT`, on the
    /// walsender connection).
    pub failover: bool,
    pub make_failover: bool,
}

/// What the relay does before streaming (decided from `snapshot_mode` and the slot's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPlan {
    /// Nothing: stream from the slot.
    None,
    /// The slot does not exist yet: create it on the replication connection with an exported
    /// snapshot, read the tables in that snapshot, then stream. The marker slot exists already.
    NewSlot,
    /// Read the tables in a snapshot taken now, then stream from the existing slot (`always`).
    ExistingSlot,
    /// Read the tables in the exported snapshot of a temporary slot, then exit (`initial_only`).
    Only,
}

/// Setup failed; each message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Unfit(String),
    #[error(
        "query failed while {doing}: {}",
        crate::source::error::describe_sql_error(error)
    )]
    Sql {
        doing: &'static str,
        error: tokio_postgres::Error,
    },
}

impl SetupError {
    /// Whether the server refused because an object (a slot to drop) is in use (55006).
    pub fn is_object_in_use(&self) -> bool {
        matches!(self, SetupError::Sql { error, .. }
            if error.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE))
    }

    /// Whether retrying later may help (a lost connection), as opposed to a setup that is wrong.
    pub fn is_transient(&self) -> bool {
        // 55006: a slot to drop is still held by the walsender of a predecessor that just died.
        self.is_object_in_use()
            || matches!(self, SetupError::Sql { error, .. } if error.is_closed() || error.code().is_none())
    }
}

fn sql(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SetupError {
    move |error| SetupError::Sql { doing, error }
}

/// `"schema"."table"`.
pub fn quote_table(t: &TableName) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// The state of one replication slot, from `pg_replication_slots`.
#[derive(Debug, Clone)]
pub struct SlotRow {
    pub plugin: Option<String>,
    pub slot_type: String,
    pub database: Option<String>,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
    /// `failover` (PostgreSQL 17+; `None` before).
    pub failover: Option<bool>,
}

/// Reads a slot's row, `None` when there is no such slot.
pub async fn slot_row(client: &Client, slot: &str) -> Result<Option<SlotRow>, SetupError> {
    // `failover` exists from PostgreSQL 17 on: read the row as JSON, so one query fits all.
    let row = client
        .query_opt(
            "SELECT plugin::text, slot_type::text, database::text, active_pid, \
             confirmed_flush_lsn::text, wal_status::text, (to_jsonb(s) ->> 'failover')::boolean \
             FROM pg_replication_slots s WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(sql("reading pg_replication_slots"))?;
    Ok(row.map(|r| SlotRow {
        plugin: r.get(0),
        slot_type: r.get(1),
        database: r.get(2),
        active_pid: r.get(3),
        confirmed_flush_lsn: r.get::<_, Option<String>>(4).and_then(|s| s.parse().ok()),
        wal_status: r.get(5),
        failover: r.get(6),
    }))
}

/// The tables a publication publishes (`pg_publication_tables`), `None` when it does not exist;
/// the bool says whether it publishes inserts.
pub async fn publication_tables(
    client: &Client,
    publication: &str,
) -> Result<Option<(bool, Vec<TableName>)>, SetupError> {
    let Some(row) = client
        .query_opt(
            "SELECT pubinsert FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(sql("reading pg_publication"))?
    else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(sql("reading pg_publication_tables"))?;
    let tables = rows
        .iter()
        .map(|r| TableName {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect();
    Ok(Some((row.get(0), tables)))
}

/// The columns of a table, `None` when the table does not exist.
pub async fn table_columns(
    client: &Client,
    table: &TableName,
) -> Result<Option<Vec<String>>, SetupError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quote_table(table)])
        .await
        .map_err(sql("looking up an outbox table"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&quote_table(table)],
        )
        .await
        .map_err(sql("reading an outbox table's columns"))?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Checks the outbox tables, then makes sure the publication and the slot exist and fit.
pub async fn ensure(client: &Client, plan: &SetupPlan) -> Result<SlotState, SetupError> {
    for table in &plan.tables {
        let columns = table_columns(client, table).await?.ok_or_else(|| {
            SetupError::Unfit(format!(
                "outbox table {table} does not exist; create it (see docs/configuration.md) or fix source.tables"
            ))
        })?;
        let missing: Vec<&String> = plan
            .required_columns
            .iter()
            .filter(|c| !columns.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(SetupError::Unfit(format!(
                "outbox table {table} lacks the column(s) {missing:?} that the router reads; add them or set the [router] options table.field.event.* / route.by.field to the columns it has ({columns:?})"
            )));
        }
    }
    ensure_publication(client, plan).await?;
    ensure_slot(client, plan).await
}

async fn ensure_publication(client: &Client, plan: &SetupPlan) -> Result<(), SetupError> {
    let tables_sql = plan
        .tables
        .iter()
        .map(quote_table)
        .collect::<Vec<_>>()
        .join(", ");
    let major = server_major(client).await?;
    let with = super::partitioned::create_options(plan.publish_via_partition_root, major);
    super::partitioned::check(
        &super::partitioned::table_kinds(client, &plan.tables).await?,
        &plan.publication,
        super::partitioned::publication_via_root(client, &plan.publication).await?,
        plan.publish_via_partition_root,
        major,
    )?;
    match publication_tables(client, &plan.publication).await? {
        None if plan.create_publication => {
            let stmt = format!(
                "CREATE PUBLICATION {} FOR TABLE {tables_sql}{with}",
                quote_ident(&plan.publication)
            );
            client
                .batch_execute(&stmt)
                .await
                .map_err(sql("creating the publication"))?;
            tracing::info!(publication = %plan.publication, tables = %tables_sql, options = %with.trim(), "created publication");
            Ok(())
        }
        None => Err(SetupError::Unfit(format!(
            "publication {} does not exist and source.create_publication is false; create it with: CREATE PUBLICATION {} FOR TABLE {tables_sql}{with};",
            plan.publication,
            quote_ident(&plan.publication)
        ))),
        Some((publishes_inserts, published)) => {
            if !publishes_inserts {
                return Err(SetupError::Unfit(format!(
                    "publication {} does not publish inserts; fix it with: ALTER PUBLICATION {} SET (publish = 'insert, update, delete');",
                    plan.publication,
                    quote_ident(&plan.publication)
                )));
            }
            let missing: Vec<String> = plan
                .tables
                .iter()
                .filter(|t| !published.contains(t))
                .map(quote_table)
                .collect();
            if !missing.is_empty() {
                return Err(SetupError::Unfit(format!(
                    "publication {} does not contain {}; add with: ALTER PUBLICATION {} ADD TABLE {};",
                    plan.publication,
                    missing.join(", "),
                    quote_ident(&plan.publication),
                    missing.join(", ")
                )));
            }
            Ok(())
        }
    }
}

/// Drops a replication slot (it must not be in use).
async fn drop_slot(client: &Client, slot: &str) -> Result<(), SetupError> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(sql("dropping a replication slot"))?;
    Ok(())
}

/// Drops the marker slot of a finished snapshot (see `source::snapshot`).
pub async fn drop_snapshot_marker(client: &Client, slot: &str) -> Result<(), SetupError> {
    let marker = crate::source::snapshot::marker_slot(slot);
    if slot_row(client, &marker).await?.is_some() {
        drop_slot(client, &marker).await?;
    }
    Ok(())
}

/// The server's major version (`server_version_num / 10000`).
pub async fn server_major(client: &Client) -> Result<u32, SetupError> {
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .map_err(sql("reading server_version_num"))?
        .get(0);
    v.trim()
        .parse::<u32>()
        .map(|n| n / 10000)
        .map_err(|_| SetupError::Unfit(format!("unreadable server_version_num {v:?}")))
}

/// Whether the slot is to be a failover slot: `source.failover_slot`, and the server's version
/// (failover slots exist from PostgreSQL 17 on).
pub fn wants_failover(configured: Option<bool>, major: u32) -> Result<bool, SetupError> {
    match configured {
        Some(true) if major < 17 => Err(SetupError::Unfit(format!(
            "source.failover_slot = true, but PostgreSQL {major} has no failover slots (PostgreSQL 17 and newer synchronize them to standbys); remove the setting, or upgrade"
        ))),
        Some(wanted) => Ok(wanted),
        None => Ok(major >= 17),
    }
}

async fn ensure_slot(client: &Client, plan: &SetupPlan) -> Result<SlotState, SetupError> {
    let mode = plan.snapshot_mode;
    let failover = wants_failover(plan.failover_slot, server_major(client).await?)?;
    if mode == SnapshotMode::InitialOnly {
        return Ok(SlotState {
            confirmed_flush_lsn: Lsn::ZERO,
            created: false,
            snapshot: SnapshotPlan::Only,
            failover: false,
            make_failover: false,
        });
    }
    let takes_snapshots = matches!(
        mode,
        SnapshotMode::Initial | SnapshotMode::WhenNeeded | SnapshotMode::Always
    );
    let mut existing = slot_row(client, &plan.slot).await?;
    let marker = crate::source::snapshot::marker_slot(&plan.slot);
    if takes_snapshots && slot_row(client, &marker).await?.is_some() {
        // Nothing was published from the slot before its snapshot was acknowledged: start over.
        tracing::warn!(slot = %plan.slot, "the snapshot of an earlier start did not finish: dropping the slot and taking the snapshot again (its rows may be published twice)");
        if existing.is_some() {
            drop_slot(client, &plan.slot).await?;
            existing = None;
        }
        drop_slot(client, &marker).await?;
    }
    if let Some(slot) = &existing {
        if mode == SnapshotMode::WhenNeeded && slot.wal_status.as_deref() == Some("lost") {
            tracing::warn!(slot = %plan.slot, "the slot was invalidated (wal_status = lost): snapshot_mode when_needed drops it and publishes the rows in the outbox tables again; events whose rows were already deleted from the tables while the slot was invalid cannot be recovered");
            drop_slot(client, &plan.slot).await?;
            existing = None;
        }
    }
    let Some(slot) = existing else {
        if !plan.create_slot {
            return Err(SetupError::Unfit(format!(
                "replication slot {} does not exist and source.create_slot is false; create it with: SELECT pg_create_logical_replication_slot('{}', 'pgoutput');",
                plan.slot, plan.slot
            )));
        }
        if takes_snapshots {
            // The slot is created with an exported snapshot on the replication connection; the
            // marker says the snapshot is unfinished until the relay drops it.
            client
                .execute("SELECT pg_create_physical_replication_slot($1)", &[&marker])
                .await
                .map_err(sql("creating the snapshot marker slot"))?;
            return Ok(SlotState {
                confirmed_flush_lsn: Lsn::ZERO,
                created: true,
                snapshot: SnapshotPlan::NewSlot,
                failover,
                make_failover: false,
            });
        }
        // (slot_name, plugin, temporary, twophase, failover): the fifth argument is PostgreSQL 17's.
        let create = if failover {
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
        } else {
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')"
        };
        let row = client
            .query_one(create, &[&plan.slot])
            .await
            .map_err(sql("creating the replication slot"))?;
        let lsn: String = row.get(0);
        let confirmed_flush_lsn = lsn.parse().map_err(|e| {
            SetupError::Unfit(format!("server returned an unreadable slot LSN: {e}"))
        })?;
        tracing::info!(slot = %plan.slot, lsn = %confirmed_flush_lsn, failover, "created replication slot (pgoutput)");
        return Ok(SlotState {
            confirmed_flush_lsn,
            created: true,
            snapshot: SnapshotPlan::None,
            failover,
            make_failover: false,
        });
    };
    check_slot_fits(client, &plan.slot, &slot).await?;
    let confirmed_flush_lsn = slot.confirmed_flush_lsn.ok_or_else(|| {
        SetupError::Unfit(format!(
            "replication slot {} has no confirmed position; it may still be being created",
            plan.slot
        ))
    })?;
    Ok(SlotState {
        confirmed_flush_lsn,
        created: false,
        snapshot: if mode == SnapshotMode::Always {
            SnapshotPlan::ExistingSlot
        } else {
            SnapshotPlan::None
        },
        failover: failover || slot.failover == Some(true),
        make_failover: failover && slot.failover == Some(false),
    })
}

/// An existing slot must be a logical pgoutput slot of this database and not invalidated.
pub async fn check_slot_fits(
    client: &Client,
    name: &str,
    slot: &SlotRow,
) -> Result<(), SetupError> {
    let drop_hint = format!(
        "drop it with SELECT pg_drop_replication_slot('{name}'); (events not yet relayed from it are lost) or set source.slot to another name"
    );
    if slot.slot_type != "logical" {
        return Err(SetupError::Unfit(format!(
            "replication slot {name} is a {} slot, outboxd needs a logical one; {drop_hint}",
            slot.slot_type
        )));
    }
    if slot.plugin.as_deref() != Some("pgoutput") {
        return Err(SetupError::Unfit(format!(
            "replication slot {name} uses the plugin {:?}, outboxd needs pgoutput; {drop_hint}",
            slot.plugin.as_deref().unwrap_or("none")
        )));
    }
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(sql("reading current_database()"))?
        .get(0);
    if slot.database.as_deref() != Some(db.as_str()) {
        return Err(SetupError::Unfit(format!(
            "replication slot {name} belongs to database {:?}, not {db:?}; connect to that database or set source.slot to another name",
            slot.database.as_deref().unwrap_or("none")
        )));
    }
    if slot.wal_status.as_deref() == Some("lost") {
        return Err(SetupError::Unfit(format!(
            "replication slot {name} was invalidated by the server (wal_status = lost, usually max_slot_wal_keep_size): the WAL it needed is gone and events may have been lost; re-create it with SELECT pg_drop_replication_slot('{name}'); and reconcile the outbox table with the topics (see docs/operations.md)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_slots_from_postgresql_17_on() {
        assert!(!wants_failover(None, 16).unwrap());
        assert!(wants_failover(None, 17).unwrap());
        assert!(!wants_failover(Some(false), 18).unwrap());
        assert!(wants_failover(Some(true), 17).unwrap());
        let e = wants_failover(Some(true), 16).unwrap_err().to_string();
        assert!(e.contains("PostgreSQL 16 has no failover slots"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("outbox"), "\"outbox\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        let t = TableName::parse("Sales.Outbox").unwrap();
        assert_eq!(quote_table(&t), "\"Sales\".\"Outbox\"");
    }
}
