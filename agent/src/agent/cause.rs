//! Link events that wait, briefly, for the switch to say why. On NX-OS the
//! kernel's carrier tells the agent at once that a port went down, but not
//! whether an operator shut it or the link failed; the DME does (see
//! [`crate::link::admin`]). So a `down` event of a front-panel port is held
//! while the agent asks, and goes out with `admin` and `reason` when the
//! answer comes.
//!
//! - **How long**: at most [`HOLD`] (2 s) after the carrier change, which
//!   covers a DME object query (tens of milliseconds on a switch) queued
//!   behind a counter poll; each question may take [`ASK_TIMEOUT`] (1 s) on
//!   the socket. Past the hold the event goes out as it would without the
//!   DME, without `admin` and `reason`, and a late answer is dropped. A
//!   failed question (REST API absent, refused, unreadable) does the same at
//!   once. Either way nothing is lost: only the two fields are missing.
//! - **Order**: the events of one interface leave in the order they
//!   happened; an `up` that follows a held `down` waits behind it. Other
//!   interfaces' events, alerts and heartbeats do not wait. A held event
//!   keeps the time of the carrier change as its `ts`.
//! - **One request at a time**: questions run as errands on the sampler
//!   thread, the one that polls counters over the same socket, so a
//!   question and a poll are never in flight together; one question (all
//!   the ports then waiting, asked in turn) is out at a time, and the
//!   client's own turn on the socket keeps trace requests apart from it
//!   too. The question's client keeps its own session cookie between
//!   questions.
//! - **Where**: only with an NX-OS counter source whose rows do not carry
//!   links (links then come from netlink or sysfs), and only for `down`
//!   events of `Eth…` ports. On Linux nothing is held, and link events are
//!   what they were.

use crate::config::{AgentSettings, LinkWatch};
use crate::event::{AdminState, Link, LinkState};
use crate::link::admin::{self, PortCause};
use crate::nxapi::Client;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// The client questions use: one for an NX-OS counter source whose rows do
/// not bring the link (a source that does gives its own reason), else none.
pub(super) fn client_for(settings: &AgentSettings, link_mode: LinkWatch) -> Option<Client> {
    if link_mode == LinkWatch::Source {
        return None;
    }
    // `auto` where NX-API's socket is settles on `dme` or `nxapi`: NX-OS
    // either way.
    settings
        .on_nxos()
        .then(|| Client::new(&settings.nxapi_socket, &settings.nxapi_user, ASK_TIMEOUT))
}

/// The longest a link event waits for the switch's answer.
pub(super) const HOLD: Duration = Duration::from_secs(2);
/// The longest one question waits on the NX-API socket.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Held link events and the one question out for them.
pub(super) struct Causes {
    /// The client questions use; `None` where nothing is asked, and while a
    /// question holds it.
    client: Option<Client>,
    /// Whether events are held at all (an NX-OS source, links not from it).
    enabled: bool,
    /// Bumped when the client is replaced, so an answer for the old one
    /// does not bring it back.
    generation: u64,
    /// A question is out.
    asking: bool,
    held: VecDeque<Held>,
    next_id: u64,
}

struct Held {
    id: u64,
    /// When the carrier changed: the event's time.
    at: SystemTime,
    deadline: Instant,
    link: Link,
    /// The DME port to ask about; `None` for an event that only waits its
    /// turn behind another of its interface.
    port: Option<String>,
    asked: bool,
    /// What the switch said, or that it said nothing usable.
    answer: Option<Option<PortCause>>,
}

/// A question for the sampler thread: the ports to ask about, in turn.
pub(super) struct Question {
    client: Client,
    generation: u64,
    ports: Vec<(u64, String, Instant)>,
}

/// The thread's answer.
pub(super) struct Answer {
    client: Client,
    generation: u64,
    causes: Vec<(u64, Option<PortCause>)>,
}

impl Question {
    /// Asks each port whose event still waits; one request at a time.
    pub(super) fn run(mut self) -> Answer {
        let mut causes = Vec::with_capacity(self.ports.len());
        for (id, port, deadline) in self.ports {
            if Instant::now() >= deadline {
                // Its event is gone already; the switch is spared the request.
                continue;
            }
            let cause = match admin::ask(&mut self.client, &port) {
                Ok(cause) => Some(cause),
                Err(error) => {
                    tracing::warn!(%error, port, "Cannot ask NX-OS why a port went down; its link event goes without the reason.");
                    None
                }
            };
            causes.push((id, cause));
        }
        Answer {
            client: self.client,
            generation: self.generation,
            causes,
        }
    }
}

impl Causes {
    /// `client` asks the questions; `None` holds nothing.
    pub(super) fn new(client: Option<Client>) -> Causes {
        Causes {
            enabled: client.is_some(),
            client,
            generation: 0,
            asking: false,
            held: VecDeque::new(),
            next_id: 0,
        }
    }

    /// After a reload or a lost sampler thread: questions use `client` from
    /// now on (none: nothing more is held). Held events keep their turn.
    pub(super) fn replace_client(&mut self, client: Option<Client>) {
        self.enabled = client.is_some();
        self.client = client;
        self.generation += 1;
        self.asking = false;
    }

    /// Takes a link event in at `now`; it comes back from [`Causes::ready`].
    /// `ask` is false for events the switch cannot explain (a removed
    /// interface).
    pub(super) fn hold(&mut self, link: Link, at: SystemTime, now: Instant, ask: bool) {
        let port = (self.enabled && ask && link.state == LinkState::Down)
            .then(|| admin::dme_port(&link.interface))
            .flatten();
        let id = self.next_id;
        self.next_id += 1;
        self.held.push_back(Held {
            id,
            at,
            deadline: now + HOLD,
            answer: port.is_none().then_some(None),
            link,
            port,
            asked: false,
        });
    }

    /// The next question to send, when one is due and none is out.
    pub(super) fn question(&mut self) -> Option<Question> {
        if self.asking {
            return None;
        }
        let waiting: Vec<(u64, String, Instant)> = self
            .held
            .iter()
            .filter(|h| !h.asked && h.answer.is_none())
            .filter_map(|h| h.port.clone().map(|port| (h.id, port, h.deadline)))
            .collect();
        if waiting.is_empty() {
            return None;
        }
        let client = self.client.take()?;
        for held in self.held.iter_mut() {
            if waiting.iter().any(|(id, _, _)| *id == held.id) {
                held.asked = true;
            }
        }
        self.asking = true;
        Some(Question {
            client,
            generation: self.generation,
            ports: waiting,
        })
    }

    /// The question out could not be sent, or its thread died: its events
    /// go without the reason, and `client` asks next time.
    pub(super) fn unsent(&mut self, client: Option<Client>) {
        for held in self.held.iter_mut().filter(|h| h.asked) {
            held.answer.get_or_insert(None);
        }
        self.replace_client(client);
    }

    /// Every held event, in order, as it stands: for the agent's exit,
    /// which must not lose them.
    pub(super) fn flush(&mut self) -> Vec<(SystemTime, Link)> {
        self.held.drain(..).map(|h| (h.at, h.link)).collect()
    }

    pub(super) fn answered(&mut self, answer: Answer) {
        if answer.generation != self.generation {
            return;
        }
        self.client = Some(answer.client);
        self.asking = false;
        for (id, cause) in answer.causes {
            if let Some(held) = self.held.iter_mut().find(|h| h.id == id) {
                held.answer = Some(cause);
            }
        }
        // Asked but skipped on the thread: past their hold.
        for held in self.held.iter_mut().filter(|h| h.asked) {
            held.answer.get_or_insert(None);
        }
    }

    /// The events free to go at `now`, oldest first, with their times: those
    /// answered or past their hold, each after every earlier event of its
    /// interface.
    pub(super) fn ready(&mut self, now: Instant) -> Vec<(SystemTime, Link)> {
        let mut out = Vec::new();
        let mut blocked: Vec<String> = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for mut held in self.held.drain(..) {
            let settled = held.answer.is_some() || now >= held.deadline;
            if !settled || blocked.contains(&held.link.interface) {
                blocked.push(held.link.interface.clone());
                kept.push_back(held);
                continue;
            }
            if let Some(Some(cause)) = held.answer.take() {
                explain(&mut held.link, &cause);
            }
            out.push((held.at, held.link));
        }
        self.held = kept;
        out
    }

    /// When the oldest unsettled event's hold ends.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.held
            .iter()
            .filter(|h| h.answer.is_none())
            .map(|h| h.deadline)
            .min()
    }
}

/// Writes the switch's answer into a down event: its fields, and its
/// sentence, which names the reason as a source's reason is named.
fn explain(link: &mut Link, cause: &PortCause) {
    link.admin = Some(cause.admin);
    link.reason = cause.reason();
    let Some(reason) = &link.reason else {
        return;
    };
    link.message = if link.previous == LinkState::Unknown {
        format!(
            "{} is down: {reason} (first seen; carrier changes {})",
            link.interface, link.carrier_changes
        )
    } else {
        format!(
            "{} went down: {reason} (carrier changes {})",
            link.interface, link.carrier_changes
        )
    };
    if cause.admin == AdminState::Down {
        tracing::info!(interface = %link.interface, "The port was shut by an operator; reported as administratively down.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, up: bool) -> Link {
        Link {
            interface: name.into(),
            state: LinkState::from_up(up),
            previous: LinkState::from_up(!up),
            carrier_changes: 2,
            oper_state: if up { "up" } else { "lowerlayerdown" }.into(),
            message: format!("{name} went down: oper state lowerlayerdown (carrier changes 2)"),
            admin: None,
            reason: None,
        }
    }

    fn client() -> Client {
        Client::new("/nonexistent/nxapi.sock", "admin", ASK_TIMEOUT)
    }

    #[test]
    fn every_nxos_source_asks_why_a_link_went_down() {
        use crate::config::{Config, SourceKind};
        let socket =
            std::env::temp_dir().join(format!("hopwatch-cause-{}.sock", std::process::id()));
        std::fs::write(&socket, b"").unwrap();
        let mut settings = Config::embedded().agent;
        settings.nxapi_socket = socket.clone();
        let asks = |settings: &AgentSettings, mode| client_for(settings, mode).is_some();
        for (source, expected) in [
            (SourceKind::Auto, true),
            (SourceKind::Dme, true),
            (SourceKind::Nxapi, true),
            (SourceKind::Procfs, false),
        ] {
            settings.source = source;
            assert_eq!(asks(&settings, LinkWatch::Netlink), expected, "{source:?}");
        }
        // A source that brings its own link state gives its own reason.
        settings.source = SourceKind::Nxapi;
        assert!(!asks(&settings, LinkWatch::Source));
        // `auto` off NX-OS is procfs.
        std::fs::remove_file(&socket).unwrap();
        settings.source = SourceKind::Auto;
        assert!(!asks(&settings, LinkWatch::Netlink));
    }

    fn answer_with(question: Question, causes: &[Option<PortCause>]) -> Answer {
        Answer {
            generation: question.generation,
            causes: question
                .ports
                .iter()
                .zip(causes)
                .map(|((id, _, _), c)| (*id, c.clone()))
                .collect(),
            client: question.client,
        }
    }

    fn shut() -> PortCause {
        PortCause {
            admin: AdminState::Down,
            oper: Some("down".into()),
            qualifier: Some("admin-down".into()),
        }
    }

    #[test]
    fn without_a_client_nothing_waits() {
        let mut causes = Causes::new(None);
        let t0 = Instant::now();
        let at = SystemTime::now();
        causes.hold(link("eth0", false), at, t0, true);
        assert!(causes.question().is_none());
        let out = causes.ready(t0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, at);
        assert_eq!(out[0].1, link("eth0", false), "the event is untouched");
        assert_eq!(causes.next_deadline(), None);
    }

    #[test]
    fn a_down_port_waits_for_the_answer_and_carries_it() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        // Another interface's event and the port's own up come meanwhile.
        causes.hold(link("Eth1-8", true), SystemTime::now(), t0, true);
        causes.hold(link("Eth1-7", true), SystemTime::now(), t0, true);
        let question = causes.question().expect("a question for Eth1-7");
        assert_eq!(
            question
                .ports
                .iter()
                .map(|p| p.1.as_str())
                .collect::<Vec<_>>(),
            ["eth1/7"]
        );
        assert!(causes.question().is_none(), "one question at a time");
        let out = causes.ready(t0);
        assert_eq!(
            out.iter()
                .map(|(_, l)| l.interface.as_str())
                .collect::<Vec<_>>(),
            ["Eth1-8"],
            "Eth1-8 goes at once; Eth1-7's up waits behind its down"
        );
        assert_eq!(causes.next_deadline(), Some(t0 + HOLD));
        causes.answered(answer_with(question, &[Some(shut())]));
        let out = causes.ready(t0 + Duration::from_millis(50));
        let down = &out[0].1;
        assert_eq!(
            (down.state, down.admin, down.reason.as_deref()),
            (
                LinkState::Down,
                Some(AdminState::Down),
                Some("administratively down")
            )
        );
        assert_eq!(
            down.message,
            "Eth1-7 went down: administratively down (carrier changes 2)"
        );
        assert_eq!(out[1].1, link("Eth1-7", true));
        assert!(causes.held.is_empty());
    }

    #[test]
    fn past_its_hold_an_event_goes_without_the_reason_and_a_late_answer_is_dropped() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        let question = causes.question().unwrap();
        assert!(
            causes
                .ready(t0 + HOLD - Duration::from_millis(1))
                .is_empty()
        );
        let out = causes.ready(t0 + HOLD);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, link("Eth1-7", false), "as without the DME");
        causes.answered(answer_with(question, &[Some(shut())]));
        assert!(causes.ready(t0 + HOLD).is_empty());
        // The client came back: the next down asks again.
        causes.hold(link("Eth1-9", false), SystemTime::now(), t0 + HOLD, true);
        assert!(causes.question().is_some());
    }

    #[test]
    fn a_failed_question_lets_its_events_go_at_once() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        let question = causes.question().unwrap();
        causes.answered(answer_with(question, &[None]));
        let out = causes.ready(t0);
        assert_eq!(out[0].1, link("Eth1-7", false));
        // A failure the switch explains: enabled, with its qualifier.
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        let question = causes.question().unwrap();
        let failed = PortCause {
            admin: AdminState::Up,
            oper: Some("down".into()),
            qualifier: Some("link-failure".into()),
        };
        causes.answered(answer_with(question, &[Some(failed)]));
        let out = causes.ready(t0);
        assert_eq!(
            (out[0].1.admin, out[0].1.reason.as_deref()),
            (Some(AdminState::Up), Some("link-failure"))
        );
    }

    #[test]
    fn what_the_switch_cannot_explain_is_not_asked() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        for name in ["po10", "Vlan10", "eth0"] {
            causes.hold(link(name, false), SystemTime::now(), t0, true);
        }
        causes.hold(link("Eth1-3", false), SystemTime::now(), t0, false);
        assert!(causes.question().is_none());
        assert_eq!(causes.ready(t0).len(), 4);
    }

    #[test]
    fn a_replaced_client_ignores_the_old_answer_and_an_unsent_question_frees_its_events() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        let question = causes.question().unwrap();
        causes.replace_client(Some(client()));
        causes.answered(answer_with(question, &[Some(shut())]));
        assert!(causes.ready(t0).is_empty(), "the old answer is not used");
        assert!(causes.question().is_none(), "already asked");
        assert_eq!(causes.ready(t0 + HOLD).len(), 1);

        causes.hold(link("Eth1-8", false), SystemTime::now(), t0, true);
        let _lost = causes.question().unwrap();
        causes.unsent(None);
        assert_eq!(causes.ready(t0).len(), 1);
        causes.hold(link("Eth1-8", false), SystemTime::now(), t0, true);
        assert!(causes.question().is_none(), "no client: nothing is asked");
        assert_eq!(causes.ready(t0).len(), 1);
    }

    #[test]
    fn at_exit_every_held_event_goes_in_order() {
        let mut causes = Causes::new(Some(client()));
        let t0 = Instant::now();
        causes.hold(link("Eth1-7", false), SystemTime::now(), t0, true);
        causes.hold(link("Eth1-7", true), SystemTime::now(), t0, true);
        let _out = causes.question().unwrap();
        let states: Vec<LinkState> = causes.flush().into_iter().map(|(_, l)| l.state).collect();
        assert_eq!(states, [LinkState::Down, LinkState::Up]);
        assert!(causes.ready(t0 + HOLD).is_empty());
    }
}
