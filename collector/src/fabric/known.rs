//! What the collector alone knows of each hop's egress (firing alerts,
//! recent link changes, downtime), read from the store in one go: one call
//! of [`crate::store::Reads::with`], whose one snapshot serves the whole
//! answer, so a trace of many hops costs one trip to the blocking pool and
//! every hop is seen as of the same moment.
//!
//! A switch and its events may spell one interface two ways: on NX-OS a
//! link event or an alert says `Ethernet1/7` where the kernel, and so a
//! trace, says `Eth1-7`. Each interface is looked up under every spelling
//! ([`hopwatch_wire::ifname`]) and the answers joined.

use super::{Branch, FabricHop, FabricTrace, Known, KnownAlert, KnownChange, PathTree};
use crate::store::StoreError;
use crate::store::query::{self, AlertQuery, DowntimeQuery};
use crate::store::since::SinceCache;
use crate::store::sql::Sql;
use hopwatch_wire::ifname::{linux_name, nxos_name};
use std::collections::HashMap;
use std::time::Duration;

/// How far back a hop's link changes reach.
pub const CHANGES_WINDOW: Duration = Duration::from_secs(600);
/// How far back a hop's down and unknown time reach.
pub const DOWNTIME_WINDOW: Duration = Duration::from_secs(86_400);

/// An agent and an interface of it, as the trace names them.
pub type Key = (String, String);

/// The egress of every hop of a trace and of its return trace.
pub fn wanted_trace(trace: &FabricTrace) -> Vec<Key> {
    let mut out = Vec::new();
    let mut add = |t: &FabricTrace| {
        for hop in &t.hops {
            push_key(&mut out, hop);
        }
    };
    add(trace);
    if let Some(reverse) = &trace.reverse {
        add(reverse);
    }
    out
}

/// The egress of every hop of every branch of a tree.
pub fn wanted_tree(tree: &PathTree) -> Vec<Key> {
    fn walk(branch: &Branch, out: &mut Vec<Key>) {
        push_key(out, &branch.hop);
        for child in &branch.children {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&tree.tree, &mut out);
    out
}

fn push_key(out: &mut Vec<Key>, hop: &FabricHop) {
    if let Some(egress) = &hop.egress {
        let key = (hop.agent.clone(), egress.name.clone());
        if !out.contains(&key) {
            out.push(key);
        }
    }
}

/// Every spelling one interface may be stored under, the given one first.
pub fn spellings(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    for other in [
        linux_name(name),
        nxos_name(name),
        linux_name(&nxos_name(name)),
    ] {
        if !out.contains(&other) {
            out.push(other);
        }
    }
    out
}

/// What the store holds of each wanted interface as of `now_ms`. An
/// interface the store has never heard of (no timeline, no alert, no
/// change) has no entry: the collector knows nothing of it, which is not
/// the same as knowing it was never down. `db` is one snapshot (as
/// [`crate::store::Reads::with`] gives): the writer may commit between
/// two of its queries.
pub fn read(
    db: &dyn Sql,
    wanted: &[Key],
    now_ms: i64,
    heartbeat_timeout: Duration,
) -> Result<HashMap<Key, Known>, StoreError> {
    let changes_since = now_ms - CHANGES_WINDOW.as_millis() as i64;
    let downtime_since = now_ms - DOWNTIME_WINDOW.as_millis() as i64;
    let mut changes_of: HashMap<&str, query::Changes> = HashMap::new();
    let mut out = HashMap::new();
    for (agent, interface) in wanted {
        let names = spellings(interface);
        if !changes_of.contains_key(agent.as_str()) {
            changes_of.insert(agent, query::changes(db, changes_since, Some(agent))?);
        }
        let changes = &changes_of[agent.as_str()];
        let mut known = Known {
            interface: interface.clone(),
            firing: Vec::new(),
            changes: Vec::new(),
            down_s_24h: 0.0,
            unknown_s_24h: 0.0,
        };
        let mut seen = false;
        for name in &names {
            let downtime = query::downtime(
                db,
                &DowntimeQuery {
                    since_ms: downtime_since,
                    agent: Some(agent.clone()),
                    interface: Some(name.clone()),
                },
                now_ms,
                heartbeat_timeout,
                &SinceCache::none(),
            )?;
            for row in downtime.interfaces {
                if !seen {
                    // The store's own spelling, as the other answers use it.
                    known.interface = row.interface.clone();
                }
                seen = true;
                known.down_s_24h += row.down_seconds;
                known.unknown_s_24h += row.unknown_seconds;
            }
            let alerts = query::alerts(
                db,
                &AlertQuery {
                    agent: Some(agent.clone()),
                    interface: Some(name.clone()),
                    ..AlertQuery::firing()
                },
            )?;
            for alert in alerts {
                known.firing.push(KnownAlert {
                    rule: alert.rule,
                    severity: alert.severity,
                    since: alert.fired_at.unwrap_or_default(),
                    message: alert.message,
                });
            }
            let downs = changes
                .went_down
                .iter()
                .filter(|c| c.interface == *name)
                .map(|c| KnownChange {
                    at: c.at.clone(),
                    state: c.state.to_string(),
                });
            let ups = changes
                .came_up
                .iter()
                .filter(|c| c.interface == *name)
                .map(|c| KnownChange {
                    at: c.at.clone(),
                    state: "up".to_string(),
                });
            known.changes.extend(downs.chain(ups));
        }
        // RFC 3339 in one format sorts as time does.
        known.changes.sort_by(|a, b| a.at.cmp(&b.at));
        known.firing.sort_by(|a, b| a.since.cmp(&b.since));
        if seen || !known.firing.is_empty() || !known.changes.is_empty() {
            out.insert((agent.clone(), interface.clone()), known);
        }
    }
    Ok(out)
}

/// Puts what is known on each hop of a trace and of its return trace.
pub fn fill_trace(trace: &mut FabricTrace, known: &HashMap<Key, Known>) {
    for hop in &mut trace.hops {
        fill_hop(hop, known);
    }
    if let Some(reverse) = &mut trace.reverse {
        fill_trace(reverse, known);
    }
}

/// Puts what is known on each hop of every branch of a tree.
pub fn fill_tree(tree: &mut PathTree, known: &HashMap<Key, Known>) {
    fn walk(branch: &mut Branch, known: &HashMap<Key, Known>) {
        fill_hop(&mut branch.hop, known);
        for child in &mut branch.children {
            walk(child, known);
        }
    }
    walk(&mut tree.tree, known);
}

fn fill_hop(hop: &mut FabricHop, known: &HashMap<Key, Known>) {
    if let Some(egress) = &hop.egress {
        hop.known = known
            .get(&(hop.agent.clone(), egress.name.clone()))
            .cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_is_looked_up_under_both_nexus_spellings() {
        assert_eq!(spellings("Eth1-7"), ["Eth1-7", "Ethernet1/7"]);
        assert_eq!(spellings("Ethernet1/7"), ["Ethernet1/7", "Eth1-7"]);
        assert_eq!(spellings("Eth1/7"), ["Eth1/7", "Ethernet1/7", "Eth1-7"]);
        assert_eq!(spellings("po10"), ["po10", "port-channel10"]);
        assert_eq!(spellings("swp1"), ["swp1"]);
    }

    #[test]
    fn root_what_is_known_of_each_hop_reads_alike_on_both_stores() {
        use crate::store::reads::fixture::{self, NOW, TIMEOUT};
        let key = |a: &str, i: &str| (a.to_string(), i.to_string());
        let wanted = [
            key("leaf1", "Eth1-7"),
            key("leaf1", "swp1"),
            key("Leaf2", "swp2"),
            key("leaf1", "swp99"),
            key("leaf9", "swp1"),
        ];
        let known = fixture::same("root_known_reads_alike", |reads| {
            let known = reads.with(|db| read(db, &wanted, NOW, TIMEOUT)).unwrap();
            known
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        });
        assert_eq!(known.len(), 3, "{known:#?}");
        // Stored under the NX-OS spelling, asked for under the kernel's.
        let eth = &known[&key("leaf1", "Eth1-7")];
        assert_eq!(eth.interface, "Ethernet1/7");
        assert_eq!(eth.firing.len(), 1);
        assert_eq!(eth.changes.len(), 3);
        assert_eq!(eth.down_s_24h, 180.0);
    }
}
