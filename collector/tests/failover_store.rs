//! Crashes around a shared PostgreSQL store, with the real collector binary:
//! two collectors on one database each SIGKILLed twice while fake agents
//! that list both stream and move to whichever answers; the database server
//! itself crashed and restarted mid-stream; and a `[store]` the collector
//! cannot use at start. Afterwards each event is stored exactly once, no
//! acknowledged event was ever missing from a welcome, and nothing printed
//! holds the database's password. PostgreSQL only: the SQLite binary skips
//! them with the reason printed.

use crate::pgcluster::{self, Cluster};
use crate::util::{
    AGENT_TOKEN, API_TOKEN, FakeAgent, Process, Store, TempDir, event, free_port, heartbeat,
    link, point_store, share_store,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const EVENTS: u64 = 20_000;
const BATCH: u64 = 200;
/// Events an agent keeps unacknowledged at most, like a bounded spool
/// window.
const WINDOW: u64 = 4_000;
/// An agent moves to the next collector on its own after each this many
/// events, as one whose connection was reset does.
const MOVE_EVERY: u64 = 3_000;

/// Whether `test` runs in this binary; says why not in the SQLite one.
fn on_postgres(test: &str) -> bool {
    if crate::STORE == Store::Postgres {
        return true;
    }
    eprintln!("{test} is about a shared PostgreSQL store: not run on SQLite");
    false
}

/// What one fake agent saw, for the failure report.
#[derive(Default)]
struct Seen {
    /// Highest seq acknowledged (or found stored in a welcome).
    acked: AtomicU64,
    /// Connections made, and hellos a collector refused or never answered.
    connections: AtomicU64,
    refusals: AtomicU64,
}

/// Streams events 1..=`events` of boot `b1` as the real agent does, to
/// the first of `addrs` that answers, moving on to the next when that one
/// dies or refuses, and every `MOVE_EVERY` events regardless: on each connection it resumes after what the welcome
/// says is stored, and drops from its "spool" only what was acknowledged.
/// Err when a welcome ever holds less than was acknowledged (a false ack),
/// or when it does not finish within two minutes.
fn agent(addrs: Vec<SocketAddr>, name: String, events: u64, seen: Arc<Seen>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = 0u64;
    let mut at = 0usize;
    while done < events {
        if Instant::now() > deadline {
            return Err(format!("{name} did not finish: {done} of {events} acknowledged"));
        }
        seen.connections.fetch_add(1, Ordering::Relaxed);
        let (mut conn, welcome) = match FakeAgent::connect(addrs[at], AGENT_TOKEN, &name, "b1") {
            Ok(c) => c,
            Err(_) => {
                seen.refusals.fetch_add(1, Ordering::Relaxed);
                at = (at + 1) % addrs.len();
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let stored = welcome.get("b1").copied().unwrap_or(0);
        if stored < done {
            return Err(format!(
                "{name}: {done} was acknowledged but the welcome of {} says only {stored} is stored",
                addrs[at]
            ));
        }
        done = stored;
        seen.acked.store(done, Ordering::Relaxed);
        let mut next = stored + 1;
        let mut moving = false;
        'stream: while next <= events {
            let last = (next + BATCH - 1).min(events);
            let batch: Vec<_> = (next..=last)
                .map(|seq| {
                    let body = if seq % 10 == 0 {
                        link(&format!("swp{}", seq % 7), seq % 20 == 0)
                    } else {
                        heartbeat(&[("swp1", true)])
                    };
                    event(&name, "b1", seq, 1_700_000_000_000 + seq as i64, body)
                })
                .collect();
            if conn.send(&batch).is_err() {
                break;
            }
            next = last + 1;
            if last.is_multiple_of(MOVE_EVERY) && last < events {
                // Moves on mid-stream, leaving the old collector alive with
                // its batches in flight and its copy of this agent's rows,
                // which must not be trusted when the agent comes back.
                moving = true;
                break 'stream;
            }
            while next - 1 - conn.acked("b1") > WINDOW {
                if conn.is_closed() {
                    break 'stream;
                }
                thread::sleep(Duration::from_millis(1));
            }
            done = done.max(conn.acked("b1"));
            seen.acked.store(done, Ordering::Relaxed);
        }
        if moving {
            drop(conn);
            at = (at + 1) % addrs.len();
            continue;
        }
        conn.wait_acked("b1", events, Duration::from_secs(5));
        done = done.max(conn.acked("b1"));
        seen.acked.store(done, Ordering::Relaxed);
        if done < events {
            // This collector died or dropped us: the next one in the list.
            at = (at + 1) % addrs.len();
        }
    }
    Ok(())
}

/// A fake agent's thread: Err says what went wrong.
type AgentThread = thread::JoinHandle<Result<(), String>>;

/// Starts one agent thread per name.
fn agents(
    addrs: &[SocketAddr],
    names: &[String],
    events: u64,
) -> (Vec<Arc<Seen>>, Vec<AgentThread>) {
    let seen: Vec<Arc<Seen>> = names.iter().map(|_| Arc::default()).collect();
    let threads = names
        .iter()
        .zip(&seen)
        .enumerate()
        .map(|(i, (name, seen))| {
            // Half list A first, half B first, so both carry traffic.
            let mut addrs = addrs.to_vec();
            let n = addrs.len();
            addrs.rotate_left(i % n);
            let (name, seen) = (name.clone(), Arc::clone(seen));
            thread::spawn(move || agent(addrs, name, events, seen))
        })
        .collect();
    (seen, threads)
}

fn acked_total(seen: &[Arc<Seen>]) -> u64 {
    seen.iter().map(|s| s.acked.load(Ordering::Relaxed)).sum()
}

/// The last lines a collector of data dir `dir` wrote to stderr.
fn stderr_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Per agent: count, distinct seq, min and max seq stored, with `one`
/// answering an integer query on the database.
fn stored_per_agent(names: &[String], one: impl Fn(&str) -> i64) -> Vec<[i64; 4]> {
    names
        .iter()
        .map(|name| {
            let per = |what: &str| {
                one(&format!(
                    "SELECT {what} FROM events e JOIN boots b ON b.id = e.boot_id
                     JOIN agents a ON a.id = b.agent_id WHERE a.name = '{name}'"
                ))
            };
            [
                per("count(*)"),
                per("count(DISTINCT e.seq)"),
                per("COALESCE(min(e.seq), 0)::BIGINT"),
                per("COALESCE(max(e.seq), 0)::BIGINT"),
            ]
        })
        .collect()
}

/// Per agent: the downtime the store derived (the outages its link
/// changes record, in ms) and the arithmetic of the agent's stored link
/// events themselves (each down event to the interface's next event).
/// Not swp1: the heartbeats say it is up, which rightly ends its outages
/// between link events.
fn downtime_per_agent(names: &[String], one: impl Fn(&str) -> i64) -> Vec<(i64, i64)> {
    names
        .iter()
        .map(|name| {
            let derived = one(&format!(
                "SELECT COALESCE(sum(c.down_ms), 0)::BIGINT FROM link_changes c
                 JOIN interfaces i ON i.id = c.iface_id JOIN agents a ON a.id = i.agent_id
                 WHERE a.name = '{name}' AND i.name <> 'swp1'"
            ));
            let arithmetic = one(&format!(
                "WITH l AS (
                     SELECT e.line::jsonb->>'interface' AS i, e.line::jsonb->>'state' AS s,
                            e.ts_ms, e.seq
                     FROM events e JOIN boots b ON b.id = e.boot_id
                     JOIN agents a ON a.id = b.agent_id
                     WHERE a.name = '{name}' AND e.type = 'link'),
                 o AS (SELECT i, s, ts_ms,
                              lead(ts_ms) OVER (PARTITION BY i ORDER BY seq) AS next
                       FROM l)
                 SELECT COALESCE(sum(next - ts_ms), 0)::BIGINT FROM o
                 WHERE s = 'down' AND i <> 'swp1'"
            ));
            (derived, arithmetic)
        })
        .collect()
}

/// What a failing test prints: what each agent saw and stored, the
/// collectors' stderr and the database server's log.
fn report(names: &[String], seen: &[Arc<Seen>], stored: &[[i64; 4]], dirs: &[&Path], log: &str) -> String {
    let mut text = String::from("agent: acked, connections, refused | stored count, distinct, min, max\n");
    for ((name, seen), stored) in names.iter().zip(seen).zip(stored) {
        text.push_str(&format!(
            "{name}: {}, {}, {} | {stored:?}\n",
            seen.acked.load(Ordering::Relaxed),
            seen.connections.load(Ordering::Relaxed),
            seen.refusals.load(Ordering::Relaxed),
        ));
    }
    for dir in dirs {
        text.push_str(&format!("--- stderr of {} ---\n{}\n", dir.display(), stderr_tail(dir)));
    }
    text.push_str(&format!("--- the PostgreSQL server's log ---\n{log}\n"));
    text
}

/// Joins the agent threads; their errors, one a line.
fn join(threads: Vec<AgentThread>) -> Vec<String> {
    threads
        .into_iter()
        .filter_map(|t| match t.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("an agent thread panicked".into()),
        })
        .collect()
}

#[test]
fn root_two_collectors_each_sigkilled_twice_store_each_event_once() {
    let test = "root_two_collectors_each_sigkilled_twice_store_each_event_once";
    if !on_postgres(test) {
        return;
    }
    let a_dir = TempDir::new("failover-a");
    let b_dir = TempDir::new("failover-b");
    let url = crate::util::pg_url(&a_dir.path);
    share_store(&a_dir.path, &b_dir.path);
    let ports = [(free_port(), free_port()), (free_port(), free_port())];
    let dirs = [&a_dir.path, &b_dir.path];
    let mut collectors: Vec<Process> = dirs
        .iter()
        .zip(ports)
        .map(|(dir, (agents, http))| Process::start(dir, agents, http, "", ""))
        .collect();
    let addrs: Vec<SocketAddr> = collectors.iter().map(|c| c.agents).collect();
    let names: Vec<String> = (0..4).map(|i| format!("leaf{i}")).collect();
    let (seen, threads) = agents(&addrs, &names, EVENTS);

    // A, B, A, B: each killed twice, each kill landing while events are
    // still unacknowledged, or it would prove nothing.
    let mut kills_mid_stream = 0;
    for round in 0..4 {
        thread::sleep(Duration::from_millis(300 + 150 * round as u64));
        let which = round % 2;
        let before = acked_total(&seen);
        collectors[which].kill();
        if before < names.len() as u64 * EVENTS {
            kills_mid_stream += 1;
        }
        let (agents_port, http_port) = ports[which];
        let config = collectors[which].config.clone();
        collectors[which] = Process::spawn(&config, agents_port, http_port);
    }
    let failures = join(threads);
    let database = url.rsplit('/').next().unwrap().to_string();
    let one = |sql: &str| pgcluster::shared().one_i64(&database, sql);
    let stored = stored_per_agent(&names, one);
    let why = || {
        report(
            &names,
            &seen,
            &stored,
            &[dirs[0].as_path(), dirs[1].as_path()],
            &pgcluster::shared().log_tail(),
        )
    };
    assert!(failures.is_empty(), "{failures:?}\n{}", why());
    assert_eq!(kills_mid_stream, 4, "not every kill landed mid-stream\n{}", why());
    for c in &mut collectors {
        assert!(c.terminate().success(), "{}", why());
    }
    for (name, got) in names.iter().zip(&stored) {
        let n = EVENTS as i64;
        assert_eq!(*got, [n, n, 1, n], "{name}\n{}", why());
    }
    // Both carried traffic: each agent connected more than once, so moved.
    for (name, s) in names.iter().zip(&seen) {
        assert!(s.connections.load(Ordering::Relaxed) > 1, "{name} never moved\n{}", why());
    }
    // Derived state agrees: each link event became one change, and the
    // outages they record are the link events' own arithmetic, however
    // often the agents moved between collectors mid-outage.
    assert_eq!(
        one("SELECT count(*) FROM link_changes"),
        names.len() as i64 * (EVENTS / 10) as i64,
        "{}",
        why()
    );
    for (name, (derived, arithmetic)) in names.iter().zip(downtime_per_agent(&names, one)) {
        assert!(arithmetic > 0, "{name}: no outage at all");
        assert_eq!(derived, arithmetic, "{name}: derived vs link events, ms\n{}", why());
    }
}

/// The sample `name` (a counter, with its labels if any) of a collector's
/// `/metrics`; None while it does not answer.
fn metric(http: SocketAddr, name: &str) -> Option<u64> {
    let scrape = crate::util::try_http_get(http, "/metrics", Some(API_TOKEN)).ok()?;
    scrape
        .body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `hopwatch_collector_shared_store_failures_total` of `task`.
fn shared_failures(http: SocketAddr, task: &str) -> Option<u64> {
    metric(
        http,
        &format!("hopwatch_collector_shared_store_failures_total{{task=\"{task}\"}}"),
    )
}

const COMMIT_FAILURES: &str = "hopwatch_collector_commit_failures_total";
const REFUSED_STORE: &str = "hopwatch_collector_connections_rejected_total{reason=\"store\"}";

#[test]
fn root_postgres_crashed_mid_stream_stops_acks_then_resumes_losing_nothing() {
    let test = "root_postgres_crashed_mid_stream_stops_acks_then_resumes_losing_nothing";
    if !on_postgres(test) || !pgcluster::can_use(test) {
        return;
    }
    // A private cluster with fsync on, so its crash proves durability.
    let cluster = Cluster::own();
    let url = cluster.database("restart");
    let database = url.rsplit('/').next().unwrap().to_string();
    let a_dir = TempDir::new("pg-restart-a");
    let b_dir = TempDir::new("pg-restart-b");
    point_store(&a_dir.path, &url);
    point_store(&b_dir.path, &url);
    let dirs = [&a_dir.path, &b_dir.path];
    let collectors: Vec<Process> = dirs
        .iter()
        .map(|dir| Process::start(dir, free_port(), free_port(), "", ""))
        .collect();
    let addrs: Vec<SocketAddr> = collectors.iter().map(|c| c.agents).collect();
    let names: Vec<String> = (0..4).map(|i| format!("spine{i}")).collect();
    let events = 8_000;
    let (seen, threads) = agents(&addrs, &names, events);
    let stored_now = |cluster: &Cluster| {
        stored_per_agent(&names, |sql| cluster.one_i64(&database, sql))
    };
    let why = |stored: &[[i64; 4]], cluster: &Cluster| {
        report(
            &names,
            &seen,
            stored,
            &[dirs[0].as_path(), dirs[1].as_path()],
            &cluster.log_tail(),
        )
    };

    // Mid-stream: some events acknowledged, not all.
    let started = Instant::now();
    while seen.iter().any(|s| s.acked.load(Ordering::Relaxed) < BATCH) {
        assert!(started.elapsed() < Duration::from_secs(60), "no acks\n{}", why(&[], &cluster));
        thread::sleep(Duration::from_millis(10));
    }
    cluster.crash();
    let at_crash: Vec<u64> = seen.iter().map(|s| s.acked.load(Ordering::Relaxed)).collect();
    assert!(
        at_crash.iter().sum::<u64>() < names.len() as u64 * events,
        "the crash came after the end"
    );
    // While the server is down the collectors fail their batches: watch the
    // counter rise on both, and acks stand still once what was in flight
    // when the server went has arrived.
    let failing = crate::util::wait_for(Duration::from_secs(30), || {
        let counts: Vec<u64> = collectors
            .iter()
            .map(|c| metric(c.http, COMMIT_FAILURES).unwrap_or(0))
            .collect();
        counts.iter().all(|n| *n > 0).then_some(counts)
    });
    let settled: Vec<u64> = seen.iter().map(|s| s.acked.load(Ordering::Relaxed)).collect();
    // The outage lasts a while longer, with the agents retrying.
    thread::sleep(Duration::from_secs(2));
    let before_restart: Vec<u64> = seen.iter().map(|s| s.acked.load(Ordering::Relaxed)).collect();
    // Agents that came back while it was down were refused at their
    // hello, since the welcome reads the store: counted too.
    let refused: Vec<Option<u64>> = collectors
        .iter()
        .map(|c| metric(c.http, REFUSED_STORE))
        .collect();
    // The listeners beside the writer lost their connections and fail to
    // make new ones: counted, and retried.
    let beside: Vec<[Option<u64>; 2]> = collectors
        .iter()
        .map(|c| [shared_failures(c.http, "relay"), shared_failures(c.http, "silences")])
        .collect();
    cluster.start();
    // Checked at once, racing the collectors' retries: whatever was
    // acknowledged before the restart is already in the store, which only
    // a commit before the crash can have put there.
    let right_after = stored_now(&cluster);
    assert!(
        failing.is_some(),
        "a collector's /metrics never counted a failed commit\n{}",
        why(&right_after, &cluster)
    );
    assert!(
        refused.iter().all(|n| n.is_some_and(|n| n > 0)),
        "{refused:?} hellos refused for the store\n{}",
        why(&right_after, &cluster)
    );
    assert!(
        beside.iter().flatten().all(|n| n.is_some_and(|n| n > 0)),
        "{beside:?} failures of the relay and silences listeners\n{}",
        why(&right_after, &cluster)
    );
    assert_eq!(settled, before_restart, "acks advanced while the database was down\n{}", why(&right_after, &cluster));
    for ((name, acked), got) in names.iter().zip(&before_restart).zip(&right_after) {
        assert!(
            got[3] as u64 >= *acked && got[1] as u64 >= *acked,
            "{name}: {acked} acknowledged before the restart, the store holds {got:?}\n{}",
            why(&right_after, &cluster)
        );
    }

    let failures = join(threads);
    let stored = stored_now(&cluster);
    assert!(failures.is_empty(), "{failures:?}\n{}", why(&stored, &cluster));
    for (name, got) in names.iter().zip(&stored) {
        let n = events as i64;
        assert_eq!(*got, [n, n, 1, n], "{name}\n{}", why(&stored, &cluster));
    }
    assert_eq!(
        cluster.one_i64(&database, "SELECT count(*) FROM link_changes"),
        names.len() as i64 * (events / 10) as i64
    );
    let one = |sql: &str| cluster.one_i64(&database, sql);
    for (name, (derived, arithmetic)) in names.iter().zip(downtime_per_agent(&names, one)) {
        assert_eq!(derived, arithmetic, "{name}: derived vs link events, ms");
    }
    // Each collector said so in its log, once per outage; a collector that
    // stored a batch since says the store takes events again (one whose
    // agents all finished on the other has nothing to say).
    let logs: Vec<String> = dirs
        .iter()
        .map(|dir| std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default())
        .collect();
    for log in &logs {
        assert_eq!(log.matches("Storing a batch failed;").count(), 1, "{log}");
        assert!(!log.contains(pgcluster::PASSWORD), "the password was logged:\n{log}");
    }
    assert!(
        logs.iter().any(|l| l.contains("The store takes events again")),
        "{logs:?}"
    );
    drop(collectors);
}

/// Runs `hopwatch-collector ARGS -c CONFIG`; its exit status and what it
/// printed, which must never hold the password.
fn collector(args: &[&str], config: &Path) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hopwatch-collector"))
        .args(args)
        .arg("-c")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A collector that starts despite the bad store would run forever.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

#[test]
fn a_store_the_collector_cannot_use_stops_it_with_a_message_naming_the_fix() {
    let test = "a_store_the_collector_cannot_use_stops_it_with_a_message_naming_the_fix";
    if !on_postgres(test) {
        return;
    }
    const SECRET: &str = "store-secret-9d2e";
    let dir = TempDir::new("bad-store");
    let config = dir.path.join("collector.toml");
    let write = |store: &str| {
        let text = format!(
            "[collector]\ndata_dir = {:?}\nagents_listen = \"127.0.0.1:{}\"\nhttp_listen = \"127.0.0.1:{}\"\n\
             [auth]\nagent_tokens = [{AGENT_TOKEN:?}]\napi_tokens = [{API_TOKEN:?}]\n\
             [store]\nkind = \"postgres\"\n{store}",
            dir.path.display().to_string(),
            free_port(),
            free_port(),
        );
        std::fs::write(&config, text).unwrap();
    };
    let both = |what: &str, want: &[&str]| {
        for args in [&["check-config"][..], &["run"]] {
            let (status, text) = collector(args, &config);
            assert!(!status.success(), "{what}: {args:?} succeeded:\n{text}");
            assert_eq!(status.code(), Some(2), "{what}: {args:?}:\n{text}");
            for w in want {
                assert!(text.contains(w), "{what}: {args:?} does not say {w:?}:\n{text}");
            }
            assert!(!text.contains(SECRET), "{what}: {args:?} printed the password:\n{text}");
        }
    };
    write("sslmode = \"disable\"\n");
    both(
        "no url",
        &["collector.toml:9:", "a PostgreSQL store needs `url` or `url_file`", "url = \"postgres://"],
    );
    write(&format!("url = \"postgresql://hop:{SECRET}@127.0.0.1:notaport/db\"\n"));
    both("a bad port", &["collector.toml:10:7: `url` is not a PostgreSQL URL", "postgres://user:password@host:5432/dbname"]);
    write(&format!("url = \"mysql://hop:{SECRET}@127.0.0.1/db\"\n"));
    both("another database's URL", &["collector.toml:10:7: `url` is not a PostgreSQL URL"]);

    // A port nothing listens on: the config is good, so check-config passes
    // (it does not connect), and `run` stops, naming where it tried.
    let closed = free_port();
    write(&format!(
        "url = \"postgres://hop:{SECRET}@127.0.0.1:{closed}/hopwatch\"\nsslmode = \"disable\"\nconnect_timeout = \"2s\"\n"
    ));
    let (status, text) = collector(&["check-config"], &config);
    assert!(status.success(), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{closed}/hopwatch")) && !text.contains(SECRET), "{text}");
    let (status, text) = collector(&["run"], &config);
    assert_eq!(status.code(), Some(1), "{text}");
    for want in [
        format!("cannot reach the PostgreSQL store at 127.0.0.1:{closed}/hopwatch"),
        "check that the server runs".to_string(),
        "[store] url".to_string(),
    ] {
        assert!(text.contains(&want), "does not say {want:?}:\n{text}");
    }
    assert!(!text.contains(SECRET), "the password was printed:\n{text}");

    // A server that accepts the connection and never answers: the connect
    // timeout ends the wait, named as such.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    write(&format!(
        "url = \"postgres://hop:{SECRET}@127.0.0.1:{port}/hopwatch\"\nsslmode = \"disable\"\nconnect_timeout = \"1s\"\n"
    ));
    let began = Instant::now();
    let (status, text) = collector(&["run"], &config);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(began.elapsed() < Duration::from_secs(20), "{:?}: {text}", began.elapsed());
    assert!(
        text.contains(&format!("cannot reach the PostgreSQL store at 127.0.0.1:{port}/hopwatch")),
        "{text}"
    );
    assert!(!text.contains(SECRET), "the password was printed:\n{text}");
    drop(silent);

    // The right server, the wrong password: refused, said so, never echoed.
    if !pgcluster::can_use(test) {
        return;
    }
    let url = crate::util::pg_url(&dir.path);
    let wrong = url.replace(pgcluster::PASSWORD, SECRET);
    write(&format!("url = {wrong:?}\nsslmode = \"disable\"\n"));
    let (status, text) = collector(&["run"], &config);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains(SECRET), "the password was printed:\n{text}");
}
