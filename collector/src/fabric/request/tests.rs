//! Every body the endpoints take, in our names and the OVN seed's, and
//! every mistake with the field it names.

use super::*;
use serde_json::json;

fn settings() -> TraceSettings {
    TraceSettings::default()
}

fn flow_err(body: Value) -> RequestError {
    flow(body.to_string().as_bytes(), &settings()).unwrap_err()
}

#[test]
fn a_flow_reads_with_our_names_and_the_seeds() {
    let ours = flow(
        br#"{"src":"10.0.0.1","dst":"10.2.0.9","proto":"tcp","sport":1234,"dport":80,"vrf":"blue","from":"leaf1","reverse":true,"hop_limit":8,"hop_timeout_ms":500}"#,
        &settings(),
    )
    .unwrap();
    assert_eq!(ours.spec.src, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(ours.spec.proto, Some(6));
    assert_eq!((ours.spec.sport, ours.spec.dport), (Some(1234), Some(80)));
    assert_eq!(ours.spec.vrf, "blue");
    assert_eq!(ours.spec.from.as_deref(), Some("leaf1"));
    assert!(ours.reverse);
    assert_eq!(ours.bounds.hop_limit, 8);
    assert_eq!(ours.bounds.hop_timeout, Duration::from_millis(500));
    assert_eq!(ours.bounds.timeout, settings().timeout);
    let seed = flow(
        br#"{"source_ip":"10.0.0.1","destination_ip":"10.2.0.9","protocol":6,"source_port_num":1234,"destination_port_num":80}"#,
        &settings(),
    )
    .unwrap();
    assert_eq!(
        seed.spec,
        FlowSpec {
            vrf: "default".into(),
            from: None,
            ..ours.spec
        }
    );
    assert!(!seed.reverse);
    assert_eq!(seed.bounds, settings());
    // A null is a field not given.
    let nulls = flow(
        br#"{"src":"10.0.0.1","dst":"10.2.0.9","proto":null,"from":null}"#,
        &settings(),
    )
    .unwrap();
    assert_eq!((nulls.spec.proto, nulls.spec.from), (None, None));
}

#[test]
fn protocols_are_names_or_numbers() {
    assert_eq!(parse_proto("tcp"), Ok(6));
    assert_eq!(parse_proto("UDP"), Ok(17));
    assert_eq!(parse_proto("icmp"), Ok(1));
    assert_eq!(parse_proto("ipv6-icmp"), Ok(58));
    assert_eq!(parse_proto("icmpv6"), Ok(58));
    assert_eq!(parse_proto("47"), Ok(47));
    assert!(parse_proto("tpc").unwrap_err().contains("not a protocol"));
    assert!(parse_proto("256").is_err());
}

#[test]
fn every_bad_field_is_named_with_its_fix() {
    for (body, field, words) in [
        (json!({"src": "10.0.0.1"}), "dst", "`dst` is missing"),
        (json!({"dst": "10.0.0.1"}), "src", "`src` is missing"),
        (
            json!({"src": "10.0.0.1", "dst": "10.0.0.300"}),
            "dst",
            "not an IP address",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.0/16"}),
            "dst",
            "no prefix length",
        ),
        (
            json!({"src": "10.0.0.1", "destination_ip": 7}),
            "destination_ip",
            "as a string",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "fd00::1"}),
            "dst",
            "different address families",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "dport": 80}),
            "dport",
            "with a protocol that has them",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "icmp", "sport": 80}),
            "sport",
            "icmp has no ports",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "tcp", "dport": 70000}),
            "dport",
            "0 to 65535",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "tpc"}),
            "proto",
            "not a protocol",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": 300}),
            "proto",
            "0 to 255",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "vrf": "../etc"}),
            "vrf",
            "not a VRF name",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "vrf": 3}),
            "vrf",
            "VRF name",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "from": ""}),
            "from",
            "name of the agent",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "hop_limit": 65}),
            "hop_limit",
            "from 1 to 64",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "hop_limit": 0}),
            "hop_limit",
            "from 1 to 64",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "hop_timeout_ms": 60000}),
            "hop_timeout_ms",
            "1 to 30000",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "reverse": "yes"}),
            "reverse",
            "true or false",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "dts": "x"}),
            "dts",
            "did you mean `dst`?",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "max_branches": 3}),
            "max_branches",
            "unknown field",
        ),
        (
            json!({"src": "10.0.0.1", "source_ip": "10.0.0.2", "dst": "10.2.0.9"}),
            "source_ip",
            "give it once",
        ),
    ] {
        let error = flow_err(body.clone());
        assert_eq!(error.field, field, "{body}: {error:?}");
        assert!(error.message.contains(words), "{body}: {}", error.message);
    }
    let error = flow(b"{\"src\": ", &settings()).unwrap_err();
    assert!(error.message.contains("not JSON"), "{}", error.message);
    let error = flow(b"[1]", &settings()).unwrap_err();
    assert!(
        error.message.contains("not a JSON object"),
        "{}",
        error.message
    );
}

#[test]
fn multi_path_takes_branches_and_a_port_range() {
    let body = json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "udp", "dport": 53, "sport_range": "1000-1999", "max_branches": 16});
    let request = multi_path(body.to_string().as_bytes(), &settings()).unwrap();
    assert_eq!(
        request.sports,
        Some(PortRange {
            first: 1000,
            last: 1999
        })
    );
    assert_eq!(request.bounds.max_branches, 16);
    let body = json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": 17, "sport_range": {"first": 5, "last": 6}});
    let request = multi_path(body.to_string().as_bytes(), &settings()).unwrap();
    assert_eq!(request.sports, Some(PortRange { first: 5, last: 6 }));
    for (body, field, words) in [
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "udp", "sport_range": "1-5000"}),
            "sport_range",
            "more than the 4096",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "udp", "sport_range": "9-1"}),
            "sport_range",
            "backwards",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "udp", "sport_range": {"first": 9, "last": 1}}),
            "sport_range",
            "backwards",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "proto": "udp", "sport_range": 7}),
            "sport_range",
            "\"A-B\"",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "sport_range": "1-2"}),
            "sport_range",
            "protocol with ports",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "max_branches": 4097}),
            "max_branches",
            "from 1 to 4096",
        ),
        (
            json!({"src": "10.0.0.1", "dst": "10.2.0.9", "reverse": true}),
            "reverse",
            "unknown field",
        ),
    ] {
        let error = multi_path(body.to_string().as_bytes(), &settings()).unwrap_err();
        assert_eq!(error.field, field, "{body}: {error:?}");
        assert!(error.message.contains(words), "{body}: {}", error.message);
    }
}

#[test]
fn connectivity_takes_flows_or_the_seeds_protocols_and_ports() {
    let body = json!({"sources": ["10.1.0.10", "10.1.0.11"], "destinations": ["10.2.0.10"], "protocols": ["tcp", "icmp"], "ports": [22, 443]});
    let request = connectivity(body.to_string().as_bytes(), &settings()).unwrap();
    let kinds: Vec<(Option<u8>, Option<u16>)> = request
        .query
        .flows
        .iter()
        .map(|k| (k.proto, k.dport))
        .collect();
    assert_eq!(
        kinds,
        [(Some(6), Some(22)), (Some(6), Some(443)), (Some(1), None)]
    );
    assert_eq!(request.query.sources.len(), 2);
    let body = json!({"sources": ["10.1.0.10"], "destinations": ["10.2.0.10"]});
    let request = connectivity(body.to_string().as_bytes(), &settings()).unwrap();
    assert_eq!(
        request.query.flows,
        [FlowKind {
            proto: None,
            sport: None,
            dport: None
        }]
    );
    let body = json!({"source_ips": ["10.1.0.10"], "destination_ips": ["10.2.0.10"], "flows": [{"proto": "udp", "dport": 53}, {"protocol": "icmp"}]});
    let request = connectivity(body.to_string().as_bytes(), &settings()).unwrap();
    assert_eq!(request.query.flows.len(), 2);

    let many: Vec<String> = (0..100).map(|i| format!("10.1.0.{i}")).collect();
    for (body, field, words) in [
        (
            json!({"destinations": ["10.2.0.10"]}),
            "sources",
            "`sources` is missing",
        ),
        (
            json!({"sources": [], "destinations": ["10.2.0.10"]}),
            "sources",
            "give 1 to 256",
        ),
        (
            json!({"sources": ["10.1.0.x"], "destinations": ["10.2.0.10"]}),
            "sources[0]",
            "not an IP address",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["fd00::1"]}),
            "destinations",
            "share no address family",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "ports": [22]}),
            "ports",
            "need a protocol with ports",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "protocols": ["icmp"], "ports": [22]}),
            "ports",
            "need a protocol with ports",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "flows": [{"proto": "icmp", "dport": 1}]}),
            "flows[0].dport",
            "icmp has no ports",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "flows": [{"port": 1}]}),
            "flows[0].port",
            "unknown field",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "flows": [], "ports": [1]}),
            "flows",
            "not both",
        ),
        (
            json!({"sources": many, "destinations": many, "protocols": ["tcp"]}),
            "destinations",
            "more than the 4096",
        ),
        (
            json!({"sources": ["10.1.0.1"], "destinations": ["10.2.0.1"], "from": "leaf1"}),
            "from",
            "unknown field",
        ),
    ] {
        let error = connectivity(body.to_string().as_bytes(), &settings()).unwrap_err();
        assert_eq!(error.field, field, "{body}: {error:?}");
        assert!(error.message.contains(words), "{body}: {}", error.message);
    }
}

#[test]
fn misspellings_are_close_and_others_not() {
    assert!(close("dts", "dst"));
    assert!(close("hop-limit", "hop_limit"));
    assert!(!close("proto", "protocol"));
    assert!(close("protcol", "protocol"));
    assert!(!close("verbose", "vrf"));
}
