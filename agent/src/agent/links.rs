//! How the agent follows links: where changes come from (the kernel's
//! netlink announcements, sysfs each tick, or the source's own rows), the
//! table of every link's state, and the `link` events of the interfaces
//! `[links]` watches, held briefly on NX-OS while the DME says why a port
//! went down.

use super::{Agent, DUMP_WAIT, cause};
use crate::config::LinkWatch;
use crate::event::{self, Body};
use crate::link::netlink::{self, LinkUpdate};
use crate::link::{LinkChange, LinkState, sysfs};
use crate::source::Snapshot;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

impl Agent {
    /// Chooses how link changes are noticed and starts the netlink watcher
    /// when that is the choice.
    pub(super) fn start_link_watch(&mut self, link_tx: &mpsc::UnboundedSender<LinkUpdate>) {
        let settings = &self.config.agent;
        if self.source_reports_links && settings.link_watch == LinkWatch::Auto {
            // The source's view is the hardware's; the kernel's netdevs on
            // NX-OS may lag it or name the ports differently. A watch the
            // config names wins: since 9.2(2) the netdevs' carrier is the
            // port's link, announced at once rather than at the next poll.
            self.link_mode = LinkWatch::Source;
            return;
        }
        let wanted = match settings.link_watch {
            LinkWatch::Auto if settings.sys_root == std::path::Path::new("/sys") => {
                LinkWatch::Netlink
            }
            LinkWatch::Auto => LinkWatch::Poll,
            other => other,
        };
        if wanted == LinkWatch::Netlink && self.link_mode != LinkWatch::Netlink {
            match netlink::spawn(settings.sys_root.clone(), link_tx.clone()) {
                Ok(()) => self.link_mode = LinkWatch::Netlink,
                Err(error) => {
                    tracing::warn!(%error, "Netlink link notifications unavailable; reading sysfs each tick.");
                    self.link_mode = LinkWatch::Poll;
                }
            }
        } else if wanted == LinkWatch::Poll {
            self.link_mode = LinkWatch::Poll;
        }
    }

    /// Applies updates until the initial dump is complete, so the first tick
    /// already knows every link's state.
    pub(super) async fn wait_for_dump(
        &mut self,
        link_rx: &mut mpsc::UnboundedReceiver<LinkUpdate>,
    ) {
        let deadline = tokio::time::Instant::now() + DUMP_WAIT;
        while let Ok(Some(update)) = tokio::time::timeout_at(deadline, link_rx.recv()).await {
            let done = update == LinkUpdate::DumpDone;
            self.link_update(update);
            if done {
                return;
            }
        }
        tracing::warn!(
            "The initial link dump did not complete; link states fill in as they change."
        );
    }

    /// Reads every interface's link state from sysfs (the `poll` watch).
    pub(super) fn poll_links(&mut self, snapshot: &Snapshot) {
        let sys_root = self.config.agent.sys_root.clone();
        for row in &snapshot.rows {
            match sysfs::read_link(&sys_root, &row.name) {
                Ok(state) => self.apply_link(&row.name, state),
                Err(_) => self.remove_link(&row.name),
            }
        }
        let gone: Vec<String> = self
            .links
            .iter()
            .map(|(name, _)| name)
            .filter(|name| !snapshot.rows.iter().any(|r| r.name == *name))
            .map(str::to_string)
            .collect();
        for name in gone {
            self.remove_link(&name);
        }
    }

    /// Takes every interface's link from the rows the source reported.
    pub(super) fn source_links(&mut self, snapshot: &Snapshot) {
        for row in &snapshot.rows {
            if let Some(link) = &row.link {
                self.apply_link_because(&row.name, link.state, link.reason.as_deref());
            }
        }
        if self.links.len() > snapshot.rows.len() {
            let present: std::collections::HashSet<&str> =
                snapshot.rows.iter().map(|r| r.name.as_str()).collect();
            let gone: Vec<String> = self
                .links
                .iter()
                .map(|(name, _)| name)
                .filter(|name| !present.contains(name))
                .map(str::to_string)
                .collect();
            for name in gone {
                self.remove_link(&name);
            }
        }
    }

    pub(super) fn link_update(&mut self, update: LinkUpdate) {
        if self.link_mode == LinkWatch::Source
            && matches!(
                update,
                LinkUpdate::Changed { .. } | LinkUpdate::Removed { .. }
            )
        {
            // A watcher started before a reload to a link-reporting source.
            return;
        }
        match update {
            LinkUpdate::Changed { name, state } => self.apply_link(&name, state),
            LinkUpdate::Removed { name } => self.remove_link(&name),
            LinkUpdate::DumpDone => {}
            LinkUpdate::AddressesChanged => self.addresses = None,
        }
    }

    pub(super) fn apply_link(&mut self, name: &str, state: LinkState) {
        self.apply_link_because(name, state, None);
    }

    /// Records a link's state; a change of an interface `[links]` watches
    /// becomes a `link` event, which names `reason` when the source gave one.
    pub(super) fn apply_link_because(
        &mut self,
        name: &str,
        mut state: LinkState,
        reason: Option<&str>,
    ) {
        if let Some(old) = self.links.get(name)
            && state.speed_mbps.is_none()
            && state.carrier
        {
            state.speed_mbps = old.speed_mbps;
        }
        self.links.set(name, state);
        if !self.config.links.matches(name) {
            return;
        }
        self.tracker.observe(name, &state, &mut self.changes);
        let changes: Vec<LinkChange> = self.changes.drain(..).collect();
        for change in changes {
            self.emit_link(link_event(&change, reason), true);
        }
    }

    /// A link event: out at once, or held while NX-OS is asked why the port
    /// went down (`ask`; see [`cause`]).
    pub(super) fn emit_link(&mut self, mut link: event::Link, ask: bool) {
        if self.config.agent.on_nxos() {
            // On NX-OS the kernel's `Eth1-7` is the port operators, alerts
            // and the DME call `Ethernet1/7`: one name per port.
            let name = crate::nxapi::nxos_name(&link.interface);
            if name != link.interface {
                if let Some(rest) = link.message.strip_prefix(link.interface.as_str()) {
                    link.message = format!("{name}{rest}");
                }
                link.interface = name;
            }
        }
        self.causes
            .hold(link, SystemTime::now(), Instant::now(), ask);
        self.release_links();
    }

    /// Emits the link events free to go, and sends the sampler thread the
    /// question now due.
    pub(super) fn release_links(&mut self) {
        for (at, link) in self.causes.ready(Instant::now()) {
            self.emit_at(at, Body::Link(link));
        }
        if let Some(question) = self.causes.question() {
            let answers = self.cause_tx.clone();
            let sent = self.sampler.errand(move || {
                let _ = answers.send(question.run());
            });
            if !sent {
                self.causes
                    .unsent(cause::client_for(&self.config.agent, self.link_mode));
                self.release_links();
            }
        }
    }

    /// After a reload: links `[links]` no longer watches are forgotten, and
    /// links it watches for the first time report their initial state now
    /// rather than at their next change. Links watched before and after
    /// report nothing again.
    pub(super) fn watch_links_anew(&mut self) {
        let links = &self.config.links;
        self.tracker.retain(|name| links.matches(name));
        let fresh: Vec<(String, LinkState)> = self
            .links
            .iter()
            .filter(|(name, _)| links.matches(name) && !self.tracker.knows(name))
            .map(|(name, state)| (name.to_string(), *state))
            .collect();
        for (name, state) in fresh {
            self.apply_link(&name, state);
        }
    }

    pub(super) fn remove_link(&mut self, name: &str) {
        self.links.remove(name);
        if self.tracker.forget(name) == Some(true) && self.config.links.matches(name) {
            let link = event::Link {
                interface: name.to_string(),
                state: event::LinkState::Down,
                previous: event::LinkState::Up,
                carrier_changes: 0,
                oper_state: "removed".into(),
                message: format!("{name} went down: the interface was removed"),
                admin: None,
                reason: None,
            };
            self.emit_link(link, false);
        }
    }
}

fn link_event(change: &LinkChange, reason: Option<&str>) -> event::Link {
    let state = event::LinkState::from_up(change.up);
    let previous = if change.initial {
        event::LinkState::Unknown
    } else {
        event::LinkState::from_up(!change.up)
    };
    let message = if change.initial {
        let why = match reason {
            Some(reason) if !change.up => format!(": {reason}"),
            _ if !change.up => format!(": oper state {}", change.oper.as_str()),
            _ => String::new(),
        };
        format!(
            "{} is {}{why} (first seen; carrier changes {})",
            change.name,
            state.as_str(),
            change.carrier_changes
        )
    } else if change.up {
        format!(
            "{} came up (carrier changes {})",
            change.name, change.carrier_changes
        )
    } else if let Some(reason) = reason {
        format!(
            "{} went down: {reason} (carrier changes {})",
            change.name, change.carrier_changes
        )
    } else {
        format!(
            "{} went down: oper state {} (carrier changes {})",
            change.name,
            change.oper.as_str(),
            change.carrier_changes
        )
    };
    event::Link {
        interface: change.name.clone(),
        state,
        previous,
        carrier_changes: change.carrier_changes,
        oper_state: change.oper.as_str().to_string(),
        message,
        admin: None,
        reason: None,
    }
}
