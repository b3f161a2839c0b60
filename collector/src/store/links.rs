//! The web page's link questions: one interface's timeline as clipped
//! segments with its outage figures, and the fleet's least available
//! interfaces. Both read the segments the writer keeps (see
//! [`crate::timeline`]) and reduce them here, so a browser receives a
//! picture's worth of data whatever the window holds.

use super::query::{IN_FORCE, Measured, Tail, measure, seconds, segment};
use super::since::SinceCache;
use super::spans::{self, Figures, Kind};
use super::sql::{Param, Row, Sql};
use super::{StoreError, rfc3339};
use crate::timeline::{Liveness, Segment};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// The agent or interface a question names is not in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Agent(String),
    Interface(String, String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineSegment {
    /// `up`, `down`, `admin_down`, `unknown`, or `mixed` for spans too
    /// narrow to draw apart.
    pub state: &'static str,
    pub from: String,
    pub to: String,
    /// The state began before the window (the segment is clipped to it).
    pub carried: bool,
    /// A mixed segment's down time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_seconds: Option<f64>,
    /// A mixed segment's unknown time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastOutage {
    pub from: String,
    /// Null while it goes on at the window's end.
    pub to: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Timeline {
    pub agent: String,
    pub interface: String,
    pub since: String,
    pub until: String,
    pub segments: Vec<TimelineSegment>,
    pub availability: Option<f64>,
    pub outages: usize,
    pub mttr_seconds: Option<f64>,
    pub longest_outage_seconds: Option<f64>,
    pub last_outage: Option<LastOutage>,
    pub down_seconds: f64,
    pub unknown_seconds: f64,
    pub admin_down_seconds: f64,
}

/// The segments of `iface_id` over `[since, until]`, the one in force at
/// `since` first: one seek and one range read on the segments' key.
fn segments(
    db: &dyn Sql,
    iface_id: i64,
    since: i64,
    until: i64,
) -> Result<Vec<Segment>, StoreError> {
    let mut out: Vec<Segment> = db
        .row(IN_FORCE, &[&iface_id, &since], |r| segment(r, 0))?
        .into_iter()
        .collect();
    db.each(
        "SELECT start_ms, state, prior, down_before_ms, unknown_before_ms, outages,
                admin_down_before_ms
         FROM segments WHERE iface_id = $1 AND start_ms > $2 AND start_ms < $3
         ORDER BY start_ms, n",
        &[&iface_id, &since, &until],
        &mut |r| {
            out.push(segment(r, 0)?);
            Ok(())
        },
    )?;
    Ok(out)
}

/// As [`segments`] for each of `ifaces`, in one statement rather than two
/// per interface (each a round trip on PostgreSQL: `worst`'s 100 rows
/// took 200): each comes with the segment it was measured from, the one in
/// force at `since` or, when that begins after `since`, the interface's
/// first, which the range read finds itself.
fn segments_of(
    db: &dyn Sql,
    ifaces: &[(i64, Segment)],
    since: i64,
    until: i64,
) -> Result<HashMap<i64, Vec<Segment>>, StoreError> {
    let mut of: HashMap<i64, Vec<Segment>> = ifaces
        .iter()
        .map(|&(id, first)| {
            (
                id,
                (first.start_ms <= since)
                    .then_some(first)
                    .into_iter()
                    .collect(),
            )
        })
        .collect();
    if ifaces.is_empty() {
        return Ok(of);
    }
    let list: Vec<String> = (0..ifaces.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT iface_id, start_ms, state, prior, down_before_ms, unknown_before_ms, outages,
                admin_down_before_ms
         FROM segments WHERE iface_id IN ({}) AND start_ms > $1 AND start_ms < $2
         ORDER BY iface_id, start_ms, n",
        list.join(", ")
    );
    let mut params: Vec<&dyn Param> = vec![&since, &until];
    params.extend(ifaces.iter().map(|(id, _)| id as &dyn Param));
    db.each(&sql, &params, &mut |r| {
        let seg = segment(r, 1)?;
        of.entry(r.i64(0)?).or_default().push(seg);
        Ok(())
    })?;
    Ok(of)
}

fn liveness(r: &dyn Row, at: usize) -> Result<Liveness, StoreError> {
    Ok(Liveness {
        last_seen_ms: r.i64(at)?,
        last_ts_ms: r.opt_i64(at + 1)?,
        stopped_ms: r.opt_i64(at + 2)?,
    })
}

/// One interface over a window, drawn `width` pixels wide.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineQuery {
    pub agent: String,
    pub interface: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub width: u32,
}

/// What one interface did over the query's window.
pub fn timeline(
    db: &dyn Sql,
    q: &TimelineQuery,
    now_ms: i64,
    timeout: Duration,
) -> Result<Result<Timeline, Missing>, StoreError> {
    let (agent, interface) = (q.agent.as_str(), q.interface.as_str());
    let (since, until, width) = (q.since_ms, q.until_ms, q.width);
    let Some((agent_id, live)) = db.row(
        "SELECT id, last_seen_ms, last_ts_ms, stopped_ms FROM agents WHERE name = $1",
        &[&agent],
        |r| Ok((r.i64(0)?, liveness(r, 1)?)),
    )?
    else {
        return Ok(Err(Missing::Agent(agent.to_string())));
    };
    let Some(iface_id) = db.row(
        "SELECT id FROM interfaces WHERE agent_id = $1 AND name = $2",
        &[&agent_id, &interface],
        |r| r.i64(0),
    )?
    else {
        return Ok(Err(Missing::Interface(
            agent.to_string(),
            interface.to_string(),
        )));
    };
    let segs = segments(db, iface_id, since, until)?;
    let known_until = live.known_until(until, now_ms, timeout);
    let spans = spans::spans(&segs, since, until, known_until);
    let f = spans::figures(&spans);
    let carried = segs.first().is_some_and(|s| s.start_ms < since);
    let segments = spans::pieces(&spans, until - since, width)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let (state, down, unknown) = match p.kind {
                Kind::One(state) => (state.as_str(), None, None),
                Kind::Mixed {
                    down_ms,
                    unknown_ms,
                } => ("mixed", Some(seconds(down_ms)), Some(seconds(unknown_ms))),
            };
            TimelineSegment {
                state,
                from: rfc3339(p.from_ms),
                to: rfc3339(p.to_ms),
                carried: i == 0 && carried && p.from_ms == since,
                down_seconds: down,
                unknown_seconds: unknown,
            }
        })
        .collect();
    Ok(Ok(Timeline {
        agent: agent.to_string(),
        interface: interface.to_string(),
        since: rfc3339(since),
        until: rfc3339(until),
        segments,
        availability: f.availability(),
        outages: f.outages.len(),
        mttr_seconds: f.mttr_ms().map(|ms| ms / 1000.0),
        longest_outage_seconds: f.longest_ms().map(seconds),
        last_outage: f.outages.last().map(|o| LastOutage {
            from: rfc3339(o.from_ms),
            to: o.to_ms.map(rfc3339),
            seconds: seconds(o.down_ms),
        }),
        down_seconds: seconds(f.down_ms),
        unknown_seconds: seconds(f.unknown_ms),
        admin_down_seconds: seconds(f.admin_down_ms),
    }))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorstInterface {
    pub agent: String,
    pub interface: String,
    /// Now: `up`, `down`, `admin_down`, or `unknown` while its agent is
    /// silent.
    pub state: &'static str,
    pub availability: Option<f64>,
    pub outages: usize,
    pub down_seconds: f64,
    pub mttr_seconds: Option<f64>,
    pub longest_outage_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Worst {
    pub since: String,
    pub until: String,
    /// Least available first.
    pub interfaces: Vec<WorstInterface>,
}

/// One interface's place in the ranking, from its running totals alone.
struct Ranked {
    id: i64,
    /// The segment in force at `since`, else the interface's first.
    first: Segment,
    agent: String,
    interface: String,
    state: &'static str,
    availability: Option<f64>,
    down_ms: i64,
    known_until: i64,
}

/// The `limit` least available interfaces over `[since, now]`. Every
/// interface is ranked from two rows (its open segment and, when the
/// window starts before it, the one in force at `since`); only the
/// `limit` shown have their segments read for the outage figures.
///
/// Over the collector bench's store (10,000 interfaces, 1,000,000 link
/// events in 29 days, release build, `bash collector/bench/collector.sh`
/// part 3, on a machine at load 7 on 2 cores): `since=30d` answers 100
/// rows (18 KB) in a median 91.9 ms, p99 341 ms, and 1,000 rows (183 KB)
/// in a median 175 ms, p99 252 ms, HTTP round trip included.
pub fn worst(
    db: &dyn Sql,
    since: i64,
    limit: usize,
    now_ms: i64,
    timeout: Duration,
    remembered: &SinceCache,
) -> Result<Worst, StoreError> {
    let since = since.min(now_ms);
    let tails = db.rows(
        "SELECT a.name, i.name, a.last_seen_ms, a.last_ts_ms, a.stopped_ms, i.id,
                i.start_ms, i.state, i.prior, i.down_before_ms, i.unknown_before_ms, i.outages,
                i.admin_down_before_ms
         FROM interfaces i JOIN agents a ON a.id = i.agent_id",
        &[],
        |r| {
            Ok(Tail {
                agent: r.text(0)?,
                interface: r.text(1)?,
                live: liveness(r, 2)?,
                id: r.i64(5)?,
                tail: segment(r, 6)?,
            })
        },
    )?;
    let measured = measure(db, tails, since, now_ms, timeout, remembered)?;
    let mut ranked = Vec::with_capacity(measured.len());
    for Measured {
        tail: t,
        m,
        silent,
        known_until,
        first,
    } in measured
    {
        ranked.push(Ranked {
            id: t.id,
            first,
            agent: t.agent,
            interface: t.interface,
            state: if silent {
                "unknown"
            } else {
                t.tail.state.as_str()
            },
            availability: m.availability(now_ms - since.max(first.start_ms)),
            down_ms: m.down_ms,
            known_until,
        });
    }
    // Least available first; no known time at all ranks last.
    ranked.sort_by(|a, b| {
        let key = |x: &Ranked| x.availability.unwrap_or(f64::INFINITY);
        key(a)
            .total_cmp(&key(b))
            .then_with(|| b.down_ms.cmp(&a.down_ms))
            .then_with(|| a.agent.cmp(&b.agent))
            .then_with(|| a.interface.cmp(&b.interface))
    });
    ranked.truncate(limit);
    let shown: Vec<(i64, Segment)> = ranked.iter().map(|r| (r.id, r.first)).collect();
    let mut of = segments_of(db, &shown, since, now_ms)?;
    let mut interfaces = Vec::with_capacity(ranked.len());
    for r in ranked {
        let segs = of.remove(&r.id).unwrap_or_default();
        let f: Figures = spans::figures(&spans::spans(&segs, since, now_ms, r.known_until));
        interfaces.push(WorstInterface {
            agent: r.agent,
            interface: r.interface,
            state: r.state,
            availability: f.availability(),
            outages: f.outages.len(),
            down_seconds: seconds(f.down_ms),
            mttr_seconds: f.mttr_ms().map(|ms| ms / 1000.0),
            longest_outage_seconds: f.longest_ms().map(seconds),
        });
    }
    Ok(Worst {
        since: rfc3339(since),
        until: rfc3339(now_ms),
        interfaces,
    })
}
