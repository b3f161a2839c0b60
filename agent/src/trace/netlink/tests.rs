//! The hand-written requests and readers held against netlink-packet-route,
//! and a batch asked of the real kernel.

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
    let mut hand = Vec::new();
    get.emit(&mut hand);
    assert_eq!(hand, raw);
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
        flowlabel: Some(0x12345),
        fib_match: true,
        ..RouteGet::default()
    };
    let raw = bytes(&v6.message());
    let mut hand = Vec::new();
    v6.emit(&mut hand);
    assert_eq!(hand, raw);
    assert_eq!(&raw[..3], &[10, 128, 0]);
    // IPv6 refuses RTM_F_LOOKUP_TABLE; only FIB_MATCH is set.
    assert_eq!(u32::from_ne_bytes(raw[8..12].try_into().unwrap()), 0x2000);
}

/// Queues a request by hand and the same through netlink-packet-route,
/// and holds the two byte for byte.
fn same_request(hand: impl FnOnce(&mut Conn) -> u32, message: RouteNetlinkMessage, dump: bool) {
    let mut conn = Conn::open().expect("netlink socket");
    hand(&mut conn);
    let by_hand = std::mem::take(&mut conn.tx);
    conn.sequence = 0;
    conn.queue(message, dump);
    assert_eq!(by_hand, conn.tx);
}

#[test]
fn every_request_is_written_as_the_message_types_write_it() {
    let get = RouteGet {
        dst: Some("fd09::1".parse().unwrap()),
        src: Some("fd00::2".parse().unwrap()),
        oif: Some(3),
        proto: Some(17),
        dport: Some(53),
        ..RouteGet::default()
    };
    same_request(|c| c.queue_route_get(&get), get.message(), false);
    for stats in [true, false] {
        let mut link = LinkMessage::default();
        link.header.index = 7;
        if !stats {
            link.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        }
        same_request(
            |c| c.queue_link(7, stats),
            RouteNetlinkMessage::GetLink(link),
            false,
        );
    }
    same_request(
        |c| c.queue_link_by_name("vrf-blue"),
        link_by_name("vrf-blue"),
        false,
    );
    same_request(|c| c.queue_link_dump(), link_dump(), true);
    for address in ["10.0.2.2", "fe80::1"] {
        let address: IpAddr = address.parse().unwrap();
        same_request(
            |c| c.queue_neighbour(4, address),
            neighbour_get(4, address),
            false,
        );
    }
    let mut dump = RouteMessage::default();
    dump.header.address_family = AddressFamily::Inet6;
    dump.header.kind = netlink_packet_route::route::RouteType::Throw;
    same_request(
        |c| c.queue_route_dump(false, RTN_THROW),
        RouteNetlinkMessage::GetRoute(dump),
        true,
    );
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
    let c = conn.queue_link(1, true);
    let d = conn.queue_stats(1);
    let e = conn.queue_neighbour(1, "127.0.0.9".parse().unwrap());
    conn.send().unwrap();
    let Ok(RouteNetlinkMessage::NewRoute(route)) = conn.answer(a).unwrap() else {
        panic!("no route answer");
    };
    assert_eq!(
        route.header.kind,
        netlink_packet_route::route::RouteType::Local
    );
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
    let Ok((kind, payload)) = conn.answer_raw(d).unwrap() else {
        panic!("no stats answer");
    };
    assert_eq!(kind, RTM_NEWSTATS);
    let counters = stats_counters(payload).expect("64-bit counters");
    // Counted after the link answer, so never fewer.
    assert!(counters.rx_packets >= lo.counters.unwrap().rx_packets);
    // The loopback resolves nothing: no entry, or one without an address.
    match conn.answer_raw(e).unwrap() {
        Err(errno) => assert_eq!(errno, nix::libc::ENOENT),
        Ok((kind, payload)) => {
            assert_eq!(kind, RTM_NEWNEIGH);
            assert!(neighbour_facts(payload).is_some());
        }
    }
}
