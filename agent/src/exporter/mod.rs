//! `[output.prometheus]`: the last tick's counters on `GET /metrics`, with
//! node_exporter's names so the fleet's dashboards and rules read hopwatch
//! unchanged. A scrape never reads `/proc`, netlink or NX-API: the loop
//! publishes what each tick saw as an `Arc` swapped in under a lock held for
//! the swap alone, and the listener renders it on a thread of its own, so a
//! scrape costs the tick nothing but that swap. The server is a few strict
//! lines over `httparse` and tokio rather than hyper: the agent's binary is
//! a budget, and `/metrics` needs one route.

mod http;
mod published;
mod render;
mod server;

pub use published::{Histogram, OutputHealth, Published, Series, TickView};
pub use render::{Own, render};

use crate::link::LinkState;
use crate::output::collector::TokenSource;
use crate::source::CounterRow;
use hopwatch_wire::Secret;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The port node_exporter's neighbours leave free for hopwatch by custom.
pub const DEFAULT_PORT: u16 = 9101;
/// Scrapes served at once; more wait for a slot or get 503.
pub const MAX_SCRAPES: usize = 4;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read its answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `[output.prometheus]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSettings {
    /// Where `/metrics` is served, in the agent's network namespace (its
    /// VRF, when the service runs in one).
    pub listen: SocketAddr,
    /// The bearer token a scrape must present, when set; read at start and
    /// at every reload, never logged.
    pub token: Option<TokenSource>,
}

/// What the loop and the listener share.
#[derive(Debug, Default)]
struct Shared {
    /// The latest tick's figures. The lock is held to swap or clone the
    /// `Arc`, never to render, so neither side waits on the other's work.
    latest: Mutex<Arc<Published>>,
    token: Mutex<Option<Secret>>,
    /// Scrapes answered with the metrics.
    scrapes: AtomicU64,
    /// Connections turned away because every slot was taken.
    refused: AtomicU64,
    /// The latest answer's length, so the next is rendered into a buffer
    /// of its size rather than grown (and copied) a few times.
    last_len: AtomicUsize,
}

impl Shared {
    fn latest(&self) -> Arc<Published> {
        Arc::clone(&self.latest.lock().expect("exporter snapshot poisoned"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error(
        "cannot listen on {listen} for [output.prometheus]: {source}; choose a free port, or an address of this host (in its management VRF, the namespace the agent runs in)"
    )]
    Bind {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("[output.prometheus]: {0}")]
    Token(String),
    #[error("cannot start the exporter's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The running listener and the loop's end of it. Dropping it stops the
/// listener and waits for its thread, so a reload can bind the port again.
pub struct Exporter {
    settings: PrometheusSettings,
    shared: Arc<Shared>,
    publisher: published::Publisher,
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds the listener and starts its thread. A scrape before the first
    /// tick gets the exporter's own figures and no interfaces.
    pub fn start(settings: &PrometheusSettings) -> Result<Exporter, ExporterError> {
        let token = read_token(settings)?;
        let listener =
            std::net::TcpListener::bind(settings.listen).map_err(|source| ExporterError::Bind {
                listen: settings.listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ExporterError::Bind {
                listen: settings.listen,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(ExporterError::Thread)?;
        let shared = Arc::new(Shared {
            token: Mutex::new(token),
            ..Shared::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("hopwatch-exporter".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || server::run(listener, shared, stopped)
            })
            .map_err(ExporterError::Thread)?;
        Ok(Exporter {
            settings: settings.clone(),
            shared,
            publisher: published::Publisher::default(),
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn settings(&self) -> &PrometheusSettings {
        &self.settings
    }

    /// The address bound, with the port the OS chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What a scrape would render now.
    pub fn latest(&self) -> Arc<Published> {
        self.shared.latest()
    }

    /// Takes a new token file's contents (a reload with the same listener).
    pub fn reload_token(&mut self, settings: &PrometheusSettings) -> Result<(), ExporterError> {
        let token = read_token(settings)?;
        *self.shared.token.lock().expect("exporter token poisoned") = token;
        self.settings = settings.clone();
        Ok(())
    }

    /// Publishes one tick's figures for the scrapes to come.
    pub fn publish<'r>(
        &mut self,
        view: TickView<'_>,
        rows: impl IntoIterator<Item = (&'r CounterRow, Option<&'r LinkState>)>,
    ) {
        let next = self.publisher.build(view, rows);
        let old = std::mem::replace(
            &mut *self
                .shared
                .latest
                .lock()
                .expect("exporter snapshot poisoned"),
            next,
        );
        self.publisher.recycle(old);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_token(settings: &PrometheusSettings) -> Result<Option<Secret>, ExporterError> {
    settings
        .token
        .as_ref()
        .map(|t| t.read().map_err(ExporterError::Token))
        .transpose()
}
