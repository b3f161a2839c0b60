//! Network namespace labs for the flow-trace tests — an ECMP "switch" with four
//! peers and a client, a small router for drops — and the two answers the
//! tests compare inside them: `hopwatch trace` and the kernel's own
//! `ip route get`.

use crate::util::Netns;
use serde_json::Value;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Joins `a` and `b` with a veth pair, `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Adds an address; IPv6 ones skip duplicate address detection, which would
/// leave them tentative (unusable) for a second or more.
pub fn addr(ns: &Netns, dev: &str, cidr: &str) {
    if cidr.contains(':') {
        ns.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
    } else {
        ns.ip(&["addr", "add", cidr, "dev", dev]);
    }
}

/// Undoes `Netns::new`'s IPv6 switch-off; must run before links are created
/// so that they inherit it.
pub fn enable_ipv6(ns: &Netns) {
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "0");
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0");
}

pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not an address: {e}"))
}

/// A small deterministic PRNG (xorshift64*), so a failing flow can be
/// replayed from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn port(&mut self) -> u16 {
        1 + self.below(65535) as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    pub fn number(self) -> u64 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// One 5-tuple, locally originated unless `iif` is set.
#[derive(Clone, Debug)]
pub struct Flow {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub iif: Option<String>,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
}

impl Flow {
    /// The arguments of `hopwatch trace` for this flow, without `--json`.
    pub fn hopwatch_args(&self) -> Vec<String> {
        let mut args = vec!["--dst".to_string(), self.dst.to_string()];
        if let Some(src) = self.src {
            args.extend(["--src".to_string(), src.to_string()]);
        }
        if let Some(iif) = &self.iif {
            args.extend(["--iif".to_string(), iif.clone()]);
        }
        args.extend([
            "--proto".to_string(),
            self.proto.name().to_string(),
            "--sport".to_string(),
            self.sport.to_string(),
            "--dport".to_string(),
            self.dport.to_string(),
        ]);
        args
    }

    /// The same question for iproute2: `route get DST [from SRC] [iif IF]
    /// ipproto P sport N dport M`.
    pub fn route_get_line(&self) -> String {
        let mut line = format!("route get {}", self.dst);
        if let Some(src) = self.src {
            line += &format!(" from {src}");
        }
        if let Some(iif) = &self.iif {
            line += &format!(" iif {iif}");
        }
        line += &format!(
            " ipproto {} sport {} dport {}",
            self.proto.name(),
            self.sport,
            self.dport
        );
        line
    }
}

/// Where a flow leaves: the gateway (none when directly connected) and the
/// interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Egress {
    pub next_hop: Option<IpAddr>,
    pub interface: String,
}

impl std::fmt::Display for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.next_hop {
            Some(gw) => write!(f, "via {gw} dev {}", self.interface),
            None => write!(f, "dev {} (connected)", self.interface),
        }
    }
}

/// Reads one `ip -j route get` answer (`[{"gateway":..,"dev":..}]`).
fn egress_of_ip_json(line: &str) -> Egress {
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("`ip -j route get` printed no JSON ({e}): {line}"));
    let route = &value[0];
    Egress {
        next_hop: route["gateway"].as_str().map(ip),
        interface: route["dev"]
            .as_str()
            .unwrap_or_else(|| panic!("no dev in {line}"))
            .to_string(),
    }
}

/// The kernel's answer for `flow` in `ns`, or the error `ip` printed.
pub fn route_get(ns: &Netns, flow: &Flow) -> Result<Egress, String> {
    let line = flow.route_get_line();
    let out = Command::new("ip")
        .args(["-j", "-n", &ns.name])
        .args(line.split_whitespace())
        .output()
        .expect("running ip");
    if out.status.success() {
        Ok(egress_of_ip_json(
            String::from_utf8_lossy(&out.stdout).trim(),
        ))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The kernel's answers for many flows through one `ip -batch -` process.
pub fn route_get_batch(ns: &Netns, flows: &[Flow]) -> Vec<Egress> {
    let mut input = String::new();
    for flow in flows {
        input += &flow.route_get_line();
        input.push('\n');
    }
    let mut child = Command::new("ip")
        .args(["-j", "-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ip -batch");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("feeding ip -batch");
    assert!(
        out.status.success(),
        "ip -batch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Egress> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(egress_of_ip_json)
        .collect();
    assert_eq!(answers.len(), flows.len(), "one answer per `route get`");
    answers
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hopwatch");

/// `hopwatch ARGS` run inside `ns` (its own /sys, as on the switch).
pub fn hopwatch_in(ns: &Netns, args: &[String]) -> Output {
    ns.command(BIN)
        .args(args)
        .output()
        .expect("running hopwatch")
}

/// Parses a command's JSON answer after checking that it exited 0.
pub fn json_answer(what: &str, out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{what} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `hopwatch trace --json ARGS` inside `ns`: its answer, exit 0 checked.
pub fn trace(ns: &Netns, args: &[String]) -> Value {
    let mut full = vec!["trace".to_string(), "--json".to_string()];
    full.extend_from_slice(args);
    json_answer(
        &format!("hopwatch {} (in {})", full.join(" "), ns.name),
        &hopwatch_in(ns, &full),
    )
}

/// The egress a `hopwatch trace` answer names at its top level.
pub fn trace_egress(answer: &Value) -> Egress {
    Egress {
        next_hop: answer["next_hop"].as_str().map(ip),
        interface: answer["egress_interface"]
            .as_str()
            .unwrap_or_else(|| panic!("no egress_interface in {answer:#}"))
            .to_string(),
    }
}

/// Turns `&str` arguments into the owned form the runners take.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The neighbour entry for `addr` on `dev`: (NUD state as `ip` spells it,
/// link-layer address), or `None` when there is no entry.
pub fn neigh(ns: &Netns, addr: &str, dev: &str) -> Option<(String, Option<String>)> {
    let out = ns.ip(&["-j", "neigh", "show", addr, "dev", dev]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let entry = value.as_array()?.first()?;
    let state = entry["state"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(Value::as_str)
        .unwrap_or("NONE")
        .to_string();
    Some((state, entry["lladdr"].as_str().map(str::to_string)))
}

/// Polls the neighbour entry until its state is one of `want`.
pub fn wait_neigh(ns: &Netns, addr: &str, dev: &str, want: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let entry = neigh(ns, addr, dev);
        if let Some((state, _)) = &entry
            && want.contains(&state.as_str())
        {
            return state.clone();
        }
        assert!(
            Instant::now() < deadline,
            "neighbour {addr} on {dev} in {} never reached {want:?}; last {entry:?}",
            ns.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The MAC address of `dev` in `ns`.
pub fn mac(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-j", "link", "show", "dev", dev]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    value[0]["address"].as_str().unwrap().to_lowercase()
}

/// Polls until `dev` in `ns` has lost its carrier.
pub fn wait_no_carrier(ns: &Netns, dev: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let out = ns.ip(&["-j", "link", "show", "dev", dev]);
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        let flags = value[0]["flags"].as_array().cloned().unwrap_or_default();
        if flags.iter().any(|f| f == "NO-CARRIER") {
            return;
        }
        assert!(Instant::now() < deadline, "{dev} kept its carrier: {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one UDP datagram from a socket inside `ns`; `from` may pin the
/// source address and port so the real packet is the flow a test traced.
/// The socket stays unconnected: a connected one gets a socket hash that
/// rides on its packets, and a switch under hash policy 1 would forward on
/// that instead of the 5-tuple (see `EcmpLab::new`).
pub fn send_udp(ns: &Netns, from: SocketAddr, to: SocketAddr) {
    ns.within(move || {
        let socket = std::net::UdpSocket::bind(from).expect("bind in namespace");
        socket.send_to(b"hopwatch trace test", to).expect("send");
    });
}

/// Transmit counters of `dev` in `ns`: (packets, dropped).
pub fn tx_counters(ns: &Netns, dev: &str) -> (u64, u64) {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", dev]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tx = &value[0]["stats64"]["tx"];
    (
        tx["packets"].as_u64().unwrap_or(0),
        tx["dropped"].as_u64().unwrap_or(0),
    )
}

/// Sends `count` UDP datagrams of one flow from `ns`. Without `flowlabel`
/// they leave an unconnected UDP socket (see `send_udp`); with it they are
/// written whole, IPv6 header and all, through a raw socket, so they carry
/// exactly that flow label and no hash of the sender's.
pub fn send_udp_burst(
    ns: &Netns,
    from: SocketAddr,
    to: SocketAddr,
    count: usize,
    flowlabel: Option<u32>,
) {
    ns.within(move || match (flowlabel, from, to) {
        (Some(label), SocketAddr::V6(from), SocketAddr::V6(to)) => {
            use nix::sys::socket::{
                AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, sendto,
                socket,
            };
            use std::os::fd::AsRawFd;
            // IPPROTO_RAW implies IPV6_HDRINCL: the kernel sends the header given.
            let fd = socket(
                AddressFamily::Inet6,
                SockType::Raw,
                SockFlag::empty(),
                SockProtocol::Raw,
            )
            .expect("raw IPv6 socket");
            let packet = udp6_packet(from, to, label, b"hopwatch hash test");
            let address = SockaddrIn6::from(std::net::SocketAddrV6::new(*to.ip(), 0, 0, 0));
            for _ in 0..count {
                sendto(fd.as_raw_fd(), &packet, &address, MsgFlags::empty()).expect("raw send");
            }
        }
        _ => {
            let socket = std::net::UdpSocket::bind(from).expect("bind in namespace");
            for _ in 0..count {
                socket.send_to(b"hopwatch hash test", to).expect("send");
            }
        }
    });
}

/// An IPv6 header with flow label `label` and a UDP datagram with its
/// checksum, as a sender would put them on the wire.
fn udp6_packet(
    from: std::net::SocketAddrV6,
    to: std::net::SocketAddrV6,
    label: u32,
    payload: &[u8],
) -> Vec<u8> {
    let udp_length = (8 + payload.len()) as u16;
    let mut packet = Vec::with_capacity(40 + usize::from(udp_length));
    packet.extend_from_slice(&((6u32 << 28) | (label & 0xF_FFFF)).to_be_bytes());
    packet.extend_from_slice(&udp_length.to_be_bytes());
    packet.extend_from_slice(&[17, 64]);
    packet.extend_from_slice(&from.ip().octets());
    packet.extend_from_slice(&to.ip().octets());
    let mut udp = Vec::with_capacity(usize::from(udp_length));
    udp.extend_from_slice(&from.port().to_be_bytes());
    udp.extend_from_slice(&to.port().to_be_bytes());
    udp.extend_from_slice(&udp_length.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    // The checksum covers a pseudo-header of addresses, length and protocol.
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&from.ip().octets());
    add(&to.ip().octets());
    add(&u32::from(udp_length).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(&udp);
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    let checksum = match !(sum as u16) {
        0 => 0xFFFF,
        c => c,
    };
    udp[6..8].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(&udp);
    packet
}

/// One ECMP member of the lab switch: its interface, gateways and weight.
pub struct Member {
    pub dev: String,
    pub gw4: IpAddr,
    pub gw6: IpAddr,
    pub weight: u64,
    pub peer: Netns,
    pub peer_if: String,
}

/// A "switch" namespace with a 4-way multipath route (one member of weight
/// 2) to four peer namespaces, for IPv4 and IPv6, forwarding on, and a client
/// namespace behind the ingress interface for transit flows.
pub struct EcmpLab {
    pub switch: Netns,
    pub client: Netns,
    pub members: Vec<Member>,
}

impl EcmpLab {
    pub const PREFIX4: &str = "10.99.0.0/16";
    pub const PREFIX6: &str = "2001:db8:99::/64";
    pub const INGRESS: &str = "in0";
    pub const CLIENT4: &str = "10.50.0.2";
    pub const CLIENT6: &str = "2001:db8:50::2";
    pub const WEIGHTS: [u64; 4] = [1, 2, 1, 1];

    /// Builds the lab under `fib_multipath_hash_policy` = `policy` for both
    /// families (0: addresses only, 1: the L4 5-tuple).
    pub fn new(policy: u8) -> EcmpLab {
        let switch = Netns::new("hwsw");
        let client = Netns::new("hwcl");
        for ns in [&switch, &client] {
            enable_ipv6(ns);
        }
        switch.sysctl("net.ipv4.ip_forward", "1");
        switch.sysctl("net.ipv6.conf.all.forwarding", "1");
        switch.sysctl("net.ipv4.fib_multipath_hash_policy", &policy.to_string());
        switch.sysctl("net.ipv6.fib_multipath_hash_policy", &policy.to_string());
        // The client's packets must be hashed by the switch from their
        // headers, as `ip route get` and `hopwatch trace` hash them. A Linux
        // sender with automatic flow labels (the default) computes a flow
        // hash for each IPv6 datagram (`ip6_make_flowlabel` calls
        // `skb_get_hash_flowi6`, which marks it an L4 hash); the skb keeps
        // it across the veth into the switch, and under policy 1 the
        // switch's `rt6_multipath_hash` takes that hash as it is
        // (`skb->l4_hash`) instead of hashing the 5-tuple; under policy 0 the
        // label itself is hashed. Either way the real datagram could leave
        // by another member than the traced one. With automatic labels off
        // the client sends label 0 and no hash. IPv4 needs nothing: the
        // client's sockets are unconnected (`send_udp`), so they carry no
        // socket hash (`sk_txhash`, set on connect), and the veth runs no
        // RPS that would hash on receive. `multipath::root_netns_trace_packet_hash_caveat`
        // shows the other case.
        client.sysctl("net.ipv6.auto_flowlabels", "0");

        veth(&switch, Self::INGRESS, &client, "c0");
        addr(&switch, Self::INGRESS, "10.50.0.1/24");
        addr(&switch, Self::INGRESS, "2001:db8:50::1/64");
        addr(&client, "c0", &format!("{}/24", Self::CLIENT4));
        addr(&client, "c0", &format!("{}/64", Self::CLIENT6));
        client.ip(&["route", "add", "default", "via", "10.50.0.1"]);
        client.ip(&["-6", "route", "add", "default", "via", "2001:db8:50::1"]);

        let mut members = Vec::new();
        for (i, weight) in Self::WEIGHTS.into_iter().enumerate() {
            let peer = Netns::new("hwpe");
            enable_ipv6(&peer);
            let dev = format!("m{i}");
            let peer_if = format!("p{i}");
            veth(&switch, &dev, &peer, &peer_if);
            addr(&switch, &dev, &format!("10.60.{i}.1/24"));
            addr(&switch, &dev, &format!("2001:db8:60:{i}::1/64"));
            addr(&peer, &peer_if, &format!("10.60.{i}.2/24"));
            addr(&peer, &peer_if, &format!("2001:db8:60:{i}::2/64"));
            members.push(Member {
                dev,
                gw4: ip(&format!("10.60.{i}.2")),
                gw6: ip(&format!("2001:db8:60:{i}::2")),
                weight,
                peer,
                peer_if,
            });
        }
        for (family, prefix) in [("-4", Self::PREFIX4), ("-6", Self::PREFIX6)] {
            let mut route = vec![
                family.to_string(),
                "route".into(),
                "add".into(),
                prefix.into(),
            ];
            for m in &members {
                let gw = if family == "-4" { m.gw4 } else { m.gw6 };
                route.extend([
                    "nexthop".into(),
                    "via".into(),
                    gw.to_string(),
                    "dev".into(),
                    m.dev.clone(),
                    "weight".into(),
                    m.weight.to_string(),
                ]);
            }
            let route: Vec<&str> = route.iter().map(String::as_str).collect();
            switch.ip(&route);
        }
        EcmpLab {
            switch,
            client,
            members,
        }
    }

    /// The switch's own addresses, usable as the source of a local flow.
    pub fn local_sources(&self, v6: bool) -> Vec<IpAddr> {
        let mut sources = vec![ip(if v6 { "2001:db8:50::1" } else { "10.50.0.1" })];
        for i in 0..self.members.len() {
            sources.push(ip(&if v6 {
                format!("2001:db8:60:{i}::1")
            } else {
                format!("10.60.{i}.1")
            }));
        }
        sources
    }

    /// A random destination under the multipath prefix.
    pub fn destination(rng: &mut Rng, v6: bool) -> IpAddr {
        if v6 {
            ip(&format!(
                "2001:db8:99::{:x}:{:x}",
                rng.below(0xffff),
                1 + rng.below(0xfffe)
            ))
        } else {
            ip(&format!("10.99.{}.{}", rng.below(256), 1 + rng.below(254)))
        }
    }

    /// A random client address on the ingress subnet, for transit flows.
    pub fn client_source(rng: &mut Rng, v6: bool) -> IpAddr {
        if v6 {
            ip(&format!("2001:db8:50::{:x}", 2 + rng.below(0xfff0)))
        } else {
            ip(&format!("10.50.0.{}", 2 + rng.below(250)))
        }
    }

    /// The member whose gateway is `gw`.
    pub fn member(&self, gw: IpAddr) -> &Member {
        self.members
            .iter()
            .find(|m| m.gw4 == gw || m.gw6 == gw)
            .unwrap_or_else(|| panic!("{gw} is no member's gateway"))
    }
}

/// A router namespace between a client (ingress `i0`, 10.81.0.0/24) and a
/// peer (egress `x0`, 10.80.0.0/24), forwarding on and no default route, to
/// which each drop test adds its own routes and settings.
pub struct Router {
    pub ns: Netns,
    /// Kept for the namespace's lifetime; the tests only name its address.
    _client: Netns,
    pub peer: Netns,
}

impl Router {
    pub const INGRESS: &str = "i0";
    pub const EGRESS: &str = "x0";
    pub const CLIENT: &str = "10.81.0.2";
    pub const OWN: &str = "10.80.0.1";
    pub const PEER: &str = "10.80.0.2";

    pub fn new() -> Router {
        let ns = Netns::new("hwrt");
        let client = Netns::new("hwrc");
        let peer = Netns::new("hwrp");
        ns.sysctl("net.ipv4.ip_forward", "1");
        veth(&ns, Self::INGRESS, &client, "c0");
        veth(&ns, Self::EGRESS, &peer, "y0");
        addr(&ns, Self::INGRESS, "10.81.0.1/24");
        addr(&client, "c0", &format!("{}/24", Self::CLIENT));
        addr(&ns, Self::EGRESS, &format!("{}/24", Self::OWN));
        addr(&peer, "y0", &format!("{}/24", Self::PEER));
        client.ip(&["route", "add", "default", "via", "10.81.0.1"]);
        Router {
            ns,
            _client: client,
            peer,
        }
    }

    /// A second link from the router to its peer: `dev` with `.1` of
    /// `subnet` (e.g. "10.82.0"), the peer's `peer_if` with `.2`.
    pub fn add_link(&self, dev: &str, peer_if: &str, subnet: &str) {
        veth(&self.ns, dev, &self.peer, peer_if);
        addr(&self.ns, dev, &format!("{subnet}.1/24"));
        addr(&self.peer, peer_if, &format!("{subnet}.2/24"));
    }

    /// A UDP flow the router originates.
    pub fn local(dst: &str) -> Flow {
        Flow {
            dst: ip(dst),
            src: None,
            iif: None,
            proto: Proto::Udp,
            sport: 40000,
            dport: 9,
        }
    }

    /// A UDP flow from the client arriving on the ingress interface.
    pub fn transit(dst: &str) -> Flow {
        Flow {
            src: Some(ip(Self::CLIENT)),
            iif: Some(Self::INGRESS.to_string()),
            ..Self::local(dst)
        }
    }

    pub fn trace(&self, flow: &Flow) -> Value {
        trace(&self.ns, &flow.hopwatch_args())
    }
}

/// Runs `program ARGS` as the unprivileged user `nobody`.
pub fn as_nobody(program: &str, args: &[String]) -> Output {
    let mut cmd = if Command::new("setpriv").arg("--version").output().is_ok() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        cmd
    } else {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]);
        cmd
    };
    cmd.arg(program).args(args);
    cmd.output().expect("running as nobody")
}

/// Runs `hopwatch ARGS` in the test's own (host) namespace.
pub fn hopwatch_host(args: &[String]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    cmd.output().expect("running hopwatch")
}
