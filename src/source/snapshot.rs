//! Snapshots (`source.snapshot_mode`): the rows already in the outbox tables, read on an ordinary
//! SQL connection in one `REPEATABLE READ` transaction and handed to the relay as the same
//! [`Relation`]s and rows the replication stream delivers, so the router treats them exactly like
//! inserts.
//!
//! For a slot outboxd creates, the transaction imports the snapshot the slot exported
//! (`SET TRANSACTION SNAPSHOT`): it sees exactly the transactions committed before the slot's
//! consistent point, and streaming from the slot delivers exactly those after it — no gap, no
//! duplicate. Values are fetched with the simple query protocol, i.e. in each type's text output
//! format, which is what pgoutput sends in text mode.
//!
//! An unfinished snapshot is marked by a physical slot named `<slot>_snapshot` (created without
//! reserving WAL, so it holds none) that is dropped once Kafka acknowledged every snapshot row. The
//! relay reads nothing from the stream before that, so a start that finds the marker may drop the
//! logical slot and take the snapshot again: nothing was published from it.
//!
//! The SQL text and row shaping are pure functions; [`read_tables`] does the I/O.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::config::TableName;
use crate::source::pgoutput::{Column, Relation, TupleData, TupleValue};
use crate::source::quote::quote_ident;
use crate::source::setup::{quote_table, SetupError};

/// Rows fetched per round trip.
const FETCH_ROWS: usize = 1000;

/// One piece of a snapshot, in the order the relay must apply them.
#[derive(Debug)]
pub enum SnapshotItem {
    /// A table's columns; precedes its rows.
    Relation(Relation),
    /// A row of the last announced table.
    Row { relation_id: u32, row: TupleData },
}

/// The name of the marker slot of an unfinished snapshot.
pub fn marker_slot(slot: &str) -> String {
    format!("{slot}_snapshot")
}

/// The statement that opens the snapshot transaction; `snapshot` = an exported snapshot to import.
pub fn begin_sql(snapshot: Option<&str>) -> String {
    let mut sql = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;");
    if let Some(name) = snapshot {
        sql.push_str(&format!(
            " SET TRANSACTION SNAPSHOT '{}';",
            name.replace('\'', "''")
        ));
    }
    sql
}

/// A [`Relation`] for `table` from its catalog rows `(name, type oid, typmod)` in column order.
pub fn relation(oid: u32, table: &TableName, columns: Vec<(String, u32, i32)>) -> Relation {
    Relation {
        id: oid,
        namespace: table.schema.clone(),
        name: table.name.clone(),
        replica_identity: b'd',
        columns: columns
            .into_iter()
            .map(|(name, type_oid, type_modifier)| Column {
                flags: 0,
                name,
                type_oid,
                type_modifier,
            })
            .collect(),
    }
}

/// The cursor over `table` with `relation`'s columns in their order.
pub fn declare_cursor_sql(table: &TableName, relation: &Relation) -> String {
    let columns = relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "DECLARE outboxd_snapshot NO SCROLL CURSOR FOR SELECT {columns} FROM {}",
        quote_table(table)
    )
}

/// A fetched row as pgoutput would send it in text mode.
pub fn row<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> TupleData {
    TupleData(
        values
            .into_iter()
            .map(|v| match v {
                None => TupleValue::Null,
                Some(text) => TupleValue::Text(Bytes::copy_from_slice(text.as_bytes())),
            })
            .collect(),
    )
}

fn sql(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SetupError {
    move |error| SetupError::Sql { doing, error }
}

/// Opens the snapshot transaction on `client` (importing `snapshot` if given). Must happen before
/// the connection that exported the snapshot runs its next command.
pub async fn begin(client: &Client, snapshot: Option<&str>) -> Result<(), SetupError> {
    // Text output settings as the walsender's session has them, whatever this session changed.
    client
        .batch_execute(
            "SET DateStyle = DEFAULT; SET IntervalStyle = DEFAULT; SET TimeZone = DEFAULT; \
             SET extra_float_digits = DEFAULT; SET bytea_output = DEFAULT",
        )
        .await
        .map_err(sql("preparing the snapshot session"))?;
    client
        .batch_execute(&begin_sql(snapshot))
        .await
        .map_err(sql(
            "opening the snapshot transaction (SET TRANSACTION SNAPSHOT)",
        ))
}

/// Reads every table in the open snapshot transaction of `client`, sending a [`SnapshotItem::Relation`]
/// before each table's rows; bounded by the channel's capacity. Ends the transaction; a closed
/// channel (the relay stopped) ends the reading quietly.
pub async fn read_tables(
    client: Client,
    tables: Vec<TableName>,
    out: mpsc::Sender<Result<SnapshotItem, SetupError>>,
) {
    if let Err(e) = read_all(&client, &tables, &out).await {
        let _ = out.send(Err(e)).await;
    }
}

async fn read_all(
    client: &Client,
    tables: &[TableName],
    out: &mpsc::Sender<Result<SnapshotItem, SetupError>>,
) -> Result<(), SetupError> {
    for table in tables {
        let oid: u32 = client
            .query_one("SELECT to_regclass($1)::oid", &[&quote_table(table)])
            .await
            .map_err(sql("looking up an outbox table for the snapshot"))?
            .get(0);
        let columns = client
            .query(
                "SELECT attname::text, atttypid, atttypmod FROM pg_attribute \
                 WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(sql("reading an outbox table's columns for the snapshot"))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let relation = relation(oid, table, columns);
        client
            .batch_execute(&declare_cursor_sql(table, &relation))
            .await
            .map_err(sql("opening the snapshot cursor"))?;
        if out
            .send(Ok(SnapshotItem::Relation(relation)))
            .await
            .is_err()
        {
            return Ok(());
        }
        let fetch = format!("FETCH {FETCH_ROWS} FROM outboxd_snapshot");
        loop {
            let messages = client
                .simple_query(&fetch)
                .await
                .map_err(sql("reading outbox rows for the snapshot"))?;
            let mut fetched = 0;
            for message in messages {
                if let SimpleQueryMessage::Row(r) = message {
                    fetched += 1;
                    let row = row((0..r.len()).map(|i| r.get(i)));
                    let item = SnapshotItem::Row {
                        relation_id: oid,
                        row,
                    };
                    if out.send(Ok(item)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if fetched < FETCH_ROWS {
                break;
            }
        }
        client
            .batch_execute("CLOSE outboxd_snapshot")
            .await
            .map_err(sql("closing the snapshot cursor"))?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(sql("ending the snapshot transaction"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exported_snapshot_is_imported_with_its_name_quoted() {
        assert_eq!(
            begin_sql(Some("00000003-00000002-1")),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '00000003-00000002-1';"
        );
        assert_eq!(
            begin_sql(None),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
        );
        assert!(begin_sql(Some("a'b")).contains("'a''b'"));
    }

    #[test]
    fn rows_and_columns_match_what_pgoutput_sends() {
        let table = TableName::parse("Sales.Out box").unwrap();
        let rel = relation(
            42,
            &table,
            vec![("id".into(), 2950, -1), ("we\"ird".into(), 25, -1)],
        );
        assert_eq!(rel.id, 42);
        assert_eq!(rel.namespace, "Sales");
        assert_eq!(rel.name, "Out box");
        assert_eq!(rel.columns[1].name, "we\"ird");
        assert_eq!(rel.columns[0].type_oid, 2950);
        assert_eq!(
            declare_cursor_sql(&table, &rel),
            "DECLARE outboxd_snapshot NO SCROLL CURSOR FOR SELECT \"id\", \"we\"\"ird\" FROM \"Sales\".\"Out box\""
        );
        let r = row([Some("x"), None, Some("")]);
        assert_eq!(
            r.0,
            vec![
                TupleValue::Text(Bytes::from_static(b"x")),
                TupleValue::Null,
                TupleValue::Text(Bytes::new()),
            ]
        );
        assert_eq!(marker_slot("outboxd"), "outboxd_snapshot");
    }
}
