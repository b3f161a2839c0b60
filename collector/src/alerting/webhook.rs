//! One generic webhook: each alert event the collector stored, POSTed as
//! the JSON the agent sent, in order, from a bounded queue of its own. A
//! failed POST is tried again after a growing delay, up to `max_retries`
//! times; an answer that says the request itself is wrong (a 4xx other than
//! 408 and 429) is not. Whatever is given up or overflows the queue is
//! counted and logged, never lost silently.

use super::http::{Client, Endpoint, SendError};
use hopwatch_wire::backoff::{Backoff, seed};
use hopwatch_wire::event::Event;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// The first retry's delay; each further one doubles up to `backoff_max`.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// One webhook's counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub name: String,
    /// Events the webhook took (a 2xx answer).
    pub sent: AtomicU64,
    /// POSTs that failed, each retried or given up.
    pub failures: AtomicU64,
    /// Events given up after `max_retries`, or refused by a 4xx answer.
    pub given_up: AtomicU64,
    /// Events that found the queue full.
    pub dropped: Arc<AtomicU64>,
}

/// What one webhook's task needs besides its queue.
pub struct Sender {
    pub url: Endpoint,
    pub client: Client,
    /// The configured headers and the bearer token's `Authorization`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub max_retries: u32,
    pub backoff_max: Duration,
    pub stats: Arc<WebhookStats>,
}

impl Sender {
    /// Sends each queued event until the queue is closed and empty.
    pub async fn run(self, mut queue: mpsc::Receiver<Event>) {
        let mut backoff = Backoff::new(BACKOFF_MIN, self.backoff_max, seed(&self.stats.name));
        while let Some(event) = queue.recv().await {
            let body = Bytes::from(serde_json::to_vec(&event).expect("events always serialize"));
            let mut attempt = 0;
            loop {
                match self
                    .client
                    .post(&self.url, &self.url.path, &self.headers, body.clone())
                    .await
                {
                    Ok(()) => {
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                        backoff.succeeded();
                        break;
                    }
                    Err(error) => {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                        if !error.retryable() || attempt >= self.max_retries {
                            self.give_up(&event, &error, attempt);
                            break;
                        }
                        attempt += 1;
                        let delay = backoff.failed();
                        tracing::debug!(webhook = self.stats.name, %error, attempt, retry_in = ?delay, "Webhook POST failed; trying again.");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }

    fn give_up(&self, event: &Event, error: &SendError, retries: u32) {
        self.stats.given_up.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            webhook = self.stats.name,
            agent = event.agent,
            boot = event.boot,
            seq = event.seq,
            %error,
            retries,
            "Webhook did not take an alert event; it is not sent again."
        );
    }
}
