//! Which of the source URL's hosts to use: libpq's `target_session_attrs`, for the walsender
//! connection ([`super::connection::ReplicationConnection::connect`]) and the SQL connection
//! ([`super::params::ConnectParams::connect_sql`]).
//!
//! Each host is tried in the URL's order; the first that accepts the connection *and* has the
//! wanted role is used. A host's role is read from what the server reports at start-up
//! (`in_hot_standby` and `default_transaction_read_only`, PostgreSQL 14+), else asked
//! (`pg_is_in_recovery()`, `transaction_read_only`). outboxd's default is `primary`: after a
//! failover the old primary may come back as a standby (or, worse, still as a primary of its own
//! timeline, which only fencing it avoids), and only the new primary holds the slot's future.
//!
//! When no host fits, the error names every host with the reason, and is transient when waiting
//! may help (a host is a standby that may be promoted, or could not be reached).

use super::connection::ReplicationConnection;
use super::error::SourceError;
use super::params::TargetSessionAttrs;

/// Why a host was not used.
#[derive(Debug)]
pub enum Failure {
    /// It answered, but has the wrong role (`in recovery (a standby)`, `read-only`).
    Role(String),
    /// The connection failed.
    Error(SourceError),
}

/// Why a server with this role does not fit `attrs`, or `None` when it does.
pub fn mismatch(attrs: TargetSessionAttrs, in_recovery: bool, read_only: bool) -> Option<String> {
    match attrs {
        TargetSessionAttrs::Any => None,
        TargetSessionAttrs::Primary if in_recovery => Some("in recovery (a standby)".into()),
        TargetSessionAttrs::Primary => None,
        TargetSessionAttrs::ReadWrite if in_recovery => Some("in recovery (a standby)".into()),
        TargetSessionAttrs::ReadWrite if read_only => {
            Some("read-only (default_transaction_read_only = on)".into())
        }
        TargetSessionAttrs::ReadWrite => None,
    }
}

/// The role check on a fresh walsender connection: the start-up parameters where the server
/// reports them (PostgreSQL 14+), else two queries (a walsender in database mode runs SQL).
pub async fn role_mismatch(
    conn: &mut ReplicationConnection,
    attrs: TargetSessionAttrs,
) -> Result<Option<String>, SourceError> {
    if attrs == TargetSessionAttrs::Any {
        return Ok(None);
    }
    let reported = (
        conn.parameter("in_hot_standby").map(|v| v == "on"),
        conn.parameter("default_transaction_read_only")
            .map(|v| v == "on"),
    );
    let (in_recovery, read_only) = match reported {
        (Some(r), Some(ro)) => (r, ro),
        _ => {
            let rows = conn
                .simple_query(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
                )
                .await?;
            let row = rows.first().ok_or_else(|| {
                SourceError::Protocol("pg_is_in_recovery() returned no row".into())
            })?;
            let on = |i: usize, t: &str| row.get(i).and_then(|v| v.as_deref()) == Some(t);
            (on(0, "t"), on(1, "on"))
        }
    };
    Ok(mismatch(attrs, in_recovery, read_only))
}

/// The error when no host fitted: with one host, its own connection error as it is; otherwise
/// every host with its reason.
pub fn none_fits(attrs: TargetSessionAttrs, mut tried: Vec<(String, Failure)>) -> SourceError {
    if tried.len() == 1 && matches!(tried[0].1, Failure::Error(_)) {
        if let Some((_, Failure::Error(e))) = tried.pop() {
            return e;
        }
    }
    let transient = tried.iter().any(|(_, f)| match f {
        Failure::Role(_) => true,
        Failure::Error(e) => e.is_transient(),
    });
    let tried = tried
        .into_iter()
        .map(|(host, f)| match f {
            Failure::Role(why) => format!("{host}: {why}"),
            Failure::Error(e) => format!("{host}: {e}"),
        })
        .collect();
    SourceError::NoHostFits {
        attrs,
        tried,
        transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_against_target_session_attrs() {
        use TargetSessionAttrs::*;
        assert_eq!(mismatch(Any, true, true), None);
        assert_eq!(
            mismatch(Primary, false, true),
            None,
            "a read-only primary is a primary"
        );
        assert!(mismatch(Primary, true, false).unwrap().contains("standby"));
        assert!(mismatch(ReadWrite, true, false)
            .unwrap()
            .contains("standby"));
        assert!(mismatch(ReadWrite, false, true)
            .unwrap()
            .contains("read-only"));
        assert_eq!(mismatch(ReadWrite, false, false), None);
    }

    #[test]
    fn the_error_names_every_host_and_is_transient_while_waiting_can_help() {
        let refused = || {
            Failure::Error(SourceError::io(
                "connecting to Postgres",
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
            ))
        };
        let e = none_fits(
            TargetSessionAttrs::Primary,
            vec![
                (
                    "h1:5432".into(),
                    Failure::Role("in recovery (a standby)".into()),
                ),
                ("h2:5432".into(), refused()),
            ],
        );
        let text = e.to_string();
        assert!(
            text.contains("h1:5432: in recovery (a standby)")
                && text.contains("h2:5432: I/O error")
                && text.contains("target_session_attrs=primary"),
            "{text}"
        );
        assert!(e.is_transient());
        // One host that failed: its own error, unchanged.
        let e = none_fits(TargetSessionAttrs::Primary, vec![("h:1".into(), refused())]);
        assert!(matches!(e, SourceError::Io { .. }), "{e}");
        // Every host refused for good (e.g. authentication): not transient.
        let auth = || {
            Failure::Error(SourceError::Auth {
                user: "u".into(),
                method: "md5".into(),
                reason: "wrong".into(),
                fix: "fix".into(),
                server: None,
            })
        };
        let e = none_fits(
            TargetSessionAttrs::Primary,
            vec![("a:1".into(), auth()), ("b:1".into(), auth())],
        );
        assert!(!e.is_transient(), "{e}");
    }
}
