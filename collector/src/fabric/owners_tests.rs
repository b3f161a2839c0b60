//! The owners map against the reports agents send: who owns an address,
//! who hangs a subnet, what a report replaces, and what the store's copy
//! may not.

use super::*;
use hopwatch_wire::event::InterfaceAddress;

fn report(vrf: &str, entries: &[(&str, &str)]) -> VrfAddresses {
    VrfAddresses {
        vrf: vrf.into(),
        addresses: entries
            .iter()
            .map(|(interface, address)| InterfaceAddress {
                interface: (*interface).into(),
                address: (*address).into(),
            })
            .collect(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn owner(agent: &str, vrf: &str, interface: &str, address: &str) -> Owner {
    Owner {
        agent: agent.into(),
        vrf: vrf.into(),
        interface: interface.into(),
        address: address.into(),
    }
}

#[test]
fn parses_addresses_with_and_without_a_prefix_and_refuses_the_rest() {
    let p = parse("10.1.2.3/24").unwrap();
    assert_eq!(
        (p.address, p.prefix, p.network),
        (ip("10.1.2.3"), 24, ip("10.1.2.0"))
    );
    let p = parse("2001:db8::1:2/64").unwrap();
    assert_eq!(p.network, ip("2001:db8::"));
    let p = parse("fe80::1%swp1/64").unwrap();
    assert_eq!((p.address, p.prefix), (ip("fe80::1"), 64));
    let p = parse("10.0.0.9").unwrap();
    assert_eq!((p.prefix, p.network), (32, ip("10.0.0.9")));
    assert_eq!(parse("0.0.0.0/0").unwrap().network, ip("0.0.0.0"));
    assert_eq!(parse("10.9.8.7/0").unwrap().network, ip("0.0.0.0"));
    assert_eq!(parse("::1/128").unwrap().network, ip("::1"));
    for bad in [
        "",
        "10.0.0.1/33",
        "::1/129",
        "10.0.0/24",
        "x/24",
        "10.0.0.1/",
        "10.0.0.1/-1",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_store_never_replaces_the_addresses_of_an_agent_connected_here() {
    let owners = Owners::new();
    let now = [report("default", &[("swp1", "10.1.0.1/31")])];
    let stored = [report("default", &[("swp1", "10.7.0.1/31")])];
    owners.connected("spine1", &now);
    owners.connected("spine1", &now);
    owners.update_stored("spine1", &[]);
    owners.update_stored("spine1", &stored);
    assert_eq!(
        owners.owner("default", ip("10.1.0.1")).map(|o| o.agent),
        Some("spine1".into())
    );
    // Two connections (a reconnect overlapping the old one): both must end.
    owners.disconnected("spine1");
    owners.update_stored("spine1", &stored);
    assert!(owners.owner("default", ip("10.7.0.1")).is_none());
    owners.disconnected("spine1");
    assert!(
        owners.owner("default", ip("10.1.0.1")).is_some(),
        "addresses stay after a disconnect"
    );
    owners.update_stored("spine1", &stored);
    assert_eq!(
        owners.owner("default", ip("10.7.0.1")).map(|o| o.agent),
        Some("spine1".into())
    );
    assert!(owners.owner("default", ip("10.1.0.1")).is_none());
}

#[test]
fn owner_is_the_one_agent_with_the_address_in_that_vrf() {
    let owners = Owners::new();
    owners.update(
        "leaf1",
        &[
            report("default", &[("swp1", "10.1.0.1/31"), ("lo", "10.0.0.1/32")]),
            report("blue", &[("swp9", "10.1.0.1/31")]),
        ],
    );
    owners.update("spine1", &[report("default", &[("swp1", "10.1.0.0/31")])]);
    assert_eq!(
        owners.owner("default", ip("10.1.0.1")),
        Some(owner("leaf1", "default", "swp1", "10.1.0.1/31"))
    );
    assert_eq!(
        owners.owner("blue", ip("10.1.0.1")),
        Some(owner("leaf1", "blue", "swp9", "10.1.0.1/31"))
    );
    assert_eq!(
        owners.owner("default", ip("10.1.0.0")),
        Some(owner("spine1", "default", "swp1", "10.1.0.0/31"))
    );
    assert_eq!(owners.owner("default", ip("10.1.0.2")), None);
    assert_eq!(owners.owner("red", ip("10.1.0.1")), None);
    assert_eq!(owners.agents(), vec!["leaf1".to_string(), "spine1".into()]);
}

#[test]
fn a_new_report_replaces_the_old_one_whole() {
    let owners = Owners::new();
    owners.update("leaf1", &[report("default", &[("swp1", "10.1.0.1/31")])]);
    owners.update("leaf1", &[report("default", &[("swp1", "10.7.0.1/31")])]);
    assert_eq!(owners.owner("default", ip("10.1.0.1")), None);
    assert_eq!(owners.attached("default", ip("10.1.0.0")), vec![]);
    assert_eq!(
        owners.owner("default", ip("10.7.0.1")).map(|o| o.agent),
        Some("leaf1".into())
    );
    assert_eq!(owners.attached("default", ip("10.7.0.0")).len(), 1);
    // No addresses left: still a known agent, owning nothing.
    owners.update("leaf1", &[]);
    assert_eq!(owners.owner("default", ip("10.7.0.1")), None);
    assert_eq!(owners.agents(), vec!["leaf1".to_string()]);
    let index = owners.index.read().unwrap();
    assert!(index.vrfs.is_empty(), "{:?}", index.vrfs);
}

#[test]
fn an_address_several_agents_hold_has_no_single_owner() {
    let owners = Owners::new();
    // The same link-local address on both spines, and an anycast
    // gateway on both leaves; one link-local address only one has.
    owners.update(
        "spine1",
        &[report(
            "default",
            &[
                ("swp1", "fe80::1/64"),
                ("swp2", "fe80::a8c1:abff:fe01:1/64"),
            ],
        )],
    );
    owners.update("spine2", &[report("default", &[("swp1", "fe80::1/64")])]);
    owners.update("leaf1", &[report("default", &[("vlan10", "10.10.0.1/24")])]);
    owners.update("leaf2", &[report("default", &[("vlan10", "10.10.0.1/24")])]);
    assert_eq!(owners.owner("default", ip("fe80::1")), None);
    assert_eq!(owners.claims("default", ip("fe80::1")).len(), 2);
    assert_eq!(owners.owner("default", ip("10.10.0.1")), None);
    assert_eq!(
        owners.owner("default", ip("fe80::a8c1:abff:fe01:1")),
        Some(owner(
            "spine1",
            "default",
            "swp2",
            "fe80::a8c1:abff:fe01:1/64"
        ))
    );
    // Once spine2 drops it, spine1 alone holds it.
    owners.update("spine2", &[]);
    assert_eq!(
        owners.owner("default", ip("fe80::1")).map(|o| o.agent),
        Some("spine1".into())
    );
}

#[test]
fn one_agent_with_the_address_on_several_interfaces_names_the_first_that_is_not_a_loopback() {
    let owners = Owners::new();
    owners.update(
        "leaf1",
        &[report(
            "default",
            &[
                ("lo", "10.0.0.1/32"),
                ("swp1", "10.0.0.1/32"),
                ("swp2", "10.0.0.1/32"),
            ],
        )],
    );
    assert_eq!(
        owners.owner("default", ip("10.0.0.1")),
        Some(owner("leaf1", "default", "swp1", "10.0.0.1/32"))
    );
    owners.update(
        "spine1",
        &[report("default", &[("loopback0", "10.0.0.9/32")])],
    );
    assert_eq!(
        owners.owner("default", ip("10.0.0.9")).map(|o| o.interface),
        Some("loopback0".into())
    );
    assert!(is_loopback("lo") && is_loopback("Loopback0") && is_loopback("lo7"));
    assert!(!is_loopback("long-haul") && !is_loopback("swp1"));
}

#[test]
fn attached_lists_the_connected_subnets_longest_first_without_the_owner() {
    let owners = Owners::new();
    owners.update(
        "leaf1",
        &[report(
            "default",
            &[
                ("vlan10", "10.10.0.1/24"),
                ("swp1", "10.1.0.1/31"),
                ("eth0", "10.0.0.0/8"),
            ],
        )],
    );
    owners.update("leaf2", &[report("default", &[("vlan10", "10.10.0.2/24")])]);
    owners.update("spine1", &[report("default", &[("swp1", "10.1.0.0/31")])]);
    owners.update("mgmt", &[report("default", &[("eth0", "10.10.0.0/16")])]);
    let agents = |list: Vec<Owner>| list.into_iter().map(|o| o.agent).collect::<Vec<_>>();
    // A host on the leaves' VLAN: both leaves (/24, by name), then the
    // /16; leaf1's /8 is shorter than its /24, so it is not repeated.
    assert_eq!(
        agents(owners.attached("default", ip("10.10.0.50"))),
        ["leaf1", "leaf2", "mgmt"]
    );
    assert_eq!(
        owners.attached("default", ip("10.10.0.50"))[0],
        owner("leaf1", "default", "vlan10", "10.10.0.1/24")
    );
    // The address of leaf1 on the /31: leaf1 owns it, spine1 is the
    // neighbour.
    assert_eq!(
        agents(owners.attached("default", ip("10.1.0.1"))),
        ["spine1"]
    );
    assert_eq!(
        agents(owners.attached("default", ip("10.200.0.1"))),
        ["leaf1"]
    );
    assert!(owners.attached("default", ip("192.0.2.1")).is_empty());
    assert!(owners.attached("default", ip("2001:db8::1")).is_empty());
    assert!(owners.attached("blue", ip("10.10.0.50")).is_empty());
}

#[test]
fn link_local_subnets_and_host_prefixes_attach_nothing() {
    let owners = Owners::new();
    owners.update(
        "leaf1",
        &[report(
            "default",
            &[
                ("swp1", "fe80::1/64"),
                ("swp2", "169.254.0.1/16"),
                ("lo", "10.0.0.1/32"),
                ("swp3", "2001:db8:1::1/64"),
            ],
        )],
    );
    assert!(owners.attached("default", ip("fe80::2")).is_empty());
    assert!(owners.attached("default", ip("169.254.9.9")).is_empty());
    assert!(owners.attached("default", ip("10.0.0.1")).is_empty());
    assert_eq!(
        owners.attached("default", ip("2001:db8:1::99")),
        vec![owner("leaf1", "default", "swp3", "2001:db8:1::1/64")]
    );
}

#[test]
fn unreadable_addresses_are_skipped_and_the_rest_kept() {
    let owners = Owners::new();
    owners.update(
        "leaf1",
        &[report(
            "default",
            &[
                ("swp1", "10.1.0.1/40"),
                ("swp2", "bogus"),
                ("swp3", "10.3.0.1/24"),
            ],
        )],
    );
    assert_eq!(owners.owner("default", ip("10.1.0.1")), None);
    assert_eq!(
        owners.owner("default", ip("10.3.0.1")).map(|o| o.interface),
        Some("swp3".into())
    );
}

#[test]
fn loads_what_the_store_holds() {
    let fill = |db: &dyn Sql| {
        db.execute(
            "INSERT INTO agents (name, addresses) VALUES
                ('leaf1', '[{\"vrf\":\"default\",\"addresses\":[{\"interface\":\"swp1\",\"address\":\"10.1.0.1/31\"}]}]'),
                ('leaf2', '[]'),
                ('broken', 'not json')",
            &[],
        )?;
        Ok(())
    };
    let ask = |reads: &std::sync::Arc<crate::store::Reads>| {
        let owners = Owners::new();
        assert_eq!(reads.with(|db| owners.load(db)).unwrap(), 2);
        assert_eq!(owners.agents(), vec!["leaf1".to_string(), "leaf2".into()]);
        assert_eq!(
            owners.owner("default", ip("10.1.0.1")).map(|o| o.agent),
            Some("leaf1".into())
        );
    };
    crate::store::reads::fixture::on_both("owners_load", fill, ask);
}

/// The index against a plain scan of every report, over random fleets
/// that renumber as they go.
#[test]
fn agrees_with_a_scan_of_every_report() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let owners = Owners::new();
    let mut reports: BTreeMap<String, Vec<VrfAddresses>> = BTreeMap::new();
    for _ in 0..400 {
        let agent = format!("a{}", next(12));
        let vrfs = ["default", "blue"];
        let mut report = Vec::new();
        for vrf in vrfs.iter().take(1 + next(2) as usize) {
            let entries: Vec<InterfaceAddress> = (0..next(6))
                .map(|i| InterfaceAddress {
                    interface: format!("swp{}", next(3) + i),
                    address: format!(
                        "10.{}.{}.{}/{}",
                        next(2),
                        next(3),
                        next(8),
                        [8, 16, 24, 30, 31, 32][next(6) as usize]
                    ),
                })
                .collect();
            report.push(VrfAddresses {
                vrf: (*vrf).into(),
                addresses: entries,
            });
        }
        owners.update(&agent, &report);
        reports.insert(agent, report);
        for _ in 0..8 {
            let vrf = ["default", "blue"][next(2) as usize];
            let probe = ip(&format!("10.{}.{}.{}", next(2), next(3), next(8)));
            let mut holders = Vec::new();
            let mut subnets: Vec<(u8, String, Owner)> = Vec::new();
            for (agent, report) in &reports {
                for v in report.iter().filter(|v| v.vrf == vrf) {
                    for e in &v.addresses {
                        let p = parse(&e.address).unwrap();
                        let o = owner(
                            agent,
                            vrf,
                            &e.interface,
                            &format!("{}/{}", p.address, p.prefix),
                        );
                        if p.address == probe {
                            holders.push(o.clone());
                        }
                        if p.is_subnet() && network(probe, p.prefix) == p.network {
                            subnets.push((p.prefix, agent.clone(), o));
                        }
                    }
                }
            }
            let single = holders.iter().all(|h| h.agent == holders[0].agent);
            let expected = (!holders.is_empty() && single).then(|| {
                holders
                    .iter()
                    .find(|h| !is_loopback(&h.interface))
                    .unwrap_or(&holders[0])
                    .clone()
            });
            assert_eq!(owners.owner(vrf, probe), expected, "{vrf} {probe}");
            subnets.retain(|(_, a, _)| !holders.iter().any(|h| h.agent == *a));
            subnets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut seen = Vec::new();
            let expected: Vec<String> = subnets
                .into_iter()
                .filter(|(_, a, _)| {
                    let fresh = !seen.contains(a);
                    seen.push(a.clone());
                    fresh
                })
                .map(|(_, a, _)| a)
                .collect();
            let got: Vec<String> = owners
                .attached(vrf, probe)
                .into_iter()
                .map(|o| o.agent)
                .collect();
            assert_eq!(got, expected, "{vrf} {probe}");
        }
    }
}
