//! `hopwatch-collector silence add|list|remove`: the running collector's
//! silences, changed through its own HTTP API so that the agents concerned
//! are told at once (only the running collector holds their connections).
//! The API token is read as `hopwatch-collector trace` reads it, never from
//! the command line; the silence is signed with that token's name.

use crate::trace_cli::{api_address, api_token, call};
use clap::{Args, Subcommand};
use hopwatch_collector::config::Config;
use hopwatch_collector::shell;
use hopwatch_collector::store::silences::SilenceRecord;
use hopwatch_wire::text::escape;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long the collector may take to answer.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Args, Debug)]
pub struct SilenceArgs {
    /// Config file of the running collector: its [collector] http_listen
    /// and API token are used [default: /etc/hopwatch/collector.toml if
    /// present, else the embedded default]
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SilenceCommand,
}

#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Silence the alerts of some interfaces for a while: they still reach
    /// the collector, marked silenced, but not syslog, until the silence
    /// ends.
    Add {
        /// The agents concerned, a glob such as 'leaf*' [default: every agent].
        #[arg(long)]
        agent: Option<String>,
        /// The interfaces, a glob such as 'Eth1-*' ('*' for all).
        #[arg(long)]
        interface: String,
        /// Only the alerts of the rules this glob matches [default: every rule].
        #[arg(long)]
        rule: Option<String>,
        /// How long, from its start: 30m, 2h, 3d.
        #[arg(
            long = "for",
            value_name = "DURATION",
            required_unless_present = "until",
            conflicts_with = "until"
        )]
        duration: Option<String>,
        /// When it ends, an RFC 3339 time such as 2024-05-01T06:00:00Z.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// When it starts, an RFC 3339 time [default: now].
        #[arg(long, value_name = "TIME")]
        starts_at: Option<String>,
        /// Why: a ticket, a maintenance window.
        #[arg(long)]
        reason: String,
        /// Print the collector's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// The silences running and to come.
    List {
        /// Those that ended in the last 7 days too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Remove {
        /// The silence's id (c-…), as `add` printed it or `list` shows it.
        id: String,
    },
}

/// The request body `add` makes.
pub fn body(command: &SilenceCommand) -> Value {
    let mut body = Map::new();
    if let SilenceCommand::Add {
        agent,
        interface,
        rule,
        duration,
        until,
        starts_at,
        reason,
        json: _,
    } = command
    {
        body.insert("interface".into(), json!(interface));
        body.insert("reason".into(), json!(reason));
        for (key, value) in [
            ("agent", agent),
            ("rule", rule),
            ("for", duration),
            ("ends_at", until),
            ("starts_at", starts_at),
        ] {
            if let Some(value) = value {
                body.insert(key.into(), json!(value));
            }
        }
    }
    Value::Object(body)
}

/// The flag a request field comes from, for the API's 400s.
fn flag(field: &str) -> &str {
    match field {
        "agent" => "--agent",
        "interface" => "--interface",
        "rule" => "--rule",
        "for" => "--for",
        "ends_at" => "--until",
        "starts_at" => "--starts-at",
        "reason" => "--reason",
        "id" => "ID",
        other => other,
    }
}

/// Asks the collector; exit 0 when done, 2 for a bad question, 1 when the
/// collector could not do it.
pub fn run(args: SilenceArgs, config: Config) -> anyhow::Result<ExitCode> {
    let addr = api_address(&config);
    let token = api_token(&config)?;
    let (method, path, body) = match &args.command {
        SilenceCommand::Add { .. } => (
            hyper::Method::POST,
            "/api/v1/silences".to_string(),
            Some(serde_json::to_vec(&body(&args.command))?),
        ),
        SilenceCommand::List { all, .. } => (
            hyper::Method::GET,
            format!("/api/v1/silences{}", if *all { "?all=1" } else { "" }),
            None,
        ),
        SilenceCommand::Remove { id } => {
            // Only what an id may hold goes into the path.
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                eprintln!(
                    "hopwatch-collector silence: {:?} is not a silence id; ids look like c-0123456789abcdef (`silence list` shows them)",
                    escape(id)
                );
                return Ok(ExitCode::from(2));
            }
            (
                hyper::Method::DELETE,
                format!("/api/v1/silences/{id}"),
                None,
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = runtime.block_on(call(addr, method, &path, &token, body, WAIT))?;
    if status == 204 {
        println!("Removed; the agents concerned are told now.");
        return Ok(ExitCode::SUCCESS);
    }
    let value: Value = serde_json::from_slice(&answer).map_err(|e| {
        anyhow::anyhow!(
            "the collector at {addr} answered {status} with something that is not JSON ({e}); is http_listen in this config the collector's?"
        )
    })?;
    if !(200..300).contains(&status) {
        let error = escape(value["error"].as_str().unwrap_or("no reason given")).into_owned();
        return Ok(match (status, value["field"].as_str()) {
            (400, Some(field)) => {
                eprintln!("hopwatch-collector silence: {}: {error}", flag(field));
                ExitCode::from(2)
            }
            (400 | 413, None) => {
                eprintln!("hopwatch-collector silence: {error}");
                ExitCode::from(2)
            }
            _ => {
                eprintln!(
                    "hopwatch-collector silence: the collector at {addr} answered {status}: {error}"
                );
                ExitCode::from(1)
            }
        });
    }
    match &args.command {
        SilenceCommand::Add { json: true, .. } | SilenceCommand::List { json: true, .. } => {
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        SilenceCommand::Add { .. } => {
            let made: SilenceRecord = serde_json::from_value(value)?;
            let s = &made.silence;
            println!(
                "{}: {} from {} until {}",
                escape(&s.id),
                match made.state {
                    hopwatch_collector::store::silences::SilenceState::Pending => "pending",
                    _ => "silencing",
                },
                s.starts_at,
                s.ends_at
            );
        }
        SilenceCommand::List { .. } => {
            let list: Vec<SilenceRecord> = serde_json::from_value(value)?;
            print!("{}", shell::silences(&list));
        }
        SilenceCommand::Remove { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SilenceArgs,
    }

    fn args(line: &[&str]) -> Result<SilenceArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("silence").chain(line.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn add_makes_the_request_body() {
        let a = args(&[
            "add",
            "--agent",
            "leaf*",
            "--interface",
            "Eth1-*",
            "--rule",
            "tx-*",
            "--for",
            "2h",
            "--reason",
            "optics swap",
        ])
        .unwrap();
        assert_eq!(
            body(&a.command),
            json!({"agent": "leaf*", "interface": "Eth1-*", "rule": "tx-*", "for": "2h", "reason": "optics swap"})
        );
        let a = args(&[
            "add",
            "--interface",
            "*",
            "--until",
            "2030-01-01T00:00:00Z",
            "--starts-at",
            "2029-12-31T22:00:00Z",
            "--reason",
            "r",
            "-c",
            "/x.toml",
        ])
        .unwrap();
        assert_eq!(
            body(&a.command),
            json!({"interface": "*", "ends_at": "2030-01-01T00:00:00Z", "starts_at": "2029-12-31T22:00:00Z", "reason": "r"})
        );
        assert_eq!(a.config, Some(PathBuf::from("/x.toml")));
    }

    #[test]
    fn every_silence_ends_and_has_a_reason_before_anyone_is_asked() {
        for (line, words) in [
            (&["add", "--interface", "*", "--reason", "r"][..], "--for"),
            (&["add", "--interface", "*", "--for", "1h"][..], "--reason"),
            (&["add", "--for", "1h", "--reason", "r"][..], "--interface"),
            (
                &[
                    "add",
                    "--interface",
                    "*",
                    "--for",
                    "1h",
                    "--until",
                    "2030-01-01T00:00:00Z",
                    "--reason",
                    "r",
                ][..],
                "cannot be used with",
            ),
            (&["remove"][..], "<ID>"),
        ] {
            let error = args(line).unwrap_err().to_string();
            assert!(error.contains(words), "{line:?}: {error}");
        }
    }

    #[test]
    fn fields_are_told_as_flags() {
        assert_eq!(flag("ends_at"), "--until");
        assert_eq!(flag("for"), "--for");
        assert_eq!(flag("starts_at"), "--starts-at");
    }
}
