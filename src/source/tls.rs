//! TLS for the Postgres connections, with rustls (ring provider).
//!
//! Owns: the rustls `ClientConfig` for each `sslmode` ([`client_config`]), the `SSLRequest`
//! negotiation of the walsender connection ([`negotiate`]) and the `tokio-postgres` TLS adapter used
//! by [`super::params::ConnectParams::connect_sql`] ([`MakeRustlsConnect`]).
//!
//! `sslmode` follows libpq (<https://www.postgresql.org/docs/current/libpq-ssl.html>):
//! - `disable`: plain TCP, no `SSLRequest`.
//! - `prefer`: `SSLRequest`; TLS when the server answers `S`, plain when it answers `N`. The
//!   certificate is not verified. A failed handshake after `S` is an error (no plain retry).
//! - `require`: TLS or fail; the certificate is not verified (any certificate is accepted, but the
//!   handshake signatures are still checked so the peer must hold the certificate's key). As in libpq,
//!   an explicitly given `sslrootcert` upgrades this to `verify-ca`.
//! - `verify-ca`: the chain must lead to `sslrootcert` (or to the webpki roots when absent or
//!   `sslrootcert=system`); the host name is not checked.
//! - `verify-full`: `verify-ca` plus the certificate must be valid for the host (DNS name or IP).
//!
//! Client certificates (`sslcert` + `sslkey`, PEM) are presented when given. The startup flow is
//! described in <https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL> and
//! the replication protocol in <https://www.postgresql.org/docs/current/protocol-replication.html>.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::SourceError;
use super::params::{ConnectParams, SslMode};

/// Builds the rustls configuration for `params.sslmode`; `None` for `disable`.
///
/// Fails (as [`SourceError::Tls`]) when a certificate or key file cannot be read or parsed.
pub fn client_config(params: &ConnectParams) -> Result<Option<Arc<ClientConfig>>, SourceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verification = match params.sslmode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer => Verification::None,
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as
        // that of verify-ca".
        SslMode::Require if params.sslrootcert.is_some() => Verification::Chain,
        SslMode::Require => Verification::None,
        SslMode::VerifyCa => Verification::Chain,
        SslMode::VerifyFull => Verification::Full,
    };

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::tls(format!("no usable TLS protocol version: {e}"), "none"))?;

    let builder = match verification {
        Verification::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier {
                roots: None,
                provider,
            })),
        Verification::Chain => {
            let roots = Arc::new(root_store(params)?);
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier {
                    roots: Some(roots),
                    provider,
                }))
        }
        Verification::Full => {
            let roots = Arc::new(root_store(params)?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| {
                    SourceError::tls(
                        format!("cannot build the certificate verifier: {e}"),
                        "check sslrootcert",
                    )
                })?;
            builder.with_webpki_verifier(verifier)
        }
    };

    let config = match (&params.sslcert, &params.sslkey) {
        (Some(cert), Some(key)) => {
            let certs = load_certs(cert, "sslcert")?;
            let key = load_key(key)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                SourceError::tls(
                    format!("the client certificate and key are unusable: {e}"),
                    "check that sslkey is the private key of sslcert",
                )
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) | (None, Some(_)) => {
            return Err(SourceError::tls(
                "only one of sslcert and sslkey is set",
                "set both sslcert and sslkey, or neither",
            ))
        }
    };
    Ok(Some(Arc::new(config)))
}

/// The server name rustls verifies (for `verify-full`) and sends as SNI (for DNS names).
pub fn server_name(host: &str) -> Result<ServerName<'static>, SourceError> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        SourceError::tls(
            format!("{host:?} is not a valid TLS server name: {e}"),
            "use a DNS host name or an IP address",
        )
    })
}

/// The fix to suggest when a TLS handshake fails under `mode`.
pub(crate) fn handshake_fix(mode: SslMode, has_rootcert: bool) -> &'static str {
    match mode {
        SslMode::Require if has_rootcert => {
            "check that sslrootcert holds the CA that signed the server certificate (with sslrootcert \
             set, sslmode=require verifies the chain as libpq does; remove sslrootcert to skip that)"
        }
        SslMode::VerifyFull => {
            "check that sslrootcert holds the CA that signed the server certificate and that the \
             certificate names the host you connect to (or use sslmode=verify-ca)"
        }
        SslMode::VerifyCa => {
            "check that sslrootcert holds the CA that signed the server certificate"
        }
        _ => "check the server's ssl settings (ssl_cert_file, ssl_min_protocol_version)",
    }
}

enum Verification {
    None,
    Chain,
    Full,
}

fn root_store(params: &ConnectParams) -> Result<RootCertStore, SourceError> {
    let mut roots = RootCertStore::empty();
    match &params.sslrootcert {
        Some(path) if path.as_os_str() != "system" => {
            let certs = load_certs(path, "sslrootcert")?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(SourceError::tls(
                    format!(
                        "sslrootcert {} holds no usable CA certificate",
                        path.display()
                    ),
                    "point sslrootcert to a PEM file with the CA certificate",
                ));
            }
        }
        _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

fn load_certs(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>, SourceError> {
    let file = File::open(path).map_err(|e| {
        SourceError::tls(
            format!("cannot open {param} {}: {e}", path.display()),
            format!("check the {param} path in the source URL"),
        )
    })?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            SourceError::tls(
                format!("cannot read {param} {}: {e}", path.display()),
                format!("{param} must be a PEM file"),
            )
        })?;
    if certs.is_empty() {
        return Err(SourceError::tls(
            format!("{param} {} contains no PEM certificate", path.display()),
            format!("{param} must be a PEM file with at least one CERTIFICATE block"),
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, SourceError> {
    let file = File::open(path).map_err(|e| {
        SourceError::tls(
            format!("cannot open sslkey {}: {e}", path.display()),
            "check the sslkey path in the source URL",
        )
    })?;
    match rustls_pemfile::private_key(&mut BufReader::new(file)) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(SourceError::tls(
            format!("sslkey {} contains no private key", path.display()),
            "sslkey must be an unencrypted PEM private key (PKCS#1, PKCS#8 or SEC1)",
        )),
        Err(e) => Err(SourceError::tls(
            format!("cannot read sslkey {}: {e}", path.display()),
            "sslkey must be an unencrypted PEM private key",
        )),
    }
}

/// The verifier of the modes that do not check the host name: `require`/`prefer` (`roots` is
/// `None`: any certificate is accepted) and `verify-ca` (the chain must lead to one of `roots`).
/// Handshake signatures are verified either way.
#[derive(Debug)]
struct NoHostnameVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TCP stream, TLS-wrapped or not: the transport of the walsender connection.
#[derive(Debug)]
pub enum MaybeTlsStream {
    /// No TLS (`sslmode=disable`, or `prefer` and the server said `N`).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// True when the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTlsStream::Tls(_))
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Sets up TLS on a fresh TCP connection as `params.sslmode` asks: nothing for `disable`, otherwise
/// `SSLRequest`, one byte of answer (`S` or `N`), then the rustls handshake.
pub async fn negotiate(
    mut tcp: TcpStream,
    params: &ConnectParams,
) -> Result<MaybeTlsStream, SourceError> {
    let Some(config) = client_config(params)? else {
        return Ok(MaybeTlsStream::Plain(tcp));
    };
    let name = server_name(&params.host)?;

    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut buf);
    tcp.write_all(&buf)
        .await
        .map_err(|e| SourceError::io("sending SSLRequest", e))?;
    // Exactly one byte: nothing may be buffered between the answer and the handshake.
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| SourceError::io("reading the answer to SSLRequest", e))?;
    match answer {
        b'S' => {}
        b'N' if params.sslmode == SslMode::Prefer => {
            tracing::debug!(host = %params.host, "server does not support TLS; continuing without (sslmode=prefer)");
            return Ok(MaybeTlsStream::Plain(tcp));
        }
        b'N' => {
            return Err(SourceError::tls(
                format!(
                "the server at {}:{} does not accept TLS connections but sslmode={} requires TLS",
                params.host, params.port, params.sslmode
            ),
                "enable ssl=on on the server, or lower sslmode (prefer/disable) in the source URL",
            ))
        }
        other => {
            return Err(SourceError::Protocol(format!(
                "unexpected answer {:?} to SSLRequest (expected 'S' or 'N')",
                char::from(other)
            )))
        }
    }
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| handshake_error(e, params))?;
    Ok(MaybeTlsStream::Tls(Box::new(tls)))
}

fn handshake_error(e: io::Error, params: &ConnectParams) -> SourceError {
    let is_tls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls || e.kind() == io::ErrorKind::InvalidData {
        SourceError::tls(
            format!(
                "TLS handshake with {}:{} failed (sslmode={}): {e}",
                params.host, params.port, params.sslmode
            ),
            handshake_fix(params.sslmode, params.sslrootcert.is_some()),
        )
    } else {
        SourceError::io("performing the TLS handshake", e)
    }
}

/// `tokio_postgres::tls::MakeTlsConnect` over rustls, for ordinary SQL connections.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
}

impl MakeRustlsConnect {
    /// Wraps a configuration from [`client_config`].
    pub fn new(config: Arc<ClientConfig>) -> Self {
        MakeRustlsConnect { config }
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = SourceError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, SourceError> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: server_name(domain)?,
        })
    }
}

/// One TLS handshake for `tokio-postgres` (see [`MakeRustlsConnect`]).
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

/// The TLS stream handed to `tokio-postgres`. Channel binding is not offered.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        tokio_postgres::tls::ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> ConnectParams {
        ConnectParams::from_url_with_env(url, |_| None).unwrap()
    }

    #[test]
    fn disable_builds_no_config() {
        assert!(client_config(&params("postgres://u@h/d?sslmode=disable"))
            .unwrap()
            .is_none());
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u@h/d?sslmode={mode}");
            assert!(client_config(&params(&url)).unwrap().is_some(), "{mode}");
        }
    }

    #[test]
    fn missing_files_are_tls_errors() {
        let err = client_config(&params(
            "postgres://u@h/d?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        ))
        .unwrap_err();
        assert!(matches!(err, SourceError::Tls { .. }), "{err}");
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        let err =
            client_config(&params("postgres://u@h/d?sslmode=require&sslcert=/c.pem")).unwrap_err();
        assert!(err.to_string().contains("sslkey"), "{err}");
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("::1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("db.example.com").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("not a name").is_err());
    }
}
