//! The fleet at a glance, for a page that asks every second while it is
//! open: one statement over the agents, counting each one's firing alerts
//! and down links from the partial alert index and the interfaces' open
//! segments, never from the segments' history.

use super::{StoreError, rfc3339};
use crate::timeline::{AgentState, Liveness, State};
use rusqlite::Connection;
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

pub fn fleet(db: &Connection, now_ms: i64, timeout: Duration) -> Result<Fleet, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT a.name, a.version, a.last_seen_ms, a.last_ts_ms, a.stopped_ms,
                (SELECT count(*) FROM alerts al WHERE al.agent_id = a.id AND al.resolved_at_ms IS NULL),
                (SELECT count(*) FROM interfaces i WHERE i.agent_id = a.id AND i.state = ?1),
                (SELECT count(*) FROM interfaces i WHERE i.agent_id = a.id)
         FROM agents a ORDER BY a.name",
    )?;
    let rows = stmt.query_map([State::Down.code()], |r| {
        let live = Liveness {
            last_seen_ms: r.get(2)?,
            last_ts_ms: r.get(3)?,
            stopped_ms: r.get(4)?,
        };
        let state = live.state(now_ms, timeout);
        Ok(FleetAgent {
            agent: r.get(0)?,
            state: state.as_str(),
            version: r.get(1)?,
            last_seen: rfc3339(live.last_seen_ms),
            firing: r.get::<_, i64>(5)? as u64,
            links_down: if state == AgentState::Online {
                r.get::<_, i64>(6)? as u64
            } else {
                0
            },
            links_total: r.get::<_, i64>(7)? as u64,
        })
    })?;
    let agents: Vec<FleetAgent> = rows.collect::<Result<_, _>>()?;
    Ok(Fleet {
        now: rfc3339(now_ms),
        firing: agents.iter().map(|a| a.firing).sum(),
        links_down: agents.iter().map(|a| a.links_down).sum(),
        agents,
    })
}
