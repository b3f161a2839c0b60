//! The links a kept backend remembers between traces, and how it learns
//! they changed: a trace then asks only for the egress counters, the one
//! fact that changes with every packet.

use super::super::netlink;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::libc;
use std::io;

/// Links (name, flags, MTU, operational state) and speeds remembered
/// between queries, forgotten whenever the kernel announces any link
/// change: a socket subscribed to link notifications is drained before each
/// query, so nothing remembered is older than the last announcement. The
/// kernel announces every change of what is kept (a rename, an MTU, admin
/// state, carrier and operational state). A carrier change is announced
/// when linkwatch processes it, up to a second after the driver reports it,
/// which is also when the FIB marks the link's next hops: a remembered link
/// agrees with the routes the trace reads. A speed changes only through a
/// renegotiation, which takes the carrier down and so is announced. Counters
/// change with every packet and are never kept: a trace asks for the egress
/// counters alone, a fraction of the whole link's answer.
pub(super) struct LinkCache {
    watch: Socket,
    /// Without counters.
    pub(super) links: Vec<netlink::LinkFacts>,
    pub(super) speeds: Vec<(u32, Option<u64>)>,
}

impl LinkCache {
    /// `RTMGRP_LINK`: the multicast group of link changes.
    const RTMGRP_LINK: u32 = 1;

    pub(super) fn open() -> io::Result<LinkCache> {
        let mut watch = Socket::new(NETLINK_ROUTE)?;
        watch.bind(&SocketAddr::new(0, Self::RTMGRP_LINK))?;
        Ok(LinkCache {
            watch,
            links: Vec::new(),
            speeds: Vec::new(),
        })
    }

    pub(super) fn link(&self, index: u32) -> Option<&netlink::LinkFacts> {
        self.links.iter().find(|link| link.index == index)
    }

    pub(super) fn name(&self, index: u32) -> Option<String> {
        self.link(index).and_then(|link| link.name.clone())
    }

    /// Remembers a link answer, counters left out.
    pub(super) fn remember(&mut self, facts: &netlink::LinkFacts) {
        if self.link(facts.index).is_none() {
            self.links.push(netlink::LinkFacts {
                counters: None,
                ..facts.clone()
            });
        }
    }

    /// Reads every announcement waiting; any at all, or an overrun that
    /// lost some, forgets everything.
    pub(super) fn refresh(&mut self) {
        let mut changed = false;
        // Announcements are only counted, so a short read of each will do.
        let mut buffer = [0u8; 512];
        loop {
            match self.watch.recv(&mut &mut buffer[..], libc::MSG_DONTWAIT) {
                Ok(_) => changed = true,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // ENOBUFS: announcements were lost, so assume change.
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            self.links.clear();
            self.speeds.clear();
        }
    }
}
