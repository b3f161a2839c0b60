//! The Prometheus text format (version 0.0.4) of one published tick. The
//! interface families copy node_exporter's `netdev` and `netclass`
//! collectors name for name, HELP for HELP and label for label, so a
//! dashboard or rule written for node_exporter reads hopwatch unchanged; the
//! `hopwatch_` families are the agent's own.

use super::published::{Published, Series, TICK_BUCKETS};
use crate::link::OperState;
use crate::metric::Metric;
use std::fmt::Write as _;

/// node_exporter's `netdev` statistic for each counter column; its HELP is
/// "Network device statistic <key>.". `receive_crc_errors` is among its
/// detailed statistics, and what NX-API's `eth_crc` counts.
const NETDEV: [(Metric, &str); 17] = [
    (Metric::RxBytes, "receive_bytes"),
    (Metric::RxPackets, "receive_packets"),
    (Metric::RxErrors, "receive_errs"),
    (Metric::RxDropped, "receive_drop"),
    (Metric::RxFifo, "receive_fifo"),
    (Metric::RxFrame, "receive_frame"),
    (Metric::RxCompressed, "receive_compressed"),
    (Metric::RxMulticast, "receive_multicast"),
    (Metric::TxBytes, "transmit_bytes"),
    (Metric::TxPackets, "transmit_packets"),
    (Metric::TxErrors, "transmit_errs"),
    (Metric::TxDropped, "transmit_drop"),
    (Metric::TxFifo, "transmit_fifo"),
    (Metric::TxCollisions, "transmit_colls"),
    (Metric::TxCarrier, "transmit_carrier"),
    (Metric::TxCompressed, "transmit_compressed"),
    (Metric::RxCrc, "receive_crc_errors"),
];

/// A per-output family: name, HELP, TYPE and the figure it shows.
type OutputFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&super::OutputHealth) -> u64,
);

/// The exporter's own counts, kept by its thread rather than the tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Own {
    pub scrapes: u64,
    pub refused: u64,
}

/// Appends the text of `p` to `out`.
pub fn render(p: &Published, own: Own, out: &mut String) {
    for (metric, key) in NETDEV {
        let col = metric as usize;
        let name = format!("node_network_{key}_total");
        let help = format!("Network device statistic {key}.");
        family(out, &name, &help, "counter", &p.interfaces, &|s| {
            s.columns.has(col).then_some(s.counters[col])
        });
    }
    family(
        out,
        "node_network_up",
        "Value is 1 if operstate is 'up', 0 otherwise.",
        "gauge",
        &p.interfaces,
        &|s| Some(u64::from(s.link?.oper == OperState::Up)),
    );
    family(
        out,
        "node_network_carrier",
        "Network device property: carrier",
        "gauge",
        &p.interfaces,
        &|s| Some(u64::from(s.link?.carrier)),
    );
    family(
        out,
        "node_network_carrier_changes_total",
        "Network device property: carrier_changes_total",
        "counter",
        &p.interfaces,
        &|s| Some(s.link?.carrier_changes),
    );
    family(
        out,
        "node_network_speed_bytes",
        "Network device property: speed_bytes",
        "gauge",
        &p.interfaces,
        // node_exporter's arithmetic: Mb/s × 1000 × 1000 / 8.
        &|s| Some(s.link?.speed_mbps? * 125_000),
    );

    header(
        out,
        "hopwatch_alert_firing",
        "Alerts firing at the latest tick, one series per rule and interface, with the rule's labels.",
        "gauge",
    );
    for alert in &p.firing {
        out.push_str("hopwatch_alert_firing{rule=\"");
        escape(out, &alert.rule);
        out.push_str("\",interface=\"");
        escape(out, &alert.interface);
        let _ = write!(out, "\",severity=\"{}\"", alert.severity.as_str());
        // The rule's own labels (`team`, `runbook`), checked at load to be
        // label names that none of the three above can be.
        let labels = p.rule_labels.iter().find(|(rule, _)| *rule == alert.rule);
        for (name, value) in labels.map(|(_, l)| l.as_slice()).unwrap_or_default() {
            let _ = write!(out, ",{name}=\"");
            escape(out, value);
            out.push('"');
        }
        out.push_str("} 1\n");
    }
    header(
        out,
        "hopwatch_rule_evaluations_total",
        "(rule, interface) pairs evaluated since the agent started: each tick, the interfaces the rule's globs match.",
        "counter",
    );
    for (rule, n) in &p.evaluations {
        out.push_str("hopwatch_rule_evaluations_total{rule=\"");
        escape(out, rule);
        let _ = writeln!(out, "\"}} {n}");
    }
    header(
        out,
        "hopwatch_tick_seconds",
        "How long each tick took, from the start of the counter read to the end of the rules.",
        "histogram",
    );
    let mut cumulative = 0;
    for (bound, n) in TICK_BUCKETS.iter().zip(p.tick.buckets) {
        cumulative += n;
        let _ = writeln!(
            out,
            "hopwatch_tick_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "hopwatch_tick_seconds_bucket{{le=\"+Inf\"}} {}\nhopwatch_tick_seconds_sum {}\nhopwatch_tick_seconds_count {}",
        p.tick.count, p.tick.sum, p.tick.count
    );
    single(
        out,
        "hopwatch_skipped_ticks_total",
        "Ticks skipped because the previous read was still running.",
        "counter",
        p.skipped_ticks,
    );
    single(
        out,
        "hopwatch_source_up",
        "1 if the counter source answered at the latest tick; without it there are no interface series.",
        "gauge",
        u64::from(p.source_up),
    );
    single(
        out,
        "hopwatch_source_errors_total",
        "Ticks whose counter read failed or was partial.",
        "counter",
        p.source_errors,
    );
    single(
        out,
        "hopwatch_interfaces",
        "Interfaces the counter source reported at the latest tick.",
        "gauge",
        p.interfaces.len() as u64,
    );
    header(
        out,
        "hopwatch_last_tick_timestamp_seconds",
        "When the latest tick was published, in seconds since the epoch.",
        "gauge",
    );
    let _ = writeln!(out, "hopwatch_last_tick_timestamp_seconds {:.3}", p.at_unix);
    let outputs: [OutputFamily; 4] = [
        (
            "hopwatch_output_events_sent_total",
            "Events each output delivered.",
            "counter",
            |o| o.sent,
        ),
        (
            "hopwatch_output_failures_total",
            "Failed deliveries per output (each is retried).",
            "counter",
            |o| o.failures,
        ),
        (
            "hopwatch_output_events_dropped_total",
            "Events an output's full queue let go of.",
            "counter",
            |o| o.dropped,
        ),
        (
            "hopwatch_output_queued_events",
            "Events waiting in each output's queue.",
            "gauge",
            |o| o.queued,
        ),
    ];
    for (name, help, kind, value) in outputs {
        header(out, name, help, kind);
        for o in &p.outputs {
            let _ = write!(out, "{name}{{output=\"");
            escape(out, &o.name);
            let _ = writeln!(out, "\"}} {}", value(o));
        }
    }
    single(
        out,
        "hopwatch_events_dropped_total",
        "Events dropped by every output's queue and the spool, as heartbeats count them.",
        "counter",
        p.events_dropped,
    );
    if let Some(c) = &p.collector {
        single(
            out,
            "hopwatch_collector_connected",
            "1 while the collector output's connection is up.",
            "gauge",
            u64::from(c.connected),
        );
        single(
            out,
            "hopwatch_spool_events",
            "Events in the spool not yet acknowledged by the collector.",
            "gauge",
            c.spool_events,
        );
        single(
            out,
            "hopwatch_spool_bytes",
            "Bytes the spool holds on disk.",
            "gauge",
            c.spool_bytes,
        );
        single(
            out,
            "hopwatch_spool_dropped_events_total",
            "Events the full spool had to drop.",
            "counter",
            c.spool_dropped,
        );
    }
    single(
        out,
        "hopwatch_exporter_scrapes_total",
        "Scrapes of /metrics answered.",
        "counter",
        own.scrapes,
    );
    single(
        out,
        "hopwatch_exporter_refused_total",
        "Connections turned away with 503 because every scrape slot was taken.",
        "counter",
        own.refused,
    );
    header(
        out,
        "hopwatch_build_info",
        "The agent's version; the value is always 1.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "hopwatch_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {value}");
}

/// One `device`-labelled family; an interface without a value is left out,
/// and so is the family when no interface has one. The value comes as a
/// `dyn` closure so every family shares one copy of this loop.
#[inline(never)]
fn family(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    interfaces: &[Series],
    value: &dyn Fn(&Series) -> Option<u64>,
) {
    if !interfaces.iter().any(|s| value(s).is_some()) {
        return;
    }
    header(out, name, help, kind);
    for s in interfaces {
        if let Some(v) = value(s) {
            out.push_str(name);
            out.push_str("{device=\"");
            escape(out, &s.device);
            let _ = writeln!(out, "\"}} {v}");
        }
    }
}

/// A label value as the text format quotes it.
fn escape(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;
    use crate::exporter::published::Histogram;
    use crate::link::LinkState;
    use crate::metric::Columns;
    use crate::rule::FiringAlert;
    use std::time::{Duration, Instant};

    fn series(device: &str, columns: Columns, link: Option<LinkState>) -> Series {
        let mut counters = [0; crate::metric::COUNTER_COLUMNS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = 1000 + i as u64;
        }
        Series {
            device: device.into(),
            counters,
            columns,
            link,
        }
    }

    fn text(p: &Published) -> String {
        let mut out = String::new();
        render(p, Own::default(), &mut out);
        out
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn node_exporter_names_help_and_values() {
        let up = LinkState {
            admin_up: true,
            carrier: true,
            oper: OperState::Up,
            carrier_changes: 3,
            speed_mbps: Some(10_000),
        };
        let p = Published {
            interfaces: vec![series("eth0", Columns::PROC_NET_DEV, Some(up))],
            ..Published::default()
        };
        let t = text(&p);
        assert!(t.contains(
            "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
             # TYPE node_network_receive_bytes_total counter\n\
             node_network_receive_bytes_total{device=\"eth0\"} 1000\n"
        ));
        assert_eq!(
            line(&t, "node_network_transmit_colls_total{device=\"eth0\"}"),
            Some("1013")
        );
        assert_eq!(line(&t, "node_network_up{device=\"eth0\"}"), Some("1"));
        assert_eq!(
            line(&t, "node_network_speed_bytes{device=\"eth0\"}"),
            Some("1250000000")
        );
        assert_eq!(
            line(&t, "node_network_carrier_changes_total{device=\"eth0\"}"),
            Some("3")
        );
        assert!(
            t.contains("# HELP node_network_up Value is 1 if operstate is 'up', 0 otherwise.\n")
        );
        assert!(
            !t.contains("receive_crc_errors"),
            "procfs has no CRC column: the family is left out"
        );
    }

    #[test]
    fn a_missing_column_or_link_is_left_out_never_zero() {
        let unknown = LinkState {
            admin_up: true,
            carrier: true,
            oper: OperState::Unknown,
            carrier_changes: 0,
            speed_mbps: None,
        };
        let svi = series("Vlan10", Columns::NONE.with(Metric::RxBytes), None);
        let lo = series("lo", Columns::PROC_NET_DEV, Some(unknown));
        let t = text(&Published {
            interfaces: vec![svi, lo],
            ..Published::default()
        });
        assert!(line(&t, "node_network_receive_bytes_total{device=\"Vlan10\"}").is_some());
        assert!(line(&t, "node_network_transmit_bytes_total{device=\"Vlan10\"}").is_none());
        assert!(line(&t, "node_network_up{device=\"Vlan10\"}").is_none());
        assert_eq!(
            line(&t, "node_network_up{device=\"lo\"}"),
            Some("0"),
            "node_exporter's up is operstate == up; lo's is unknown"
        );
        assert!(!t.contains("node_network_speed_bytes"));
    }

    #[test]
    fn labels_are_escaped_and_hopwatch_families_present() {
        let p = Published {
            interfaces: vec![series("we\"ird\\\n", Columns::PROC_NET_DEV, None)],
            firing: vec![FiringAlert {
                rule: "tx-errors".into(),
                interface: "eth1".into(),
                severity: Severity::Critical,
                since: Instant::now(),
                value: 7.0,
            }],
            rule_labels: std::sync::Arc::new(vec![(
                "tx-errors".into(),
                vec![("team".into(), "dc \"ops\"".into())],
            )]),
            evaluations: vec![("tx-errors".into(), 42)],
            tick: {
                let mut h = Histogram::default();
                h.observe(Duration::from_micros(800));
                h.observe(Duration::from_millis(3));
                h
            },
            ..Published::default()
        };
        let t = text(&p);
        assert!(t.contains("node_network_receive_bytes_total{device=\"we\\\"ird\\\\\\n\"} 1000\n"));
        assert!(t.contains(
            "hopwatch_alert_firing{rule=\"tx-errors\",interface=\"eth1\",severity=\"critical\",team=\"dc \\\"ops\\\"\"} 1\n"
        ));
        assert!(t.contains("hopwatch_rule_evaluations_total{rule=\"tx-errors\"} 42\n"));
        assert!(t.contains("hopwatch_tick_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(t.contains("hopwatch_tick_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(t.contains("hopwatch_tick_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(t.contains("hopwatch_tick_seconds_count 2\n"));
        assert!(!t.contains("hopwatch_collector_connected"));
    }
}
