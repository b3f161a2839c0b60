//! What an agent sends the collector: a `hello` line, then events, each read
//! by the collector's line parser and committed by the store's writer into a
//! real SQLite store, whose change and downtime queries then run over them.
#![no_main]

use hopwatch::wire::{Hello, PROTOCOL_VERSION};
use hopwatch_collector::ingest::parse_line;
use hopwatch_collector::metrics::Metrics;
use hopwatch_collector::store::query::{self, DowntimeQuery};
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
    let mut events = Vec::new();
    for line in lines {
        if let Ok(Some(incoming)) = parse_line(line) {
            events.push(incoming);
        }
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
    let (reply, _acks) = tokio::sync::mpsc::unbounded_channel();
    writer.apply(
        vec![
            Request::Hello {
                hello: Box::new(hello),
                address: "192.0.2.1".into(),
            },
            Request::Events { events, reply },
        ],
        NOW_MS,
    );
    let pool = ReadPool::new(&dir);
    pool.with(|db| {
        query::changes(db, 0, None)?;
        query::downtime(
            db,
            &DowntimeQuery::since(0),
            NOW_MS,
            Duration::from_secs(30),
        )?;
        query::agents(db, NOW_MS, Duration::from_secs(30))?;
        Ok(())
    })
    .expect("queries over a fresh store");
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
});
