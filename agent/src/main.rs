//! The `hopwatch` command: parses arguments, loads the config, and hands off
//! to the library. Exit codes: 0 success, 1 a runtime failure, 2 a bad
//! config or bad usage.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hopwatch::config::{self, Config, ConfigError};
use hopwatch::source::CounterSource;
use hopwatch::source::procfs::ProcfsSource;
use hopwatch::{agent, control, counters, link};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
        /// Read proc_root and sys_root from this config.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Refresh every interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// Time between the two readings the rates come from.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
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
}

fn main() -> ExitCode {
    let args = Args::parse();
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
            runtime.block_on(agent::run(config, path, std::future::pending()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let loaded = Config::load(&config)?;
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
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::embedded(),
            };
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
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn show_counters(
    config: &Config,
    json: bool,
    watch: bool,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    let settings = &config.agent;
    let mut source = ProcfsSource::new(&settings.proc_root);
    let link = |name: &str| link::sysfs::read_link(&settings.sys_root, name).ok();
    let mut prev = source.sample()?;
    let mut prev_at = Instant::now();
    loop {
        std::thread::sleep(interval);
        let cur = source.sample()?;
        let now = Instant::now();
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
