//! Partitioned outbox tables (declarative partitioning, PostgreSQL 13+): the publication must
//! publish their changes as the partitioned table itself (`publish_via_partition_root`), so the
//! router sees the name listed in `source.tables` and a partition created while streaming is
//! covered without a restart (a publication of a partitioned table covers all its partitions,
//! present and future).
//!
//! Without the option, pgoutput names each change after its partition: no such name is in
//! `source.tables`, so the events would be ignored. Hence the checks at setup ([`check`]): a
//! partitioned table needs the option on the publication (an existing one without it is refused
//! with the `ALTER PUBLICATION` that fixes it), and a partition listed in `source.tables` is
//! refused when its changes would arrive under its root's name.
//!
//! The SQL text and the decisions are pure; [`table_kinds`] reads the catalog.

use tokio_postgres::Client;

use crate::config::TableName;
use crate::source::quote::quote_ident;
use crate::source::setup::{quote_table, SetupError};

/// What the catalog says about an outbox table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKind {
    pub table: TableName,
    /// A partitioned table (`relkind = 'p'`).
    pub partitioned: bool,
    /// The root of the partition tree it belongs to, when it is a partition.
    pub partition_of: Option<TableName>,
}

/// Reads whether each table is partitioned or a partition (tables that do not exist are left
/// out: setup reports them).
pub async fn table_kinds(
    client: &Client,
    tables: &[TableName],
) -> Result<Vec<TableKind>, SetupError> {
    let mut kinds = Vec::new();
    for table in tables {
        // pg_partition_root is PostgreSQL 12's: read it only for a partition.
        let row = client
            .query_opt(
                "SELECT c.relkind = 'p', c.relispartition FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&quote_table(table)],
            )
            .await
            .map_err(|error| SetupError::Sql {
                doing: "reading whether an outbox table is partitioned",
                error,
            })?;
        let Some(row) = row else { continue };
        let partition_of = if row.get::<_, bool>(1) {
            let root = client
                .query_one(
                    "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.oid = pg_partition_root(to_regclass($1))",
                    &[&quote_table(table)],
                )
                .await
                .map_err(|error| SetupError::Sql {
                    doing: "reading the root of a partitioned outbox table",
                    error,
                })?;
            Some(TableName {
                schema: root.get(0),
                name: root.get(1),
            })
        } else {
            None
        };
        kinds.push(TableKind {
            table: table.clone(),
            partitioned: row.get(0),
            partition_of,
        });
    }
    Ok(kinds)
}

/// Whether an existing publication publishes via the partition root (`None`: no such
/// publication; false before PostgreSQL 13, which has no such option).
pub async fn publication_via_root(
    client: &Client,
    publication: &str,
) -> Result<Option<bool>, SetupError> {
    let row = client
        .query_opt(
            "SELECT coalesce((to_jsonb(p) ->> 'pubviaroot')::boolean, false) FROM pg_publication p WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|error| SetupError::Sql {
            doing: "reading pg_publication",
            error,
        })?;
    Ok(row.map(|r| r.get(0)))
}

/// The `WITH` clause of a publication outboxd creates: `publish_via_partition_root` where the
/// server has it (PostgreSQL 13+) and it is wanted.
pub fn create_options(via_root: bool, server_major: u32) -> &'static str {
    if via_root && server_major >= 13 {
        " WITH (publish_via_partition_root = true)"
    } else {
        ""
    }
}

/// The statement that turns the option on for an existing publication.
pub fn alter_sql(publication: &str) -> String {
    format!(
        "ALTER PUBLICATION {} SET (publish_via_partition_root = true);",
        quote_ident(publication)
    )
}

/// Checks the outbox tables against the publication's `publish_via_partition_root`
/// (`publication_via_root`: `None` when the publication is yet to be created, with
/// `wanted` = `source.publish_via_partition_root`).
pub fn check(
    kinds: &[TableKind],
    publication: &str,
    publication_via_root: Option<bool>,
    wanted: bool,
    server_major: u32,
) -> Result<(), SetupError> {
    let via_root = publication_via_root.unwrap_or(wanted && server_major >= 13);
    for kind in kinds {
        let table = &kind.table;
        if kind.partitioned && server_major < 13 {
            return Err(SetupError::Unfit(format!(
                "outbox table {table} is partitioned, and PostgreSQL {server_major} cannot publish a partitioned table as itself (publish_via_partition_root is PostgreSQL 13's); upgrade, or use a table that is not partitioned"
            )));
        }
        if kind.partitioned && !via_root {
            return Err(SetupError::Unfit(match publication_via_root {
                None => format!(
                    "outbox table {table} is partitioned and source.publish_via_partition_root is false: its changes would arrive under its partitions' names, which are not in source.tables, and would not be published; remove the key (outboxd then creates the publication with publish_via_partition_root = true)"
                ),
                Some(_) => format!(
                    "outbox table {table} is partitioned, and publication {publication} names its changes after its partitions (publish_via_partition_root is off), so the router would not recognize them; fix it with: {} Changes committed before that statement are still named after the partitions when outboxd reads them: run it while the outbox is quiet and the slot has caught up (pg_replication_slots.confirmed_flush_lsn at pg_current_wal_lsn())",
                    alter_sql(publication)
                ),
            }));
        }
        if let (Some(root), true) = (&kind.partition_of, via_root) {
            return Err(SetupError::Unfit(format!(
                "outbox table {table} is a partition of {root}, and publication {publication} publishes partitions' changes as their root (publish_via_partition_root), so they arrive as {root}: list {root} in source.tables instead of {table}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, partitioned: bool, partition_of: Option<&str>) -> TableKind {
        TableKind {
            table: TableName::parse(name).unwrap(),
            partitioned,
            partition_of: partition_of.map(|p| TableName::parse(p).unwrap()),
        }
    }

    #[test]
    fn a_partitioned_outbox_needs_the_publication_to_publish_via_its_root() {
        let parent = [kind("public.outbox", true, None)];
        // To be created: with the option (the default), fine.
        check(&parent, "outboxd", None, true, 15).unwrap();
        assert_eq!(
            create_options(true, 15),
            " WITH (publish_via_partition_root = true)"
        );
        assert_eq!(create_options(true, 12), "");
        assert_eq!(create_options(false, 15), "");
        let e = check(&parent, "outboxd", None, false, 15)
            .unwrap_err()
            .to_string();
        assert!(e.contains("source.publish_via_partition_root"), "{e}");
        // Existing without the option: refused with the fix.
        let e = check(&parent, "dbz_publication", Some(false), true, 15)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "ALTER PUBLICATION \"dbz_publication\" SET (publish_via_partition_root = true);"
            ),
            "{e}"
        );
        check(&parent, "dbz_publication", Some(true), false, 15).unwrap();
        let e = check(&parent, "outboxd", None, true, 12)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PostgreSQL 12"), "{e}");
    }

    #[test]
    fn a_partition_listed_as_the_outbox_is_refused_when_changes_arrive_as_its_root() {
        let leaf = [kind("public.outbox_2024", false, Some("public.outbox"))];
        let e = check(&leaf, "outboxd", None, true, 15)
            .unwrap_err()
            .to_string();
        assert!(e.contains("list public.outbox in source.tables"), "{e}");
        // Published under its own name: it is what the router sees.
        check(&leaf, "outboxd", Some(false), true, 15).unwrap();
        check(
            &[kind("public.outbox", false, None)],
            "p",
            Some(false),
            false,
            15,
        )
        .unwrap();
    }
}
