//! `hopwatch counters`: every interface with its counters and per-second
//! rates from two readings one interval apart — a better `netstat -i`. A
//! counter the source does not report for an interface (an SVI's transmit
//! side, a tunnel's errors) is unavailable: `-` in the table, `null` in the
//! JSON, as is a rate computed from it, so a missing count never reads as
//! a healthy zero.

use crate::link::LinkState;
use crate::metric::{Metric, counter_delta};
use crate::source::Snapshot;
use crate::text::escape;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// One interface's row; `None` is a counter the source does not report for
/// this interface, or a rate or utilisation computed from one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterView {
    pub name: String,
    /// `up`, `down`, or `unknown` when the link state could not be read.
    pub state: String,
    pub speed_mbps: Option<u64>,
    pub rx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_packets: Option<u64>,
    pub tx_errors: Option<u64>,
    pub tx_dropped: Option<u64>,
    pub rx_bps: Option<f64>,
    pub tx_bps: Option<f64>,
    pub rx_pps: Option<f64>,
    pub tx_pps: Option<f64>,
    pub rx_util: Option<f64>,
    pub tx_util: Option<f64>,
}

/// Rows for every interface present in `cur`; rates are zero for an
/// interface that was not in `prev`, and unavailable for a counter that
/// either reading lacks.
pub fn compute(
    prev: &Snapshot,
    cur: &Snapshot,
    elapsed: Duration,
    link: impl Fn(&str) -> Option<LinkState>,
) -> Vec<CounterView> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut rows: Vec<CounterView> = cur
        .rows
        .iter()
        .map(|row| {
            let before = prev.rows.iter().find(|p| p.name == row.name);
            let rate = |m: Metric| -> Option<f64> {
                let col = m.column().expect("a counter column");
                if !row.columns.has(col) {
                    return None;
                }
                match before {
                    None => Some(0.0),
                    Some(b) if b.columns.has(col) => {
                        Some(counter_delta(b.counters[col], row.counters[col]) as f64 / secs)
                    }
                    Some(_) => None,
                }
            };
            let state = link(&row.name);
            let speed = state.and_then(|s| s.speed_mbps).filter(|s| *s > 0);
            let util =
                |bytes_per_s: Option<f64>| Some(bytes_per_s? * 8.0 / (speed? as f64 * 1e6) * 100.0);
            let get = |m: Metric| {
                let col = m.column().expect("a counter column");
                row.columns.has(col).then_some(row.counters[col])
            };
            let rx_bps = rate(Metric::RxBytes).map(|r| r * 8.0);
            let tx_bps = rate(Metric::TxBytes).map(|r| r * 8.0);
            CounterView {
                name: row.name.clone(),
                state: match state {
                    Some(s) if s.is_up() => "up".into(),
                    Some(_) => "down".into(),
                    None => "unknown".into(),
                },
                speed_mbps: speed,
                rx_bytes: get(Metric::RxBytes),
                rx_packets: get(Metric::RxPackets),
                rx_errors: get(Metric::RxErrors),
                rx_dropped: get(Metric::RxDropped),
                tx_bytes: get(Metric::TxBytes),
                tx_packets: get(Metric::TxPackets),
                tx_errors: get(Metric::TxErrors),
                tx_dropped: get(Metric::TxDropped),
                rx_bps,
                tx_bps,
                rx_pps: rate(Metric::RxPackets),
                tx_pps: rate(Metric::TxPackets),
                rx_util: util(rate(Metric::RxBytes)),
                tx_util: util(rate(Metric::TxBytes)),
            }
        })
        .collect();
    rows.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    rows
}

/// Orders `eth2` before `eth10`, as operators read port lists.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut text = String::new();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                if !num.is_empty() {
                    out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                    num.clear();
                }
                text.push(c);
            }
        }
        out.push((text, num.parse().unwrap_or(0)));
        out
    }
    key(a).cmp(&key(b))
}

fn human_rate(bits: f64) -> String {
    const UNITS: [&str; 5] = ["b", "Kb", "Mb", "Gb", "Tb"];
    let mut value = bits;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1}{}/s", UNITS[unit])
}

/// The table a person reads.
pub fn render(rows: &[CounterView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<5} {:>7} {:>12} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}",
        "IFACE",
        "STATE",
        "SPEED",
        "RX",
        "TX",
        "RX-PPS",
        "TX-PPS",
        "RX-ERR",
        "TX-ERR",
        "RX-DROP",
        "TX-DROP",
        "RX%",
        "TX%"
    );
    for r in rows {
        let speed = r
            .speed_mbps
            .map(|s| {
                if s >= 1000 {
                    format!("{}G", s / 1000)
                } else {
                    format!("{s}M")
                }
            })
            .unwrap_or_else(|| "-".into());
        let pct = |u: Option<f64>| u.map(|u| format!("{u:.1}")).unwrap_or_else(|| "-".into());
        let rate = |bits: Option<f64>| bits.map(human_rate).unwrap_or_else(|| "-".into());
        let pps = |p: Option<f64>| p.map(|p| format!("{p:.0}")).unwrap_or_else(|| "-".into());
        let count = |c: Option<u64>| c.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<16} {:<5} {:>7} {:>12} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}",
            escape(&r.name),
            r.state,
            speed,
            rate(r.rx_bps),
            rate(r.tx_bps),
            pps(r.rx_pps),
            pps(r.tx_pps),
            count(r.rx_errors),
            count(r.tx_errors),
            count(r.rx_dropped),
            count(r.tx_dropped),
            pct(r.rx_util),
            pct(r.tx_util)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CounterRow;

    fn snapshot(name: &str, rx_bytes: u64, tx_packets: u64) -> Snapshot {
        let mut counters = [0; crate::metric::COUNTER_COLUMNS];
        counters[Metric::RxBytes as usize] = rx_bytes;
        counters[Metric::TxPackets as usize] = tx_packets;
        Snapshot {
            rows: vec![CounterRow::proc_net_dev(name, counters)],
            skipped: vec![],
            partial: None,
        }
    }

    #[test]
    fn rates_and_utilisation_over_the_interval() {
        let prev = snapshot("eth0", 1_000, 10);
        let cur = snapshot("eth0", 1_000 + 2 * 125_000_000, 30);
        let link = LinkState {
            admin_up: true,
            carrier: true,
            oper: crate::link::OperState::Up,
            carrier_changes: 1,
            speed_mbps: Some(10_000),
        };
        let rows = compute(&prev, &cur, Duration::from_secs(2), |_| Some(link));
        assert_eq!(rows[0].rx_bps, Some(1e9));
        assert_eq!(rows[0].tx_pps, Some(10.0));
        assert_eq!(rows[0].rx_util, Some(10.0));
        assert_eq!(rows[0].state, "up");
        assert!(render(&rows).contains("1.0Gb/s"));
    }

    #[test]
    fn a_column_the_row_lacks_is_unavailable_not_zero() {
        let mut counters = [0; crate::metric::COUNTER_COLUMNS];
        counters[Metric::RxBytes as usize] = 1_000;
        let svi = |rx_bytes: u64| {
            let mut counters = counters;
            counters[Metric::RxBytes as usize] = rx_bytes;
            Snapshot {
                rows: vec![CounterRow {
                    name: "Vlan2001".into(),
                    counters,
                    columns: crate::metric::Columns::NONE.with(Metric::RxBytes),
                    link: None,
                }],
                ..Snapshot::default()
            }
        };
        let rows = compute(&svi(1_000), &svi(2_000), Duration::from_secs(1), |_| None);
        let vlan = &rows[0];
        assert_eq!(vlan.rx_bytes, Some(2_000));
        assert_eq!(vlan.rx_bps, Some(8_000.0));
        assert_eq!(
            (vlan.tx_bytes, vlan.tx_errors, vlan.rx_dropped),
            (None, None, None)
        );
        assert_eq!((vlan.tx_bps, vlan.rx_pps), (None, None));
        let json = serde_json::to_value(vlan).unwrap();
        assert!(
            json["tx_errors"].is_null() && json["tx_bps"].is_null(),
            "{json}"
        );
        assert_eq!(json["rx_bytes"], 2_000);
        let table = render(&rows);
        let line = table.lines().nth(1).unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "Vlan2001", "unknown", "-", "8.0Kb/s", "-", "-", "-", "-", "-", "-", "-", "-", "-"
            ],
            "{table}"
        );
    }

    #[test]
    fn ports_sort_naturally() {
        let mut names = vec!["eth10", "eth2", "Eth1-10", "Eth1-2"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, vec!["Eth1-2", "Eth1-10", "eth2", "eth10"]);
    }
}
