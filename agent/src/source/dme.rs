//! The `dme` counter source: on NX-OS, the hardware counters read from the
//! DME (NX-API REST) instead of the CLI. A CLI request takes one of the few
//! VSH sessions NX-API keeps, runs the command's parser inside a capped
//! cgroup and writes a temporary file; a DME read is answered from the
//! object store without any of that, which is why Cisco's own telemetry reads
//! interface counters there.
//!
//! Each tick is ONE request for every interface and every counter class:
//!
//! `GET /api/mo/sys/intf.json?query-target=subtree&target-subtree-class=rmonIfHCIn,rmonIfHCOut,rmonIfIn,rmonIfOut,rmonEtherStats`
//!
//! What NX-OS documents for it: the classes are the children of each port
//! (`sys/intf/phys-[eth1/1]/dbgIfHCIn`, `…/dbgIfIn`, `…/dbgEtherStats`;
//! developer.cisco.com, NX-API REST SDK user guide, "Querying Interface and
//! VLAN Counters and Statistics"), and `query-target=subtree` with
//! `target-subtree-class` on `sys/intf` is the very query Cisco's telemetry
//! configuration examples give for "Interface Stats" (the path Telegraf's
//! `cisco_telemetry_mdt` receives). The answer is `{"totalCount": "480",
//! "imdata": [{"rmonIfHCIn": {"attributes": {"dn": …, "octets": "…", …}}},
//! …]}`, every count a string. The DME's query options choose which
//! *objects* come back (`query-target`, `target-subtree-class`,
//! `query-target-filter`); no option found in NX-OS's documentation selects
//! *attributes* within an object, so each object comes whole and the parser
//! passes over the attributes it does not use without converting them.
//!
//! | DME class.attribute | column |
//! |---|---|
//! | `rmonIfHCIn.octets` | `rx_bytes` |
//! | `rmonIfHCIn.ucastPkts` + `multicastPkts` + `broadcastPkts` | `rx_packets` |
//! | `rmonIfHCIn.multicastPkts` | `rx_multicast` |
//! | `rmonIfIn.errors`, `rmonIfIn.discards` | `rx_errors`, `rx_dropped` |
//! | `rmonEtherStats.cRCAlignErrors` | `rx_crc` |
//! | `rmonIfHCOut.octets` | `tx_bytes` |
//! | `rmonIfHCOut.ucastPkts` + `multicastPkts` + `broadcastPkts` | `tx_packets` |
//! | `rmonIfOut.errors`, `rmonIfOut.discards` | `tx_errors`, `tx_dropped` |
//! | `rmonEtherStats.collisions` | `tx_collisions` |
//!
//! A port without the 64-bit `rmonIfHC*` classes takes its bytes and
//! packets from `rmonIfIn`/`rmonIfOut` (which may count in 32 bits; the
//! rule engine recognises a 32-bit wrap). A column whose class a port lacks is not
//! filled: unavailable, never zero. The DME has no FIFO, frame, carrier or
//! compression counts in these classes. An answer holding fewer objects than
//! its `totalCount` gives the ports it holds and says the tick was partial.
//!
//! Ports keep their NX-OS names, taken from the dn: `phys-[eth1/1]` is
//! `Ethernet1/1`, `aggr-[po10]` `port-channel10`, `mgmt-[mgmt0]` `mgmt0`.
//! The source reports no link state: since NX-OS 9.2(2) the front-panel
//! netdevs carry the port's carrier, so the kernel announces link changes
//! the moment they happen, at no cost to the switch.

use super::{CounterRow, CounterSource, Snapshot, SourceError};
use crate::hash::NameMap;
use crate::metric::{COUNTER_COLUMNS, Columns, Metric};
use crate::nxapi::{Client, Count, Key, NxapiError};
use crate::source::counters_from;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The one request each tick makes.
pub const COUNTER_QUERY: &str = "/api/mo/sys/intf.json?query-target=subtree&target-subtree-class=rmonIfHCIn,rmonIfHCOut,rmonIfIn,rmonIfOut,rmonEtherStats";

/// Reads every interface's hardware counters from the DME.
#[derive(Debug)]
pub struct DmeSource {
    client: Client,
}

impl DmeSource {
    /// `timeout` bounds one request; a tick it runs out loses that tick
    /// only.
    pub fn new(socket: impl Into<PathBuf>, user: &str, timeout: Duration) -> DmeSource {
        DmeSource {
            client: Client::new(socket, user, timeout),
        }
    }

    /// Maps a DME answer's JSON onto `snapshot` as a poll would: for
    /// replaying an answer captured on a switch, and for the benchmark.
    pub fn sample_body(&mut self, body: &str, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        snapshot.skipped.clear();
        snapshot.partial = None;
        let result = serde_json::from_str::<Reply>(body)
            .map_err(|e| reply_error(&e.to_string()))
            .and_then(|reply| fill(reply, snapshot));
        if result.is_err() {
            snapshot.rows.clear();
        }
        result.map_err(SourceError::from)
    }
}

impl CounterSource for DmeSource {
    fn name(&self) -> &'static str {
        "dme"
    }

    fn sample_into(&mut self, snapshot: &mut Snapshot) -> Result<(), SourceError> {
        snapshot.skipped.clear();
        snapshot.partial = None;
        let result = self
            .client
            .get::<Reply>(COUNTER_QUERY)
            .and_then(|reply| fill(reply, snapshot));
        match result {
            Ok(()) => Ok(()),
            Err(error) => {
                snapshot.rows.clear();
                Err(if error.is_rest_absent() {
                    SourceError::DmeAbsent(error)
                } else {
                    error.into()
                })
            }
        }
    }
}

fn reply_error(reason: &str) -> NxapiError {
    NxapiError::Reply {
        command: format!("GET {COUNTER_QUERY}"),
        reason: reason.to_string(),
    }
}

/// Writes the ports of `reply` into `snapshot`, reusing its rows.
fn fill(reply: Reply, snapshot: &mut Snapshot) -> Result<(), NxapiError> {
    if let Some((code, text)) = reply.error {
        return Err(reply_error(&format!(
            "the DME answered error {code}: {text}"
        )));
    }
    snapshot.skipped.extend(reply.skipped);
    if let Some(total) = reply.total.filter(|&total| total > reply.objects) {
        // The ports it holds are good; the others are missing this tick.
        snapshot.partial = Some(format!(
            "the DME matched {total} counter objects but sent {}; the ports it left out are unavailable this tick",
            reply.objects
        ));
    }
    let mut filled = 0;
    for port in &reply.ports {
        let Some((counters, columns)) = port.counters() else {
            continue;
        };
        let Some(name) = port_name(&port.key) else {
            snapshot.skipped.push(format!("sys/intf/{}", port.key));
            continue;
        };
        match snapshot.rows.get_mut(filled) {
            Some(row) => {
                if row.name != name {
                    row.name = name;
                }
                row.counters = counters;
                row.columns = columns;
                row.link = None;
            }
            None => snapshot.rows.push(CounterRow {
                name,
                counters,
                columns,
                link: None,
            }),
        }
        filled += 1;
    }
    snapshot.rows.truncate(filled);
    Ok(())
}

/// The NX-OS name of the interface a dn's `sys/intf/` child names:
/// `phys-[eth1/1]` is `Ethernet1/1`, `aggr-[po10]` is `port-channel10`,
/// `svi-[vlan10]` is `Vlan10`, `lb-[lo0]` is `loopback0`, `mgmt-[mgmt0]` is
/// `mgmt0`. `None` when the key is not `kind-[id]`.
pub fn port_name(key: &str) -> Option<String> {
    let (_, rest) = key.split_once("-[")?;
    let id = rest.strip_suffix(']')?;
    if id.is_empty() {
        return None;
    }
    let letters = id.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (prefix, number) = id.split_at(letters);
    let full = match prefix.to_ascii_lowercase().as_str() {
        "eth" | "ethernet" => "Ethernet",
        "po" | "port-channel" => "port-channel",
        "vlan" => "Vlan",
        "lo" | "loopback" => "loopback",
        "tunnel" => "Tunnel",
        _ => return Some(id.to_string()),
    };
    Some(format!("{full}{number}"))
}

/// The counter classes the query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    HcIn,
    HcOut,
    In,
    Out,
    EtherStats,
}

impl Class {
    fn of(name: &str) -> Option<Class> {
        Some(match name {
            "rmonIfHCIn" => Class::HcIn,
            "rmonIfHCOut" => Class::HcOut,
            "rmonIfIn" => Class::In,
            "rmonIfOut" => Class::Out,
            "rmonEtherStats" => Class::EtherStats,
            _ => return None,
        })
    }
}

/// The counts of one object the mapping uses; `None` where the object has
/// no such attribute or its value is not a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    octets: Option<u64>,
    ucast: Option<u64>,
    mcast: Option<u64>,
    bcast: Option<u64>,
    errors: Option<u64>,
    discards: Option<u64>,
    crc: Option<u64>,
    collisions: Option<u64>,
}

impl Counts {
    /// Every packet: unicast, multicast and broadcast, all three needed.
    fn packets(&self) -> Option<u64> {
        Some(
            self.ucast?
                .wrapping_add(self.mcast?)
                .wrapping_add(self.bcast?),
        )
    }
}

/// What one poll found of one port, class by class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Port {
    /// The dn's `sys/intf/` child: `phys-[eth1/1]`.
    key: String,
    hc_in: Option<Counts>,
    hc_out: Option<Counts>,
    if_in: Option<Counts>,
    if_out: Option<Counts>,
    ether: Option<Counts>,
}

impl Port {
    fn slot(&mut self, class: Class) -> &mut Option<Counts> {
        match class {
            Class::HcIn => &mut self.hc_in,
            Class::HcOut => &mut self.hc_out,
            Class::In => &mut self.if_in,
            Class::Out => &mut self.if_out,
            Class::EtherStats => &mut self.ether,
        }
    }

    /// The port's counters and which columns it filled; `None` when it
    /// counts nothing.
    fn counters(&self) -> Option<([u64; COUNTER_COLUMNS], Columns)> {
        use Metric::*;
        let get =
            |counts: Option<Counts>, f: fn(&Counts) -> Option<u64>| counts.as_ref().and_then(f);
        // The 64-bit class where the port has it, else the 32-bit one.
        let traffic = |hc: Option<Counts>, plain: Option<Counts>, f: fn(&Counts) -> Option<u64>| {
            get(hc, f).or_else(|| get(plain, f))
        };
        let fields = [
            (RxBytes, traffic(self.hc_in, self.if_in, |c| c.octets)),
            (RxPackets, traffic(self.hc_in, self.if_in, Counts::packets)),
            (RxMulticast, traffic(self.hc_in, self.if_in, |c| c.mcast)),
            (RxErrors, get(self.if_in, |c| c.errors)),
            (RxDropped, get(self.if_in, |c| c.discards)),
            (RxCrc, get(self.ether, |c| c.crc)),
            (TxBytes, traffic(self.hc_out, self.if_out, |c| c.octets)),
            (
                TxPackets,
                traffic(self.hc_out, self.if_out, Counts::packets),
            ),
            (TxErrors, get(self.if_out, |c| c.errors)),
            (TxDropped, get(self.if_out, |c| c.discards)),
            (TxCollisions, get(self.ether, |c| c.collisions)),
        ];
        let (counters, columns) = counters_from(fields);
        (columns != Columns::NONE).then_some((counters, columns))
    }
}

/// A DME answer, read in one pass: each object's counts go straight to its
/// port, and keys and dns are borrowed from the answer, so a poll allocates
/// per port rather than per attribute.
#[derive(Debug, Default)]
struct Reply {
    ports: Vec<Port>,
    index: NameMap<usize>,
    /// Objects whose dn names no `sys/intf/` port.
    skipped: Vec<String>,
    /// `imdata[].error.attributes`: its code and text.
    error: Option<(String, String)>,
    /// How many objects the DME says match, and how many `imdata` holds:
    /// fewer held than matched is an answer cut short.
    total: Option<u64>,
    objects: u64,
}

impl Reply {
    fn add(&mut self, class: Class, dn: &str, counts: Counts) {
        let Some(key) = dn
            .strip_prefix("sys/intf/")
            .and_then(|rest| rest.find(']').map(|end| &rest[..=end]))
        else {
            self.skipped.push(dn.to_string());
            return;
        };
        let index = match self.index.get(key) {
            Some(&index) => index,
            None => {
                self.ports.push(Port {
                    key: key.to_string(),
                    ..Port::default()
                });
                self.index.insert(key.to_string(), self.ports.len() - 1);
                self.ports.len() - 1
            }
        };
        *self.ports[index].slot(class) = Some(counts);
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reply, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Reply;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DME answer with `imdata`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reply, A::Error> {
                let mut reply = Reply::default();
                let mut imdata = false;
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.0 == "imdata" {
                        map.next_value_seed(Imdata(&mut reply))?;
                        imdata = true;
                    } else if key.0 == "totalCount" {
                        reply.total = map.next_value::<Count>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                if !imdata {
                    return Err(de::Error::missing_field("imdata"));
                }
                Ok(reply)
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// `imdata`: a list of one-key objects, the key naming the class.
struct Imdata<'a>(&'a mut Reply);

impl<'de> DeserializeSeed<'de> for Imdata<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Imdata<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of DME objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Object(&mut *self.0))?.is_some() {
            self.0.objects += 1;
        }
        Ok(())
    }
}

/// `{"rmonIfHCIn": {"attributes": {…}}}`.
struct Object<'a>(&'a mut Reply);

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DME object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let class = key.0.as_ref();
            if class == "error" {
                let body: Body<'de> = map.next_value()?;
                self.0.error = Some((
                    body.attributes.code.unwrap_or_default(),
                    body.attributes.text.unwrap_or_else(|| "no text".into()),
                ));
            } else if let Some(class) = Class::of(class) {
                let body: Body<'de> = map.next_value()?;
                match body.attributes.dn {
                    Some(dn) => self.0.add(class, &dn.0, body.attributes.counts),
                    None => self
                        .0
                        .skipped
                        .push(format!("a {class:?} object without a dn")),
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// An object's body: its `attributes`; `children` are not asked for.
#[derive(Default)]
struct Body<'de> {
    attributes: Attributes<'de>,
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Body<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DME object's body")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<'de>, A::Error> {
                let mut body = Body::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.0 == "attributes" {
                        body.attributes = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(body)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The attributes the mapping reads, every other one skipped unread.
#[derive(Default)]
struct Attributes<'de> {
    dn: Option<Key<'de>>,
    counts: Counts,
    /// An error object's.
    code: Option<String>,
    text: Option<String>,
}

impl<'de> Deserialize<'de> for Attributes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attributes<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DME object's attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes<'de>, A::Error> {
                let mut a = Attributes::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let slot = match key.0.as_ref() {
                        "dn" => {
                            a.dn = Some(map.next_value()?);
                            continue;
                        }
                        "code" => {
                            a.code = Some(map.next_value::<crate::nxapi::Text>()?.0);
                            continue;
                        }
                        "text" => {
                            a.text = Some(map.next_value()?);
                            continue;
                        }
                        "octets" => &mut a.counts.octets,
                        "ucastPkts" => &mut a.counts.ucast,
                        "multicastPkts" => &mut a.counts.mcast,
                        "broadcastPkts" => &mut a.counts.bcast,
                        "errors" => &mut a.counts.errors,
                        "discards" => &mut a.counts.discards,
                        "cRCAlignErrors" => &mut a.counts.crc,
                        "collisions" => &mut a.counts.collisions,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Count>()?.0;
                }
                Ok(a)
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(json: &str) -> Reply {
        serde_json::from_str(json).unwrap()
    }

    fn row<'a>(snapshot: &'a Snapshot, name: &str) -> &'a CounterRow {
        snapshot.rows.iter().find(|r| r.name == name).unwrap()
    }

    const ONE_PORT: &str = r#"{"totalCount": "5", "imdata": [
        {"rmonIfHCIn": {"attributes": {"broadcastPkts": "2", "childAction": "", "clearTs": "never",
            "dn": "sys/intf/phys-[eth1/1]/dbgIfHCIn", "modTs": "never", "multicastPkts": "30",
            "octets": "123456789012", "status": "", "ucastPkts": "1000"}}},
        {"rmonIfHCOut": {"attributes": {"broadcastPkts": "1", "dn": "sys/intf/phys-[eth1/1]/dbgIfHCOut",
            "multicastPkts": "10", "octets": "555", "ucastPkts": "100"}}},
        {"rmonIfIn": {"attributes": {"broadcastPkts": "2", "discards": "7", "dn": "sys/intf/phys-[eth1/1]/dbgIfIn",
            "errors": "3", "multicastPkts": "30", "nUcastPkts": "32", "octets": "1", "ucastPkts": "1000",
            "unknownProtos": "0"}}},
        {"rmonIfOut": {"attributes": {"discards": "0", "dn": "sys/intf/phys-[eth1/1]/dbgIfOut",
            "errors": "4", "qLen": "0"}}},
        {"rmonEtherStats": {"attributes": {"cRCAlignErrors": "9", "collisions": "0",
            "dn": "sys/intf/phys-[eth1/1]/dbgEtherStats", "octets": "1", "pkts": "1"}}}
    ]}"#;

    #[test]
    fn every_class_lands_on_its_columns() {
        let mut snapshot = Snapshot::default();
        let mut source = DmeSource::new("/nonexistent", "admin", Duration::from_secs(1));
        source.sample_body(ONE_PORT, &mut snapshot).unwrap();
        assert_eq!(snapshot.rows.len(), 1);
        let eth = row(&snapshot, "Ethernet1/1");
        let value = |m: Metric| eth.counters[m as usize];
        assert_eq!(
            value(Metric::RxBytes),
            123_456_789_012,
            "HC, not rmonIfIn's"
        );
        assert_eq!(value(Metric::RxPackets), 1032);
        assert_eq!(value(Metric::RxMulticast), 30);
        assert_eq!(value(Metric::RxErrors), 3);
        assert_eq!(value(Metric::RxDropped), 7);
        assert_eq!(value(Metric::RxCrc), 9);
        assert_eq!(value(Metric::TxBytes), 555);
        assert_eq!(value(Metric::TxPackets), 111);
        assert_eq!(value(Metric::TxErrors), 4);
        assert_eq!(value(Metric::TxDropped), 0);
        assert!(eth.columns.supplies(Metric::TxCollisions));
        for absent in [
            Metric::RxFifo,
            Metric::RxFrame,
            Metric::TxFifo,
            Metric::TxCarrier,
            Metric::RxCompressed,
            Metric::TxCompressed,
        ] {
            assert!(!eth.columns.supplies(absent), "{absent}");
        }
        assert!(eth.link.is_none(), "the dme source reports no links");
    }

    #[test]
    fn a_missing_class_leaves_its_columns_unfilled() {
        // No rmonEtherStats and no 64-bit classes: CRC and collisions are
        // unavailable, bytes and packets come from the 32-bit classes.
        let body = r#"{"totalCount": "2", "imdata": [
            {"rmonIfIn": {"attributes": {"broadcastPkts": "1", "discards": "0",
                "dn": "sys/intf/mgmt-[mgmt0]/dbgIfIn", "errors": "0", "multicastPkts": "2",
                "octets": "4000", "ucastPkts": "40"}}},
            {"rmonIfOut": {"attributes": {"broadcastPkts": "0", "discards": "0",
                "dn": "sys/intf/mgmt-[mgmt0]/dbgIfOut", "errors": "0", "multicastPkts": "0",
                "octets": "3000"}}}]}"#;
        let parsed = reply(body);
        let (counters, columns) = parsed.ports[0].counters().unwrap();
        assert_eq!(counters[Metric::RxBytes as usize], 4000);
        assert_eq!(counters[Metric::RxPackets as usize], 43);
        assert!(columns.supplies(Metric::TxBytes));
        assert!(
            !columns.supplies(Metric::TxPackets),
            "no ucastPkts out: the packet count is unknown, not the sum of the rest"
        );
        assert!(!columns.supplies(Metric::RxCrc));
        assert!(!columns.supplies(Metric::TxCollisions));
        assert_eq!(port_name(&parsed.ports[0].key).as_deref(), Some("mgmt0"));
    }

    #[test]
    fn ports_are_named_as_nxos_names_them() {
        for (key, name) in [
            ("phys-[eth1/1]", Some("Ethernet1/1")),
            ("phys-[eth1/49/2]", Some("Ethernet1/49/2")),
            ("aggr-[po10]", Some("port-channel10")),
            ("svi-[vlan10]", Some("Vlan10")),
            ("lb-[lo0]", Some("loopback0")),
            ("mgmt-[mgmt0]", Some("mgmt0")),
            ("tunnel-[tunnel7]", Some("Tunnel7")),
            ("encrtd-[eth1/1.10]", Some("Ethernet1/1.10")),
            ("phys-[]", None),
            ("phys", None),
        ] {
            assert_eq!(port_name(key).as_deref(), name, "{key}");
        }
    }

    #[test]
    fn objects_of_one_port_meet_in_any_order_and_strangers_are_skipped() {
        let body = r#"{"imdata": [
            {"rmonIfHCIn": {"attributes": {"dn": "sys/intf/phys-[eth1/2]/dbgIfHCIn", "octets": "1",
                "ucastPkts": "1", "multicastPkts": "0", "broadcastPkts": "0"}}},
            {"rmonIfHCIn": {"attributes": {"dn": "sys/intf/phys-[eth1/1]/dbgIfHCIn", "octets": "2",
                "ucastPkts": "2", "multicastPkts": "0", "broadcastPkts": "0"}}},
            {"rmonIfOut": {"attributes": {"dn": "sys/intf/phys-[eth1/2]/dbgIfOut", "errors": "5"}}},
            {"rmonIfIn": {"attributes": {"dn": "sys/other/x/dbgIfIn", "errors": "5"}}},
            {"l1PhysIf": {"attributes": {"dn": "sys/intf/phys-[eth1/2]", "adminSt": "up"}}},
            {"rmonIfIn": {"attributes": {"errors": "N/A", "dn": "sys/intf/phys-[eth1/1]/dbgIfIn"},
                "children": []}}]}"#;
        let mut snapshot = Snapshot::default();
        let mut source = DmeSource::new("/nonexistent", "admin", Duration::from_secs(1));
        source.sample_body(body, &mut snapshot).unwrap();
        let names: Vec<&str> = snapshot.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Ethernet1/2", "Ethernet1/1"]);
        assert_eq!(
            row(&snapshot, "Ethernet1/2").counters[Metric::TxErrors as usize],
            5
        );
        assert!(
            !row(&snapshot, "Ethernet1/1")
                .columns
                .supplies(Metric::RxErrors),
            "N/A is unavailable"
        );
        assert_eq!(snapshot.skipped, ["sys/other/x/dbgIfIn"]);
    }

    #[test]
    fn an_answer_cut_short_of_its_total_count_is_partial() {
        let mut snapshot = Snapshot::default();
        let mut source = DmeSource::new("/nonexistent", "admin", Duration::from_secs(1));
        source.sample_body(ONE_PORT, &mut snapshot).unwrap();
        assert_eq!(snapshot.partial, None, "5 of 5");
        let cut = ONE_PORT.replacen(r#""totalCount": "5""#, r#""totalCount": "960""#, 1);
        source.sample_body(&cut, &mut snapshot).unwrap();
        assert_eq!(snapshot.rows.len(), 1, "the port it holds is good");
        let partial = snapshot.partial.clone().unwrap();
        assert!(
            partial.contains("960") && partial.contains("sent 5"),
            "{partial}"
        );
        source.sample_body(ONE_PORT, &mut snapshot).unwrap();
        assert_eq!(snapshot.partial, None, "a whole answer clears it");
    }

    #[test]
    fn an_error_object_and_a_foreign_answer_are_errors() {
        let mut snapshot = Snapshot::default();
        let mut source = DmeSource::new("/nonexistent", "admin", Duration::from_secs(1));
        source.sample_body(ONE_PORT, &mut snapshot).unwrap();
        let error = source
            .sample_body(
                r#"{"totalCount": "1", "imdata": [{"error": {"attributes": {"code": "400",
                    "text": "Request failed, unresolved class for rmonIfHCIn"}}}]}"#,
                &mut snapshot,
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("error 400") && error.contains("unresolved class"),
            "{error}"
        );
        assert!(snapshot.rows.is_empty(), "a failed poll leaves no rows");
        let error = source
            .sample_body(r#"{"ins_api": {}}"#, &mut snapshot)
            .unwrap_err()
            .to_string();
        assert!(error.contains("imdata"), "{error}");
    }

    #[test]
    fn an_absent_rest_api_names_the_other_sources() {
        let error = SourceError::DmeAbsent(NxapiError::Rest {
            path: COUNTER_QUERY.into(),
            status: 404,
            message: "Not Found".into(),
        })
        .to_string();
        assert!(error.contains("HTTP 404"), "{error}");
        assert!(error.contains("source = \"nxapi\""), "{error}");
    }
}
