//! Interface names by index: asked in the batch of the lookup that needs
//! them, or taken from the links the cache remembers.

use super::super::netlink;
use super::super::{Route, TraceError};
use super::Namespace;
use nix::libc;
use std::io;

impl Namespace {
    /// The index of the interface `name`.
    pub(super) fn index_of(&mut self, name: &str, vrf: &str) -> Result<u32, TraceError> {
        let sequence = self.conn.queue_link_by_name(name);
        self.send("an interface lookup")?;
        let answer = self
            .conn
            .answer_raw(sequence)
            .map_err(|e| TraceError::netlink("reading an interface lookup", e))?;
        match answer {
            Ok((netlink::RTM_NEWLINK, payload)) if netlink::link_facts(payload).is_some() => {
                Ok(netlink::link_facts(payload).map_or(0, |facts| facts.index))
            }
            Err(libc::ENODEV) | Ok(_) => Err(TraceError::UnknownInterface {
                name: name.to_string(),
                vrf: vrf.to_string(),
            }),
            Err(errno) => Err(TraceError::netlink(
                format!("looking up interface {name}"),
                io::Error::from_raw_os_error(errno),
            )),
        }
    }

    /// Queues lookups of the interfaces `indexes` for [`Namespace::read_names`].
    /// Names the cache holds are not asked again.
    pub(super) fn queue_names(&mut self, indexes: &[u32]) -> PendingNames {
        let mut pending = PendingNames::default();
        for &index in indexes {
            if index == 0
                || pending.known.get(index).is_some()
                || pending.asked.iter().any(|&(i, _)| i == index)
            {
                continue;
            }
            match self.cache.as_ref().and_then(|c| c.name(index)) {
                Some(name) => pending.known.0.push((index, name)),
                None => {
                    let sequence = self.conn.queue_link(index, false);
                    pending.asked.push((index, sequence));
                }
            }
        }
        pending
    }

    /// The names the lookups queued by [`Namespace::queue_names`] found,
    /// with those the cache held.
    pub(super) fn read_names(&mut self, pending: PendingNames) -> Result<Names, TraceError> {
        let PendingNames {
            known: mut names,
            asked,
        } = pending;
        for (index, sequence) in asked {
            let answer = self
                .conn
                .answer_raw(sequence)
                .map_err(|e| TraceError::netlink("reading an interface lookup", e))?;
            if let Ok((netlink::RTM_NEWLINK, payload)) = answer
                && let Some(facts) = netlink::link_facts(payload)
            {
                if let Some(cache) = &mut self.cache {
                    cache.remember(&facts);
                }
                if let Some(name) = facts.name {
                    names.0.push((index, name));
                }
            }
        }
        Ok(names)
    }

    /// The names of interfaces by index, asked in one batch.
    pub(super) fn names(&mut self, indexes: &[u32]) -> Result<Names, TraceError> {
        let pending = self.queue_names(indexes);
        self.send("interface lookups")?;
        self.read_names(pending)
    }

    /// Fills in the interface names of a route's members.
    pub(super) fn name_members(&mut self, route: &mut Route) -> Result<(), TraceError> {
        let indexes: Vec<u32> = route.members.iter().map(|m| m.ifindex).collect();
        self.names(&indexes)?.apply(route);
        Ok(())
    }
}

/// Names already known and lookups queued for the rest.
#[derive(Debug, Default)]
pub(super) struct PendingNames {
    known: Names,
    asked: Vec<(u32, u32)>,
}

/// Interface names by index; a trace names a handful, so a list serves.
#[derive(Debug, Default)]
pub(super) struct Names(pub(super) Vec<(u32, String)>);

impl Names {
    pub(super) fn get(&self, index: u32) -> Option<String> {
        self.0
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| n.clone())
    }

    /// Names the members of `route`.
    pub(super) fn apply(&self, route: &mut Route) {
        for member in &mut route.members {
            member.interface = self.get(member.ifindex);
        }
    }
}
