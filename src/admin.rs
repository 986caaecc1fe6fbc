//! Operator commands over an ordinary SQL connection: `outboxd status` (the slot and publication as
//! Postgres sees them) and `outboxd slot drop`.

use tokio_postgres::Client;

use crate::source::setup::{self, SetupError};

/// What `outboxd status` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub slot: String,
    /// `None` when the slot does not exist.
    pub slot_state: Option<SlotStatus>,
    pub publication: String,
    /// `None` when the publication does not exist.
    pub publication_tables: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    pub plugin: Option<String>,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<String>,
    pub lag_bytes: Option<i64>,
    pub wal_status: Option<String>,
}

/// Reads the slot and publication state.
pub async fn status(client: &Client, slot: &str, publication: &str) -> Result<Status, SetupError> {
    let row = client
        .query_opt(
            "SELECT plugin::text, active_pid, confirmed_flush_lsn::text, \
             (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, wal_status::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|error| SetupError::Sql {
            doing: "reading pg_replication_slots",
            error,
        })?;
    let slot_state = row.map(|r| SlotStatus {
        plugin: r.get(0),
        active_pid: r.get(1),
        confirmed_flush_lsn: r.get(2),
        lag_bytes: r.get(3),
        wal_status: r.get(4),
    });
    let publication_tables = setup::publication_tables(client, publication)
        .await?
        .map(|(_, tables)| tables.iter().map(|t| t.to_string()).collect());
    Ok(Status {
        slot: slot.to_string(),
        slot_state,
        publication: publication.to_string(),
        publication_tables,
    })
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.slot_state {
            None => writeln!(f, "slot          {}: does not exist", self.slot)?,
            Some(s) => {
                writeln!(f, "slot          {}", self.slot)?;
                writeln!(
                    f,
                    "  plugin      {}",
                    s.plugin.as_deref().unwrap_or("(none)")
                )?;
                match s.active_pid {
                    Some(pid) => writeln!(f, "  active      yes, PID {pid}")?,
                    None => writeln!(f, "  active      no")?,
                }
                writeln!(
                    f,
                    "  confirmed   {}",
                    s.confirmed_flush_lsn.as_deref().unwrap_or("(none)")
                )?;
                match s.lag_bytes {
                    Some(lag) => writeln!(f, "  lag         {lag} bytes")?,
                    None => writeln!(f, "  lag         unknown")?,
                }
                writeln!(
                    f,
                    "  wal_status  {}",
                    s.wal_status.as_deref().unwrap_or("(unknown)")
                )?;
            }
        }
        match &self.publication_tables {
            None => writeln!(f, "publication   {}: does not exist", self.publication),
            Some(tables) => writeln!(
                f,
                "publication   {}: {}",
                self.publication,
                if tables.is_empty() {
                    "(no tables)".to_string()
                } else {
                    tables.join(", ")
                }
            ),
        }
    }
}

/// Why a slot could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("replication slot {0} does not exist")]
    Missing(String),
    #[error("replication slot {slot} is in use by PID {pid}; stop the outboxd instance streaming from it first")]
    Active { slot: String, pid: i32 },
    #[error(transparent)]
    Sql(#[from] tokio_postgres::Error),
}

/// Drops the slot (refusing while a process streams from it).
pub async fn drop_slot(client: &Client, slot: &str) -> Result<(), DropError> {
    let row = client
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?
        .ok_or_else(|| DropError::Missing(slot.to_string()))?;
    if let Some(pid) = row.get::<_, Option<i32>>(0) {
        return Err(DropError::Active {
            slot: slot.to_string(),
            pid,
        });
    }
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_prints_every_field() {
        let s = Status {
            slot: "outboxd".into(),
            slot_state: Some(SlotStatus {
                plugin: Some("pgoutput".into()),
                active_pid: Some(42),
                confirmed_flush_lsn: Some("0/16B3748".into()),
                lag_bytes: Some(1024),
                wal_status: Some("reserved".into()),
            }),
            publication: "outboxd".into(),
            publication_tables: Some(vec!["public.outbox".into()]),
        };
        let text = s.to_string();
        for needle in [
            "PID 42",
            "0/16B3748",
            "1024 bytes",
            "pgoutput",
            "reserved",
            "public.outbox",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        let missing = Status {
            slot_state: None,
            publication_tables: None,
            ..s
        };
        assert!(missing.to_string().contains("does not exist"));
    }
}
