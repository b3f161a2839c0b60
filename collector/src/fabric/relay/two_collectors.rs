//! Two collectors' relays and switchboards on one real PostgreSQL
//! database, without the rest of a collector: who holds which agent, and
//! questions crossing from one to the other and back.

use super::*;
use crate::fabric::owners::Owners;
use crate::fabric::switchboard::{Registration, Switchboard};
use crate::fabric::{Asker, Fabric, TraceSettings};
use crate::store::postgres::collectors::Listens;
use crate::store::postgres::pgcluster;
use crate::store::postgres::{PostgresSettings, SslMode, UrlSource};
use hopwatch_wire::Secret;
use hopwatch_wire::trace::{FlowQuery, HopQuery};
use std::sync::Arc;
use tokio::sync::broadcast;

fn settings(url: String) -> PostgresSettings {
    PostgresSettings {
        url: UrlSource::Inline(Secret::new(url)),
        pool_size: 4,
        ssl_mode: SslMode::Disable,
        ca_file: None,
        connect_timeout: Duration::from_secs(10),
    }
}

/// One collector's part: its switchboard and relay, and the membership
/// tasks running until `stop`.
struct Side {
    fabric: Arc<Fabric>,
    relay: Arc<Relay>,
    members: tokio::task::JoinHandle<()>,
}

async fn side(settings: &PostgresSettings, stop: &broadcast::Sender<()>) -> Side {
    let pg = Pg::open(settings).await.unwrap();
    let fabric = Arc::new(Fabric {
        switchboard: Arc::new(Switchboard::new()),
        owners: Arc::new(Owners::new()),
        settings: TraceSettings::default(),
    });
    let relay = Arc::new(Relay::new(pg, Identity::generate(), Arc::default()));
    let listens = Listens {
        agents: "127.0.0.1:7000".into(),
        http: "127.0.0.1:8080".into(),
    };
    let members = start(
        Arc::clone(&relay),
        settings.clone(),
        Arc::clone(&fabric),
        listens,
        stop,
    );
    Side {
        fabric,
        relay,
        members,
    }
}

fn hop() -> TraceQuery {
    TraceQuery::Hop(HopQuery {
        flow: FlowQuery::new("10.9.0.1".parse().unwrap()),
        ingress: "swp1".into(),
    })
}

fn empty_trace(summary: &str) -> hopwatch_wire::trace::Trace {
    serde_json::from_value(serde_json::json!({
        "request": {"dst": "10.9.0.1"},
        "success": true,
        "reaches_destination": false,
        "ingress_inferred": false,
        "hops": [],
        "summary": summary,
        "backend": "kernel",
        "elapsed_us": 1,
    }))
    .unwrap()
}

/// Answers every question on `registration` as an agent would: a hop
/// whose summary names the question's ingress, or a refusal for a flow.
fn answer_all(mut registration: Registration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(line) = registration.next_request().await {
            let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let id = value["id"].as_u64().unwrap();
            let result = match value["query"]["kind"].as_str() {
                Some("hop") => serde_json::to_value(TraceAnswer::Hop(empty_trace(&format!(
                    "arrived on {}",
                    value["query"]["ingress"].as_str().unwrap()
                ))))
                .unwrap(),
                _ => serde_json::json!({"kind": "error", "error": "no flows here"}),
            };
            let line = serde_json::json!({"type": "trace_result", "id": id, "result": result});
            registration.deliver(line.to_string().as_bytes());
        }
    })
}

/// Polls `f` until it answers, or panics naming `what` after 10 s.
async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = f().await {
            return found;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn held_by(pg: &Pg, agent: &str) -> Option<String> {
    let client = pg.client().await.unwrap();
    client
        .query_one("SELECT held_by FROM agents WHERE name = $1", &[&agent])
        .await
        .unwrap()
        .get(0)
}

async fn relay_rows(pg: &Pg) -> i64 {
    let client = pg.client().await.unwrap();
    client
        .query_one("SELECT count(*) FROM trace_relays", &[])
        .await
        .unwrap()
        .get(0)
}

async fn add_agents(pg: &Pg, names: &[&str]) {
    let client = pg.client().await.unwrap();
    for name in names {
        client
            .execute("INSERT INTO agents (name) VALUES ($1)", &[name])
            .await
            .unwrap();
    }
}

/// A database of its own on the shared cluster, and a runtime to use it
/// from; None (the reason printed) where no cluster can start.
fn setup(test: &str) -> Option<(PostgresSettings, tokio::runtime::Runtime)> {
    if !pgcluster::can_use(test) {
        return None;
    }
    let url = pgcluster::shared().database(test);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some((settings(url), runtime))
}

#[test]
fn root_a_question_for_an_agent_held_by_another_collector_is_relayed() {
    let Some((settings, runtime)) =
        setup("root_a_question_for_an_agent_held_by_another_collector_is_relayed")
    else {
        return;
    };
    runtime.block_on(async {
        let (stop, _) = broadcast::channel(1);
        let a = side(&settings, &stop).await;
        let b = side(&settings, &stop).await;
        add_agents(&a.relay.pg, &["leaf1"]).await;
        let _agent = answer_all(b.fabric.switchboard.register("leaf1"));
        let b_id = b.relay.identity().id.clone();
        until("leaf1 held by B", || async {
            (held_by(&a.relay.pg, "leaf1").await.as_deref() == Some(b_id.as_str())).then_some(())
        })
        .await;

        let answer = a
            .fabric
            .switchboard
            .ask("leaf1", hop(), Duration::from_secs(2))
            .await;
        match answer {
            Ok(TraceAnswer::Hop(trace)) => assert_eq!(trace.summary, "arrived on swp1"),
            other => panic!("{other:?}"),
        }
        // A refusal crosses as the agent said it.
        let refused = a
            .fabric
            .switchboard
            .ask(
                "leaf1",
                TraceQuery::Flow(FlowQuery::new("10.9.0.1".parse().unwrap())),
                Duration::from_secs(2),
            )
            .await;
        assert_eq!(
            refused,
            Err(AskError::Refused {
                agent: "leaf1".into(),
                error: "no flows here".into()
            })
        );
        // Several at once, each to its own asker.
        let many = (0..8).map(|_| {
            a.fabric
                .switchboard
                .ask("leaf1", hop(), Duration::from_secs(2))
        });
        for answer in futures_util::future::join_all(many).await {
            assert!(matches!(answer, Ok(TraceAnswer::Hop(_))), "{answer:?}");
        }
        let mut took: Vec<Duration> = Vec::new();
        for _ in 0..50 {
            let began = Instant::now();
            a.fabric
                .switchboard
                .ask("leaf1", hop(), Duration::from_secs(2))
                .await
                .unwrap();
            took.push(began.elapsed());
        }
        took.sort();
        eprintln!(
            "relayed question round trip over the store: p50 {:?}, max {:?}",
            took[25], took[49]
        );
        // Every row is gone once answered.
        assert_eq!(relay_rows(&a.relay.pg).await, 0);
        // What B's agent reports reaches A's owners map through the store,
        // so A's traces map a next hop to it.
        a.relay
            .pg
            .client()
            .await
            .unwrap()
            .execute(
                "UPDATE agents SET addresses = $1 WHERE name = 'leaf1'",
                &[&r#"[{"vrf":"default","addresses":[{"interface":"swp7","address":"10.0.0.1/31"}]}]"#],
            )
            .await
            .unwrap();
        let owner = until("A knows leaf1's address", || async {
            crate::fabric::Directory::owner(&*a.fabric.owners, "default", "10.0.0.1".parse().unwrap())
        })
        .await;
        assert_eq!((owner.agent.as_str(), owner.interface.as_str()), ("leaf1", "swp7"));
        // B never relays back: an agent on neither is offline, from either.
        for side in [&a, &b] {
            assert_eq!(
                side.fabric
                    .switchboard
                    .ask("nowhere", hop(), Duration::from_secs(1))
                    .await,
                Err(AskError::Offline {
                    agent: "nowhere".into()
                })
            );
        }
        let _ = stop.send(());
        a.members.await.unwrap();
        b.members.await.unwrap();
    });
}

#[test]
fn root_a_moved_agent_is_held_by_the_collector_of_its_newest_session() {
    let Some((settings, runtime)) =
        setup("root_a_moved_agent_is_held_by_the_collector_of_its_newest_session")
    else {
        return;
    };
    runtime.block_on(async {
        let (stop, _) = broadcast::channel(1);
        let a = side(&settings, &stop).await;
        let b = side(&settings, &stop).await;
        let (a_id, b_id) = (a.relay.identity().id.clone(), b.relay.identity().id.clone());
        let pg = &a.relay.pg;
        // Connected before the writer has the agent's row: held once it has.
        let on_a = a.fabric.switchboard.register("leaf1");
        add_agents(pg, &["leaf1"]).await;
        until("leaf1 held by A", || async {
            (held_by(pg, "leaf1").await.as_deref() == Some(a_id.as_str())).then_some(())
        })
        .await;
        // It reconnects to B before A has noticed its old connection died.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let on_b = b.fabric.switchboard.register("leaf1");
        until("leaf1 held by B", || async {
            (held_by(pg, "leaf1").await.as_deref() == Some(b_id.as_str())).then_some(())
        })
        .await;
        // A's refreshes do not take it back, nor does A's end clear B's mark.
        tokio::time::sleep(collectors::REFRESH + Duration::from_millis(500)).await;
        drop(on_a);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(held_by(pg, "leaf1").await, Some(b_id.clone()));
        drop(on_b);
        until("leaf1 held by none", || async {
            held_by(pg, "leaf1").await.is_none().then_some(())
        })
        .await;
        // A stop leaves the store: the row goes, and so does every holding.
        let _again = b.fabric.switchboard.register("leaf1");
        until("leaf1 held by B again", || async {
            (held_by(pg, "leaf1").await.as_deref() == Some(b_id.as_str())).then_some(())
        })
        .await;
        let _ = stop.send(());
        a.members.await.unwrap();
        b.members.await.unwrap();
        let client = pg.client().await.unwrap();
        let rows: i64 = client
            .query_one("SELECT count(*) FROM collectors", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0);
        assert_eq!(held_by(pg, "leaf1").await, None);
    });
}

#[test]
fn root_a_relay_to_a_collector_that_died_times_out_like_a_silent_agent() {
    let Some((settings, runtime)) =
        setup("root_a_relay_to_a_collector_that_died_times_out_like_a_silent_agent")
    else {
        return;
    };
    runtime.block_on(async {
        let (stop, _) = broadcast::channel(1);
        let a = side(&settings, &stop).await;
        let pg = &a.relay.pg;
        add_agents(pg, &["leaf9", "leaf8"]).await;
        // A collector that died without leaving: its row still fresh, its
        // holding still marked, nobody listening on its channel.
        let ghost = Identity::from_parts("gone", 0xdead);
        collectors::register(
            &pg.client().await.unwrap(),
            &ghost,
            &Listens {
                agents: String::new(),
                http: String::new(),
            },
            now_ms(),
        )
        .await
        .unwrap();
        let client = pg.client().await.unwrap();
        client
            .execute(
                "UPDATE agents SET held_by = $1, held_since_ms = 1 WHERE name = 'leaf9'",
                &[&ghost.id],
            )
            .await
            .unwrap();
        // A local agent that never answers, for comparison.
        let _silent = a.fabric.switchboard.register("leaf8");
        let wait = Duration::from_millis(400);
        let began = Instant::now();
        let relayed = a.fabric.switchboard.ask("leaf9", hop(), wait).await;
        let took = began.elapsed();
        let local = a.fabric.switchboard.ask("leaf8", hop(), wait).await;
        assert_eq!(
            relayed,
            Err(AskError::Timeout {
                agent: "leaf9".into(),
                waited: wait
            })
        );
        assert_eq!(
            local,
            Err(AskError::Timeout {
                agent: "leaf8".into(),
                waited: wait
            })
        );
        assert!(took >= wait && took < wait * 3, "{took:?}");
        // The row it wrote is gone with the wait.
        until("the relay row deleted", || async {
            (relay_rows(pg).await == 0).then_some(())
        })
        .await;
        // Once the dead collector's row is stale, its holdings are void:
        // the agent is offline, answered at once.
        client
            .execute(
                "UPDATE collectors SET last_seen_ms = $2 WHERE id = $1",
                &[
                    &ghost.id,
                    &(now_ms() - collectors::STALE.as_millis() as i64 - 1000),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            a.fabric.switchboard.ask("leaf9", hop(), wait).await,
            Err(AskError::Offline {
                agent: "leaf9".into()
            })
        );
        let _ = stop.send(());
        a.members.await.unwrap();
    });
}

#[test]
fn root_relaying_resumes_after_the_database_restarts() {
    if !pgcluster::can_use("root_relaying_resumes_after_the_database_restarts") {
        return;
    }
    let cluster = pgcluster::Cluster::own();
    let settings = settings(cluster.database("restart"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (stop, _) = broadcast::channel(1);
        let a = side(&settings, &stop).await;
        let b = side(&settings, &stop).await;
        add_agents(&a.relay.pg, &["leaf1"]).await;
        let _agent = answer_all(b.fabric.switchboard.register("leaf1"));
        let relayed = || async {
            a.fabric
                .switchboard
                .ask("leaf1", hop(), Duration::from_secs(1))
                .await
                .ok()
        };
        until("a first relayed answer", relayed).await;
        tokio::task::block_in_place(|| {
            cluster.stop();
            cluster.start();
        });
        // Both listeners connect again and the holdings are marked again,
        // with no help from the agents or the askers.
        let began = Instant::now();
        until("a relayed answer after the restart", relayed).await;
        eprintln!(
            "relaying answered again {:?} after the database came back",
            began.elapsed()
        );
        let _ = stop.send(());
        a.members.await.unwrap();
        b.members.await.unwrap();
    });
}
