//! The `hopwatch-collector` command: parses arguments, loads the config and
//! hands off to the library. Exit codes: 0 success, 1 a runtime failure, 2 a
//! bad config or bad usage.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hopwatch_collector::auth::{GeneratedToken, TokenKind};
use hopwatch_collector::config::{self, Config, ConfigError};
use hopwatch_collector::store::query::{self, AlertFilter, AlertQuery, DowntimeQuery};
use hopwatch_collector::store::{self, millis};
use hopwatch_collector::{Collector, api, log, shell};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

mod silence_cli;
mod trace_cli;

/// The collector's allocator: ingest allocates a little per event on many
/// threads, where musl's allocator, which the static packages link, runs at
/// about 0.6 times glibc's; mimalloc is as fast on both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hopwatch-collector",
    version,
    about = "Keeps the fleet's hopwatch events: what went down, what came back, how long, which alerts fire."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConfigArg {
    /// Config file [default: /etc/hopwatch/collector.toml if present, else the embedded default]
    #[arg(short, long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector in the foreground; SIGTERM/SIGINT stop it after
    /// storing and acknowledging what is in flight.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a config file (and the token and TLS files it names); print
    /// every error with file:line:col; exit 2 if any.
    CheckConfig {
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Every agent: online or stale, last seen, firing alerts.
    Agents {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Alerts: firing by default.
    Alerts {
        #[command(flatten)]
        config: ConfigArg,
        /// Only alerts firing now (the default).
        #[arg(long, conflicts_with_all = ["resolved", "all"])]
        firing: bool,
        /// Only resolved alerts.
        #[arg(long, conflicts_with = "all")]
        resolved: bool,
        /// Firing and resolved.
        #[arg(long)]
        all: bool,
        /// Only alerts active since: a duration back from now (10m, 24h) or
        /// an RFC 3339 time [default for --resolved and --all: 24h]
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        /// At most this many alerts (1 to 100000).
        #[arg(long, default_value_t = query::DEFAULT_LIMIT, value_parser = limit)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Links that went down and came back up.
    Changes {
        #[command(flatten)]
        config: ConfigArg,
        /// A duration back from now (10m, 1h) or an RFC 3339 time.
        #[arg(long, default_value = "10m")]
        since: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// How long each link was down, and all of them together.
    Downtime {
        #[command(flatten)]
        config: ConfigArg,
        /// A duration back from now (30d, 24h) or an RFC 3339 time.
        #[arg(long, default_value = "30d")]
        since: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        interface: Option<String>,
        /// List interfaces that were never down too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Follow a flow across the fabric, hop by hop, asking each switch's
    /// agent through the running collector. Exit 0 when the flow arrives,
    /// 1 when it is dropped, leaves the managed fabric or a switch does not
    /// answer, 2 for a bad question.
    Trace(trace_cli::TraceArgs),
    /// Silences through the running collector: `add` (every silence ends:
    /// --for or --until), `list`, `remove ID`. Exit 0 when done, 1 when the
    /// collector could not, 2 for a bad request.
    Silence(silence_cli::SilenceArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                eprintln!("{config_error}");
                return ExitCode::from(2);
            }
            if let Some(usage) = error.downcast_ref::<Usage>() {
                eprintln!("hopwatch-collector: {}", usage.0);
                return ExitCode::from(2);
            }
            eprintln!("hopwatch-collector: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// A bad argument value found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// Where alerts go besides syslog, for `check-config`'s summary.
fn forwarding_alerts(alerting: &hopwatch_collector::alerting::AlertingSettings) -> String {
    let mut to = Vec::new();
    if let Some(am) = &alerting.alertmanager {
        to.push(format!("{} Alertmanager(s)", am.urls.len()));
    }
    if !alerting.webhooks.is_empty() {
        to.push(format!("{} webhook(s)", alerting.webhooks.len()));
    }
    if to.is_empty() {
        String::new()
    } else {
        format!(", alerts to {}", to.join(" and "))
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Trace(args) => {
            let config = resolve(args.config.clone(), false)?;
            trace_cli::run(args, config)
        }
        Command::Silence(args) => {
            let config = resolve(args.config.clone(), false)?;
            silence_cli::run(args, config)
        }
        Command::Run { config } => run(config.config),
        Command::CheckConfig { config } => {
            let loaded = Config::load(&config)?;
            loaded.check_files()?;
            let alerting = loaded.alerting.file_warnings();
            for warning in loaded.file_warnings().into_iter().chain(alerting) {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok (agents on {}, HTTP on {}, data in {}{}{}{})",
                config.display(),
                loaded.collector.agents_listen,
                loaded.collector.http_listen,
                loaded.collector.data_dir.display(),
                // The URL holds the password: only host:port/dbname shows.
                match loaded.store {
                    hopwatch_collector::store::StoreSettings::Sqlite => String::new(),
                    _ => format!(", events in {}", loaded.store_summary()),
                },
                if loaded.syslog.is_some() {
                    ", forwarding to syslog"
                } else {
                    ""
                },
                forwarding_alerts(&loaded.alerting)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Agents { config, json } => {
            let config = resolve(config.config, false)?;
            let store = ShellStore::open(&config)?;
            let timeout = config.collector.heartbeat_timeout;
            let now = now_ms();
            let (mut agents, running) = store.reads.with(|db| {
                Ok((
                    query::agents(db, now, timeout)?,
                    store.reads.collector_running(now, timeout)?,
                ))
            })?;
            // With no collector keeping the store current, "online" would
            // be a guess: answer as of the last time it heard from anyone.
            if !running && let Some(last) = agents.iter().map(|a| a.last_seen_ms).max() {
                agents = store.reads.with(|db| query::agents(db, last, timeout))?;
                let as_of = store::rfc3339(last);
                eprintln!(
                    "warning: no collector is running on {}; these states are as of {as_of}, when it last heard from an agent",
                    store.shown
                );
                for a in &mut agents {
                    a.as_of = Some(as_of.clone());
                }
            }
            print(json, &agents, || shell::agents(&agents))
        }
        Command::Alerts {
            config,
            firing: _,
            resolved,
            all,
            since,
            agent,
            interface,
            rule,
            limit,
            json,
        } => {
            let config = resolve(config.config, false)?;
            let state = match (resolved, all) {
                (true, _) => AlertFilter::Resolved,
                (_, true) => AlertFilter::All,
                _ => AlertFilter::Firing,
            };
            let since = since.or_else(|| (state != AlertFilter::Firing).then(|| "24h".into()));
            let q = AlertQuery {
                state,
                since_ms: since.map(|s| parse_since(&s)).transpose()?,
                agent,
                interface,
                rule,
                limit,
            };
            let alerts = ShellStore::open(&config)?
                .reads
                .with(|db| query::alerts(db, &q))?;
            print(json, &alerts, || shell::alerts(&alerts))
        }
        Command::Changes {
            config,
            since,
            agent,
            json,
        } => {
            let config = resolve(config.config, false)?;
            let since = parse_since(&since)?;
            let changes = ShellStore::open(&config)?
                .reads
                .with(|db| query::changes(db, since, agent.as_deref()))?;
            print(json, &changes, || shell::changes(&changes))
        }
        Command::Downtime {
            config,
            since,
            agent,
            interface,
            all,
            json,
        } => {
            let config = resolve(config.config, false)?;
            let q = DowntimeQuery {
                since_ms: parse_since(&since)?,
                agent,
                interface,
            };
            let timeout = config.collector.heartbeat_timeout;
            let downtime = ShellStore::open(&config)?.reads.with(|db| {
                query::downtime(db, &q, now_ms(), timeout, &store::since::SinceCache::none())
            })?;
            print(json, &downtime, || shell::downtime(&downtime, all))
        }
    }
}

/// The store as a shell command reads it.
struct ShellStore {
    reads: store::Reads,
    /// The store, as a warning names it.
    shown: String,
    /// What a PostgreSQL store's connections run on; dropped after them.
    _runtime: Option<tokio::runtime::Runtime>,
}

impl ShellStore {
    fn open(config: &Config) -> anyhow::Result<ShellStore> {
        let data_dir = &config.collector.data_dir;
        match &config.store {
            store::StoreSettings::Sqlite => Ok(ShellStore {
                reads: store::Reads::Sqlite(store::ReadPool::new(data_dir)),
                shown: data_dir.display().to_string(),
                _runtime: None,
            }),
            store::StoreSettings::Postgres(settings) => {
                // The queries block this thread on the runtime's handle,
                // so a worker thread of its own must drive the
                // connections meanwhile: a current-thread runtime would
                // wait for itself.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .context("cannot start the runtime for the PostgreSQL store")?;
                let pg = runtime.block_on(store::postgres::Pg::open(settings))?;
                Ok(ShellStore {
                    shown: format!("the PostgreSQL store {}", pg.target()),
                    reads: store::Reads::Postgres(pg),
                    _runtime: Some(runtime),
                })
            }
        }
    }
}

/// `--limit`: as the API's `limit`, a whole number from 1 to the most
/// rows a list answers with.
fn limit(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=query::MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("use a whole number from 1 to {}", query::MAX_LIMIT)),
    }
}

fn now_ms() -> i64 {
    millis(SystemTime::now())
}

fn parse_since(value: &str) -> anyhow::Result<i64> {
    api::parse_since(value, now_ms()).map_err(|e| Usage(e.replace("`since`", "--since")).into())
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", table());
    }
    Ok(ExitCode::SUCCESS)
}

/// The config to use: the named file, else the installed one, else the
/// embedded default.
fn resolve(path: Option<PathBuf>, say: bool) -> anyhow::Result<Config> {
    let path = path.or_else(|| {
        let installed = Path::new(config::DEFAULT_PATH);
        installed.exists().then(|| installed.to_path_buf())
    });
    match path {
        Some(path) => Ok(Config::load(&path)?),
        None => {
            if say {
                tracing::info!(
                    "No config file given and none at {}; running the embedded default.",
                    config::DEFAULT_PATH
                );
            }
            Ok(Config::embedded())
        }
    }
}

fn run(path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = resolve(path, false)?;
    let collector = Collector::build(config)?;
    let settings = collector.config().collector.clone();
    let log_file = match &collector.config().log.file {
        Some(file) => {
            let path = settings.data_dir.join(file);
            let log = &collector.config().log;
            Some(
                log::RotatingFile::open(&path, log.max_size, log.keep)
                    .with_context(|| format!("opening the log file {}", path.display()))?,
            )
        }
        None => None,
    };
    log::init(log_file);
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let agents = tokio::net::TcpListener::bind(settings.agents_listen)
            .await
            .with_context(|| format!("listening for agents on {}", settings.agents_listen))?;
        let http = tokio::net::TcpListener::bind(settings.http_listen)
            .await
            .with_context(|| format!("listening for HTTP on {}", settings.http_listen))?;
        let scheme = if collector.http_tls() { "https" } else { "http" };
        if collector.generated().is_empty() {
            let token_file = settings
                .data_dir
                .join(hopwatch_collector::auth::API_TOKEN_FILE);
            tracing::info!(
                "API: {scheme}://{}/api/v1/agents (bearer token from the configured api_tokens or {}).",
                reachable(settings.http_listen),
                token_file.display()
            );
            tracing::info!(
                "Web page: {scheme}://{}/ (sign in with an API token: the configured api_tokens or {}).",
                reachable(settings.http_listen),
                token_file.display()
            );
        } else {
            print!(
                "{}",
                banner(
                    collector.generated(),
                    settings.agents_listen,
                    settings.http_listen,
                    scheme,
                    std::io::stdout().is_terminal(),
                )
            );
        }
        collector.run(agents, http, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What a person reads on the first start: the new tokens (this once, and
/// only on a terminal: a service's stdout is a log, and tokens never go to
/// logs), where they are kept, and what to try.
fn banner(
    generated: &[GeneratedToken],
    agents: SocketAddr,
    http: SocketAddr,
    scheme: &str,
    show_tokens: bool,
) -> String {
    let mut out = String::from(if show_tokens {
        "hopwatch-collector: first start; generated tokens, shown this once (kept in files with mode 0600):\n"
    } else {
        "hopwatch-collector: first start; generated tokens, kept in files with mode 0600 (not shown: this output is not a terminal):\n"
    });
    let shown = |token: &str| {
        if show_tokens {
            token.to_string()
        } else {
            "(in the file)".into()
        }
    };
    let mut api_file = None;
    for g in generated {
        match g.kind {
            TokenKind::Api => {
                out.push_str(&format!("  API token    {}\n               in {}\n", shown(g.token.expose()), g.path.display()));
                api_file = Some(g.path.display().to_string());
            }
            TokenKind::Agent => out.push_str(&format!(
                "  agent token  {}\n               in {}; give it to each agent as [output.collector] token or token_file\n",
                shown(g.token.expose()),
                g.path.display()
            )),
        }
    }
    let base = format!("{scheme}://{}", reachable(http));
    let signin = match &api_file {
        Some(file) => format!("the API token in {file}"),
        None => "an API token".into(),
    };
    out.push_str(&format!("\nWeb page: {base}/ (sign in with {signin})\n"));
    out.push_str(&format!(
        "\nAgents connect to {agents}. The API is at {base}; try:\n"
    ));
    let auth = match api_file {
        Some(file) => format!("-H \"Authorization: Bearer $(cat {file})\""),
        None => "-H \"Authorization: Bearer $API_TOKEN\"".into(),
    };
    for path in [
        "/api/v1/agents",
        "/api/v1/alerts?state=firing",
        "/api/v1/links/changes?since=10m",
        "/api/v1/links/downtime?since=30d",
    ] {
        out.push_str(&format!("  curl -s {auth} '{base}{path}'\n"));
    }
    out.push_str(&format!("  curl -s {base}/metrics\n\n"));
    out
}

/// An address a local curl can reach: the loopback for a wildcard listener.
fn reachable(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Each agent holds a socket; the usual soft limit of 1024 descriptors would
/// cap the fleet well below `max_connections`.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, soft, hard, "Could not raise the open file limit.");
    }
}
