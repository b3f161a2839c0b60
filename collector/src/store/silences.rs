//! The collector's silences in the store: written only by the writer thread
//! (a [`Change`] rides in its queue like any batch, so no second connection
//! ever competes for SQLite's write lock), read by the API and at start.
//! A removed silence is kept, ended at the moment it was removed, so the
//! list of recent silences still says who silenced what and until when.

use super::sql::{Row, Sql};
use super::{StoreError, rfc3339};
use hopwatch_wire::silence::Silence;
use serde::{Deserialize, Serialize};

/// Schema step 4: the table, and the alert columns the silences and the
/// rules' labels fill.
pub const MIGRATION: &str = "
CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    agent TEXT,
    interface TEXT NOT NULL,
    rule TEXT,
    starts_at_ms INTEGER NOT NULL,
    -- Moved back to the removal time when removed before its end.
    ends_at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    removed_ms INTEGER,
    removed_by TEXT
);
CREATE INDEX silences_ends ON silences (ends_at_ms);
-- The rule's labels as a JSON object, NULL when it has none.
ALTER TABLE alerts ADD COLUMN labels TEXT;
-- The id of the silence that covered the alert, NULL when none did.
ALTER TABLE alerts ADD COLUMN silence TEXT;
";

/// The channel a shared store announces each committed change of the
/// silences on, the silence's id as payload, so every collector reads them
/// again (notified inside the change's transaction: sent only if it
/// commits).
pub const CHANGED_CHANNEL: &str = "hopwatch_silences";

/// A silence with the times as the store keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub silence: Silence,
    pub starts_ms: i64,
    pub ends_ms: i64,
}

/// A change to the silences, applied by the writer in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store a new silence, and forget silences that ended before
    /// `forget_before_ms`.
    Add {
        silence: Stored,
        now_ms: i64,
        forget_before_ms: i64,
    },
    /// End silence `id` now (if it has not ended), by `by`.
    Remove { id: String, by: String, now_ms: i64 },
}

impl Change {
    /// The id of the silence it changes.
    pub fn id(&self) -> &str {
        match self {
            Change::Add { silence, .. } => &silence.silence.id,
            Change::Remove { id, .. } => id,
        }
    }
}

/// What the writer answers a [`Change`]: for a removal, whether a silence
/// that had not ended was ended; the error's text when the store failed.
pub type Outcome = Result<bool, String>;

/// Applies `change` on the writer's connection, inside its transaction.
pub fn apply(db: &dyn Sql, change: &Change) -> Result<bool, StoreError> {
    match change {
        Change::Add {
            silence,
            now_ms,
            forget_before_ms,
        } => {
            let s = &silence.silence;
            db.execute(
                "DELETE FROM silences WHERE ends_at_ms < $1",
                &[forget_before_ms],
            )?;
            db.execute(
                "INSERT INTO silences (id, agent, interface, rule, starts_at_ms, ends_at_ms,
                                       reason, author, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &s.id,
                    &s.agent,
                    &s.interface,
                    &s.rule,
                    &silence.starts_ms,
                    &silence.ends_ms,
                    &s.reason,
                    &s.author,
                    now_ms,
                ],
            )?;
            Ok(true)
        }
        Change::Remove { id, by, now_ms } => {
            let n = db.execute(
                "UPDATE silences
                 SET ends_at_ms = $2,
                     starts_at_ms = CASE WHEN starts_at_ms < $2 THEN starts_at_ms ELSE $2 END,
                     removed_ms = $2, removed_by = $3
                 WHERE id = $1 AND ends_at_ms > $2",
                &[id, now_ms, by],
            )?;
            Ok(n > 0)
        }
    }
}

/// The SQLite writer's steps fail with rusqlite's error, and [`apply`] and
/// [`unsilence`], shared with PostgreSQL's writer, with the store's: on a
/// SQLite connection that is always a rusqlite error, given back as it was.
impl From<StoreError> for rusqlite::Error {
    fn from(error: StoreError) -> rusqlite::Error {
        match error {
            StoreError::Sql(error) => error,
            other => rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            ),
        }
    }
}

/// An alert's `labels` column: its rule's labels as JSON, NULL for none.
pub fn labels_column(labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| serde_json::to_string(labels).expect("labels always serialize"))
}

/// An alert's `silence` column: the id of the silence that covered it.
pub fn silence_column(alert: &hopwatch_wire::event::Alert) -> Option<&str> {
    alert.silence.as_deref().filter(|_| alert.silenced)
}

/// Clears the silence of open alert `id`; false when it had none.
pub fn unsilence(db: &dyn Sql, id: i64) -> Result<bool, StoreError> {
    let n = db.execute(
        "UPDATE alerts SET silence = NULL WHERE id = $1 AND silence IS NOT NULL",
        &[&id],
    )?;
    Ok(n > 0)
}

/// Whether a silence has begun, is yet to begin, or has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    Pending,
    Active,
    Ended,
}

impl SilenceState {
    pub fn at(starts_ms: i64, ends_ms: i64, now_ms: i64) -> SilenceState {
        if ends_ms <= now_ms {
            SilenceState::Ended
        } else if starts_ms > now_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }
}

/// A silence as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRecord {
    #[serde(flatten)]
    pub silence: Silence,
    pub state: SilenceState,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<String>,
}

const COLUMNS: &str = "id, agent, interface, rule, starts_at_ms, ends_at_ms, reason, author,
                       created_ms, removed_ms, removed_by";

fn record(r: &dyn Row, now_ms: i64) -> Result<SilenceRecord, StoreError> {
    let starts = r.i64(4)?;
    let ends = r.i64(5)?;
    let removed = r.opt_i64(9)?;
    Ok(SilenceRecord {
        silence: Silence {
            id: r.text(0)?,
            agent: r.opt_text(1)?,
            interface: r.text(2)?,
            rule: r.opt_text(3)?,
            starts_at: rfc3339(starts),
            ends_at: rfc3339(ends),
            reason: r.text(6)?,
            author: r.text(7)?,
        },
        state: SilenceState::at(starts, ends, now_ms),
        created_at: rfc3339(r.i64(8)?),
        removed_at: removed.map(rfc3339),
        removed_by: r.opt_text(10)?,
    })
}

/// The silences that have not ended at `now_ms`, and with `ended_since_ms`
/// also those that ended since then; the soonest to end first.
pub fn list(
    db: &dyn Sql,
    now_ms: i64,
    ended_since_ms: Option<i64>,
) -> Result<Vec<SilenceRecord>, StoreError> {
    let after = ended_since_ms.unwrap_or(now_ms).min(now_ms);
    let mut out = db.rows(
        &format!("SELECT {COLUMNS} FROM silences WHERE ends_at_ms > $1 ORDER BY ends_at_ms, id"),
        &[&after],
        |r| record(r, now_ms),
    )?;
    // Those still to come or running first, then the ended, latest first.
    out.sort_by_key(|s| s.state == SilenceState::Ended);
    let split = out
        .iter()
        .position(|s| s.state == SilenceState::Ended)
        .unwrap_or(out.len());
    out[split..].reverse();
    Ok(out)
}

/// The silences that have not ended at `now_ms`, as the collector holds
/// them in memory to push to agents.
pub fn not_ended(db: &dyn Sql, now_ms: i64) -> Result<Vec<Stored>, StoreError> {
    db.rows(
        &format!("SELECT {COLUMNS} FROM silences WHERE ends_at_ms > $1 ORDER BY ends_at_ms, id"),
        &[&now_ms],
        |r| {
            Ok(Stored {
                starts_ms: r.i64(4)?,
                ends_ms: r.i64(5)?,
                silence: record(r, now_ms)?.silence,
            })
        },
    )
}

/// One silence by id, ended or not.
pub fn get(db: &dyn Sql, id: &str, now_ms: i64) -> Result<Option<SilenceRecord>, StoreError> {
    db.row(
        &format!("SELECT {COLUMNS} FROM silences WHERE id = $1"),
        &[&id],
        |r| record(r, now_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, starts_ms: i64, ends_ms: i64) -> Stored {
        Stored {
            silence: Silence {
                id: id.into(),
                interface: "Eth1-*".into(),
                rule: Some("tx-*".into()),
                agent: None,
                starts_at: rfc3339(starts_ms),
                ends_at: rfc3339(ends_ms),
                reason: "maintenance".into(),
                author: "alice".into(),
            },
            starts_ms,
            ends_ms,
        }
    }

    fn add(db: &dyn Sql, s: Stored, now_ms: i64) {
        let change = Change::Add {
            silence: s,
            now_ms,
            forget_before_ms: now_ms - 10_000_000,
        };
        assert!(apply(db, &change).unwrap());
    }

    #[test]
    fn added_listed_removed_and_forgotten() {
        crate::store::reads::fixture::on_both_writing("silences_added_listed", check);
    }

    fn check(db: &dyn Sql) {
        let now = 1_700_000_000_000;
        add(db, stored("c-0000000000000001", now, now + 3_600_000), now);
        add(
            db,
            stored("c-0000000000000002", now + 60_000, now + 120_000),
            now,
        );
        add(db, stored("c-0000000000000003", now - 7_000, now - 1), now);
        let states: Vec<(String, SilenceState)> = list(db, now, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.silence.id, r.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("c-0000000000000002".into(), SilenceState::Pending),
                ("c-0000000000000001".into(), SilenceState::Active),
            ]
        );
        assert_eq!(list(db, now, Some(now - 86_400_000)).unwrap().len(), 3);
        assert_eq!(not_ended(db, now).unwrap().len(), 2);

        // Removing a pending one empties its window at the removal time.
        let remove = |id: &str, at: i64| Change::Remove {
            id: id.into(),
            by: "bob".into(),
            now_ms: at,
        };
        assert!(apply(db, &remove("c-0000000000000002", now + 5)).unwrap());
        let r = get(db, "c-0000000000000002", now + 5).unwrap().unwrap();
        assert_eq!(r.state, SilenceState::Ended);
        assert_eq!(r.silence.starts_at, rfc3339(now + 5));
        assert_eq!(r.silence.ends_at, rfc3339(now + 5));
        assert_eq!(r.removed_by.as_deref(), Some("bob"));
        // Twice, or one that ended, or one never made: nothing to end.
        assert!(!apply(db, &remove("c-0000000000000002", now + 6)).unwrap());
        assert!(!apply(db, &remove("c-0000000000000003", now + 6)).unwrap());
        assert!(!apply(db, &remove("c-ffffffffffffffff", now + 6)).unwrap());
        assert_eq!(not_ended(db, now + 6).unwrap().len(), 1);

        // An add forgets what ended long ago.
        let later = now + 20_000_000;
        add(db, stored("c-0000000000000004", later, later + 1000), later);
        let left: Vec<String> = list(db, later, Some(0))
            .unwrap()
            .into_iter()
            .map(|r| r.silence.id)
            .collect();
        assert_eq!(left, vec!["c-0000000000000004".to_string()]);
    }
}
