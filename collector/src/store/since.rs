//! The segment each interface had in force at a window's start, which
//! `downtime` and `worst` need for every interface whose open segment began
//! inside the window: found by an index probe of the segments table per
//! interface, and remembered between requests.
//!
//! Remembering is exact because a segment never changes once a newer one
//! follows it: the writer only appends (a transition's time is clamped to
//! the open segment's start), and ids are never reused. So the segment in
//! force at `since` is also in force at any time before the start of the
//! segment after it, and a later request whose window starts there needs
//! no probe. Retention is the one thing that removes segments, and only
//! those that ended before `now - retain`; a window starting earlier than
//! that is always asked of the store.
//!
//! Measured (`bash collector/bench/postgres.sh`, 10,000 interfaces, 1M
//! link events): on PostgreSQL each probe costs the executor 3–7 µs, so
//! 10,000–20,000 of them were 35–70 ms of every `downtime?since=30d`,
//! where the rest of the statement took under 5 ms.

use super::StoreError;
use super::sql::{Row, Sql};
use crate::timeline::{Segment, State};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// How many windows' answers are kept per interface: the page's and the
/// API's usual few (1 h, 24 h, 7 d, 30 d) without thrashing.
const PER_INTERFACE: usize = 4;

/// Misses above which one statement probes the whole fleet rather than
/// one statement per interface (a round trip each on PostgreSQL).
const FLEET_PROBE: usize = 64;

/// A segment's columns as [`segment_text`] reads them, in one text column.
const SEGMENT_TEXT: &str = "CAST(s.start_ms AS TEXT) || ' ' || CAST(s.state AS TEXT) || ' ' ||
     CAST(s.prior AS TEXT) || ' ' || CAST(s.down_before_ms AS TEXT) || ' ' ||
     CAST(s.unknown_before_ms AS TEXT) || ' ' || CAST(s.outages AS TEXT) || ' ' ||
     CAST(s.admin_down_before_ms AS TEXT)";

/// A result column for a question over interfaces `i`: the segment in
/// force at time `since` (a parameter), else the interface's first one, as
/// [`segment_text`] reads it; NULL when the interface's open segment (its
/// row) is already in force then, or it has no segment.
///
/// One statement for many interfaces rather than one per interface:
/// through PostgreSQL each statement is a round trip. The segment is one
/// text column because a scalar subquery answers one value, and a join on
/// a subquery's key is not one seek per interface on PostgreSQL (its
/// planner hashes the whole segments table instead).
pub(super) fn at_since(since: &str) -> String {
    format!(
        "CASE WHEN i.start_ms > {since} THEN COALESCE(
            (SELECT {SEGMENT_TEXT} FROM segments s WHERE s.iface_id = i.id AND s.start_ms <= {since}
             ORDER BY s.start_ms DESC, s.n DESC LIMIT 1),
            (SELECT {SEGMENT_TEXT} FROM segments s WHERE s.iface_id = i.id
             ORDER BY s.start_ms, s.n LIMIT 1)) END"
    )
}

/// A result column: when the first segment after `since` begins, which is
/// as long as the answer of [`at_since`] stays in force.
fn next_after(since: &str) -> String {
    format!(
        "(SELECT s.start_ms FROM segments s WHERE s.iface_id = i.id AND s.start_ms > {since}
          ORDER BY s.start_ms, s.n LIMIT 1)"
    )
}

/// What [`ask`] reads of each interface `i`: its id, the segment in force
/// at `$1` (else its first) and when the next one begins.
fn columns() -> String {
    format!("i.id, {}, {}", at_since("$1"), next_after("$1"))
}

/// A segment from [`SEGMENT_TEXT`]'s seven numbers.
pub(super) fn segment_text(text: &str) -> Result<Segment, StoreError> {
    let bad = || StoreError::NoRow(format!("a segment read as {text:?}"));
    let mut n = [0i64; 7];
    let mut fields = text.split(' ');
    for slot in &mut n {
        *slot = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    }
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(Segment {
        start_ms: n[0],
        state: State::from_code(n[1]),
        prior: State::from_code(n[2]),
        down_before_ms: n[3],
        unknown_before_ms: n[4],
        outages: n[5],
        admin_down_before_ms: n[6],
    })
}

/// What one probe found: `first` answers every window starting in
/// `[from, until)`.
#[derive(Debug, Clone, Copy)]
struct Known {
    from: i64,
    until: i64,
    first: Segment,
}

/// The answers remembered across requests; [`SinceCache::none`] remembers
/// nothing (a shell command asks once).
#[derive(Debug)]
pub struct SinceCache {
    retain_ms: i64,
    known: Option<Mutex<HashMap<i64, Vec<Known>>>>,
}

impl SinceCache {
    /// Remembers answers for windows starting within `retain` of now, the
    /// retention that prunes the store (every collector sharing one must
    /// keep the same).
    pub fn new(retain: Duration) -> SinceCache {
        SinceCache {
            retain_ms: i64::try_from(retain.as_millis()).unwrap_or(i64::MAX),
            known: Some(Mutex::new(HashMap::new())),
        }
    }

    pub fn none() -> SinceCache {
        SinceCache {
            retain_ms: 0,
            known: None,
        }
    }

    #[cfg(test)]
    fn get(&self, iface: i64, since: i64) -> Option<Segment> {
        let known = self.known.as_ref()?.lock().unwrap();
        find(known.get(&iface)?, since)
    }

    /// Remembers what [`ask`] found at `since`. An answer with no segment
    /// after it is not remembered: the open segment began after `since`,
    /// so one follows, and its absence means a row changed under the
    /// snapshot.
    fn put(&self, found: &[(i64, Segment, Option<i64>)], since: i64) {
        let Some(known) = &self.known else {
            return;
        };
        let mut known = known.lock().expect("since cache poisoned");
        for &(iface, first, until) in found {
            let Some(until) = until else {
                continue;
            };
            // The first segment stands for every time before it.
            let from = if first.start_ms <= since {
                first.start_ms
            } else {
                i64::MIN
            };
            let kept = known.entry(iface).or_default();
            if kept.len() == PER_INTERFACE {
                kept.remove(0);
            }
            kept.push(Known { from, until, first });
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.known
            .as_ref()
            .map_or(0, |k| k.lock().unwrap().values().map(Vec::len).sum())
    }

    /// Per interface of `wanted` (each with an open segment that began
    /// after `since`), the segment in force at `since`, else its first;
    /// an interface with no segment at all is left out. Remembered answers
    /// first, then the store for the rest: one statement per interface, or
    /// one for the fleet when many are missing.
    pub(super) fn at(
        &self,
        db: &dyn Sql,
        wanted: &[i64],
        since: i64,
        now_ms: i64,
    ) -> Result<HashMap<i64, Segment>, StoreError> {
        let mut answers = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        let usable = since >= now_ms.saturating_sub(self.retain_ms);
        match &self.known {
            Some(known) if usable => {
                let known = known.lock().expect("since cache poisoned");
                for &iface in wanted {
                    match known.get(&iface).and_then(|k| find(k, since)) {
                        Some(first) => {
                            answers.insert(iface, first);
                        }
                        None => missing.push(iface),
                    }
                }
            }
            _ => missing.extend_from_slice(wanted),
        }
        if missing.is_empty() {
            return Ok(answers);
        }
        let found = ask(db, &missing, since, missing.len() > FLEET_PROBE)?;
        for (iface, first, _) in &found {
            answers.insert(*iface, *first);
        }
        if usable {
            self.put(&found, since);
        }
        Ok(answers)
    }
}

/// The remembered answer for a window starting at `since`.
fn find(known: &[Known], since: i64) -> Option<Segment> {
    known
        .iter()
        .find(|k| k.from <= since && since < k.until)
        .map(|k| k.first)
}

/// Per interface of `missing`: the segment in force at `since` (else its
/// first) and, when known, when the next segment begins. `fleet` asks once
/// for every interface whose open segment began after `since` and keeps
/// those of `missing`; otherwise once per interface.
fn ask(
    db: &dyn Sql,
    missing: &[i64],
    since: i64,
    fleet: bool,
) -> Result<Vec<(i64, Segment, Option<i64>)>, StoreError> {
    let columns = columns();
    let mut found = Vec::with_capacity(missing.len());
    let mut read = |r: &dyn Row| -> Result<(), StoreError> {
        if let Some(text) = r.opt_text(1)? {
            found.push((r.i64(0)?, segment_text(&text)?, r.opt_i64(2)?));
        }
        Ok(())
    };
    if fleet {
        let missing: HashSet<i64> = missing.iter().copied().collect();
        db.each(
            &format!("SELECT {columns} FROM interfaces i WHERE i.start_ms > $1"),
            &[&since],
            &mut |r| {
                if missing.contains(&r.i64(0)?) {
                    read(r)?;
                }
                Ok(())
            },
        )?;
    } else {
        let sql = format!("SELECT {columns} FROM interfaces i WHERE i.id = $2");
        for iface in missing {
            db.each(&sql, &[&since, iface], &mut read)?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{in_force_or_first, segment};

    /// Every interface of the both-store fixture at times around each of
    /// its segments' starts, in order and then again backwards: the fleet
    /// statement, the per-interface one and the remembered answers each
    /// give what the plain per-interface seek gives.
    #[test]
    fn root_at_since_is_the_segment_in_force_or_the_first_on_both_stores() {
        let seen = crate::store::reads::fixture::same("root_at_since", |reads| {
            reads
                .with(|db| {
                    let mut starts = vec![i64::MIN / 2, 0, i64::MAX / 2];
                    db.each("SELECT start_ms FROM segments", &[], &mut |r| {
                        let t = r.i64(0)?;
                        starts.extend([t - 1, t, t + 1]);
                        Ok(())
                    })?;
                    starts.sort_unstable();
                    let tails = db.rows(
                        "SELECT i.id, i.start_ms, i.state, i.prior, i.down_before_ms,
                                i.unknown_before_ms, i.outages, i.admin_down_before_ms
                         FROM interfaces i",
                        &[],
                        |r| Ok((r.i64(0)?, segment(r, 1)?)),
                    )?;
                    let cache = SinceCache::new(Duration::from_secs(u32::MAX.into()));
                    let (mut asked, mut remembered) = (0, 0);
                    let backwards: Vec<i64> = starts.iter().rev().copied().collect();
                    for at in starts.iter().chain(&backwards).copied() {
                        let later: Vec<i64> = tails
                            .iter()
                            .filter(|(_, tail)| tail.start_ms > at)
                            .map(|(id, _)| *id)
                            .collect();
                        let mut want = HashMap::new();
                        for &id in &later {
                            if let Some(s) = in_force_or_first(db, id, at)? {
                                want.insert(id, s);
                            }
                        }
                        for fleet in [true, false] {
                            let got: HashMap<i64, Segment> = ask(db, &later, at, fleet)?
                                .into_iter()
                                .map(|(id, s, _)| (id, s))
                                .collect();
                            assert_eq!(got, want, "at {at}, fleet {fleet}");
                        }
                        remembered += later
                            .iter()
                            .filter(|&&id| cache.get(id, at).is_some())
                            .count();
                        let got = cache.at(db, &later, at, 0)?;
                        assert_eq!(got, want, "remembered, at {at}");
                        asked += later.len();
                    }
                    Ok((asked, remembered))
                })
                .unwrap()
        });
        // Many answers came from memory, not all.
        assert!(seen.1 > 10 && seen.1 < seen.0, "{seen:?}");
    }

    /// A window starting before `now - retain` may reach segments retention
    /// deleted: it is always asked of the store, and nothing is kept.
    #[test]
    fn windows_older_than_retention_are_never_answered_from_memory() {
        let cache = SinceCache::new(Duration::from_secs(10));
        let first = Segment::first(5, State::Up);
        cache.put(&[(1, first, Some(50))], 7);
        assert_eq!(cache.get(1, 7), Some(first));
        assert_eq!(cache.get(1, 50), None, "the next segment's time");
        assert_eq!(
            cache.get(1, 4),
            None,
            "before the segment, which is not the first"
        );
        cache.put(&[(2, first, Some(5))], 3);
        assert_eq!(
            cache.get(2, i64::MIN),
            Some(first),
            "the first stands for all before it"
        );
        // now 100_000, retain 10 s: a window from 7 ms is older.
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE interfaces (id INTEGER, start_ms INTEGER);
             CREATE TABLE segments (iface_id INTEGER, start_ms INTEGER, n INTEGER, state INTEGER,
                 prior INTEGER, down_before_ms INTEGER, unknown_before_ms INTEGER,
                 outages INTEGER, admin_down_before_ms INTEGER);
             INSERT INTO interfaces VALUES (1, 60);",
        )
        .unwrap();
        let got = cache.at(&db, &[1], 7, 100_000).unwrap();
        assert!(
            got.is_empty(),
            "asked of the store, which has no segment: {got:?}"
        );
        assert_eq!(SinceCache::none().get(1, 7), None);
        assert_eq!(cache.remembered(), 2);
    }

    /// Each answer is index seeks into the segments' key, never a scan of
    /// the table, asked for one interface or for the fleet.
    #[test]
    fn the_segments_are_sought_by_key_not_scanned() {
        let dir = std::env::temp_dir().join(format!("hopwatch-since-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = crate::store::open_writer(&dir).unwrap();
        let plan = |sql: &str| {
            let sql = crate::store::sql::sqlite_params(sql);
            let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = stmt.parameter_count();
            let steps: Vec<String> = stmt
                .query_map(
                    rusqlite::params_from_iter([0i64, 1].into_iter().take(n)),
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .map(Result::unwrap)
                .collect();
            steps.join("\n")
        };
        let one = plan(&format!(
            "SELECT {} FROM interfaces i WHERE i.id = $2",
            columns()
        ));
        let fleet = plan(&format!(
            "SELECT {} FROM interfaces i WHERE i.start_ms > $1",
            columns()
        ));
        for p in [&one, &fleet] {
            assert!(
                p.contains("SEARCH s USING PRIMARY KEY (iface_id=? AND start_ms<?)")
                    && p.contains("SEARCH s USING PRIMARY KEY (iface_id=? AND start_ms>?)")
                    && p.contains("SEARCH s USING PRIMARY KEY (iface_id=?)")
                    && !p.contains("SCAN s"),
                "{p}"
            );
        }
        assert!(one.contains("SEARCH i USING INTEGER PRIMARY KEY"), "{one}");
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_segment_read_as_text_is_seven_numbers() {
        let s = segment_text("5 1 0 10 20 3 40").unwrap();
        assert_eq!(
            (s.start_ms, s.state, s.prior, s.down_before_ms),
            (5, State::Down, State::Up, 10)
        );
        assert_eq!(
            (s.unknown_before_ms, s.outages, s.admin_down_before_ms),
            (20, 3, 40)
        );
        for bad in [
            "",
            "5 2 1 10 20 3",
            "5 2 1 10 20 3 40 7",
            "5 x 1 10 20 3 40",
        ] {
            let e = segment_text(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
