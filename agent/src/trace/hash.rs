//! What the kernel's multipath hash reads for a flow, and when a real packet
//! can be hashed otherwise than the route lookup a trace asks: the `hash`
//! section of trace and paths answers, so an answer says how exact it is
//! instead of claiming more than the kernel promises.
//!
//! What the kernel does (net/ipv4/route.c `fib_multipath_hash`,
//! net/ipv6/route.c `rt6_multipath_hash`; Linux 6.18, and checked by sending
//! real datagrams through a namespace lab and comparing the member each left
//! by with `ip route get`):
//!
//! - A locally originated flow is hashed from its flow key (`flowi4` /
//!   `flowi6`) before any packet exists, exactly as the route lookup a trace
//!   asks. An IPv6 sender's automatic flow label (`ip6_make_flowlabel`) is
//!   set after that lookup, so it does not move the flow. Exact under every
//!   policy, both families.
//! - A forwarded flow is hashed from the packet (`skb`). IPv4 route lookups
//!   with an input interface build such a packet (`inet_rtm_getroute`), so
//!   policies 0, 2 and 3 agree with real packets. IPv6 lookups hash the flow
//!   key instead (`inet6_rtm_getroute` passes no skb), which agrees under
//!   policies 0, 1 and 2 when the key holds what the packet does.
//! - Policy 1, both families: a forwarded packet that already carries an L4
//!   hash (`skb->l4_hash`) is forwarded on that hash (`skb_get_hash_raw`),
//!   not on its 5-tuple. Packets get one from a NIC's receive hash (drivers
//!   set `PKT_HASH_TYPE_L4` from RSS), from RPS/RFS hashing them on receive
//!   (`get_rps_cpu` calls `skb_get_hash`), or from a sender on the same host
//!   whose skb crosses a veth with its hash: a connected socket's
//!   `sk_txhash`, or an IPv6 datagram whose automatic flow label was
//!   computed (`skb_get_hash_flowi6`). Measured: 40 of 40 flows agree with
//!   `ip route get` when the packets carry no hash; about a quarter (the
//!   chance of landing on the same member anyway) with RPS on the ingress,
//!   with a connected IPv4 sender, or with an IPv6 sender's automatic labels.
//!   Policies 0, 2 and 3 never take the packet's hash.
//! - IPv6 policies 0 and 2 hash the flow label (`ip6_multipath_l3_keys`),
//!   which the sender picks: Linux sets one per flow by default
//!   (`net.ipv6.auto_flowlabels`). A lookup without a label hashes label 0;
//!   `RTA_FLOWLABEL` in the lookup (`--flowlabel`) hashes the packet's:
//!   measured, 20 of 20 labelled flows agree under policy 0. Under policy 2
//!   the forwarding path takes the label from the flow dissector, which
//!   keeps it in host byte order (`key_tags->flow_label = ntohl(..)`), while
//!   the lookup hashes it as on the wire, so only label 0 agrees (4 of 20
//!   labelled flows did, chance). The same holds under policy 0 when fib
//!   rules match on ports or protocol (`fib6_rules_early_flow_dissect`).
//!   A flow the switch originates is looked up with its socket's label (0
//!   unless the application sets one); the automatic label comes later.
//!   Policy 1 does not hash the label; policy 3 only with field 0x0008.
//! - IPv6 policy 3, forwarded: forwarding hashes the packet
//!   (`rt6_multipath_custom_hash_skb`, which mixes the outer fields' hash
//!   with an inner one through `jhash_2words`) while a route lookup hashes
//!   the flow key alone (`rt6_multipath_custom_hash_fl6`), so the kernel's
//!   own lookup does not predict forwarded packets: 8 of 40 agreed, chance.
//! - ICMP errors are hashed on the header of the packet they quote
//!   (`ip_multipath_l3_keys`, `ip6_multipath_l3_keys`) under policies 0 and 2.
//! - Policy 2 and policy 3's inner fields hash the inner header of tunnelled
//!   packets, which a 5-tuple cannot name.

pub use hopwatch_wire::trace::HashInfo;

/// The flow label's field in `fib_multipath_hash_fields`.
const FIELD_FLOWLABEL: u32 = 0x0008;

/// The fields of `fib_multipath_hash_fields`, bit by bit (ip-sysctl.rst).
const FIELDS: [&str; 12] = [
    "src",
    "dst",
    "proto",
    "flowlabel",
    "sport",
    "dport",
    "inner_src",
    "inner_dst",
    "inner_proto",
    "inner_flowlabel",
    "inner_sport",
    "inner_dport",
];

/// What a flow looks like to the hash: its family, whether it is forwarded
/// (arrives on an interface) or originated, its protocol and flow label.
#[derive(Debug, Clone, Copy)]
pub struct HashedFlow {
    pub ipv4: bool,
    pub forwarded: bool,
    pub proto: Option<u8>,
    pub flowlabel: Option<u32>,
}

/// The hash section for `flow` under `policy` (and `fields` for policy 3).
pub fn describe(flow: HashedFlow, policy: u32, fields: Option<u32>) -> HashInfo {
    let family = if flow.ipv4 { "ipv4" } else { "ipv6" };
    let l3: &[&str] = if flow.ipv4 {
        &["src", "dst"]
    } else {
        &["src", "dst", "flowlabel", "proto"]
    };
    let inputs: Vec<String> = match policy {
        0 | 2 => l3.iter().map(|s| s.to_string()).collect(),
        1 => ["src", "dst", "proto", "sport", "dport"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        3 => {
            let mask = fields.unwrap_or(0);
            FIELDS
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                // IPv4 has no flow label of its own to hash.
                .filter(|(_, name)| !(flow.ipv4 && **name == "flowlabel"))
                .map(|(_, name)| name.to_string())
                .collect()
        }
        _ => Vec::new(),
    };
    let mut info = HashInfo {
        family: family.into(),
        setting: format!("net.{family}.fib_multipath_hash_policy"),
        policy,
        fields: (policy == 3).then_some(fields).flatten(),
        inputs,
        flowlabel: None,
        exact: true,
        caveat: None,
    };
    if info.hashes_flowlabel() {
        info.flowlabel = Some(flow.flowlabel.unwrap_or(0));
    }
    let mut caveats: Vec<String> = Vec::new();
    if policy > 3 {
        caveats.push(format!(
            "policy {policy} is unknown to hopwatch; the member is the kernel's answer to the lookup, the inputs are not known"
        ));
    }
    if flow.forwarded {
        if policy == 1 {
            caveats.push(
                "a forwarded packet that already carries an L4 hash is forwarded on that hash, not on its 5-tuple: a NIC's receive hash (RSS), one computed for RPS/RFS, or a sender's socket hash carried over a veth (an IPv6 sender with automatic flow labels computes one); such packets may leave by another member".into(),
            );
        }
        if !flow.ipv4 && policy == 3 {
            caveats.push(
                "under policy 3 the kernel hashes forwarded IPv6 packets (rt6_multipath_custom_hash_skb) otherwise than its route lookup (rt6_multipath_custom_hash_fl6), so real packets may leave by another member than this lookup's, whatever fields are set".into(),
            );
        }
        if !flow.ipv4 && policy == 2 && flow.flowlabel.is_some_and(|l| l != 0) {
            caveats.push(
                "under policy 2 the kernel hashes a forwarded packet's flow label in host byte order (from the flow dissector) and the lookup's as on the wire, so only label 0 is hashed alike".into(),
            );
        }
        if info.hashes_flowlabel() && flow.flowlabel.is_none() {
            caveats.push(
                "the flow label is hashed and the sender picks it (Linux senders label each flow by default, net.ipv6.auto_flowlabels); this answer is for label 0: give --flowlabel with the label the packets carry".into(),
            );
        }
        if policy == 2 || fields.is_some_and(|f| policy == 3 && f & 0x0fc0 != 0) {
            caveats.push(
                "tunnelled packets are hashed on their inner header, which this lookup does not carry".into(),
            );
        }
    }
    if matches!(flow.proto, Some(1 | 58)) && matches!(policy, 0 | 2) {
        caveats.push(
            "an ICMP error is hashed on the header of the packet it quotes, not on its own".into(),
        );
    }
    // An unknown policy or an ICMP error leaves the lookup's member right
    // for the flow as asked; these may move a real packet elsewhere.
    let moved = flow.forwarded
        && (policy == 1
            || (!flow.ipv4 && policy == 3)
            || (!flow.ipv4 && policy == 2 && flow.flowlabel.is_some_and(|l| l != 0))
            || (info.hashes_flowlabel() && flow.flowlabel.is_none()));
    info.exact = !moved && policy <= 3;
    if !caveats.is_empty() {
        info.caveat = Some(caveats.join("; "));
    }
    info
}

/// Whether `--flowlabel` means anything under `policy`/`fields` for IPv6.
pub fn flowlabel_hashed(policy: u32, fields: Option<u32>) -> bool {
    match policy {
        0 | 2 => true,
        3 => fields.is_some_and(|f| f & FIELD_FLOWLABEL != 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(ipv4: bool, forwarded: bool) -> HashedFlow {
        HashedFlow {
            ipv4,
            forwarded,
            proto: Some(17),
            flowlabel: None,
        }
    }

    #[test]
    fn local_flows_are_exact_under_every_policy() {
        for ipv4 in [true, false] {
            for policy in 0..=3 {
                let info = describe(flow(ipv4, false), policy, Some(0x37));
                assert!(info.exact, "{info:?}");
                assert_eq!(info.caveat, None, "{info:?}");
            }
        }
    }

    #[test]
    fn inputs_follow_the_policy() {
        assert_eq!(describe(flow(true, true), 0, None).inputs, ["src", "dst"]);
        assert_eq!(
            describe(flow(false, true), 0, None).inputs,
            ["src", "dst", "flowlabel", "proto"]
        );
        assert_eq!(
            describe(flow(true, true), 1, None).inputs,
            ["src", "dst", "proto", "sport", "dport"]
        );
        let custom = describe(flow(true, false), 3, Some(0x3f));
        assert_eq!(
            custom.inputs,
            ["src", "dst", "proto", "sport", "dport"],
            "IPv4 has no flow label"
        );
        assert_eq!(custom.fields, Some(0x3f));
        assert_eq!(
            describe(flow(false, false), 3, Some(0x0b)).inputs,
            ["src", "dst", "flowlabel"]
        );
    }

    #[test]
    fn forwarded_flows_carry_the_caveats_measured() {
        // IPv4 policies 0, 2 (no tunnel) and 3: the packet is hashed as the
        // lookup's packet is.
        for policy in [0, 3] {
            let info = describe(flow(true, true), policy, Some(0x37));
            assert!(info.exact && info.caveat.is_none(), "{info:?}");
        }
        let l4 = describe(flow(true, true), 1, None);
        assert!(!l4.exact);
        assert!(l4.caveat.as_deref().unwrap().contains("L4 hash"), "{l4:?}");
        let label = describe(flow(false, true), 0, None);
        assert!(!label.exact);
        assert_eq!(label.flowlabel, Some(0));
        assert!(label.caveat.as_deref().unwrap().contains("--flowlabel"));
        let given = describe(
            HashedFlow {
                flowlabel: Some(0x12345),
                ..flow(false, true)
            },
            0,
            None,
        );
        assert!(given.exact, "{given:?}");
        assert_eq!(given.flowlabel, Some(0x12345));
        let swapped = describe(
            HashedFlow {
                flowlabel: Some(0x12345),
                ..flow(false, true)
            },
            2,
            None,
        );
        assert!(!swapped.exact);
        assert!(swapped.caveat.as_deref().unwrap().contains("byte order"));
        let custom = describe(flow(false, true), 3, Some(0x37));
        assert!(!custom.exact);
        assert!(
            custom
                .caveat
                .as_deref()
                .unwrap()
                .contains("custom_hash_skb")
        );
    }

    #[test]
    fn flow_labels_matter_only_where_hashed() {
        assert!(flowlabel_hashed(0, None));
        assert!(flowlabel_hashed(2, None));
        assert!(!flowlabel_hashed(1, None));
        assert!(!flowlabel_hashed(3, Some(0x37)));
        assert!(flowlabel_hashed(3, Some(0x08)));
    }
}
