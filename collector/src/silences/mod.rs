//! The collector's silences as the running collector holds them: the set
//! that has not ended, kept in memory beside the store and published on a
//! watch channel. Each connection of an agent speaking protocol 3 watches
//! it and writes `silences` with the part that concerns its agent whenever
//! that part changes; a watch holds only the latest set, so however often
//! silences change, a slow agent is owed one line, never a queue of them.
//! Changes go through the store's writer first and are published only once
//! committed: an agent is told only of silences the store holds, and the
//! set it is sent after a restart of the collector replaces what it was told
//! before. On a shared store, changes made through other collectors are
//! followed too ([`follow`]).

mod follow;
mod new;

pub use follow::follow;

pub use new::{FieldError, MAX_GLOB, MAX_REASON, parse_new};

use crate::store::silences::{Change, Stored};
use crate::store::writer::Request;
use hopwatch_wire::matcher::InterfaceMatcher;
use hopwatch_wire::silence::Silence;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The longest a silence may last unless `[silences] max_duration` says
/// otherwise: a week covers a long maintenance weekend with room, and a
/// silence forgotten after that should be seen.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

/// Silences not yet ended at most. Each agent is sent the whole set that
/// concerns it on one line, and an agent reads lines of up to 1 MiB: this
/// many silences with every field at its longest stay well under that.
pub const MAX_SILENCES: usize = 256;

/// How long ended silences stay listed (`GET /api/v1/silences?all=1`) and
/// in the store.
pub const KEEP_ENDED: Duration = Duration::from_secs(7 * 86_400);

/// `[silences]` of the collector's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceSettings {
    /// A silence's end may be at most this long after its start.
    pub max_duration: Duration,
}

/// Why a change to the silences was not made.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(
        "{MAX_SILENCES} silences have not ended yet, the most the collector holds; remove some (DELETE /api/v1/silences/ID) or let them end first"
    )]
    Full,
    #[error("the store could not record the silence: {0}")]
    Store(String),
    #[error("the collector is shutting down; retry once it is back")]
    Closed,
}

/// The silences that have not ended, and the way to change them.
#[derive(Debug)]
pub struct Board {
    writer: mpsc::Sender<Request>,
    set: watch::Sender<Arc<Vec<Live>>>,
    pub settings: SilenceSettings,
}

/// A silence not yet ended, with its agent glob compiled once for every
/// connection that checks it.
#[derive(Debug, Clone)]
pub struct Live {
    pub stored: Stored,
    /// None covers every agent.
    agents: Option<InterfaceMatcher>,
}

impl Live {
    pub fn new(stored: Stored) -> Live {
        // A glob was checked when the silence was made; one that somehow
        // does not compile covers no agent rather than every one.
        let agents = stored.silence.agent.as_deref().map(|glob| {
            InterfaceMatcher::new(&[glob])
                .unwrap_or_else(|_| InterfaceMatcher::new(&["!*"]).expect("a valid glob"))
        });
        Live { stored, agents }
    }

    fn covers(&self, agent: &str) -> bool {
        self.agents.as_ref().is_none_or(|m| m.matches(agent))
    }
}

impl Board {
    /// A board holding `set` (read from the store at start), changed through
    /// `writer`.
    pub fn new(
        set: Vec<Stored>,
        writer: mpsc::Sender<Request>,
        settings: SilenceSettings,
    ) -> Board {
        Board {
            writer,
            set: watch::Sender::new(Arc::new(set.into_iter().map(Live::new).collect())),
            settings,
        }
    }

    /// The set now, and every later one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<Live>>> {
        self.set.subscribe()
    }

    /// Stores `silence` and publishes it.
    pub async fn add(&self, silence: Stored, now_ms: i64) -> Result<(), BoardError> {
        let live = self
            .set
            .borrow()
            .iter()
            .filter(|s| s.stored.ends_ms > now_ms)
            .count();
        if live >= MAX_SILENCES {
            return Err(BoardError::Full);
        }
        let change = Change::Add {
            silence: silence.clone(),
            now_ms,
            forget_before_ms: now_ms - KEEP_ENDED.as_millis() as i64,
        };
        self.write(change).await?;
        self.set.send_modify(|set| {
            let set = Arc::make_mut(set);
            // Already here when a notification of this very change was
            // read first.
            set.retain(|s| s.stored.ends_ms > now_ms && s.stored.silence.id != silence.silence.id);
            // In the store's order, so the set read back from it is the
            // same set and publishes nothing.
            let at = set.partition_point(|s| order(&s.stored) <= order(&silence));
            set.insert(at, Live::new(silence));
        });
        Ok(())
    }

    /// Publishes `set`, read from the store, when it differs from the set
    /// held: a change made through another collector sharing the store.
    pub fn replace(&self, set: Vec<Stored>) {
        self.set.send_if_modified(|held| {
            if held.iter().map(|s| &s.stored).eq(set.iter()) {
                return false;
            }
            *held = Arc::new(set.into_iter().map(Live::new).collect());
            true
        });
    }

    /// Ends silence `id` now; false when no silence of that id was still
    /// to end.
    pub async fn remove(&self, id: &str, by: &str, now_ms: i64) -> Result<bool, BoardError> {
        let change = Change::Remove {
            id: id.to_string(),
            by: by.to_string(),
            now_ms,
        };
        let ended = self.write(change).await?;
        // Published even when the store had nothing to end: a silence that
        // ended by itself leaves the set here too.
        self.set.send_if_modified(|set| {
            let before = set.len();
            Arc::make_mut(set).retain(|s| s.stored.silence.id != id && s.stored.ends_ms > now_ms);
            set.len() != before
        });
        Ok(ended)
    }

    async fn write(&self, change: Change) -> Result<bool, BoardError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request::Silence { change, reply })
            .await
            .map_err(|_| BoardError::Closed)?;
        match answer.await {
            Ok(Ok(changed)) => Ok(changed),
            Ok(Err(error)) => Err(BoardError::Store(error)),
            // The writer dropped the reply: its transaction failed.
            Err(_) => Err(BoardError::Store(
                "the transaction failed; see the collector's log".into(),
            )),
        }
    }
}

/// The order the store lists silences in: the soonest to end first.
fn order(stored: &Stored) -> (i64, &str) {
    (stored.ends_ms, &stored.silence.id)
}

/// The silences of `set` that concern `agent` and have not ended at
/// `now_ms`: what the collector sends that agent.
pub fn for_agent(set: &[Live], agent: &str, now_ms: i64) -> Vec<Silence> {
    set.iter()
        .filter(|s| s.stored.ends_ms > now_ms && s.covers(agent))
        .map(|s| s.stored.silence.clone())
        .collect()
}

/// A new silence id: `c-` and 16 hex digits from the kernel's random
/// source, so ids made by several collectors never meet.
pub fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!(
        "c-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Whether `id` has the shape of a collector's silence id.
pub fn is_collector_id(id: &str) -> bool {
    id.strip_prefix("c-")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rfc3339;

    fn stored(id: &str, agent: Option<&str>, ends_ms: i64) -> Stored {
        Stored {
            silence: Silence {
                id: id.into(),
                interface: "*".into(),
                rule: None,
                agent: agent.map(str::to_string),
                starts_at: rfc3339(0),
                ends_at: rfc3339(ends_ms),
                reason: "r".into(),
                author: "a".into(),
            },
            starts_ms: 0,
            ends_ms,
        }
    }

    #[test]
    fn an_agent_gets_the_silences_whose_glob_covers_it_and_that_have_not_ended() {
        let set: Vec<Live> = [
            stored("c-1", None, 100),
            stored("c-2", Some("leaf*"), 100),
            stored("c-3", Some("spine*"), 100),
            stored("c-4", Some("!leaf2"), 100),
            stored("c-5", Some("leaf*"), 50),
            stored("c-6", Some("leaf["), 100),
        ]
        .into_iter()
        .map(Live::new)
        .collect();
        let ids = |agent: &str, now: i64| -> Vec<String> {
            for_agent(&set, agent, now)
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids("leaf1", 10), ["c-1", "c-2", "c-4", "c-5"]);
        assert_eq!(ids("leaf2", 10), ["c-1", "c-2", "c-5"]);
        assert_eq!(ids("spine1", 10), ["c-1", "c-3", "c-4"]);
        // Ended at 50: gone from then on, not at 49.
        assert_eq!(ids("leaf1", 49), ["c-1", "c-2", "c-4", "c-5"]);
        assert_eq!(ids("leaf1", 50), ["c-1", "c-2", "c-4"]);
        assert!(ids("leaf1", 100).is_empty());
        // c-6's glob cannot be compiled: it covers nobody, leaf[ included.
        assert!(!ids("leaf[", 10).contains(&"c-6".to_string()));
    }

    #[test]
    fn ids_are_c_and_16_hex_digits() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_collector_id(&a), "{a}");
        assert_ne!(a, b);
        for bad in [
            "l-0123456789abcdef",
            "c-0123",
            "c-0123456789abcdeg",
            "c-0123456789abcdef0",
        ] {
            assert!(!is_collector_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn changes_are_published_once_the_writer_has_answered() {
        let (writer, mut requests) = mpsc::channel(4);
        let board = Board::new(
            vec![stored("c-old", None, 5)],
            writer,
            SilenceSettings {
                max_duration: DEFAULT_MAX_DURATION,
            },
        );
        let mut watching = board.subscribe();
        watching.mark_unchanged();
        let store = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(Request::Silence { change, reply }) = requests.recv().await {
                let answer = match &change {
                    Change::Add { .. } => Ok(true),
                    Change::Remove { id, .. } => Ok(id == "c-new"),
                };
                seen.push(change);
                let _ = reply.send(answer);
            }
            seen
        });
        board.add(stored("c-new", None, 1000), 10).await.unwrap();
        assert!(watching.has_changed().unwrap());
        let ids: Vec<String> = watching
            .borrow_and_update()
            .iter()
            .map(|s| s.stored.silence.id.clone())
            .collect();
        // The one that had ended is dropped on the way.
        assert_eq!(ids, ["c-new"]);
        assert!(!board.remove("c-gone", "bob", 20).await.unwrap());
        assert!(!watching.has_changed().unwrap(), "nothing to publish");
        assert!(board.remove("c-new", "bob", 20).await.unwrap());
        assert!(watching.borrow_and_update().is_empty());
        drop(board);
        assert_eq!(store.await.unwrap().len(), 3);
    }

    #[test]
    fn a_set_read_from_the_store_is_published_only_when_it_differs() {
        let (writer, _requests) = mpsc::channel(1);
        let a = stored("c-a", None, 100);
        let b = stored("c-b", Some("leaf*"), 200);
        let board = Board::new(
            vec![a.clone()],
            writer,
            SilenceSettings {
                max_duration: DEFAULT_MAX_DURATION,
            },
        );
        let mut watching = board.subscribe();
        watching.mark_unchanged();
        board.replace(vec![a.clone()]);
        assert!(!watching.has_changed().unwrap(), "the same set");
        board.replace(vec![a.clone(), b.clone()]);
        assert!(watching.has_changed().unwrap());
        let held: Vec<Stored> = watching
            .borrow_and_update()
            .iter()
            .map(|s| s.stored.clone())
            .collect();
        assert_eq!(held, [a.clone(), b]);
        // A silence changed (ended early elsewhere) is a change too.
        board.replace(vec![stored("c-a", None, 50)]);
        assert!(watching.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_silence_added_here_takes_the_store_s_place_once() {
        let (writer, mut requests) = mpsc::channel(4);
        let board = Board::new(
            vec![stored("c-a", None, 100), stored("c-c", None, 300)],
            writer,
            SilenceSettings {
                max_duration: DEFAULT_MAX_DURATION,
            },
        );
        let answer = tokio::spawn(async move {
            while let Some(Request::Silence { reply, .. }) = requests.recv().await {
                let _ = reply.send(Ok(true));
            }
        });
        // The store's announcement was read before the writer answered.
        let b = stored("c-b", None, 200);
        board.replace(vec![
            stored("c-a", None, 100),
            b.clone(),
            stored("c-c", None, 300),
        ]);
        board.add(b, 10).await.unwrap();
        let ids: Vec<String> = board
            .subscribe()
            .borrow()
            .iter()
            .map(|s| s.stored.silence.id.clone())
            .collect();
        // Soonest to end first, as the store lists them, and once.
        assert_eq!(ids, ["c-a", "c-b", "c-c"]);
        drop(board);
        answer.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_board_refuses_before_asking_the_store() {
        let (writer, mut requests) = mpsc::channel(4);
        let set = (0..MAX_SILENCES)
            .map(|i| stored(&format!("c-{i}"), None, 1000))
            .collect();
        let board = Board::new(
            set,
            writer,
            SilenceSettings {
                max_duration: DEFAULT_MAX_DURATION,
            },
        );
        let error = board.add(stored("c-x", None, 1000), 10).await.unwrap_err();
        assert!(matches!(error, BoardError::Full), "{error}");
        assert!(requests.try_recv().is_err());
        // Once they have ended there is room again.
        let answer = tokio::spawn(async move {
            if let Some(Request::Silence { reply, .. }) = requests.recv().await {
                let _ = reply.send(Ok(true));
            }
        });
        board.add(stored("c-x", None, 2000), 1000).await.unwrap();
        answer.await.unwrap();
        assert_eq!(board.subscribe().borrow().len(), 1);
    }
}
