//! `SourceError`: everything that can go wrong on the Postgres side of a connection, classified so the
//! caller can decide between "retry with backoff" ([`SourceError::is_transient`]) and "stop and tell
//! the operator what to fix".
//!
//! Server-reported errors keep their SQLSTATE, message, detail and hint ([`ServerError`]).
//! Authentication errors name the user and the method and say which setting fixes them; they never
//! contain the password. Protocol reference:
//! <https://www.postgresql.org/docs/current/protocol-replication.html> and
//! <https://www.postgresql.org/docs/current/protocol-error-fields.html>.

use std::fmt;
use std::io;
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorFields;

use super::params::ParamsError;

/// An `ErrorResponse` (or a `NoticeResponse`) from the server, with the fields an operator needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerError {
    /// `ERROR`, `FATAL` or `PANIC` (the non-localized `V` field when the server sends it).
    pub severity: String,
    /// The SQLSTATE code, e.g. `55006` (object in use).
    pub code: String,
    /// The primary, human-readable message.
    pub message: String,
    /// Optional secondary message with more detail.
    pub detail: Option<String>,
    /// Optional suggestion of what to do about it.
    pub hint: Option<String>,
}

impl ServerError {
    /// Collects the fields of an `ErrorResponse`/`NoticeResponse` body. Malformed fields are skipped
    /// rather than failing: an error report must never be lost because of its own encoding.
    pub(crate) fn from_fields(mut fields: ErrorFields<'_>) -> ServerError {
        let mut err = ServerError::default();
        let mut localized_severity = None;
        // A malformed field ends the walk; what was collected so far is kept.
        while let Ok(Some(field)) = fields.next() {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'V' => err.severity = value,
                b'S' => localized_severity = Some(value),
                b'C' => err.code = value,
                b'M' => err.message = value,
                b'D' => err.detail = Some(value),
                b'H' => err.hint = Some(value),
                _ => {}
            }
        }
        if err.severity.is_empty() {
            err.severity = localized_severity.unwrap_or_else(|| "ERROR".to_string());
        }
        if err.code.is_empty() {
            err.code = "XX000".to_string();
        }
        err
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Errors of the Postgres connections (replication and SQL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The server reported an error (`ErrorResponse`). See [`SourceError::code`].
    #[error("postgres server error: {0}")]
    Server(Box<ServerError>),

    /// Authentication failed or could not be attempted. Not transient: a setting must change.
    #[error("authentication of user {user:?} failed (method: {method}): {reason}; fix: {fix}")]
    Auth {
        /// The user name that was sent.
        user: String,
        /// The method the server asked for (`trust`, `password`, `md5`, `SCRAM-SHA-256`, ...),
        /// or `unknown` when the server rejected the connection before asking.
        method: String,
        /// What went wrong, in words (the server's message when it sent one).
        reason: String,
        /// Which setting to change.
        fix: String,
        /// The server's `ErrorResponse`, when there was one (SQLSTATE 28P01, 28000, ...).
        server: Option<Box<ServerError>>,
    },

    /// TLS could not be set up: refused by the server, certificate rejected, unreadable key files.
    #[error("TLS error: {reason}; fix: {fix}")]
    Tls {
        /// What went wrong.
        reason: String,
        /// Which setting to change.
        fix: String,
    },

    /// Reading from or writing to the socket failed (includes the server closing the connection).
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the connection was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The server sent something the protocol does not allow at this point, or a malformed message.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// An operation did not finish in time.
    #[error("timed out after {after:?} while {what}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// The connection parameters (URL) are invalid.
    #[error("invalid connection parameters: {0}")]
    Params(#[from] ParamsError),

    /// None of the source URL's hosts could be used (`source::hosts`).
    #[error("no host of the source URL is {}: {}; outboxd tries them all again (during a failover, until a standby is promoted), so put every server that may become the primary in source.url", .attrs.wanted(), .tried.join("; "))]
    NoHostFits {
        /// What was asked for.
        attrs: super::params::TargetSessionAttrs,
        /// `host:port: why`, in the URL's order.
        tried: Vec<String>,
        /// Whether waiting may help (a standby may be promoted, a host may come back).
        transient: bool,
    },

    /// An argument given to this library is unusable (e.g. a slot name with a NUL byte).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An error of the ordinary SQL connection (`tokio-postgres`) that is not a server error.
    #[error("SQL connection error: {}", describe_sql_error(.0))]
    Sql(tokio_postgres::Error),
}

/// A tokio-postgres error in words: the server's code, message, detail and hint for server errors
/// (tokio-postgres' own Display says only "db error"), else the error with its causes.
pub fn describe_sql_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// SQLSTATEs that go away by themselves: retry with backoff.
const TRANSIENT_SQLSTATES: &[&str] = &[
    "57P01", // admin_shutdown (server shutting down, pg_terminate_backend)
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now (server starting up / in recovery)
    "55006", // object_in_use: "replication slot ... is active for PID ..."
    "53300", // too_many_connections (also max_wal_senders reached)
    "40001", // serialization_failure
    "40P01", // deadlock_detected
];

impl SourceError {
    /// The SQLSTATE of a server-reported error (also for authentication errors the server reported).
    pub fn code(&self) -> Option<&str> {
        self.server_error().map(|e| e.code.as_str())
    }

    /// The server's error report, if this error came from one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            SourceError::Server(e) => Some(e),
            SourceError::Auth { server, .. } => server.as_deref(),
            _ => None,
        }
    }

    /// True when retrying the same operation later may succeed without any change of configuration:
    /// network errors, timeouts, server restarts (57P01/57P02/57P03), a slot still held by a previous
    /// walsender (55006), too many connections (53300), connection-exception class 08.
    /// False for authentication, TLS, configuration and protocol errors: those need an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Io { .. } | SourceError::Timeout { .. } => true,
            SourceError::NoHostFits { transient, .. } => *transient,
            SourceError::Server(e) => is_transient_sqlstate(&e.code),
            SourceError::Sql(e) => {
                if let Some(db) = e.as_db_error() {
                    return is_transient_sqlstate(db.code().code());
                }
                if e.is_closed() {
                    return true;
                }
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    if s.is::<io::Error>() {
                        return true;
                    }
                    source = s.source();
                }
                false
            }
            SourceError::Auth { .. }
            | SourceError::Tls { .. }
            | SourceError::Protocol(_)
            | SourceError::Params(_)
            | SourceError::InvalidArgument(_) => false,
        }
    }

    pub(crate) fn io(context: &'static str, source: io::Error) -> SourceError {
        SourceError::Io { context, source }
    }

    pub(crate) fn server(err: ServerError) -> SourceError {
        SourceError::Server(Box::new(err))
    }

    pub(crate) fn tls(reason: impl Into<String>, fix: impl Into<String>) -> SourceError {
        SourceError::Tls {
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

fn is_transient_sqlstate(code: &str) -> bool {
    TRANSIENT_SQLSTATES.contains(&code) || code.starts_with("08")
}

impl From<tokio_postgres::Error> for SourceError {
    /// Server-reported errors become [`SourceError::Server`] (so [`SourceError::code`] works);
    /// everything else is kept as [`SourceError::Sql`].
    fn from(e: tokio_postgres::Error) -> SourceError {
        match e.as_db_error() {
            Some(db) => SourceError::server(ServerError {
                severity: db.severity().to_string(),
                code: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            }),
            None => SourceError::Sql(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> SourceError {
        SourceError::server(ServerError {
            severity: "FATAL".into(),
            code: code.into(),
            message: "m".into(),
            ..ServerError::default()
        })
    }

    #[test]
    fn transient_classification() {
        for code in ["57P01", "55006", "53300", "08006"] {
            assert!(server(code).is_transient(), "{code}");
        }
        for code in ["28P01", "42501", "3D000", "42704"] {
            assert!(!server(code).is_transient(), "{code}");
        }
        assert!(SourceError::io("reading", io::Error::other("x")).is_transient());
        assert!(!SourceError::tls("bad cert", "fix it").is_transient());
        let auth = SourceError::Auth {
            user: "u".into(),
            method: "md5".into(),
            reason: "r".into(),
            fix: "f".into(),
            server: Some(Box::new(ServerError {
                code: "28P01".into(),
                ..ServerError::default()
            })),
        };
        assert!(!auth.is_transient());
        assert_eq!(auth.code(), Some("28P01"));
        assert_eq!(server("55006").code(), Some("55006"));
    }

    #[test]
    fn display_includes_detail_and_hint() {
        let e = ServerError {
            severity: "ERROR".into(),
            code: "55006".into(),
            message: "replication slot \"s\" is active for PID 42".into(),
            detail: Some("d".into()),
            hint: Some("h".into()),
        };
        assert_eq!(
            e.to_string(),
            "ERROR 55006: replication slot \"s\" is active for PID 42 (detail: d) (hint: h)"
        );
    }
}
