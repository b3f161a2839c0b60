//! The questions the API and the shell commands ask, each a function of a
//! read connection, its parameters and the time `now`, returning what both
//! print (the API as JSON, the shell as a table).

use super::since::SinceCache;
use super::sql::{Row, Sql};
use super::{StoreError, rfc3339};
use crate::timeline::{self, Liveness, Segment, State};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// The most rows a list answers with unless asked for fewer.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most rows a list answers with at all.
pub const MAX_LIMIT: usize = 100_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentInfo {
    pub agent: String,
    /// The peer address of its latest connection.
    pub address: String,
    pub version: String,
    pub boot: String,
    pub last_seen: String,
    /// `online`; `stale` when nothing arrived for `heartbeat_timeout`;
    /// `stopped` when it said goodbye.
    pub state: &'static str,
    /// When it said goodbye, while `stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// Set when no collector is running: `state` is as of this time, the
    /// collector's last word from any agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub firing: u64,
    pub interfaces: u64,
    #[serde(skip)]
    pub last_seen_ms: i64,
}

/// Every agent, by name.
pub fn agents(db: &dyn Sql, now_ms: i64, timeout: Duration) -> Result<Vec<AgentInfo>, StoreError> {
    db.rows(
        "SELECT a.name, a.address, a.version, a.boot, a.last_seen_ms, a.last_ts_ms,
                (SELECT count(*) FROM alerts al WHERE al.agent_id = a.id AND al.resolved_at_ms IS NULL),
                (SELECT count(*) FROM interfaces i WHERE i.agent_id = a.id),
                a.stopped_ms
         FROM agents a ORDER BY a.name",
        &[],
        |r| {
            let live = Liveness {
                last_seen_ms: r.i64(4)?,
                last_ts_ms: r.opt_i64(5)?,
                stopped_ms: r.opt_i64(8)?,
            };
            Ok(AgentInfo {
                agent: r.text(0)?,
                address: r.text(1)?,
                version: r.text(2)?,
                boot: r.text(3)?,
                last_seen: rfc3339(live.last_seen_ms),
                state: live.state(now_ms, timeout).as_str(),
                stopped_at: live.stopped_ms.map(rfc3339),
                as_of: None,
                firing: r.i64(6)? as u64,
                interfaces: r.i64(7)? as u64,
                last_seen_ms: live.last_seen_ms,
            })
        },
    )
}

/// Which alerts a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFilter {
    Firing,
    Resolved,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertQuery {
    pub state: AlertFilter,
    /// Only alerts active at or after this time.
    pub since_ms: Option<i64>,
    pub agent: Option<String>,
    pub interface: Option<String>,
    pub rule: Option<String>,
    pub limit: usize,
}

impl AlertQuery {
    pub fn firing() -> AlertQuery {
        AlertQuery {
            state: AlertFilter::Firing,
            since_ms: None,
            agent: None,
            interface: None,
            rule: None,
            limit: DEFAULT_LIMIT,
        }
    }

    pub fn all_since(since_ms: i64) -> AlertQuery {
        AlertQuery {
            state: AlertFilter::All,
            since_ms: Some(since_ms),
            ..AlertQuery::firing()
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRecord {
    pub agent: String,
    pub interface: String,
    pub rule: String,
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub expr: String,
    pub value: Option<f64>,
    pub threshold: f64,
    pub message: String,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_value: Option<f64>,
    pub resolved_message: Option<String>,
    /// `agent` (the rule cleared), `restart` (a new boot of the agent
    /// began) or `refired` (the agent fired it again without resolving).
    pub resolved_by: Option<String>,
    /// The rule's labels.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Set while a silence covers it: the agent sent it to the collector
    /// only, not to syslog.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub silenced: bool,
    /// The id of the silence that covers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence: Option<String>,
}

/// Alerts, newest first.
pub fn alerts(db: &dyn Sql, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT a.name, al.interface, al.rule, al.severity, al.expr, al.value, al.threshold,
                al.message, al.fired_at_ms, al.resolved_at_ms, al.resolved_value,
                al.resolved_message, al.resolved_by, al.labels, al.silence
         FROM alerts al JOIN agents a ON a.id = al.agent_id WHERE ",
    );
    // Without `since` the bound is the smallest time, which every alert
    // passes. A filter left out is bound as NULL, cast because PostgreSQL
    // must know every parameter's type from its first use.
    sql.push_str(match q.state {
        AlertFilter::Firing => "al.resolved_at_ms IS NULL AND COALESCE(al.fired_at_ms, 0) >= $1",
        AlertFilter::Resolved => "al.resolved_at_ms >= $1",
        AlertFilter::All => "(al.resolved_at_ms IS NULL OR al.resolved_at_ms >= $1)",
    });
    sql.push_str(
        " AND (CAST($2 AS TEXT) IS NULL OR a.name = $2)
          AND (CAST($3 AS TEXT) IS NULL OR al.interface = $3)
          AND (CAST($4 AS TEXT) IS NULL OR al.rule = $4)
          ORDER BY COALESCE(al.fired_at_ms, al.resolved_at_ms) DESC, al.id DESC LIMIT $5",
    );
    db.rows(
        &sql,
        &[
            &q.since_ms.unwrap_or(i64::MIN),
            &q.agent,
            &q.interface,
            &q.rule,
            &(q.limit.min(MAX_LIMIT) as i64),
        ],
        alert_record,
    )
}

fn alert_record(r: &dyn Row) -> Result<AlertRecord, StoreError> {
    let fired = r.opt_i64(8)?;
    let resolved = r.opt_i64(9)?;
    let silence = r.opt_text(14)?;
    Ok(AlertRecord {
        agent: r.text(0)?,
        interface: r.text(1)?,
        rule: r.text(2)?,
        severity: r.text(3)?,
        state: if resolved.is_some() {
            "resolved"
        } else {
            "firing"
        },
        expr: r.text(4)?,
        value: r.opt_f64(5)?,
        threshold: r.f64(6)?,
        message: r.text(7)?,
        fired_at: fired.map(rfc3339),
        resolved_at: resolved.map(rfc3339),
        resolved_value: r.opt_f64(10)?,
        resolved_message: r.opt_text(11)?,
        resolved_by: r.opt_text(12)?,
        labels: r
            .opt_text(13)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        silenced: silence.is_some(),
        silence,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WentDown {
    pub agent: String,
    pub interface: String,
    pub at: String,
    /// `down` for a failure, `admin_down` when an operator shut the port
    /// (no outage).
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CameUp {
    pub agent: String,
    pub interface: String,
    pub at: String,
    /// How long the outage it ended lasted; null when the collector did not
    /// see it begin, or when it ends a shutdown, which is no outage.
    pub down_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Changes {
    pub since: String,
    pub went_down: Vec<WentDown>,
    pub came_up: Vec<CameUp>,
}

/// Link transitions at or after `since_ms`, oldest first.
pub fn changes(db: &dyn Sql, since_ms: i64, agent: Option<&str>) -> Result<Changes, StoreError> {
    let mut out = Changes {
        since: rfc3339(since_ms),
        went_down: Vec::new(),
        came_up: Vec::new(),
    };
    db.each(
        "SELECT a.name, i.name, c.at_ms, c.state, c.down_ms
         FROM link_changes c
         JOIN interfaces i ON i.id = c.iface_id
         JOIN agents a ON a.id = i.agent_id
         WHERE c.at_ms >= $1 AND (CAST($2 AS TEXT) IS NULL OR a.name = $2)
         ORDER BY c.at_ms, c.event_id LIMIT $3",
        &[&since_ms, &agent, &(MAX_LIMIT as i64)],
        &mut |r| {
            let agent = r.text(0)?;
            let interface = r.text(1)?;
            let at = rfc3339(r.i64(2)?);
            match State::from_code(r.i64(3)?) {
                state @ (State::Down | State::AdminDown) => out.went_down.push(WentDown {
                    agent,
                    interface,
                    at,
                    state: state.as_str(),
                }),
                _ => out.came_up.push(CameUp {
                    agent,
                    interface,
                    at,
                    down_seconds: r.opt_i64(4)?.map(seconds),
                }),
            }
            Ok(())
        },
    )?;
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct DowntimeQuery {
    pub since_ms: i64,
    pub agent: Option<String>,
    pub interface: Option<String>,
}

impl DowntimeQuery {
    pub fn since(since_ms: i64) -> DowntimeQuery {
        DowntimeQuery {
            since_ms,
            agent: None,
            interface: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InterfaceDowntime {
    pub agent: String,
    pub interface: String,
    pub down_seconds: f64,
    pub down_count: i64,
    pub currently_down: bool,
    pub unknown_seconds: f64,
    /// Time an operator had the port shut: neither downtime nor unknown.
    pub admin_down_seconds: f64,
    /// The share of the time known up or down that it was up (0 to 1):
    /// unknown and `admin_down` time count in neither; null when no time
    /// of the window was either.
    pub availability: Option<f64>,
    /// `up`, `down`, `admin_down`, or `unknown` while its agent is stale.
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Downtime {
    pub since: String,
    pub until: String,
    /// Most down first.
    pub interfaces: Vec<InterfaceDowntime>,
    pub total_down_seconds: f64,
}

/// The current segment of every interface [`downtime`] asks about. A
/// filter left out is left out of the SQL rather than written
/// `($1 IS NULL OR a.name = $1)`: SQLite plans a statement once for every
/// binding, and that form scans every interface of the fleet even when both
/// names are given — 1.8 ms among 48,000 interfaces, paid for each hop of a
/// fabric trace — where this one is two index seeks. The parameter left
/// out is still bound, so it is cast: PostgreSQL must know its type.
fn downtime_tails(agent: bool, interface: bool) -> String {
    format!(
        "SELECT a.name, i.name, a.last_seen_ms, a.last_ts_ms, i.id,
                i.start_ms, i.state, i.prior, i.down_before_ms, i.unknown_before_ms, i.outages,
                i.admin_down_before_ms, a.stopped_ms
         FROM interfaces i JOIN agents a ON a.id = i.agent_id
         WHERE {} AND {}",
        if agent {
            "a.name = $1"
        } else {
            "CAST($1 AS TEXT) IS NULL"
        },
        if interface {
            "i.name = $2"
        } else {
            "CAST($2 AS TEXT) IS NULL"
        },
    )
}

/// The segment of `iface_id` in force at `at`, given its open segment
/// `tail`: the tail itself unless `at` is before it (a silence that ended
/// before the interface's last change), which takes a seek of its own.
pub(super) fn in_force_from_tail(
    db: &dyn Sql,
    iface_id: i64,
    tail: Segment,
    at: i64,
) -> Result<Option<Segment>, StoreError> {
    if tail.start_ms <= at {
        return Ok(Some(tail));
    }
    in_force_or_first(db, iface_id, at)
}

/// The segment of interface `$1` in force at `$2`: one seek on the
/// segments' key.
pub(super) const IN_FORCE: &str =
    "SELECT start_ms, state, prior, down_before_ms, unknown_before_ms,
                outages, admin_down_before_ms
         FROM segments WHERE iface_id = $1 AND start_ms <= $2
         ORDER BY start_ms DESC, n DESC LIMIT 1";

/// The segment of `iface_id` in force at `at`, else its first one (the
/// time is before the interface was first heard of); none when it has no
/// segment at all. Two statements, the second run only when the first
/// finds nothing, which is rare.
pub(super) fn in_force_or_first(
    db: &dyn Sql,
    iface_id: i64,
    at: i64,
) -> Result<Option<Segment>, StoreError> {
    if let Some(s) = db.row(IN_FORCE, &[&iface_id, &at], |r| segment(r, 0))? {
        return Ok(Some(s));
    }
    db.row(
        "SELECT start_ms, state, prior, down_before_ms, unknown_before_ms, outages,
                admin_down_before_ms
         FROM segments WHERE iface_id = $1 ORDER BY start_ms, n LIMIT 1",
        &[&iface_id],
        |r| segment(r, 0),
    )
}

/// One interface as a fleet question first reads it: its names, its
/// agent's liveness and its open segment.
pub(super) struct Tail {
    pub agent: String,
    pub interface: String,
    pub id: i64,
    pub live: Liveness,
    pub tail: Segment,
}

/// Per interface, down and unknown time over `[since, now]`, outages
/// clipped to the window; silence of a stale agent counts as unknown.
/// `remembered` keeps the segments in force at window starts between
/// calls.
pub fn downtime(
    db: &dyn Sql,
    q: &DowntimeQuery,
    now_ms: i64,
    timeout: Duration,
    remembered: &SinceCache,
) -> Result<Downtime, StoreError> {
    let since = q.since_ms.min(now_ms);
    let tails = db.rows(
        &downtime_tails(q.agent.is_some(), q.interface.is_some()),
        &[&q.agent, &q.interface],
        |r| {
            Ok(Tail {
                agent: r.text(0)?,
                interface: r.text(1)?,
                id: r.i64(4)?,
                live: Liveness {
                    last_seen_ms: r.i64(2)?,
                    last_ts_ms: r.opt_i64(3)?,
                    stopped_ms: r.opt_i64(12)?,
                },
                tail: segment(r, 5)?,
            })
        },
    )?;
    let measured = measure(db, tails, since, now_ms, timeout, remembered)?;
    let mut interfaces = Vec::with_capacity(measured.len());
    let mut total_ms = 0i64;
    for Measured {
        tail: t,
        m,
        silent: stale,
        ..
    } in measured
    {
        total_ms += m.down_ms;
        interfaces.push(InterfaceDowntime {
            agent: t.agent,
            interface: t.interface,
            down_seconds: seconds(m.down_ms),
            down_count: m.down_count,
            currently_down: !stale && t.tail.state == State::Down,
            unknown_seconds: seconds(m.unknown_ms),
            admin_down_seconds: seconds(m.admin_down_ms),
            availability: m.availability(now_ms - since),
            state: if stale {
                "unknown"
            } else {
                t.tail.state.as_str()
            },
        });
    }
    interfaces.sort_by(|a, b| {
        b.down_seconds
            .total_cmp(&a.down_seconds)
            .then_with(|| a.agent.cmp(&b.agent))
            .then_with(|| a.interface.cmp(&b.interface))
    });
    Ok(Downtime {
        since: rfc3339(since),
        until: rfc3339(now_ms),
        interfaces,
        total_down_seconds: seconds(total_ms),
    })
}

/// One interface of a fleet question measured over `[since, now]`.
pub(super) struct Measured {
    pub tail: Tail,
    pub m: timeline::Measure,
    /// Its agent is stale: its time since it went silent is unknown.
    pub silent: bool,
    pub known_until: i64,
    /// The segment in force at `since`, else the interface's first.
    pub first: Segment,
}

/// Each of `tails` measured over `[since, now]` (an interface with no
/// segment is left out), as `downtime` and `worst` report them.
pub(super) fn measure(
    db: &dyn Sql,
    tails: Vec<Tail>,
    since: i64,
    now_ms: i64,
    timeout: Duration,
    remembered: &SinceCache,
) -> Result<Vec<Measured>, StoreError> {
    let firsts = firsts_at(db, &tails, since, now_ms, remembered)?;
    let mut measured = Vec::with_capacity(tails.len());
    for tail in tails {
        let known_until = tail.live.known_until(now_ms, now_ms, timeout);
        let Some(&first) = firsts.get(&tail.id) else {
            continue;
        };
        let Some(known) = in_force_from_tail(db, tail.id, tail.tail, known_until.max(since))?
        else {
            continue;
        };
        measured.push(Measured {
            m: timeline::measure(&first, &known, since, now_ms, known_until),
            silent: tail.live.is_silent(now_ms, timeout),
            known_until,
            first,
            tail,
        });
    }
    Ok(measured)
}

/// Per interface of `tails`, the segment in force at `since`, else its
/// first: the open segment itself when it began by then, otherwise as
/// `remembered` or the store answers.
fn firsts_at(
    db: &dyn Sql,
    tails: &[Tail],
    since: i64,
    now_ms: i64,
    remembered: &SinceCache,
) -> Result<HashMap<i64, Segment>, StoreError> {
    let later: Vec<i64> = tails
        .iter()
        .filter(|t| t.tail.start_ms > since)
        .map(|t| t.id)
        .collect();
    let mut firsts = remembered.at(db, &later, since, now_ms)?;
    for t in tails.iter().filter(|t| t.tail.start_ms <= since) {
        firsts.insert(t.id, t.tail);
    }
    Ok(firsts)
}

/// The segment whose columns (as [`IN_FORCE`] lists them) begin at column
/// `at`.
pub(super) fn segment(r: &dyn Row, at: usize) -> Result<Segment, StoreError> {
    Ok(Segment {
        start_ms: r.i64(at)?,
        state: State::from_code(r.i64(at + 1)?),
        prior: State::from_code(r.i64(at + 2)?),
        down_before_ms: r.i64(at + 3)?,
        unknown_before_ms: r.i64(at + 4)?,
        outages: r.i64(at + 5)?,
        admin_down_before_ms: r.i64(at + 6)?,
    })
}

pub(super) fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Firing alerts per agent and the agents' last-seen times, for `/metrics`.
pub fn metrics_snapshot(db: &dyn Sql) -> Result<Vec<(String, i64, u64)>, StoreError> {
    db.rows(
        "SELECT a.name, a.last_seen_ms,
                (SELECT count(*) FROM alerts al WHERE al.agent_id = a.id AND al.resolved_at_ms IS NULL)
         FROM agents a ORDER BY a.name",
        &[],
        |r| Ok((r.text(0)?, r.i64(1)?, r.i64(2)? as u64)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite makes for `sql`, one step a line.
    fn plan(db: &rusqlite::Connection, sql: &str) -> String {
        let sql = crate::store::sql::sqlite_params(sql);
        let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps = stmt
            .query_map(rusqlite::params!["leaf1", "swp1"], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        steps.join("\n")
    }

    #[test]
    fn one_interfaces_downtime_is_found_by_index_not_by_scanning_the_fleet() {
        let dir = std::env::temp_dir().join(format!("hopwatch-query-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = super::super::open_writer(&dir).unwrap();
        let one = plan(&db, &downtime_tails(true, true));
        assert!(!one.contains("SCAN"), "{one}");
        assert!(
            one.contains("SEARCH a") && one.contains("SEARCH i"),
            "{one}"
        );
        let of_agent = plan(&db, &downtime_tails(true, false));
        assert!(!of_agent.contains("SCAN"), "{of_agent}");
        assert!(!plan(&db, &downtime_tails(false, false)).contains("segments"));
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
        // Every row the same filters select, whichever SQL selects them,
        // on either store.
        let fill = |db: &dyn Sql| {
            db.execute("INSERT INTO agents (name) VALUES ('leaf1'), ('leaf2')", &[])?;
            db.execute(
                "INSERT INTO interfaces (agent_id, name, n, start_ms, state, prior, down_before_ms,
                                         unknown_before_ms, outages)
                 VALUES (1, 'swp1', 0, 0, 1, 1, 0, 0, 0), (1, 'swp2', 0, 0, 1, 1, 0, 0, 0),
                        (2, 'swp1', 0, 0, 1, 1, 0, 0, 0)",
                &[],
            )?;
            Ok(())
        };
        let ask = |reads: &std::sync::Arc<crate::store::Reads>| {
            let names = |agent: Option<&str>, interface: Option<&str>| {
                let q = DowntimeQuery {
                    since_ms: 0,
                    agent: agent.map(str::to_string),
                    interface: interface.map(str::to_string),
                };
                let mut out: Vec<(String, String)> = reads
                    .with(|db| {
                        downtime(db, &q, 1_000, Duration::from_secs(30), &SinceCache::none())
                    })
                    .unwrap()
                    .interfaces
                    .into_iter()
                    .map(|i| (i.agent, i.interface))
                    .collect();
                out.sort();
                out
            };
            let pair = |a: &str, i: &str| (a.to_string(), i.to_string());
            assert_eq!(names(Some("leaf1"), Some("swp1")), [pair("leaf1", "swp1")]);
            assert_eq!(
                names(Some("leaf1"), None),
                [pair("leaf1", "swp1"), pair("leaf1", "swp2")]
            );
            assert_eq!(
                names(None, Some("swp1")),
                [pair("leaf1", "swp1"), pair("leaf2", "swp1")]
            );
            assert_eq!(names(None, None).len(), 3);
            assert_eq!(names(Some("leaf3"), None), []);
        };
        crate::store::reads::fixture::on_both("downtime_filters", fill, ask);
    }
}
