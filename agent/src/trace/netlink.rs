//! The rtnetlink conversation behind a trace: one socket, requests queued
//! and written together, answers read back by sequence number.
//!
//! The kernel handles rtnetlink requests inside the `sendmsg` that carries
//! them, so every answer to a batch is queued on the socket by the time the
//! write returns. A batch therefore costs one system call for any number of
//! lookups, and an answer that is missing after the write was dropped for
//! lack of receive buffer, never merely late.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload, ParseableParametrized,
};
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::net::IpAddr;
use std::ops::Range;

/// Message types read without decoding whole messages.
pub(crate) const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_NEWROUTE: u16 = 24;
const NLMSG_HEADER_LEN: usize = 16;
const RTMSG_LEN: usize = 12;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_STATS64: u16 = 23;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_VIA: u16 = 18;

/// Room for the largest single answer: a link with all its attributes is a
/// few KiB (no VF details are asked for). The kernel sizes dump parts to
/// the reader's buffer, so dumps fit too. Kept small because a short-lived
/// `hopwatch trace` pays a page fault for every page it touches.
const RX_BUFFER: usize = 16 * 1024;

/// How long a blocking read waits for the kernel's answer.
const ANSWER_TIMEOUT_SECONDS: i64 = 1;

/// The kernel's answer to one request: the message, or the errno it
/// refused with (positive, `libc::ENETUNREACH` and so on).
pub(crate) type Answer = Result<RouteNetlinkMessage, i32>;

/// A route lookup as `ip route get` asks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteGet {
    pub dst: Option<IpAddr>,
    pub src: Option<IpAddr>,
    pub iif: Option<u32>,
    pub oif: Option<u32>,
    pub proto: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// `RTM_F_FIB_MATCH`: answer with the FIB entry that matched, every
    /// member included, rather than the route taken.
    pub fib_match: bool,
}

impl RouteGet {
    /// The request message, built as iproute2's `iproute_get` builds it so
    /// the answers agree with `ip route get`: full-length prefixes,
    /// `RTM_F_LOOKUP_TABLE` for IPv4 (the answer names the table that
    /// matched; IPv6 refuses the flag), the ports and protocol as attributes
    /// so the kernel hashes the flow as it would a packet.
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut message = RouteMessage::default();
        let dst = self.dst.expect("a route lookup has a destination");
        let (family, length) = match dst {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        message.header.address_family = family;
        message.header.destination_prefix_length = length;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        if let Some(src) = self.src {
            message.header.source_prefix_length = length;
            message
                .attributes
                .push(RouteAttribute::Source(RouteAddress::from(src)));
        }
        if let Some(iif) = self.iif {
            message.attributes.push(RouteAttribute::Iif(iif));
        }
        if let Some(oif) = self.oif {
            message.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(proto) = self.proto {
            message.attributes.push(RouteAttribute::IpProto(proto));
        }
        if let Some(port) = self.sport {
            message.attributes.push(RouteAttribute::Sport(port));
        }
        if let Some(port) = self.dport {
            message.attributes.push(RouteAttribute::Dport(port));
        }
        let mut flags = RouteFlags::empty();
        if dst.is_ipv4() {
            flags |= RouteFlags::LookupTable;
        }
        if self.fib_match {
            flags |= RouteFlags::FibMatch;
        }
        message.header.flags = flags;
        RouteNetlinkMessage::GetRoute(message)
    }
}

/// A dump of the routes of one family and type: the kernel filters by type
/// itself when the socket asks for strict checking.
pub(crate) fn route_dump(ipv4: bool, kind: RouteType) -> RouteNetlinkMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = if ipv4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    message.header.kind = kind;
    message.header.table = RouteHeader::RT_TABLE_UNSPEC;
    RouteNetlinkMessage::GetRoute(message)
}

/// One link by index; `stats` false leaves the counters out of the answer.
pub(crate) fn link_by_index(index: u32, stats: bool) -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    if !stats {
        message
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    }
    RouteNetlinkMessage::GetLink(message)
}

/// One link by name.
pub(crate) fn link_by_name(name: &str) -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(message)
}

/// Every link, without counters.
pub(crate) fn link_dump() -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(message)
}

/// The neighbour entry for `address` on interface `index`.
pub(crate) fn neighbour_get(index: u32, address: IpAddr) -> RouteNetlinkMessage {
    let mut message = NeighbourMessage::default();
    message.header.ifindex = index;
    let (family, address) = match address {
        IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
        IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
    };
    message.header.family = family;
    message
        .attributes
        .push(NeighbourAttribute::Destination(address));
    RouteNetlinkMessage::GetNeighbour(message)
}

/// An rtnetlink socket bound to the network namespace it was opened in.
pub(crate) struct Conn {
    socket: Socket,
    sequence: u32,
    /// Requests queued for the next write.
    tx: Vec<u8>,
    rx: Vec<u8>,
    /// The received datagram being read: `rx[offset..filled]` is unread.
    offset: usize,
    filled: usize,
}

impl Conn {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Conn> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // Lets route dumps filter by type in the kernel; every request sent
        // here is also valid under the strict checks this turns on.
        socket.set_netlink_get_strict_chk(true)?;
        // Room for a batch of `paths` answers; the kernel caps it at
        // net.core.rmem_max, and batches are sized for the default.
        let _ = socket.set_rx_buf_sz(1 << 20);
        // An answer the kernel dropped for lack of room would otherwise be
        // waited for forever; the kernel answers within microseconds, so a
        // second of silence is a failure to report.
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(ANSWER_TIMEOUT_SECONDS, 0),
        )
        .map_err(io::Error::from)?;
        Ok(Conn {
            socket,
            sequence: 0,
            tx: Vec::with_capacity(4096),
            rx: vec![0; RX_BUFFER],
            offset: 0,
            filled: 0,
        })
    }

    /// Queues a request for the next [`Conn::send`]; returns its sequence number.
    pub fn queue(&mut self, message: RouteNetlinkMessage, dump: bool) -> u32 {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST
        };
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let start = self.tx.len();
        self.tx.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut self.tx[start..]);
        self.sequence
    }

    /// Writes every queued request at once. When this returns, the kernel
    /// has answered them all.
    pub fn send(&mut self) -> io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let result = self.socket.send_to(&self.tx, &SocketAddr::new(0, 0), 0);
        self.tx.clear();
        result.map(drop)
    }

    /// The answer to the get request `sequence`, decoded. Answers to
    /// earlier requests still unread are skipped.
    pub fn answer(&mut self, sequence: u32) -> io::Result<Answer> {
        Ok(match self.answer_raw(sequence)? {
            Ok((kind, payload)) => Ok(decode(kind, payload)?),
            Err(errno) => Err(errno),
        })
    }

    /// The answer to the get request `sequence` undecoded, as its message
    /// type and payload, or the errno it was refused with.
    pub fn answer_raw(&mut self, sequence: u32) -> io::Result<Result<(u16, &[u8]), i32>> {
        loop {
            let (header_sequence, kind, range) = self.next_raw()?;
            if header_sequence != sequence {
                continue;
            }
            let payload = &self.rx[range];
            return Ok(if kind == NLMSG_ERROR {
                Err(raw_error(payload))
            } else {
                Ok((kind, payload))
            });
        }
    }

    /// Every message of the dump `sequence`, or the errno that refused it.
    pub fn dump(&mut self, sequence: u32) -> io::Result<Result<Vec<RouteNetlinkMessage>, i32>> {
        let mut messages = Vec::new();
        loop {
            let (header_sequence, kind, range) = self.next_raw()?;
            if header_sequence != sequence {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(Ok(messages)),
                NLMSG_ERROR => return Ok(Err(raw_error(&self.rx[range]))),
                _ => messages.push(decode(kind, &self.rx[range])?),
            }
        }
    }

    /// The next message received, undecoded: its sequence number, its
    /// type, and where its payload lies in the receive buffer.
    fn next_raw(&mut self) -> io::Result<(u32, u16, Range<usize>)> {
        if self.offset >= self.filled {
            self.filled = self.recv(0)?;
            self.offset = 0;
        }
        let start = self.offset;
        let bytes = &self.rx[start..self.filled];
        let length = message_length(bytes).ok_or_else(|| truncated(bytes.len()))?;
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        let sequence = u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        self.offset += align(length);
        Ok((sequence, kind, start + NLMSG_HEADER_LEN..start + length))
    }

    /// Receives one datagram into the buffer; `flags` as for `recv(2)`.
    fn recv(&mut self, flags: i32) -> io::Result<usize> {
        loop {
            match self.socket.recv(&mut &mut self.rx[..], flags) {
                Ok(size) => return Ok(size.min(self.rx.len())),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Receives one datagram without waiting and hands each netlink message
    /// in it to `each` undecoded, as (type, sequence, payload). `Ok(false)`
    /// when nothing is waiting.
    pub fn recv_raw(&mut self, mut each: impl FnMut(u16, u32, &[u8])) -> io::Result<bool> {
        let size = match self.recv(nix::libc::MSG_DONTWAIT) {
            Ok(size) => size,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) => return Err(error),
        };
        let mut offset = 0;
        while offset + NLMSG_HEADER_LEN <= size {
            let bytes = &self.rx[offset..size];
            let Some(length) = message_length(bytes) else {
                break;
            };
            let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
            let sequence = u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            each(kind, sequence, &bytes[NLMSG_HEADER_LEN..length]);
            offset += align(length);
        }
        Ok(true)
    }
}

/// The length a netlink message's header claims, if the bytes hold it.
fn message_length(bytes: &[u8]) -> Option<usize> {
    let length = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    (length >= NLMSG_HEADER_LEN && length <= bytes.len()).then_some(length)
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn truncated(size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("truncated netlink message ({size} bytes)"),
    )
}

/// The errno of an `NLMSG_ERROR` payload (positive; 0 for an ack).
pub(crate) fn raw_error(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map_or(0, |b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The member a route answer names, read straight from the bytes: the
/// gateway (`RTA_GATEWAY`, or `RTA_VIA` for an IPv4 route through an IPv6
/// next hop) and the output interface. `paths` reads thousands of these.
pub(crate) fn raw_route_member(payload: &[u8]) -> Option<(Option<IpAddr>, u32)> {
    let mut gateway = None;
    let mut oif = 0;
    for (kind, value) in attributes(payload.get(RTMSG_LEN..)?) {
        match kind {
            RTA_OIF => oif = u32_at(value, 0)?,
            RTA_GATEWAY => gateway = ip_from_bytes(value),
            RTA_VIA if value.len() > 2 => gateway = ip_from_bytes(&value[2..]),
            _ => {}
        }
    }
    Some((gateway, oif))
}

/// What a trace reads of a link answer, straight from the bytes: decoding
/// the whole message (address-family blocks, driver info, dozens of
/// attributes) would cost more than the kernel took to write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkFacts {
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    pub name: Option<String>,
    pub mtu: Option<u32>,
    /// RFC 2863 operational state, `IF_OPER_*`.
    pub operstate: Option<u8>,
    pub counters: Option<super::Counters>,
}

pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const IFF_LOOPBACK: u32 = 0x8;
pub(crate) const IFF_NOARP: u32 = 0x80;
pub(crate) const IFF_LOWER_UP: u32 = 0x1_0000;

/// Reads an `RTM_NEWLINK` payload.
pub(crate) fn link_facts(payload: &[u8]) -> Option<LinkFacts> {
    let mut facts = LinkFacts {
        index: u32_at(payload, 4)?,
        flags: u32_at(payload, 8)?,
        ..LinkFacts::default()
    };
    for (kind, value) in attributes(payload.get(IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_IFNAME => {
                let name = value.split(|&b| b == 0).next().unwrap_or_default();
                facts.name = Some(String::from_utf8_lossy(name).into_owned());
            }
            IFLA_MTU => facts.mtu = u32_at(value, 0),
            IFLA_OPERSTATE => facts.operstate = value.first().copied(),
            IFLA_STATS64 => {
                // rtnl_link_stats64 opens with rx/tx packets, bytes,
                // errors, dropped, in that order.
                let at = |i: usize| {
                    value
                        .get(i * 8..i * 8 + 8)
                        .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
                };
                facts.counters = Some(super::Counters {
                    rx_packets: at(0),
                    tx_packets: at(1),
                    rx_bytes: at(2),
                    tx_bytes: at(3),
                    rx_errors: at(4),
                    tx_errors: at(5),
                    rx_dropped: at(6),
                    tx_dropped: at(7),
                });
            }
            _ => {}
        }
    }
    Some(facts)
}

/// The (type, value) of each attribute in `bytes`, stopping at the first
/// malformed one.
fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let length = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        // The top two bits flag nesting and byte order, not the type.
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if length < 4 || length > bytes.len() {
            return None;
        }
        let value = &bytes[4..length];
        bytes = bytes.get(align(length)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a message payload of type `kind`.
fn decode(kind: u16, payload: &[u8]) -> io::Result<RouteNetlinkMessage> {
    RouteNetlinkMessage::parse_with_param(payload, kind)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    fn bytes(message: &RouteNetlinkMessage) -> Vec<u8> {
        let RouteNetlinkMessage::GetRoute(route) = message else {
            panic!("not a route message");
        };
        let mut buffer = vec![0; route.buffer_len()];
        route.emit(&mut buffer);
        buffer
    }

    #[test]
    fn route_lookups_are_built_as_ip_route_get_builds_them() {
        let get = RouteGet {
            dst: Some("10.9.1.1".parse().unwrap()),
            src: Some("10.0.0.2".parse().unwrap()),
            iif: Some(7),
            proto: Some(6),
            sport: Some(0x1234),
            dport: Some(80),
            ..RouteGet::default()
        };
        let raw = bytes(&get.message());
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        assert_eq!(&raw[..8], &[2, 32, 32, 0, 0, 0, 0, 0]);
        assert_eq!(u32::from_ne_bytes(raw[8..12].try_into().unwrap()), 0x1000);
        // RTA_SPORT is big-endian, as on the wire.
        let sport = raw
            .windows(6)
            .position(|w| w[..4] == [6, 0, 28, 0])
            .unwrap();
        assert_eq!(&raw[sport + 4..sport + 6], &[0x12, 0x34]);

        let v6 = RouteGet {
            dst: Some("fd09::1".parse().unwrap()),
            fib_match: true,
            ..RouteGet::default()
        };
        let raw = bytes(&v6.message());
        assert_eq!(&raw[..3], &[10, 128, 0]);
        // IPv6 refuses RTM_F_LOOKUP_TABLE; only FIB_MATCH is set.
        assert_eq!(u32::from_ne_bytes(raw[8..12].try_into().unwrap()), 0x2000);
    }

    #[test]
    fn reads_a_member_from_raw_answers() {
        let mut answer = RouteMessage::default();
        answer.header.address_family = AddressFamily::Inet;
        answer.attributes = vec![
            RouteAttribute::Table(254),
            RouteAttribute::Destination(RouteAddress::Inet("10.9.1.1".parse().unwrap())),
            RouteAttribute::Oif(3),
            RouteAttribute::Gateway(RouteAddress::Inet("10.0.2.2".parse().unwrap())),
        ];
        let raw = bytes(&RouteNetlinkMessage::GetRoute(answer));
        assert_eq!(
            raw_route_member(&raw),
            Some((Some("10.0.2.2".parse().unwrap()), 3))
        );
        let mut connected = RouteMessage::default();
        connected.attributes = vec![RouteAttribute::Oif(9)];
        let raw = bytes(&RouteNetlinkMessage::GetRoute(connected));
        assert_eq!(raw_route_member(&raw), Some((None, 9)));
        assert_eq!(raw_route_member(&[1, 2]), None);
        assert_eq!(raw_error(&(-101i32).to_ne_bytes()), 101);
    }

    #[test]
    fn asks_the_real_kernel_in_a_batch() {
        let mut conn = Conn::open().expect("netlink socket");
        let lookup = |dst: &str, fib_match| {
            RouteGet {
                dst: Some(dst.parse().unwrap()),
                fib_match,
                ..RouteGet::default()
            }
            .message()
        };
        let a = conn.queue(lookup("127.0.0.1", false), false);
        let b = conn.queue(lookup("127.0.0.1", true), false);
        let c = conn.queue(link_by_index(1, true), false);
        conn.send().unwrap();
        let Ok(RouteNetlinkMessage::NewRoute(route)) = conn.answer(a).unwrap() else {
            panic!("no route answer");
        };
        assert_eq!(route.header.kind, RouteType::Local);
        assert!(matches!(
            conn.answer(b).unwrap(),
            Ok(RouteNetlinkMessage::NewRoute(_))
        ));
        let Ok((kind, payload)) = conn.answer_raw(c).unwrap() else {
            panic!("no link answer");
        };
        assert_eq!(kind, RTM_NEWLINK);
        let lo = link_facts(payload).expect("a link message");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.name.as_deref(), Some("lo"));
        assert_ne!(lo.flags & IFF_LOOPBACK, 0);
        assert!(lo.mtu.is_some() && lo.counters.is_some(), "{lo:?}");
    }
}
