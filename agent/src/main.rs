//! The `hopwatch` command: parses arguments, loads the config, and hands off
//! to the library. Exit codes: 0 success, 1 a runtime failure, 2 a bad
//! config or bad usage, 3 the agent stopped at its `memory_limit` and did
//! not restart itself.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hopwatch::config::{self, Config, ConfigError};
use hopwatch::output::collector::TokenSource;
use hopwatch::{agent, control, counters, link};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Counts the heap, so the agent can keep to its `memory_limit`.
#[global_allocator]
static ALLOCATOR: hopwatch::memory::CountingAlloc = hopwatch::memory::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "hopwatch",
    version,
    about = "Watches a switch's interfaces from the inside: counters every second, rules, link events."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground.
    Run {
        /// Config file [default: /etc/hopwatch/agent.toml if present, else the embedded default]
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file; print every error with file:line:col; exit 2 if any.
    CheckConfig {
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Show every interface's counters and per-second rates.
    Counters {
        /// Read the source settings (source, proc_root, sys_root, nxapi_*)
        /// from this config [default: /etc/hopwatch/agent.toml if present]
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Refresh every interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// Time between the two readings the rates come from.
        #[arg(long, default_value = "1s", value_parser = counters_interval)]
        interval: Duration,
    },
    /// Ask the running agent for its rules, firing alerts and output health.
    Status {
        /// Find the agent's socket through this config's state_dir.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The control socket [default: <state_dir>/hopwatch.sock]
        #[arg(long)]
        socket: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Trace one flow through this switch as it forwards it (the kernel, or
    /// NX-OS through NX-API): the
    /// route, the ECMP member, the next hop's neighbour entry, the egress
    /// interface. Exit 0 when answered, also when the answer is a drop.
    Trace(TraceArgs),
    /// Look up many flows (a source-port range or a sample) and show how
    /// they spread over the route's ECMP members, with a verdict on evenness.
    /// Exit 0 when answered, also when every flow is dropped.
    Paths(PathsArgs),
    /// Quiet some alerts for a while (a maintenance window): covered alert
    /// changes still reach the collector, marked silenced, but not syslog
    /// or stdout. Every silence ends.
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
        #[command(flatten)]
        socket: SocketArgs,
    },
}

/// How `hopwatch silence` finds the running agent.
#[derive(clap::Args)]
struct SocketArgs {
    /// Find the agent's socket through this config's state_dir.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// The control socket [default: <state_dir>/hopwatch.sock]
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Add a silence; prints its id.
    #[command(group(clap::ArgGroup::new("end").required(true).args(["for_", "until"])))]
    Add {
        /// Interface glob (`Eth1-*`, `swp12`).
        #[arg(long)]
        interface: String,
        /// Rule-name glob [default: every rule]
        #[arg(long)]
        rule: Option<String>,
        /// How long, from now (`30m`, `2h`); at most `[silences] max_duration`.
        #[arg(long = "for", id = "for_", value_name = "DURATION")]
        for_: Option<String>,
        /// When it ends, RFC 3339 in UTC (`2026-12-05T18:00:00Z`).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Why: shown with the silence and in the agent's log.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// List the silences the agent holds, its own and the collector's.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a silence made on this agent (the collector's are removed on
    /// the collector).
    Remove { id: String },
}

fn main() -> ExitCode {
    let args = parse_args();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(log_level())
        .init();
    match dispatch(args.command) {
        Ok(code) => code,
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                eprintln!("{config_error}");
                return ExitCode::from(2);
            }
            eprintln!("hopwatch: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Parses the command line. `--version` also says which counter source and
/// trace backend the installed config leads to on this machine.
fn parse_args() -> Args {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Args::command();
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        let config = installed_config();
        let settings = &config.agent;
        let text = format!(
            "{} (counter source {}, trace backend {}; NX-API socket {} {})",
            env!("CARGO_PKG_VERSION"),
            match settings.resolved_source() {
                // Settled by the agent's first poll, which --version does not make.
                config::SourceKind::Auto => "dme or nxapi (whichever NX-API serves)",
                kind => kind.as_str(),
            },
            settings.resolved_trace_backend().as_str(),
            settings.nxapi_socket.display(),
            if settings.nxapi_socket.exists() {
                "present"
            } else {
                "absent"
            },
        );
        command = command.version(&*Box::leak(text.into_boxed_str()));
    }
    let matches = command.get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// The installed config if it loads, else the embedded default; for
/// commands that only read settings from it.
fn installed_config() -> Config {
    Config::load(Path::new(config::DEFAULT_PATH)).unwrap_or_else(|_| Config::embedded())
}

/// The config a read-only command takes its settings from: the named file
/// (errors are the caller's to fix), else the installed one, else the
/// embedded default.
fn settings_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(&path)?,
        None => installed_config(),
    })
}

/// The trace backend a config names, or the one `--backend` forces.
fn trace_backend(
    config: Option<PathBuf>,
    forced: Option<&str>,
) -> anyhow::Result<Box<dyn hopwatch::trace::Backend>> {
    use hopwatch::config::TraceBackendKind;
    let mut config = settings_config(config)?;
    match forced {
        Some("kernel") => config.agent.trace_backend = TraceBackendKind::Kernel,
        Some("nxapi") => config.agent.trace_backend = TraceBackendKind::Nxapi,
        _ => {}
    }
    Ok(agent::new_trace_backend(&config.agent)())
}

/// `HOPWATCH_LOG=error|warn|info|debug|trace`; info by default.
fn log_level() -> tracing::Level {
    std::env::var("HOPWATCH_LOG")
        .ok()
        .and_then(|level| level.parse().ok())
        .unwrap_or(tracing::Level::INFO)
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let (config, path) = resolve(config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            hopwatch::memory::set_limit(config.agent.memory_limit);
            let memory = hopwatch::memory::watch(Duration::from_secs(1));
            runtime.block_on(agent::run(config, path, memory))?;
            if hopwatch::memory::exceeded() {
                return Ok(hopwatch::memory::restart());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let loaded = Config::load(&config)?;
            if let Some(warning) = loaded.agent.interval_warning() {
                eprintln!("{}: warning: {warning}", config.display());
            }
            if let Some(collector) = &loaded.collector {
                // The file's contents are only known here, not to the
                // pure validation.
                for warning in collector.token.warnings() {
                    eprintln!("{}: warning: {warning}", config.display());
                }
                // The token is read at every connection attempt, so a file
                // provisioned after the config is fine; one that is there
                // but unusable is an error.
                let absent = match &collector.token {
                    TokenSource::File(path) if !path.exists() => Some(path),
                    _ => None,
                };
                if let Some(path) = absent {
                    eprintln!(
                        "{}: warning: token_file {} does not exist yet; the agent connects to the collector once it does",
                        config.display(),
                        path.display()
                    );
                } else if let Err(error) = collector.token.read() {
                    eprintln!("{}: error: {error}", config.display());
                    return Ok(ExitCode::from(2));
                }
            }
            println!(
                "{}: ok ({} rules, outputs: {})",
                config.display(),
                loaded.rules.len(),
                outputs(&loaded)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Counters {
            config,
            json,
            watch,
            interval,
        } => {
            let config = settings_config(config)?;
            show_counters(&config, json, watch, interval)
        }
        Command::Status {
            config,
            socket,
            json,
        } => {
            let socket = match socket {
                Some(s) => s,
                None => {
                    let (config, _) = resolve(config)?;
                    config.agent.state_dir.join(control::SOCKET_NAME)
                }
            };
            let status = control::request_status(&socket)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", control::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace(args) => run_trace(args),
        Command::Paths(args) => run_paths(args),
        Command::Silence { command, socket } => run_silence(command, socket),
    }
}

/// `hopwatch silence …`: one request to the running agent. The agent's
/// refusal (a bad glob, a silence too long) exits 2 like any usage error.
fn run_silence(command: SilenceCommand, socket: SocketArgs) -> anyhow::Result<ExitCode> {
    use hopwatch::silence::command::{Add, Reply, Request, render};
    let path = match socket.socket {
        Some(path) => path,
        None => resolve(socket.config)?
            .0
            .agent
            .state_dir
            .join(control::SOCKET_NAME),
    };
    let (request, json) = match command {
        SilenceCommand::Add {
            interface,
            rule,
            for_,
            until,
            reason,
            json,
        } => (
            Request::Add(Add {
                interface,
                rule,
                for_,
                until,
                reason,
                author: hopwatch::silence::command::local_user(),
            }),
            json,
        ),
        SilenceCommand::List { json } => (Request::List {}, json),
        SilenceCommand::Remove { id } => (Request::Remove { id }, false),
    };
    match control::request_silence(&path, &request)? {
        Reply::Error(error) => {
            eprintln!("hopwatch silence: {}", hopwatch::text::escape(&error));
            Ok(ExitCode::from(2))
        }
        Reply::Added(silence) if json => {
            println!("{}", serde_json::to_string_pretty(&silence)?);
            Ok(ExitCode::SUCCESS)
        }
        Reply::Added(silence) => {
            println!(
                "{} silences {} until {}",
                silence.id,
                hopwatch::text::escape(&silence.interface),
                silence.ends_at
            );
            Ok(ExitCode::SUCCESS)
        }
        Reply::Listed(silences) if json => {
            println!("{}", serde_json::to_string_pretty(&silences)?);
            Ok(ExitCode::SUCCESS)
        }
        Reply::Listed(silences) => {
            print!("{}", render(&silences, std::time::SystemTime::now()));
            Ok(ExitCode::SUCCESS)
        }
        Reply::Removed(silence) => {
            println!("removed {}", silence.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The config to run: the named file, else the installed one, else the
/// embedded default.
fn resolve(path: Option<PathBuf>) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let path = path.or_else(|| {
        let installed = Path::new(config::DEFAULT_PATH);
        installed.exists().then(|| installed.to_path_buf())
    });
    match path {
        Some(path) => Ok((Config::load(&path)?, Some(path))),
        None => {
            tracing::info!(
                "No config file given and none at {}; running the embedded default.",
                config::DEFAULT_PATH
            );
            Ok((Config::embedded(), None))
        }
    }
}

fn outputs(config: &Config) -> String {
    let mut names = Vec::new();
    if config.stdout.is_some() {
        names.push("stdout");
    }
    if config.syslog.is_some() {
        names.push("syslog");
    }
    if config.collector.is_some() {
        names.push("collector");
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `--interval`: long enough for a rate, short enough to be waited for.
fn counters_interval(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!(
            "{value} is out of range: use between 100ms and 1h; 1s is usual"
        ));
    }
    Ok(d)
}

fn show_counters(
    config: &Config,
    json: bool,
    watch: bool,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    let settings = &config.agent;
    let mut source = agent::build_counters_source(settings);
    let mut prev = source.sample()?;
    let mut prev_at = Instant::now();
    loop {
        std::thread::sleep(interval);
        let cur = source.sample()?;
        let now = Instant::now();
        // A source that reports links (NX-API) is the truth for them.
        let link = |name: &str| match cur.rows.iter().find(|r| r.name == name) {
            Some(row) if row.link.is_some() => row.link.as_ref().map(|l| l.state),
            _ => link::sysfs::read_link(&settings.sys_root, name).ok(),
        };
        let rows = counters::compute(&prev, &cur, now - prev_at, link);
        if json {
            println!("{}", serde_json::to_string(&rows)?);
        } else {
            if watch {
                // Clear the screen and home the cursor, as `watch` does.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", counters::render(&rows));
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        prev = cur;
        prev_at = now;
    }
}

/// The flow `hopwatch trace` follows.
#[derive(clap::Args)]
struct TraceArgs {
    /// Destination address, IPv4 or IPv6.
    #[arg(long)]
    dst: std::net::IpAddr,
    /// Source address. A local one is a flow the switch originates; any
    /// other makes the flow transit, arriving on --iif or, without it, on
    /// the interface the route back to the source leaves by.
    #[arg(long)]
    src: Option<std::net::IpAddr>,
    /// The interface a transit flow arrives on.
    #[arg(long, requires = "src")]
    iif: Option<String>,
    /// IP protocol: tcp, udp, icmp, sctp or a number 0-255.
    #[arg(long, value_parser = parse_proto)]
    proto: Option<ProtoArg>,
    #[arg(long)]
    sport: Option<u16>,
    #[arg(long)]
    dport: Option<u16>,
    /// The IPv6 flow label (decimal or 0x hex), for hash policies that hash
    /// it: the label forwarded packets carry, or the one the switch's own
    /// socket sets (automatic labels come after the lookup) [default: 0]
    #[arg(long, value_name = "LABEL", value_parser = parse_flowlabel)]
    flowlabel: Option<u32>,
    /// A namespace in /var/run/netns, an l3mdev vrf device, or default
    /// (with the nxapi backend: an NX-OS VRF name).
    #[arg(long, default_value = hopwatch::trace::DEFAULT_VRF)]
    vrf: String,
    /// Print the trace as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Who answers a trace.
#[derive(clap::Args)]
struct BackendArgs {
    /// Read trace_backend and the nxapi_* settings from this config
    /// [default: /etc/hopwatch/agent.toml if present]
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// kernel (the Linux FIB) or nxapi (NX-OS's `show routing hash`)
    /// [default: the config's trace_backend]
    #[arg(long, value_parser = ["auto", "kernel", "nxapi"])]
    backend: Option<String>,
}

/// The flows `hopwatch paths` spreads.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("flows").required(true).args(["sport_range", "samples"])))]
struct PathsArgs {
    /// Destination address, IPv4 or IPv6.
    #[arg(long)]
    dst: std::net::IpAddr,
    /// Source address (see `hopwatch trace --help`).
    #[arg(long)]
    src: Option<std::net::IpAddr>,
    /// The interface the flows arrive on.
    #[arg(long, requires = "src")]
    iif: Option<String>,
    /// tcp, udp, or the number of another protocol with ports.
    #[arg(long, value_parser = parse_proto)]
    proto: ProtoArg,
    /// Every source port from A to B, one flow each.
    #[arg(long, value_name = "A-B")]
    sport_range: Option<hopwatch::trace::PortRange>,
    /// This many flows with random distinct source ports (1024-65535).
    #[arg(long, value_name = "N")]
    samples: Option<u32>,
    /// Seed for --samples, to repeat a run [default: from the clock].
    #[arg(long, requires = "samples")]
    seed: Option<u64>,
    #[arg(long, conflicts_with = "dport_range")]
    dport: Option<u16>,
    /// Every destination port from A to B, against every source port.
    #[arg(long, value_name = "A-B")]
    dport_range: Option<hopwatch::trace::PortRange>,
    /// The IPv6 flow label (decimal or 0x hex), for hash policies that hash
    /// it: the label forwarded packets carry, or the one the switch's own
    /// socket sets (automatic labels come after the lookup) [default: 0]
    #[arg(long, value_name = "LABEL", value_parser = parse_flowlabel)]
    flowlabel: Option<u32>,
    /// A namespace in /var/run/netns, an l3mdev vrf device, or default.
    #[arg(long, default_value = hopwatch::trace::DEFAULT_VRF)]
    vrf: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// List every flow and the member it takes.
    #[arg(long)]
    per_flow: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// A protocol as given; `icmp` means ICMPv6 for an IPv6 destination, as a
/// real ping there would carry.
#[derive(Debug, Clone, Copy)]
enum ProtoArg {
    Number(u8),
    Icmp,
}

impl ProtoArg {
    fn number(self, dst: std::net::IpAddr) -> u8 {
        match self {
            ProtoArg::Number(n) => n,
            ProtoArg::Icmp if dst.is_ipv6() => 58,
            ProtoArg::Icmp => 1,
        }
    }
}

fn parse_flowlabel(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| {
        format!("{text:?} is not a flow label; give a number 0 to 1048575, or 0x0 to 0xfffff")
    })
}

fn parse_proto(text: &str) -> Result<ProtoArg, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "tcp" => ProtoArg::Number(6),
        "udp" => ProtoArg::Number(17),
        "sctp" => ProtoArg::Number(132),
        "icmp" => ProtoArg::Icmp,
        "icmpv6" | "ipv6-icmp" => ProtoArg::Number(58),
        number => ProtoArg::Number(number.parse().map_err(|_| {
            format!("{text:?} is not a protocol; give tcp, udp, icmp, sctp or a number 0-255")
        })?),
    })
}

fn run_trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let mut backend = trace_backend(args.backend.config, args.backend.backend.as_deref())?;
    let query = hopwatch::trace::FlowQuery {
        dst: args.dst,
        src: args.src,
        iif: args.iif,
        proto: args.proto.map(|p| p.number(args.dst)),
        sport: args.sport,
        dport: args.dport,
        vrf: args.vrf,
        flowlabel: args.flowlabel,
    };
    let answer = backend.trace(&query);
    let trace = match trace_outcome(answer, "trace")? {
        Ok(trace) => trace,
        Err(code) => return Ok(code),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        // Names come from the kernel or NX-API: escaped for the terminal.
        print!(
            "{}",
            hopwatch::text::escape_lines(&hopwatch::trace::render::trace(&trace))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_paths(args: PathsArgs) -> anyhow::Result<ExitCode> {
    let mut backend = trace_backend(args.backend.config, args.backend.backend.as_deref())?;
    let query = hopwatch::trace::PathsQuery {
        dst: args.dst,
        src: args.src,
        iif: args.iif,
        proto: args.proto.number(args.dst),
        sport_range: args.sport_range,
        samples: args.samples,
        seed: args.seed,
        dport: args.dport,
        dport_range: args.dport_range,
        vrf: args.vrf,
        per_flow: args.per_flow,
        flowlabel: args.flowlabel,
    };
    let answer = backend.paths(&query);
    let paths = match trace_outcome(answer, "paths")? {
        Ok(paths) => paths,
        Err(code) => return Ok(code),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&paths)?);
    } else {
        print!(
            "{}",
            hopwatch::text::escape_lines(&hopwatch::trace::render::paths(&paths))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A query the caller got wrong exits 2 like any usage error; a failure to
/// ask (netlink, rights, an unknown VRF) goes up to exit 1.
fn trace_outcome<T>(
    answer: Result<T, hopwatch::trace::TraceError>,
    command: &str,
) -> anyhow::Result<Result<T, ExitCode>> {
    match answer {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error.is_usage() => {
            eprintln!("error: {error}\n\nFor more information, try 'hopwatch {command} --help'.");
            Ok(Err(ExitCode::from(2)))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_interval_is_bounded() {
        assert_eq!(counters_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(counters_interval("100ms"), Ok(Duration::from_millis(100)));
        for bad in ["0s", "99ms", "2h", "10000000000y"] {
            let error = counters_interval(bad).unwrap_err();
            assert!(error.contains("between 100ms and 1h"), "{bad}: {error}");
        }
        assert!(counters_interval("soon").is_err());
    }
}
