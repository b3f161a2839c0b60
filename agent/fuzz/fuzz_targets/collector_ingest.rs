//! What an agent sends the collector: a `hello` line (its `now` measures the
//! agent's clock skew), then events and `goodbye`s, each read by the
//! collector's line parser and handed, in order, to the store's writer,
//! which commits them into a real SQLite store; the change, downtime and
//! agent queries then run over it.
#![no_main]

use hopwatch::wire::{Goodbye, Hello, PROTOCOL_VERSION};
use hopwatch_collector::ingest::parse_line;
use hopwatch_collector::metrics::Metrics;
use hopwatch_collector::store::query::{self, DowntimeQuery};
use hopwatch_collector::store::since::SinceCache;
use hopwatch_collector::store::writer::{Committed, Request, Writer, WriterSettings};
use hopwatch_collector::store::{ReadPool, open_writer};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The writer's clock: fixed, so an input replays the same.
const NOW_MS: i64 = 1_700_000_000_000;

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("hopwatch-fuzz-ingest-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(first) = lines.next() else {
        return;
    };
    let Ok(hello) = serde_json::from_slice::<Hello>(first) else {
        return;
    };
    if hello.protocol != PROTOCOL_VERSION {
        return;
    }
    let agent = hello.agent.clone();
    let (reply, _acks) = tokio::sync::mpsc::unbounded_channel();
    let mut requests = vec![Request::Hello {
        hello: Box::new(hello),
        address: "192.0.2.1".into(),
    }];
    let mut events = Vec::new();
    // As the collector's session hands lines over: events in chunks, a
    // goodbye after the events before it, and nothing after an event that
    // names another agent (the session ends there).
    for line in lines {
        match parse_line(line) {
            Ok(Some(incoming)) if incoming.agent != agent => break,
            Ok(Some(incoming)) => events.push(incoming),
            Ok(None) => {}
            Err(_) => {
                if let Ok(goodbye) = serde_json::from_slice::<Goodbye>(line) {
                    if !events.is_empty() {
                        requests.push(Request::Events {
                            events: std::mem::take(&mut events),
                            reply: reply.clone(),
                        });
                    }
                    requests.push(Request::Goodbye {
                        agent: agent.clone(),
                        boot: goodbye.boot,
                        last_seq: goodbye.last_seq,
                    });
                }
            }
        }
    }
    if !events.is_empty() {
        requests.push(Request::Events { events, reply });
    }

    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    let db = open_writer(&dir).expect("a scratch store");
    let mut writer = Writer::new(
        db,
        Arc::new(Committed::default()),
        Arc::new(Metrics::default()),
        None,
        WriterSettings {
            heartbeat_timeout: Duration::from_secs(30),
            retain: Duration::from_secs(86_400),
        },
    )
    .expect("a writer");
    writer.apply(requests, NOW_MS);
    let pool = ReadPool::new(&dir);
    pool.with(|db| {
        query::changes(db, 0, None)?;
        query::downtime(
            db,
            &DowntimeQuery::since(0),
            NOW_MS,
            Duration::from_secs(30),
            &SinceCache::none(),
        )?;
        query::agents(db, NOW_MS, Duration::from_secs(30))?;
        Ok(())
    })
    .expect("queries over a fresh store");
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
});
