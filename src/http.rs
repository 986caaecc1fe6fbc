//! The HTTP listener: `GET /metrics` (Prometheus text format), `GET /healthz` (liveness: the main
//! loop went round recently, whatever the state of Postgres or Kafka, so that an outage does not
//! cause restart storms) and `GET /readyz` (ready: connected to both and streaming).
//!
//! A deliberately small HTTP/1.1 responder (one request per connection, `Connection: close`): the
//! three endpoints need nothing more, and it keeps a web framework out of the binary.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::{Health, Metrics};

/// How long the main loop may be silent before `/healthz` fails.
pub const LIVENESS_WINDOW_MS: u64 = 60_000;

/// Binds `addr` and serves until the task is dropped.
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (m, h) = (metrics.clone(), health.clone());
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(10), handle(stream, &m, &h))
                                .await;
                    });
                }
                Err(e) => {
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn handle(mut stream: TcpStream, metrics: &Metrics, health: &Health) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request_line = String::from_utf8_lossy(&buf);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = route(method, path, metrics, health);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

fn route(
    method: &str,
    path: &str,
    metrics: &Metrics,
    health: &Health,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "use GET\n".into());
    }
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" if health.is_alive(LIVENESS_WINDOW_MS) => ("200 OK", TEXT, "ok\n".into()),
        "/healthz" => (
            "503 Service Unavailable",
            TEXT,
            "main loop stalled\n".into(),
        ),
        "/readyz" if health.is_streaming() => match health.kafka_problem() {
            None => ("200 OK", TEXT, "streaming\n".into()),
            Some(why) => (
                "503 Service Unavailable",
                TEXT,
                format!("streaming from Postgres, but Kafka is unreachable: {why}\n"),
            ),
        },
        "/readyz" => (
            "503 Service Unavailable",
            TEXT,
            match health.kafka_problem() {
                None => "not streaming (connecting, retrying or waiting for the slot)\n".into(),
                Some(why) => format!("not streaming: Kafka is unreachable: {why}\n"),
            },
        ),
        _ => (
            "404 Not Found",
            TEXT,
            "endpoints: /metrics /healthz /readyz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_three_endpoints() {
        let m = Metrics::new();
        let h = Health::default();
        assert_eq!(
            route("GET", "/healthz", &m, &h).0,
            "503 Service Unavailable"
        );
        h.beat();
        assert_eq!(route("GET", "/healthz", &m, &h).0, "200 OK");
        assert_eq!(route("GET", "/readyz", &m, &h).0, "503 Service Unavailable");
        h.set_streaming(true);
        assert_eq!(route("GET", "/readyz", &m, &h).0, "200 OK");
        assert!(route("GET", "/metrics", &m, &h)
            .2
            .contains("outboxd_confirmed_lsn"));
        assert_eq!(
            route("POST", "/metrics", &m, &h).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET", "/nope", &m, &h).0, "404 Not Found");
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let m = Metrics::new();
        let h = Arc::new(Health::default());
        h.beat();
        // Bind to an ephemeral port first to learn a free one.
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = probe.local_addr().unwrap().to_string();
        drop(probe);
        let task = serve(&addr, m, h).await.unwrap();
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.ends_with("ok\n"), "{out}");
        task.abort();
    }
}
