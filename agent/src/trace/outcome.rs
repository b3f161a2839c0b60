//! A trace being put together hop by hop, one copy for both backends: the
//! hops are numbered and placed the same way whoever answers, a drop always
//! ends the trace with its reason, and a flow that leaves or is delivered
//! always reaches its destination. Each backend keeps only its own words.

use super::{
    Action, DropReason, FlowQuery, HashInfo, Hop, Interface, LoadShare, Neighbor, Route, Step,
    Trace,
};
use std::net::IpAddr;

/// Why a flow goes no further, and what stopped it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dropped {
    pub reason: DropReason,
    /// The sentence the drop hop carries.
    pub detail: String,
    pub route: Option<Route>,
    pub setting: Option<String>,
    pub interface: Option<Interface>,
    pub neighbor: Option<Neighbor>,
    pub kernel_answer: Option<String>,
}

impl Dropped {
    pub fn new(reason: DropReason, detail: String) -> Dropped {
        Dropped {
            reason,
            detail,
            route: None,
            setting: None,
            interface: None,
            neighbor: None,
            kernel_answer: None,
        }
    }
}

/// The trace so far and where its hops happen (`<switch>/<vrf>`).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub trace: Trace,
    component: String,
}

impl Outcome {
    /// A trace of `request` with no hops yet; the backend fills in what it
    /// knows of the ingress, the hash and itself.
    pub fn new(request: &FlowQuery, switch: &str, backend: &str) -> Outcome {
        Outcome {
            component: format!("{switch}/{}", request.vrf),
            trace: Trace {
                request: request.clone(),
                success: true,
                reaches_destination: false,
                next_hop: None,
                egress_interface: None,
                ingress_interface: None,
                ingress_inferred: false,
                hops: Vec::new(),
                summary: String::new(),
                switch: switch.to_string(),
                backend: backend.to_string(),
                load_share: None,
                elapsed_us: 0,
                hash: None,
            },
        }
    }

    /// Sets what the backend read of the hash before the lookup.
    pub fn hashed(mut self, load_share: Option<LoadShare>, hash: Option<HashInfo>) -> Outcome {
        self.trace.load_share = load_share;
        self.trace.hash = hash;
        self
    }

    pub fn push(&mut self, action: Action, description: String, step: Step) {
        let index = self.trace.hops.len();
        self.trace.hops.push(Hop {
            index,
            component: self.component.clone(),
            action,
            description,
            step,
        });
    }

    /// The route lookup's hop.
    pub fn routed(
        &mut self,
        action: Action,
        description: String,
        route: Route,
        source_address: Option<IpAddr>,
    ) {
        self.push(
            action,
            description,
            Step::L3Routing {
                route,
                source_address,
            },
        );
    }

    /// Ends the trace with a drop.
    pub fn drop(&mut self, summary: String, dropped: Dropped) {
        self.trace.summary = summary;
        self.push(
            Action::Drop,
            dropped.detail,
            Step::Drop {
                reason: dropped.reason,
                route: dropped.route,
                setting: dropped.setting,
                interface: dropped.interface,
                neighbor: dropped.neighbor,
                kernel_answer: dropped.kernel_answer,
            },
        );
    }

    /// Ends the trace with delivery to the switch itself: the route that
    /// says so, then the local hop.
    pub fn deliver(
        &mut self,
        route: Route,
        source_address: Option<IpAddr>,
        interface: Option<String>,
        words: [String; 2],
        summary: String,
    ) {
        let [routing, delivery] = words;
        self.routed(Action::Deliver, routing, route.clone(), source_address);
        self.push(
            Action::Deliver,
            delivery,
            Step::Local {
                interface: interface.clone(),
                route: Some(route),
            },
        );
        self.trace.reaches_destination = true;
        self.trace.egress_interface = interface;
        self.trace.summary = summary;
    }

    /// Ends the trace with the flow leaving by `interface`.
    pub fn output(&mut self, words: String, interface: Interface) {
        self.push(Action::Output, words, Step::Egress { interface });
        self.trace.reaches_destination = true;
    }

    pub fn finish(self) -> Trace {
        self.trace
    }
}
