//! Link state pushed by the kernel over rtnetlink (`RTNLGRP_LINK`), so a link
//! going down becomes an event as soon as the kernel announces it rather than
//! at the next tick. One dump at start gives the initial state; a dump again
//! after the socket overruns (`ENOBUFS`) recovers what was missed.
//!
//! The socket is blocking and lives on its own small thread; updates reach
//! the agent's loop through a channel.

use super::{LinkState, OperState, sysfs};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::path::PathBuf;
use tokio::sync::mpsc::UnboundedSender;

/// The multicast group masks: link changes, and IPv4 and IPv6 address
/// changes (heartbeats carry the addresses; they are read again only when
/// one changed).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// What the watcher tells the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkUpdate {
    /// A link appeared or changed.
    Changed { name: String, state: LinkState },
    /// A link was deleted (or renamed away from this name).
    Removed { name: String },
    /// A full dump finished: every link that exists was just reported.
    DumpDone,
    /// An interface address was added or removed.
    AddressesChanged,
}

/// Starts the watcher thread. Fails only if the netlink socket cannot be
/// opened; later errors are logged and answered with a fresh dump.
pub fn spawn(sys_root: PathBuf, updates: UnboundedSender<LinkUpdate>) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(
        0,
        RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
    ))?;
    // Room for a burst of changes (a line card going down) between reads.
    let _ = socket.set_rx_buf_sz(1 << 20);
    std::thread::Builder::new()
        .name("link-watch".into())
        .stack_size(256 * 1024)
        .spawn(move || watch(socket, sys_root, updates))?;
    Ok(())
}

fn request_dump(socket: &Socket, sequence: u32) -> io::Result<()> {
    let mut packet = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    packet.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
    packet.header.sequence_number = sequence;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
    Ok(())
}

fn watch(socket: Socket, sys_root: PathBuf, updates: UnboundedSender<LinkUpdate>) {
    let mut names: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    let mut sequence = 1;
    if let Err(error) = request_dump(&socket, sequence) {
        tracing::warn!(%error, "Netlink link dump request failed.");
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let size = match socket.recv(&mut &mut buf[..], 0) {
            Ok(size) => size,
            Err(error) if error.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                tracing::warn!("Netlink link notifications overran; dumping all links again.");
                sequence += 1;
                let _ = request_dump(&socket, sequence);
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::warn!(%error, "Netlink receive failed; link events fall back to ticks.");
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let mut offset = 0;
        while offset < size {
            let message: NetlinkMessage<RouteNetlinkMessage> =
                match NetlinkMessage::deserialize(&buf[offset..size]) {
                    Ok(m) => m,
                    Err(error) => {
                        tracing::debug!(%error, "Undecodable netlink message skipped.");
                        break;
                    }
                };
            let length = message.header.length as usize;
            let update = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    decode(&link).map(|(index, name, mut state)| {
                        if let Some(old) = names.insert(index, name.clone())
                            && old != name
                        {
                            let _ = updates.send(LinkUpdate::Removed { name: old });
                        }
                        // Speed is not in rtnetlink; read it only on a change.
                        if state.carrier {
                            state.speed_mbps = sysfs::read_speed(&sys_root, &name);
                        }
                        LinkUpdate::Changed { name, state }
                    })
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    let name = names
                        .remove(&link.header.index)
                        .or_else(|| decode(&link).map(|(_, name, _)| name));
                    name.map(|name| LinkUpdate::Removed { name })
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_),
                ) => Some(LinkUpdate::AddressesChanged),
                NetlinkPayload::Done(_) => Some(LinkUpdate::DumpDone),
                _ => None,
            };
            if let Some(update) = update
                && updates.send(update).is_err()
            {
                return; // The agent stopped.
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

/// The interface index, name and state a link message carries.
pub fn decode(link: &LinkMessage) -> Option<(u32, String, LinkState)> {
    let mut name = None;
    let mut state = LinkState {
        admin_up: link.header.flags.contains(LinkFlags::Up),
        carrier: link.header.flags.contains(LinkFlags::LowerUp),
        ..LinkState::default()
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::OperState(s) => state.oper = oper_state(s),
            LinkAttribute::Carrier(c) => state.carrier = *c != 0,
            LinkAttribute::CarrierChanges(n) => state.carrier_changes = u64::from(*n),
            _ => {}
        }
    }
    Some((link.header.index, name?, state))
}

fn oper_state(state: &State) -> OperState {
    match state {
        State::Up => OperState::Up,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::NotPresent => OperState::NotPresent,
        State::Testing => OperState::Testing,
        State::Dormant => OperState::Dormant,
        _ => OperState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The real kernel's dump: `lo` exists in every namespace and is up.
    #[test]
    fn dump_reports_loopback() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        spawn(PathBuf::from("/sys"), tx).expect("netlink socket");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut lo = None;
        while std::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(LinkUpdate::Changed { name, state }) if name == "lo" => lo = Some(state),
                Ok(LinkUpdate::DumpDone) => break,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let lo = lo.expect("lo in the dump");
        assert!(lo.admin_up);
        assert!(lo.is_up(), "{lo:?}");
    }
}
