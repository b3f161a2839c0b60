//! The HTTP API's query strings (`since` as a duration or a time, `limit`,
//! `state`, the filters), sent through the real router with a valid token to
//! a store holding a few link changes.
#![no_main]

use axum::body::Body as HttpBody;
use axum::http::Request;
use hopwatch::event::{Body, Link, LinkState, Sequencer};
use hopwatch::wire::{Hello, HelloTag, PROTOCOL_VERSION};
use hopwatch_collector::api::web::Web;
use hopwatch_collector::api::web::session::{MAX_SESSIONS, Sessions};
use hopwatch_collector::api::{Api, router};
use hopwatch_collector::auth::Tokens;
use hopwatch_collector::config::{RateLimitSettings, Secret};
use hopwatch_collector::fabric::owners::Owners;
use hopwatch_collector::fabric::switchboard::Switchboard;
use hopwatch_collector::fabric::{Fabric, TraceSettings};
use hopwatch_collector::ingest::parse_line;
use hopwatch_collector::metrics::Metrics;
use hopwatch_collector::ratelimit::RateLimiter;
use hopwatch_collector::silences::{Board, DEFAULT_MAX_DURATION, SilenceSettings};
use hopwatch_collector::store::writer::{Committed, Request as Write, Writer, WriterSettings};
use hopwatch_collector::store::{ReadPool, Reads, open_writer};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};
use tower::ServiceExt;

const TOKEN: &str = "fuzz-api-token-0123456789";
const NOW_MS: i64 = 1_700_000_000_000;
const ENDPOINTS: [&str; 4] = [
    "/api/v1/links/changes",
    "/api/v1/links/downtime",
    "/api/v1/alerts",
    "/api/v1/agents",
];

/// A store written once: an interface that went down and came back.
fn store() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // libFuzzer ends the process without dropping anything: clear what
    // earlier runs left behind.
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hopwatch-fuzz-api-"))
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("hopwatch-fuzz-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut writer = Writer::new(
        open_writer(&dir).expect("a scratch store"),
        Arc::new(Committed::default()),
        Arc::new(Metrics::default()),
        None,
        WriterSettings {
            heartbeat_timeout: Duration::from_secs(30),
            retain: Duration::from_secs(86_400 * 365),
        },
    )
    .expect("a writer");
    let mut seq = Sequencer::new("leaf1", "boot-a");
    let events = [(LinkState::Down, 60_000), (LinkState::Up, 30_000)]
        .into_iter()
        .map(|(state, ago)| {
            let at = UNIX_EPOCH + Duration::from_millis((NOW_MS - ago) as u64);
            let event = seq.stamp(
                at,
                Body::Link(Link {
                    interface: "swp1".into(),
                    previous: if state == LinkState::Up {
                        LinkState::Down
                    } else {
                        LinkState::Up
                    },
                    state,
                    carrier_changes: 1,
                    oper_state: "down".into(),
                    message: String::new(),
                    admin: None,
                    reason: None,
                }),
            );
            let line = serde_json::to_vec(&event).expect("an event serializes");
            parse_line(&line).expect("a good line").expect("an event")
        })
        .collect();
    let (reply, _acks) = tokio::sync::mpsc::unbounded_channel();
    writer.apply(
        vec![
            Write::Hello {
                hello: Box::new(Hello {
                    kind: HelloTag::Hello,
                    protocol: PROTOCOL_VERSION,
                    token: String::new(),
                    agent: "leaf1".into(),
                    boot: "boot-a".into(),
                    boots: vec![],
                    version: "0".into(),
                    addresses: vec![],
                    now: None,
                }),
                address: "192.0.2.1".into(),
            },
            Write::Events { events, reply },
        ],
        NOW_MS,
    );
    dir
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = store();
        let api = Arc::new(Api {
            pool: Arc::new(Reads::Sqlite(ReadPool::new(&dir))),
            tokens: Arc::new(Tokens::new(vec![], vec![Secret::new(TOKEN)])),
            limiter: RateLimiter::new(RateLimitSettings {
                per_second: 1e12,
                burst: u32::MAX,
            }),
            metrics: Arc::new(Metrics::default()),
            heartbeat_timeout: Duration::from_secs(30),
            forward: None,
            alerting: None,
            fabric: Arc::new(Fabric {
                switchboard: Arc::new(Switchboard::new()),
                owners: Arc::new(Owners::new()),
                settings: TraceSettings::default(),
            }),
            web: Web::new(
                Sessions::new(Duration::from_secs(3600), MAX_SESSIONS),
                false,
                false,
            ),
            // Remembering across questions, as the running collector does.
            since: Arc::new(hopwatch_collector::store::since::SinceCache::new(
                Duration::from_secs(90 * 86_400),
            )),
            // Only questions are asked here: nothing writes a silence.
            silences: Arc::new(Board::new(
                Vec::new(),
                tokio::sync::mpsc::channel(1).0,
                SilenceSettings {
                    max_duration: DEFAULT_MAX_DURATION,
                },
            )),
        });
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            app: router(api),
        }
    })
}

/// The query string as a client would send it: `&` and `=` as given,
/// everything else a URI may not hold percent-encoded.
fn query_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"&=-_.~:+%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, query)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let uri = format!(
        "{}?{}",
        ENDPOINTS[usize::from(which) % ENDPOINTS.len()],
        query_string(query)
    );
    let Ok(request) = Request::get(&uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(HttpBody::empty())
    else {
        return;
    };
    let response = fixture
        .runtime
        .block_on(fixture.app.clone().oneshot(request))
        .expect("the router answers");
    assert!(
        !response.status().is_server_error(),
        "{uri} answered {}",
        response.status()
    );
});
