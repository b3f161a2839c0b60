//! Netlink bytes read and written by hand: message headers, attributes, and
//! the link messages (`ifinfomsg`) that both the link watcher and traces
//! read. A message-type library decodes every attribute of every message
//! the kernel sends, and its code was a tenth of the static binary; the
//! agent reads a handful of fields. Every length is checked against the
//! bytes: a malformed part ends the walk, it never panics.

pub const NLMSG_HEADER_LEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_DUMP: u16 = 0x300;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;

/// `struct ifinfomsg`: family, pad, type, index, flags, change.
pub const IFINFOMSG_LEN: usize = 16;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_EXT_MASK: u16 = 29;
pub const IFLA_CARRIER: u16 = 33;
pub const IFLA_CARRIER_CHANGES: u16 = 35;
/// Inside `IFLA_LINKINFO`.
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
/// Inside a vrf device's `IFLA_INFO_DATA`.
pub const IFLA_VRF_TABLE: u16 = 1;
/// `IFLA_EXT_MASK` bit: leave the counters out of link answers.
pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

/// One netlink message as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub sequence: u32,
    pub payload: &'a [u8],
}

/// The messages of a received datagram. A message whose header is short or
/// claims more bytes than there are ends the walk with one `Err` carrying
/// the bytes left unread: nothing after it can be found.
pub fn messages(mut bytes: &[u8]) -> impl Iterator<Item = Result<Message<'_>, usize>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let Some(length) = message_length(bytes) else {
            let left = bytes.len();
            bytes = &[];
            return Some(Err(left));
        };
        let message = Message {
            kind: u16::from_ne_bytes([bytes[4], bytes[5]]),
            sequence: u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            payload: &bytes[NLMSG_HEADER_LEN..length],
        };
        bytes = bytes.get(align(length)..).unwrap_or(&[]);
        Some(Ok(message))
    })
}

/// The length a netlink message's header claims, if the bytes hold it.
pub fn message_length(bytes: &[u8]) -> Option<usize> {
    let length = usize::try_from(u32_at(bytes, 0)?).ok()?;
    (length >= NLMSG_HEADER_LEN && length <= bytes.len()).then_some(length)
}

/// Appends a request of type `kind` whose body `body` writes.
pub fn request(
    out: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    sequence: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.extend_from_slice(&[0; NLMSG_HEADER_LEN]);
    body(out);
    let length = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    // nlmsghdr: length, type, flags, sequence, port (0: the kernel).
    let header = &mut out[start..start + NLMSG_HEADER_LEN];
    header[0..4].copy_from_slice(&length.to_ne_bytes());
    header[4..6].copy_from_slice(&kind.to_ne_bytes());
    header[6..8].copy_from_slice(&flags.to_ne_bytes());
    header[8..12].copy_from_slice(&sequence.to_ne_bytes());
}

/// Appends an `RTM_GETLINK` body: an `ifinfomsg` for `index` (0: any),
/// the name when one is asked for, and no counters.
pub fn link_request(out: &mut Vec<u8>, index: u32, name: Option<&str>, stats: bool) {
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&index.to_ne_bytes());
    out.extend_from_slice(&[0; 8]);
    if let Some(name) = name {
        // NUL-terminated, as the kernel's nla_strscpy wants.
        let mut value = Vec::with_capacity(name.len() + 1);
        value.extend_from_slice(name.as_bytes());
        value.push(0);
        put(out, IFLA_IFNAME, &value);
    }
    if !stats {
        put(out, IFLA_EXT_MASK, &RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
    }
}

/// Appends one attribute, its value padded to 4 bytes as netlink wants.
pub fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

/// The (type, value) of each attribute in `bytes`, stopping at the first
/// malformed one.
pub fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let length = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
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

/// The value of the first attribute of type `kind`.
pub fn attribute(bytes: &[u8], kind: u16) -> Option<&[u8]> {
    attributes(bytes).find(|&(k, _)| k == kind).map(|(_, v)| v)
}

/// A link message's fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<'a> {
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The attributes, for [`attributes`].
    pub attributes: &'a [u8],
}

/// Reads an `RTM_NEWLINK`/`RTM_DELLINK` payload's `ifinfomsg`.
pub fn link(payload: &[u8]) -> Option<Link<'_>> {
    Some(Link {
        index: u32_at(payload, 4)?,
        flags: u32_at(payload, 8)?,
        attributes: payload.get(IFINFOMSG_LEN..)?,
    })
}

/// A string attribute's text: up to its NUL, invalid UTF-8 replaced.
pub fn text(value: &[u8]) -> String {
    let text = value.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// The table of a link that is a vrf device (`Some(None)` when it is one
/// but names no table); `None` for any other link.
pub fn vrf_table(link: &Link<'_>) -> Option<Option<u32>> {
    let info = attribute(link.attributes, IFLA_LINKINFO)?;
    if attribute(info, IFLA_INFO_KIND).map(text)? != "vrf" {
        return None;
    }
    Some(
        attribute(info, IFLA_INFO_DATA)
            .and_then(|data| attribute(data, IFLA_VRF_TABLE))
            .and_then(|value| u32_at(value, 0)),
    )
}

pub fn align(length: usize) -> usize {
    (length + 3) & !3
}

pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::link::{
        InfoData, InfoKind, InfoVrf, LinkAttribute, LinkInfo, LinkMessage,
    };

    fn payload(infos: Vec<LinkInfo>) -> Vec<u8> {
        let mut link = LinkMessage::default();
        link.header.index = 12;
        link.attributes = vec![
            LinkAttribute::IfName("blue".into()),
            LinkAttribute::LinkInfo(infos),
            LinkAttribute::Mtu(65575),
        ];
        let mut bytes = vec![0; link.buffer_len()];
        link.emit(&mut bytes);
        bytes
    }

    /// Link info written by netlink-packet-route reads as it reads it.
    #[test]
    fn finds_a_vrf_devices_table() {
        let vrf = payload(vec![
            LinkInfo::Kind(InfoKind::Vrf),
            LinkInfo::Data(InfoData::Vrf(vec![InfoVrf::TableId(1001)])),
        ]);
        let link = link(&vrf).expect("a link");
        assert_eq!(link.index, 12);
        assert_eq!(vrf_table(&link), Some(Some(1001)));
        assert_eq!(
            attribute(link.attributes, IFLA_IFNAME).map(text),
            Some("blue".into())
        );
        let bare = payload(vec![LinkInfo::Kind(InfoKind::Vrf)]);
        assert_eq!(vrf_table(&super::link(&bare).unwrap()), Some(None));
        let veth = payload(vec![LinkInfo::Kind(InfoKind::Veth)]);
        assert_eq!(vrf_table(&super::link(&veth).unwrap()), None);
        let plain = payload(vec![]);
        assert_eq!(vrf_table(&super::link(&plain).unwrap()), None);
        // Cut anywhere, it reads or refuses without a panic.
        for cut in 0..vrf.len() {
            if let Some(link) = super::link(&vrf[..cut]) {
                let _ = vrf_table(&link);
            }
        }
        assert_eq!(super::link(&vrf[..IFINFOMSG_LEN - 1]), None);
    }

    #[test]
    fn walks_messages_and_stops_at_a_bad_length() {
        let mut bytes = Vec::new();
        request(&mut bytes, RTM_GETLINK, NLM_F_REQUEST, 5, |out| {
            link_request(out, 2, Some("eth"), true)
        });
        request(&mut bytes, NLMSG_DONE, 0, 6, |out| {
            out.extend_from_slice(&[0; 4])
        });
        let read: Vec<_> = messages(&bytes).collect();
        assert_eq!(read.len(), 2);
        let first = read[0].unwrap();
        assert_eq!((first.kind, first.sequence), (RTM_GETLINK, 5));
        assert_eq!(link(first.payload).unwrap().index, 2);
        assert_eq!(read[1].unwrap().kind, NLMSG_DONE);
        // A header claiming fewer bytes than a header, or more than there
        // are, ends the walk with the bytes left.
        for length in [0u32, 15, 1 << 20] {
            let mut broken = bytes.clone();
            broken[..4].copy_from_slice(&length.to_ne_bytes());
            assert_eq!(
                messages(&broken).collect::<Vec<_>>(),
                vec![Err(broken.len())]
            );
        }
        assert_eq!(messages(&bytes[..3]).collect::<Vec<_>>(), vec![Err(3)]);
        assert_eq!(u32_at(&[1, 2, 3], usize::MAX), None);
    }
}
