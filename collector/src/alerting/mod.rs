//! Alert forwarding to where teams already route alerts: Prometheus
//! Alertmanager (`[output.alertmanager]`) and generic webhooks
//! (`[[output.webhook]]`).
//!
//! The input is what syslog forwarding gets: each event once it is durable
//! in the store, once per `(agent, boot, seq)` (a resent event is a
//! duplicate and not published), never again after a restart. A thread of
//! its own ([`Alerting::start`]) takes the store's channel and hands each
//! event to syslog forwarding and each alert event to each Alertmanager's
//! queue and to every webhook's, never waiting: a full queue drops the
//! event and counts it (`hopwatch_collector_alertmanager_dropped_total`,
//! `hopwatch_collector_webhook_dropped_total`), so a slow receiver never
//! holds up the store or another receiver.
//!
//! Silenced alerts (`silenced: true`) are not forwarded; Alertmanager still
//! hears the end of an alert it was told fires (see [`alertmanager`]).

pub mod alertmanager;
pub mod http;
mod open;
mod settings;
mod task;
pub mod webhook;

use crate::metrics::{Family, Metrics, Number, Samples};
use crate::store::Reads;
use crate::store::writer::Published;
use hopwatch_wire::event::{Body, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

pub use http::Endpoint;
pub use settings::{
    AlertingError, AlertingSettings, AlertmanagerSettings, Credentials, DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_RETRIES, DEFAULT_QUEUE, DEFAULT_RESEND_EVERY, DEFAULT_TIMEOUT, WebhookSettings,
};
use settings::{client, credentials};
pub use task::AlertmanagerStats;
pub use webhook::WebhookStats;

/// Events waiting for the hand-over thread at most.
const INBOX: usize = 100_000;

/// How long shutdown waits for the queues to be sent.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Every counter alert forwarding keeps, for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertingStats {
    pub alertmanager: Option<Arc<AlertmanagerStats>>,
    pub webhooks: Vec<Arc<WebhookStats>>,
}

impl AlertingStats {
    /// The families `/metrics` shows.
    pub fn families(&self) -> Vec<Family> {
        let load = |c: &AtomicU64| Number::Int(c.load(Ordering::Relaxed));
        let mut families = Vec::new();
        if let Some(am) = &self.alertmanager {
            families.extend([
                Family::counter(
                    "hopwatch_collector_alertmanager_alerts_sent",
                    "Alerts (firing, re-sent, resolved) an Alertmanager took.",
                    Samples::One(load(&am.sent)),
                ),
                Family::counter(
                    "hopwatch_collector_alertmanager_send_failures",
                    "POSTs to an Alertmanager that failed (each tried again).",
                    Samples::One(load(&am.failures)),
                ),
                Family::counter(
                    "hopwatch_collector_alertmanager_dropped",
                    "Alert events not forwarded to Alertmanager because its queue was full.",
                    Samples::One(load(&am.dropped)),
                ),
                Family::gauge(
                    "hopwatch_collector_alertmanager_alerts_firing",
                    "Alerts firing as Alertmanager is told (silenced ones left out).",
                    Samples::One(load(&am.firing)),
                ),
            ]);
        }
        if !self.webhooks.is_empty() {
            let by = |f: fn(&WebhookStats) -> &AtomicU64| {
                Samples::By(
                    "webhook",
                    self.webhooks
                        .iter()
                        .map(|w| (w.name.clone(), load(f(w))))
                        .collect(),
                )
            };
            families.extend([
                Family::counter(
                    "hopwatch_collector_webhook_sent",
                    "Alert events a webhook took.",
                    by(|w| &w.sent),
                ),
                Family::counter(
                    "hopwatch_collector_webhook_failures",
                    "POSTs to a webhook that failed (each retried or given up).",
                    by(|w| &w.failures),
                ),
                Family::counter(
                    "hopwatch_collector_webhook_given_up",
                    "Alert events a webhook never took: retries exhausted, or refused with a 4xx.",
                    by(|w| &w.given_up),
                ),
                Family::counter(
                    "hopwatch_collector_webhook_dropped",
                    "Alert events not forwarded to a webhook because its queue was full.",
                    by(|w| &w.dropped),
                ),
            ]);
        }
        families
    }
}

/// One queue the hand-over thread fills.
struct Outlet {
    name: String,
    queue: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    /// Whether it takes silenced alerts (Alertmanager needs their ends).
    silenced: bool,
}

/// The hand-over thread and the tasks it feeds.
pub struct Alerting {
    events: Published,
    stats: Arc<AlertingStats>,
    thread: std::thread::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish_non_exhaustive()
    }
}

impl Alerting {
    /// Reads the credentials, starts the Alertmanager task and one task per
    /// webhook on the current runtime, and the thread that hands the
    /// store's events to them and to `syslog` (syslog forwarding's channel,
    /// whose overflow counts in [`Metrics::forward_dropped`]).
    pub fn start(
        settings: &AlertingSettings,
        store: &Arc<Reads>,
        syslog: Option<(Published, Arc<Metrics>)>,
    ) -> Result<Alerting, AlertingError> {
        let mut outlets = Vec::new();
        let mut tasks = Vec::new();
        let mut stats = AlertingStats::default();
        if let Some(am) = &settings.alertmanager {
            let headers = credentials(am.credentials.as_ref())?;
            let client = client(
                am.ca_file.as_ref(),
                &am.at,
                am.urls.iter().any(|u| u.tls),
                am.timeout,
            )?;
            let am_stats = Arc::new(AlertmanagerStats::default());
            // A task and a queue per cluster member: one that hangs or is
            // down holds up none of the others.
            for url in &am.urls {
                let (queue, inbox) = mpsc::channel(am.queue);
                let task = task::Task {
                    urls: vec![url.clone()],
                    client: client.clone(),
                    headers: headers.clone(),
                    resend_every: am.resend_every,
                    backoff_max: am.resend_every,
                    web_url: am.web_url.clone(),
                    store: Arc::clone(store),
                    stats: Arc::clone(&am_stats),
                };
                tasks.push(tokio::spawn(task.run(inbox)));
                outlets.push(Outlet {
                    name: format!("alertmanager {}", url.shown()),
                    queue,
                    dropped: Arc::clone(&am_stats.dropped),
                    silenced: true,
                });
            }
            stats.alertmanager = Some(am_stats);
        }
        for hook in &settings.webhooks {
            let bearer = hook.bearer_token_file.clone().map(Credentials::Bearer);
            let mut headers = hook.headers.clone();
            headers.extend(credentials(bearer.as_ref())?);
            let client = client(hook.ca_file.as_ref(), &hook.at, hook.url.tls, hook.timeout)?;
            let hook_stats = Arc::new(WebhookStats {
                name: hook.name.clone(),
                ..WebhookStats::default()
            });
            let (queue, inbox) = mpsc::channel(hook.queue);
            let sender = webhook::Sender {
                url: hook.url.clone(),
                client,
                headers,
                max_retries: hook.max_retries,
                backoff_max: hook.backoff_max,
                stats: Arc::clone(&hook_stats),
            };
            tasks.push(tokio::spawn(sender.run(inbox)));
            outlets.push(Outlet {
                name: format!("webhook {}", hook.name),
                queue,
                dropped: Arc::clone(&hook_stats.dropped),
                silenced: false,
            });
            stats.webhooks.push(hook_stats);
        }
        let (events, inbox) = sync_channel(INBOX);
        let thread = std::thread::Builder::new()
            .name("forward-alerts".into())
            .stack_size(256 * 1024)
            .spawn(move || hand_over(&inbox, syslog, &outlets))
            .expect("spawning the alert forwarding thread");
        Ok(Alerting {
            events,
            stats: Arc::new(stats),
            thread,
            tasks,
        })
    }

    /// The channel the store publishes durable events on.
    pub fn events(&self) -> Published {
        self.events.clone()
    }

    pub fn stats(&self) -> Arc<AlertingStats> {
        Arc::clone(&self.stats)
    }

    /// Waits for the hand-over thread, which ends once every sender from
    /// [`events`](Self::events) is gone (the store's writer has returned),
    /// then gives the receivers [`CLOSE_GRACE`] to take what is queued.
    pub async fn close(self) {
        drop(self.events);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(CLOSE_GRACE, all).await.is_err() {
            tracing::warn!(
                "Alert forwarding did not drain before exit; the alert events still queued are not forwarded."
            );
            for task in &tasks {
                task.abort();
            }
        }
    }
}

/// The hand-over thread: each durable event to syslog forwarding, each
/// alert event to every outlet, none waiting.
fn hand_over(
    inbox: &Receiver<Event>,
    syslog: Option<(Published, Arc<Metrics>)>,
    outlets: &[Outlet],
) {
    while let Ok(event) = inbox.recv() {
        let silenced = match &event.body {
            Body::Alert(alert) => Some(alert.silenced),
            _ => None,
        };
        if let Some(silenced) = silenced {
            for outlet in outlets.iter().filter(|o| o.silenced || !silenced) {
                if let Err(TrySendError::Full(dropped)) = outlet.queue.try_send(event.clone()) {
                    let n = outlet.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // The first of a run, then one line per thousand.
                    if n == 1 || n % 1000 == 0 {
                        tracing::warn!(
                            outlet = outlet.name,
                            agent = dropped.agent,
                            seq = dropped.seq,
                            dropped_total = n,
                            "Alert forwarding's queue is full; the alert event is not forwarded."
                        );
                    }
                }
            }
        }
        if let Some((syslog, metrics)) = &syslog
            && let Err(std::sync::mpsc::TrySendError::Full(_)) = syslog.try_send(event)
        {
            metrics.forward_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopwatch_wire::event::{Alert, AlertState, Heartbeat, Severity};

    fn event(seq: u64, body: Body) -> Event {
        Event {
            v: 1,
            agent: "leaf1".into(),
            boot: "b1".into(),
            seq,
            ts: "2026-01-01T00:00:00.000Z".into(),
            body,
        }
    }

    fn alert(silenced: bool) -> Body {
        Body::Alert(Alert {
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
            silence: silenced.then(|| "l-0011223344556677".into()),
        })
    }

    fn outlet(name: &str, size: usize, silenced: bool) -> (Outlet, mpsc::Receiver<Event>) {
        let (queue, inbox) = mpsc::channel(size);
        let outlet = Outlet {
            name: name.into(),
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            silenced,
        };
        (outlet, inbox)
    }

    #[test]
    fn hand_over_gives_syslog_everything_and_each_outlet_its_alerts_never_waiting() {
        let (am, mut am_inbox) = outlet("alertmanager", 8, true);
        let (hook, mut hook_inbox) = outlet("webhook", 1, false);
        let outlets = [am, hook];
        let (syslog, syslog_inbox) = sync_channel(2);
        let metrics = Arc::new(Metrics::default());
        let (events, inbox) = sync_channel(16);
        let heartbeat = Body::Heartbeat(Heartbeat {
            uptime_s: 1,
            interfaces: vec![],
            addresses: vec![],
            spool_depth: 0,
            events_dropped: 0,
            firing: 0,
        });
        events.send(event(1, heartbeat)).unwrap();
        events.send(event(2, alert(true))).unwrap();
        events.send(event(3, alert(false))).unwrap();
        events.send(event(4, alert(false))).unwrap();
        drop(events);
        // Returns once the store's side is gone and the inbox is empty.
        hand_over(&inbox, Some((syslog, Arc::clone(&metrics))), &outlets);

        let seqs = |inbox: &mut mpsc::Receiver<Event>| {
            std::iter::from_fn(|| inbox.try_recv().ok())
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        };
        // Alertmanager takes the silenced alert too (it may end one it was
        // told of); the webhook does not, and its queue of one overflowed.
        assert_eq!(seqs(&mut am_inbox), [2, 3, 4]);
        assert_eq!(seqs(&mut hook_inbox), [3]);
        assert_eq!(outlets[0].dropped.load(Ordering::Relaxed), 0);
        assert_eq!(outlets[1].dropped.load(Ordering::Relaxed), 1);
        // Syslog forwarding gets every event, its overflow counted where it
        // always was.
        let syslog: Vec<u64> = syslog_inbox.try_iter().map(|e| e.seq).collect();
        assert_eq!(syslog, [1, 2]);
        assert_eq!(metrics.forward_dropped.load(Ordering::Relaxed), 2);
    }
}
