//! The `nxapi` counter source as it polls on NX-OS: `show interface
//! counters` then `show interface counters errors`, one request at a time,
//! against fixtures written from the documented shapes (several rows per
//! port, one-row tables as objects, counts as strings, ports some tables
//! leave out). Also where a row carries fewer columns than others: those
//! columns are unavailable for that interface, in `hopwatch counters` and in
//! the rules, never zero.

use super::fixture;
use super::server::{Request, Server};
use crate::util::TempDir;
use hopwatch::metric::Metric;
use hopwatch::source::nxapi::{CountersSource, SHOW_COUNTERS, SHOW_COUNTERS_ERRORS};
use hopwatch::source::{CounterRow, CounterSource, Snapshot};
use std::time::Duration;

fn source(server: &Server) -> CountersSource {
    CountersSource::new(&server.path, "admin", Duration::from_secs(2))
}

fn row<'a>(snapshot: &'a Snapshot, name: &str) -> &'a CounterRow {
    snapshot
        .rows
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {:?}", names(snapshot)))
}

fn names(snapshot: &Snapshot) -> Vec<&str> {
    snapshot.rows.iter().map(|r| r.name.as_str()).collect()
}

/// Answers the two counters commands from the 96-port fixtures.
fn answer_96(request: &Request) -> (u16, String) {
    match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_96.json")),
        SHOW_COUNTERS_ERRORS => (200, fixture("show_interface_counters_errors_96.json")),
        _ => (200, fixture("error.json")),
    }
}

#[test]
fn nxapi_cli_source_reads_every_fixture_shape() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, answer_96);
    let mut source = source(&server);

    // 96 ports over two slots, counts as strings, several rows per port.
    let chassis = source.sample().expect("a good reply samples");
    let ports = names(&chassis)
        .into_iter()
        .filter(|n| n.starts_with("Ethernet"))
        .count();
    assert_eq!(ports, 96);
    let last = row(&chassis, "Ethernet2/48");
    assert_eq!(last.counters[Metric::RxBytes as usize], 96 * 1041 * 512);
    assert_eq!(
        last.counters[Metric::RxPackets as usize],
        96 * 1000 + 96 * 40 + 96
    );
    assert_eq!(last.counters[Metric::TxDropped as usize], 96 % 7);
    assert_eq!(last.counters[Metric::RxCrc as usize], 96 % 5);
    assert!(last.columns.supplies(Metric::TxCollisions));
    assert!(last.link.is_none(), "the counters tables carry no link");
    // The SVI counts only what it received, the tunnel no errors, and
    // neither is in the errors table: those columns are unavailable.
    let vlan = row(&chassis, "Vlan2001");
    assert!(vlan.columns.supplies(Metric::RxBytes));
    for missing in [Metric::TxBytes, Metric::RxErrors, Metric::TxDropped] {
        assert!(!vlan.columns.supplies(missing), "Vlan2001 {missing}");
    }
    let nve = row(&chassis, "nve1");
    assert_eq!(nve.counters[Metric::TxBytes as usize], 324_119_026_772);
    assert!(nve.columns.supplies(Metric::RxPackets));
    assert!(!nve.columns.supplies(Metric::RxCrc));
    assert!(!nve.columns.supplies(Metric::TxErrors));
    // mgmt0 counts packets, not bytes.
    let mgmt = row(&chassis, "mgmt0");
    assert!(mgmt.columns.supplies(Metric::TxPackets) && !mgmt.columns.supplies(Metric::TxBytes));

    // The two commands in order, each once, the session cookie reused.
    let requests = server.requests();
    let asked: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.kind.as_str(), r.input.as_str()))
        .collect();
    assert_eq!(
        asked,
        [
            ("cli_show", SHOW_COUNTERS),
            ("cli_show", SHOW_COUNTERS_ERRORS)
        ]
    );
    assert_eq!(
        requests[1].cookie.as_deref(),
        Some(super::server::SESSION_COOKIE)
    );

    // One port: every table's ROW_* is an object, counts are numbers.
    server.answer(|request| match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_one.json")),
        _ => (200, fixture("show_interface_counters_errors_one.json")),
    });
    let one = source.sample().unwrap();
    assert_eq!(names(&one), ["Ethernet1/1"]);
    let eth = &one.rows[0];
    assert_eq!(eth.counters[Metric::RxBytes as usize], 288_825_287);
    assert_eq!(eth.counters[Metric::TxBytes as usize], 225_239_460);
    assert_eq!(eth.counters[Metric::RxErrors as usize], 15);
    assert_eq!(eth.counters[Metric::RxCrc as usize], 1);
    assert!(
        !eth.columns.supplies(Metric::RxPackets),
        "unicast alone is not every packet"
    );
    assert_eq!(server.most_in_flight(), 1);
}

#[test]
fn nxapi_cli_failed_errors_keep_traffic_and_failed_counters_lose_the_tick() {
    let dir = TempDir::new("hopwatch-nxapi-cli");
    let server = Server::start(&dir, |request| match request.input.as_str() {
        SHOW_COUNTERS => (200, fixture("show_interface_counters_96.json")),
        _ => (200, fixture("error.json")),
    });
    let mut source = source(&server);

    // The errors command refused: the traffic counters stand, the error and
    // drop columns are unavailable, and the snapshot says why.
    let partial = source.sample().expect("the traffic counters answered");
    let eth = row(&partial, "Ethernet1/1");
    assert_eq!(eth.counters[Metric::RxBytes as usize], 1041 * 512);
    assert!(eth.columns.supplies(Metric::TxPackets));
    for missing in [Metric::RxCrc, Metric::TxErrors, Metric::TxDropped] {
        assert!(!eth.columns.supplies(missing), "{missing}");
    }
    let why = partial.partial.as_deref().expect("the failure is reported");
    assert!(
        why.contains(SHOW_COUNTERS_ERRORS) && why.contains("code 400"),
        "{why}"
    );

    // The traffic command refused: the tick is lost, and the errors
    // command is not asked in vain.
    server.answer(|_| (200, fixture("error.json")));
    let before = server.requests().len();
    let error = source.sample().unwrap_err().to_string();
    assert!(
        error.contains("code 400") && error.contains(SHOW_COUNTERS),
        "{error}"
    );
    let asked: Vec<String> = server.requests()[before..]
        .iter()
        .map(|r| r.input.clone())
        .collect();
    assert_eq!(asked, [SHOW_COUNTERS]);
}
