//! The rtnetlink conversation behind a trace: one socket, requests queued
//! and written together, answers read back by sequence number.
//!
//! The kernel handles rtnetlink requests inside the `sendmsg` that carries
//! them, so every answer to a batch is queued on the socket by the time the
//! write returns. A batch therefore costs one system call for any number of
//! lookups, and an answer that is missing after the write was dropped for
//! lack of receive buffer, never merely late.
//!
//! What a trace or `paths` sends and reads is written and read here by hand
//! (the tests hold the bytes against netlink-packet-route's): going through
//! the message types cost more than the kernel's own work on each request,
//! and their code was a tenth of the static binary.

mod facts;

pub(crate) use facts::*;

use crate::netlink::{
    IFINFOMSG_LEN, IFLA_IFNAME, IFLA_OPERSTATE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE,
    NLMSG_HEADER_LEN, RTM_GETLINK, align, attributes, message_length, put, u32_at,
};
pub(crate) use crate::netlink::{NLMSG_ERROR, RTM_NEWLINK};
#[cfg(test)]
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, ParseableParametrized};
#[cfg(test)]
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{LinkAttribute, LinkExtentMask, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage},
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::net::IpAddr;
use std::ops::Range;

/// Message types read without decoding whole messages.
pub(crate) const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
pub(crate) const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
pub(crate) const RTM_NEWSTATS: u16 = 92;
const RTM_GETSTATS: u16 = 94;
const RTMSG_LEN: usize = 12;
const NDMSG_LEN: usize = 12;
const IF_STATS_MSG_LEN: usize = 12;
const IFLA_MTU: u16 = 4;
const IFLA_STATS64: u16 = 23;
/// `IFLA_STATS_LINK_64`, the attribute of an `RTM_NEWSTATS` answer that
/// holds `rtnl_link_stats64`, and its bit in a request's filter mask.
const IFLA_STATS_LINK_64: u16 = 1;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_IIF: u16 = 3;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;
const RTA_IP_PROTO: u16 = 27;
const RTA_SPORT: u16 = 28;
const RTA_DPORT: u16 = 29;
const RTA_FLOWLABEL: u16 = 31;
const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
const RTM_F_FIB_MATCH: u32 = 0x2000;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// Route types (`RTN_*`) a trace tells apart.
pub(crate) const RTN_UNICAST: u8 = 1;
pub(crate) const RTN_LOCAL: u8 = 2;
pub(crate) const RTN_BROADCAST: u8 = 3;
pub(crate) const RTN_ANYCAST: u8 = 4;
pub(crate) const RTN_MULTICAST: u8 = 5;
pub(crate) const RTN_BLACKHOLE: u8 = 6;
pub(crate) const RTN_UNREACHABLE: u8 = 7;
pub(crate) const RTN_PROHIBIT: u8 = 8;
pub(crate) const RTN_THROW: u8 = 9;

/// Room for the largest single answer: a link with all its attributes is a
/// few KiB (no VF details are asked for). The kernel sizes dump parts to
/// the reader's buffer, so dumps fit too. Kept small because a short-lived
/// `hopwatch trace` pays a page fault for every page it touches.
const RX_BUFFER: usize = 16 * 1024;

/// How long a blocking read waits for the kernel's answer.
const ANSWER_TIMEOUT_SECONDS: i64 = 1;

/// The kernel's answer to one request: the message, or the errno it
/// refused with (positive, `libc::ENETUNREACH` and so on).
#[cfg(test)]
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
    /// An IPv6 flow label (`RTA_FLOWLABEL`), which policies 0 and 2 hash.
    pub flowlabel: Option<u32>,
    /// `RTM_F_FIB_MATCH`: answer with the FIB entry that matched, every
    /// member included, rather than the route taken.
    pub fib_match: bool,
}

impl RouteGet {
    /// Writes the request body (`rtmsg` and attributes), built as
    /// iproute2's `iproute_get` builds it so the answers agree with `ip
    /// route get`: full-length prefixes, `RTM_F_LOOKUP_TABLE` for IPv4 (the
    /// answer names the table that matched; IPv6 refuses the flag), the
    /// ports and protocol as attributes so the kernel hashes the flow as it
    /// would a packet. Written by hand rather than through a message type:
    /// `paths` writes thousands, and a trace's budget is a few microseconds.
    fn emit(&self, out: &mut Vec<u8>) {
        let dst = self.dst.expect("a route lookup has a destination");
        let (family, length) = match dst {
            IpAddr::V4(_) => (AF_INET, 32),
            IpAddr::V6(_) => (AF_INET6, 128),
        };
        let mut flags = 0;
        if dst.is_ipv4() {
            flags |= RTM_F_LOOKUP_TABLE;
        }
        if self.fib_match {
            flags |= RTM_F_FIB_MATCH;
        }
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let src_length = if self.src.is_some() { length } else { 0 };
        out.extend_from_slice(&[family, length, src_length, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&flags.to_ne_bytes());
        put_address(out, RTA_DST, dst);
        if let Some(src) = self.src {
            put_address(out, RTA_SRC, src);
        }
        if let Some(iif) = self.iif {
            put(out, RTA_IIF, &iif.to_ne_bytes());
        }
        if let Some(oif) = self.oif {
            put(out, RTA_OIF, &oif.to_ne_bytes());
        }
        if let Some(proto) = self.proto {
            put(out, RTA_IP_PROTO, &[proto]);
        }
        // Ports go in network byte order, as in the packet.
        if let Some(port) = self.sport {
            put(out, RTA_SPORT, &port.to_be_bytes());
        }
        if let Some(port) = self.dport {
            put(out, RTA_DPORT, &port.to_be_bytes());
        }
        // Big-endian too: the kernel reads it as the header's 20 bits.
        if let Some(label) = self.flowlabel {
            put(out, RTA_FLOWLABEL, &label.to_be_bytes());
        }
    }

    /// The same request through netlink-packet-route, which the tests hold
    /// the hand-written bytes against.
    #[cfg(test)]
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
        if let Some(label) = self.flowlabel {
            message.attributes.push(RouteAttribute::Flowlabel(label));
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

fn put_address(out: &mut Vec<u8>, kind: u16, address: IpAddr) {
    match address {
        IpAddr::V4(a) => put(out, kind, &a.octets()),
        IpAddr::V6(a) => put(out, kind, &a.octets()),
    }
}

/// One link by name, through netlink-packet-route, which the tests hold
/// the hand-written bytes against.
#[cfg(test)]
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

/// Every link, without counters, through netlink-packet-route.
#[cfg(test)]
pub(crate) fn link_dump() -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(message)
}

/// The neighbour entry for `address` on interface `index`, through
/// netlink-packet-route, which the tests hold the hand-written bytes against.
#[cfg(test)]
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

    /// Queues a request of type `kind` whose body `body` writes; returns
    /// its sequence number.
    fn queue_with(&mut self, kind: u16, dump: bool, body: impl FnOnce(&mut Vec<u8>)) -> u32 {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST
        };
        crate::netlink::request(&mut self.tx, kind, flags, self.sequence, body);
        self.sequence
    }

    /// Queues a route lookup.
    pub fn queue_route_get(&mut self, get: &RouteGet) -> u32 {
        self.queue_with(RTM_GETROUTE, false, |out| get.emit(out))
    }

    /// Queues a dump of the routes of one family and type (`RTN_*`): the
    /// kernel filters by type itself when the socket asks for strict checking.
    pub fn queue_route_dump(&mut self, ipv4: bool, kind: u8) -> u32 {
        let family = if ipv4 { AF_INET } else { AF_INET6 };
        self.queue_with(RTM_GETROUTE, true, |out| {
            // Every table (RT_TABLE_UNSPEC), any protocol and scope.
            out.extend_from_slice(&[family, 0, 0, 0, 0, 0, 0, kind]);
            out.extend_from_slice(&0u32.to_ne_bytes());
        })
    }

    /// Queues a lookup of one link by index; `stats` false leaves the
    /// counters out of the answer.
    pub fn queue_link(&mut self, index: u32, stats: bool) -> u32 {
        self.queue_with(RTM_GETLINK, false, |out| {
            crate::netlink::link_request(out, index, None, stats);
        })
    }

    /// Queues a lookup of one link by name, without counters.
    pub fn queue_link_by_name(&mut self, name: &str) -> u32 {
        self.queue_with(RTM_GETLINK, false, |out| {
            crate::netlink::link_request(out, 0, Some(name), false);
        })
    }

    /// Queues a dump of every link, without counters.
    pub fn queue_link_dump(&mut self) -> u32 {
        self.queue_with(RTM_GETLINK, true, |out| {
            crate::netlink::link_request(out, 0, None, false);
        })
    }

    /// Queues a lookup of one link's 64-bit counters alone: a fraction of
    /// what the kernel writes for a whole link.
    pub fn queue_stats(&mut self, index: u32) -> u32 {
        self.queue_with(RTM_GETSTATS, false, |out| {
            // if_stats_msg: family, pad, pad, ifindex, filter_mask.
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&index.to_ne_bytes());
            let filter: u32 = 1 << (IFLA_STATS_LINK_64 - 1);
            out.extend_from_slice(&filter.to_ne_bytes());
        })
    }

    /// Queues a lookup of the neighbour entry for `address` on interface `index`.
    pub fn queue_neighbour(&mut self, index: u32, address: IpAddr) -> u32 {
        self.queue_with(RTM_GETNEIGH, false, |out| {
            let family = if address.is_ipv4() { AF_INET } else { AF_INET6 };
            // ndmsg: family, pad, pad, ifindex, state, flags, type.
            out.extend_from_slice(&[family, 0, 0, 0]);
            out.extend_from_slice(&index.to_ne_bytes());
            out.extend_from_slice(&[0; 4]);
            put_address(out, NDA_DST, address);
        })
    }

    /// Queues a request for the next [`Conn::send`] through the message
    /// types; returns its sequence number.
    #[cfg(test)]
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
    #[cfg(test)]
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

    /// Hands each message of the dump `sequence` to `each` undecoded, as
    /// (type, payload); or the errno that refused the dump.
    pub fn dump_raw(
        &mut self,
        sequence: u32,
        mut each: impl FnMut(u16, &[u8]),
    ) -> io::Result<Result<(), i32>> {
        loop {
            let (header_sequence, kind, range) = self.next_raw()?;
            if header_sequence != sequence {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(Ok(())),
                NLMSG_ERROR => return Ok(Err(raw_error(&self.rx[range]))),
                _ => each(kind, &self.rx[range]),
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

fn truncated(size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("truncated netlink message ({size} bytes)"),
    )
}

/// Decodes a message payload of type `kind` through the message types.
#[cfg(test)]
fn decode(kind: u16, payload: &[u8]) -> io::Result<RouteNetlinkMessage> {
    RouteNetlinkMessage::parse_with_param(payload, kind)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))
}

#[cfg(test)]
mod tests;
