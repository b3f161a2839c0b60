//! The closed sets a trace speaks in — what a hop does, what kind of stage
//! it is, a route's type and its next hops' flags, an interface's
//! operational state, a neighbour entry's state — as enums, so a backend cannot misspell one and a reader can match on them.
//! Each serializes as the word the JSON always carried.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What happens to the flow at a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Forward,
    Resolve,
    Output,
    Deliver,
    Drop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Resolve => "resolve",
            Action::Output => "output",
            Action::Deliver => "deliver",
            Action::Drop => "drop",
        }
    }
}

/// The stage a hop describes: its `type` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopKind {
    L3Routing,
    Neighbor,
    Egress,
    Local,
    Drop,
}

impl HopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::L3Routing => "l3_routing",
            HopKind::Neighbor => "neighbor",
            HopKind::Egress => "egress",
            HopKind::Local => "local",
            HopKind::Drop => "drop",
        }
    }
}

/// RFC 2863 operational state of an interface, as the kernel numbers it;
/// NX-OS speaks its own words (`sfp-missing`, `link-not-connected`), which
/// are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperState {
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    /// The driver tracks no operational state (loopback, tunnels).
    Unknown,
    /// A state outside RFC 2863, in the switch's own words.
    #[serde(untagged)]
    Other(String),
}

impl OperState {
    /// `IF_OPER_*` as the kernel numbers it in `IFLA_OPERSTATE`.
    pub fn from_kernel(state: Option<u8>) -> OperState {
        match state {
            Some(1) => OperState::NotPresent,
            Some(2) => OperState::Down,
            Some(3) => OperState::LowerLayerDown,
            Some(4) => OperState::Testing,
            Some(5) => OperState::Dormant,
            Some(6) => OperState::Up,
            _ => OperState::Unknown,
        }
    }

    /// A word as the JSON or a switch spells it; one outside RFC 2863's
    /// lower-case names is kept as it is.
    pub fn from_word(word: &str) -> OperState {
        match word {
            "notpresent" => OperState::NotPresent,
            "down" => OperState::Down,
            "lowerlayerdown" => OperState::LowerLayerDown,
            "testing" => OperState::Testing,
            "dormant" => OperState::Dormant,
            "up" => OperState::Up,
            "unknown" => OperState::Unknown,
            other => OperState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
            OperState::Unknown => "unknown",
            OperState::Other(word) => word,
        }
    }
}

/// A neighbour entry's NUD state, as `ip neigh` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighborState {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    Noarp,
    Permanent,
    /// There is no entry yet: the first packet starts resolution.
    None,
    /// A state this build does not know (a newer kernel's, or a newer
    /// agent's answer read by an older one).
    #[serde(other)]
    Unknown,
}

impl NeighborState {
    /// `NUD_*` as the kernel numbers it.
    pub fn from_kernel(state: u16) -> NeighborState {
        match state {
            0x01 => NeighborState::Incomplete,
            0x02 => NeighborState::Reachable,
            0x04 => NeighborState::Stale,
            0x08 => NeighborState::Delay,
            0x10 => NeighborState::Probe,
            0x20 => NeighborState::Failed,
            0x40 => NeighborState::Noarp,
            0x80 => NeighborState::Permanent,
            0x00 => NeighborState::None,
            _ => NeighborState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NeighborState::Incomplete => "incomplete",
            NeighborState::Reachable => "reachable",
            NeighborState::Stale => "stale",
            NeighborState::Delay => "delay",
            NeighborState::Probe => "probe",
            NeighborState::Failed => "failed",
            NeighborState::Noarp => "noarp",
            NeighborState::Permanent => "permanent",
            NeighborState::None => "none",
            NeighborState::Unknown => "unknown",
        }
    }
}

/// A route's type (`RTN_*`), as `ip route` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
    Xresolve,
    /// A type this build has no name for: `type 12`.
    #[serde(untagged)]
    Other(String),
}

impl RouteKind {
    /// `RTN_*` as the kernel numbers it.
    pub fn from_kernel(kind: u8) -> RouteKind {
        match kind {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            4 => RouteKind::Anycast,
            5 => RouteKind::Multicast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            9 => RouteKind::Throw,
            10 => RouteKind::Nat,
            11 => RouteKind::Xresolve,
            other => RouteKind::Other(format!("type {other}")),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Local => "local",
            RouteKind::Broadcast => "broadcast",
            RouteKind::Anycast => "anycast",
            RouteKind::Multicast => "multicast",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Prohibit => "prohibit",
            RouteKind::Throw => "throw",
            RouteKind::Nat => "nat",
            RouteKind::Xresolve => "xresolve",
            RouteKind::Other(word) => word,
        }
    }
}

/// A next hop's flag (`RTNH_F_*`), as `ip route` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NextHopFlag {
    /// The kernel holds the next hop dead.
    Dead,
    /// Its link has no carrier.
    Linkdown,
    Onlink,
    Offload,
    Trap,
    /// A flag a newer agent names and this build does not.
    #[serde(untagged)]
    Other(String),
}

impl NextHopFlag {
    /// The flags set in `RTNH_F_*` bits, in the order `ip route` prints them.
    pub fn from_kernel(flags: u32) -> Vec<NextHopFlag> {
        [
            (1, NextHopFlag::Dead),
            (16, NextHopFlag::Linkdown),
            (4, NextHopFlag::Onlink),
            (8, NextHopFlag::Offload),
            (64, NextHopFlag::Trap),
        ]
        .into_iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, flag)| flag)
        .collect()
    }

    pub fn as_str(&self) -> &str {
        match self {
            NextHopFlag::Dead => "dead",
            NextHopFlag::Linkdown => "linkdown",
            NextHopFlag::Onlink => "onlink",
            NextHopFlag::Offload => "offload",
            NextHopFlag::Trap => "trap",
            NextHopFlag::Other(word) => word,
        }
    }
}

macro_rules! display_as_str {
    ($($kind:ty),*) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $kind {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )*};
}

display_as_str!(
    Action,
    HopKind,
    OperState,
    NeighborState,
    RouteKind,
    NextHopFlag
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant serializes as the word it prints, and reads back.
    #[test]
    fn each_word_is_the_json_and_reads_back() {
        fn check<T: Serialize + for<'a> Deserialize<'a> + PartialEq + fmt::Debug + fmt::Display>(
            values: &[T],
        ) {
            for value in values {
                let json = serde_json::to_string(value).unwrap();
                assert_eq!(json, format!("\"{value}\""));
                assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value);
            }
        }
        check(&[
            Action::Forward,
            Action::Resolve,
            Action::Output,
            Action::Deliver,
            Action::Drop,
        ]);
        check(&[
            HopKind::L3Routing,
            HopKind::Neighbor,
            HopKind::Egress,
            HopKind::Local,
            HopKind::Drop,
        ]);
        let opers: Vec<OperState> = (0..=7).map(|n| OperState::from_kernel(Some(n))).collect();
        check(&opers);
        check(&[OperState::Other("sfp-missing".into())]);
        let nud: Vec<NeighborState> = [0, 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0x100]
            .into_iter()
            .map(NeighborState::from_kernel)
            .collect();
        check(&nud);
        let kinds: Vec<RouteKind> = (0..=12).map(RouteKind::from_kernel).collect();
        check(&kinds);
        check(&NextHopFlag::from_kernel(0xff));
    }

    #[test]
    fn words_outside_the_set_are_kept_or_unknown() {
        assert_eq!(OperState::from_word("up"), OperState::Up);
        assert_eq!(
            OperState::from_word("link-not-connected"),
            OperState::Other("link-not-connected".into())
        );
        assert_eq!(
            serde_json::from_str::<OperState>("\"lowerlayerdown\"").unwrap(),
            OperState::LowerLayerDown
        );
        assert_eq!(
            serde_json::from_str::<OperState>("\"Up\"").unwrap(),
            OperState::Other("Up".into())
        );
        assert_eq!(
            serde_json::from_str::<NeighborState>("\"gone\"").unwrap(),
            NeighborState::Unknown
        );
        assert_eq!(HopKind::Drop, "drop");
        assert_eq!(RouteKind::from_kernel(0), "type 0");
        assert_eq!(RouteKind::from_kernel(6), RouteKind::Blackhole);
        assert_eq!(
            NextHopFlag::from_kernel(0x11),
            [NextHopFlag::Dead, NextHopFlag::Linkdown]
        );
        assert_eq!(
            serde_json::from_str::<NextHopFlag>("\"rt_offload_failed\"").unwrap(),
            NextHopFlag::Other("rt_offload_failed".into())
        );
        assert_eq!(NeighborState::from_kernel(0x20).to_string(), "failed");
    }
}
