//! `hopwatch trace` in VRFs and `hopwatch paths` against the real kernel,
//! and the exit statuses a bad query or a missing right gives.

use crate::lab::{
    BIN, EcmpLab, Egress, Flow, Proto, Router, addr, args, as_nobody, hopwatch_host, hopwatch_in,
    ip, json_answer, route_get, route_get_batch, trace, trace_egress, veth,
};
use crate::trace::first;
use crate::util::{Netns, can_use_netns, unique};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

/// Two namespaces whose tables send 10.90.0.0/16 different ways: `vrf`
/// through `va0`, `own` (where the test runs) through `tb0`.
struct VrfLab {
    vrf: Netns,
    own: Netns,
    _peer: Netns,
}

impl VrfLab {
    fn new() -> VrfLab {
        let vrf = Netns::new("hwvrf");
        let own = Netns::new("hwown");
        let peer = Netns::new("hwvp");
        veth(&vrf, "va0", &own, "ta0");
        veth(&own, "tb0", &peer, "pb0");
        addr(&vrf, "va0", "10.84.0.1/24");
        addr(&own, "ta0", "10.84.0.2/24");
        addr(&own, "tb0", "10.85.0.1/24");
        addr(&peer, "pb0", "10.85.0.2/24");
        vrf.ip(&["route", "add", "10.90.0.0/16", "via", "10.84.0.2"]);
        own.ip(&["route", "add", "10.90.0.0/16", "via", "10.85.0.2"]);
        VrfLab {
            vrf,
            own,
            _peer: peer,
        }
    }
}

#[test]
fn root_netns_trace_vrf_answers_from_that_namespace() {
    if !can_use_netns("root_netns_trace_vrf_answers_from_that_namespace") {
        return;
    }
    let lab = VrfLab::new();
    let query = args(&["--dst", "10.90.1.1", "--proto", "udp", "--dport", "53"]);
    let in_vrf = Egress {
        next_hop: Some(ip("10.84.0.2")),
        interface: "va0".to_string(),
    };
    let in_own = Egress {
        next_hop: Some(ip("10.85.0.2")),
        interface: "tb0".to_string(),
    };
    let flow = Router::local("10.90.1.1");
    assert_eq!(route_get(&lab.vrf, &flow).unwrap(), in_vrf, "lab");
    assert_eq!(route_get(&lab.own, &flow).unwrap(), in_own, "lab");

    let plain = trace(&lab.own, &query);
    assert_eq!(trace_egress(&plain), in_own, "{plain:#}");
    assert_eq!(plain["request"]["vrf"], "default", "{plain:#}");

    let mut with_vrf = query.clone();
    with_vrf.extend(args(&["--vrf", &lab.vrf.name]));
    let from_own = trace(&lab.own, &with_vrf);
    assert_eq!(trace_egress(&from_own), in_vrf, "{from_own:#}");
    assert_eq!(from_own["request"]["vrf"], lab.vrf.name.as_str());

    let mut full = args(&["trace", "--json"]);
    full.extend(with_vrf);
    let from_host = json_answer("hopwatch trace --vrf (host)", &hopwatch_host(&full));
    assert_eq!(trace_egress(&from_host), in_vrf, "{from_host:#}");

    let paths = json_answer(
        "hopwatch paths --vrf",
        &hopwatch_host(&args(&[
            "paths",
            "--dst",
            "10.90.1.1",
            "--proto",
            "udp",
            "--sport-range",
            "1000-1099",
            "--dport",
            "53",
            "--vrf",
            &lab.vrf.name,
            "--json",
        ])),
    );
    assert_eq!(paths["flows"], 100, "{paths:#}");
    let members = paths["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{paths:#}");
    assert_eq!(members[0]["interface"], "va0", "{paths:#}");
    assert_eq!(members[0]["count"], 100, "{paths:#}");
}

/// Checks one `paths --per-flow` answer against `ip -batch` and against
/// itself; returns the flows it covered.
fn check_paths(lab: &EcmpLab, answer: &Value, base: &Flow) -> Vec<Flow> {
    let detail = answer["flows_detail"]
        .as_array()
        .unwrap_or_else(|| panic!("no flows_detail: {answer}"));
    let flows: Vec<Flow> = detail
        .iter()
        .map(|d| Flow {
            sport: d["sport"].as_u64().unwrap() as u16,
            dport: d["dport"].as_u64().unwrap() as u16,
            ..base.clone()
        })
        .collect();
    let total = flows.len() as u64;
    assert_eq!(answer["flows"], total, "flows vs flows_detail");

    let kernel = route_get_batch(&lab.switch, &flows);
    let mut by_kernel: BTreeMap<Egress, u64> = BTreeMap::new();
    let mut by_detail: BTreeMap<Egress, u64> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for ((flow, d), kernel) in flows.iter().zip(detail).zip(kernel) {
        let ours = Egress {
            next_hop: d["next_hop"].as_str().map(ip),
            interface: d["interface"].as_str().unwrap().to_string(),
        };
        if ours != kernel {
            disagreements.push(format!(
                "paths says {ours}; ip {} -> {kernel}",
                flow.route_get_line()
            ));
        }
        *by_kernel.entry(kernel).or_default() += 1;
        *by_detail.entry(ours).or_default() += 1;
    }
    assert!(
        disagreements.is_empty(),
        "{} of {total} flows disagree:\n{}",
        disagreements.len(),
        first(&disagreements)
    );

    let members = answer["members"].as_array().unwrap();
    assert_eq!(members.len(), lab.members.len(), "{members:#?}");
    let weights: u64 = EcmpLab::WEIGHTS.iter().sum();
    let mut sum = 0;
    let mut chi_square = 0.0;
    for m in members {
        let egress = Egress {
            next_hop: m["next_hop"].as_str().map(ip),
            interface: m["interface"].as_str().unwrap().to_string(),
        };
        let gw = egress.next_hop.unwrap();
        let member = lab.member(gw);
        assert_eq!(egress.interface, member.dev, "{m}");
        assert_eq!(m["weight"], member.weight, "{m}");
        let count = m["count"].as_u64().unwrap();
        sum += count;
        assert_eq!(Some(&count), by_detail.get(&egress).or(Some(&0)), "{m}");
        assert_eq!(Some(&count), by_kernel.get(&egress).or(Some(&0)), "{m}");
        let share = m["share"].as_f64().unwrap();
        let expected_share = m["expected_share"].as_f64().unwrap();
        let want_expected = member.weight as f64 / weights as f64;
        assert!((share - count as f64 / total as f64).abs() < 1e-6, "{m}");
        assert!((expected_share - want_expected).abs() < 1e-6, "{m}");
        let expected = want_expected * total as f64;
        chi_square += (count as f64 - expected).powi(2) / expected;
        println!("  {egress:<32} weight {} count {count}", member.weight);
    }
    assert_eq!(sum, total, "member counts add up to the flows");
    let verdict = &answer["verdict"];
    println!("  verdict {verdict}");
    let reported = verdict["chi_square"].as_f64().unwrap();
    assert!(
        (reported - chi_square).abs() <= 1e-6 * chi_square.max(1.0),
        "chi_square {reported}, Pearson's statistic over the counts is {chi_square}"
    );
    let p = verdict["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{verdict}");
    assert!(verdict["even"].is_boolean(), "{verdict}");
    assert!(verdict["text"].is_string(), "{verdict}");
    flows
}

#[test]
fn root_netns_paths_agrees_flow_for_flow_with_ip_route_get() {
    if !can_use_netns("root_netns_paths_agrees_flow_for_flow_with_ip_route_get") {
        return;
    }
    let lab = EcmpLab::new(1);
    let transit4 = Flow {
        dst: ip("10.99.5.5"),
        src: Some(ip(EcmpLab::CLIENT4)),
        iif: Some(EcmpLab::INGRESS.to_string()),
        proto: Proto::Tcp,
        sport: 0,
        dport: 443,
    };
    let local6 = Flow {
        dst: ip("2001:db8:99::5"),
        src: None,
        iif: None,
        proto: Proto::Udp,
        sport: 0,
        dport: 53,
    };
    for (base, range) in [(&transit4, (20000u16, 21999u16)), (&local6, (30000, 31999))] {
        let mut cmd = args(&["paths", "--dst", &base.dst.to_string()]);
        if let (Some(src), Some(iif)) = (base.src, &base.iif) {
            cmd.extend(args(&["--src", &src.to_string(), "--iif", iif]));
        }
        cmd.extend(args(&[
            "--proto",
            base.proto.name(),
            "--sport-range",
            &format!("{}-{}", range.0, range.1),
            "--dport",
            &base.dport.to_string(),
            "--json",
            "--per-flow",
        ]));
        let started = Instant::now();
        let answer = json_answer(&cmd.join(" "), &hopwatch_in(&lab.switch, &cmd));
        println!("{} in {:.1?}", cmd.join(" "), started.elapsed());
        let flows = check_paths(&lab, &answer, base);
        let sports: Vec<u16> = flows.iter().map(|f| f.sport).collect();
        let want: Vec<u16> = (range.0..=range.1).collect();
        let mut sorted = sports.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, want, "one flow per source port of the range");
        assert!(flows.iter().all(|f| f.dport == base.dport));
    }

    // Sampled ports: 500 flows, each still the kernel's choice.
    let cmd = args(&[
        "paths",
        "--dst",
        "10.99.5.5",
        "--proto",
        "tcp",
        "--samples",
        "500",
        "--dport",
        "443",
        "--json",
        "--per-flow",
    ]);
    let answer = json_answer(&cmd.join(" "), &hopwatch_in(&lab.switch, &cmd));
    let base = Flow {
        src: None,
        iif: None,
        ..transit4.clone()
    };
    let flows = check_paths(&lab, &answer, &base);
    assert_eq!(flows.len(), 500);
}

/// Runs `hopwatch ARGS`, which must fail as a usage error naming `names`.
fn usage_error(list: &[&str], names: &str) {
    let out = hopwatch_host(&args(list));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "hopwatch {}: want exit 2, stderr {stderr}",
        list.join(" ")
    );
    assert!(
        stderr.contains(names),
        "hopwatch {}: the message does not name {names:?}: {stderr}",
        list.join(" ")
    );
}

#[test]
fn trace_rejects_bad_input_with_exit_2() {
    usage_error(&["trace", "--dst", "10.0.0.300"], "10.0.0.300");
    usage_error(&["trace", "--dst", "2001:db8::zz"], "2001:db8::zz");
    usage_error(
        &["trace", "--dst", "10.0.0.1", "--src", "nowhere"],
        "nowhere",
    );
    usage_error(&["trace", "--dst", "10.0.0.1", "--proto", "bogus"], "bogus");
    usage_error(&["trace", "--dst", "10.0.0.1", "--proto", "300"], "300");
    usage_error(&["trace", "--dst", "10.0.0.1", "--dport", "70000"], "70000");
    usage_error(&["trace", "--dst", "10.0.0.1", "--sport", "70000"], "70000");
    usage_error(&["trace", "--json"], "--dst");
    usage_error(
        &[
            "paths",
            "--dst",
            "10.0.0.1",
            "--proto",
            "udp",
            "--sport-range",
            "1-70000",
        ],
        "70000",
    );
    usage_error(
        &[
            "paths",
            "--dst",
            "10.0.0.1",
            "--proto",
            "bogus",
            "--samples",
            "10",
        ],
        "bogus",
    );
}

#[test]
fn root_netns_trace_unknown_vrf_and_no_permission_exit_1() {
    if !can_use_netns("root_netns_trace_unknown_vrf_and_no_permission_exit_1") {
        return;
    }
    let lab = VrfLab::new();
    let missing = unique("hwnovrf");
    let out = hopwatch_host(&args(&[
        "trace",
        "--dst",
        "10.90.1.1",
        "--vrf",
        &missing,
        "--json",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "unknown VRF: {stderr}");
    assert!(
        stderr.contains(&missing),
        "names the VRF asked for: {stderr}"
    );
    assert!(
        stderr.contains(&lab.vrf.name) && stderr.contains(&lab.own.name),
        "lists the VRFs there are: {stderr}"
    );

    // Entering a namespace needs CAP_SYS_ADMIN, which `nobody` lacks.
    let out = as_nobody(
        BIN,
        &args(&["trace", "--dst", "10.90.1.1", "--vrf", &lab.vrf.name]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "as nobody: {stderr}");
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("permission") || lower.contains("cap_sys_admin") || lower.contains("root"),
        "as nobody, the message does not say permission is lacking: {stderr}"
    );
    assert!(stderr.contains(&lab.vrf.name), "names the VRF: {stderr}");
}
