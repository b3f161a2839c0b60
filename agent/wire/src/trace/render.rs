//! The text blocks of a trace that both binaries print: the agent for its
//! own switch, the collector for every switch of a fabric trace.

use super::Interface;
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
