//! Link state pushed by the kernel over rtnetlink (`RTNLGRP_LINK`), so a link
//! going down becomes an event as soon as the kernel announces it rather than
//! at the next tick. One dump at start gives the initial state; a dump again
//! after the socket overruns (`ENOBUFS`) recovers what was missed.
//!
//! The socket is blocking and lives on its own small thread; updates reach
//! the agent's loop through a channel.

use super::{LinkState, OperState, sysfs};
use crate::netlink::{self as nl, Message};
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

/// The dump request: every link, counters included (as the kernel sends
/// them unasked in notifications).
fn dump_request(sequence: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    nl::request(
        &mut buf,
        nl::RTM_GETLINK,
        nl::NLM_F_REQUEST | nl::NLM_F_DUMP,
        sequence,
        |out| nl::link_request(out, 0, None, true),
    );
    buf
}

fn request_dump(socket: &Socket, sequence: u32) -> io::Result<()> {
    socket.send_to(&dump_request(sequence), &SocketAddr::new(0, 0), 0)?;
    Ok(())
}

fn watch(socket: Socket, sys_root: PathBuf, updates: UnboundedSender<LinkUpdate>) {
    let mut names: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    let mut sequence = 1;
    let mut malformed: u64 = 0;
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
        for message in nl::messages(&buf[..size.min(buf.len())]) {
            let update = match message {
                Ok(message) => update(message, &mut names, &sys_root, &updates),
                Err(_) => Err(()),
            };
            let update = update.unwrap_or_else(|()| {
                malformed += 1;
                tracing::debug!(malformed, "Malformed netlink message skipped.");
                None
            });
            if let Some(update) = update
                && updates.send(update).is_err()
            {
                return; // The agent stopped.
            }
        }
    }
}

/// What one message means to the agent; `Err` when it is a link message
/// too short to read or naming no interface.
fn update(
    message: Message<'_>,
    names: &mut std::collections::HashMap<u32, String>,
    sys_root: &std::path::Path,
    updates: &UnboundedSender<LinkUpdate>,
) -> Result<Option<LinkUpdate>, ()> {
    Ok(match message.kind {
        nl::RTM_NEWLINK => {
            let (index, name, mut state) = decode(message.payload).ok_or(())?;
            if let Some(old) = names.insert(index, name.clone())
                && old != name
            {
                let _ = updates.send(LinkUpdate::Removed { name: old });
            }
            // Speed is not in rtnetlink; read it only on a change.
            if state.carrier {
                state.speed_mbps = sysfs::read_speed(sys_root, &name);
            }
            Some(LinkUpdate::Changed { name, state })
        }
        nl::RTM_DELLINK => {
            let link = nl::link(message.payload).ok_or(())?;
            names
                .remove(&link.index)
                .or_else(|| decode(message.payload).map(|(_, name, _)| name))
                .map(|name| LinkUpdate::Removed { name })
        }
        nl::RTM_NEWADDR | nl::RTM_DELADDR => Some(LinkUpdate::AddressesChanged),
        nl::NLMSG_DONE => Some(LinkUpdate::DumpDone),
        _ => None,
    })
}

/// The interface index, name and state an `RTM_NEWLINK`/`RTM_DELLINK`
/// payload carries; `None` when it is too short or names no interface.
pub fn decode(payload: &[u8]) -> Option<(u32, String, LinkState)> {
    const IFF_UP: u32 = 0x1;
    const IFF_LOWER_UP: u32 = 0x1_0000;
    let link = nl::link(payload)?;
    let mut name = None;
    let mut state = LinkState {
        admin_up: link.flags & IFF_UP != 0,
        carrier: link.flags & IFF_LOWER_UP != 0,
        ..LinkState::default()
    };
    for (kind, value) in nl::attributes(link.attributes) {
        match kind {
            nl::IFLA_IFNAME => name = Some(nl::text(value)),
            nl::IFLA_OPERSTATE => {
                if let Some(&s) = value.first() {
                    state.oper = oper_state(s);
                }
            }
            nl::IFLA_CARRIER => {
                if let Some(&c) = value.first() {
                    state.carrier = c != 0;
                }
            }
            nl::IFLA_CARRIER_CHANGES => {
                if let Some(n) = nl::u32_at(value, 0) {
                    state.carrier_changes = u64::from(n);
                }
            }
            _ => {}
        }
    }
    Some((link.index, name?, state))
}

/// RFC 2863 operational state, `IF_OPER_*`.
fn oper_state(state: u8) -> OperState {
    match state {
        6 => OperState::Up,
        2 => OperState::Down,
        3 => OperState::LowerLayerDown,
        1 => OperState::NotPresent,
        4 => OperState::Testing,
        5 => OperState::Dormant,
        _ => OperState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_packet_route::link::{
        InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
    };
    use std::time::Duration;

    /// A whole netlink message as the kernel would send it, written by
    /// netlink-packet-route.
    fn datagram(message: RouteNetlinkMessage, sequence: u32) -> Vec<u8> {
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.sequence_number = sequence;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        buf
    }

    #[test]
    fn the_dump_request_is_written_as_the_message_types_write_it() {
        let mut packet = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
        );
        packet.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        packet.header.sequence_number = 9;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        assert_eq!(dump_request(9), buf);
    }

    /// Links written by netlink-packet-route, among attributes the agent
    /// does not read, decode to what the message types read.
    #[test]
    fn decodes_links_as_the_message_types_do() {
        let states = [
            (State::Unknown, OperState::Unknown),
            (State::NotPresent, OperState::NotPresent),
            (State::Down, OperState::Down),
            (State::LowerLayerDown, OperState::LowerLayerDown),
            (State::Testing, OperState::Testing),
            (State::Dormant, OperState::Dormant),
            (State::Up, OperState::Up),
            (State::Other(9), OperState::Unknown),
        ];
        for (i, (state, oper)) in states.into_iter().enumerate() {
            let mut link = LinkMessage::default();
            link.header.index = 40 + i as u32;
            link.header.flags = if i % 2 == 0 {
                LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Broadcast
            } else {
                LinkFlags::Up
            };
            link.attributes = vec![
                LinkAttribute::Mtu(9216),
                LinkAttribute::IfName(format!("Eth1-{i}")),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
                LinkAttribute::OperState(state),
                LinkAttribute::CarrierChanges(1000 + i as u32),
                LinkAttribute::IfAlias("uplink".into()),
                LinkAttribute::CarrierUpCount(3),
            ];
            if i == 3 {
                // IFLA_CARRIER overrides the flag, as before.
                link.attributes.push(LinkAttribute::Carrier(0));
            }
            let bytes = datagram(RouteNetlinkMessage::NewLink(link), 1);
            let message = nl::messages(&bytes).next().unwrap().unwrap();
            assert_eq!(message.kind, nl::RTM_NEWLINK);
            let (index, name, state) = decode(message.payload).expect("a link");
            assert_eq!(index, 40 + i as u32);
            assert_eq!(name, format!("Eth1-{i}"));
            assert!(state.admin_up);
            assert_eq!(state.carrier, i % 2 == 0 && i != 3, "{i}");
            assert_eq!(state.oper, oper);
            assert_eq!(state.carrier_changes, 1000 + i as u64);
        }
    }

    /// Every cut and every corrupted byte of a real message is read without
    /// a panic; one too short to read is counted as malformed.
    #[test]
    fn malformed_link_messages_are_skipped_not_fatal() {
        let mut link = LinkMessage::default();
        link.header.index = 3;
        link.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Carrier(1),
        ];
        let mut bytes = datagram(RouteNetlinkMessage::NewLink(link.clone()), 1);
        bytes.extend(datagram(RouteNetlinkMessage::DelLink(link), 2));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut names = std::collections::HashMap::new();
        let root = std::path::Path::new("/nonexistent");
        for cut in 0..bytes.len() {
            for message in nl::messages(&bytes[..cut]).flatten() {
                let _ = update(message, &mut names, root, &tx);
            }
        }
        for at in 0..bytes.len() {
            for value in [0, 0xff, 3] {
                let mut broken = bytes.clone();
                broken[at] = value;
                for message in nl::messages(&broken).flatten() {
                    let _ = update(message, &mut names, root, &tx);
                }
            }
        }
        // A link message shorter than its ifinfomsg is malformed, and one
        // whose length runs past the datagram ends the walk.
        let short = nl::Message {
            kind: nl::RTM_NEWLINK,
            sequence: 0,
            payload: &[0; 8],
        };
        assert_eq!(update(short, &mut names, root, &tx), Err(()));
        let mut overlong = bytes.clone();
        overlong[0] = 0xff;
        assert!(matches!(nl::messages(&overlong).next(), Some(Err(_))));
        // Intact, the two decode: a link, then its removal by index.
        let mut names = std::collections::HashMap::new();
        let updates: Vec<_> = nl::messages(&bytes)
            .map(|m| update(m.unwrap(), &mut names, root, &tx).unwrap())
            .collect();
        assert!(
            matches!(&updates[0], Some(LinkUpdate::Changed { name, state }) if name == "eth0" && state.carrier)
        );
        assert_eq!(
            updates[1],
            Some(LinkUpdate::Removed {
                name: "eth0".into()
            })
        );
    }

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
