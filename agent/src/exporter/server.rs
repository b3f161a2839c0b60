//! The listener's thread: a current-thread tokio runtime of its own, so a
//! scrape's rendering runs beside the agent's loop and never on it. At most
//! [`MAX_SCRAPES`] connections are answered at once; a few more wait up to
//! a second for a slot and then get 503; beyond those a connection is
//! closed at once. Every client has [`READ_TIMEOUT`] to send its request and
//! [`WRITE_TIMEOUT`] to take the answer, so a stalled one holds a slot for
//! seconds, not forever.

use super::http::{self, Head, Route};
use super::render::{Own, render};
use super::{MAX_SCRAPES, READ_TIMEOUT, Shared, WRITE_TIMEOUT};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::timeout;

/// Connections that may wait for a slot beside the ones being answered.
const MAX_WAITING: usize = 16;
/// How long a waiting connection waits for a slot before its 503.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(1);

/// Serves until `stop` fires or its sender is dropped.
pub(super) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the Prometheus exporter's runtime; /metrics is off.");
            return;
        }
    };
    runtime.block_on(serve(listener, shared, stop));
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "Cannot watch the Prometheus listener; /metrics is off.");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, most likely: wait for some to close
                    // rather than spin.
                    tracing::warn!(%error, "Prometheus exporter cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            tokio::spawn(answer(stream, Arc::clone(&shared), slot));
        } else if let Ok(place) = Arc::clone(&waiting).try_acquire_owned() {
            let (slots, shared) = (Arc::clone(&slots), Arc::clone(&shared));
            tokio::spawn(async move {
                let _place = place;
                match timeout(WAIT_FOR_SLOT, slots.acquire_owned()).await {
                    Ok(Ok(slot)) => answer(stream, shared, slot).await,
                    _ => busy(stream, &shared).await,
                }
            });
        } else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads the request and answers it, holding a slot throughout.
async fn answer(mut stream: TcpStream, shared: Arc<Shared>, _slot: OwnedSemaphorePermit) {
    let token = shared
        .token
        .lock()
        .expect("exporter token poisoned")
        .clone();
    let mut buf = Vec::with_capacity(512);
    let route = match timeout(
        READ_TIMEOUT,
        read_head(&mut stream, &mut buf, token.as_ref()),
    )
    .await
    {
        Ok(Some(route)) => route,
        // Gone, or too slow to say what it wants: nothing to answer.
        _ => return,
    };
    let (head, body) = match route {
        Route::Metrics => {
            let published = shared.latest();
            let own = Own {
                scrapes: shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1,
                refused: shared.refused.load(Ordering::Relaxed),
            };
            let last = shared.last_len.load(Ordering::Relaxed);
            let mut body = String::with_capacity(last + last / 8 + 4096);
            render(&published, own, &mut body);
            drop(published);
            shared.last_len.store(body.len(), Ordering::Relaxed);
            (http::response_head(Route::Metrics, body.len()), body)
        }
        refused => (http::refusal(refused), String::new()),
    };
    // Head and body go as two writes rather than copied into one buffer;
    // without Nagle the body's last segment does not wait for the head's
    // acknowledgement.
    let _ = stream.set_nodelay(true);
    let _ = timeout(WRITE_TIMEOUT, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Every slot stayed taken: 503 once the request is read (closing on an
/// unread request would reset the connection before the client reads why).
async fn busy(mut stream: TcpStream, shared: &Shared) {
    shared.refused.fetch_add(1, Ordering::Relaxed);
    let mut buf = Vec::with_capacity(512);
    let _ = timeout(WAIT_FOR_SLOT, read_head(&mut stream, &mut buf, None)).await;
    let _ = timeout(WAIT_FOR_SLOT, async {
        stream
            .write_all(http::refusal(Route::Busy).as_bytes())
            .await?;
        stream.shutdown().await
    })
    .await;
}

/// Reads until the head is complete or refused; `None` when the client
/// left first.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    token: Option<&hopwatch_wire::Secret>,
) -> Option<Route> {
    let mut chunk = [0; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match http::parse(buf, token) {
            Head::Partial => {}
            Head::Done(route) => return Some(route),
        }
    }
}
