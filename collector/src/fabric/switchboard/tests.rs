//! The switchboard's questions and answers without sockets: each
//! connection's queue and table driven by hand.

use super::*;
use hopwatch_wire::trace::{FlowQuery, HopQuery};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

fn hop() -> TraceQuery {
    TraceQuery::Hop(HopQuery {
        flow: FlowQuery {
            src: Some("10.0.0.1".parse().unwrap()),
            ..FlowQuery::new("10.9.0.1".parse().unwrap())
        },
        ingress: "swp1".into(),
    })
}

fn flow() -> TraceQuery {
    TraceQuery::Flow(FlowQuery::new("10.9.0.1".parse().unwrap()))
}

/// A `trace_result` line answering `id` with `result` (JSON).
fn result(id: u64, result: &str) -> Vec<u8> {
    format!(r#"{{"type":"trace_result","id":{id},"result":{result}}}"#).into_bytes()
}

/// What an agent would read: the request's id and query kind.
fn read_request(line: &[u8]) -> (u64, String) {
    assert_eq!(line.last(), Some(&b'\n'));
    let value: serde_json::Value = serde_json::from_slice(line).unwrap();
    assert_eq!(value["type"], "trace_request");
    (
        value["id"].as_u64().unwrap(),
        value["query"]["kind"].as_str().unwrap().to_string(),
    )
}

fn hop_answer() -> String {
    let answer = TraceAnswer::Hop(empty_trace());
    serde_json::to_string(&answer).unwrap()
}

fn empty_trace() -> hopwatch_wire::trace::Trace {
    serde_json::from_value(serde_json::json!({
        "request": {"dst": "10.9.0.1"},
        "success": true,
        "reaches_destination": false,
        "ingress_inferred": false,
        "hops": [],
        "summary": "",
        "backend": "kernel",
        "elapsed_us": 1,
    }))
    .unwrap()
}

/// Polls `future` once, to see it has sent its request and waits.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn an_answer_reaches_the_one_who_asked() {
    let board = Switchboard::new();
    let mut line = board.register("leaf1");
    assert!(board.is_connected("leaf1"));
    assert_eq!(board.connected(), vec!["leaf1".to_string()]);
    let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(30)));
    assert!(poll_once(asking.as_mut()).is_pending());
    let (id, kind) = read_request(&line.try_next_request().unwrap());
    assert_eq!(kind, "hop");
    line.deliver(&result(id, &hop_answer()));
    assert_eq!(asking.await, Ok(TraceAnswer::Hop(empty_trace())));
    let m = &board.inner.metrics;
    assert_eq!(m.traces_asked.load(Ordering::Relaxed), 1);
    assert_eq!(m.traces_ended_count(TraceOutcome::Answered), 1);
}

#[tokio::test]
async fn an_agent_not_connected_is_offline_at_once() {
    let board = Switchboard::new();
    assert_eq!(
        board.ask("leaf9", hop(), Duration::from_secs(30)).await,
        Err(AskError::Offline {
            agent: "leaf9".into()
        })
    );
    assert_eq!(
        board
            .inner
            .metrics
            .traces_ended_count(TraceOutcome::Offline),
        1
    );
}

#[tokio::test]
async fn silence_times_out_and_the_late_answer_is_dropped() {
    let board = Switchboard::new();
    let mut line = board.register("leaf1");
    let waited = Duration::from_millis(20);
    assert_eq!(
        board.ask("leaf1", hop(), waited).await,
        Err(AskError::Timeout {
            agent: "leaf1".into(),
            waited
        })
    );
    let (id, _) = read_request(&line.try_next_request().unwrap());
    line.deliver(&result(id, &hop_answer()));
    let m = &board.inner.metrics;
    assert_eq!(m.trace_results_late.load(Ordering::Relaxed), 1);
    assert_eq!(m.traces_ended_count(TraceOutcome::Timeout), 1);
    // An answer to an id never asked is dropped the same way.
    line.deliver(&result(id + 1000, &hop_answer()));
    assert_eq!(m.trace_results_late.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn garbage_a_wrong_kind_and_an_error_end_only_their_own_question() {
    let board = Switchboard::new();
    let mut line = board.register("leaf1");
    let long = format!(r#"{{"kind":"{}"}}"#, "x".repeat(5000));
    for (answer, expected) in [
        (long.as_str(), "unreadable trace_result: unknown variant"),
        (r#"{"kind":"flow","hops":7}"#, "unreadable trace_result: "),
        (r#"{"kind":"paths"}"#, "unreadable trace_result: "),
    ] {
        let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(30)));
        assert!(poll_once(asking.as_mut()).is_pending());
        let (id, _) = read_request(&line.try_next_request().unwrap());
        line.deliver(&result(id, answer));
        match asking.await {
            Err(AskError::Garbage { agent, detail }) => {
                assert_eq!(agent, "leaf1");
                assert!(detail.starts_with(expected), "{detail}");
                assert!(detail.chars().count() <= DETAIL + 30, "{detail}");
            }
            other => panic!("{answer}: {other:?}"),
        }
    }
    // A hop answer to a flow question.
    let mut asking = pin!(board.ask("leaf1", flow(), Duration::from_secs(30)));
    assert!(poll_once(asking.as_mut()).is_pending());
    let (id, _) = read_request(&line.try_next_request().unwrap());
    line.deliver(&result(id, &hop_answer()));
    assert_eq!(
        asking.await,
        Err(AskError::Garbage {
            agent: "leaf1".into(),
            detail: "a hop answer to a flow question".into()
        })
    );
    let mut asking = pin!(board.ask("leaf1", flow(), Duration::from_secs(30)));
    assert!(poll_once(asking.as_mut()).is_pending());
    let (id, _) = read_request(&line.try_next_request().unwrap());
    line.deliver(&result(
        id,
        r#"{"kind":"error","error":"no such VRF blue"}"#,
    ));
    assert_eq!(
        asking.await,
        Err(AskError::Refused {
            agent: "leaf1".into(),
            error: "no such VRF blue".into()
        })
    );
    // The line still works.
    let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(30)));
    assert!(poll_once(asking.as_mut()).is_pending());
    let (id, _) = read_request(&line.try_next_request().unwrap());
    line.deliver(&result(id, &hop_answer()));
    assert!(asking.await.is_ok());
    let m = &board.inner.metrics;
    assert_eq!(m.traces_ended_count(TraceOutcome::Garbage), 4);
    assert_eq!(m.traces_ended_count(TraceOutcome::Refused), 1);
}

#[tokio::test]
async fn an_answer_is_taken_only_from_the_connection_asked() {
    let board = Switchboard::new();
    let mut leaf1 = board.register("leaf1");
    let leaf2 = board.register("leaf2");
    let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(30)));
    assert!(poll_once(asking.as_mut()).is_pending());
    let (id, _) = read_request(&leaf1.try_next_request().unwrap());
    leaf2.deliver(&result(id, &hop_answer()));
    assert!(poll_once(asking.as_mut()).is_pending());
    assert_eq!(
        board
            .inner
            .metrics
            .trace_results_late
            .load(Ordering::Relaxed),
        1
    );
    leaf1.deliver(&result(id, &hop_answer()));
    assert!(asking.await.is_ok());
}

#[tokio::test]
async fn a_closing_connection_fails_its_questions_at_once() {
    let board = Switchboard::new();
    let line = board.register("leaf1");
    let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    assert!(poll_once(asking.as_mut()).is_pending());
    drop(line);
    assert_eq!(
        asking.await,
        Err(AskError::Closed {
            agent: "leaf1".into()
        })
    );
    assert!(!board.is_connected("leaf1"));
    assert!(matches!(
        board.ask("leaf1", hop(), Duration::from_secs(1)).await,
        Err(AskError::Offline { .. })
    ));
}

#[tokio::test]
async fn a_reconnection_replaces_the_old_one_whose_end_leaves_it_alone() {
    let board = Switchboard::new();
    let mut old = board.register("leaf1");
    let mut on_old = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    assert!(poll_once(on_old.as_mut()).is_pending());
    let mut new = board.register("leaf1");
    let mut on_new = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    assert!(poll_once(on_new.as_mut()).is_pending());
    assert!(new.try_next_request().is_some());
    assert!(old.try_next_request().is_some());
    assert!(old.try_next_request().is_none());
    drop(old);
    assert!(matches!(on_old.await, Err(AskError::Closed { .. })));
    assert!(board.is_connected("leaf1"));
    assert!(poll_once(on_new.as_mut()).is_pending());
    drop(new);
    assert!(matches!(on_new.await, Err(AskError::Closed { .. })));
    assert!(!board.is_connected("leaf1"));
}

#[tokio::test]
async fn a_full_queue_fails_the_question_at_once() {
    let board = Switchboard::build(Arc::new(Metrics::default()), 2);
    let mut line = board.register("leaf1");
    let mut first = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    let mut second = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert_eq!(
        board.ask("leaf1", hop(), Duration::from_secs(3600)).await,
        Err(AskError::Busy {
            agent: "leaf1".into(),
            queued: 2
        })
    );
    assert_eq!(
        board.inner.metrics.traces_ended_count(TraceOutcome::Busy),
        1
    );
    // Written out, the queue takes questions again.
    let (id, _) = read_request(&line.try_next_request().unwrap());
    assert!(line.try_next_request().is_some());
    let mut third = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
    assert!(poll_once(third.as_mut()).is_pending());
    line.deliver(&result(id, &hop_answer()));
    assert!(first.await.is_ok());
}

#[tokio::test]
async fn an_agent_is_asked_at_most_its_turns_at_once() {
    let board = Switchboard::new();
    let mut line = board.register("leaf1");
    let mut asking: Vec<_> = (0..=TURNS)
        .map(|_| Box::pin(board.ask("leaf1", hop(), Duration::from_secs(3600))))
        .collect();
    for ask in &mut asking {
        assert!(poll_once(ask.as_mut()).is_pending());
    }
    let sent: Vec<u64> = std::iter::from_fn(|| line.try_next_request())
        .map(|request| read_request(&request).0)
        .collect();
    assert_eq!(sent.len(), TURNS, "one question waits for its turn");
    line.deliver(&result(sent[0], &hop_answer()));
    assert!(asking.remove(0).await.is_ok());
    assert!(poll_once(asking[TURNS - 1].as_mut()).is_pending());
    assert!(line.try_next_request().is_some(), "an answer frees a turn");
    // Waiting for a turn counts against the question's own timeout.
    let waited = Duration::from_millis(20);
    assert_eq!(
        board.ask("leaf1", hop(), waited).await,
        Err(AskError::Timeout {
            agent: "leaf1".into(),
            waited
        })
    );
    assert!(line.try_next_request().is_none());
}

#[tokio::test]
async fn an_asker_that_gives_up_takes_its_waiter_with_it() {
    let board = Switchboard::new();
    let mut line = board.register("leaf1");
    {
        let mut asking = pin!(board.ask("leaf1", hop(), Duration::from_secs(3600)));
        assert!(poll_once(asking.as_mut()).is_pending());
    }
    let m = &board.inner.metrics;
    assert_eq!(m.traces_ended_count(TraceOutcome::Abandoned), 1);
    let waiting = line.line.waiting.lock().unwrap().as_ref().unwrap().len();
    assert_eq!(waiting, 0);
    let (id, _) = read_request(&line.try_next_request().unwrap());
    line.deliver(&result(id, &hop_answer()));
    assert_eq!(m.trace_results_late.load(Ordering::Relaxed), 1);
}

#[test]
fn cuts_long_details_on_a_character_boundary() {
    assert_eq!(cut("short"), "short");
    let long = "é".repeat(DETAIL + 5);
    assert_eq!(cut(&long).chars().count(), DETAIL + 1);
}

#[tokio::test]
async fn connections_coming_and_going_are_told_with_when_they_came() {
    let board = Switchboard::new();
    let before = crate::store::millis(std::time::SystemTime::now());
    let first = board.register("leaf1");
    // One ping however many changes came before it was waited for.
    let _second = board.register("leaf2");
    board.changed().await;
    let lines = board.lines();
    let names: Vec<&str> = lines.iter().map(|(agent, _)| agent.as_str()).collect();
    assert_eq!(names, ["leaf1", "leaf2"]);
    assert!(lines.iter().all(|(_, since)| *since >= before));
    assert!(poll_once(pin!(board.changed())).is_pending());
    drop(first);
    assert!(poll_once(pin!(board.changed())).is_ready());
    assert_eq!(board.lines().len(), 1);
    // Without a relay, an agent not connected here is offline, as before.
    assert_eq!(
        board.ask("leaf1", hop(), Duration::from_secs(1)).await,
        Err(AskError::Offline {
            agent: "leaf1".into()
        })
    );
}
