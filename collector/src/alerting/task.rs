//! An Alertmanager task: takes alert events from its queue into the
//! [`State`], holds the state against the store at start and at every
//! re-send, and POSTs `/api/v2/alerts` to its Alertmanager. A cluster wants
//! each alert from each client at every member, so each member has a task
//! and a queue of its own and one that hangs holds up no other. A receiver
//! that fails keeps its changes and is tried again after a growing delay.

use super::alertmanager::{Batch, State};
use super::http::{Client, Endpoint};
use super::open::open_alerts;
use crate::store::Reads;
use hopwatch_wire::backoff::{Backoff, seed};
use hopwatch_wire::event::Event;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const BACKOFF_MIN: Duration = Duration::from_millis(200);

/// Alertmanager forwarding's counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertmanagerStats {
    /// Alerts (firing, re-sent and resolved) an Alertmanager took.
    pub sent: AtomicU64,
    /// POSTs that failed (each tried again).
    pub failures: AtomicU64,
    /// Alert events that found the queue full.
    pub dropped: Arc<AtomicU64>,
    /// Alerts firing now as Alertmanager is told, silenced ones left out
    /// (the last member's view to change it).
    pub firing: AtomicU64,
}

/// One Alertmanager and when it may be tried again.
struct Receiver {
    url: Endpoint,
    path: String,
    backoff: Backoff,
    /// Set while it is failing.
    retry_at: Option<Instant>,
}

/// The task's settings and shared parts.
pub struct Task {
    pub urls: Vec<Endpoint>,
    pub client: Client,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub resend_every: Duration,
    pub backoff_max: Duration,
    pub web_url: Option<String>,
    pub store: Arc<Reads>,
    pub stats: Arc<AlertmanagerStats>,
}

impl Task {
    /// Runs until the queue is closed and empty, then makes one last try
    /// at whatever each receiver still has to take.
    pub async fn run(self, mut queue: mpsc::Receiver<Event>) {
        let mut state = State::new(self.urls.len(), self.web_url.clone());
        let mut receivers: Vec<Receiver> = self
            .urls
            .iter()
            .map(|url| Receiver {
                url: url.clone(),
                path: url.join("/api/v2/alerts"),
                backoff: Backoff::new(BACKOFF_MIN, self.backoff_max, seed(&url.shown())),
                retry_at: None,
            })
            .collect();
        // The first tick is at once: the state is taken from the store and
        // every firing alert sent as soon as the collector starts.
        let mut resend = tokio::time::interval(self.resend_every);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        while open {
            let retry_at = receivers.iter().filter_map(|r| r.retry_at).min();
            let mut full = false;
            tokio::select! {
                event = queue.recv() => match event {
                    Some(event) => {
                        state.apply(&event);
                    }
                    None => open = false,
                },
                _ = resend.tick() => {
                    self.reconcile(&mut state, &mut queue).await;
                    full = true;
                }
                _ = sleep_until(retry_at) => {}
            }
            // Whatever else is queued joins this turn's sends.
            while let Ok(event) = queue.try_recv() {
                state.apply(&event);
            }
            self.stats
                .firing
                .store(state.firing() as u64, Ordering::Relaxed);
            self.send(&mut state, &mut receivers, full, !open).await;
        }
    }

    /// Holds the state against the store's open alerts.
    async fn reconcile(&self, state: &mut State, queue: &mut mpsc::Receiver<Event>) {
        // What was stored before the read is applied first, so the read
        // finds the state at most behind the store, never ahead of it.
        while let Ok(event) = queue.try_recv() {
            state.apply(&event);
        }
        let known = state.known();
        let store = Arc::clone(&self.store);
        let read =
            tokio::task::spawn_blocking(move || store.with(|db| open_alerts(db, &known))).await;
        match read {
            Ok(Ok(open)) => {
                let now = crate::store::rfc3339(crate::store::millis(std::time::SystemTime::now()));
                state.reconcile(open, &now);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "Reading the store's open alerts for Alertmanager failed; re-sending what is held.");
            }
            Err(error) => {
                tracing::warn!(%error, "Reading the store's open alerts for Alertmanager failed; re-sending what is held.");
            }
        }
    }

    /// One turn: every receiver that is due gets its changes, and with
    /// `full` every firing alert. `last` ignores the receivers' backoff:
    /// the collector is stopping.
    async fn send(&self, state: &mut State, receivers: &mut [Receiver], full: bool, last: bool) {
        let now = Instant::now();
        let mut turn: Vec<(usize, Batch, Bytes)> = Vec::new();
        for (i, r) in receivers.iter_mut().enumerate() {
            let retrying = r.retry_at.is_some();
            let due = last || r.retry_at.is_none_or(|at| at <= now);
            if !due || !(full || retrying || state.has_pending(i)) {
                continue;
            }
            // A retry sends every firing alert: what failed may since have
            // been folded into them.
            let batch = state.take(i, full || retrying);
            if batch.alerts.is_empty() {
                // Nothing is left to tell it (a silence took the change
                // back): no retry is due, and the loop must not wake for one.
                r.retry_at = None;
                continue;
            }
            let body =
                Bytes::from(serde_json::to_vec(&batch.alerts).expect("alerts always serialize"));
            turn.push((i, batch, body));
        }
        if turn.is_empty() {
            return;
        }
        let results = futures_util::future::join_all(turn.iter().map(|(i, _, body)| {
            let r = &receivers[*i];
            self.client
                .post(&r.url, &r.path, &self.headers, body.clone())
        }))
        .await;
        for ((i, batch, _), result) in turn.into_iter().zip(results) {
            let r = &mut receivers[i];
            match result {
                Ok(()) => {
                    self.stats
                        .sent
                        .fetch_add(batch.alerts.len() as u64, Ordering::Relaxed);
                    if r.retry_at.take().is_some() {
                        tracing::info!(alertmanager = %r.url.shown(), "Alertmanager takes alerts again.");
                    }
                    r.backoff.succeeded();
                }
                Err(error) if !error.retryable() => {
                    // Alertmanager refused the request itself (a 4xx): the
                    // same changes would be refused again, so they are let
                    // go; what fires goes out again with the next re-send.
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(alertmanager = %r.url.shown(), %error, alerts = batch.alerts.len(), "Alertmanager refused alerts; they are not sent again until the next re-send.");
                }
                Err(error) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let delay = r.backoff.failed();
                    // One line when it starts failing, not one per retry.
                    if r.retry_at.is_none() {
                        tracing::warn!(alertmanager = %r.url.shown(), %error, retry_in = ?delay, "Sending alerts to Alertmanager failed; trying again.");
                    }
                    r.retry_at = Some(Instant::now() + delay);
                    state.failed(i, batch);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::{Alert, AlertState, Body, Severity};

    fn firing(silenced: bool) -> Event {
        Event {
            v: 1,
            agent: "leaf1".into(),
            boot: "b1".into(),
            seq: 1,
            ts: "2026-01-01T00:00:00.000Z".into(),
            body: Body::Alert(Alert {
                state: AlertState::Firing,
                rule: "r".into(),
                severity: Severity::Warning,
                interface: "swp1".into(),
                expr: "x > 1".into(),
                value: Some(2.0),
                threshold: 1.0,
                message: "m".into(),
                labels: Default::default(),
                silenced,
                silence: silenced.then(|| "c-0011223344556677".into()),
            }),
        }
    }

    /// A task sending to one Alertmanager at `127.0.0.1:port`, with no
    /// store behind it.
    fn one_receiver(port: u16) -> (Task, Vec<Receiver>) {
        let url = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let task = Task {
            urls: vec![url.clone()],
            client: Client::plain(Duration::from_secs(5)),
            headers: vec![],
            resend_every: Duration::from_secs(60),
            backoff_max: Duration::from_secs(60),
            web_url: None,
            store: Arc::new(Reads::Sqlite(crate::store::ReadPool::new(
                std::path::Path::new("/nonexistent"),
            ))),
            stats: Arc::new(AlertmanagerStats::default()),
        };
        let receivers = vec![Receiver {
            path: url.join("/api/v2/alerts"),
            url,
            backoff: Backoff::new(BACKOFF_MIN, Duration::from_secs(60), 1),
            retry_at: None,
        }];
        (task, receivers)
    }

    #[tokio::test]
    async fn a_failed_receiver_keeps_its_changes_and_stops_retrying_when_none_are_left() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (task, mut receivers) = one_receiver(port);
        let mut state = State::new(1, None);
        state.apply(&firing(false));
        task.send(&mut state, &mut receivers, false, false).await;
        assert_eq!(task.stats.failures.load(Ordering::Relaxed), 1);
        assert!(receivers[0].retry_at.is_some());
        assert!(state.has_pending(0), "the change waits for the retry");
        // Not due yet: nothing is tried.
        task.send(&mut state, &mut receivers, false, false).await;
        assert_eq!(task.stats.failures.load(Ordering::Relaxed), 1);
        // A silence takes the change back; once the retry is due there is
        // nothing to send, and no retry stays due (the loop would spin).
        state.apply(&firing(true));
        receivers[0].retry_at = Some(Instant::now() - Duration::from_millis(1));
        task.send(&mut state, &mut receivers, false, false).await;
        assert_eq!(receivers[0].retry_at, None);
        assert_eq!(task.stats.failures.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_batch_alertmanager_refuses_is_let_go_not_retried() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The whole request: headers, then the body its length gives.
            while !request.ends_with(b"]") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n\r\nbad startsAt\n")
                .await
                .unwrap();
        });
        let (task, mut receivers) = one_receiver(port);
        let mut state = State::new(1, None);
        state.apply(&firing(false));
        task.send(&mut state, &mut receivers, false, false).await;
        assert_eq!(task.stats.failures.load(Ordering::Relaxed), 1);
        assert_eq!(task.stats.sent.load(Ordering::Relaxed), 0);
        // Not kept for a retry that would be refused the same way; the
        // firing alert itself goes again with the next re-send.
        assert_eq!(receivers[0].retry_at, None);
        assert!(!state.has_pending(0));
        assert_eq!(state.firing(), 1);
    }
}
