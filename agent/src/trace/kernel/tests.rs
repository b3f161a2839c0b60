//! The kernel backend against real kernels: the bytes it reads, and traces
//! of this namespace and of one built for the test.

use super::policy::hash_mode;
use super::route::{decode_route, prefix_contains, protocol_name, table_name};
use super::*;
use crate::trace::{DropReason, NeighborState, PathsQuery, RouteKind, Step};
use netlink_packet_core::Emitable;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteNextHopFlags, RouteType,
    RouteVia,
};
use std::net::IpAddr;
use std::path::Path;

#[test]
fn prefixes_contain_their_addresses() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(prefix_contains(ip("10.66.1.0"), 24, ip("10.66.1.9")));
    assert!(!prefix_contains(ip("10.66.1.0"), 24, ip("10.66.2.9")));
    assert!(prefix_contains(ip("0.0.0.0"), 0, ip("192.0.2.1")));
    assert!(prefix_contains(ip("10.0.0.1"), 32, ip("10.0.0.1")));
    assert!(prefix_contains(ip("fd66:1::"), 64, ip("fd66:1::9")));
    assert!(!prefix_contains(ip("fd66:1::"), 64, ip("fd66:2::9")));
    assert!(prefix_contains(ip("::"), 0, ip("2001:db8::1")));
    assert!(!prefix_contains(ip("::"), 0, ip("10.0.0.1")));
}

#[test]
fn hash_policies_in_words() {
    assert_eq!(
        hash_mode(true, 0, None),
        "L3: source and destination address"
    );
    assert!(hash_mode(false, 0, None).contains("flow label"));
    assert!(hash_mode(true, 1, None).starts_with("L4:"));
    assert!(hash_mode(true, 2, None).contains("inner"));
    assert_eq!(
        hash_mode(true, 3, Some(0x0037)),
        "custom: source address, destination address, protocol, source port, destination port"
    );
    assert!(hash_mode(true, 3, Some(0)).contains("no fields"));
    assert!(hash_mode(true, 9, None).contains("unknown"));
}

#[test]
fn names_protocols_tables_and_types() {
    assert_eq!(protocol_name(186), "bgp");
    assert_eq!(protocol_name(3), "boot");
    assert_eq!(protocol_name(200), "200");
    assert_eq!(table_name(254), "main");
    assert_eq!(table_name(1001), "1001");
    assert_eq!(
        RouteKind::from_kernel(u8::from(RouteType::BlackHole)),
        "blackhole"
    );
    assert_eq!(RouteKind::from_kernel(0), "type 0");
    assert_eq!(NeighborState::from_kernel(0x20), "failed");
}

#[test]
fn multipath_members_carry_weights() {
    let mut hop = RouteNextHop::default();
    hop.hops = 1;
    hop.interface_index = 4;
    hop.flags = RouteNextHopFlags::Linkdown;
    hop.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(
        "10.0.4.2".parse().unwrap(),
    ))];
    // An IPv4 member through an IPv6 next hop, as RFC 5549 routes it.
    let mut via = RouteNextHop::default();
    via.interface_index = 5;
    via.attributes = vec![RouteAttribute::Via(RouteVia::Inet6(
        "fe80::5".parse().unwrap(),
    ))];
    let mut message = RouteMessage::default();
    message.header.address_family = netlink_packet_route::AddressFamily::Inet;
    message.header.kind = RouteType::Unicast;
    message.header.destination_prefix_length = 16;
    message.header.protocol = 186.into();
    message.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())),
        RouteAttribute::Table(254),
        RouteAttribute::Priority(20),
        RouteAttribute::PrefSource(RouteAddress::Inet("10.0.4.1".parse().unwrap())),
        RouteAttribute::MultiPath(vec![hop, via]),
    ];
    // The bytes the kernel would send, read as a trace reads them.
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);
    let route = decode_route(&netlink::route_facts(&bytes).expect("a route"));
    assert_eq!(route.prefix, "10.9.0.0/16");
    assert_eq!(route.protocol, "bgp");
    assert_eq!(route.metric, 20);
    assert_eq!(route.table_name, "main");
    assert_eq!(route.preferred_source, Some("10.0.4.1".parse().unwrap()));
    assert_eq!(route.members.len(), 2);
    assert_eq!(route.members[0].weight, 2);
    assert_eq!(route.members[0].flags, ["linkdown"]);
    assert_eq!(route.members[1].weight, 1);
    assert_eq!(route.members[1].ifindex, 5);
    assert!(route.members[1].flags.is_empty());
    assert_eq!(route.members[1].next_hop, Some("fe80::5".parse().unwrap()));
    assert_eq!(
        route.member_of(Some("10.0.4.2".parse().unwrap()), 4),
        Some(0)
    );
}

#[test]
fn traces_the_loopback_of_this_namespace() {
    let mut backend = KernelBackend::new();
    let trace = backend
        .trace(&FlowQuery::new("127.0.0.1".parse().unwrap()))
        .expect("a trace of 127.0.0.1");
    assert!(trace.success);
    assert!(trace.reaches_destination, "{trace:?}");
    assert_eq!(trace.hops.last().unwrap().kind(), "local");
    assert_eq!(trace.next_hop, None);
    assert_eq!(trace.egress_interface.as_deref(), Some("lo"));
    // A second trace reuses the socket kept at home.
    assert!(
        backend
            .trace(&FlowQuery::new("::1".parse().unwrap()))
            .is_ok()
    );
}

#[test]
fn an_unknown_vrf_lists_what_exists() {
    let dir = std::env::temp_dir().join(format!("hopwatch-netns-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("blue")).unwrap();
    let mut backend = KernelBackend::new().with_netns_dir(&dir);
    let mut query = FlowQuery::new("10.0.0.1".parse().unwrap());
    query.vrf = "red".into();
    let error = backend.trace(&query).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!error.is_usage());
    let message = error.to_string();
    assert!(message.contains("no VRF named \"red\""), "{message}");
    assert!(message.contains("blue"), "{message}");
    assert!(message.contains("default"), "{message}");
}

/// A namespace standing for a VRF, removed when dropped.
struct Lab(String);

impl Lab {
    fn ip(&self, args: &str) {
        let status = std::process::Command::new("ip")
            .args(["-n", &self.0])
            .args(args.split_whitespace())
            .status()
            .expect("ip runs");
        assert!(status.success(), "ip -n {} {args}", self.0);
    }

    fn route_get(&self, args: &str) -> String {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "ip", "route", "get"])
            .args(args.split_whitespace())
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// Needs root and iproute2 to build the namespace; skipped without them.
#[test]
fn traces_inside_a_vrf_namespace_as_root() {
    let has_ip = std::process::Command::new("ip").arg("-V").output().is_ok();
    if !nix::unistd::Uid::effective().is_root() || !has_ip {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root with iproute2"
        );
        eprintln!("skipped: needs root and iproute2 to build a network namespace");
        return;
    }
    let lab = Lab(format!("hopwatch-trace-{}", std::process::id()));
    let created = std::process::Command::new("ip")
        .args(["netns", "add", &lab.0])
        .status()
        .expect("ip runs");
    assert!(created.success());
    lab.ip("link set lo up");
    lab.ip("link add p1 type veth peer name q1");
    lab.ip("link add p2 type veth peer name q2");
    for (dev, addr) in [("p1", "10.1.1.1/24"), ("p2", "10.2.2.1/24")] {
        lab.ip(&format!("addr add {addr} dev {dev}"));
    }
    for dev in ["p1", "q1", "p2", "q2"] {
        lab.ip(&format!("link set {dev} up"));
    }
    lab.ip("route add 10.9.0.0/16 nexthop via 10.1.1.2 weight 1 nexthop via 10.2.2.2 weight 3");
    lab.ip("route add blackhole 10.66.0.0/16");
    let policy = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.0, "sysctl", "-qw"])
        .arg("net.ipv4.fib_multipath_hash_policy=1")
        .status()
        .expect("sysctl runs");
    assert!(policy.success());

    let mut backend = KernelBackend::new();
    let mut query = FlowQuery::new("10.9.3.4".parse().unwrap());
    query.vrf = lab.0.clone();
    query.proto = Some(17);
    query.dport = Some(53);
    for sport in 1000..1040 {
        query.sport = Some(sport);
        let trace = backend.trace(&query).expect("a trace in the namespace");
        let kernel = lab.route_get(&format!("10.9.3.4 ipproto udp sport {sport} dport 53"));
        let expected = format!(
            "via {} dev {}",
            trace.next_hop.expect("a next hop"),
            trace.egress_interface.as_deref().expect("an egress")
        );
        assert!(
            kernel.contains(&expected),
            "{expected:?} against {kernel:?}"
        );
        let route = trace.route().expect("the matching route");
        assert_eq!(route.members.len(), 2);
        assert_eq!(route.members[1].weight, 3);
        let share = trace.load_share.as_ref().expect("the hash policy");
        assert_eq!(share.policy, 1);
    }

    query.dst = "10.66.0.1".parse().unwrap();
    let trace = backend.trace(&query).unwrap();
    assert!(!trace.reaches_destination);
    let (hop, reason) = trace.drop_hop().expect("a drop");
    assert_eq!(reason, DropReason::Blackhole);
    assert!(matches!(&hop.step, Step::Drop { route: Some(r), .. } if r.prefix == "10.66.0.0/16"));

    let mut spread = PathsQuery::new(
        "10.9.3.4".parse().unwrap(),
        6,
        crate::trace::SourcePorts::Range(crate::trace::PortRange {
            first: 2000,
            last: 2399,
        }),
    );
    spread.vrf = lab.0.clone();
    let answer = backend.paths(&spread).expect("paths in the namespace");
    assert_eq!(answer.flows, 400);
    assert_eq!(answer.members.iter().map(|m| m.count).sum::<u64>(), 400);
    assert_eq!(answer.members.len(), 2);

    // A backend whose home is the namespace caches member names; a
    // rename must show in the next trace all the same.
    let handle = File::open(Path::new(NETNS_DIR).join(&lab.0)).unwrap();
    let member_names = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let mut home = KernelBackend::new();
                let mut query = FlowQuery::new("10.9.3.4".parse().unwrap());
                query.proto = Some(6);
                let names = |trace: &Trace| -> Vec<String> {
                    let route = trace.route().expect("a route");
                    route
                        .members
                        .iter()
                        .filter_map(|m| m.interface.clone())
                        .collect()
                };
                // Flows over both members, so both names are cached;
                // remember one that leaves by p1.
                let mut by_p1 = None;
                let mut before = Vec::new();
                for sport in 1..40 {
                    query.sport = Some(sport);
                    let trace = home.trace(&query).unwrap();
                    if trace.egress_interface.as_deref() == Some("p1") {
                        by_p1 = Some(sport);
                    }
                    before = names(&trace);
                }
                lab.ip("link set p2 down");
                lab.ip("link set p2 name p2x");
                lab.ip("link set p2x up");
                // Leaving by p1, the name p2x can only come from the
                // cache or a fresh lookup.
                query.sport = by_p1;
                let after = names(&home.trace(&query).unwrap());
                // The egress link is remembered too, all but its
                // counters; a new MTU must show all the same.
                let mtu = |trace: &Trace| {
                    trace.hops.iter().find_map(|hop| match &hop.step {
                        Step::Egress { interface } => interface.mtu,
                        _ => None,
                    })
                };
                assert_eq!(mtu(&home.trace(&query).unwrap()), Some(1500));
                lab.ip("link set p1 mtu 1400");
                assert_eq!(mtu(&home.trace(&query).unwrap()), Some(1400));

                // The hash policy is trusted for REREAD_AFTER, then read
                // again; /proc/sys/net opened here is the lab's.
                let mut namespace =
                    Namespace::open(PathBuf::from("/proc/sys"), PathBuf::from("/sys"), true)
                        .unwrap();
                let read = Instant::now();
                let policy = |namespace: &mut Namespace, at| {
                    namespace.load_share(true, at).map(|share| share.policy)
                };
                assert_eq!(policy(&mut namespace, read), Some(1));
                std::fs::write("/proc/sys/net/ipv4/fib_multipath_hash_policy", "0").unwrap();
                let soon = read + REREAD_AFTER / 2;
                assert_eq!(policy(&mut namespace, soon), Some(1));
                assert_eq!(policy(&mut namespace, read + REREAD_AFTER), Some(0));
                (before, after)
            })
            .join()
            .unwrap()
    });
    assert_eq!(member_names.0, ["p1", "p2"]);
    assert_eq!(member_names.1, ["p1", "p2x"]);
}

#[test]
fn an_unknown_ingress_names_the_interface() {
    let mut query = FlowQuery::new("10.0.0.1".parse().unwrap());
    query.src = Some("10.0.0.2".parse().unwrap());
    query.iif = Some("nosuchif0".into());
    let error = KernelBackend::new().trace(&query).unwrap_err();
    assert!(
        matches!(error, TraceError::UnknownInterface { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("nosuchif0"));
}
