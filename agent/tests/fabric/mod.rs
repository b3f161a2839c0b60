//! The fabric trace against the real kernel, real agents and the real
//! collector: a leaf–spine lab in network namespaces, a `hopwatch` agent on
//! every switch connected to `hopwatch-collector` over management links,
//! and traces asked over the collector's HTTP API, each hop checked against
//! `ip route get … iif …` in that hop's namespace and against the links
//! real packets of the flow crossed.

mod addresses;
mod connectivity;
pub mod fleet;
mod follow;
mod known;
pub mod leafspine;
mod reverse;
mod stops;
mod storm;

use crate::lab::{Egress, Flow, Proto, Rng, route_get, send_udp_burst};
use crate::util::{TempDir, can_use_netns, collector_binary, poll};
use fleet::{API_TOKEN, Collector, Reply, SwitchAgent, http, start_agents};
use leafspine::{H1, H1_ASYM, LeafSpine, SPINES, family};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Datagrams per flow sent through the fabric: enough to stand out from
/// the few neighbour discovery packets a link sends on its own.
const BURST: u64 = 20;

/// The lab with its collector and agents running. On a failing test it
/// prints the wiring, the collector's log and every agent's; each
/// namespace then prints its routes and counters as it is deleted.
pub struct Fabric {
    pub agents: Vec<SwitchAgent>,
    pub collector: Collector,
    pub lab: LeafSpine,
    /// The configs, tokens, state and logs; removed after the processes.
    _dir: TempDir,
}

impl Fabric {
    /// The lab, the collector (with `extra` config tables) and the four
    /// agents online; `None` (with the reason printed) where the test
    /// cannot run.
    pub fn start(test: &str, extra: &str) -> Option<Fabric> {
        if !can_use_netns(test) {
            return None;
        }
        let collector_bin = collector_binary(test)?;
        let started = Instant::now();
        let lab = LeafSpine::new();
        let dir = TempDir::new("hopwatch-fabric");
        let collector = Collector::start(&collector_bin, &lab.mgmt, dir.path(), extra);
        let agents = start_agents(
            std::path::Path::new(crate::lab::BIN),
            &lab,
            &collector,
            &dir,
        );
        eprintln!(
            "{test}: the lab, its collector and four agents were up in {:?}",
            started.elapsed()
        );
        Some(Fabric {
            agents,
            collector,
            lab,
            _dir: dir,
        })
    }

    pub fn agent(&self, name: &str) -> &SwitchAgent {
        self.agents
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no agent {name}"))
    }

    pub fn agent_mut(&mut self, name: &str) -> &mut SwitchAgent {
        self.agents
            .iter_mut()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no agent {name}"))
    }

    /// `METHOD PATH` to the collector's API, with the API token.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        http(
            &self.lab.mgmt.name,
            self.collector.http,
            method,
            path,
            Some(API_TOKEN),
            body,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `POST PATH` with `body`, which must answer 200 with JSON.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let reply = self.request("POST", path, Some(body));
        assert_eq!(
            reply.status, 200,
            "POST {path} {body} answered {}: {}",
            reply.status, reply.body
        );
        reply.json()
    }

    /// `POST /api/v1/trace/flow`.
    pub fn trace(&self, body: &Value) -> Value {
        self.post("/api/v1/trace/flow", body)
    }

    /// `hopwatch-collector trace` for `tuple` with `extra` arguments: its
    /// exit code and what it printed.
    pub fn trace_cli(&self, tuple: &Tuple, extra: &[&str]) -> (Option<i32>, String) {
        let mut args: Vec<String> = [
            "--src",
            &tuple.src.to_string(),
            "--dst",
            &tuple.dst.to_string(),
            "--proto",
            tuple.proto.name(),
            "--sport",
            &tuple.sport.to_string(),
            "--dport",
            &tuple.dport.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = self.collector.trace_cli(&self.lab.mgmt, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty() || out.status.code() != Some(0),
            "hopwatch-collector trace {args:?} succeeded with a complaint: {stderr}"
        );
        (
            out.status.code(),
            format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)),
        )
    }

    /// The kernel's answer for `tuple` arriving on `ingress` of `node` (or
    /// originated there when `ingress` is `None`).
    pub fn kernel(
        &self,
        node: &str,
        tuple: &Tuple,
        ingress: Option<&str>,
    ) -> Result<Egress, String> {
        route_get(self.lab.ns(node), &tuple.arriving(ingress))
    }

    /// Checks every hop the switches answered against the kernel of that
    /// switch: the same egress and next hop as `ip route get … iif
    /// <ingress>`, or a drop where the kernel has no way out. Returns the
    /// switches in order.
    pub fn check_hops(&self, tuple: &Tuple, trace: &Value) -> Vec<String> {
        let hops = trace["hops"]
            .as_array()
            .unwrap_or_else(|| panic!("no hops in {trace:#}"));
        let mut switches = Vec::new();
        for hop in hops {
            let agent = hop["agent"].as_str().unwrap_or_default().to_string();
            if hop["type"] == "switch" {
                let ingress = hop["ingress"].as_str();
                match self.kernel(&agent, tuple, ingress) {
                    Ok(kernel) => {
                        let egress = hop["egress"]["name"].as_str();
                        assert_eq!(
                            egress,
                            Some(kernel.interface.as_str()),
                            "{tuple} at {agent} (ingress {ingress:?}): the kernel says {kernel}, the trace's hop {hop:#}"
                        );
                        // A connected route has no gateway: the flow's
                        // next hop is its destination.
                        let next_hop = hop["next_hop"].as_str().map(crate::lab::ip);
                        assert_eq!(
                            next_hop.unwrap_or(tuple.dst),
                            kernel.next_hop.unwrap_or(tuple.dst),
                            "{tuple} at {agent} (ingress {ingress:?}): the kernel says {kernel}, the trace's hop {hop:#}"
                        );
                    }
                    Err(kernel) => assert_eq!(
                        hop["action"], "drop",
                        "{tuple} at {agent} (ingress {ingress:?}): the kernel refuses it ({kernel}), the trace's hop {hop:#}"
                    ),
                }
            }
            switches.push(agent);
        }
        switches
    }

    /// Sends a burst of `tuple` (UDP) from the host that owns its source
    /// and returns the spine whose link from that host's leaf carried it.
    pub fn spine_taken(&self, tuple: &Tuple) -> &'static str {
        assert_eq!(tuple.proto, Proto::Udp, "only UDP is sent for real");
        let (host, leaf) = source_host(tuple.src);
        let rx = |spine: &str| rx_packets(&self.lab, spine, self.lab.dev(spine, leaf));
        let before: Vec<u64> = SPINES.iter().map(|s| rx(s)).collect();
        send_udp_burst(
            self.lab.ns(host),
            SocketAddr::new(tuple.src, tuple.sport),
            SocketAddr::new(tuple.dst, tuple.dport),
            BURST as usize,
            None,
        );
        poll(Duration::from_secs(5), || {
            SPINES
                .iter()
                .zip(&before)
                .find(|(s, b)| rx(s) - **b >= BURST)
                .map(|(s, _)| *s)
        })
        .unwrap_or_else(|| panic!("the burst of {tuple} crossed no spine"))
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.lab.describe());
            eprintln!("--- collector log ---\n{}", self.collector.log());
            for a in &self.agents {
                eprintln!("--- {} agent stderr ---\n{}", a.name, a.stderr());
            }
        }
    }
}

/// The host and leaf a source address sits behind.
pub fn source_host(src: IpAddr) -> (&'static str, &'static str) {
    let text = src.to_string();
    if H1.contains(&text.as_str()) || H1_ASYM.contains(&text.as_str()) {
        ("h1", "leaf1")
    } else {
        ("h2", "leaf2")
    }
}

/// Received packets of `dev` in `node`.
pub fn rx_packets(lab: &LeafSpine, node: &str, dev: &str) -> u64 {
    let out = lab.ns(node).ip(&["-s", "-j", "link", "show", "dev", dev]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    value[0]["stats64"]["rx"]["packets"].as_u64().unwrap_or(0)
}

/// One 5-tuple through the fabric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
}

impl std::fmt::Display for Tuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            self.proto.name(),
            self.src,
            self.sport,
            self.dst,
            self.dport
        )
    }
}

impl Tuple {
    pub fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> Tuple {
        Tuple {
            src: crate::lab::ip(src),
            dst: crate::lab::ip(dst),
            proto: Proto::Udp,
            sport,
            dport,
        }
    }

    /// A random tuple between the two hosts' first addresses, in either
    /// direction.
    pub fn random(rng: &mut Rng, v6: bool) -> Tuple {
        let f = family(v6);
        let (src, dst) = if rng.below(2) == 0 {
            (H1[f], leafspine::H2[f])
        } else {
            (leafspine::H2[f], H1[f])
        };
        Tuple {
            proto: if rng.below(3) == 0 {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            sport: 1024 + rng.below(64000) as u16,
            dport: 1 + rng.below(65000) as u16,
            ..Tuple::udp(src, dst, 0, 0)
        }
    }

    /// The body of a trace request for this flow.
    pub fn body(&self) -> Value {
        json!({
            "src": self.src,
            "dst": self.dst,
            "proto": self.proto.number(),
            "sport": self.sport,
            "dport": self.dport,
        })
    }

    /// The same flow with `key` set to `value` in its request body.
    pub fn body_with(&self, key: &str, value: Value) -> Value {
        let mut body = self.body();
        body[key] = value;
        body
    }

    /// The flow as `ip route get` asks it at one switch.
    pub fn arriving(&self, ingress: Option<&str>) -> Flow {
        Flow {
            dst: self.dst,
            src: Some(self.src),
            iif: ingress.map(str::to_string),
            proto: self.proto,
            sport: self.sport,
            dport: self.dport,
        }
    }

    pub fn reversed(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// The seed of a test's random flows: `HOPWATCH_FABRIC_SEED` to replay one,
/// else the clock; printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("HOPWATCH_FABRIC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with HOPWATCH_FABRIC_SEED={seed})");
    seed
}

/// The switches a trace crossed, in order (not the unmanaged next hop it
/// may end at).
pub fn switches(trace: &Value) -> Vec<String> {
    trace["hops"]
        .as_array()
        .map(|hops| {
            hops.iter()
                .filter(|h| h["type"] != "unmanaged")
                .map(|h| h["agent"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
