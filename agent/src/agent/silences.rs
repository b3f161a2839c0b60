//! The agent's silences on its loop: `hopwatch silence` requests, the
//! collector's sets, and the ends of silences, each saved to the state dir
//! and each releasing the alerts a silence no longer covers. The decisions
//! are [`crate::silence`]'s; this is where they meet the clock, the file
//! and the outputs.

use super::Agent;
use crate::event::Body;
use crate::silence::command::{self, Input, Reply, Request};
use crate::silence::gate::Gate;
use crate::silence::{Registry, store};
use hopwatch_wire::silence::Silence;
use std::path::Path;
use std::time::{Instant, SystemTime};

/// The silences the agent holds and the alerts they keep quiet.
#[derive(Debug, Default)]
pub(super) struct Silences {
    pub(super) registry: Registry,
    pub(super) gate: Gate,
}

impl Silences {
    /// What the state dir holds, with whatever could not be read logged;
    /// a file that cannot be read at all costs its silences, not the start.
    pub(super) fn load(state_dir: &Path) -> Silences {
        let registry = match store::load(state_dir, SystemTime::now()) {
            Ok(loaded) => {
                if let Some((aside, reason)) = &loaded.set_aside {
                    tracing::error!(
                        path = %aside.display(),
                        %reason,
                        "The silences file was unreadable and is set aside; the agent starts without its silences (the collector sends its own again when it connects)."
                    );
                }
                for error in &loaded.skipped {
                    tracing::warn!(%error, "A silence in the silences file was unreadable and is left out.");
                }
                if !loaded.registry.is_empty() || loaded.expired > 0 {
                    tracing::info!(
                        local = loaded.registry.local().len(),
                        collector = loaded.registry.collector().len(),
                        expired = loaded.expired,
                        "Silences loaded from the state dir."
                    );
                }
                loaded.registry
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    path = %store::path(state_dir).display(),
                    "Cannot read the silences file; the agent starts without its silences."
                );
                Registry::default()
            }
        };
        Silences {
            registry,
            gate: Gate::default(),
        }
    }

    /// When the next silence ends, on the loop's clock.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let end = self.registry.next_end()?;
        let left = end.duration_since(SystemTime::now()).unwrap_or_default();
        Some(Instant::now() + left)
    }
}

impl Agent {
    pub(super) fn silence_input(&mut self, input: Input) {
        match input {
            Input::Request(request, reply) => {
                let _ = reply.send(self.silence_request(request));
            }
            Input::Collector(set) => self.collector_silences(set),
        }
    }

    /// Answers one `hopwatch silence` request.
    fn silence_request(&mut self, request: Request) -> Reply {
        let now = SystemTime::now();
        // An answer never shows a silence that is over.
        self.expire_silences_at(now);
        match request {
            Request::Add(add) => {
                if let Err(error) = command::room(&self.silences.registry) {
                    return Reply::Error(error);
                }
                let id = command::new_id(&self.silences.registry);
                let active = match command::build(&add, id, now, self.config.silences.max_duration)
                {
                    Ok(active) => active,
                    Err(error) => return Reply::Error(error),
                };
                let silence = active.silence.clone();
                self.silences.registry.add_local(active);
                if let Err(error) = self.save_silences() {
                    self.silences.registry.remove_local(&silence.id);
                    return Reply::Error(format!(
                        "the silence was not added: it cannot be kept in {}: {error}",
                        store::path(&self.config.agent.state_dir).display()
                    ));
                }
                tracing::info!(
                    id = %silence.id,
                    interface = %silence.interface,
                    rule = silence.rule.as_deref().unwrap_or("*"),
                    ends_at = %silence.ends_at,
                    author = %silence.author,
                    reason = %silence.reason,
                    "Silence added."
                );
                Reply::Added(silence)
            }
            Request::List {} => Reply::Listed(
                self.silences
                    .registry
                    .all()
                    .map(|a| a.silence.clone())
                    .collect(),
            ),
            Request::Remove { id } => {
                if let Some(why) = command::refuse_remove(&self.silences.registry, &id) {
                    return Reply::Error(why);
                }
                let Some(removed) = self.silences.registry.remove_local(&id) else {
                    return Reply::Error(format!("no silence {id} on this agent"));
                };
                if let Err(error) = self.save_silences() {
                    let path = store::path(&self.config.agent.state_dir);
                    self.silences.registry.add_local(removed);
                    return Reply::Error(format!(
                        "the silence was not removed: {} cannot be written: {error}",
                        path.display()
                    ));
                }
                tracing::info!(%id, "Silence removed.");
                self.release_silenced(now);
                Reply::Removed(removed.silence)
            }
        }
    }

    /// Takes the collector's set in place of the one it sent before.
    fn collector_silences(&mut self, set: Vec<Silence>) {
        let now = SystemTime::now();
        let (changed, errors) = self.silences.registry.replace_collector(set, now);
        for error in errors {
            tracing::warn!(%error, "A silence from the collector is unreadable and is left out.");
        }
        if !changed {
            return;
        }
        tracing::info!(
            count = self.silences.registry.collector().len(),
            "The collector's silences changed."
        );
        if let Err(error) = self.save_silences() {
            tracing::warn!(%error, "Cannot keep the collector's silences in the state dir; they hold until the agent restarts.");
        }
        self.release_silenced(now);
    }

    /// The loop's timer for the next end went off.
    pub(super) fn expire_silences(&mut self) {
        self.expire_silences_at(SystemTime::now());
    }

    fn expire_silences_at(&mut self, now: SystemTime) {
        let ended = self.silences.registry.expire(now);
        if ended.is_empty() {
            return;
        }
        for active in &ended {
            tracing::info!(id = %active.id(), ends_at = %active.silence.ends_at, "Silence ended.");
        }
        if let Err(error) = self.save_silences() {
            tracing::warn!(%error, "Cannot update the silences file; the ended silences are dropped when it is next read.");
        }
        self.release_silenced(now);
    }

    /// Sends again, unsilenced, every alert still firing that no silence
    /// covers any more.
    fn release_silenced(&mut self, now: SystemTime) {
        if self.silences.gate.held() == 0 {
            return;
        }
        // Sorted by rule, then interface.
        let firing = self.engine.firing();
        let still = |rule: &str, interface: &str| {
            firing
                .binary_search_by(|f| {
                    (f.rule.as_str(), f.interface.as_str()).cmp(&(rule, interface))
                })
                .is_ok()
        };
        let released = self
            .silences
            .gate
            .release(&self.silences.registry, now, still);
        for alert in released {
            tracing::info!(rule = %alert.rule, interface = %alert.interface, "No silence covers this firing alert any more; it goes out again.");
            self.emit_at(now, Body::Alert(alert));
        }
    }

    /// A reload named another state dir: the silences go there too, so
    /// the next start finds them.
    pub(super) fn silences_moved(&self) {
        if let Err(error) = self.save_silences() {
            tracing::warn!(%error, "Cannot write the silences to the new state dir; they hold until the agent restarts.");
        }
    }

    fn save_silences(&self) -> std::io::Result<()> {
        store::save(&self.config.agent.state_dir, &self.silences.registry)
    }
}
