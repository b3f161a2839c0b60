//! A collector's membership of a shared store, kept by two tasks: one
//! refreshes its `collectors` row, records which agents it holds as their
//! connections come and go, and reads the addresses other collectors'
//! agents reported (so a trace here maps a next hop to any agent of the
//! fleet); the other listens on the collector's channel for relayed
//! questions and answers, on a connection of its own
//! ([`crate::store::postgres::listen`]).

use super::{Note, Relay, SWEEP_AFTER, now_ms};
use crate::fabric::Fabric;
use crate::metrics::{Metrics, SharedTask};
use crate::store::StoreError;
use crate::store::postgres::collectors::Identity;
use crate::store::postgres::collectors::{self, Hold, Listens, REFRESH};
use crate::store::postgres::listen::connect;
use crate::store::postgres::{Pg, PostgresSettings};
use hopwatch_wire::event::VrfAddresses;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// How soon an agent not yet in the store is marked held again.
const RETRY: Duration = Duration::from_millis(200);

/// How long the listener waits before connecting again after losing its
/// connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// Joins the collectors sharing the store `settings` names, under a fresh
/// identity, through the collector's own pool `pg`: a pool of its own
/// would run the migrations again and keep more connections open on a
/// database every collector of the fleet shares, while the relay and the
/// membership rounds hold a connection only for one short query each.
pub fn join(
    pg: Pg,
    settings: &PostgresSettings,
    fabric: Arc<Fabric>,
    listens: Listens,
    metrics: Arc<Metrics>,
    stop: &broadcast::Sender<()>,
) -> JoinHandle<()> {
    let relay = Arc::new(Relay::new(pg, Identity::generate(), metrics));
    start(relay, settings.clone(), fabric, listens, stop)
}

/// Joins the store's collectors as `relay`'s identity: traces here reach
/// agents held by the others, and theirs reach agents held here, until
/// `stop` fires. The handle ends once the row is removed again.
pub fn start(
    relay: Arc<Relay>,
    settings: PostgresSettings,
    fabric: Arc<Fabric>,
    listens: Listens,
    stop: &broadcast::Sender<()>,
) -> JoinHandle<()> {
    fabric.switchboard.relay_through(Arc::clone(&relay));
    let listener = tokio::spawn(listen(
        Arc::clone(&relay),
        settings,
        Arc::clone(&fabric),
        stop.subscribe(),
    ));
    let mut stop = stop.subscribe();
    tokio::spawn(async move {
        let mut members = Members {
            relay: &relay,
            fabric: &fabric,
            listens,
            held: HashMap::new(),
            digests: HashMap::new(),
            registered: false,
            failing: false,
        };
        let mut ticks = tokio::time::interval(REFRESH);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // An agent whose row the writer has yet to create is marked
            // soon after, not a whole refresh later.
            let unsettled = members.unsettled();
            tokio::select! {
                _ = ticks.tick() => members.tick(true).await,
                () = fabric.switchboard.changed() => members.tick(false).await,
                () = tokio::time::sleep(RETRY), if unsettled => members.tick(false).await,
                _ = stop.recv() => break,
            }
        }
        let _ = listener.await;
        members.leave().await;
    })
}

/// What the membership task keeps between rounds.
struct Members<'a> {
    relay: &'a Relay,
    fabric: &'a Fabric,
    listens: Listens,
    /// The connections this collector has marked held (or found held by a
    /// newer session elsewhere), by agent, with their start.
    held: HashMap<String, (i64, Hold)>,
    /// The digest of each agent's stored addresses last read.
    digests: HashMap<String, String>,
    registered: bool,
    /// The last round failed: the next failure is not logged again.
    failing: bool,
}

impl Members<'_> {
    /// Whether a connection here is not yet marked in the store.
    fn unsettled(&self) -> bool {
        self.held.values().any(|(_, hold)| *hold == Hold::Unknown)
    }

    /// One round; `full` also refreshes the row, the fleet's addresses and
    /// sweeps old relay rows, which a connection coming or going does not
    /// need.
    async fn tick(&mut self, full: bool) {
        match self.round(full).await {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(
                    "Recording this collector's agents in the shared store works again."
                );
            }
            Ok(()) => {}
            // Once per outage: the store's own errors are logged and
            // counted where ingest meets them.
            Err(error) if !self.failing => {
                self.relay.metrics.shared_failed(SharedTask::Members);
                self.failing = true;
                tracing::warn!(%error, "Recording this collector's agents in the shared store failed; retrying every round.");
            }
            Err(error) => {
                self.relay.metrics.shared_failed(SharedTask::Members);
                tracing::debug!(%error, "Recording this collector's agents in the shared store failed again.")
            }
        }
    }

    async fn round(&mut self, full: bool) -> Result<(), StoreError> {
        let client = self.relay.pg.client().await?;
        let me = &self.relay.me;
        let now = now_ms();
        if !self.registered || (full && !collectors::refresh(&client, &me.id, now).await?) {
            collectors::register(&client, me, &self.listens, now).await?;
            if !self.registered {
                tracing::info!(id = me.id, "Joined the collectors sharing the store.");
            }
            self.registered = true;
        }
        let lines: HashMap<String, i64> = self.fabric.switchboard.lines().into_iter().collect();
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|agent| !lines.contains_key(*agent))
            .cloned()
            .collect();
        for agent in gone {
            collectors::release(&client, &me.id, &agent).await?;
            self.held.remove(&agent);
        }
        for (agent, since) in &lines {
            // Held elsewhere is asked again each refresh: that collector
            // may have died since.
            let settled = self.held.get(agent).is_some_and(|(at, hold)| {
                at == since && (*hold == Hold::Held || (*hold == Hold::Elsewhere && !full))
            });
            if !settled {
                let hold = collectors::hold(&client, &me.id, agent, *since, now).await?;
                self.held.insert(agent.clone(), (*since, hold));
            }
        }
        if full {
            self.addresses(&client, &lines).await?;
            client
                .execute(
                    "DELETE FROM trace_relays WHERE created_ms < $1",
                    &[&(now - SWEEP_AFTER.as_millis() as i64)],
                )
                .await?;
        }
        Ok(())
    }

    /// Reads the addresses that changed of agents not connected here, whose
    /// own reports reach this collector's owners map directly.
    async fn addresses(
        &mut self,
        client: &tokio_postgres::Client,
        lines: &HashMap<String, i64>,
    ) -> Result<(), StoreError> {
        let digests = collectors::address_digests(client).await?;
        let changed: Vec<String> = digests
            .iter()
            .filter(|(agent, digest)| {
                !lines.contains_key(agent) && self.digests.get(agent) != Some(digest)
            })
            .map(|(agent, _)| agent.clone())
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        for (agent, json) in collectors::addresses(client, &changed).await? {
            match serde_json::from_str::<Vec<VrfAddresses>>(&json) {
                Ok(addresses) => self.fabric.owners.update_stored(&agent, &addresses),
                Err(error) => tracing::warn!(
                    agent,
                    %error,
                    "The stored addresses of this agent cannot be read; traces know them again at its next hello."
                ),
            }
        }
        self.digests = digests.into_iter().collect();
        Ok(())
    }

    /// Clears what this collector holds and removes its row.
    async fn leave(&self) {
        let left = async {
            let client = self.relay.pg.client().await?;
            collectors::leave(&client, &self.relay.me.id).await
        };
        match tokio::time::timeout(Duration::from_secs(5), left).await {
            Ok(Ok(())) => tracing::info!(
                id = self.relay.me.id,
                "Left the collectors sharing the store."
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Could not remove this collector from the shared store; the others stop relaying to it once its row is stale.")
            }
            Err(_) => tracing::warn!(
                "Removing this collector from the shared store took too long; the others stop relaying to it once its row is stale."
            ),
        }
    }
}

/// Listens on this collector's channel until `stop`, connecting again
/// whenever the connection is lost. Each question is answered in a task of
/// its own, so a slow agent holds up no other.
async fn listen(
    relay: Arc<Relay>,
    settings: PostgresSettings,
    fabric: Arc<Fabric>,
    mut stop: broadcast::Receiver<()>,
) {
    let channel = relay.me.channel();
    loop {
        let (notes, mut inbox) = mpsc::unbounded_channel();
        let connected = async {
            let (client, driver) = connect(&settings, notes).await?;
            client.batch_execute(&format!("LISTEN {channel}")).await?;
            Ok::<_, StoreError>((client, driver))
        }
        .await;
        let (client, driver) = match connected {
            Ok(connected) => connected,
            Err(error) => {
                relay.metrics.shared_failed(SharedTask::Relay);
                tracing::warn!(%error, retry_in = ?RECONNECT, "Cannot listen for relayed traces; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(RECONNECT) => continue,
                    _ = stop.recv() => return,
                }
            }
        };
        // What arrived while nobody listened: questions still unanswered,
        // answers to questions still waited on.
        if let Err(error) = catch_up(&relay, &fabric).await {
            relay.metrics.shared_failed(SharedTask::Relay);
            tracing::warn!(%error, "Looking for relayed traces missed while not listening failed.");
        }
        loop {
            tokio::select! {
                note = inbox.recv() => match note.as_deref().and_then(Note::parse) {
                    Some(note) => handle(&relay, &fabric, note),
                    None if note.is_some() => tracing::debug!(payload = note, "Ignoring a notification no collector sends."),
                    None => break,
                },
                _ = stop.recv() => {
                    drop(client);
                    driver.abort();
                    return;
                }
            }
        }
        drop(client);
        if let Ok(Some(error)) = driver.await {
            relay.metrics.shared_failed(SharedTask::Relay);
            tracing::warn!(%error, "Lost the connection listening for relayed traces; reconnecting.");
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT) => {}
            _ = stop.recv() => return,
        }
    }
}

fn handle(relay: &Arc<Relay>, fabric: &Arc<Fabric>, note: Note) {
    match note {
        Note::Answer(id) => relay.answered(id),
        Note::Question(id) => {
            let relay = Arc::clone(relay);
            let fabric = Arc::clone(fabric);
            tokio::spawn(async move {
                if let Err(error) = relay.answer(id, &fabric.switchboard).await {
                    tracing::warn!(%error, id, "Answering a relayed trace question failed.");
                }
            });
        }
    }
}

async fn catch_up(relay: &Arc<Relay>, fabric: &Arc<Fabric>) -> Result<(), StoreError> {
    let client = relay.pg.client().await?;
    let questions = client
        .query(
            "SELECT id FROM trace_relays WHERE target = $1 AND answer IS NULL",
            &[&relay.me.id],
        )
        .await?;
    for row in questions {
        handle(relay, fabric, Note::Question(row.try_get(0)?));
    }
    let waiting = relay.waiting();
    if !waiting.is_empty() {
        let answered = client
            .query(
                "SELECT id FROM trace_relays WHERE id = ANY($1) AND answer IS NOT NULL",
                &[&waiting],
            )
            .await?;
        for row in answered {
            relay.answered(row.try_get(0)?);
        }
    }
    Ok(())
}
