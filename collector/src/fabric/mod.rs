//! Fabric traces: one flow followed across the switches, each hop answered
//! by that switch's own agent from its own forwarding state, over the
//! connection the agent already holds to the collector.
//!
//! ```text
//! API/CLI ─► walk ─► Asker: trace_request {kind: hop, flow, ingress} to agent A ─► its Trace
//!             │  next hop 10.1.2.3 ─► Directory: owned by agent B, interface Eth1-5, VRF default
//!             └─► Asker: agent B, ingress Eth1-5 ─► … until delivered, dropped, unmanaged,
//!                 no_answer, loop or the hop limit
//! ```
//!
//! The walks (`walk`, `multipath`, `connectivity`) are pure over two
//! traits, [`Asker`] and [`Directory`], so they are tested against scripted
//! fabrics; the switchboard and the owners map implement them over the live
//! connections. What the collector alone knows of each egress (firing
//! alerts, recent link changes, downtime) is added afterwards from the store
//! (`known`), in one read for the whole answer.

mod asking;
pub mod connectivity;
pub mod known;
pub mod multipath;
pub mod owners;
pub mod relay;
pub mod render;
pub mod request;
#[cfg(test)]
mod scripted;
pub mod switchboard;
pub mod walk;

use hopwatch_wire::trace::{
    DropReason, Hop, Interface, LoadShare, Neighbor, Route, TraceAnswer, TraceQuery,
};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Hops a trace follows at most unless the request says otherwise.
pub const DEFAULT_HOP_LIMIT: usize = 32;
/// The largest hop limit a request may ask for.
pub const MAX_HOP_LIMIT: usize = 64;
/// Branches a multi-path answer holds at most unless the request says otherwise.
pub const DEFAULT_MAX_BRANCHES: usize = 256;
/// The largest branch bound a request may ask for.
pub const MAX_BRANCHES: usize = 4096;
/// How long one hop's agent may take to answer unless configured otherwise.
pub const DEFAULT_HOP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole trace may take unless configured otherwise.
pub const DEFAULT_TRACE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the trace endpoints share: the live connections and who owns which
/// address. Built once by the server.
pub struct Fabric {
    pub switchboard: Arc<switchboard::Switchboard>,
    pub owners: Arc<owners::Owners>,
    pub settings: TraceSettings,
}

/// The configured bounds of traces (`[trace]` in collector.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSettings {
    pub hop_timeout: Duration,
    pub timeout: Duration,
    pub hop_limit: usize,
    pub max_branches: usize,
}

impl Default for TraceSettings {
    fn default() -> TraceSettings {
        TraceSettings {
            hop_timeout: DEFAULT_HOP_TIMEOUT,
            timeout: DEFAULT_TRACE_TIMEOUT,
            hop_limit: DEFAULT_HOP_LIMIT,
            max_branches: DEFAULT_MAX_BRANCHES,
        }
    }
}

/// Why an agent gave no usable answer to one question. Each ends that hop
/// (`no_answer`), never the collector or another trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("agent {agent} is not connected to this collector")]
    Offline { agent: String },
    #[error("agent {agent} did not answer within {waited:?}")]
    Timeout { agent: String, waited: Duration },
    #[error("agent {agent}'s connection closed before it answered")]
    Closed { agent: String },
    #[error("agent {agent} answered something that is not a trace: {detail}")]
    Garbage { agent: String, detail: String },
    /// The agent read the question and said why it cannot answer it.
    #[error("agent {agent} could not trace: {error}")]
    Refused { agent: String, error: String },
    /// Too many questions were waiting to go out on the agent's connection
    /// (it reads slowly or not at all); refused at once rather than queued.
    #[error(
        "agent {agent} already has {queued} trace requests waiting to be sent to it; try again"
    )]
    Busy { agent: String, queued: usize },
}

/// Asks one agent one question over its live connection.
pub trait Asker: Send + Sync {
    /// Sends `query` to `agent` and waits at most `timeout` for its answer.
    /// An answer of kind `error` is [`AskError::Refused`].
    fn ask(
        &self,
        agent: &str,
        query: TraceQuery,
        timeout: Duration,
    ) -> impl Future<Output = Result<TraceAnswer, AskError>> + Send;
}

/// Which switch holds an address, from the addresses agents report per VRF
/// in `hello` and every heartbeat.
pub trait Directory: Send + Sync {
    /// The agent with `address` on one of its interfaces in `vrf`.
    fn owner(&self, vrf: &str, address: IpAddr) -> Option<Owner>;
    /// The agents with `address` inside a connected subnet in `vrf`, the
    /// longest prefix first: where a flow from that host enters the fabric.
    fn attached(&self, vrf: &str, address: IpAddr) -> Vec<Owner>;
    /// Every agent that has reported addresses, by name.
    fn agents(&self) -> Vec<String>;
}

/// An address an agent reported and where it sits on that switch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub agent: String,
    pub vrf: String,
    /// The interface that holds the address, as the agent named it.
    pub interface: String,
    /// The address with its prefix length, `10.1.0.1/31`.
    pub address: String,
}

/// The flow a trace follows, as a request gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default)]
    pub proto: Option<u8>,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
    #[serde(default = "default_vrf")]
    pub vrf: String,
    /// The first switch; `None` picks the agent that owns `src` or has it
    /// on a connected subnet.
    #[serde(default)]
    pub from: Option<String>,
}

fn default_vrf() -> String {
    hopwatch_wire::trace::DEFAULT_VRF.to_string()
}

/// One flow followed across the fabric: the OVN trace's shape, one entry in
/// `hops` per switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FabricTrace {
    pub request: FlowSpec,
    /// Every switch on the way answered (the outcome is not `no_answer`).
    pub success: bool,
    /// Delivered to a switch or to a host on a switch's connected subnet.
    pub reaches_destination: bool,
    pub outcome: Outcome,
    pub hops: Vec<FabricHop>,
    pub summary: String,
    /// Wall time of the whole walk, in microseconds.
    pub elapsed_us: u64,
    /// The return flow, when asked for (`reverse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<Box<FabricTrace>>,
    /// Whether both directions cross the same switches, when `reverse` is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetry: Option<Symmetry>,
}

/// How a trace ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The flow reached the switch `agent` itself, or leaves it onto the
    /// connected subnet that holds the destination (`interface`).
    Delivered {
        agent: String,
        #[serde(default)]
        interface: Option<String>,
        /// To the switch itself rather than to a host beside it.
        local: bool,
    },
    /// The switch `agent` drops the flow.
    Dropped {
        agent: String,
        reason: DropReason,
        description: String,
    },
    /// The next hop `address` belongs to no agent: the trace ends there.
    Unmanaged { agent: String, address: IpAddr },
    /// `agent` did not answer (offline, silent past the hop timeout, an
    /// answer that is not a trace) or the trace's own timeout ran out.
    NoAnswer { agent: String, why: String },
    /// The flow came back to a switch on an ingress it already arrived on.
    Loop { cycle: Vec<LoopStep> },
    /// The hop limit ran out before the flow was delivered or dropped.
    HopLimit { limit: usize },
}

impl Outcome {
    /// `delivered`, `dropped`, … as the JSON tags it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Dropped { .. } => "dropped",
            Outcome::Unmanaged { .. } => "unmanaged",
            Outcome::NoAnswer { .. } => "no_answer",
            Outcome::Loop { .. } => "loop",
            Outcome::HopLimit { .. } => "hop_limit",
        }
    }
}

/// One switch of a loop and the ingress the flow arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopStep {
    pub agent: String,
    pub ingress: Option<String>,
}

/// One switch on the way. `type`, `action` and `description` read like an
/// OVN trace's hop; the rest is what the switch answered and what the
/// collector knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FabricHop {
    /// 1 for the first switch.
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: FabricHopKind,
    /// `forward`, `deliver`, `drop`, or `stop` (no answer, unmanaged).
    pub action: String,
    pub description: String,
    pub agent: String,
    pub vrf: String,
    /// The interface the flow arrives on; `None` at the first switch when
    /// the flow starts there.
    pub ingress: Option<String>,
    /// The route matched, with every ECMP member and the chosen one.
    #[serde(default)]
    pub route: Option<Route>,
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
    #[serde(default)]
    pub neighbor: Option<Neighbor>,
    /// The interface the flow leaves by, with its state and counters.
    #[serde(default)]
    pub egress: Option<Interface>,
    #[serde(default)]
    pub load_share: Option<LoadShare>,
    /// `kernel` or `nxapi`.
    #[serde(default)]
    pub backend: String,
    /// Round trip of this hop's question, as the collector measured it.
    pub elapsed_us: u64,
    /// The switch's own time to answer.
    #[serde(default)]
    pub agent_elapsed_us: u64,
    /// The switch's stages (`l3_routing`, `neighbor`, `egress`, `drop`)
    /// exactly as its agent answered them.
    #[serde(default)]
    pub steps: Vec<Hop>,
    /// What the collector knows of the egress interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<Known>,
}

/// What a fabric hop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FabricHopKind {
    /// A switch whose agent answered.
    Switch,
    /// A switch whose agent did not answer.
    NoAnswer,
    /// A next hop no agent owns.
    Unmanaged,
}

/// What the collector knows of one interface of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub interface: String,
    /// Alerts firing on it now.
    pub firing: Vec<KnownAlert>,
    /// Its link changes in the last 10 minutes, oldest first.
    pub changes: Vec<KnownChange>,
    /// Seconds it was down in the last 24 hours.
    pub down_s_24h: f64,
    /// Seconds its agent was silent in the last 24 hours (neither up nor down).
    pub unknown_s_24h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownAlert {
    pub rule: String,
    pub severity: String,
    /// RFC 3339.
    pub since: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownChange {
    /// RFC 3339.
    pub at: String,
    /// `up`, `down`, `admin_down`, …
    pub state: String,
}

/// Whether the return flow crosses the same switches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symmetry {
    pub symmetric: bool,
    /// The switches of the forward trace, in order.
    pub forward: Vec<String>,
    /// The switches of the return trace, in the forward order (reversed).
    pub reverse: Vec<String>,
    /// Switches only one direction crosses.
    pub only_forward: Vec<String>,
    pub only_reverse: Vec<String>,
    pub description: String,
}

/// Every ECMP member followed: the distinct paths of one flow's
/// destination as a tree, and, for a source-port range, how many flows
/// take each path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathTree {
    pub request: FlowSpec,
    /// Every switch on every branch answered.
    pub success: bool,
    /// Every path delivers.
    pub reaches_destination: bool,
    /// The first switch, its children the switches each ECMP member leads to.
    pub tree: Branch,
    /// The end-to-end paths, one per leaf of the tree.
    pub paths: Vec<FabricPath>,
    /// The source ports spread over the paths, when a range was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<FlowSpread>,
    /// The bounds that cut the answer short; empty when it is whole.
    pub cut: Vec<String>,
    pub summary: String,
    pub elapsed_us: u64,
}

/// One switch of the tree and where its members lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub hop: FabricHop,
    /// The member of the parent's route that leads here (index into its
    /// `route.members`); `None` at the root.
    #[serde(default)]
    pub member: Option<usize>,
    pub children: Vec<Branch>,
    /// How the branch ends: at a leaf, or at a switch where some members
    /// end (a connected member delivers, one whose link is down drops)
    /// while the others lead on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// One end-to-end path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FabricPath {
    /// 1-based, in the tree's depth-first order.
    pub id: usize,
    pub hops: Vec<PathStep>,
    pub outcome: Outcome,
    pub reaches_destination: bool,
    /// Flows of the source-port range that take this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<u64>,
}

/// One switch of a path: where the flow arrives and leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    pub agent: String,
    pub ingress: Option<String>,
    pub egress: Option<String>,
    pub next_hop: Option<IpAddr>,
}

/// How the flows of a source-port range spread over the paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSpread {
    pub first: u16,
    pub last: u16,
    pub flows: u64,
    /// Flows whose end-to-end path could not be followed to its end.
    pub unfollowed: u64,
}

/// Sources × destinations × flows → reaches, or where and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connectivity {
    pub sources: Vec<IpAddr>,
    pub destinations: Vec<IpAddr>,
    pub cells: Vec<Cell>,
    pub fully_reachable: bool,
    /// Per-switch questions asked, and answered from the walk's cache.
    pub asked: u64,
    pub cached: u64,
    pub summary: String,
    pub elapsed_us: u64,
}

/// One pair and flow of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default)]
    pub proto: Option<u8>,
    #[serde(default)]
    pub dport: Option<u16>,
    pub reaches: bool,
    /// The outcome's tag: `delivered`, `dropped`, `unmanaged`, …
    pub result: String,
    /// The switch where it ended.
    pub at: Option<String>,
    /// Why it did not reach, in words.
    #[serde(default)]
    pub reason: Option<String>,
    pub switches: Vec<String>,
}

/// A connectivity question: every source to every destination, for each flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectivityQuery {
    pub sources: Vec<IpAddr>,
    pub destinations: Vec<IpAddr>,
    /// The protocols and ports to try for each pair; one entry with no
    /// protocol when the request gives none.
    pub flows: Vec<FlowKind>,
    #[serde(default = "default_vrf")]
    pub vrf: String,
}

/// One protocol and its ports, for a connectivity matrix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowKind {
    #[serde(default)]
    pub proto: Option<u8>,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
}

/// Why a walk could not start. Each is the caller's to fix, so each names
/// the request field at fault (a 400 from the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error(
        "no agent owns {src} or has it on a connected subnet in VRF {vrf}; give `from` with the first switch, one of: {}",
        list(candidates)
    )]
    NoStart {
        src: IpAddr,
        vrf: String,
        candidates: Vec<String>,
    },
    #[error(
        "{src} is on a connected subnet of several agents in VRF {vrf} ({}); give `from` with the one the flow enters by",
        list(candidates)
    )]
    AmbiguousStart {
        src: IpAddr,
        vrf: String,
        candidates: Vec<String>,
    },
    #[error(
        "no agent named {name:?} has reported to this collector; known agents: {}",
        list(known)
    )]
    UnknownAgent { name: String, known: Vec<String> },
    #[error(
        "the flows of a source-port range differ only in their ports, so they need a protocol with ports{}; give proto tcp (6) or udp (17)",
        proto.map(|p| format!(" (protocol {p} has none)")).unwrap_or_default()
    )]
    NoPorts { proto: Option<u8> },
}

impl WalkError {
    /// The request field to name in the answer.
    pub fn field(&self) -> &'static str {
        match self {
            WalkError::NoStart { .. } | WalkError::AmbiguousStart { .. } => "src",
            WalkError::UnknownAgent { .. } => "from",
            WalkError::NoPorts { .. } => "proto",
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
