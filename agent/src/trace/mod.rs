//! Flow trace: where one flow goes through this switch — the route that
//! matches, the ECMP member the flow hashes onto, the next hop's neighbour
//! entry and the egress interface — answered from the switch's own
//! forwarding state; and `paths`, how many flows of a range land on each
//! member and whether that spread is even.
//!
//! Callers hold a [`Backend`]: the kernel backend ([`KernelBackend`]) asks
//! the Linux FIB over rtnetlink, the NX-API backend ([`NxapiBackend`]) asks
//! the hardware. The queries and answers are `hopwatch_wire::trace`'s,
//! because the collector carries queries to agents and answers back.

mod chi_square;
pub mod hash;
pub mod kernel;
mod netlink;
pub mod nxapi;
mod outcome;
pub mod paths;
pub mod render;
mod vrf;

pub use hash::HashInfo;
pub use kernel::KernelBackend;
pub use nxapi::NxapiBackend;
pub use paths::{
    FlowPath, MemberState, PathMember, Paths, PathsQuery, PortRange, SourcePorts, Verdict,
};

pub use hopwatch_wire::trace::{
    Action, Counters, DEFAULT_VRF, DropReason, FlowQuery, Hop, HopKind, HopQuery, Interface,
    LoadShare, Member, Neighbor, NeighborState, NextHopFlag, OperState, Route, RouteKind, Step,
    Trace, TraceAnswer, TraceError, TraceQuery, has_ports, proto_name,
};

/// Something that answers flow queries from a switch's forwarding state.
pub trait Backend {
    /// A short name for output and logs (`kernel`, `nxapi`).
    fn name(&self) -> &'static str;

    /// Where one flow goes.
    fn trace(&mut self, query: &FlowQuery) -> Result<Trace, TraceError>;

    /// How the flows of a port range or sample spread over the members of
    /// the route to one destination.
    fn paths(&mut self, query: &PathsQuery) -> Result<Paths, TraceError>;

    /// One hop of a fabric trace: the flow as it arrives on the hop's
    /// ingress, which the lookup takes into account as for a real packet
    /// arriving there (reverse-path filter, forwarding, policy routing).
    fn hop(&mut self, query: &HopQuery) -> Result<Trace, TraceError> {
        self.trace(&query.arriving()?)
    }
}

/// Traces one flow through the kernel's forwarding state. A caller tracing
/// often keeps a [`KernelBackend`] instead, which reuses its netlink socket.
pub fn trace(query: &FlowQuery) -> Result<Trace, TraceError> {
    KernelBackend::new().trace(query)
}

/// Spreads many flows over the members of their route, through the kernel.
pub fn paths(query: &PathsQuery) -> Result<Paths, TraceError> {
    KernelBackend::new().paths(query)
}
