//! Real agents in network namespaces listing two real collectors that
//! share one PostgreSQL store (a throwaway cluster the test starts), while
//! the test flaps the agents' links more than a thousand times: the first
//! collector is SIGKILLed mid-stream, the agents move to the second, the
//! first comes back. Afterwards the store holds every event exactly once
//! and the downtime the API answers is the sum of the down intervals the
//! stored link events themselves describe.

use crate::lab::{addr, veth};
use crate::pgcluster::{self, Cluster};
use crate::util::{Netns, TempDir, can_use_netns, collector_binary, poll};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const AGENT_TOKEN: &str = "agent-secret-0123456789";
const API_TOKEN: &str = "api-secret-0123456789";
const LEAVES: usize = 2;
/// Flapped interfaces per leaf.
const LINKS: usize = 4;
/// Down-and-up rounds per interface: LEAVES * LINKS * ROUNDS * 2
/// transitions in all.
const ROUNDS: usize = 70;
/// The collectors' ports inside the head-end namespace.
const AGENTS_PORTS: [u16; 2] = [7001, 7002];
const HTTP_PORTS: [u16; 2] = [8001, 8002];

/// A `hopwatch-collector run` inside the head-end namespace.
struct Collector {
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Collector {
    fn start(ns: &Netns, binary: &Path, dir: &Path, name: &str, url: &str, i: usize) -> Collector {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let config = data.join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[collector]\ndata_dir = {:?}\nagents_listen = \"0.0.0.0:{}\"\nhttp_listen = \"127.0.0.1:{}\"\n\
                 [auth]\nagent_tokens = [{AGENT_TOKEN:?}]\napi_tokens = [{API_TOKEN:?}]\n\
                 [rate_limit]\nper_second = 1000\nburst = 1000\n\
                 [store]\nkind = \"postgres\"\nurl = {url:?}\nsslmode = \"disable\"\n",
                data.display().to_string(),
                AGENTS_PORTS[i],
                HTTP_PORTS[i],
            ),
        )
        .unwrap();
        Collector::spawn(ns, binary, config, i)
    }

    fn spawn(ns: &Netns, binary: &Path, config: PathBuf, i: usize) -> Collector {
        let log = config.with_file_name("stderr.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // `ip netns exec` execs the collector: this child is the collector.
        let child = ns
            .command(binary)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let collector = Collector { child, config, log };
        let healthy = poll(Duration::from_secs(30), || {
            http(ns, HTTP_PORTS[i], "/healthz").filter(|(s, _)| *s == 200)
        });
        assert!(
            healthy.is_some(),
            "collector {i} never became healthy:\n{}",
            collector.tail()
        );
        collector
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `path` (with the API token) from a collector's HTTP listener in
/// `ns`: status and body, None while it does not answer.
fn http(ns: &Netns, port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    ns.within(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: collector\r\nAuthorization: Bearer {API_TOKEN}\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    })
}

/// One leaf: its namespace, joined to the head end, with `LINKS` veth
/// pairs of its own whose far ends the test flaps, and the agent in it.
struct Leaf {
    ns: Netns,
    name: String,
    dir: TempDir,
    agent: Child,
}

impl Leaf {
    fn new(head: &Netns, i: usize) -> Leaf {
        let ns = Netns::new("hwl");
        let (up, down) = ("uplink0".to_string(), format!("leaf{i}"));
        veth(&ns, &up, head, &down);
        addr(&ns, &up, &format!("10.88.{i}.2/24"));
        addr(head, &down, &format!("10.88.{i}.1/24"));
        for j in 0..LINKS {
            let (watched, far) = (format!("fl{j}"), format!("fp{j}"));
            ns.ip(&[
                "link", "add", &watched, "type", "veth", "peer", "name", &far,
            ]);
            ns.ip(&["link", "set", &watched, "up"]);
            ns.ip(&["link", "set", &far, "up"]);
        }
        let name = format!("leaf{i}");
        let dir = TempDir::new("hopwatch-pgfail");
        let list: Vec<String> = AGENTS_PORTS
            .iter()
            .map(|p| format!("\"10.88.{i}.1:{p}\""))
            .collect();
        let config = dir.write(
            "agent.toml",
            &format!(
                "[agent]\nname = \"{name}\"\ninterval = \"1s\"\nheartbeat = \"1s\"\nstate_dir = \"{}\"\n\
                 [links]\ninterfaces = [\"fl*\"]\n\
                 [output.collector]\naddress = [{}]\ntoken = \"{AGENT_TOKEN}\"\nbackoff_max = \"500ms\"\n",
                dir.path().join("state").display(),
                list.join(", "),
            ),
        );
        let agent = ns
            .command(env!("CARGO_BIN_EXE_hopwatch"))
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        Leaf {
            ns,
            name,
            dir,
            agent,
        }
    }

    /// The agent's collector output, from `hopwatch status --json`.
    fn output(&self) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_hopwatch"))
            .args(["status", "--json", "--socket"])
            .arg(self.dir.path().join("state/hopwatch.sock"))
            .output()
            .ok()?;
        let status: Value = serde_json::from_slice(&out.stdout).ok()?;
        status["outputs"]
            .as_array()?
            .iter()
            .find(|o| o["name"] == "collector")
            .map(|o| o["collector"].clone())
    }

    fn stderr(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

/// Flaps every far end of leaf namespace `ns` down and up `ROUNDS` times,
/// leaving them all up.
fn flap(ns: String, seed: u64) {
    let mut rng = crate::lab::Rng::new(seed);
    for _ in 0..ROUNDS {
        for j in 0..LINKS {
            for state in ["down", "up"] {
                crate::util::run(Command::new("ip").args([
                    "-n",
                    &ns,
                    "link",
                    "set",
                    &format!("fp{j}"),
                    state,
                ]));
                // Uneven intervals, so a segment counted twice or lost
                // cannot hide in a sum of equal ones.
                thread::sleep(Duration::from_millis(2 + rng.below(12)));
            }
        }
    }
}

/// Per agent of the store: events, distinct seqs, highest seq.
fn per_agent(cluster: &Cluster, db: &str, agent: &str) -> [i64; 3] {
    let per = |what: &str| {
        cluster.one_i64(
            db,
            &format!(
                "SELECT {what} FROM events e JOIN boots b ON b.id = e.boot_id
                 JOIN agents a ON a.id = b.agent_id WHERE a.name = '{agent}'"
            ),
        )
    };
    [
        per("count(*)"),
        per("count(DISTINCT e.seq)"),
        per("COALESCE(max(e.seq), 0)::BIGINT"),
    ]
}

/// The milliseconds agent `agent`'s interfaces were down, from its stored
/// link events alone: each down event to the interface's next event.
fn down_ms_from_events(cluster: &Cluster, db: &str, agent: &str) -> i64 {
    cluster.one_i64(
        db,
        &format!(
            "WITH l AS (
                 SELECT e.line::jsonb->>'interface' AS i, e.line::jsonb->>'state' AS s,
                        e.ts_ms, e.seq
                 FROM events e JOIN boots b ON b.id = e.boot_id
                 JOIN agents a ON a.id = b.agent_id
                 WHERE a.name = '{agent}' AND e.type = 'link'),
             o AS (SELECT s, ts_ms, lead(ts_ms) OVER (PARTITION BY i ORDER BY seq) AS next FROM l)
             SELECT COALESCE(sum(next - ts_ms), 0)::BIGINT FROM o WHERE s = 'down'"
        ),
    )
}

#[test]
fn root_netns_agents_move_between_collectors_on_postgres_and_lose_nothing() {
    let test = "root_netns_agents_move_between_collectors_on_postgres_and_lose_nothing";
    if !can_use_netns(test) || !pgcluster::can_use(test) {
        return;
    }
    let Some(binary) = collector_binary(test) else {
        return;
    };
    let head = Netns::new("hwh");
    // Started from a thread inside the head end, the server listens on the
    // head end's loopback, where the collectors are; the test reaches it
    // through its unix socket.
    let cluster = head.within(Cluster::own);
    let url = cluster.database("lab");
    let db = url.rsplit('/').next().unwrap().to_string();
    let dir = TempDir::new("hopwatch-pgfail-head");
    let mut collectors = vec![
        Collector::start(&head, &binary, dir.path(), "a", &url, 0),
        Collector::start(&head, &binary, dir.path(), "b", &url, 1),
    ];
    let leaves: Vec<Leaf> = (0..LEAVES).map(|i| Leaf::new(&head, i)).collect();
    let why = |collectors: &[Collector], leaves: &[Leaf]| {
        let mut text = String::new();
        for leaf in leaves {
            text.push_str(&format!(
                "{}: stored (count, distinct, max) {:?}, down_ms from events {}\n  output {}\n  stderr:\n{}\n",
                leaf.name,
                per_agent(&cluster, &db, &leaf.name),
                down_ms_from_events(&cluster, &db, &leaf.name),
                leaf.output().unwrap_or_default(),
                leaf.stderr()
            ));
        }
        for (c, name) in collectors.iter().zip(["A", "B"]) {
            text.push_str(&format!("--- collector {name} ---\n{}\n", c.tail()));
        }
        text.push_str(&format!("--- PostgreSQL ---\n{}\n", cluster.log_tail()));
        text
    };
    let address = |i: usize, c: usize| format!("10.88.{i}.1:{}", AGENTS_PORTS[c]);
    for (i, leaf) in leaves.iter().enumerate() {
        let on_a = poll(Duration::from_secs(20), || {
            leaf.output()
                .filter(|c| c["state"] == "connected" && c["address"] == address(i, 0).as_str())
        });
        assert!(
            on_a.is_some(),
            "{} never connected to A\n{}",
            leaf.name,
            why(&collectors, &leaves)
        );
    }

    let flappers: Vec<_> = leaves
        .iter()
        .enumerate()
        .map(|(i, leaf)| {
            let ns = leaf.ns.name.clone();
            thread::spawn(move || flap(ns, 7 + i as u64))
        })
        .collect();
    let transitions = (LEAVES * LINKS * ROUNDS * 2) as i64;
    let links_stored = || cluster.one_i64(&db, "SELECT count(*) FROM events WHERE type = 'link'");
    // A dies a third of the way in.
    let third = poll(Duration::from_secs(60), || {
        (links_stored() >= transitions / 3).then_some(())
    });
    assert!(
        third.is_some(),
        "link events never reached the store\n{}",
        why(&collectors, &leaves)
    );
    collectors[0].kill();
    let killed = Instant::now();
    for (i, leaf) in leaves.iter().enumerate() {
        let on_b = poll(Duration::from_secs(20), || {
            leaf.output()
                .filter(|c| c["state"] == "connected" && c["address"] == address(i, 1).as_str())
        });
        assert!(
            on_b.is_some(),
            "{} never moved to B\n{}",
            leaf.name,
            why(&collectors, &leaves)
        );
    }
    println!("every agent on B {:?} after A was killed", killed.elapsed());
    let stored_at_move = links_stored();
    assert!(
        stored_at_move < transitions,
        "the flapping ended before the agents moved: {stored_at_move}"
    );
    let config = collectors[0].config.clone();
    collectors[0] = Collector::spawn(&head, &binary, config, 0);
    for f in flappers {
        f.join().expect("a flapping thread failed");
    }

    // Every event each agent has written by now is acknowledged.
    for (i, leaf) in leaves.iter().enumerate() {
        let last = leaf
            .output()
            .and_then(|c| c["boots"].as_array()?.last()?["last_seq"].as_u64());
        let last = last.unwrap_or_else(|| {
            panic!("{} has no status\n{}", leaf.name, why(&collectors, &leaves))
        });
        let acked = poll(Duration::from_secs(60), || {
            leaf.output().filter(|c| {
                c["boots"]
                    .as_array()
                    .and_then(|b| b.last()?["acked_seq"].as_u64())
                    >= Some(last)
            })
        });
        assert!(
            acked.is_some(),
            "{} never had {last} acknowledged\n{}",
            leaf.name,
            why(&collectors, &leaves)
        );
        // Back on its feet, A did not take the agents mid-stream.
        let output = leaf.output().unwrap_or_default();
        assert_eq!(output["address"], address(i, 1).as_str(), "{output}");
    }
    let mut links = 0;
    for leaf in &leaves {
        let [count, distinct, max] = per_agent(&cluster, &db, &leaf.name);
        assert!(
            count == distinct && count == max,
            "{}: {count} events, {distinct} distinct seqs, highest {max}\n{}",
            leaf.name,
            why(&collectors, &leaves)
        );
        links += cluster.one_i64(
            &db,
            &format!(
                "SELECT count(*) FROM events e JOIN boots b ON b.id = e.boot_id
                 JOIN agents a ON a.id = b.agent_id WHERE a.name = '{}' AND e.type = 'link'",
                leaf.name
            ),
        );
        // Downtime as the API on A (which never held the agent after its
        // restart) answers it, against the link events' own arithmetic.
        let from_events = down_ms_from_events(&cluster, &db, &leaf.name);
        let (status, body) = http(
            &head,
            HTTP_PORTS[0],
            &format!("/api/v1/links/downtime?since=1h&agent={}", leaf.name),
        )
        .unwrap_or_else(|| panic!("the API did not answer\n{}", why(&collectors, &leaves)));
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        let interfaces = answer["interfaces"].as_array().unwrap();
        assert_eq!(interfaces.len(), LINKS, "{answer:#}");
        assert!(
            interfaces.iter().all(|i| i["currently_down"] == false),
            "{answer:#}"
        );
        let api_ms = answer["total_down_seconds"].as_f64().unwrap() * 1000.0;
        assert!(
            (api_ms - from_events as f64).abs() < 1.0,
            "{}: the API says {api_ms} ms down, the link events {from_events} ms\n{answer:#}\n{}",
            leaf.name,
            why(&collectors, &leaves)
        );
        let outages: i64 = interfaces
            .iter()
            .map(|i| i["down_count"].as_i64().unwrap())
            .sum();
        let downs = cluster.one_i64(
            &db,
            &format!(
                "SELECT count(*) FROM events e JOIN boots b ON b.id = e.boot_id
                 JOIN agents a ON a.id = b.agent_id
                 WHERE a.name = '{}' AND e.type = 'link' AND e.line::jsonb->>'state' = 'down'",
                leaf.name
            ),
        );
        assert_eq!(outages, downs, "{}: {answer:#}", leaf.name);
    }
    println!("{links} link events stored of {transitions} transitions made");
    assert!(
        links >= 1_000,
        "only {links} link events\n{}",
        why(&collectors, &leaves)
    );
}
