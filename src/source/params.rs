//! Connection parameters of the Postgres source: parsing of `postgres://` URLs (libpq's URI form),
//! redaction of the password for logs, and the ordinary SQL connection ([`ConnectParams::connect_sql`]).
//!
//! The same parameters open the walsender connection ([`super::connection::ReplicationConnection`]),
//! see <https://www.postgresql.org/docs/current/protocol-replication.html>. The URL syntax and the
//! meaning of `sslmode` follow libpq:
//! <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>.
//!
//! # Password
//! The password is taken from the URL (`postgres://user:secret@host/db`, percent-encoded if needed).
//! When the URL has none, it falls back to the `PGPASSWORD` environment variable (an empty value
//! counts as unset). There is no `.pgpass` lookup. `Debug` and `Display` never print the password.
//!
//! One job, best read whole: [`ConnectParams`] from the URL to a connection; parsing, the
//! percent-encoding both ways, redaction and the libpq error fixes all follow the same URL rules,
//! which the tests at the end pin.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::SourceError;
use super::tls;

/// Default TCP port of Postgres.
pub const DEFAULT_PORT: u16 = 5432;
/// Default `connect_timeout` when the URL does not set one.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `application_name`, shown in `pg_stat_replication` / `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "outboxd";

/// How TLS is used, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server supports it, plain otherwise; the certificate is not verified.
    #[default]
    Prefer,
    /// Always use TLS; the certificate is not verified (but, as in libpq, when `sslrootcert` is given
    /// explicitly the chain is verified like `verify-ca`).
    Require,
    /// Always use TLS and verify the certificate chain against `sslrootcert` (or the webpki root
    /// store when absent), but not the host name.
    VerifyCa,
    /// Like `verify-ca`, and the certificate must also be issued for the host name (or IP) connected to.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SslMode {
    type Err = ParamsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // "allow" means "plain first, TLS if the server insists": not supported.
            other => {
                return Err(ParamsError::InvalidValue {
                    param: "sslmode",
                    value: other.to_string(),
                    expected: "one of disable, prefer, require, verify-ca, verify-full",
                })
            }
        })
    }
}

/// Which server of the source URL's hosts outboxd may use (libpq's `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// The first host that accepts the connection, whatever it is.
    Any,
    /// A server that accepts writes: not in recovery, and `default_transaction_read_only` off.
    ReadWrite,
    /// A server that is not in recovery (not a standby): outboxd's default, since it writes the
    /// slot's position and may create the publication and the slot.
    #[default]
    Primary,
}

impl TargetSessionAttrs {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::Primary => "primary",
        }
    }
}

impl TargetSessionAttrs {
    /// What a fitting server is, for messages.
    pub fn wanted(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "reachable",
            TargetSessionAttrs::ReadWrite => "writable (target_session_attrs=read-write)",
            TargetSessionAttrs::Primary => "the primary (target_session_attrs=primary)",
        }
    }
}

impl std::str::FromStr for TargetSessionAttrs {
    type Err = ParamsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "primary" => TargetSessionAttrs::Primary,
            other => {
                return Err(ParamsError::InvalidValue {
                    param: "target_session_attrs",
                    value: other.to_string(),
                    expected: "primary (the default), read-write or any (outboxd needs the \
                               primary: read-only, standby and prefer-standby are not supported)",
                })
            }
        })
    }
}

/// The URL could not be turned into [`ConnectParams`]. Messages never contain the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The URL does not start with `postgres://` or `postgresql://`.
    #[error("the source URL must start with postgres:// or postgresql://")]
    InvalidScheme,
    /// The URL has a syntax error.
    #[error("malformed source URL: {0}")]
    Malformed(String),
    /// A `%XX` escape is malformed or decodes to invalid UTF-8.
    #[error("invalid percent-encoding in the {0} of the source URL")]
    InvalidPercentEncoding(&'static str),
    /// The URL names no user.
    #[error("the source URL names no user: write postgres://USER@host/dbname")]
    MissingUser,
    /// A query parameter this program does not know.
    #[error("unknown parameter(s) in the source URL: {}; supported are host, port, sslmode, sslrootcert, sslcert, sslkey, application_name, connect_timeout, target_session_attrs", .0.join(", "))]
    UnknownParams(Vec<String>),
    /// A parameter has an unusable value.
    #[error("invalid {param} {value:?} in the source URL: expected {expected}")]
    InvalidValue {
        /// The parameter.
        param: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

/// Where and how to connect to Postgres. Build it with [`ConnectParams::from_url`].
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// Host name or IP address (IPv6 without brackets) of the first host. Unix-domain sockets
    /// are not supported.
    pub host: String,
    /// TCP port of the first host.
    pub port: u16,
    /// Every host of the URL with its port, in order (`host` and `port` are the first). A
    /// connection tries them in turn and takes the first that fits `target_session_attrs`
    /// ([`ConnectParams::candidates`]).
    pub hosts: Vec<(String, u16)>,
    /// Which of the hosts may be used.
    pub target_session_attrs: TargetSessionAttrs,
    /// User name.
    pub user: String,
    /// Password, from the URL or `PGPASSWORD`. Never printed.
    pub password: Option<String>,
    /// Database name (defaults to the user name, like libpq).
    pub dbname: String,
    /// TLS mode.
    pub sslmode: SslMode,
    /// PEM file of the CA certificate(s) that must sign the server certificate.
    pub sslrootcert: Option<PathBuf>,
    /// PEM file of the client certificate (chain), for `cert` authentication or mutual TLS.
    pub sslcert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub sslkey: Option<PathBuf>,
    /// `application_name` sent at startup.
    pub application_name: String,
    /// Limit for TCP connect + TLS + authentication. `Duration::ZERO` means no limit.
    pub connect_timeout: Duration,
}

impl ConnectParams {
    /// Parses a libpq-style URL:
    /// `postgres[ql]://[user[:password]@]host[:port][,host[:port]...][/dbname][?param=value&...]`.
    ///
    /// - Every part is percent-decoded; an IPv6 host is written in brackets (`[::1]:5432`).
    /// - Several hosts are separated by commas, each with its own port or 5432; the query
    ///   parameters `host=h1,h2` and `port=p1,p2` (one port for all, or one per host) replace
    ///   the hosts of the authority, as in libpq.
    /// - `host` defaults to `localhost`, `port` to 5432, `dbname` to the user name; the user is required.
    /// - Query parameters: `sslmode` (`disable`, `prefer` (default), `require`, `verify-ca`,
    ///   `verify-full`), `sslrootcert`, `sslcert`, `sslkey` (file paths; `sslrootcert=system` means
    ///   the built-in webpki roots), `application_name` (default `outboxd`), `connect_timeout`
    ///   (whole seconds per host, `0` = no limit, default 10), `target_session_attrs` (`primary`,
    ///   the default, `read-write` or `any`), `host`, `port`. Any other parameter is an error
    ///   naming it.
    /// - The password falls back to the `PGPASSWORD` environment variable when the URL has none.
    pub fn from_url(url: &str) -> Result<Self, ParamsError> {
        Self::from_url_with_env(url, |name| std::env::var(name).ok())
    }

    /// [`ConnectParams::from_url`] with an explicit environment lookup (for tests).
    pub fn from_url_with_env(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ParamsError> {
        let rest = strip_scheme(url).ok_or(ParamsError::InvalidScheme)?;
        if rest.contains('#') {
            return Err(ParamsError::Malformed(
                "a '#' must be percent-encoded as %23".to_string(),
            ));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
            None => (before_query, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };

        let (user, password) = match userinfo {
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (
                    percent_decode(u, "user name")?,
                    Some(percent_decode(p, "password")?),
                ),
                None => (percent_decode(ui, "user name")?, None),
            },
            None => (String::new(), None),
        };
        if user.is_empty() {
            return Err(ParamsError::MissingUser);
        }
        let password = password.or_else(|| env("PGPASSWORD").filter(|p| !p.is_empty()));

        let mut hosts = split_hosts(hostport)
            .into_iter()
            .map(parse_hostport)
            .collect::<Result<Vec<_>, _>>()?;
        let (host, port) = hosts[0].clone();

        let dbname = match path {
            Some(p) if !p.is_empty() => {
                if p.contains('/') {
                    return Err(ParamsError::Malformed(
                        "the path must be a single database name (percent-encode '/' as %2F)"
                            .to_string(),
                    ));
                }
                percent_decode(p, "database name")?
            }
            _ => user.clone(),
        };

        let mut params = ConnectParams {
            host,
            port,
            hosts: Vec::new(),
            target_session_attrs: TargetSessionAttrs::default(),
            user,
            password,
            dbname,
            sslmode: SslMode::default(),
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            application_name: DEFAULT_APPLICATION_NAME.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        };

        let mut unknown = Vec::new();
        let (mut query_hosts, mut query_ports) = (None, None);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                ParamsError::Malformed(format!("query parameter {pair:?} has no '=value'"))
            })?;
            let key = percent_decode(k, "query parameters")?;
            let value = percent_decode(v, "query parameters")?;
            match key.as_str() {
                "sslmode" => params.sslmode = value.parse()?,
                "sslrootcert" => params.sslrootcert = non_empty_path(value),
                "sslcert" => params.sslcert = non_empty_path(value),
                "sslkey" => params.sslkey = non_empty_path(value),
                "application_name" => params.application_name = value,
                "target_session_attrs" => params.target_session_attrs = value.parse()?,
                "host" => query_hosts = Some(value),
                "port" => query_ports = Some(value),
                "connect_timeout" => {
                    let secs: u64 =
                        value
                            .trim()
                            .parse()
                            .map_err(|_| ParamsError::InvalidValue {
                                param: "connect_timeout",
                                value: value.clone(),
                                expected: "a whole number of seconds (0 = no limit)",
                            })?;
                    params.connect_timeout = Duration::from_secs(secs);
                }
                _ => unknown.push(key),
            }
        }
        if !unknown.is_empty() {
            return Err(ParamsError::UnknownParams(unknown));
        }
        if let Some(list) = query_hosts {
            // Percent-decoded already: each name is taken as it is (IPv6 without brackets).
            hosts = list
                .split(',')
                .map(|h| {
                    let h = h.trim();
                    let name = if h.is_empty() { "localhost" } else { h };
                    Ok::<_, ParamsError>((name.to_string(), DEFAULT_PORT))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = query_ports {
            let ports = list
                .split(',')
                .map(|p| parse_port(p.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            match ports.len() {
                1 => hosts.iter_mut().for_each(|h| h.1 = ports[0]),
                n if n == hosts.len() => {
                    for (h, p) in hosts.iter_mut().zip(ports) {
                        h.1 = p;
                    }
                }
                n => {
                    return Err(ParamsError::InvalidValue {
                        param: "port",
                        value: list.clone(),
                        expected: if n == 0 {
                            "a port"
                        } else {
                            "one port for every host, or a single port for all"
                        },
                    })
                }
            }
        }
        (params.host, params.port) = hosts[0].clone();
        params.hosts = hosts;
        for (what, value) in [
            ("user name", &params.user),
            ("database name", &params.dbname),
            (
                "host",
                &params
                    .hosts
                    .iter()
                    .map(|h| h.0.as_str())
                    .collect::<String>(),
            ),
            ("application_name", &params.application_name),
        ] {
            if value.contains('\0') {
                return Err(ParamsError::Malformed(format!(
                    "the {what} contains a NUL byte"
                )));
            }
        }
        if params.password.as_deref().is_some_and(|p| p.contains('\0')) {
            return Err(ParamsError::Malformed(
                "the password contains a NUL byte".to_string(),
            ));
        }
        Ok(params)
    }

    /// The URL with the password replaced by `***` (and only non-default parameters), for logs.
    pub fn redacted_url(&self) -> String {
        let mut url = format!("postgres://{}", percent_encode(&self.user));
        if self.password.is_some() {
            url.push_str(":***");
        }
        url.push('@');
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(host, port)| {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{}:{port}", percent_encode(host))
                }
            })
            .collect();
        url.push_str(&hosts.join(","));
        url.push_str(&format!("/{}", percent_encode(&self.dbname)));
        let mut query = vec![format!("sslmode={}", self.sslmode)];
        if self.target_session_attrs != TargetSessionAttrs::default() {
            query.push(format!(
                "target_session_attrs={}",
                self.target_session_attrs.as_str()
            ));
        }
        for (name, path) in [
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ] {
            if let Some(p) = path {
                query.push(format!("{name}={}", percent_encode(&p.to_string_lossy())));
            }
        }
        if self.application_name != DEFAULT_APPLICATION_NAME {
            query.push(format!(
                "application_name={}",
                percent_encode(&self.application_name)
            ));
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            query.push(format!(
                "connect_timeout={}",
                self.connect_timeout.as_secs()
            ));
        }
        url.push('?');
        url.push_str(&query.join("&"));
        url
    }

    /// The hosts to try, in order, each as parameters naming that one host only.
    pub fn candidates(&self) -> Vec<ConnectParams> {
        self.hosts
            .iter()
            .map(|(host, port)| ConnectParams {
                host: host.clone(),
                port: *port,
                hosts: vec![(host.clone(), *port)],
                ..self.clone()
            })
            .collect()
    }

    /// `host:port` of the first host (`[v6]:port` for IPv6), for messages.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Opens an ordinary SQL connection (not a walsender) with the same host, user, database and
    /// TLS settings, via `tokio-postgres`. The connection task is spawned on the current tokio
    /// runtime; its error, if any, is logged with `tracing` at error level.
    ///
    /// SCRAM channel binding is not used (`SCRAM-SHA-256`, not `-PLUS`).
    ///
    /// With several hosts, each is tried in turn and the first that fits `target_session_attrs`
    /// is used (`source::hosts`), as for the walsender connection.
    pub async fn connect_sql(&self) -> Result<tokio_postgres::Client, SourceError> {
        let mut tried = Vec::new();
        for candidate in self.candidates() {
            match candidate.connect_sql_one().await {
                Ok(client) => match candidate.sql_role_mismatch(&client).await {
                    Ok(None) => return Ok(client),
                    Ok(Some(why)) => {
                        tried.push((candidate.host_port(), super::hosts::Failure::Role(why)))
                    }
                    Err(e) => tried.push((candidate.host_port(), super::hosts::Failure::Error(e))),
                },
                Err(e) => tried.push((candidate.host_port(), super::hosts::Failure::Error(e))),
            }
        }
        Err(super::hosts::none_fits(self.target_session_attrs, tried))
    }

    /// The role check of [`connect_sql`](Self::connect_sql) (`source::hosts::mismatch`).
    async fn sql_role_mismatch(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Option<String>, SourceError> {
        if self.target_session_attrs == TargetSessionAttrs::Any {
            return Ok(None);
        }
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
                &[],
            )
            .await?;
        Ok(super::hosts::mismatch(
            self.target_session_attrs,
            row.get(0),
            row.get(1),
        ))
    }

    /// One host (the first), bounded by `connect_timeout`.
    async fn connect_sql_one(&self) -> Result<tokio_postgres::Client, SourceError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .channel_binding(tokio_postgres::config::ChannelBinding::Disable)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(p) = &self.password {
            config.password(p);
        }
        if !self.connect_timeout.is_zero() {
            config.connect_timeout(self.connect_timeout);
        }

        let connect = async {
            match tls::client_config(self)? {
                None => config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map(|(client, conn)| {
                        spawn_connection(conn, self.redacted_url());
                        client
                    }),
                Some(tls_config) => config
                    .connect(tls::MakeRustlsConnect::new(tls_config))
                    .await
                    .map(|(client, conn)| {
                        spawn_connection(conn, self.redacted_url());
                        client
                    }),
            }
            .map_err(|e| self.map_sql_connect_error(e))
        };
        if self.connect_timeout.is_zero() {
            connect.await
        } else {
            tokio::time::timeout(self.connect_timeout, connect)
                .await
                .map_err(|_| SourceError::Timeout {
                    what: "opening the SQL connection",
                    after: self.connect_timeout,
                })?
        }
    }

    /// Maps an error of `tokio_postgres::Config::connect` to the most useful [`SourceError`].
    fn map_sql_connect_error(&self, e: tokio_postgres::Error) -> SourceError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code().to_string();
            if code == "28P01" || code == "28000" {
                let server = match SourceError::from(e) {
                    SourceError::Server(s) => s,
                    other => return other,
                };
                return SourceError::Auth {
                    user: self.user.clone(),
                    method: "unknown".to_string(),
                    reason: server.message.clone(),
                    fix: auth_fix_for_code(&code, &server.message),
                    server: Some(server),
                };
            }
            return SourceError::from(e);
        }
        // tokio-postgres reports client-side authentication problems (e.g. "password missing") as a
        // generic error whose text starts with "authentication".
        let text = e.to_string();
        if text.contains("password missing") {
            return SourceError::Auth {
                user: self.user.clone(),
                method: "password".to_string(),
                reason: "the server asked for a password but none was given".to_string(),
                fix: MISSING_PASSWORD_FIX.to_string(),
                server: None,
            };
        }
        if let Some(tls_err) = find_source::<rustls::Error>(&e) {
            return SourceError::tls(
                format!(
                    "TLS handshake with {}:{} failed: {tls_err}",
                    self.host, self.port
                ),
                tls::handshake_fix(self.sslmode, self.sslrootcert.is_some()),
            );
        }
        SourceError::Sql(e)
    }
}

pub(crate) const MISSING_PASSWORD_FIX: &str =
    "put the password in the source URL (postgres://user:PASSWORD@host/db) or set PGPASSWORD";

/// The operator-facing fix for a server-side authentication failure.
pub(crate) fn auth_fix_for_code(code: &str, message: &str) -> String {
    if message.contains("certificate") {
        return "give a client certificate and key (sslcert, sslkey in the source URL) whose CN is the \
                user name and that is signed by the server's ssl_ca_file"
            .to_string();
    }
    match code {
        "28P01" => "check the password in the source URL (or PGPASSWORD) and the user's password on \
                    the server (ALTER ROLE ... PASSWORD)"
            .to_string(),
        _ => "check pg_hba.conf on the server: it needs a line allowing this user, database and client \
              address (and hostssl lines need sslmode other than disable); the user also needs LOGIN \
              and, for replication, the REPLICATION attribute"
            .to_string(),
    }
}

fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(t) = inner.downcast_ref::<T>() {
                    return Some(t);
                }
            }
        }
        cur = err.source();
    }
    None
}

fn spawn_connection<S, T>(conn: tokio_postgres::Connection<S, T>, target: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            // tokio-postgres' Display says only "db error" for server errors: show the server's words.
            let error = e.as_db_error().map_or_else(
                || e.to_string(),
                |db| format!("{}: {}", db.code().code(), db.message()),
            );
            tracing::warn!(target: "outboxd::source", postgres = %target, %error, "SQL connection closed");
        }
    });
}

impl fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectParams")
            .field("hosts", &self.hosts)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Prints [`ConnectParams::redacted_url`].
impl fmt::Display for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

fn strip_scheme(url: &str) -> Option<&str> {
    for scheme in ["postgresql://", "postgres://"] {
        if url.len() >= scheme.len()
            && url.is_char_boundary(scheme.len())
            && url[..scheme.len()].eq_ignore_ascii_case(scheme)
        {
            return Some(&url[scheme.len()..]);
        }
    }
    None
}

fn parse_hostport(hostport: &str) -> Result<(String, u16), ParamsError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| {
            ParamsError::Malformed("an IPv6 host opened with '[' is not closed by ']'".to_string())
        })?;
        let host = rest[..end].to_string();
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                ParamsError::Malformed(format!("unexpected {p:?} after the IPv6 host"))
            })?),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ParamsError::InvalidValue {
                param: "host",
                value: host,
                expected: "an IPv6 address inside the brackets",
            });
        }
        (host, port)
    } else {
        match hostport.matches(':').count() {
            0 => (percent_decode(hostport, "host")?, None),
            1 => {
                let (h, p) = hostport.split_once(':').unwrap_or((hostport, ""));
                (percent_decode(h, "host")?, Some(p))
            }
            _ => {
                return Err(ParamsError::Malformed(
                    "an IPv6 host must be written in brackets, e.g. postgres://user@[::1]:5432/db"
                        .to_string(),
                ))
            }
        }
    };
    if host.starts_with('/') {
        return Err(ParamsError::InvalidValue {
            param: "host",
            value: host,
            expected: "a TCP host name or IP address (Unix-domain sockets are not supported)",
        });
    }
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => parse_port(p)?,
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, ParamsError> {
    match p.parse::<u16>() {
        Ok(n) if n != 0 => Ok(n),
        _ => Err(ParamsError::InvalidValue {
            param: "port",
            value: p.to_string(),
            expected: "a number from 1 to 65535",
        }),
    }
}

/// The comma-separated hosts of a URL's authority (`h1:5432,[::1]:5433`); a comma inside an
/// IPv6 host's brackets does not separate.
fn split_hosts(authority: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut depth) = (0, 0);
    for (i, c) in authority.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&authority[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&authority[start..]);
    out
}

fn non_empty_path(value: String) -> Option<PathBuf> {
    if value.is_empty() {
        None
    } else {
        Some(PathBuf::from(value))
    }
}

/// Decodes `%XX` escapes (a `+` stays a `+`, as in libpq).
fn percent_decode(s: &str, what: &'static str) -> Result<String, ParamsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(ParamsError::InvalidPercentEncoding(what))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParamsError::InvalidPercentEncoding(what))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a URL's user, password,
/// host, database and query values); [`ConnectParams::from_url`] decodes it.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<ConnectParams, ParamsError> {
        ConnectParams::from_url_with_env(url, |_| None)
    }

    #[test]
    fn full_url() {
        let p = parse(
            "postgres://alice:s%40cr%3At@db.example.com:6543/my%20db?sslmode=verify-full\
             &sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem&application_name=relay%201\
             &connect_timeout=3",
        )
        .unwrap();
        assert_eq!(p.host, "db.example.com");
        assert_eq!(p.port, 6543);
        assert_eq!(p.user, "alice");
        assert_eq!(p.password.as_deref(), Some("s@cr:t"));
        assert_eq!(p.dbname, "my db");
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!(p.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(p.sslcert, Some(PathBuf::from("/c.pem")));
        assert_eq!(p.sslkey, Some(PathBuf::from("/k.pem")));
        assert_eq!(p.application_name, "relay 1");
        assert_eq!(p.connect_timeout, Duration::from_secs(3));
    }

    #[test]
    fn defaults() {
        let p = parse("postgresql://bob@").unwrap();
        assert_eq!(p.host, "localhost");
        assert_eq!(p.port, 5432);
        assert_eq!(p.dbname, "bob");
        assert_eq!(p.password, None);
        assert_eq!(p.sslmode, SslMode::Prefer);
        assert_eq!(p.application_name, "outboxd");
        assert_eq!(p.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let p = parse("POSTGRES://bob@h/").unwrap();
        assert_eq!(p.host, "h");
        assert_eq!(p.dbname, "bob");
    }

    #[test]
    fn ipv6_hosts() {
        let p = parse("postgres://u@[::1]:5433/d").unwrap();
        assert_eq!(p.host, "::1");
        assert_eq!(p.port, 5433);
        let p = parse("postgres://u@[fe80::1]/d").unwrap();
        assert_eq!(p.host, "fe80::1");
        assert_eq!(p.port, 5432);
        assert!(p
            .redacted_url()
            .starts_with("postgres://u@[fe80::1]:5432/d"));
        assert!(matches!(
            parse("postgres://u@::1/d"),
            Err(ParamsError::Malformed(_))
        ));
        assert!(parse("postgres://u@[::1/d").is_err());
        assert!(parse("postgres://u@[nothost]/d").is_err());
    }

    #[test]
    fn password_falls_back_to_pgpassword() {
        let env = |k: &str| (k == "PGPASSWORD").then(|| "fromenv".to_string());
        let p = ConnectParams::from_url_with_env("postgres://u@h/d", env).unwrap();
        assert_eq!(p.password.as_deref(), Some("fromenv"));
        let p = ConnectParams::from_url_with_env("postgres://u:inurl@h/d", env).unwrap();
        assert_eq!(p.password.as_deref(), Some("inurl"));
        let p =
            ConnectParams::from_url_with_env("postgres://u@h/d", |_| Some(String::new())).unwrap();
        assert_eq!(p.password, None);
    }

    #[test]
    fn unknown_params_are_named() {
        let err =
            parse("postgres://u@h/d?sslmode=require&foo=1&load_balance_hosts=random").unwrap_err();
        assert_eq!(
            err,
            ParamsError::UnknownParams(vec!["foo".into(), "load_balance_hosts".into()])
        );
        let text = err.to_string();
        assert!(
            text.contains("foo") && text.contains("load_balance_hosts"),
            "{text}"
        );
    }

    #[test]
    fn invalid_values() {
        assert_eq!(parse("mysql://u@h/d"), Err(ParamsError::InvalidScheme));
        assert_eq!(parse("postgres://h/d"), Err(ParamsError::MissingUser));
        assert!(matches!(
            parse("postgres://u@h/d?sslmode=allow"),
            Err(ParamsError::InvalidValue {
                param: "sslmode",
                ..
            })
        ));
        assert!(matches!(
            parse("postgres://u@h:99999/d"),
            Err(ParamsError::InvalidValue { param: "port", .. })
        ));
        assert!(matches!(
            parse("postgres://u@h:0/d"),
            Err(ParamsError::InvalidValue { param: "port", .. })
        ));
        assert!(matches!(
            parse("postgres://u@h/d?connect_timeout=abc"),
            Err(ParamsError::InvalidValue {
                param: "connect_timeout",
                ..
            })
        ));
        assert!(matches!(
            parse("postgres://u:%zz@h/d"),
            Err(ParamsError::InvalidPercentEncoding("password"))
        ));
        assert!(matches!(
            parse("postgres://u@h/d?sslmode"),
            Err(ParamsError::Malformed(_))
        ));
        assert!(parse("postgres://u@h1:1,h2:0/d").is_err());
        assert!(parse("postgres://u@h/d?target_session_attrs=standby").is_err());
        assert!(parse("postgres://u@h1,h2,h3/d?port=1,2").is_err());
        assert!(parse("postgres://u@%2Fvar%2Frun/d").is_err());
        assert!(parse("postgres://u@h/a/b").is_err());
        assert!(parse("postgres://u%00x@h/d").is_err());
    }

    #[test]
    fn every_sslmode_parses() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let p = parse(&format!("postgres://u@h/d?sslmode={mode}")).unwrap();
            assert_eq!(p.sslmode, mode);
        }
    }

    #[test]
    fn password_is_never_printed() {
        let p = parse("postgres://u:hunter2@h/d?connect_timeout=0").unwrap();
        assert_eq!(p.connect_timeout, Duration::ZERO);
        let debug = format!("{p:?}");
        let display = p.to_string();
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!display.contains("hunter2"), "{display}");
        assert!(debug.contains("***"));
        assert_eq!(
            display,
            "postgres://u:***@h:5432/d?sslmode=prefer&connect_timeout=0"
        );
        let err = parse("postgres://u:hunter2@h/d?x=1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn several_hosts_in_the_authority_or_the_query() {
        let p = parse("postgres://u@h1:5433,[::1],h3:7/d").unwrap();
        assert_eq!(
            p.hosts,
            vec![
                ("h1".to_string(), 5433),
                ("::1".to_string(), 5432),
                ("h3".to_string(), 7)
            ]
        );
        assert_eq!((p.host.as_str(), p.port), ("h1", 5433));
        assert_eq!(p.target_session_attrs, TargetSessionAttrs::Primary);
        let hosts: Vec<(String, u16)> = p
            .candidates()
            .iter()
            .map(|c| {
                assert_eq!(c.hosts, vec![(c.host.clone(), c.port)]);
                (c.host.clone(), c.port)
            })
            .collect();
        assert_eq!(hosts, p.hosts);
        assert_eq!(
            p.redacted_url(),
            "postgres://u@h1:5433,[::1]:5432,h3:7/d?sslmode=prefer"
        );
        // libpq's query form: host= replaces the authority's hosts; one port for all, or one each.
        let p = parse("postgres://u@ignored/d?host=a,b&port=6000").unwrap();
        assert_eq!(
            p.hosts,
            vec![("a".to_string(), 6000), ("b".to_string(), 6000)]
        );
        let p = parse("postgres://u@/d?host=a,b&port=1,2&target_session_attrs=any").unwrap();
        assert_eq!(p.hosts, vec![("a".to_string(), 1), ("b".to_string(), 2)]);
        assert_eq!(p.target_session_attrs, TargetSessionAttrs::Any);
        let again = parse(&p.redacted_url()).unwrap();
        assert_eq!(again.hosts, p.hosts);
        assert_eq!(again.target_session_attrs, TargetSessionAttrs::Any);
        for (text, attrs) in [
            ("read-write", TargetSessionAttrs::ReadWrite),
            ("primary", TargetSessionAttrs::Primary),
        ] {
            let p = parse(&format!("postgres://u@h/d?target_session_attrs={text}")).unwrap();
            assert_eq!(p.target_session_attrs, attrs);
        }
        let e = parse("postgres://u@h/d?target_session_attrs=prefer-standby")
            .unwrap_err()
            .to_string();
        assert!(e.contains("outboxd needs the primary"), "{e}");
    }

    #[test]
    fn redacted_url_round_trips() {
        let p = parse(
            "postgres://a%20b@h/d%2Fx?sslmode=require&application_name=x%26y&sslrootcert=%2Fca",
        )
        .unwrap();
        let again = parse(&p.redacted_url()).unwrap();
        assert_eq!(again.user, "a b");
        assert_eq!(again.dbname, "d/x");
        assert_eq!(again.application_name, "x&y");
        assert_eq!(again.sslmode, SslMode::Require);
        assert_eq!(again.sslrootcert, Some(PathBuf::from("/ca")));
    }
}
