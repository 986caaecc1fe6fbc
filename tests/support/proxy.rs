//! Broker outages: a dedicated broker behind an in-process TCP proxy.
//!
//! The proxy listens on port P and forwards to a broker listening on port B; the broker
//! advertises P for its client listener, so every connection a Kafka client makes (bootstrap and
//! per-broker) goes through the proxy. (Apache Kafka's inter-broker and controller listeners are
//! separate ports, not proxied: an outage cuts the clients off, as a network fault between them
//! and the cluster would.) [`ProxiedBroker::pause`] resets all proxied connections and RSTs new
//! ones until [`ProxiedBroker::resume`]; the broker itself keeps running (and keeps its data).
//!
//! The broker is a dedicated one of [`local_kind`] even when the shared broker is external
//! (`KAFKA_BOOTSTRAP_SERVERS`): an external cluster advertises its own addresses, which a proxy
//! in front of its bootstrap address cannot intercept. Where no broker can be started (no Kafka
//! jars), [`ProxiedBroker::start_or_skip`] prints a `SKIP` line with the reason.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use super::broker::{kafka_available, local_kind, KafkaOptions, Kind, LocalBroker};
use super::free_port;

/// Whether a broker behind the proxy can be started here; `Err` says why not.
pub fn outage_supported() -> Result<(), String> {
    match local_kind() {
        Kind::Kafka => kafka_available(),
        Kind::Tansu => Ok(()),
    }
}

/// A TCP proxy running on its own thread and tokio runtime (so it works from sync and async
/// tests alike, and keeps running while a test blocks).
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    paused: Arc<watch::Sender<bool>>,
    frozen: Arc<watch::Sender<bool>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 (or `listen_port` if non-zero) and forwards to `upstream`.
    pub fn start(listen_port: u16, upstream: SocketAddr) -> Proxy {
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", listen_port)).expect("bind proxy listener");
        std_listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = std_listener.local_addr().expect("proxy local addr");
        let (paused_tx, paused_rx) = watch::channel(false);
        let paused = Arc::new(paused_tx);
        let (frozen_tx, frozen_rx) = watch::channel(false);
        let frozen = Arc::new(frozen_tx);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, upstream, paused_rx, frozen_rx) => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping the runtime cancels (and closes) every connection task.
            })
            .expect("spawn proxy thread");
        Proxy {
            addr,
            upstream,
            paused,
            frozen,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Resets every open proxied connection and RSTs new ones until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Accepts and forwards connections again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// A silent network partition: every connection stays open but nothing crosses it any more
    /// in either direction (no reset, no FIN), and new connections are accepted and left hanging
    /// the same way. [`thaw`](Self::thaw) ends it.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Ends a [`freeze`](Self::freeze): the connections it held are reset (as both ends find
    /// out when a partition heals), and new ones are forwarded again.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    paused: watch::Receiver<bool>,
    frozen: watch::Receiver<bool>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if *paused.borrow() {
            reset(client);
            continue;
        }
        let (mut paused, mut frozen) = (paused.clone(), frozen.clone());
        tokio::spawn(async move {
            let mut client = client;
            let frozen_now = *frozen.borrow();
            if frozen_now {
                // Accepted, never answered, until the partition heals.
                drop(frozen.wait_for(|f| !*f).await);
                reset(client);
                return;
            }
            let mut server = match TcpStream::connect(upstream).await {
                Ok(s) => s,
                Err(_) => {
                    reset(client);
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            // Which way the connection ends (computed first: a watch guard must not be held
            // across the awaits below).
            let frozen_now = tokio::select! {
                _ = copy_bidirectional(&mut client, &mut server) => return,
                _ = async { drop(paused.wait_for(|p| *p).await) } => false,
                _ = async { drop(frozen.wait_for(|f| *f).await) } => true,
            };
            if frozen_now {
                // Both sockets stay open, unread and unwritten, until the thaw.
                drop(frozen.wait_for(|f| !*f).await);
            }
            reset(client);
            reset(server);
        });
    }
}

/// Closes with RST (SO_LINGER 0) rather than FIN: the peer sees "connection reset".
#[allow(deprecated)] // SO_LINGER 0 never blocks: it discards and sends RST at once.
fn reset(s: TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// A dedicated broker (not shared with other tests) reachable only through a [`Proxy`]: of
/// [`local_kind`], whatever the shared broker is.
pub struct ProxiedBroker {
    proxy: Proxy,
    broker: LocalBroker,
}

impl ProxiedBroker {
    /// Starts the broker and the proxy. Panics when no broker can be started here: check
    /// [`outage_supported`] or use [`start_or_skip`](Self::start_or_skip).
    pub fn start() -> ProxiedBroker {
        if let Err(why) = outage_supported() {
            panic!("ProxiedBroker: {why} (use ProxiedBroker::start_or_skip)");
        }
        let broker_port = free_port();
        // Bind the proxy first so the advertised port is ours for sure.
        let proxy = Proxy::start(0, SocketAddr::from(([127, 0, 0, 1], broker_port)));
        let broker = LocalBroker::start(
            local_kind(),
            KafkaOptions {
                port: Some(broker_port),
                advertised_port: Some(proxy.addr().port()),
                ..KafkaOptions::default()
            },
        );
        ProxiedBroker { proxy, broker }
    }

    /// [`start`](Self::start), or — when no broker can be started here — prints
    /// `SKIP <test>: ...` (see [`skip`](super::skip)) and returns None. Use as
    /// `let Some(broker) = ProxiedBroker::start_or_skip("my_test") else { return };`
    pub fn start_or_skip(test: &str) -> Option<ProxiedBroker> {
        match outage_supported() {
            Ok(()) => Some(Self::start()),
            Err(why) => {
                super::skip(test, &format!("a broker behind the test proxy: {why}"));
                None
            }
        }
    }

    /// The proxy's address, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap()
    }

    /// Simulates the broker going away: resets open connections, RSTs new ones.
    pub fn pause(&self) {
        self.proxy.pause();
    }

    /// Ends the outage.
    pub fn resume(&self) {
        self.proxy.resume();
    }

    pub fn is_paused(&self) -> bool {
        self.proxy.is_paused()
    }

    /// The underlying proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The kind of broker behind the proxy.
    pub fn kind(&self) -> Kind {
        self.broker.kind()
    }

    /// The broker behind the proxy (to kill and restart it, say).
    pub fn broker(&mut self) -> &mut LocalBroker {
        &mut self.broker
    }

    pub fn log_path(&self) -> &Path {
        self.broker.log_path()
    }

    /// Creates a topic (through the proxy, so call it while not paused).
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        super::kafka::create_topic(self.bootstrap(), name, partitions).await
    }
}
