//! The `nxapi` counter source: each poll is `show interface counters` then
//! `show interface counters errors`, in sequence on one connection's cookie,
//! never both in flight.
//!
//! The shapes, from public NX-API clients and their captured replies (a
//! Nexus health-check tool's NX-API mocks and parser, Cisco's on-box Python
//! samples reading `clid("show interface e1/1 counters")`, and
//! `allenrobel/nxapi-netbox` `lib/nxapi/nxapi_interface.py` for the SVI and
//! NVE rows):
//! - `show interface counters`: `TABLE_rx_counters.ROW_rx_counters[]` keyed
//!   by `interface_rx` and `TABLE_tx_counters.ROW_tx_counters[]` keyed by
//!   `interface_tx`. Each port has several rows, each with part of its
//!   counts: `eth_inbytes` + `eth_inucast`, then `eth_inmcast` +
//!   `eth_inbcast` (`mgmt0` gives `eth_inpkts` in place of bytes); the same
//!   with `out` for transmit.
//! - `show interface counters errors`: `TABLE_interface.ROW_interface[]`
//!   keyed by `interface`, again several rows per port: `eth_align_err`,
//!   `eth_fcs_err`, `eth_xmit_err`, `eth_rcv_err`, `eth_undersize`,
//!   `eth_outdisc`; then `eth_single_col`, `eth_multi_col`, `eth_late_col`,
//!   `eth_excess_col`, `eth_carri_sen`, `eth_runts`; then `eth_giants`,
//!   `eth_deferred_tx`, `eth_inmactx_err`, `eth_inmacrx_err`,
//!   `eth_symbol_err`; then `eth_indisc`.
//!
//! A `ROW_*` with one row is an object, counts are strings or numbers, and
//! the rows of one port are merged by name. The columns:
//!
//! | NX-API field | column |
//! |---|---|
//! | `eth_inbytes`, `eth_outbytes` | `rx_bytes`, `tx_bytes` |
//! | `eth_inpkts`, else `eth_inucast` + `eth_inmcast` + `eth_inbcast` | `rx_packets` (`tx_packets` with `out`) |
//! | `eth_inmcast` | `rx_multicast` |
//! | `eth_rcv_err`, `eth_xmit_err` | `rx_errors`, `tx_errors` |
//! | `eth_indisc`, `eth_outdisc` | `rx_dropped`, `tx_dropped` |
//! | `eth_fcs_err`, `eth_align_err` | `rx_crc`, `rx_frame` |
//! | `eth_single_col` + `eth_multi_col` + `eth_late_col` + `eth_excess_col` | `tx_collisions` |
//! | `eth_carri_sen` | `tx_carrier` |
//!
//! Nothing here counts FIFO overruns or compressed packets, and a row fills
//! only the columns it carries: an SVI or tunnel that the errors table does
//! not list has no error columns, which is unavailable, not zero.
//!
//! When `show interface counters` fails the tick is lost, as with any
//! source. When only `counters errors` fails, the traffic counters are still
//! good: the rows come without their error columns (rules on them see an
//! unavailable value and hold their state) and the failure is reported with
//! the snapshot, so a switch that refuses one command keeps its traffic
//! rules and says why its error rules are blind.

use crate::hash::NameMap;
use crate::metric::{COUNTER_COLUMNS, Columns, Metric};
use crate::nxapi::{Client, Count, Key, NxapiError, Rows};
use crate::source::counters_from;
use crate::source::{CounterRow, CounterSource, Snapshot, SourceError};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The traffic counters each poll asks for first.
pub const SHOW_COUNTERS: &str = "show interface counters";
/// The error counters each poll asks for second.
pub const SHOW_COUNTERS_ERRORS: &str = "show interface counters errors";

/// Reads every interface's hardware counters through the two counters
/// tables of NX-API.
#[derive(Debug)]
pub struct CountersSource {
    client: Client,
    /// Where each port of the poll being merged is in the snapshot.
    index: NameMap<usize>,
}

impl CountersSource {
    /// `timeout` bounds each of the two requests; a poll whose first
    /// request runs out loses that tick only.
    pub fn new(socket: impl Into<PathBuf>, user: &str, timeout: Duration) -> CountersSource {
        CountersSource {
            client: Client::new(socket, user, timeout),
            index: NameMap::default(),
        }
    }

    /// Maps the bodies of the two answers (the JSON under
    /// `ins_api.outputs.output.body`) onto `snapshot` as a poll would; an
    /// `errors` of `Err` is that command's failure. For replaying answers
    /// captured on a switch.
    pub fn sample_bodies(
        &mut self,
        counters: &str,
        errors: Result<&str, NxapiError>,
        snapshot: &mut Snapshot,
    ) -> Result<(), SourceError> {
        let reply = |command: &str, error: serde_json::Error| NxapiError::Reply {
            command: command.to_string(),
            reason: error.to_string(),
        };
        let counters = serde_json::from_str(counters).map_err(|e| reply(SHOW_COUNTERS, e));
        let errors = errors.and_then(|body| {
            serde_json::from_str(body).map_err(|e| reply(SHOW_COUNTERS_ERRORS, e))
        });
        fill(&mut self.index, counters, || errors, snapshot)
    }
}

impl CounterSource for CountersSource {
    fn name(&self) -> &'static str {
        "nxapi"
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        let client = &mut self.client;
        let counters = client.show::<Tables>(SHOW_COUNTERS);
        fill(
            &mut self.index,
            counters,
            || client.show::<Tables>(SHOW_COUNTERS_ERRORS),
            snapshot,
        )
    }
}

/// Merges one poll's answers into `snapshot`; `errors` is asked only once
/// the traffic counters answered. `index` is scratch kept between polls.
fn fill(
    index: &mut NameMap<usize>,
    counters: Result<Tables, NxapiError>,
    errors: impl FnOnce() -> Result<Tables, NxapiError>,
    snapshot: &mut Snapshot,
) -> Result<(), SourceError> {
    snapshot.skipped.clear();
    snapshot.partial = None;
    snapshot.rows.clear();
    index.clear();
    let counters = counters?;
    let mut ports = Ports {
        index,
        rows: &mut snapshot.rows,
        values: Vec::new(),
    };
    ports.merge_all(counters);
    match errors() {
        Ok(errors) => ports.merge_all(errors),
        Err(error) => {
            snapshot.partial = Some(format!(
                "{error}; error and drop columns unavailable this tick"
            ));
        }
    }
    let values = std::mem::take(&mut ports.values);
    for (row, values) in snapshot.rows.iter_mut().zip(&values) {
        (row.counters, row.columns) = columns(values);
    }
    // A port that counts nothing in any table has no row, as with the other
    // sources.
    snapshot.rows.retain(|row| row.columns != Columns::NONE);
    Ok(())
}

/// The ports of one poll as their rows come in, in the order first seen.
struct Ports<'a> {
    index: &'a mut NameMap<usize>,
    rows: &'a mut Vec<CounterRow>,
    values: Vec<Values>,
}

impl Ports<'_> {
    fn merge_all(&mut self, tables: Tables) {
        for table in [tables.rx, tables.tx, tables.errors] {
            for row in table.rows.0 {
                self.merge(row);
            }
        }
    }

    fn merge(&mut self, row: Row) {
        if row.name.is_empty() {
            return;
        }
        let at = match self.index.get(&row.name) {
            Some(&at) => at,
            None => {
                let at = self.rows.len();
                self.index.insert(row.name.clone(), at);
                self.rows.push(CounterRow {
                    name: row.name,
                    counters: [0; COUNTER_COLUMNS],
                    columns: Columns::NONE,
                    link: None,
                });
                self.values.push([None; FIELDS]);
                at
            }
        };
        for (slot, value) in self.values[at].iter_mut().zip(row.values) {
            if value.is_some() {
                *slot = value;
            }
        }
    }
}

/// The tables either command answers with: `show interface counters` fills
/// the first two, `counters errors` the third. One type for both answers,
/// so the reply reader is built into the binary once.
#[derive(Debug, Default, Deserialize)]
struct Tables {
    #[serde(rename = "TABLE_rx_counters", default)]
    rx: Table,
    #[serde(rename = "TABLE_tx_counters", default)]
    tx: Table,
    #[serde(rename = "TABLE_interface", default)]
    errors: Table,
}

#[derive(Debug, Default, Deserialize)]
struct Table {
    #[serde(
        rename = "ROW_rx_counters",
        alias = "ROW_tx_counters",
        alias = "ROW_interface",
        default
    )]
    rows: Rows<Row>,
}

/// Declares the counts the source reads, [`Field`], and the NX-API name of
/// each.
macro_rules! fields {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy)]
        enum Field {
            $($variant,)*
        }

        const FIELDS: usize = [$(Field::$variant,)*].len();

        impl Field {
            fn from_name(name: &str) -> Option<Field> {
                match name {
                    $($name => Some(Field::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    InBytes => "eth_inbytes",
    InPkts => "eth_inpkts",
    InUcast => "eth_inucast",
    InMcast => "eth_inmcast",
    InBcast => "eth_inbcast",
    OutBytes => "eth_outbytes",
    OutPkts => "eth_outpkts",
    OutUcast => "eth_outucast",
    OutMcast => "eth_outmcast",
    OutBcast => "eth_outbcast",
    AlignErr => "eth_align_err",
    FcsErr => "eth_fcs_err",
    XmitErr => "eth_xmit_err",
    RcvErr => "eth_rcv_err",
    OutDisc => "eth_outdisc",
    InDisc => "eth_indisc",
    SingleCol => "eth_single_col",
    MultiCol => "eth_multi_col",
    LateCol => "eth_late_col",
    ExcessCol => "eth_excess_col",
    CarriSen => "eth_carri_sen",
}

/// One port's counts, by [`Field`]; `None` where no row carried it.
type Values = [Option<u64>; FIELDS];

/// A row of any of the three tables: the port's name (`interface_rx`,
/// `interface_tx` or `interface`) and the counts it carries. Fields the
/// source does not use are skipped unread.
#[derive(Debug)]
struct Row {
    name: String,
    values: Values,
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Row, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a counters row")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut row = Row {
                    name: String::new(),
                    values: [None; FIELDS],
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let key = key.0.as_ref();
                    if matches!(key, "interface_rx" | "interface_tx" | "interface") {
                        row.name = map.next_value()?;
                    } else if let Some(field) = Field::from_name(key) {
                        row.values[field as usize] = map.next_value::<Count>()?.0;
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(row)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The sum of counts that only mean something together: `None` unless every
/// part is there.
fn all(parts: &[Option<u64>]) -> Option<u64> {
    parts
        .iter()
        .try_fold(0u64, |sum, part| part.map(|p| sum.wrapping_add(p)))
}

/// The sum of the parts present; `None` when none is.
fn any(parts: &[Option<u64>]) -> Option<u64> {
    parts.iter().flatten().copied().reduce(u64::wrapping_add)
}

/// A port's counts as hopwatch's columns, and which of them it carries.
fn columns(v: &Values) -> ([u64; COUNTER_COLUMNS], Columns) {
    use Field::*;
    use Metric::*;
    let f = |field: Field| v[field as usize];
    let fields = [
        (RxBytes, f(InBytes)),
        (
            RxPackets,
            f(InPkts).or(all(&[f(InUcast), f(InMcast), f(InBcast)])),
        ),
        (RxMulticast, f(InMcast)),
        (RxErrors, f(RcvErr)),
        (RxDropped, f(InDisc)),
        (RxFrame, f(AlignErr)),
        (RxCrc, f(FcsErr)),
        (TxBytes, f(OutBytes)),
        (
            TxPackets,
            f(OutPkts).or(all(&[f(OutUcast), f(OutMcast), f(OutBcast)])),
        ),
        (TxErrors, f(XmitErr)),
        (TxDropped, f(OutDisc)),
        (
            TxCollisions,
            any(&[f(SingleCol), f(MultiCol), f(LateCol), f(ExcessCol)]),
        ),
        (TxCarrier, f(CarriSen)),
    ];
    counters_from(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &str) -> String {
        let reply: serde_json::Value = serde_json::from_str(reply).unwrap();
        reply["ins_api"]["outputs"]["output"]["body"].to_string()
    }

    fn sample(counters: &str, errors: Result<&str, NxapiError>) -> Snapshot {
        let mut source = CountersSource::new("/nonexistent", "admin", Duration::from_secs(1));
        let mut snapshot = Snapshot::default();
        source
            .sample_bodies(counters, errors, &mut snapshot)
            .unwrap();
        snapshot
    }

    fn row<'a>(snapshot: &'a Snapshot, name: &str) -> &'a CounterRow {
        snapshot.rows.iter().find(|r| r.name == name).unwrap()
    }

    const COUNTERS: &str = r#"{
        "TABLE_rx_counters": {"ROW_rx_counters": [
            {"interface_rx": "mgmt0", "eth_inpkts": 266806619, "eth_inucast": 1344041},
            {"interface_rx": "Ethernet1/1", "eth_inbytes": "288825287", "eth_inucast": "73625"},
            {"interface_rx": "mgmt0", "eth_inmcast": 608813, "eth_inbcast": 133992},
            {"interface_rx": "Ethernet1/1", "eth_inmcast": "2805707", "eth_inbcast": "3"}]},
        "TABLE_tx_counters": {"ROW_tx_counters": [
            {"interface_tx": "Ethernet1/1", "eth_outbytes": 225239460, "eth_outucast": 8286},
            {"interface_tx": "Ethernet1/1", "eth_outmcast": 2821973, "eth_outbcast": 2}]}}"#;

    const ERRORS: &str = r#"{"TABLE_interface": {"ROW_interface": [
        {"interface": "Ethernet1/1", "eth_align_err": 1, "eth_fcs_err": 2, "eth_xmit_err": 3,
         "eth_rcv_err": 15, "eth_undersize": 0, "eth_outdisc": 4},
        {"interface": "Ethernet1/1", "eth_single_col": 1, "eth_multi_col": 2, "eth_late_col": 0,
         "eth_excess_col": 0, "eth_carri_sen": 6, "eth_runts": 0},
        {"interface": "Ethernet1/1", "eth_giants": 15, "eth_deferred_tx": 0, "eth_symbol_err": 0},
        {"interface": "Ethernet1/1", "eth_indisc": "N/A"}]}}"#;

    #[test]
    fn rows_of_one_port_merge_into_its_columns() {
        let snapshot = sample(COUNTERS, Ok(ERRORS));
        let names: Vec<&str> = snapshot.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["mgmt0", "Ethernet1/1"]);
        let eth = row(&snapshot, "Ethernet1/1");
        let get = |m: Metric| eth.counters[m as usize];
        assert_eq!(get(Metric::RxBytes), 288_825_287);
        assert_eq!(get(Metric::RxPackets), 73_625 + 2_805_707 + 3);
        assert_eq!(get(Metric::RxMulticast), 2_805_707);
        assert_eq!(get(Metric::TxPackets), 8_286 + 2_821_973 + 2);
        assert_eq!(get(Metric::RxCrc), 2);
        assert_eq!(get(Metric::RxFrame), 1);
        assert_eq!(get(Metric::RxErrors), 15);
        assert_eq!(get(Metric::TxErrors), 3);
        assert_eq!(get(Metric::TxDropped), 4);
        assert_eq!(get(Metric::TxCollisions), 3);
        assert_eq!(get(Metric::TxCarrier), 6);
        assert!(
            !eth.columns.supplies(Metric::RxDropped),
            "N/A is unavailable"
        );
        assert!(!eth.columns.supplies(Metric::RxFifo));
        assert!(eth.link.is_none(), "the counters tables carry no link");
        // mgmt0 counts packets, not bytes, and the errors table left it out.
        let mgmt = row(&snapshot, "mgmt0");
        assert_eq!(mgmt.counters[Metric::RxPackets as usize], 266_806_619);
        assert!(!mgmt.columns.supplies(Metric::RxBytes));
        assert!(!mgmt.columns.supplies(Metric::TxPackets));
        assert!(!mgmt.columns.supplies(Metric::RxCrc));
        assert_eq!(snapshot.partial, None);
    }

    #[test]
    fn a_packet_count_needs_every_part() {
        let snapshot = sample(
            r#"{"TABLE_rx_counters": {"ROW_rx_counters":
                {"interface_rx": "Ethernet1/2", "eth_inbytes": 10, "eth_inucast": 1}}}"#,
            Ok("{}"),
        );
        let eth = row(&snapshot, "Ethernet1/2");
        assert!(eth.columns.supplies(Metric::RxBytes));
        assert!(
            !eth.columns.supplies(Metric::RxPackets),
            "unicast alone would undercount"
        );
        assert!(!eth.columns.supplies(Metric::TxBytes));
    }

    #[test]
    fn failed_errors_leave_the_traffic_counters() {
        let refused = NxapiError::Reply {
            command: SHOW_COUNTERS_ERRORS.to_string(),
            reason: "structured output unsupported".to_string(),
        };
        let snapshot = sample(COUNTERS, Err(refused));
        let eth = row(&snapshot, "Ethernet1/1");
        assert_eq!(eth.counters[Metric::RxBytes as usize], 288_825_287);
        assert!(!eth.columns.supplies(Metric::RxCrc));
        assert!(!eth.columns.supplies(Metric::TxErrors));
        let partial = snapshot.partial.unwrap();
        assert!(
            partial.contains(SHOW_COUNTERS_ERRORS) && partial.contains("unavailable"),
            "{partial}"
        );
    }

    #[test]
    fn failed_counters_lose_the_tick_without_asking_for_errors() {
        let mut snapshot = sample(COUNTERS, Ok(ERRORS));
        let asked = std::cell::Cell::new(false);
        let error = fill(
            &mut NameMap::default(),
            Err(NxapiError::Reply {
                command: SHOW_COUNTERS.to_string(),
                reason: "garbled".to_string(),
            }),
            || {
                asked.set(true);
                Ok(Tables::default())
            },
            &mut snapshot,
        )
        .unwrap_err();
        assert!(error.to_string().contains("garbled"), "{error}");
        assert!(snapshot.rows.is_empty());
        assert!(!asked.get(), "no second request after the first failed");
    }

    #[test]
    fn the_fixtures_read() {
        let counters = body(include_str!(
            "../../../tests/fixtures/nxapi/show_interface_counters_96.json"
        ));
        let errors = body(include_str!(
            "../../../tests/fixtures/nxapi/show_interface_counters_errors_96.json"
        ));
        let snapshot = sample(&counters, Ok(&errors));
        let ports = snapshot
            .rows
            .iter()
            .filter(|r| r.name.starts_with("Ethernet"))
            .count();
        assert_eq!(ports, 96);
        let last = row(&snapshot, "Ethernet2/48");
        assert!(last.columns.supplies(Metric::RxCrc));
        assert!(last.columns.supplies(Metric::TxPackets));
    }

    #[test]
    fn an_absent_socket_is_a_clear_error() {
        let mut source =
            CountersSource::new("/nonexistent/nxapi.sock", "admin", Duration::from_secs(1));
        let error = source.sample().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/nxapi.sock"), "{error}");
        assert!(error.contains("feature nxapi"), "{error}");
    }
}
