//! The full `show interface` read as counters: some eighty fields per port
//! with the link state beside them. Too heavy for every tick on NX-OS (see
//! [`super`]); kept for `hopwatch counters` on demand, which wants the link
//! and speed with the counters, and for replaying an answer captured on a
//! switch ([`NxapiSource::sample_body`]).
//!
//! Its rows map onto hopwatch's columns:
//!
//! | NX-API field | column |
//! |---|---|
//! | `eth_inbytes`, `eth_inpkts` | `rx_bytes`, `rx_packets` |
//! | `eth_inerr`, `eth_indiscard` | `rx_errors`, `rx_dropped` |
//! | `eth_crc` | `rx_crc` |
//! | `eth_overrun`, `eth_frame`, `eth_inmcast` | `rx_fifo`, `rx_frame`, `rx_multicast` |
//! | `eth_outbytes`, `eth_outpkts` | `tx_bytes`, `tx_packets` |
//! | `eth_outerr`, `eth_outdiscard` | `tx_errors`, `tx_dropped` |
//! | `eth_underrun`, `eth_coll`, `eth_lostcarrier` | `tx_fifo`, `tx_collisions`, `tx_carrier` |
//!
//! SVIs (`Vlan10`: `svi_*` fields) and NVE tunnels (`nve1`: `nve_*`) count
//! bytes and packets only, unicast and multicast apart; their sums are the
//! columns. Some releases give an SVI only its received unicast
//! (`svi_ucast_pkts_in`, `svi_ucast_bytes_in`), and a tunnel has no error
//! counts: the columns a row does not carry stay unavailable. No row
//! supplies `rx_compressed` or `tx_compressed`. Rows that count nothing at
//! all are left out.
//!
//! The link comes with the counters: `state`/`admin_state` (`svi_line_proto`/
//! `svi_admin_state`), the reason a link is down (`state_rsn_desc`) and the
//! bandwidth (`eth_bw`, kbit/s). NX-API has no count of carrier transitions,
//! only the age of the last one (`eth_link_flapped`: `00:01:23`, `1d02h`,
//! `never`); the source counts the transitions it sees and, when that age
//! went back between two polls while the state stayed the same, the down and
//! up it missed.

use crate::hash::NameMap;
use crate::link::{LinkState, OperState};
use crate::metric::{COUNTER_COLUMNS, Columns, Metric};
use crate::nxapi::{Client, Count, Key, Rows};
use crate::source::counters_from;
use crate::source::{CounterRow, CounterSource, Snapshot, SourceError, SourceLink};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The command each poll runs.
pub const SHOW_INTERFACE: &str = "show interface";

/// Reads every interface's hardware counters and link through NX-API's
/// full `show interface`.
#[derive(Debug)]
pub struct NxapiSource {
    client: Client,
    flaps: NameMap<Flaps>,
}

/// What the previous poll saw of one link, to count its transitions.
#[derive(Debug, Clone, Copy, Default)]
struct Flaps {
    up: bool,
    /// Seconds since the last flap as NX-OS printed it; `None` for `never`
    /// or a form this parser does not know.
    age: Option<u64>,
    count: u64,
}

impl NxapiSource {
    /// `timeout` bounds one `show interface`; a tick it runs out loses that
    /// tick only.
    pub fn new(socket: impl Into<PathBuf>, user: &str, timeout: Duration) -> NxapiSource {
        NxapiSource {
            client: Client::new(socket, user, timeout),
            flaps: NameMap::default(),
        }
    }
}

impl CounterSource for NxapiSource {
    fn name(&self) -> &'static str {
        "nxapi"
    }

    fn reports_links(&self) -> bool {
        true
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        snapshot.skipped.clear();
        snapshot.partial = None;
        match self.client.show(SHOW_INTERFACE) {
            Ok(body) => {
                self.fill(body, snapshot);
                Ok(())
            }
            Err(error) => {
                snapshot.rows.clear();
                Err(error.into())
            }
        }
    }
}

impl NxapiSource {
    /// Maps the body of a `show interface` answer (the JSON under
    /// `ins_api.outputs.output.body`) onto `snapshot` as a poll would, flap
    /// counting included: for replaying an answer captured on a switch.
    pub fn sample_body(&mut self, body: &str, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        snapshot.skipped.clear();
        snapshot.partial = None;
        match serde_json::from_str(body) {
            Ok(body) => {
                self.fill(body, snapshot);
                Ok(())
            }
            Err(error) => {
                snapshot.rows.clear();
                Err(crate::nxapi::NxapiError::Reply {
                    command: SHOW_INTERFACE.to_string(),
                    reason: error.to_string(),
                }
                .into())
            }
        }
    }

    fn fill(&mut self, body: ShowInterface, snapshot: &mut Snapshot) {
        let mut filled = 0;
        for row in body.table.rows.0 {
            let Some((counters, columns)) = row.counters() else {
                continue;
            };
            if row.interface.is_empty() {
                continue;
            }
            let link = row.link().map(|(mut state, reason)| {
                state.carrier_changes = self.count_flaps(&row.interface, &state, row.flap_age());
                SourceLink { state, reason }
            });
            let next = CounterRow {
                name: row.interface,
                counters,
                columns,
                link,
            };
            match snapshot.rows.get_mut(filled) {
                Some(slot) => *slot = next,
                None => snapshot.rows.push(next),
            }
            filled += 1;
        }
        snapshot.rows.truncate(filled);
        if filled < self.flaps.len() {
            let present: std::collections::HashSet<&str> =
                snapshot.rows.iter().map(|r| r.name.as_str()).collect();
            self.flaps.retain(|name, _| present.contains(name.as_str()));
        }
    }

    /// The carrier transitions of `name` seen so far, this poll included.
    fn count_flaps(&mut self, name: &str, state: &LinkState, age: Option<u64>) -> u64 {
        let up = state.carrier;
        let Some(seen) = self.flaps.get_mut(name) else {
            self.flaps
                .insert(name.to_string(), Flaps { up, age, count: 0 });
            return 0;
        };
        let flapped_since = match (seen.age, age) {
            (Some(before), Some(now)) => now < before,
            (None, Some(_)) => true,
            _ => false,
        };
        if seen.up != up {
            seen.count += 1;
        } else if flapped_since {
            // Down and up again between two polls.
            seen.count += 2;
        }
        seen.up = up;
        seen.age = age;
        seen.count
    }
}

#[derive(Debug, Deserialize)]
struct ShowInterface {
    #[serde(rename = "TABLE_interface", default)]
    table: Table,
}

#[derive(Debug, Default, Deserialize)]
struct Table {
    #[serde(rename = "ROW_interface", default)]
    rows: Rows<Row>,
}

/// Declares [`Row`] and reads it field by field: a `show interface` row
/// carries some eighty fields of which the source wants thirty-odd, and one
/// `match` on each borrowed key, skipping the rest unread, is both smaller
/// code and a faster parse than a derived visitor per field.
macro_rules! row {
    (text: [$($text:ident),* $(,)?], counts: [$($count:ident),* $(,)?] $(,)?) => {
        /// One `ROW_interface`. Every field NX-OS may leave out is optional;
        /// the names are NX-API's.
        #[derive(Debug, Default)]
        struct Row {
            interface: String,
            $($text: Option<String>,)*
            $($count: Option<u64>,)*
        }

        impl<'de> Deserialize<'de> for Row {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Row, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = Row;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a ROW_interface object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                        let mut row = Row::default();
                        while let Some(key) = map.next_key::<Key<'de>>()? {
                            match key.0.as_ref() {
                                "interface" => row.interface = map.next_value()?,
                                $(stringify!($text) => row.$text = map.next_value()?,)*
                                $(stringify!($count) => row.$count = map.next_value::<Count>()?.0,)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(row)
                    }
                }
                deserializer.deserialize_map(Visitor)
            }
        }
    };
}

row! {
    text: [
        state, admin_state, state_rsn_desc, eth_link_flapped,
        svi_admin_state, svi_line_proto, svi_rsn_desc,
    ],
    counts: [
        eth_bw, eth_inbytes, eth_inpkts, eth_inerr, eth_indiscard, eth_overrun,
        eth_frame, eth_inmcast, eth_crc, eth_outbytes, eth_outpkts, eth_outerr,
        eth_outdiscard, eth_underrun, eth_coll, eth_lostcarrier,
        svi_bw, svi_ucast_pkts_in, svi_ucast_bytes_in, svi_mcast_pkts_in,
        svi_mcast_bytes_in, svi_ucast_pkts_out, svi_ucast_bytes_out,
        svi_mcast_pkts_out, svi_mcast_bytes_out,
        nve_rx_ucastpkts, nve_rx_ucastbytes, nve_rx_mcastpkts, nve_rx_mcastbytes,
        nve_tx_ucastpkts, nve_tx_ucastbytes, nve_tx_mcastpkts, nve_tx_mcastbytes,
    ],
}

/// Adds two halves of a count; either alone is the count when the other is
/// not reported.
fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.wrapping_add(b)),
        (a, b) => a.or(b),
    }
}

impl Row {
    /// The row's counters and which columns it filled; `None` when it counts
    /// nothing.
    fn counters(&self) -> Option<([u64; COUNTER_COLUMNS], Columns)> {
        use Metric::*;
        let fields = [
            (RxBytes, self.eth_inbytes),
            (RxPackets, self.eth_inpkts),
            (RxErrors, self.eth_inerr),
            (RxDropped, self.eth_indiscard),
            (RxFifo, self.eth_overrun),
            (RxFrame, self.eth_frame),
            (RxMulticast, self.eth_inmcast),
            (RxCrc, self.eth_crc),
            (TxBytes, self.eth_outbytes),
            (TxPackets, self.eth_outpkts),
            (TxErrors, self.eth_outerr),
            (TxDropped, self.eth_outdiscard),
            (TxFifo, self.eth_underrun),
            (TxCollisions, self.eth_coll),
            (TxCarrier, self.eth_lostcarrier),
            (
                RxBytes,
                sum(self.svi_ucast_bytes_in, self.svi_mcast_bytes_in),
            ),
            (
                RxPackets,
                sum(self.svi_ucast_pkts_in, self.svi_mcast_pkts_in),
            ),
            (RxMulticast, self.svi_mcast_pkts_in),
            (
                TxBytes,
                sum(self.svi_ucast_bytes_out, self.svi_mcast_bytes_out),
            ),
            (
                TxPackets,
                sum(self.svi_ucast_pkts_out, self.svi_mcast_pkts_out),
            ),
            (RxBytes, sum(self.nve_rx_ucastbytes, self.nve_rx_mcastbytes)),
            (RxPackets, sum(self.nve_rx_ucastpkts, self.nve_rx_mcastpkts)),
            (RxMulticast, self.nve_rx_mcastpkts),
            (TxBytes, sum(self.nve_tx_ucastbytes, self.nve_tx_mcastbytes)),
            (TxPackets, sum(self.nve_tx_ucastpkts, self.nve_tx_mcastpkts)),
        ];
        let (counters, columns) = counters_from(fields);
        (columns != Columns::NONE).then_some((counters, columns))
    }

    /// The link and, when it is down, why; `None` when the row gives no state.
    fn link(&self) -> Option<(LinkState, Option<String>)> {
        let (oper, admin, reason, bandwidth_kbit) = match (&self.state, &self.svi_line_proto) {
            (Some(state), _) => (state, &self.admin_state, &self.state_rsn_desc, self.eth_bw),
            (None, Some(proto)) => (
                proto,
                &self.svi_admin_state,
                &self.svi_rsn_desc,
                self.svi_bw,
            ),
            (None, None) => return None,
        };
        let up = is_up(oper);
        // Without an admin state the port is enabled unless its state says
        // it was shut.
        let admin_up = admin.as_deref().map_or(!oper.contains("admin"), is_up);
        let state = LinkState {
            admin_up,
            carrier: up,
            oper: if up { OperState::Up } else { OperState::Down },
            carrier_changes: 0,
            speed_mbps: bandwidth_kbit.map(|k| k / 1000).filter(|&m| m > 0),
        };
        let reason = (!up)
            .then(|| reason.clone())
            .flatten()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        Some((state, reason))
    }

    fn flap_age(&self) -> Option<u64> {
        self.eth_link_flapped.as_deref().and_then(flap_age)
    }
}

/// NX-OS writes `up`, and on some releases `eth-up` or `link-up`.
fn is_up(word: &str) -> bool {
    let word = word.trim();
    word.eq_ignore_ascii_case("up") || word.ends_with("-up")
}

/// Seconds since the last flap, from `eth_link_flapped`: `00:01:23`,
/// `1d02h`, `3w4d`, `33week(s) 1day(s)`, `1y12w`. `never` and forms not
/// listed are `None`.
fn flap_age(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.contains(':') {
        let mut seconds = 0u64;
        for part in text.split(':') {
            seconds = seconds
                .checked_mul(60)?
                .checked_add(part.trim().parse().ok()?)?;
        }
        return Some(seconds);
    }
    let mut seconds = 0u64;
    let mut rest = text;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || matches!(b, b'(' | b')'))
            .count();
        let unit = match rest[..unit_len].trim_end_matches("(s)") {
            "y" | "year" => 365 * 86_400,
            "w" | "week" => 7 * 86_400,
            "d" | "day" => 86_400,
            "h" | "hour" => 3_600,
            "m" | "minute" => 60,
            "s" | "second" => 1,
            _ => return None,
        };
        rest = &rest[unit_len..];
        seconds = seconds.checked_add(value.checked_mul(unit)?)?;
        any = true;
    }
    any.then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<Row> {
        serde_json::from_str::<ShowInterface>(json)
            .unwrap()
            .table
            .rows
            .0
    }

    #[test]
    fn flap_ages_in_every_form() {
        assert_eq!(flap_age("00:01:23"), Some(83));
        assert_eq!(flap_age("1d02h"), Some(93_600));
        assert_eq!(flap_age("3w4d"), Some(25 * 86_400));
        assert_eq!(flap_age("33week(s) 1day(s)"), Some(232 * 86_400));
        assert_eq!(flap_age("1y12w"), Some((365 + 84) * 86_400));
        assert_eq!(flap_age("never"), None);
        assert_eq!(flap_age(""), None);
        assert_eq!(flap_age("5 fortnights"), None);
    }

    #[test]
    fn an_ethernet_row_fills_its_columns() {
        let rows = parse(
            r#"{"TABLE_interface": {"ROW_interface": {
                "interface": "Ethernet1/1", "state": "up", "admin_state": "up",
                "eth_bw": 10000000, "eth_inbytes": "1000", "eth_inpkts": 10,
                "eth_crc": "3", "eth_outbytes": "2000", "eth_outerr": "N/A"}}}"#,
        );
        let (counters, columns) = rows[0].counters().unwrap();
        assert_eq!(counters[Metric::RxBytes as usize], 1000);
        assert_eq!(counters[Metric::RxPackets as usize], 10);
        assert_eq!(counters[Metric::RxCrc as usize], 3);
        assert_eq!(counters[Metric::TxBytes as usize], 2000);
        assert!(columns.supplies(Metric::RxCrc));
        assert!(!columns.supplies(Metric::TxErrors), "N/A is unavailable");
        assert!(!columns.supplies(Metric::RxCompressed));
        let (link, reason) = rows[0].link().unwrap();
        assert!(link.is_up());
        assert_eq!(link.speed_mbps, Some(10_000));
        assert_eq!(reason, None);
    }

    #[test]
    fn svi_and_nve_rows_sum_unicast_and_multicast() {
        let rows = parse(
            r#"{"TABLE_interface": {"ROW_interface": [
                {"interface": "Vlan10", "svi_admin_state": "up", "svi_line_proto": "down",
                 "svi_rsn_desc": "VLAN/BD is down", "svi_bw": "1000000",
                 "svi_ucast_pkts_in": "5", "svi_ucast_bytes_in": "500",
                 "svi_mcast_pkts_in": "2", "svi_mcast_bytes_in": "200"},
                {"interface": "nve1", "state": "up", "admin_state": "up",
                 "nve_rx_ucastpkts": "7", "nve_rx_mcastpkts": "1",
                 "nve_tx_ucastbytes": 700},
                {"interface": "Tunnel1", "admin_state": "down"}]}}"#,
        );
        let (svi, columns) = rows[0].counters().unwrap();
        assert_eq!(svi[Metric::RxBytes as usize], 700);
        assert_eq!(svi[Metric::RxPackets as usize], 7);
        assert_eq!(svi[Metric::RxMulticast as usize], 2);
        assert!(!columns.supplies(Metric::TxBytes));
        let (link, reason) = rows[0].link().unwrap();
        assert!(link.admin_up && !link.is_up());
        assert_eq!(reason.as_deref(), Some("VLAN/BD is down"));
        let (nve, _) = rows[1].counters().unwrap();
        assert_eq!(nve[Metric::RxPackets as usize], 8);
        assert_eq!(nve[Metric::TxBytes as usize], 700);
        assert!(
            rows[2].counters().is_none(),
            "a row counting nothing is left out"
        );
    }

    #[test]
    fn flaps_are_counted_even_between_polls() {
        let mut source = NxapiSource::new("/nonexistent", "admin", Duration::from_secs(1));
        let up = LinkState {
            admin_up: true,
            carrier: true,
            oper: OperState::Up,
            ..LinkState::default()
        };
        let down = LinkState {
            carrier: false,
            oper: OperState::Down,
            ..up
        };
        assert_eq!(source.count_flaps("e", &up, Some(100)), 0);
        assert_eq!(source.count_flaps("e", &up, Some(101)), 0);
        assert_eq!(source.count_flaps("e", &down, Some(0)), 1);
        assert_eq!(source.count_flaps("e", &up, Some(0)), 2);
        assert_eq!(source.count_flaps("e", &up, Some(1)), 2);
        // Down and up again between two polls: the age went back.
        assert_eq!(source.count_flaps("e", &up, Some(0)), 4);
        // `never` then an age: the first flap since boot.
        assert_eq!(source.count_flaps("f", &up, None), 0);
        assert_eq!(source.count_flaps("f", &up, Some(3)), 2);
    }

    #[test]
    fn an_absent_socket_is_a_clear_error() {
        let mut source =
            NxapiSource::new("/nonexistent/nxapi.sock", "admin", Duration::from_secs(1));
        let error = source.sample().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/nxapi.sock"), "{error}");
        assert!(error.contains("feature nxapi"), "{error}");
    }
}
