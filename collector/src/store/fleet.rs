//! The fleet at a glance, for a page that asks every second while it is
//! open: one statement over the agents, counting each one's firing alerts
//! and down links from the partial alert index and the interfaces' open
//! segments, never from the segments' history.

use super::sql::Sql;
use super::{StoreError, rfc3339};
use crate::timeline::{AgentState, Liveness, State};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetAgent {
    pub agent: String,
    /// `online`, `stale` or `stopped`.
    pub state: &'static str,
    pub version: String,
    pub last_seen: String,
    pub firing: u64,
    /// Links down now; a silent agent's links are unknown, so none.
    pub links_down: u64,
    pub links_total: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fleet {
    pub now: String,
    /// By name.
    pub agents: Vec<FleetAgent>,
    pub firing: u64,
    pub links_down: u64,
}

pub fn fleet(db: &dyn Sql, now_ms: i64, timeout: Duration) -> Result<Fleet, StoreError> {
    let agents = db.rows(
        "SELECT a.name, a.version, a.last_seen_ms, a.last_ts_ms, a.stopped_ms,
                (SELECT count(*) FROM alerts al WHERE al.agent_id = a.id AND al.resolved_at_ms IS NULL),
                (SELECT count(*) FROM interfaces i WHERE i.agent_id = a.id AND i.state = $1),
                (SELECT count(*) FROM interfaces i WHERE i.agent_id = a.id)
         FROM agents a ORDER BY a.name",
        &[&State::Down.code()],
        |r| {
            let live = Liveness {
                last_seen_ms: r.i64(2)?,
                last_ts_ms: r.opt_i64(3)?,
                stopped_ms: r.opt_i64(4)?,
            };
            let state = live.state(now_ms, timeout);
            Ok(FleetAgent {
                agent: r.text(0)?,
                state: state.as_str(),
                version: r.text(1)?,
                last_seen: rfc3339(live.last_seen_ms),
                firing: r.i64(5)? as u64,
                links_down: if state == AgentState::Online {
                    r.i64(6)? as u64
                } else {
                    0
                },
                links_total: r.i64(7)? as u64,
            })
        },
    )?;
    Ok(Fleet {
        now: rfc3339(now_ms),
        firing: agents.iter().map(|a| a.firing).sum(),
        links_down: agents.iter().map(|a| a.links_down).sum(),
        agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_agents_links_are_not_counted_down_and_alerts_are_summed() {
        // leaf1 heard from at 100 s, leaf2 at 10 s; both with a link down,
        // leaf1 with two firing alerts and a resolved one.
        let fill = |db: &dyn crate::store::sql::Sql| {
            for statement in [
                "INSERT INTO agents (name, version, last_seen_ms) VALUES ('leaf1', '1.2', 100000),
                                                                          ('leaf2', '1.1', 10000)",
                "INSERT INTO interfaces (agent_id, name, n, start_ms, state, prior, down_before_ms,
                                         unknown_before_ms, outages)
                 VALUES (1, 'swp1', 0, 0, 1, 1, 0, 0, 1), (1, 'swp2', 0, 0, 0, 0, 0, 0, 0),
                        (1, 'swp3', 0, 0, 3, 3, 0, 0, 0), (2, 'swp1', 0, 0, 1, 1, 0, 0, 1)",
                "INSERT INTO alerts (agent_id, boot_id, interface, rule, severity, expr, threshold,
                                     message, fired_at_ms, resolved_at_ms)
                 VALUES (1, 1, 'swp1', 'r', 'critical', 'x > 1', 1, 'm', 1, NULL),
                        (1, 1, 'swp2', 'r', 'critical', 'x > 1', 1, 'm', 1, NULL),
                        (1, 1, 'swp3', 'r', 'critical', 'x > 1', 1, 'm', 1, 2)",
            ] {
                db.execute(statement, &[])?;
            }
            Ok(())
        };
        let (sqlite, postgres) =
            crate::store::reads::fixture::on_both("fleet_summed", fill, |reads| {
                reads
                    .with(|db| fleet(db, 110_000, Duration::from_secs(30)))
                    .unwrap()
            });
        for f in std::iter::once(sqlite).chain(postgres) {
            let leaf1 = &f.agents[0];
            assert_eq!(
                (
                    leaf1.state,
                    leaf1.firing,
                    leaf1.links_down,
                    leaf1.links_total
                ),
                ("online", 2, 1, 3)
            );
            let leaf2 = &f.agents[1];
            assert_eq!(
                (leaf2.state, leaf2.links_down, leaf2.links_total),
                ("stale", 0, 1)
            );
            assert_eq!((f.firing, f.links_down), (2, 1));
            assert_eq!(f.now, "1970-01-01T00:01:50.000Z");
        }
    }
}
