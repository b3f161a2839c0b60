//! `hopwatch-collector trace`: asks the running collector, over its own
//! HTTP API, to follow a flow across the fabric, and prints the answer. The
//! CLI does no tracing itself: only the running collector holds the agents'
//! connections. The API token comes from the same places the collector
//! reads it (the config's `api_tokens`, its `api_tokens_file`, else the
//! `api-token` file in `data_dir`), never from the command line, where any
//! user's `ps` would show it.

use clap::Args;
use hopwatch_collector::auth::{API_TOKEN_FILE, Secret, TokenSource, read_token_file};
use hopwatch_collector::config::Config;
use hopwatch_collector::fabric::request::parse_proto;
use hopwatch_collector::fabric::{FabricTrace, PathTree, render};
use hopwatch_wire::text::escape;
use hopwatch_wire::trace::PortRange;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// How long connecting to the collector may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past the trace timeout the CLI waits for the collector's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Config file of the running collector: its [collector] http_listen
    /// and API token are used [default: /etc/hopwatch/collector.toml if
    /// present, else the embedded default]
    #[arg(short, long)]
    pub config: Option<std::path::PathBuf>,
    /// The flow's source address; the trace starts at the switch that owns
    /// it or has it on a connected subnet, unless --from says otherwise.
    #[arg(long)]
    pub src: IpAddr,
    /// The flow's destination address.
    #[arg(long)]
    pub dst: IpAddr,
    /// IP protocol: a name (tcp, udp, icmp, ipv6-icmp, ...) or a number.
    #[arg(long, value_parser = proto)]
    pub proto: Option<u8>,
    /// Source port (with --proto tcp or udp).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Destination port (with --proto tcp or udp).
    #[arg(long)]
    pub dport: Option<u16>,
    /// The VRF the flow is routed in [default: default].
    #[arg(long)]
    pub vrf: Option<String>,
    /// The agent of the first switch, when --src is not on a switch's
    /// connected subnet (or on several).
    #[arg(long = "from", value_name = "AGENT")]
    pub from: Option<String>,
    /// Also trace the return flow and say whether it crosses the same
    /// switches.
    #[arg(long, conflicts_with = "all_paths")]
    pub reverse: bool,
    /// Follow every ECMP member at every hop and print the paths side by
    /// side.
    #[arg(long)]
    pub all_paths: bool,
    /// With --all-paths: spread this source-port range over the paths
    /// (A-B, at most 4096 ports).
    #[arg(long, value_name = "A-B", requires = "all_paths", value_parser = port_range)]
    pub sport_range: Option<PortRange>,
    /// Follow at most this many switches [default: the collector's [trace] hop_limit].
    #[arg(long)]
    pub hop_limit: Option<u64>,
    /// With --all-paths: hold at most this many switches in the tree
    /// [default: the collector's [trace] max_branches].
    #[arg(long, requires = "all_paths")]
    pub max_branches: Option<u64>,
    /// Print the collector's JSON answer.
    #[arg(long)]
    pub json: bool,
}

fn proto(value: &str) -> Result<u8, String> {
    parse_proto(value)
}

fn port_range(value: &str) -> Result<PortRange, String> {
    value.parse()
}

/// The request body the arguments make.
pub fn body(args: &TraceArgs) -> Value {
    let mut body = Map::new();
    body.insert("src".into(), json!(args.src));
    body.insert("dst".into(), json!(args.dst));
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    };
    put("proto", args.proto.map(|p| json!(p)));
    put("sport", args.sport.map(|p| json!(p)));
    put("dport", args.dport.map(|p| json!(p)));
    put("vrf", args.vrf.as_ref().map(|v| json!(v)));
    put("from", args.from.as_ref().map(|v| json!(v)));
    put("reverse", args.reverse.then_some(json!(true)));
    put(
        "sport_range",
        args.sport_range.map(|r| json!(r.to_string())),
    );
    put("hop_limit", args.hop_limit.map(|n| json!(n)));
    put("max_branches", args.max_branches.map(|n| json!(n)));
    Value::Object(body)
}

/// The flag a request field comes from, for the API's 400s.
fn flag(field: &str) -> String {
    let base = field.split(['[', '.']).next().unwrap_or(field);
    format!("--{}", base.replace('_', "-"))
}

/// Where the running collector's API listens: its `http_listen`, the
/// loopback for a wildcard address.
pub fn api_address(config: &Config) -> SocketAddr {
    let mut addr = config.collector.http_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        });
    }
    addr
}

/// An API token of the collector, from where the collector itself reads
/// them.
pub fn api_token(config: &Config) -> anyhow::Result<Secret> {
    if let Some(token) = config.auth.api_tokens.first() {
        return Ok(token.clone());
    }
    if let Some(file) = &config.auth.api_tokens_file {
        let mut tokens = read_token_file(&file.value)?;
        return Ok(tokens.swap_remove(0));
    }
    if let Some(named) = config.auth.named_api_tokens.first() {
        return Ok(match &named.source {
            TokenSource::Inline(token) => token.clone(),
            TokenSource::File(file) => read_token_file(&file.value)?.swap_remove(0),
        });
    }
    let path = config.collector.data_dir.join(API_TOKEN_FILE);
    let mut tokens = read_token_file(&path).map_err(|e| {
        anyhow::anyhow!(
            "{e}; the collector keeps its generated API token there (mode 0600): run this as the collector's user, or pass the collector's config with -c"
        )
    })?;
    Ok(tokens.swap_remove(0))
}

/// Asks the collector and prints its answer; the exit code says whether
/// the flow arrived (0), did not or got no answer (1), or the question was
/// wrong (2).
pub fn run(args: TraceArgs, config: Config) -> anyhow::Result<ExitCode> {
    let addr = api_address(&config);
    let token = api_token(&config)?;
    let path = if args.all_paths {
        "/api/v1/trace/multi-path"
    } else {
        "/api/v1/trace/flow"
    };
    let body = serde_json::to_vec(&body(&args))?;
    let wait = config.trace.timeout + ANSWER_MARGIN;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = runtime.block_on(call(
        addr,
        hyper::Method::POST,
        path,
        &token,
        Some(body),
        wait,
    ))?;
    let value: Value = serde_json::from_slice(&answer).map_err(|e| {
        anyhow::anyhow!(
            "the collector at {addr} answered {status} with something that is not JSON ({e}); is http_listen in this config the collector's?"
        )
    })?;
    if status != 200 {
        let error = value["error"].as_str().unwrap_or("no reason given");
        let error = escape(error);
        return Ok(match (status, value["field"].as_str()) {
            (400, Some(field)) => {
                eprintln!("hopwatch-collector trace: {}: {error}", flag(field));
                ExitCode::from(2)
            }
            (400 | 413, None) => {
                eprintln!("hopwatch-collector trace: {error}");
                ExitCode::from(2)
            }
            _ => {
                eprintln!(
                    "hopwatch-collector trace: the collector at {addr} answered {status}: {error}"
                );
                ExitCode::from(1)
            }
        });
    }
    let arrived = if args.all_paths {
        let tree: PathTree = serde_json::from_value(value.clone())?;
        if !args.json {
            print!("{}", render::paths(&tree));
        }
        tree.reaches_destination
    } else {
        let trace: FabricTrace = serde_json::from_value(value.clone())?;
        if !args.json {
            print!("{}", render::trace(&trace));
        }
        trace.reaches_destination
            && trace
                .reverse
                .as_ref()
                .is_none_or(|back| back.reaches_destination)
    };
    // The renderings escape every name from the network as they write it;
    // JSON escapes control characters itself.
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(if arrived {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One request with the bearer token, over a connection of its own.
pub async fn call(
    addr: SocketAddr,
    method: hyper::Method,
    path: &str,
    token: &Secret,
    body: Option<Vec<u8>>,
    wait: Duration,
) -> anyhow::Result<(u16, axum::body::Bytes)> {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to the collector's API at {addr} timed out"))?
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the collector's API at {addr}: {e}; is `hopwatch-collector run` running with this config's http_listen?"
            )
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        )
        .body(Full::new(axum::body::Bytes::from(body.unwrap_or_default())))?;
    let answer = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, bytes))
    };
    let result = tokio::time::timeout(wait, answer).await.map_err(|_| {
        anyhow::anyhow!(
            "the collector at {addr} did not answer within {}",
            humantime::format_duration(wait)
        )
    })?;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TraceArgs,
    }

    fn args(line: &[&str]) -> Result<TraceArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("trace").chain(line.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn arguments_make_the_request_body() {
        let a = args(&[
            "--src",
            "10.1.0.10",
            "--dst",
            "10.2.0.10",
            "--proto",
            "tcp",
            "--sport",
            "1234",
            "--dport",
            "80",
            "--vrf",
            "blue",
            "--from",
            "leaf1",
            "--reverse",
            "--hop-limit",
            "8",
        ])
        .unwrap();
        assert_eq!(
            body(&a),
            json!({"src": "10.1.0.10", "dst": "10.2.0.10", "proto": 6, "sport": 1234, "dport": 80,
                   "vrf": "blue", "from": "leaf1", "reverse": true, "hop_limit": 8})
        );
        let a = args(&[
            "--src",
            "fd00::1",
            "--dst",
            "fd00::2",
            "--proto",
            "17",
            "--all-paths",
            "--sport-range",
            "1000-1999",
            "--max-branches",
            "16",
        ])
        .unwrap();
        assert_eq!(
            body(&a),
            json!({"src": "fd00::1", "dst": "fd00::2", "proto": 17, "sport_range": "1000-1999", "max_branches": 16})
        );
    }

    #[test]
    fn usage_errors_are_caught_before_asking() {
        for (line, words) in [
            (&["--dst", "10.2.0.10"][..], "--src"),
            (
                &["--src", "10.1.0.10", "--dst", "10.2.0.300"][..],
                "invalid IP address",
            ),
            (
                &["--src", "10.1.0.10", "--dst", "10.2.0.10", "--proto", "tpc"][..],
                "not a protocol",
            ),
            (
                &[
                    "--src",
                    "10.1.0.10",
                    "--dst",
                    "10.2.0.10",
                    "--sport-range",
                    "1-2",
                ][..],
                "--all-paths",
            ),
            (
                &[
                    "--src",
                    "10.1.0.10",
                    "--dst",
                    "10.2.0.10",
                    "--all-paths",
                    "--sport-range",
                    "9-1",
                ][..],
                "backwards",
            ),
            (
                &[
                    "--src",
                    "10.1.0.10",
                    "--dst",
                    "10.2.0.10",
                    "--all-paths",
                    "--reverse",
                ][..],
                "cannot be used with",
            ),
        ] {
            let error = args(line).unwrap_err().to_string();
            assert!(error.contains(words), "{line:?}: {error}");
        }
    }

    #[test]
    fn fields_are_told_as_flags() {
        assert_eq!(flag("dst"), "--dst");
        assert_eq!(flag("sport_range"), "--sport-range");
        assert_eq!(flag("hop_limit"), "--hop-limit");
    }

    #[test]
    fn a_wildcard_listener_is_asked_on_the_loopback() {
        let mut config = Config::embedded();
        config.collector.http_listen = "0.0.0.0:8081".parse().unwrap();
        assert_eq!(api_address(&config).to_string(), "127.0.0.1:8081");
        config.collector.http_listen = "[::]:8081".parse().unwrap();
        assert_eq!(api_address(&config).to_string(), "[::1]:8081");
        config.collector.http_listen = "192.0.2.1:8081".parse().unwrap();
        assert_eq!(api_address(&config).to_string(), "192.0.2.1:8081");
    }
}
