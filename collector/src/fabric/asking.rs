//! How the walks put questions to agents within one request: each identical
//! question (same agent, same query) is asked once and shared by every walk
//! of the request, no agent is asked more at once than it answers, and
//! every wait is bounded by the hop timeout and by the request's own
//! deadline, whatever the [`Asker`] does.

use super::{AskError, Asker, TraceSettings};
use hopwatch_wire::trace::{Trace, TraceAnswer, TraceQuery};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

/// Questions one agent is asked at once: the agent answers at most this
/// many traces together and refuses the rest ("already running"), so a
/// matrix or a tree queues them here instead of being refused.
pub const PER_AGENT: usize = 4;

/// An agent's answer and the round trip the collector measured for it.
#[derive(Debug, Clone)]
pub struct Answered {
    pub answer: TraceAnswer,
    pub elapsed_us: u64,
}

/// Why a question got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The agent (or the way to it) failed.
    Ask(AskError),
    /// The request's own timeout ran out first.
    Deadline { agent: String, timeout: Duration },
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Ask(error) => error.fmt(f),
            Failed::Deadline { agent, timeout } => write!(
                f,
                "the trace's own timeout of {} ran out before {agent} answered",
                humantime::format_duration(*timeout)
            ),
        }
    }
}

type Shared = Arc<OnceCell<Result<Answered, Failed>>>;

/// One request's line to the agents.
pub struct Asking<'a, A> {
    asker: &'a A,
    hop_timeout: Duration,
    timeout: Duration,
    deadline: Instant,
    // std Mutexes: each is held for one map lookup, never across an await.
    answers: Mutex<HashMap<(String, String), Shared>>,
    agents: Mutex<HashMap<String, Arc<Semaphore>>>,
    asked: AtomicU64,
    cached: AtomicU64,
}

impl<'a, A: Asker> Asking<'a, A> {
    /// A request starting now, bounded by `bounds`.
    pub fn new(asker: &'a A, bounds: &TraceSettings) -> Asking<'a, A> {
        Asking {
            asker,
            hop_timeout: bounds.hop_timeout,
            timeout: bounds.timeout,
            deadline: Instant::now() + bounds.timeout,
            answers: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
            asked: AtomicU64::new(0),
            cached: AtomicU64::new(0),
        }
    }

    /// Questions sent to agents so far.
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Questions answered from an earlier identical one.
    pub fn cached(&self) -> u64 {
        self.cached.load(Ordering::Relaxed)
    }

    /// Asks `agent`, or shares the answer to the same question asked before
    /// (or being asked now) in this request.
    pub async fn ask(&self, agent: &str, query: TraceQuery) -> Result<Answered, Failed> {
        // The query's JSON is its identity: two queries that serialize alike
        // are the same question on the wire.
        let key = (
            agent.to_string(),
            serde_json::to_string(&query).unwrap_or_default(),
        );
        let cell = Arc::clone(
            self.answers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(key)
                .or_default(),
        );
        let mut fresh = false;
        let answer = cell
            .get_or_init(|| {
                fresh = true;
                self.ask_now(agent, query)
            })
            .await
            .clone();
        let counter = if fresh { &self.asked } else { &self.cached };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    /// Asks a trace question: the answer must be a trace.
    pub async fn trace(&self, agent: &str, query: TraceQuery) -> Result<(Trace, u64), Failed> {
        let answered = self.ask(agent, query).await?;
        match answered.answer {
            TraceAnswer::Flow(trace) | TraceAnswer::Hop(trace) => Ok((trace, answered.elapsed_us)),
            other => Err(Failed::Ask(AskError::Garbage {
                agent: agent.to_string(),
                detail: format!("a {} answer to a trace question", answer_kind(&other)),
            })),
        }
    }

    async fn ask_now(&self, agent: &str, query: TraceQuery) -> Result<Answered, Failed> {
        let deadline = || Failed::Deadline {
            agent: agent.to_string(),
            timeout: self.timeout,
        };
        let semaphore = Arc::clone(
            self.agents
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(agent.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_AGENT))),
        );
        let Ok(Ok(_permit)) = tokio::time::timeout_at(self.deadline, semaphore.acquire()).await
        else {
            return Err(deadline());
        };
        let sent = Instant::now();
        let left = self.deadline.saturating_duration_since(sent);
        if left.is_zero() {
            return Err(deadline());
        }
        let budget = self.hop_timeout.min(left);
        // The asker is told the budget, and held to it: an agent that
        // answers late ends its hop, not the walk.
        let answer = tokio::time::timeout(budget, self.asker.ask(agent, query, budget)).await;
        let elapsed_us = sent.elapsed().as_micros() as u64;
        let cut_by_deadline = budget < self.hop_timeout;
        match answer {
            Err(_) | Ok(Err(AskError::Timeout { .. })) if cut_by_deadline => Err(deadline()),
            Err(_) => Err(Failed::Ask(AskError::Timeout {
                agent: agent.to_string(),
                waited: budget,
            })),
            Ok(Err(error)) => Err(Failed::Ask(error)),
            Ok(Ok(TraceAnswer::Error { error })) => Err(Failed::Ask(AskError::Refused {
                agent: agent.to_string(),
                error,
            })),
            Ok(Ok(answer)) => Ok(Answered { answer, elapsed_us }),
        }
    }
}

fn answer_kind(answer: &TraceAnswer) -> &'static str {
    match answer {
        TraceAnswer::Flow(_) => "flow",
        TraceAnswer::Paths(_) => "paths",
        TraceAnswer::Hop(_) => "hop",
        TraceAnswer::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::scripted::{Behaviour, bounds, flow, leaf_spine};
    use crate::fabric::walk::Arrival;

    fn question(agent: &str, ingress: Option<&str>, sport: u16) -> TraceQuery {
        Arrival {
            agent: agent.into(),
            vrf: "default".into(),
            ingress: ingress.map(str::to_string),
        }
        .query(&flow("10.0.1.2", "10.0.2.2", sport))
    }

    #[tokio::test]
    async fn the_same_question_asked_together_goes_out_once() {
        let mut net = leaf_spine();
        net.yields = 4;
        let asking = Asking::new(&net, &bounds());
        let q = question("leaf1", Some("swp1"), 1000);
        let (a, b) = tokio::join!(asking.ask("leaf1", q.clone()), asking.ask("leaf1", q));
        assert_eq!(a.unwrap().answer, b.unwrap().answer);
        assert_eq!((asking.asked(), asking.cached()), (1, 1));
        assert_eq!(net.questions().len(), 1);
        // Another agent, or another flow, is another question.
        asking
            .ask("spine1", question("spine1", Some("swp1"), 1000))
            .await
            .unwrap();
        asking
            .ask("leaf1", question("leaf1", Some("swp1"), 1001))
            .await
            .unwrap();
        assert_eq!((asking.asked(), asking.cached()), (3, 1));
    }

    #[tokio::test]
    async fn a_refusal_or_an_answer_of_the_wrong_kind_is_no_answer() {
        let net = leaf_spine();
        let asking = Asking::new(&net, &bounds());
        let TraceQuery::Hop(mut hop) = question("leaf1", Some("swp1"), 1000) else {
            unreachable!()
        };
        hop.flow.iif = Some("swp2".into());
        let refused = asking.trace("leaf1", TraceQuery::Hop(hop)).await;
        assert!(
            matches!(&refused, Err(Failed::Ask(AskError::Refused { agent, error }))
                if agent == "leaf1" && error.contains("names iif swp2")),
            "{refused:?}"
        );
        let paths = hopwatch_wire::trace::PathsQuery::new(
            "10.0.2.2".parse().unwrap(),
            6,
            hopwatch_wire::trace::SourcePorts::Range(hopwatch_wire::trace::PortRange {
                first: 1,
                last: 2,
            }),
        );
        let garbage = asking.trace("leaf1", TraceQuery::Paths(paths)).await;
        assert!(
            matches!(&garbage, Err(Failed::Ask(AskError::Garbage { detail, .. }))
                if detail == "a paths answer to a trace question"),
            "{garbage:?}"
        );
    }

    #[tokio::test]
    async fn a_question_waiting_for_a_busy_agent_is_bounded_by_the_deadline() {
        let mut net = leaf_spine();
        net.switch("spine1").behave(Behaviour::Silent);
        let bounds = TraceSettings {
            hop_timeout: Duration::from_secs(60),
            timeout: Duration::from_millis(30),
            ..bounds()
        };
        let asking = Asking::new(&net, &bounds);
        let questions = (0..PER_AGENT as u16 + 1)
            .map(|sport| asking.ask("spine1", question("spine1", Some("swp1"), sport)));
        let answers = futures_util::future::join_all(questions).await;
        for answer in answers {
            assert_eq!(
                answer.unwrap_err().to_string(),
                "the trace's own timeout of 30ms ran out before spine1 answered"
            );
        }
        // The last never reached the agent: it waited for a free turn.
        assert_eq!(net.questions().len(), PER_AGENT);
    }

    /// The walks run inside the API's handlers, which need futures that
    /// can move between threads, over the live switchboard and owners.
    #[test]
    fn the_walks_over_the_live_fabric_are_send() {
        fn send<T: Send>(_: &T) {}
        let board = crate::fabric::switchboard::Switchboard::new();
        let owners = crate::fabric::owners::Owners::new();
        let spec = flow("10.0.1.2", "10.0.2.2", 1);
        let query = crate::fabric::ConnectivityQuery {
            sources: Vec::new(),
            destinations: Vec::new(),
            flows: Vec::new(),
            vrf: "default".into(),
        };
        let bounds = bounds();
        send(&crate::fabric::walk::trace(
            &board, &owners, &spec, &bounds, true,
        ));
        send(&crate::fabric::multipath::all_paths(
            &board, &owners, &spec, None, &bounds,
        ));
        send(&crate::fabric::connectivity::matrix(
            &board, &owners, &query, &bounds,
        ));
    }
}
