//! The text blocks of a trace that both binaries print: the agent for its
//! own switch, the collector for every switch of a fabric trace.

use super::{Interface, Route, proto_name};
use crate::text::escape;
use std::fmt::Write as _;

impl Interface {
    /// The `OUT_IF:` block of the flowtracker-like output both binaries
    /// print: state, MTU, speed and counters. The state is escaped: a
    /// collector prints what an agent sent.
    pub fn write_block(&self, out: &mut String) {
        let _ = writeln!(out, "\nOUT_IF:");
        let _ = write!(
            out,
            "  STATE: {}{}{}",
            escape(self.oper_state.as_str()),
            if self.admin_up { "" } else { " (admin down)" },
            if self.carrier || !self.admin_up {
                ""
            } else {
                " (no carrier)"
            }
        );
        if let Some(mtu) = self.mtu {
            let _ = write!(out, "  MTU: {mtu}");
        }
        match self.speed_mbps {
            Some(speed) => {
                let _ = writeln!(out, "  SPEED: {speed} Mb/s");
            }
            None => {
                let _ = writeln!(out, "  SPEED: N/A");
            }
        }
        match self.counters {
            Some(c) => {
                let _ = writeln!(out, "  RX_STATS:");
                let _ = writeln!(
                    out,
                    "    {} input packets  {} bytes",
                    c.rx_packets, c.rx_bytes
                );
                let _ = writeln!(
                    out,
                    "    {} input error  {} input discard",
                    c.rx_errors, c.rx_dropped
                );
                let _ = writeln!(out, "  TX_STATS:");
                let _ = writeln!(
                    out,
                    "    {} output packets  {} bytes",
                    c.tx_packets, c.tx_bytes
                );
                let _ = writeln!(
                    out,
                    "    {} output error  {} output discard",
                    c.tx_errors, c.tx_dropped
                );
            }
            None => {
                let _ = writeln!(out, "  RX_STATS: N/A\n  TX_STATS: N/A");
            }
        }
    }
}

impl Route {
    /// `unicast 10.9.0.0/16 proto bgp metric 20 table main`.
    pub fn line(&self) -> String {
        format!(
            "{} {} proto {} metric {} table {}",
            escape(self.kind.as_str()),
            escape(&self.prefix),
            escape(&self.protocol),
            self.metric,
            escape(&self.table_name)
        )
    }

    /// `ROUTE:` and, for an ECMP route, a line per member with the one
    /// this flow takes marked.
    pub fn write_block(&self, out: &mut String) {
        let _ = writeln!(out, "ROUTE: {}", self.line());
        if self.members.len() > 1 {
            for (i, member) in self.members.iter().enumerate() {
                let _ = write!(out, "  nexthop");
                if let Some(gw) = member.next_hop {
                    let _ = write!(out, " via {gw}");
                }
                let _ = write!(
                    out,
                    " dev {} weight {}",
                    escape(member.interface.as_deref().unwrap_or("?")),
                    member.weight
                );
                for flag in &member.flags {
                    let _ = write!(out, " {}", escape(flag.as_str()));
                }
                if self.chosen == Some(i) {
                    let _ = write!(out, "   <- this flow");
                }
                let _ = writeln!(out);
            }
        }
    }
}

/// `6 (tcp)`, or what a lookup without a protocol means.
pub fn proto_words(proto: Option<u8>) -> String {
    match proto {
        Some(p) => match proto_name(p) {
            Some(name) => format!("{p} ({name})"),
            None => p.to_string(),
        },
        None => "any (not part of the lookup)".into(),
    }
}

/// A port, or `-` for none.
pub fn port_words(port: Option<u16>) -> String {
    port.map_or_else(|| "-".to_string(), |p| p.to_string())
}
