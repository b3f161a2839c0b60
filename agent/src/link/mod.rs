//! Link state: administrative and operational state, carrier, carrier
//! changes and speed per interface. Kept in a [`LinkTable`] that the netlink
//! watcher updates as the kernel announces changes, or that is refreshed from
//! sysfs each tick when netlink cannot be used (fixture roots, containers).

pub mod admin;
pub mod kind;
pub mod netlink;
pub mod sysfs;

use crate::hash::{NameMap, ShortName};
use std::collections::HashMap;

/// RFC 2863 operational state, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OperState {
    #[default]
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    /// Parses the words of `/sys/class/net/<if>/operstate`.
    pub fn from_word(word: &str) -> OperState {
        match word.trim() {
            "up" => OperState::Up,
            "down" => OperState::Down,
            "lowerlayerdown" => OperState::LowerLayerDown,
            "notpresent" => OperState::NotPresent,
            "testing" => OperState::Testing,
            "dormant" => OperState::Dormant,
            _ => OperState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Unknown => "unknown",
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
        }
    }
}

/// What hopwatch knows of one interface's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    /// `IFF_UP`: the administrator enabled it.
    pub admin_up: bool,
    /// `IFF_LOWER_UP`: the physical layer has a carrier.
    pub carrier: bool,
    pub oper: OperState,
    /// The kernel's count of carrier transitions since the device was created.
    pub carrier_changes: u64,
    /// Link speed; `None` when the driver does not report one (veth, down links).
    pub speed_mbps: Option<u64>,
}

impl LinkState {
    /// Whether the link forwards traffic. Drivers that do not track the
    /// operational state report `unknown`; those count as up when enabled and
    /// carrying. On NX-OS 9.2(2) and later the netdevs stay admin-up and the
    /// carrier is the truth, which this rule covers too.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.carrier && matches!(self.oper, OperState::Up | OperState::Unknown)
    }
}

/// The link state of every interface, by name.
#[derive(Debug, Default, Clone)]
pub struct LinkTable {
    entries: Vec<LinkEntry>,
    /// Where each name is in `entries`.
    index: NameMap<usize>,
}

#[derive(Debug, Clone)]
struct LinkEntry {
    short: ShortName,
    name: String,
    state: LinkState,
}

impl LinkTable {
    pub fn get(&self, name: &str) -> Option<&LinkState> {
        self.index.get(name).map(|&at| &self.entries[at].state)
    }

    /// [`LinkTable::get`] for a caller that asks for the same names in the
    /// same order every tick: `hint` remembers where the name was found, so
    /// the usual answer is a comparison in place rather than a hash lookup.
    pub fn get_hinted(&self, name: &str, hint: &mut usize) -> Option<&LinkState> {
        if let Some(entry) = self.entries.get(*hint)
            && entry.short.is(&entry.name, name)
        {
            return Some(&entry.state);
        }
        let &at = self.index.get(name)?;
        *hint = at;
        Some(&self.entries[at].state)
    }

    /// Records a new state; returns the previous one.
    pub fn set(&mut self, name: &str, state: LinkState) -> Option<LinkState> {
        match self.index.get(name) {
            Some(&at) => Some(std::mem::replace(&mut self.entries[at].state, state)),
            None => {
                self.index.insert(name.to_string(), self.entries.len());
                self.entries.push(LinkEntry {
                    short: ShortName::of(name),
                    name: name.to_string(),
                    state,
                });
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<LinkState> {
        let at = self.index.remove(name)?;
        let entry = self.entries.swap_remove(at);
        if let Some(moved) = self.entries.get(at)
            && let Some(slot) = self.index.get_mut(moved.name.as_str())
        {
            *slot = at;
        }
        Some(entry.state)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &LinkState)> {
        self.entries.iter().map(|e| (e.name.as_str(), &e.state))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A link's transition to report as a `link` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkChange {
    pub name: String,
    pub up: bool,
    pub carrier_changes: u64,
    pub oper: OperState,
    /// The first state seen for this name: what it was before is unknown.
    pub initial: bool,
}

/// Turns successive link states into up/down transitions. The first state
/// seen for a name is reported as initial, so a link already down when the
/// agent starts (or when it appears) has a known start to its outage; a
/// carrier that flapped and came back between two observations (its
/// `carrier_changes` moved by two or more with the state unchanged) reports
/// both halves.
#[derive(Debug, Default)]
pub struct LinkTracker {
    last: HashMap<String, (bool, u64)>,
}

impl LinkTracker {
    pub fn observe(&mut self, name: &str, state: &LinkState, out: &mut Vec<LinkChange>) {
        let up = state.is_up();
        let changes = state.carrier_changes;
        let Some(last) = self.last.get_mut(name) else {
            self.last.insert(name.to_string(), (up, changes));
            out.push(LinkChange {
                name: name.to_string(),
                up,
                carrier_changes: changes,
                oper: state.oper,
                initial: true,
            });
            return;
        };
        let (was_up, was_changes) = *last;
        *last = (up, changes);
        let change = |up| LinkChange {
            name: name.to_string(),
            up,
            carrier_changes: changes,
            oper: state.oper,
            initial: false,
        };
        if up != was_up {
            out.push(change(up));
        } else if changes >= was_changes.saturating_add(2) {
            out.push(LinkChange {
                oper: if up { OperState::Down } else { OperState::Up },
                ..change(!up)
            });
            out.push(change(up));
        }
    }

    /// Forgets an interface that vanished; returns whether it was up.
    pub fn forget(&mut self, name: &str) -> Option<bool> {
        self.last.remove(name).map(|(up, _)| up)
    }

    pub fn is_up(&self, name: &str) -> Option<bool> {
        self.last.get(name).map(|(up, _)| *up)
    }

    /// Forgets every name `keep` rejects.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.last.retain(|name, _| keep(name));
    }

    /// Whether a state was seen for `name` since it last vanished.
    pub fn knows(&self, name: &str) -> bool {
        self.last.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(carrier_changes: u64) -> LinkState {
        LinkState {
            admin_up: true,
            carrier: true,
            oper: OperState::Up,
            carrier_changes,
            speed_mbps: None,
        }
    }

    #[test]
    fn the_link_table_finds_names_with_and_without_hints() {
        let mut table = LinkTable::default();
        for (i, name) in ["eth0", "eth1", "eth2"].iter().enumerate() {
            assert_eq!(table.set(name, up(i as u64)), None);
        }
        assert_eq!(table.set("eth1", up(10)), Some(up(1)));
        let mut hints = vec![0; 3];
        for _ in 0..2 {
            for (hint, (name, changes)) in
                hints
                    .iter_mut()
                    .zip([("eth2", 2), ("eth1", 10), ("eth0", 0)])
            {
                assert_eq!(table.get_hinted(name, hint), Some(&up(changes)));
            }
        }
        assert_eq!(hints, [2, 1, 0]);
        // Removing eth0 moves eth2 into its place; hints still find both.
        assert_eq!(table.remove("eth0"), Some(up(0)));
        assert_eq!(table.remove("eth0"), None);
        assert_eq!(table.get_hinted("eth2", &mut hints[0]), Some(&up(2)));
        assert_eq!(table.get_hinted("eth0", &mut hints[2]), None);
        assert_eq!(table.get("eth1"), Some(&up(10)));
        assert_eq!(table.len(), 2);
        let mut names: Vec<&str> = table.iter().map(|(n, _)| n).collect();
        names.sort_unstable();
        assert_eq!(names, ["eth1", "eth2"]);
    }

    #[test]
    fn up_needs_admin_carrier_and_a_live_oper_state() {
        let up = LinkState {
            admin_up: true,
            carrier: true,
            oper: OperState::Up,
            ..Default::default()
        };
        assert!(up.is_up());
        assert!(
            LinkState {
                oper: OperState::Unknown,
                ..up
            }
            .is_up()
        );
        assert!(
            !LinkState {
                carrier: false,
                ..up
            }
            .is_up()
        );
        assert!(
            !LinkState {
                admin_up: false,
                ..up
            }
            .is_up()
        );
        assert!(
            !LinkState {
                oper: OperState::LowerLayerDown,
                ..up
            }
            .is_up()
        );
        assert!(
            !LinkState {
                oper: OperState::Dormant,
                ..up
            }
            .is_up()
        );
    }

    fn state(up: bool, changes: u64) -> LinkState {
        LinkState {
            admin_up: true,
            carrier: up,
            oper: if up {
                OperState::Up
            } else {
                OperState::LowerLayerDown
            },
            carrier_changes: changes,
            speed_mbps: None,
        }
    }

    #[test]
    fn tracker_reports_the_initial_state_then_transitions() {
        let mut t = LinkTracker::default();
        let mut out = Vec::new();
        t.observe("eth0", &state(true, 1), &mut out);
        assert_eq!(
            out,
            [LinkChange {
                name: "eth0".into(),
                up: true,
                carrier_changes: 1,
                oper: OperState::Up,
                initial: true,
            }],
            "the first sighting reports where the link starts"
        );
        out.clear();
        t.observe("eth1", &state(false, 0), &mut out);
        assert_eq!((out[0].up, out[0].initial), (false, true));
        out.clear();
        t.observe("eth0", &state(true, 1), &mut out);
        assert!(out.is_empty());
        t.observe("eth0", &state(false, 2), &mut out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].up);
        assert!(!out[0].initial);
        assert_eq!(out[0].carrier_changes, 2);
        out.clear();
        t.observe("eth0", &state(true, 3), &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].up);
    }

    #[test]
    fn a_link_that_returns_is_seen_anew() {
        let mut t = LinkTracker::default();
        let mut out = Vec::new();
        t.observe("swp2", &state(true, 1), &mut out);
        assert!(t.knows("swp2"));
        assert_eq!(t.forget("swp2"), Some(true));
        assert!(!t.knows("swp2"));
        out.clear();
        t.observe("swp2", &state(false, 0), &mut out);
        assert_eq!((out.len(), out[0].up, out[0].initial), (1, false, true));
    }

    #[test]
    fn tracker_catches_a_flap_between_observations() {
        let mut t = LinkTracker::default();
        let mut out = Vec::new();
        t.observe("swp1", &state(true, 4), &mut out);
        out.clear();
        t.observe("swp1", &state(true, 6), &mut out);
        let ups: Vec<bool> = out.iter().map(|c| c.up).collect();
        assert_eq!(ups, vec![false, true]);
        out.clear();
        // A counter that went backwards (device recreated) is no flap.
        t.observe("swp1", &state(true, 0), &mut out);
        assert!(out.is_empty());
    }
}
