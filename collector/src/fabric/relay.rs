//! Traces through agents held by another collector on the same PostgreSQL
//! store, relayed through the store itself: no collector needs to reach
//! another's API, and the store every collector already trusts carries the
//! question both ways.
//!
//! ```text
//! API on A ─► switchboard: agent not connected here ─► Relay::ask
//!   INSERT trace_relays (target B, agent, query) ─► NOTIFY hopwatch_relay_<B> 'q:<id>'
//!   B's listener ─► B's switchboard, its own connection only ─► the agent answers
//!   UPDATE trace_relays SET answer ─► NOTIFY hopwatch_relay_<A> 'a:<id>'
//!   A reads and deletes the row ─► the answer, as if the agent were A's own
//! ```
//!
//! A notification carries only the row's id: a payload is limited to 8000
//! bytes, and a query or answer may be longer. A waits exactly as long as
//! for an agent of its own, and an answer that does not come in time (B
//! died, B's agent is silent) is the same timeout. Rows are deleted by the
//! asker, answered or not; what a collector that died left is swept by age.

mod members;

pub use members::{join, start};

use super::AskError;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::postgres::Pg;
use crate::store::postgres::collectors::{self, Identity};
use hopwatch_wire::trace::{TraceAnswer, TraceQuery};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

/// Relay rows older than this are swept: every asker has given up on them.
pub const SWEEP_AFTER: Duration = Duration::from_secs(300);

/// What a notification on a collector's channel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Put the question in row `id` to your agent.
    Question(i64),
    /// Row `id`, which you asked, is answered.
    Answer(i64),
}

impl Note {
    pub fn encode(self) -> String {
        match self {
            Note::Question(id) => format!("q:{id}"),
            Note::Answer(id) => format!("a:{id}"),
        }
    }

    /// A payload read back; None for one no collector sends.
    pub fn parse(payload: &str) -> Option<Note> {
        let (kind, id) = payload.split_once(':')?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        match kind {
            "q" => Some(Note::Question(id)),
            "a" => Some(Note::Answer(id)),
            _ => None,
        }
    }
}

/// An answer as stored in a relay row: the agent's answer, or why the
/// collector holding it got none. The agent's name and the wait are the
/// asker's own, so they are not carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Relayed {
    Answer { answer: Box<TraceAnswer> },
    Offline,
    Timeout,
    Closed,
    Garbage { detail: String },
    Refused { error: String },
    Busy { queued: usize },
}

impl Relayed {
    pub fn from_result(result: Result<TraceAnswer, AskError>) -> Relayed {
        match result {
            Ok(answer) => Relayed::Answer {
                answer: Box::new(answer),
            },
            Err(AskError::Offline { .. }) => Relayed::Offline,
            Err(AskError::Timeout { .. }) => Relayed::Timeout,
            Err(AskError::Closed { .. }) => Relayed::Closed,
            Err(AskError::Garbage { detail, .. }) => Relayed::Garbage { detail },
            Err(AskError::Refused { error, .. }) => Relayed::Refused { error },
            Err(AskError::Busy { queued, .. }) => Relayed::Busy { queued },
        }
    }

    /// The answer as the asker of `agent`, who waited `waited`, reports it.
    pub fn into_result(self, agent: &str, waited: Duration) -> Result<TraceAnswer, AskError> {
        let agent = agent.to_string();
        match self {
            Relayed::Answer { answer } => Ok(*answer),
            Relayed::Offline => Err(AskError::Offline { agent }),
            Relayed::Timeout => Err(AskError::Timeout { agent, waited }),
            Relayed::Closed => Err(AskError::Closed { agent }),
            Relayed::Garbage { detail } => Err(AskError::Garbage { agent, detail }),
            Relayed::Refused { error } => Err(AskError::Refused { agent, error }),
            Relayed::Busy { queued } => Err(AskError::Busy { agent, queued }),
        }
    }

    /// A stored answer read back; one that cannot be read is garbage from
    /// the agent's side, as an unreadable answer of its own would be.
    pub fn read(text: &str) -> Relayed {
        serde_json::from_str(text).unwrap_or_else(|error| Relayed::Garbage {
            detail: format!("an unreadable relayed answer: {error}"),
        })
    }
}

/// This collector's side of relaying: the questions it waits on.
pub struct Relay {
    pg: Pg,
    me: Identity,
    metrics: Arc<Metrics>,
    // Held for one insert or removal, never across an await.
    waiting: Mutex<HashMap<i64, oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("me", &self.me.id).finish()
    }
}

fn now_ms() -> i64 {
    crate::store::millis(SystemTime::now())
}

impl Relay {
    pub fn new(pg: Pg, me: Identity, metrics: Arc<Metrics>) -> Relay {
        Relay {
            pg,
            me,
            metrics,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.me
    }

    /// Asks `agent` through the collector holding it, waiting at most
    /// `timeout` as for an agent of this collector's own. An agent no live
    /// collector holds, or a store that cannot be reached, is `Offline`.
    pub async fn ask(
        &self,
        agent: &str,
        query: TraceQuery,
        timeout: Duration,
    ) -> Result<TraceAnswer, AskError> {
        let deadline = Instant::now() + timeout;
        let offline = || AskError::Offline {
            agent: agent.to_string(),
        };
        let timed_out = || AskError::Timeout {
            agent: agent.to_string(),
            waited: timeout,
        };
        let (id, answered) = match timeout_at(deadline, self.send(agent, &query, timeout)).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(error)) => {
                tracing::warn!(agent, %error, "Relaying a trace question through the store failed.");
                return Err(offline());
            }
            Ok(Ok(None)) => return Err(offline()),
            Ok(Ok(Some(sent))) => sent,
        };
        let mut pending = Pending {
            relay: self,
            id,
            done: false,
        };
        match timeout_at(deadline, answered).await {
            Ok(Ok(())) => match timeout_at(deadline, self.take(id)).await {
                Ok(Ok(answer)) => {
                    pending.done = true;
                    match answer {
                        Some(answer) => answer.into_result(agent, timeout),
                        None => Err(timed_out()),
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(agent, %error, "Reading a relayed trace answer failed.");
                    Err(offline())
                }
                Err(_) => Err(timed_out()),
            },
            _ => Err(timed_out()),
        }
    }

    /// Writes the question for the collector holding `agent` and tells it;
    /// the row's id and what wakes when it is answered, or None when no
    /// other live collector holds the agent.
    async fn send(
        &self,
        agent: &str,
        query: &TraceQuery,
        timeout: Duration,
    ) -> Result<Option<(i64, oneshot::Receiver<()>)>, StoreError> {
        let client = self.pg.client().await?;
        let Some(target) = collectors::holder(&client, agent, now_ms()).await? else {
            return Ok(None);
        };
        let Some(channel) = collectors::channel(&target).filter(|_| target != self.me.id) else {
            return Ok(None);
        };
        let query = serde_json::to_string(query).expect("a trace query always serializes");
        let row = client
            .query_one(
                "INSERT INTO trace_relays (target, origin, agent, query, timeout_ms, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &target,
                    &self.me.id,
                    &agent,
                    &query,
                    &(timeout.as_millis() as i64),
                    &now_ms(),
                ],
            )
            .await?;
        let id: i64 = row.try_get(0)?;
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("relay poisoned").insert(id, tx);
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&channel, &Note::Question(id).encode()],
            )
            .await?;
        Ok(Some((id, rx)))
    }

    /// Takes the answer out of row `id`, deleting the row.
    async fn take(&self, id: i64) -> Result<Option<Relayed>, StoreError> {
        let client = self.pg.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM trace_relays WHERE id = $1 RETURNING answer",
                &[&id],
            )
            .await?;
        let answer: Option<String> = match row {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        Ok(answer.as_deref().map(Relayed::read))
    }

    /// Row `id` was answered: wakes its asker, if it still waits.
    pub fn answered(&self, id: i64) {
        if let Some(tx) = self.waiting.lock().expect("relay poisoned").remove(&id) {
            let _ = tx.send(());
        }
    }

    /// The ids this collector waits on, to look for answers a lost
    /// listening connection missed.
    pub fn waiting(&self) -> Vec<i64> {
        self.waiting
            .lock()
            .expect("relay poisoned")
            .keys()
            .copied()
            .collect()
    }

    /// Answers the question in row `id`, relayed here, by asking the agent
    /// on its connection to this collector; tells the asker.
    pub async fn answer(
        &self,
        id: i64,
        switchboard: &super::switchboard::Switchboard,
    ) -> Result<(), StoreError> {
        let row = {
            let client = self.pg.client().await?;
            client
                .query_opt(
                    "SELECT agent, query, timeout_ms, origin FROM trace_relays
                     WHERE id = $1 AND target = $2 AND answer IS NULL",
                    &[&id, &self.me.id],
                )
                .await?
        };
        // Answered already, or given up on by the asker.
        let Some(row) = row else { return Ok(()) };
        let agent: String = row.try_get(0)?;
        let query: String = row.try_get(1)?;
        let timeout = Duration::from_millis(row.try_get::<_, i64>(2)?.max(0) as u64);
        let origin: String = row.try_get(3)?;
        let result = match serde_json::from_str::<TraceQuery>(&query) {
            Ok(query) => switchboard.ask_here(&agent, query, timeout).await,
            Err(error) => Err(AskError::Refused {
                agent: agent.clone(),
                error: format!("the relayed question cannot be read: {error}"),
            }),
        };
        let answer = serde_json::to_string(&Relayed::from_result(result))
            .expect("an answer always serializes");
        let client = self.pg.client().await?;
        let n = client
            .execute(
                "UPDATE trace_relays SET answer = $2, answered_ms = $3 WHERE id = $1 AND answer IS NULL",
                &[&id, &answer, &now_ms()],
            )
            .await?;
        if n > 0
            && let Some(channel) = collectors::channel(&origin)
        {
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&channel, &Note::Answer(id).encode()],
                )
                .await?;
        }
        Ok(())
    }
}

/// A relayed question being waited on: its waiter and its row go however
/// the wait ends, the asker's future being dropped included.
struct Pending<'a> {
    relay: &'a Relay,
    id: i64,
    /// The row is gone already (taken with its answer).
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.relay
            .waiting
            .lock()
            .expect("relay poisoned")
            .remove(&self.id);
        if self.done {
            return;
        }
        let pg = self.relay.pg.clone();
        let id = self.id;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(client) = pg.client().await {
                    let _ = client
                        .execute("DELETE FROM trace_relays WHERE id = $1", &[&id])
                        .await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_carries_only_its_kind_and_id() {
        for note in [Note::Question(1), Note::Answer(9_007_199_254_740_993)] {
            assert_eq!(Note::parse(&note.encode()), Some(note));
        }
        assert_eq!(Note::Question(42).encode(), "q:42");
        for bad in ["", "q", "q:", "q:x", "x:1", "a:-1", "a:0", "q:1:2"] {
            assert_eq!(Note::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_outcome_survives_the_relay_as_the_askers_own() {
        let waited = Duration::from_millis(1500);
        let answer: TraceAnswer = serde_json::from_str(r#"{"kind":"error","error":"x"}"#).unwrap();
        let outcomes = [
            Ok(answer),
            Err(AskError::Offline { agent: "b".into() }),
            Err(AskError::Timeout {
                agent: "b".into(),
                waited: Duration::from_secs(9),
            }),
            Err(AskError::Closed { agent: "b".into() }),
            Err(AskError::Garbage {
                agent: "b".into(),
                detail: "d".into(),
            }),
            Err(AskError::Refused {
                agent: "b".into(),
                error: "no route".into(),
            }),
            Err(AskError::Busy {
                agent: "b".into(),
                queued: 1024,
            }),
        ];
        for outcome in outcomes {
            let stored = serde_json::to_string(&Relayed::from_result(outcome.clone())).unwrap();
            let back = Relayed::read(&stored).into_result("leaf1", waited);
            // The asker's agent name and wait, everything else as sent.
            let expected = outcome.map_err(|e| match e {
                AskError::Offline { .. } => AskError::Offline {
                    agent: "leaf1".into(),
                },
                AskError::Timeout { .. } => AskError::Timeout {
                    agent: "leaf1".into(),
                    waited,
                },
                AskError::Closed { .. } => AskError::Closed {
                    agent: "leaf1".into(),
                },
                AskError::Garbage { detail, .. } => AskError::Garbage {
                    agent: "leaf1".into(),
                    detail,
                },
                AskError::Refused { error, .. } => AskError::Refused {
                    agent: "leaf1".into(),
                    error,
                },
                AskError::Busy { queued, .. } => AskError::Busy {
                    agent: "leaf1".into(),
                    queued,
                },
            });
            assert_eq!(back, expected, "{stored}");
        }
        assert_eq!(
            serde_json::to_string(&Relayed::Refused { error: "e".into() }).unwrap(),
            r#"{"result":"refused","error":"e"}"#
        );
        assert!(matches!(
            Relayed::read("{\"result\":\"maybe\"}"),
            Relayed::Garbage { detail } if detail.starts_with("an unreadable relayed answer")
        ));
    }
}
#[cfg(test)]
mod two_collectors;
