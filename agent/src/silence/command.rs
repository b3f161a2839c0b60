//! `hopwatch silence add|list|remove` as they travel over the control
//! socket: one JSON line each way. The agent, not the command, turns
//! `--for` into an end time and checks it against `[silences]
//! max_duration`, so the running config's bound is the one that holds.

use super::{Active, Origin, Registry, glob, parse_time};
use hopwatch_wire::silence::Silence;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// The longest `reason` taken: a sentence, not a document. It keeps an
/// `add` inside the control socket's request bound.
pub const MAX_REASON: usize = 1024;
/// The longest glob taken.
pub const MAX_GLOB: usize = 256;
/// The most silences made on one agent at once: each is matched against
/// every alert change, and a switch's maintenance needs a handful.
pub const MAX_LOCAL: usize = 1000;

/// A request on the control socket: `{"add": {…}}`, `{"list": {}}`,
/// `{"remove": {"id": …}}`. Externally tagged, as serde reads that form
/// without buffering the object first (less code in the agent binary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Add(Add),
    List {},
    Remove { id: String },
}

/// `hopwatch silence add`, as typed: exactly one of `for` and `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A duration (`2h`), counted from when the agent takes the request.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// An RFC 3339 time in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub reason: String,
    pub author: String,
}

/// What reaches the agent's loop about silences, over one channel: a
/// request from the control socket with where its answer goes, or a new
/// set from the collector output's connection thread.
#[derive(Debug)]
pub enum Input {
    Request(Request, tokio::sync::oneshot::Sender<Reply>),
    Collector(Vec<Silence>),
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Added(Silence),
    /// Every silence held, local and the collector's, active and to come.
    Listed(Vec<Silence>),
    Removed(Silence),
    Error(String),
}

/// Makes the silence an `add` asks for at `now`, or says what is wrong
/// with it, naming the option and the fix.
pub fn build(add: &Add, id: String, now: SystemTime, max: Duration) -> Result<Active, String> {
    if add.interface.len() > MAX_GLOB {
        return Err(format!("--interface is longer than {MAX_GLOB} bytes"));
    }
    glob(&add.interface).map_err(|e| format!("bad --interface {:?}: {e}", add.interface))?;
    if let Some(rule) = &add.rule {
        if rule.len() > MAX_GLOB {
            return Err(format!("--rule is longer than {MAX_GLOB} bytes"));
        }
        glob(rule).map_err(|e| format!("bad --rule {rule:?}: {e}"))?;
    }
    let reason = add.reason.trim();
    if reason.is_empty() {
        return Err("--reason is required: say why, for whoever finds the alert quiet".into());
    }
    if reason.len() > MAX_REASON {
        return Err(format!(
            "--reason is longer than {MAX_REASON} bytes; keep it to a sentence"
        ));
    }
    let ends = match (&add.for_, &add.until) {
        (Some(text), None) => {
            let d = humantime::parse_duration(text.trim()).map_err(|e| {
                format!("bad --for {text:?}: {e}; write a duration like \"30m\" or \"2h\"")
            })?;
            if d.is_zero() {
                return Err("--for 0 would end at once; give a duration like \"2h\"".into());
            }
            now.checked_add(d)
                .ok_or_else(|| format!("--for {text:?} is too long"))?
        }
        (None, Some(text)) => {
            let at = parse_time(text).map_err(|e| format!("bad --until {text:?}: {e}"))?;
            if at <= now {
                return Err(format!(
                    "--until {text} is in the past (now is {}); give a later time",
                    crate::event::timestamp(now)
                ));
            }
            at
        }
        (None, None) => {
            return Err(
                "a silence must end: give --for (\"2h\") or --until (an RFC 3339 time)".into(),
            );
        }
        (Some(_), Some(_)) => return Err("give --for or --until, not both".into()),
    };
    let length = ends.duration_since(now).unwrap_or_default();
    if length > max {
        return Err(format!(
            "the silence would last {}, longer than the maximum {} ([silences] max_duration in agent.toml); end it sooner or raise max_duration",
            human(length),
            human(max)
        ));
    }
    let author = match add.author.trim() {
        "" => "unknown".to_string(),
        name => name.to_string(),
    };
    Active::parse(Silence {
        id,
        interface: add.interface.clone(),
        rule: add.rule.clone(),
        agent: None,
        starts_at: crate::event::timestamp(now),
        ends_at: crate::event::timestamp(ends),
        reason: reason.to_string(),
        author,
    })
    .map_err(|e| e.to_string())
}

/// Who runs `hopwatch silence add`: the person behind `sudo` (`SUDO_USER`)
/// when run as root through it, else the user name of the real uid from
/// the password database, else `uid N`. Not `$USER`, which any shell sets
/// as it likes and services often lack.
pub fn local_user() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    author(
        uid.as_raw(),
        std::env::var("SUDO_USER").ok().as_deref(),
        name,
    )
}

fn author(uid: u32, sudo_user: Option<&str>, name: Option<String>) -> String {
    match (uid, sudo_user.map(str::trim)) {
        (0, Some(person)) if !person.is_empty() => person.to_string(),
        _ => name.unwrap_or_else(|| format!("uid {uid}")),
    }
}

/// A duration to the second, as a person reads it.
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// A fresh local id, `l-` and 16 hex digits, not one `registry` holds.
pub fn new_id(registry: &Registry) -> String {
    loop {
        let id = format!("l-{:016x}", random_u64());
        if registry.get(&id).is_none() {
            return id;
        }
    }
}

/// 64 random bits from the kernel's UUID source (as boot ids are made), or
/// failing that from the clock and the process id.
fn random_u64() -> u64 {
    if let Ok(uuid) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
        if let Some(Ok(n)) = hex.get(..16).map(|h| u64::from_str_radix(h, 16)) {
            return n;
        }
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// Whether `registry` takes another local silence.
pub fn room(registry: &Registry) -> Result<(), String> {
    if registry.local().len() >= MAX_LOCAL {
        return Err(format!(
            "this agent holds {MAX_LOCAL} silences of its own, as many as it takes; remove some first (`hopwatch silence list`)"
        ));
    }
    Ok(())
}

/// Why a `remove` cannot be done, or `None` when `id` is a local silence.
pub fn refuse_remove(registry: &Registry, id: &str) -> Option<String> {
    match registry.get(id) {
        Some((_, Origin::Local)) => None,
        Some((_, Origin::Collector)) => Some(format!(
            "{id} was made on the collector; remove it there (`hopwatch-collector silence remove {id}` or DELETE /api/v1/silences/{id})"
        )),
        None => Some(format!(
            "no silence {id} on this agent; `hopwatch silence list` shows those there are"
        )),
    }
}

/// `hopwatch silence list` as a person reads it.
pub fn render(silences: &[Silence], now: SystemTime) -> String {
    use crate::text::escape;
    use std::fmt::Write as _;
    if silences.is_empty() {
        return "no silences\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<16} {:<16} {:<24} {:<12} REASON",
        "ID", "INTERFACE", "RULE", "ENDS", "AUTHOR"
    );
    for s in silences {
        let left = parse_time(&s.ends_at)
            .ok()
            .and_then(|end| end.duration_since(now).ok())
            .map(|d| format!(" (in {})", human(d)))
            .unwrap_or_default();
        let starts = match parse_time(&s.starts_at) {
            Ok(start) if start > now => format!(", from {}", escape(&s.starts_at)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<18} {:<16} {:<16} {:<24} {:<12} {}{}",
            escape(&s.id),
            escape(&s.interface),
            escape(s.rule.as_deref().unwrap_or("*")),
            format!("{}{left}", escape(&s.ends_at)),
            escape(&s.author),
            escape(&s.reason),
            starts
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::t;
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    fn add(for_: Option<&str>, until: Option<&str>) -> Add {
        Add {
            interface: "Eth1-*".into(),
            rule: None,
            for_: for_.map(str::to_string),
            until: until.map(str::to_string),
            reason: "  optics swap ".into(),
            author: "alice".into(),
        }
    }

    #[test]
    fn for_and_until_set_the_end() {
        let a = build(&add(Some("2h"), None), "l-1".into(), t(0), WEEK).unwrap();
        assert_eq!(a.ends, t(7200));
        assert_eq!(a.starts, t(0));
        assert_eq!(a.silence.reason, "optics swap");
        assert_eq!(a.silence.author, "alice");
        assert_eq!(a.silence.ends_at, crate::event::timestamp(t(7200)));
        let until = crate::event::timestamp(t(600));
        let a = build(&add(None, Some(&until)), "l-2".into(), t(0), WEEK).unwrap();
        assert_eq!(a.ends, t(600));
    }

    #[test]
    fn every_bad_add_names_the_option() {
        let cases = [
            (add(None, None), "must end"),
            (add(Some("2h"), Some("2030-01-01T00:00:00Z")), "not both"),
            (add(Some("soon"), None), "bad --for"),
            (add(Some("0s"), None), "--for 0"),
            (add(None, Some("2001-01-01T00:00:00Z")), "in the past"),
            (add(None, Some("next week")), "bad --until"),
            (
                add(Some("8d"), None),
                "longer than the maximum 7days ([silences] max_duration",
            ),
        ];
        for (request, expected) in cases {
            let error = build(&request, "l-1".into(), t(0), WEEK).unwrap_err();
            assert!(error.contains(expected), "{request:?}: {error}");
        }
        let mut bad = add(Some("1h"), None);
        bad.interface = "Eth1-[".into();
        assert!(
            build(&bad, "l".into(), t(0), WEEK)
                .unwrap_err()
                .contains("bad --interface")
        );
        bad.interface = "Eth1-1".into();
        bad.rule = Some("[".into());
        assert!(
            build(&bad, "l".into(), t(0), WEEK)
                .unwrap_err()
                .contains("bad --rule")
        );
        bad.rule = None;
        bad.reason = " ".into();
        assert!(
            build(&bad, "l".into(), t(0), WEEK)
                .unwrap_err()
                .contains("--reason is required")
        );
        bad.reason = "x".repeat(MAX_REASON + 1);
        assert!(
            build(&bad, "l".into(), t(0), WEEK)
                .unwrap_err()
                .contains("--reason is longer")
        );
        // Exactly the maximum is allowed.
        assert!(build(&add(Some("7d"), None), "l".into(), t(0), WEEK).is_ok());
    }

    #[test]
    fn requests_travel_as_one_json_line() {
        let request = Request::Add(add(Some("2h"), None));
        let line = serde_json::to_string(&request).unwrap();
        assert!(
            line.starts_with(r#"{"add":{"interface":"Eth1-*","for":"2h""#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        let list: Request = serde_json::from_str(r#"{"list":{}}"#).unwrap();
        assert_eq!(list, Request::List {});
        assert!(serde_json::from_str::<Request>(r#"{"remove":{"id":"l-1","x":1}}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"mute":{}}"#).is_err());
        let unknown = r#"{"add":{"interface":"x","reason":"r","author":"a","when":"now"}}"#;
        assert!(serde_json::from_str::<Request>(unknown).is_err());
        let error = serde_json::to_string(&Reply::Error("no".into())).unwrap();
        assert_eq!(error, r#"{"error":"no"}"#);
    }

    #[test]
    fn the_author_is_the_person_behind_sudo_or_the_uid_s_name() {
        assert_eq!(author(0, Some("alice"), Some("root".into())), "alice");
        assert_eq!(author(0, Some(" "), Some("root".into())), "root");
        // SUDO_USER means nothing to a process that is not root.
        assert_eq!(author(1000, Some("mallory"), Some("bob".into())), "bob");
        assert_eq!(author(1000, None, None), "uid 1000");
        // This process's own user has a name in the password database.
        assert!(!local_user().is_empty());
    }

    #[test]
    fn local_silences_are_bounded() {
        let mut r = Registry::default();
        for n in 0..MAX_LOCAL {
            assert!(room(&r).is_ok());
            let add = add(Some("1h"), None);
            r.add_local(build(&add, format!("l-{n}"), t(0), WEEK).unwrap());
        }
        assert!(room(&r).unwrap_err().contains("remove some first"));
        r.remove_local("l-0");
        assert!(room(&r).is_ok());
    }

    #[test]
    fn ids_are_local_and_fresh() {
        let r = Registry::default();
        let id = new_id(&r);
        assert!(id.starts_with("l-") && id.len() == 18, "{id}");
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_id(&r), id);
    }

    #[test]
    fn removing_a_collector_silence_points_to_the_collector() {
        let mut r = Registry::default();
        r.replace_collector(
            vec![super::super::tests::silence("c-1", "a", None, 0, 100)],
            t(0),
        );
        let why = refuse_remove(&r, "c-1").unwrap();
        assert!(
            why.contains("hopwatch-collector silence remove c-1"),
            "{why}"
        );
        assert!(refuse_remove(&r, "l-9").unwrap().contains("no silence l-9"));
    }

    #[test]
    fn the_list_shows_what_each_covers_and_when_it_ends() {
        let s = vec![super::super::tests::silence("l-1", "Eth1-*", None, 0, 3600)];
        let text = render(&s, t(0));
        assert!(text.contains("l-1") && text.contains("Eth1-*"), "{text}");
        assert!(
            text.contains("(in 1h)") && text.contains("maintenance"),
            "{text}"
        );
        assert_eq!(render(&[], t(0)), "no silences\n");
    }
}
