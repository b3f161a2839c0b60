//! What one stored event changes besides its own row: the agent's liveness
//! and silences, its interfaces' timelines and link changes, and its open
//! alerts. Written once for both stores: every write goes through a
//! [`Sink`], so what is recorded (changes, down times, unknown gaps, alert
//! endings) is decided here alone.

use super::Incoming;
use super::cache::{Cache, Sink};
use crate::timeline::{self, State};
use hopwatch_wire::event::{AlertState, Body, Link, LinkState};

fn link_state(state: LinkState) -> State {
    match state {
        LinkState::Up => State::Up,
        LinkState::Down => State::Down,
        LinkState::Unknown => State::Unknown,
    }
}

/// A link event's state on the timeline: a port the switch says an
/// operator shut is `admin_down`, not down.
fn link_event_state(link: &Link) -> State {
    if link.is_admin_down() {
        State::AdminDown
    } else {
        link_state(link.state)
    }
}

/// The state of a report that does not say whether the port is enabled (a
/// heartbeat, or a first state without `admin`) for an interface whose
/// timeline stands at `known`: a port shut stays `admin_down` while such
/// reports say down, and only a link change or an up ends that.
fn unexplained_state(reported: State, known: State) -> State {
    match (reported, known) {
        (State::Down, State::AdminDown) => State::AdminDown,
        _ => reported,
    }
}

/// Stores one event and updates what derives from it; false when it was a
/// duplicate.
pub(crate) fn apply_event<S: Sink>(
    hot: &mut S,
    cache: &mut Cache,
    ev: &Incoming,
    now_ms: i64,
    timeout_ms: i64,
) -> Result<bool, S::Error> {
    let agent_id = cache.agent(hot, &ev.agent, now_ms)?;
    let (boot_id, new_boot) = cache.boot(hot, agent_id, &ev.boot, now_ms)?;
    let stored = hot.event(boot_id, ev, now_ms)?;
    let boot = cache
        .boots
        .get_mut(&agent_id)
        .and_then(|b| b.get_mut(&ev.boot))
        .expect("boot just looked up");
    if ev.seq > boot.last_seq {
        boot.last_seq = ev.seq;
    }
    if !boot.dirty {
        boot.dirty = true;
        cache.dirty_boots.push((agent_id, ev.boot.clone()));
    }
    cache.dirty_agents.insert(agent_id);
    let agent = cache.agent_row(agent_id);
    agent.last_seen_ms = now_ms;
    let Some(event_id) = stored else {
        return Ok(false);
    };
    let time = timeline::event_time(ev.ts_ms, agent.skew_ms, now_ms);
    if time.future && !agent.future_logged {
        agent.future_logged = true;
        tracing::warn!(
            agent = ev.agent,
            boot = ev.boot,
            seq = ev.seq,
            ts = ev.ts,
            "Event stamped too far ahead of the collector's clock; it is stored as sent, and its arrival time stands for it in timelines and alerts. Later ones from this connection are not logged."
        );
    }
    let at = time.at_ms;
    let previous_ts = agent.last_ts_ms;
    agent.last_ts_ms = Some(previous_ts.map_or(at, |t| t.max(at)));
    let previous_boot = agent.latest_boot;
    if new_boot {
        agent.latest_boot = Some(boot_id);
    }
    // After a goodbye, the agent's time until it speaks again is unknown
    // however short the pause.
    let resumes_unknown = std::mem::take(&mut agent.resumes_unknown);
    agent.stopped_ms = None;
    if let Some(last) = previous_ts
        && (at - last > timeout_ms || resumes_unknown)
    {
        silence(hot, cache, agent_id, last, at)?;
    }
    if new_boot && previous_boot.is_some() {
        resolve_for_restart(hot, cache, agent_id, boot_id, at)?;
    }
    match &ev.body {
        Some(Body::Link(link)) if link.state != LinkState::Unknown => {
            let reported = link_event_state(link);
            let (iface, created) = cache.interface(hot, agent_id, &link.interface, at, reported)?;
            // A first state (at agent start, or a new interface) is a change
            // only when it differs from what was known: down at first sight
            // starts an outage, up at first sight starts nothing.
            let known = cache.tails[&iface].seg.prior;
            let state = if link.previous == LinkState::Unknown && link.admin.is_none() {
                unexplained_state(reported, known)
            } else {
                reported
            };
            let record = match (link.previous == LinkState::Unknown, created) {
                (false, _) => true,
                (true, true) => matches!(state, State::Down | State::AdminDown),
                (true, false) => state != known,
            };
            let down_ms = match (state, created) {
                (State::Up, false) => {
                    let tail = &cache.tails[&iface];
                    let was_down = tail.seg.state == State::Down
                        || (tail.seg.state == State::Unknown && tail.seg.prior == State::Down);
                    tail.down_since_ms
                        .filter(|_| was_down)
                        .map(|since| (at - since).max(0))
                }
                _ => None,
            };
            if !created {
                cache.transition(hot, iface, at, state)?;
            }
            if record {
                hot.change(at, event_id, iface, state, down_ms)?;
            }
        }
        Some(Body::Heartbeat(hb)) => {
            for status in hb
                .interfaces
                .iter()
                .filter(|i| i.state != LinkState::Unknown)
            {
                let state = link_state(status.state);
                let (iface, created) = cache.interface(hot, agent_id, &status.name, at, state)?;
                if !created {
                    let state = unexplained_state(state, cache.tails[&iface].seg.prior);
                    cache.transition(hot, iface, at, state)?;
                }
            }
            let addresses =
                serde_json::to_string(&hb.addresses).expect("addresses always serialize");
            let agent = cache.agent_row(agent_id);
            // Both times by the agent's clock.
            if ev.ts_ms > agent.addresses_at_ms && agent.addresses != addresses {
                agent.addresses_at_ms = ev.ts_ms;
                hot.addresses(agent_id, &addresses)?;
                agent.addresses = addresses;
            }
        }
        Some(Body::Alert(alert)) => {
            let key = (agent_id, alert.rule.clone(), alert.interface.clone());
            match alert.state {
                AlertState::Firing => {
                    // Fired again, unsilenced, when its silence ended: the
                    // same firing, now seen.
                    let open = cache.open_alerts.get(&key).copied();
                    if let Some((open, boot)) = open
                        && boot == boot_id
                        && !alert.silenced
                        && hot.unsilence(open)?
                    {
                        return Ok(true);
                    }
                    if let Some((open, _)) = cache.open_alerts.remove(&key) {
                        hot.close(open, at, None, None, "refired")?;
                    }
                    let id = hot.fire(agent_id, boot_id, alert, at)?;
                    cache.open_alerts.insert(key, (id, boot_id));
                }
                AlertState::Resolved => match cache.open_alerts.remove(&key) {
                    Some((open, _)) => {
                        hot.close(open, at, alert.value, Some(&alert.message), "agent")?;
                    }
                    None => hot.resolved_unfired(agent_id, boot_id, alert, at)?,
                },
            }
        }
        Some(Body::Link(_) | Body::Loss(_)) | None => {}
    }
    Ok(true)
}

/// The agent said nothing from `from` to `to`: its interfaces' time there is
/// unknown, and each resumes its last known state at `to`.
fn silence<S: Sink>(
    hot: &mut S,
    cache: &mut Cache,
    agent_id: i64,
    from: i64,
    to: i64,
) -> Result<(), S::Error> {
    let ifaces = cache.agent_row(agent_id).interfaces.clone();
    for iface in ifaces {
        let prior = cache.tails[&iface].seg.prior;
        cache.transition(hot, iface, from, State::Unknown)?;
        cache.transition(hot, iface, to, prior)?;
    }
    Ok(())
}

/// A new boot began: the alerts the agent's earlier boots left firing will
/// never be resolved by it, so they end here.
fn resolve_for_restart<S: Sink>(
    hot: &mut S,
    cache: &mut Cache,
    agent_id: i64,
    boot_id: i64,
    at: i64,
) -> Result<(), S::Error> {
    let stale: Vec<(i64, String, String)> = cache
        .open_alerts
        .iter()
        .filter(|(k, (_, b))| k.0 == agent_id && *b != boot_id)
        .map(|(k, _)| k.clone())
        .collect();
    for key in stale {
        if let Some((id, _)) = cache.open_alerts.remove(&key) {
            hot.close(id, at, None, Some("the agent restarted"), "restart")?;
        }
    }
    Ok(())
}
