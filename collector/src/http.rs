//! The API's own accept loop, because the API must not starve the agents:
//! every HTTP connection has a deadline for its headers and one for making
//! no progress, their number is capped apart from the agents' port, and when
//! the cap is reached the oldest connection that has not shown an API token
//! makes room, so a flood of silent or slow sockets cannot keep out a real
//! client or use up the descriptors the agents need. With `[http] tls_cert`
//! the listener speaks TLS, its certificate swapped in whole on SIGHUP so
//! a renewed one is served without a restart.

use crate::config::HttpSettings;
use crate::metrics::{HttpClose, Metrics};
use crate::tls::{TlsError, TlsSettings};
use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// Descriptors kept for everything but connections: the store and its WAL,
/// the read pool, the log, the listeners, syslog, the runtime.
const FD_RESERVE: usize = 64;

/// How long the accept loop waits after a failed accept (out of
/// descriptors, most likely) before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Set on a request's connection once it showed a valid API token; the
/// authorizing middleware finds it among the request's extensions.
#[derive(Clone, Debug, Default)]
pub struct Authenticated(Arc<AtomicBool>);

impl Authenticated {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The address a request came from, among its extensions: sign-in attempts
/// are limited per address.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The HTTP listener's TLS: the configuration new connections get, replaced
/// by [`HttpTls::reload`]; open connections keep the one they began with.
#[derive(Debug)]
pub struct HttpTls {
    settings: TlsSettings,
    // Held to clone an Arc or swap it, never across an await.
    current: RwLock<Arc<ServerConfig>>,
}

impl HttpTls {
    /// Reads the certificate and key.
    pub fn load(settings: TlsSettings) -> Result<HttpTls, TlsError> {
        let config = Self::read(&settings)?;
        Ok(HttpTls {
            settings,
            current: RwLock::new(config),
        })
    }

    fn read(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = (*crate::tls::server_config(settings)?).clone();
        // Only HTTP/1.1 is served; saying so spares a client's h2 attempt.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the files again; on any error the served certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Self::read(&self.settings)?;
        *self.current.write().expect("HTTP TLS poisoned") = config;
        Ok(())
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read().expect("HTTP TLS poisoned")))
    }
}

/// An open connection as the accept loop sees it.
struct Open {
    authenticated: Authenticated,
    close: Arc<Notify>,
}

/// Open connections by age (ids only grow).
#[derive(Default)]
struct Registry {
    // Held for a map operation, never across an await.
    open: Mutex<BTreeMap<u64, Open>>,
    /// Connections whose socket is still open: an evicted one leaves `open`
    /// at once but holds its descriptor until its task has ended.
    held: AtomicUsize,
    released: Notify,
}

impl Registry {
    /// Makes room for one more connection under `cap`: closes the oldest
    /// one without a token if the registry is full. False when every open
    /// connection has shown a token, so the new one must go.
    fn make_room(&self, cap: usize, metrics: &Metrics) -> bool {
        let mut open = self.open.lock().expect("HTTP registry poisoned");
        if open.len() < cap {
            return true;
        }
        let oldest = open
            .iter()
            .find(|(_, c)| !c.authenticated.0.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                let victim = open.remove(&id).expect("just found");
                victim.close.notify_one();
                metrics.http_closed(HttpClose::Evicted);
                true
            }
            None => false,
        }
    }

    fn insert(&self, id: u64, connection: Open) {
        self.open
            .lock()
            .expect("HTTP registry poisoned")
            .insert(id, connection);
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .expect("HTTP registry poisoned")
            .remove(&id);
        self.held.fetch_sub(1, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    /// Returns once at most `limit` sockets are held.
    async fn held_at_most(&self, limit: usize) {
        loop {
            let released = self.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            if self.held.load(Ordering::SeqCst) <= limit {
                return;
            }
            released.await;
        }
    }
}

/// How many HTTP connections may be open: the configured cap, shrunk to fit
/// the descriptors left once the agents' `agent_connections` and a reserve
/// are set aside, so a full API never takes a descriptor an agent needs.
pub fn connection_cap(settings: &HttpSettings, agent_connections: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let budget = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    cap_within(settings.max_connections, budget, agent_connections)
}

fn cap_within(configured: usize, fd_budget: usize, agent_connections: usize) -> usize {
    let left = fd_budget
        .saturating_sub(agent_connections)
        .saturating_sub(FD_RESERVE);
    // A handful of connections even on a starved budget: without any the
    // API, /healthz included, would be gone.
    configured.min(left).max(configured.min(8))
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown`
/// fires, then lets open requests finish. `done` is held by every
/// connection task, so the caller knows when the last one ended.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    listener: TcpListener,
    tls: Option<Arc<HttpTls>>,
    router: Router,
    settings: HttpSettings,
    cap: usize,
    metrics: Arc<Metrics>,
    notify: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
) -> impl Future<Output = ()> {
    // Subscribed now, not when the task first runs: a shutdown sent before
    // the runtime gets to it still reaches it.
    let shutdown = notify.subscribe();
    accept_loop(
        listener, tls, router, settings, cap, metrics, notify, shutdown, done,
    )
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<HttpTls>>,
    router: Router,
    settings: HttpSettings,
    cap: usize,
    metrics: Arc<Metrics>,
    notify: broadcast::Sender<()>,
    mut shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let registry = Arc::new(Registry::default());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let builder = Arc::new(builder);
    let mut next_id = 0u64;
    loop {
        // Subscribed before the accept, so a shutdown sent while this
        // connection is being set up still reaches it.
        let connection_shutdown = notify.subscribe();
        // An evicted connection's socket closes when its task next runs:
        // wait for that before accepting again, so the descriptors never
        // pass the cap by more than the one connection just let in, however
        // fast a flood arrives and however busy the runtime.
        tokio::select! {
            _ = registry.held_at_most(cap) => {}
            _ = shutdown.recv() => return,
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "Accepting an HTTP connection failed.");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        metrics
            .http_connections_total
            .fetch_add(1, Ordering::Relaxed);
        if !registry.make_room(cap, &metrics) {
            metrics.http_closed(HttpClose::Full);
            drop(stream);
            continue;
        }
        let id = next_id;
        next_id += 1;
        let open = Open {
            authenticated: Authenticated::default(),
            close: Arc::new(Notify::new()),
        };
        let connection = Connection {
            peer,
            tls: tls.as_ref().map(|t| t.acceptor()),
            authenticated: open.authenticated.clone(),
            close: Arc::clone(&open.close),
            settings,
            builder: Arc::clone(&builder),
            router: router.clone(),
            metrics: Arc::clone(&metrics),
        };
        registry.insert(id, open);
        registry.held.fetch_add(1, Ordering::SeqCst);
        let registry = Arc::clone(&registry);
        let done = done.clone();
        tokio::spawn(async move {
            connection.run(stream, connection_shutdown).await;
            registry.remove(id);
            drop(done);
        });
    }
}

struct Connection {
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    authenticated: Authenticated,
    close: Arc<Notify>,
    settings: HttpSettings,
    builder: Arc<hyper::server::conn::http1::Builder>,
    router: Router,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn run(self, stream: TcpStream, shutdown: broadcast::Receiver<()>) {
        let metrics = Arc::clone(&self.metrics);
        metrics
            .http_connections_open
            .fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let moved = Arc::new(AtomicU64::new(0));
        let watched = Watched {
            stream,
            started,
            moved: Arc::clone(&moved),
        };
        match self.tls.clone() {
            None => self.drive(watched, started, moved, shutdown).await,
            // The handshake has the headers' deadline: a client that opens
            // a socket and says nothing is closed the same either way.
            Some(acceptor) => {
                match tokio::time::timeout(self.settings.header_timeout, acceptor.accept(watched))
                    .await
                {
                    Ok(Ok(tls)) => self.drive(tls, started, moved, shutdown).await,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, peer = %self.peer, "An HTTPS handshake failed.");
                    }
                    Err(_) => metrics.http_closed(HttpClose::HeaderTimeout),
                }
            }
        }
        metrics
            .http_connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Serves requests on `io` until the client or a deadline ends it.
    async fn drive<I>(
        self,
        io: I,
        started: Instant,
        moved: Arc<AtomicU64>,
        mut shutdown: broadcast::Receiver<()>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let metrics = self.metrics;
        let io = TokioIo::new(io);
        let authenticated = self.authenticated;
        let peer = ClientAddr(self.peer);
        let router = self.router;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(authenticated.clone());
            request.extensions_mut().insert(peer);
            router.clone().call(request)
        });
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let idle = self.settings.idle_timeout;
        let mut draining = false;
        loop {
            let last = started + Duration::from_millis(moved.load(Ordering::Relaxed));
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        if error.is_timeout() {
                            metrics.http_closed(HttpClose::HeaderTimeout);
                        } else {
                            tracing::debug!(%error, "An HTTP connection ended with an error.");
                        }
                    }
                    break;
                }
                _ = self.close.notified() => break,
                _ = tokio::time::sleep_until(last + idle) => {
                    // Something may have moved since `last` was read.
                    let now_last = started + Duration::from_millis(moved.load(Ordering::Relaxed));
                    if now_last + idle <= Instant::now() {
                        metrics.http_closed(HttpClose::IdleTimeout);
                        break;
                    }
                }
                _ = shutdown.recv(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A socket that notes when a byte last moved either way, as milliseconds
/// after `started`, for the idle deadline.
struct Watched {
    stream: TcpStream,
    started: Instant,
    moved: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let at = self.started.elapsed().as_millis();
        self.moved
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_agents_their_descriptors() {
        // Plenty of descriptors: the configured cap.
        assert_eq!(cap_within(1024, 1 << 20, 10_000), 1024);
        // 20,000 descriptors, 10,000 for agents, 64 kept: the rest.
        assert_eq!(cap_within(100_000, 20_000, 10_000), 20_000 - 10_000 - 64);
        // Starved: a handful, never more than configured.
        assert_eq!(cap_within(1024, 1024, 10_000), 8);
        assert_eq!(cap_within(4, 1024, 10_000), 4);
    }

    #[test]
    fn a_full_registry_closes_its_oldest_unauthenticated_connection() {
        let metrics = Metrics::default();
        let registry = Registry::default();
        let mut opens = Vec::new();
        for id in 0..3 {
            let open = Open {
                authenticated: Authenticated::default(),
                close: Arc::new(Notify::new()),
            };
            opens.push((open.authenticated.clone(), Arc::clone(&open.close)));
            registry.insert(id, open);
        }
        // The oldest has a token, so the next oldest goes.
        opens[0].0.set();
        assert!(registry.make_room(3, &metrics));
        let open = registry.open.lock().unwrap();
        assert_eq!(open.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        drop(open);
        assert_eq!(metrics.http_closed_count(HttpClose::Evicted), 1);
        // Room without closing anything below the cap.
        assert!(registry.make_room(3, &metrics));
        // Every one authenticated: the newcomer is the one refused.
        opens[2].0.set();
        assert!(!registry.make_room(2, &metrics));
    }
}
