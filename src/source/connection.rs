//! The walsender (replication) connection: startup with `replication=database`, authentication,
//! simple queries, `IDENTIFY_SYSTEM`, and the CopyBoth stream of `START_REPLICATION ... LOGICAL`.
//!
//! Built on `postgres-protocol` over a tokio `TcpStream` (optionally TLS, see [`super::tls`]),
//! because `tokio-postgres` can neither send the `replication` startup parameter nor speak
//! CopyBoth. A walsender accepts the simple query protocol only.
//! Reference: <https://www.postgresql.org/docs/current/protocol-replication.html>.
//!
//! Lifecycle: [`ReplicationConnection::connect`] → optional [`ReplicationConnection::simple_query`] /
//! [`ReplicationConnection::identify_system`] → [`ReplicationConnection::start_replication`] →
//! [`ReplicationStream::next`] / [`ReplicationStream::send_status`] → [`ReplicationStream::close`].
//!
//! One job, best read whole: this is the only code on the replication socket (the pure framing
//! is `protocol`); startup, authentication, queries and the stream share its buffer, its reads
//! and its mapping of server errors. Its tests are the integration tests in tests/connection.rs.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{self, ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{ServerError, SourceError};
use super::hosts;
use super::params::{auth_fix_for_code, ConnectParams, MISSING_PASSWORD_FIX};
pub use super::protocol::ReplicationMessage;
use super::protocol::{self as proto, Frame};
use super::tls::{self, MaybeTlsStream};
use crate::lsn::Lsn;

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// The answer to `IDENTIFY_SYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's unique system identifier.
    pub system_id: u64,
    /// The current timeline.
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    /// The database connected to (`None` for a physical replication connection).
    pub dbname: Option<String>,
}

/// The answer to `CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// Where the slot starts: streaming from it begins with the first transaction committing after.
    pub consistent_point: Lsn,
    /// The exported snapshot (`SET TRANSACTION SNAPSHOT '<name>'`) of the same point.
    pub snapshot_name: String,
}

/// Buffered transport shared by the connection and the stream.
struct Wire {
    stream: MaybeTlsStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Wire {
    fn new(stream: MaybeTlsStream) -> Wire {
        Wire {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(1024),
        }
    }

    /// Reads more bytes into `rbuf`. Returns `false` at EOF. Cancel-safe.
    async fn fill(&mut self, context: &'static str) -> Result<bool, SourceError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let n = self
            .stream
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| SourceError::io(context, e))?;
        Ok(n > 0)
    }

    /// The next complete backend message; an EOF is an error here.
    async fn read_frame(&mut self, context: &'static str) -> Result<Frame, SourceError> {
        loop {
            if let Some(frame) = proto::parse_frame(&mut self.rbuf)? {
                return Ok(frame);
            }
            if !self.fill(context).await? {
                return Err(SourceError::io(
                    context,
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ),
                ));
            }
        }
    }

    /// Writes everything in `wbuf` and flushes. A cancelled call leaves the unwritten rest in
    /// `wbuf` (never half a frame lost), to be written by the next call.
    async fn flush_out(&mut self, context: &'static str) -> Result<(), SourceError> {
        while !self.wbuf.is_empty() {
            let n = self
                .stream
                .write(&self.wbuf)
                .await
                .map_err(|e| SourceError::io(context, e))?;
            if n == 0 {
                return Err(SourceError::io(
                    context,
                    std::io::Error::new(std::io::ErrorKind::WriteZero, "socket closed for writing"),
                ));
            }
            self.wbuf.advance(n);
        }
        self.stream
            .flush()
            .await
            .map_err(|e| SourceError::io(context, e))
    }

    /// Best-effort `Terminate` and socket shutdown, bounded by `limit`.
    async fn terminate(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            frontend::terminate(&mut self.wbuf);
            if self.flush_out("sending Terminate").await.is_ok() {
                let _ = self.stream.shutdown().await;
            }
        })
        .await;
    }
}

/// An authenticated walsender connection in the "ready for query" state.
pub struct ReplicationConnection {
    wire: Wire,
    parameters: HashMap<String, String>,
    backend_key: Option<(i32, i32)>,
    /// The parameters of the one host this connection went to (of the URL's hosts).
    params: ConnectParams,
}

impl std::fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("tls", &self.wire.stream.is_tls())
            .field("server_version", &self.parameter("server_version"))
            .field("backend_pid", &self.backend_pid())
            .finish()
    }
}

impl ReplicationConnection {
    /// Opens a walsender connection: TCP (each resolved address in turn), TLS per `sslmode`, startup
    /// with `user`, `database`, `replication=database`, `application_name`, `client_encoding=UTF8`,
    /// then authentication (trust, cleartext password, MD5, SCRAM-SHA-256 without channel binding).
    /// The whole sequence is bounded by `params.connect_timeout` (unless zero).
    ///
    /// With several hosts in the URL, each is tried in turn (each within `connect_timeout`) and
    /// the first that fits `target_session_attrs` is kept ([`crate::source::hosts`]); a host that
    /// does not fit is disconnected. When none fits the error lists every host with why.
    pub async fn connect(params: &ConnectParams) -> Result<Self, SourceError> {
        let mut tried = Vec::new();
        for candidate in params.candidates() {
            let attempt = async {
                let mut conn = Self::connect_one(&candidate).await?;
                match hosts::role_mismatch(&mut conn, candidate.target_session_attrs).await {
                    Ok(None) => Ok(Ok(conn)),
                    Ok(Some(why)) => {
                        conn.close().await;
                        Ok(Err(why))
                    }
                    Err(e) => Err(e),
                }
            };
            match attempt.await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(why)) => tried.push((candidate.host_port(), hosts::Failure::Role(why))),
                Err(e) => tried.push((candidate.host_port(), hosts::Failure::Error(e))),
            }
        }
        Err(hosts::none_fits(params.target_session_attrs, tried))
    }

    /// The parameters of the host this connection went to (one host: the SQL connection of the
    /// same run uses them, so both reach the same server).
    pub fn params(&self) -> &ConnectParams {
        &self.params
    }

    /// One host, bounded by `params.connect_timeout` (unless zero).
    async fn connect_one(params: &ConnectParams) -> Result<Self, SourceError> {
        let fut = Self::connect_inner(params);
        if params.connect_timeout.is_zero() {
            return fut.await;
        }
        tokio::time::timeout(params.connect_timeout, fut)
            .await
            .map_err(|_| SourceError::Timeout {
                what: "connecting to Postgres (TCP, TLS and authentication)",
                after: params.connect_timeout,
            })?
    }

    async fn connect_inner(params: &ConnectParams) -> Result<Self, SourceError> {
        let tcp = connect_tcp(&params.host, params.port).await?;
        let stream = tls::negotiate(tcp, params).await?;
        let mut conn = ReplicationConnection {
            wire: Wire::new(stream),
            parameters: HashMap::new(),
            backend_key: None,
            params: params.clone(),
        };
        let startup = [
            ("user", params.user.as_str()),
            ("database", params.dbname.as_str()),
            ("replication", "database"),
            ("application_name", params.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(startup.iter().copied(), &mut conn.wire.wbuf).map_err(|e| {
            SourceError::InvalidArgument(format!("cannot encode the startup message: {e}"))
        })?;
        conn.wire.flush_out("sending the startup message").await?;
        conn.authenticate(params).await?;
        conn.wait_ready().await?;
        tracing::debug!(
            postgres = %params.redacted_url(),
            server_version = conn.parameter("server_version").unwrap_or("?"),
            tls = conn.wire.stream.is_tls(),
            "replication connection established"
        );
        Ok(conn)
    }

    async fn authenticate(&mut self, params: &ConnectParams) -> Result<(), SourceError> {
        let user = params.user.as_str();
        let mut method = "unknown";
        let mut scram: Option<ScramSha256> = None;
        let auth_err = |method: &str, reason: String, fix: &str| SourceError::Auth {
            user: user.to_string(),
            method: method.to_string(),
            reason,
            fix: fix.to_string(),
            server: None,
        };
        let need_password = |method: &str| -> Result<&[u8], SourceError> {
            params
                .password
                .as_deref()
                .map(str::as_bytes)
                .ok_or_else(|| {
                    auth_err(
                        method,
                        "the server asked for a password but none was given".to_string(),
                        MISSING_PASSWORD_FIX,
                    )
                })
        };
        loop {
            let frame = self.wire.read_frame("authenticating").await?;
            let msg = match frame {
                Frame::Message(m) => m,
                Frame::CopyBothResponse => {
                    return Err(SourceError::Protocol(
                        "CopyBothResponse during authentication".to_string(),
                    ))
                }
            };
            match msg {
                Message::AuthenticationOk => {
                    if scram.is_some() {
                        return Err(auth_err(
                            method,
                            "the server ended SCRAM authentication without its final message"
                                .to_string(),
                            "check the server's authentication settings",
                        ));
                    }
                    return Ok(());
                }
                Message::AuthenticationCleartextPassword => {
                    method = "password";
                    let pw = need_password(method)?;
                    frontend::password_message(pw, &mut self.wire.wbuf)
                        .map_err(|e| SourceError::InvalidArgument(format!("password: {e}")))?;
                    self.wire.flush_out("sending the password").await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    method = "md5";
                    let pw = need_password(method)?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        pw,
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.wire.wbuf)
                        .map_err(|e| SourceError::InvalidArgument(format!("password: {e}")))?;
                    self.wire.flush_out("sending the MD5 password").await?;
                }
                Message::AuthenticationSasl(body) => {
                    method = "SCRAM-SHA-256";
                    let mut mechanisms = Vec::new();
                    let mut it = body.mechanisms();
                    while let Some(m) = it.next().map_err(|e| {
                        SourceError::Protocol(format!("malformed SASL mechanism list: {e}"))
                    })? {
                        mechanisms.push(m.to_string());
                    }
                    if !mechanisms.iter().any(|m| m == sasl::SCRAM_SHA_256) {
                        return Err(auth_err(
                            "SASL",
                            format!(
                                "the server offers only SASL mechanisms {mechanisms:?}; this client \
                                 supports SCRAM-SHA-256 without channel binding"
                            ),
                            "allow scram-sha-256 (without channel_binding=require) for this user in pg_hba.conf",
                        ));
                    }
                    let pw = need_password(method)?;
                    // "n,,": this client does not support channel binding (so the server does not
                    // suspect a downgrade even over TLS).
                    let s = ScramSha256::new(pw, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.wire.wbuf,
                    )
                    .map_err(|e| SourceError::Protocol(format!("SASL initial response: {e}")))?;
                    scram = Some(s);
                    self.wire
                        .flush_out("sending the SCRAM first message")
                        .await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| {
                        SourceError::Protocol("SASLContinue without SASL".to_string())
                    })?;
                    s.update(body.data()).map_err(|e| {
                        auth_err(
                            method,
                            format!("invalid SCRAM server-first message: {e}"),
                            "check that the server is a genuine Postgres",
                        )
                    })?;
                    frontend::sasl_response(s.message(), &mut self.wire.wbuf)
                        .map_err(|e| SourceError::Protocol(format!("SASL response: {e}")))?;
                    self.wire
                        .flush_out("sending the SCRAM final message")
                        .await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let mut s = scram.take().ok_or_else(|| {
                        SourceError::Protocol("SASLFinal without SASL".to_string())
                    })?;
                    s.finish(body.data()).map_err(|e| {
                        auth_err(
                            method,
                            format!("the server's SCRAM signature is invalid: {e}"),
                            "check that you connect to the intended server",
                        )
                    })?;
                    // AuthenticationOk follows.
                    let frame = self.wire.read_frame("authenticating").await?;
                    return match frame {
                        Frame::Message(Message::AuthenticationOk) => Ok(()),
                        Frame::Message(Message::ErrorResponse(body)) => Err(auth_server_error(
                            user,
                            method,
                            ServerError::from_fields(body.fields()),
                        )),
                        _ => Err(SourceError::Protocol(
                            "expected AuthenticationOk after SASLFinal".to_string(),
                        )),
                    };
                }
                Message::ErrorResponse(body) => {
                    return Err(auth_server_error(
                        user,
                        method,
                        ServerError::from_fields(body.fields()),
                    ));
                }
                Message::NoticeResponse(body) => {
                    log_notice(ServerError::from_fields(body.fields()))
                }
                Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential
                | Message::AuthenticationGss
                | Message::AuthenticationGssContinue(_)
                | Message::AuthenticationSspi => {
                    return Err(auth_err(
                        "GSSAPI/SSPI/Kerberos",
                        "the server asks for an authentication method this client does not support"
                            .to_string(),
                        "use trust, password, md5 or scram-sha-256 for this user in pg_hba.conf",
                    ));
                }
                _ => {
                    return Err(SourceError::Protocol(
                        "unexpected message during authentication".to_string(),
                    ))
                }
            }
        }
    }

    /// After authentication: BackendKeyData, ParameterStatus..., ReadyForQuery.
    async fn wait_ready(&mut self) -> Result<(), SourceError> {
        loop {
            match self
                .wire
                .read_frame("waiting for the server to be ready")
                .await?
            {
                Frame::Message(Message::ReadyForQuery(_)) => return Ok(()),
                Frame::Message(Message::BackendKeyData(body)) => {
                    self.backend_key = Some((body.process_id(), body.secret_key()));
                }
                Frame::Message(Message::ParameterStatus(body)) => self.record_parameter(&body),
                Frame::Message(Message::NoticeResponse(body)) => {
                    log_notice(ServerError::from_fields(body.fields()))
                }
                Frame::Message(Message::ErrorResponse(body)) => {
                    let mut err = ServerError::from_fields(body.fields());
                    if err.code == "42501" && err.hint.is_none() {
                        err.hint = Some(
                            "grant the REPLICATION attribute: ALTER ROLE <user> REPLICATION"
                                .to_string(),
                        );
                    }
                    return Err(SourceError::server(err));
                }
                _ => {
                    return Err(SourceError::Protocol(
                        "unexpected message after authentication".to_string(),
                    ))
                }
            }
        }
    }

    fn record_parameter(
        &mut self,
        body: &postgres_protocol::message::backend::ParameterStatusBody,
    ) {
        if let (Ok(name), Ok(value)) = (body.name(), body.value()) {
            self.parameters.insert(name.to_string(), value.to_string());
        }
    }

    /// A run-time parameter the server reported (`server_version`, `server_encoding`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// The walsender's process id (for `pg_stat_replication` / `pg_terminate_backend`).
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_key.map(|(pid, _)| pid)
    }

    /// True when the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        self.wire.stream.is_tls()
    }

    /// Runs a command with the simple query protocol and returns all data rows (of all statements)
    /// as text columns (`None` for NULL). A server error is returned after the server is ready
    /// again, so the connection stays usable. Not cancel-safe: do not race it in `select!`.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        frontend::query(sql, &mut self.wire.wbuf)
            .map_err(|e| SourceError::InvalidArgument(format!("query cannot be sent: {e}")))?;
        self.wire.flush_out("sending a query").await?;
        let mut rows = Vec::new();
        let mut error: Option<ServerError> = None;
        loop {
            let frame = self.wire.read_frame("reading a query result").await?;
            let msg = match frame {
                Frame::Message(m) => m,
                Frame::CopyBothResponse => {
                    return Err(SourceError::Protocol(
                        "simple_query got CopyBothResponse: use start_replication".to_string(),
                    ))
                }
            };
            match msg {
                Message::RowDescription(_)
                | Message::CommandComplete(_)
                | Message::EmptyQueryResponse => {}
                Message::DataRow(body) => {
                    let buf = body.buffer();
                    let mut ranges = body.ranges();
                    let mut row = Vec::new();
                    while let Some(range) = ranges
                        .next()
                        .map_err(|e| SourceError::Protocol(format!("malformed DataRow: {e}")))?
                    {
                        row.push(match range {
                            None => None,
                            Some(r) => {
                                let bytes = buf.get(r).ok_or_else(|| {
                                    SourceError::Protocol(
                                        "DataRow column out of bounds".to_string(),
                                    )
                                })?;
                                Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                                    SourceError::Protocol(
                                        "DataRow column is not valid UTF-8".to_string(),
                                    )
                                })?)
                            }
                        });
                    }
                    rows.push(row);
                }
                Message::ErrorResponse(body) => {
                    error.get_or_insert(ServerError::from_fields(body.fields()));
                }
                Message::NoticeResponse(body) => {
                    log_notice(ServerError::from_fields(body.fields()))
                }
                Message::ParameterStatus(body) => self.record_parameter(&body),
                Message::ReadyForQuery(_) => {
                    return match error {
                        Some(e) => Err(SourceError::server(e)),
                        None => Ok(rows),
                    }
                }
                Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                    return Err(SourceError::Protocol(
                        "simple_query does not support COPY".to_string(),
                    ))
                }
                _ => {
                    return Err(SourceError::Protocol(
                        "unexpected message in a query result".to_string(),
                    ))
                }
            }
        }
    }

    /// `IDENTIFY_SYSTEM`: system id, timeline, current WAL position and database.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, SourceError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = match rows.as_slice() {
            [row] if row.len() >= 4 => row,
            _ => {
                return Err(SourceError::Protocol(format!(
                    "IDENTIFY_SYSTEM returned {} rows, expected one row of 4 columns",
                    rows.len()
                )))
            }
        };
        let field = |i: usize, name: &str| {
            row[i].as_deref().ok_or_else(|| {
                SourceError::Protocol(format!("IDENTIFY_SYSTEM returned NULL {name}"))
            })
        };
        let bad = |name: &str, v: &str| {
            SourceError::Protocol(format!("IDENTIFY_SYSTEM returned invalid {name} {v:?}"))
        };
        let systemid = field(0, "systemid")?;
        let timeline = field(1, "timeline")?;
        let xlogpos = field(2, "xlogpos")?;
        Ok(SystemIdentity {
            system_id: systemid.parse().map_err(|_| bad("systemid", systemid))?,
            timeline: timeline.parse().map_err(|_| bad("timeline", timeline))?,
            xlogpos: xlogpos.parse().map_err(|_| bad("xlogpos", xlogpos))?,
            dbname: row[3].clone(),
        })
    }

    /// `CREATE_REPLICATION_SLOT "<slot>" [TEMPORARY] LOGICAL pgoutput EXPORT_SNAPSHOT`: creates a
    /// logical slot and exports the snapshot of its consistent point. The snapshot can be imported
    /// (`SET TRANSACTION SNAPSHOT`) by other sessions until this connection runs its next command;
    /// `START_REPLICATION` on this connection then streams from the consistent point.
    ///
    /// `failover` (PostgreSQL 17+, not for a temporary slot) creates a failover slot, with the
    /// option syntax of PostgreSQL 15+: `(SNAPSHOT 'export', FAILOVER true)`.
    pub async fn create_slot_exporting_snapshot(
        &mut self,
        slot: &str,
        temporary: bool,
        failover: bool,
    ) -> Result<CreatedSlot, SourceError> {
        let cmd = format!(
            "CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput {}",
            super::quote::quote_ident(slot),
            if temporary { " TEMPORARY" } else { "" },
            if failover && !temporary {
                "(SNAPSHOT 'export', FAILOVER true)"
            } else {
                "EXPORT_SNAPSHOT"
            }
        );
        let rows = self.simple_query(&cmd).await?;
        let row = match rows.as_slice() {
            [row] if row.len() >= 3 => row,
            _ => {
                return Err(SourceError::Protocol(format!(
                    "CREATE_REPLICATION_SLOT returned {} rows, expected one row of 4 columns",
                    rows.len()
                )))
            }
        };
        let consistent_point = row[1].as_deref().unwrap_or_default();
        Ok(CreatedSlot {
            consistent_point: consistent_point.parse().map_err(|_| {
                SourceError::Protocol(format!(
                    "CREATE_REPLICATION_SLOT returned an invalid consistent_point {consistent_point:?}"
                ))
            })?,
            snapshot_name: row[2].clone().ok_or_else(|| {
                SourceError::Protocol("CREATE_REPLICATION_SLOT exported no snapshot".to_string())
            })?,
        })
    }

    /// `ALTER_REPLICATION_SLOT "<slot>" (FAILOVER true)` (PostgreSQL 17+): makes an existing
    /// slot a failover slot, which the server then synchronizes to standbys.
    pub async fn make_failover_slot(&mut self, slot: &str) -> Result<(), SourceError> {
        let cmd = format!(
            "ALTER_REPLICATION_SLOT {} (FAILOVER true)",
            super::quote::quote_ident(slot)
        );
        self.simple_query(&cmd).await.map(|_| ())
    }

    /// Sends `START_REPLICATION SLOT "<slot>" LOGICAL <start> ("name" 'value', ...)` and waits for
    /// `CopyBothResponse`. Option names are quoted as identifiers and values as string literals, e.g.
    /// `[("proto_version", "1"), ("publication_names", "\"outboxd\"")]`.
    ///
    /// `start` = `0/0` resumes from the slot's `confirmed_flush_lsn`. On error (slot missing: 42704,
    /// slot active: 55006, ...) the connection is terminated.
    pub async fn start_replication(
        mut self,
        slot: &str,
        start: Lsn,
        options: &[(&str, &str)],
    ) -> Result<ReplicationStream, SourceError> {
        let cmd = proto::start_replication_command(slot, start, options)?;
        tracing::debug!(command = %cmd, "starting replication");
        frontend::query(&cmd, &mut self.wire.wbuf)
            .map_err(|e| SourceError::InvalidArgument(format!("START_REPLICATION: {e}")))?;
        self.wire.flush_out("sending START_REPLICATION").await?;
        loop {
            let frame = match self.wire.read_frame("starting replication").await {
                Ok(f) => f,
                Err(e) => return Err(e),
            };
            match frame {
                Frame::CopyBothResponse => {
                    return Ok(ReplicationStream {
                        wire: self.wire,
                        server_done: false,
                        client_done: false,
                        eof: false,
                    })
                }
                Frame::Message(Message::ErrorResponse(body)) => {
                    let err = ServerError::from_fields(body.fields());
                    self.wire.terminate(Duration::from_secs(1)).await;
                    return Err(SourceError::server(err));
                }
                Frame::Message(Message::NoticeResponse(body)) => {
                    log_notice(ServerError::from_fields(body.fields()))
                }
                Frame::Message(Message::ParameterStatus(body)) => self.record_parameter(&body),
                Frame::Message(_) => {
                    self.wire.terminate(Duration::from_secs(1)).await;
                    return Err(SourceError::Protocol(
                        "unexpected answer to START_REPLICATION (expected CopyBothResponse)"
                            .to_string(),
                    ));
                }
            }
        }
    }

    /// Sends `Terminate` and closes the socket.
    pub async fn close(self) {
        self.wire.terminate(Duration::from_secs(5)).await;
    }
}

/// The CopyBoth stream of a logical replication slot.
pub struct ReplicationStream {
    wire: Wire,
    /// The server sent CopyDone.
    server_done: bool,
    /// We sent CopyDone.
    client_done: bool,
    /// The socket reached EOF.
    eof: bool,
}

impl std::fmt::Debug for ReplicationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationStream")
            .field("tls", &self.wire.stream.is_tls())
            .field("server_done", &self.server_done)
            .field("eof", &self.eof)
            .finish()
    }
}

impl ReplicationStream {
    /// The next message of the stream. `Ok(None)`: the server ended the stream (CopyDone or a
    /// clean EOF between messages); call [`ReplicationStream::close`] (or drop) then.
    ///
    /// Cancel-safe: bytes are read into an internal buffer and only complete messages are taken
    /// from it, so dropping this future (e.g. in `tokio::select!`) loses nothing.
    pub async fn next(&mut self) -> Result<Option<ReplicationMessage>, SourceError> {
        loop {
            loop {
                let tag = self.wire.rbuf.first().copied().unwrap_or(b'?');
                let Some(frame) = proto::parse_frame(&mut self.wire.rbuf)? else {
                    break;
                };
                match frame {
                    Frame::Message(Message::CopyData(body)) => {
                        if self.server_done {
                            continue;
                        }
                        match proto::decode_copy_data(body.into_bytes())? {
                            Some(msg) => return Ok(Some(msg)),
                            None => {
                                tracing::debug!("skipping unknown replication message kind");
                            }
                        }
                    }
                    Frame::Message(Message::CopyDone) => {
                        self.server_done = true;
                        return Ok(None);
                    }
                    Frame::Message(Message::ErrorResponse(body)) => {
                        return Err(SourceError::server(ServerError::from_fields(body.fields())));
                    }
                    Frame::Message(Message::NoticeResponse(body)) => {
                        log_notice(ServerError::from_fields(body.fields()))
                    }
                    Frame::Message(Message::ParameterStatus(_)) => {}
                    Frame::Message(Message::CommandComplete(_))
                    | Frame::Message(Message::ReadyForQuery(_))
                        if self.server_done => {}
                    // A walsender that is shutting down (fast shutdown, once everything it sent
                    // is confirmed) ends the stream with CommandComplete and no CopyDone
                    // (walsender.c, WalSndDone).
                    Frame::Message(Message::CommandComplete(_)) => {
                        self.server_done = true;
                        return Ok(None);
                    }
                    _ => {
                        return Err(SourceError::Protocol(format!(
                            "unexpected message {:?} in the replication stream",
                            char::from(tag)
                        )))
                    }
                }
            }
            if self.server_done || self.eof {
                return Ok(None);
            }
            if !self.wire.fill("reading the replication stream").await? {
                self.eof = true;
                if self.wire.rbuf.is_empty() {
                    return Ok(None);
                }
                return Err(SourceError::io(
                    "reading the replication stream",
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of a message",
                    ),
                ));
            }
        }
    }

    /// Sends a standby status update (`r`): WAL positions written, flushed (the slot's
    /// `confirmed_flush_lsn` advances to `flush`) and applied, the client clock, and whether the
    /// server should answer with a keepalive at once.
    ///
    /// If cancelled, no partial frame is lost: the unsent rest is sent first by the next call.
    pub async fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply_requested: bool,
    ) -> Result<(), SourceError> {
        if self.client_done {
            return Err(SourceError::InvalidArgument(
                "send_status after the stream was closed".to_string(),
            ));
        }
        let payload =
            proto::encode_status_update(write, flush, apply, proto::pg_now_us(), reply_requested);
        proto::copy_data_frame(&payload, &mut self.wire.wbuf);
        self.wire.flush_out("sending a standby status update").await
    }

    /// Ends replication gracefully: CopyDone, drain the stream until ReadyForQuery (bounded by
    /// `timeout`), Terminate, close the socket. The server releases the slot at once.
    ///
    /// The socket is closed even when this returns an error (`Timeout` if the server did not
    /// finish in time, or the server's error).
    pub async fn close(mut self, timeout: Duration) -> Result<(), SourceError> {
        if self.eof {
            return Ok(());
        }
        let drained = tokio::time::timeout(timeout, self.drain()).await;
        self.wire
            .terminate(timeout.max(Duration::from_millis(100)))
            .await;
        match drained {
            Err(_) => Err(SourceError::Timeout {
                what: "waiting for the server to end replication",
                after: timeout,
            }),
            Ok(result) => result,
        }
    }

    async fn drain(&mut self) -> Result<(), SourceError> {
        if !self.client_done {
            frontend::copy_done(&mut self.wire.wbuf);
            self.client_done = true;
            self.wire.flush_out("sending CopyDone").await?;
        }
        let mut error = None;
        loop {
            let frame = loop {
                if let Some(f) = proto::parse_frame(&mut self.wire.rbuf)? {
                    break f;
                }
                if !self.wire.fill("ending replication").await? {
                    // The server closed the connection: nothing left to wait for.
                    self.eof = true;
                    return error.map_or(Ok(()), |e| Err(SourceError::server(e)));
                }
            };
            match frame {
                Frame::Message(Message::ReadyForQuery(_)) => {
                    return error.map_or(Ok(()), |e| Err(SourceError::server(e)));
                }
                Frame::Message(Message::CopyDone) => self.server_done = true,
                Frame::Message(Message::ErrorResponse(body)) => {
                    error.get_or_insert(ServerError::from_fields(body.fields()));
                }
                // Remaining CopyData, CommandComplete, notices: nothing to do.
                _ => {}
            }
        }
    }
}

/// Connects to each resolved address in turn; the last error is reported.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, SourceError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| SourceError::io("resolving the Postgres host name", e))?;
    let mut last_err = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "TCP connect failed");
                last_err = Some(e);
            }
        }
    }
    Err(SourceError::io(
        "connecting to Postgres",
        last_err.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} resolved to no address"),
            )
        }),
    ))
}

fn auth_server_error(user: &str, method: &str, err: ServerError) -> SourceError {
    if err.code.starts_with("28") {
        SourceError::Auth {
            user: user.to_string(),
            method: method.to_string(),
            reason: err.message.clone(),
            fix: auth_fix_for_code(&err.code, &err.message),
            server: Some(Box::new(err)),
        }
    } else {
        SourceError::server(err)
    }
}

fn log_notice(n: ServerError) {
    tracing::info!(target: "outboxd::source", code = %n.code, "postgres notice: {}", n.message);
}
