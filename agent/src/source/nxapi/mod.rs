//! NX-API counter sources: on NX-OS, `/proc/net/dev` counts only the traffic
//! to and from the switch's CPU, while switched traffic and its errors live
//! in the hardware counters NX-API reports.
//!
//! NX-API runs every CLI request in a VSH session from a small pool, in a
//! capped cgroup, and the full `show interface` builds some eighty fields per
//! port (one took minutes on a Nexus 5696 with many FEX). So the `nxapi`
//! source that runs every tick, [`CountersSource`], asks for the two tables
//! that hold only counters, `show interface counters` and `show interface
//! counters errors`, one after the other; link changes come from netlink
//! carrier as on Linux. [`NxapiSource`] reads the full `show interface`, link
//! state and all, for `hopwatch counters` on demand and for replaying an
//! answer captured on a switch.

mod counters;
mod show_interface;

pub use counters::{CountersSource, SHOW_COUNTERS, SHOW_COUNTERS_ERRORS};
pub use show_interface::{NxapiSource, SHOW_INTERFACE};
