//! The spread's verdict against known counts, and the flows a query names.

use super::*;
use crate::trace::NextHopFlag;
use std::collections::HashSet;

fn member(weight: u32, count: u64, total_weight: u32, flows: u64) -> PathMember {
    PathMember {
        next_hop: Some("10.0.1.2".parse().unwrap()),
        interface: Some("sw-p1".into()),
        weight,
        count,
        share: count as f64 / flows as f64,
        expected_share: f64::from(weight) / f64::from(total_weight),
        state: MemberState::Up,
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1e-300)
}

#[test]
fn an_even_spread_is_even() {
    // Four members, the last of weight 2: 1000 flows as expected.
    let flows = 1000;
    let members = [
        member(1, 203, 5, flows),
        member(1, 198, 5, flows),
        member(1, 199, 5, flows),
        member(2, 400, 5, flows),
    ];
    let v = verdict(&members, flows);
    assert!(v.even, "{v:?}");
    assert_eq!(v.degrees_of_freedom, 3);
    assert!(v.p_value > 0.9, "{v:?}");
    assert!(v.text.starts_with("even: chi-square"), "{}", v.text);
    assert!(v.text.contains("largest deviation"), "{}", v.text);
}

#[test]
fn everything_on_one_member_is_uneven() {
    let flows = 2000;
    let members = [
        member(1, 2000, 4, flows),
        member(1, 0, 4, flows),
        member(1, 0, 4, flows),
        member(1, 0, 4, flows),
    ];
    let v = verdict(&members, flows);
    assert!(!v.even);
    assert!(v.p_value < 1e-100, "{v:?}");
    assert!(close(v.chi_square, 6000.0, 1e-12), "{v:?}");
    assert!(v.text.contains("+75.0 points"), "{}", v.text);
}

#[test]
fn a_single_path_is_even_and_strays_are_not() {
    let v = verdict(&[member(1, 10, 1, 10)], 10);
    assert!(v.even);
    assert_eq!(v.p_value, 1.0);
    assert!(v.text.contains("single path"), "{}", v.text);
    let v = verdict(&[member(1, 9, 1, 10), member(0, 1, 1, 10)], 10);
    assert!(!v.even);
    assert!(
        v.text
            .contains("1 flows took a member the route does not list")
    );
    assert!(!verdict(&[], 0).even);
}

#[test]
fn flows_on_a_member_that_is_down_are_dropped_not_even() {
    // Four members of weight 1, one linkdown: the hash still spreads
    // evenly over all four, but a quarter of the flows die.
    let flows = 1000;
    let mut members = [
        member(1, 250, 3, flows),
        member(1, 252, 3, flows),
        member(1, 248, 3, flows),
        member(1, 250, 3, flows),
    ];
    members[1].state = MemberState::Linkdown;
    members[1].expected_share = 0.0;
    let v = verdict(&members, flows);
    assert!(!v.even, "{v:?}");
    assert!(
        v.text.starts_with("dropped: 252 of 1000 flows (25.2%)"),
        "{}",
        v.text
    );
    assert!(v.text.contains("(linkdown, 252 flows)"), "{}", v.text);
    // The other three are judged among themselves, and are even.
    assert!(v.text.contains("the other 748: even"), "{}", v.text);
    assert_eq!(v.degrees_of_freedom, 2);
    // A member the kernel left out gets no flows and spoils nothing.
    members[1].count = 0;
    members[0].count = 334;
    members[2].count = 333;
    members[3].count = 333;
    let v = verdict(&members, flows);
    assert!(v.even, "{v:?}");
    assert_eq!(
        MemberState::of(&[NextHopFlag::Dead, NextHopFlag::Linkdown]),
        MemberState::Linkdown
    );
    assert_eq!(MemberState::of(&[NextHopFlag::Dead]), MemberState::Dead);
    assert_eq!(MemberState::of(&[]), MemberState::Up);
}

#[test]
fn port_ranges_parse_and_refuse_backwards() {
    assert_eq!(
        "1000-1999".parse::<PortRange>(),
        Ok(PortRange {
            first: 1000,
            last: 1999
        })
    );
    assert_eq!("80".parse::<PortRange>().unwrap().len(), 1);
    assert!(
        "2000-1000"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("backwards")
    );
    assert!(
        "1-70000"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("not a port")
    );
    assert!("a-b".parse::<PortRange>().is_err());
}

#[test]
fn a_backwards_range_in_json_is_refused_too() {
    let query =
        r#"{"dst":"2001:db8::1","proto":6,"sport_range":{"first":5163,"last":1010},"dport":80}"#;
    let error = serde_json::from_str::<PathsQuery>(query)
        .unwrap_err()
        .to_string();
    assert!(error.contains("backwards"), "{error}");
    let range = serde_json::from_str::<PortRange>(r#"{"first":7,"last":7}"#).unwrap();
    assert_eq!(range.len(), 1);
}

fn query() -> PathsQuery {
    PathsQuery::new(
        "10.9.1.1".parse().unwrap(),
        6,
        SourcePorts::Range(PortRange {
            first: 1000,
            last: 1009,
        }),
    )
}

#[test]
fn ranges_enumerate_every_pair() {
    let mut q = query();
    q.dport_range = Some(PortRange {
        first: 80,
        last: 81,
    });
    let flows = q.flows().unwrap();
    assert_eq!(flows.len(), 20);
    assert_eq!(flows[0], (1000, Some(80)));
    assert_eq!(flows[1], (1000, Some(81)));
    assert_eq!(flows[19], (1009, Some(81)));
}

#[test]
fn samples_are_distinct_and_repeatable() {
    let mut q = PathsQuery::new(
        "10.9.1.1".parse().unwrap(),
        17,
        SourcePorts::Samples {
            count: 5000,
            seed: Some(7),
        },
    );
    q.dport = Some(53);
    let flows = q.flows().unwrap();
    assert_eq!(flows.len(), 5000);
    let distinct: HashSet<_> = flows.iter().collect();
    assert_eq!(distinct.len(), 5000);
    assert!(
        flows
            .iter()
            .all(|&(s, d)| s >= SAMPLE_FIRST_PORT && d == Some(53))
    );
    assert_eq!(q.flows().unwrap(), flows);
    q.seed = Some(8);
    assert_ne!(q.flows().unwrap(), flows);
    // Most of the space: the shuffle path, still distinct.
    q.samples = Some(60_000);
    let flows = q.flows().unwrap();
    assert_eq!(flows.iter().collect::<HashSet<_>>().len(), 60_000);
}

#[test]
fn bad_queries_are_usage_errors() {
    let mut q = query();
    q.samples = Some(10);
    assert!(q.validate().unwrap_err().to_string().contains("not both"));
    let mut q = query();
    q.sport_range = None;
    assert!(q.validate().unwrap_err().to_string().contains("--samples"));
    let mut q = query();
    q.proto = 1;
    assert!(q.validate().unwrap_err().is_usage());
    let mut q = query();
    q.sport_range = Some(PortRange {
        first: 0,
        last: 65535,
    });
    q.dport_range = Some(PortRange {
        first: 0,
        last: 100,
    });
    assert!(q.validate().unwrap_err().to_string().contains("more than"));
    let mut q = query();
    q.sport_range = None;
    q.samples = Some(70_000);
    assert!(
        q.validate()
            .unwrap_err()
            .to_string()
            .contains("cannot be drawn")
    );
}
