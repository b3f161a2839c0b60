//! The running agent: one loop that ticks the sampler, feeds the rule
//! engine, turns link changes into events as the kernel announces them, sends
//! heartbeats, answers `hopwatch status`, and reloads on SIGHUP. Outputs run
//! on their own threads, so nothing here waits on the network.

mod build;
mod cause;
mod exporting;
mod handover;
mod links;
mod pace;
mod plan;
mod sampler;
mod silences;
mod status;

use self::build::{build_classifier, build_outputs};
pub use self::build::{build_counters_source, build_source, new_trace_backend};
use self::cause::Causes;
use self::handover::Handover;
use self::pace::Pace;
use self::plan::{Plans, Restarts};
use self::sampler::{Sample, Sampler};
use self::silences::Silences;
use crate::config::{Config, LinkWatch};
use crate::control;
use crate::event::{self, Body, Sequencer};
use crate::link::netlink::LinkUpdate;
use crate::link::{LinkChange, LinkTable, LinkTracker};
use crate::output::OutputHandle;
use crate::output::collector::CollectorMonitor;
use crate::rule::{Engine, Observation};
use crate::source::{CounterSource, Snapshot};
use crate::state_dir::{LockError, StateLock};
use crate::timer::Ticker;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

/// How long SIGTERM waits for outputs to deliver what they hold.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long a reload waits for the old outputs, all together.
const RELOAD_GRACE: Duration = Duration::from_secs(1);
/// How long the first tick waits for the initial netlink link dump.
const DUMP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the sampler thread: {0}")]
    Sampler(#[source] std::io::Error),
    #[error(transparent)]
    StateDir(#[from] LockError),
}

/// Counts that `hopwatch status` reports.
#[derive(Debug, Default)]
struct Stats {
    ticks: u64,
    source_errors: u64,
    last_source_error: Option<String>,
    skipped_lines: u64,
    last_tick: Duration,
    max_tick: Duration,
    interfaces: usize,
    /// Ticks that came while the previous sample was still being read.
    skipped_ticks: u64,
    /// How long the source took to read, latest and longest.
    last_poll: Duration,
    max_poll: Duration,
}

struct Agent {
    config: Config,
    /// Held for the process's life: one agent per state_dir.
    lock: StateLock,
    path: Option<PathBuf>,
    seq: Sequencer,
    /// The counter source; `None` while the sampler thread holds it.
    source: Option<Box<dyn CounterSource>>,
    source_name: &'static str,
    source_reports_links: bool,
    /// Counts source replacements, so a sample still in flight when a
    /// reload built a new source brings the old one back only to drop it.
    source_generation: u64,
    sampler: Sampler,
    /// The interval the source is polled at, stretched while it is slow.
    pace: Pace,
    /// When the latest sample started: the next starts an interval later.
    last_start: Instant,
    engine: Engine,
    links: LinkTable,
    /// Where each snapshot row's link was found last tick.
    link_hints: Vec<usize>,
    tracker: LinkTracker,
    link_mode: LinkWatch,
    outputs: Vec<OutputHandle>,
    /// A reload's old outputs still closing; the new ones start after.
    handover: Option<Handover>,
    /// A SIGHUP that came during a handover, applied once it is over.
    reload_again: bool,
    /// The collector output's connection and spool, when it is on.
    collector: Option<CollectorMonitor>,
    /// Where the collector output reports the events it had to drop.
    loss_tx: mpsc::UnboundedSender<event::Loss>,
    started: Instant,
    stats: Stats,
    /// Reused between ticks so the steady state does not allocate.
    snapshot: Snapshot,
    /// The interface addresses heartbeats carry; `None` until read, and
    /// again after a change.
    addresses: Option<Vec<event::VrfAddresses>>,
    alerts: Vec<event::Alert>,
    changes: Vec<LinkChange>,
    /// Link events waiting for NX-OS to say why a port went down.
    causes: Causes,
    /// Where the sampler thread answers the questions `causes` asks.
    cause_tx: mpsc::UnboundedSender<cause::Answer>,
    /// Every alert change passes their gate on its way out.
    silences: Silences,
    /// Where the control socket and the collector output hand silences.
    silences_tx: mpsc::UnboundedSender<crate::silence::command::Input>,
    /// `/metrics`, when `[output.prometheus]` is on.
    exporter: Option<crate::exporter::Exporter>,
}

/// Runs the agent until `shutdown` completes or SIGTERM/SIGINT arrives.
/// `path` is the file SIGHUP reloads (none for the embedded config).
pub async fn run(
    config: Config,
    path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut hangup = signal(SignalKind::hangup()).map_err(AgentError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    tokio::pin!(shutdown);

    // Before anything touches the state directory: a second agent on it
    // would share the spool and replace the control socket.
    let lock = StateLock::acquire(&config.agent.state_dir)?;
    let (link_tx, mut link_rx) = mpsc::unbounded_channel();
    let (loss_tx, mut loss_rx) = mpsc::unbounded_channel();
    let (cause_tx, mut cause_rx) = mpsc::unbounded_channel();
    let (silences_tx, mut silences_rx) = mpsc::unbounded_channel();
    let (status_tx, mut status_rx) = mpsc::channel(4);
    let requests = control::Requests {
        status: status_tx,
        silences: silences_tx.clone(),
    };
    let mut agent = Agent::new(config, path, lock, &link_tx, loss_tx, cause_tx, silences_tx)?;
    let socket_path = agent.config.agent.state_dir.join(control::SOCKET_NAME);
    let _control = control::serve(&socket_path, requests);

    if agent.link_mode == LinkWatch::Netlink {
        agent.wait_for_dump(&mut link_rx).await;
    }
    tracing::info!(
        agent = %agent.config.agent.name,
        boot = %agent.seq.boot(),
        source = agent.source_name,
        link_watch = ?agent.link_mode,
        rules = agent.config.rules.len(),
        outputs = agent.outputs.len(),
        interval_ms = agent.pace.interval().as_millis() as u64,
        "Agent started."
    );
    agent.warn_interval();

    let mut ticker = Ticker::new(agent.pace.interval());
    let mut heartbeat = tokio::time::interval(agent.config.agent.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // The first tick, then at once the first heartbeat: it tells whoever
    // watches the stream what this agent sees before anything happens.
    ticker.tick().await;
    if let Some(sampling) = agent.start_sample(Instant::now())
        && agent.finish_sample(sampling.0, sampling.1.await)
    {
        ticker = agent.next_ticker();
    }
    heartbeat.tick().await;
    agent.heartbeat();

    // The sample in flight, if any: its generation and its answer.
    let mut sampling: Option<(u64, oneshot::Receiver<Sample>)> = None;
    loop {
        let held_until = agent.causes.next_deadline();
        let silence_ends = agent.silences.deadline();
        tokio::select! {
            _ = ticker.tick() => match sampling {
                // A tick never overlaps the previous one: the source is
                // still out, so this tick is skipped, as missed ones are.
                Some(_) => agent.skip_tick(),
                None => sampling = agent.start_sample(Instant::now()),
            },
            // Evaluated even when disabled, so the unwrap waits in the
            // async block, which only runs when a sample is in flight.
            sample = async { (&mut sampling.as_mut().expect("guarded by the condition").1).await }, if sampling.is_some() => {
                let (generation, _) = sampling.take().expect("guarded by the condition");
                if agent.finish_sample(generation, sample) {
                    // Polls are spaced by the new interval from now on,
                    // counted from the latest poll's start.
                    ticker = agent.next_ticker();
                }
            }
            Some(update) = link_rx.recv() => agent.link_update(update),
            Some(answer) = cause_rx.recv() => {
                agent.causes.answered(answer);
                agent.release_links();
            }
            _ = async { tokio::time::sleep_until(held_until.expect("guarded by the condition").into()).await }, if held_until.is_some() => agent.release_links(),
            // A loss is an event like any other: stamped, then sent to every
            // output, the collector's spool included.
            Some(loss) = loss_rx.recv() => agent.emit(Body::Loss(loss)),
            _ = heartbeat.tick() => match agent.handover.as_mut() {
                Some(handover) => handover.heartbeat = true,
                None => agent.heartbeat(),
            },
            Some(input) = silences_rx.recv() => agent.silence_input(input),
            _ = async { tokio::time::sleep_until(silence_ends.expect("guarded by the condition").into()).await }, if silence_ends.is_some() => agent.expire_silences(),
            Some(reply) = status_rx.recv() => match agent.handover.as_mut() {
                Some(handover) => handover.status.push(reply),
                None => {
                    let _ = reply.send(agent.status());
                }
            },
            _ = async { (&mut agent.handover.as_mut().expect("guarded by the condition").done).await }, if agent.handover.is_some() => {
                agent.finish_handover();
                if std::mem::take(&mut agent.reload_again) {
                    let restarts = agent.reload(&link_tx);
                    restart_timers(&agent, restarts, &mut ticker, &mut heartbeat).await;
                }
            }
            _ = hangup.recv() => {
                if agent.handover.is_some() {
                    agent.reload_again = true;
                    continue;
                }
                let restarts = agent.reload(&link_tx);
                restart_timers(&agent, restarts, &mut ticker, &mut heartbeat).await;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("Agent stopping; delivering queued events.");
    for (at, link) in agent.causes.flush() {
        agent.emit_at(at, Body::Link(link));
    }
    if let Some(handover) = agent.handover.as_mut() {
        let _ = (&mut handover.done).await;
        agent.finish_handover();
    }
    // The loop is over: nothing is left for this wait to hold up.
    OutputHandle::close_all(std::mem::take(&mut agent.outputs), EXIT_GRACE);
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}

/// Starts anew the timers whose plan a reload changed.
async fn restart_timers(
    agent: &Agent,
    restarts: Restarts,
    ticker: &mut Ticker,
    heartbeat: &mut tokio::time::Interval,
) {
    if restarts.ticker {
        *ticker = agent.next_ticker();
    }
    if restarts.heartbeat {
        *heartbeat = tokio::time::interval(agent.config.agent.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Skip);
        heartbeat.tick().await;
    }
}

impl Agent {
    fn new(
        config: Config,
        path: Option<PathBuf>,
        lock: StateLock,
        link_tx: &mpsc::UnboundedSender<LinkUpdate>,
        loss_tx: mpsc::UnboundedSender<event::Loss>,
        cause_tx: mpsc::UnboundedSender<cause::Answer>,
        silences_tx: mpsc::UnboundedSender<crate::silence::command::Input>,
    ) -> Result<Agent, AgentError> {
        let sampler = Sampler::start().map_err(AgentError::Sampler)?;
        let seq = Sequencer::new(config.agent.name.clone(), event::new_boot_id());
        let (outputs, collector) =
            build_outputs(&config, &seq, seq.last_seq() + 1, &loss_tx, &silences_tx);
        let source = build_source(&config.agent);
        let mut agent = Agent {
            lock,
            pace: Pace::new(config.agent.interval),
            last_start: Instant::now(),
            seq,
            source_name: source.name(),
            source_reports_links: source.reports_links(),
            source: Some(source),
            source_generation: 0,
            sampler,
            engine: Engine::new(config.rules.clone()),
            links: LinkTable::default(),
            link_hints: Vec::new(),
            tracker: LinkTracker::default(),
            link_mode: LinkWatch::Poll,
            outputs,
            handover: None,
            reload_again: false,
            collector,
            loss_tx,
            started: Instant::now(),
            stats: Stats::default(),
            snapshot: Snapshot::default(),
            addresses: None,
            alerts: Vec::new(),
            changes: Vec::new(),
            causes: Causes::new(None),
            cause_tx,
            silences: Silences::load(&config.agent.state_dir),
            silences_tx,
            exporter: exporting::start_exporter(config.prometheus.as_ref()),
            config,
            path,
        };
        agent
            .engine
            .set_classifier(build_classifier(&agent.config.agent));
        agent.start_link_watch(link_tx);
        agent.causes = Causes::new(cause::client_for(&agent.config.agent, agent.link_mode));
        Ok(agent)
    }

    /// Puts a freshly built source in place of the running one.
    fn replace_source(&mut self, source: Box<dyn CounterSource>) {
        self.source_name = source.name();
        self.source_reports_links = source.reports_links();
        self.source = Some(source);
        self.source_generation += 1;
    }

    fn emit(&mut self, body: Body) {
        self.emit_at(SystemTime::now(), body);
    }

    /// Emits an event that happened at `at`; an alert change first passes
    /// the silences' gate.
    fn emit_at(&mut self, at: SystemTime, mut body: Body) {
        if let Body::Alert(alert) = &mut body {
            let silences = &mut self.silences;
            silences.gate.mark(&silences.registry, alert, at);
        }
        let event = Arc::new(self.seq.stamp(at, body));
        if let Some(handover) = &mut self.handover {
            handover.held.push(event);
            return;
        }
        for output in &self.outputs {
            output.enqueue(Arc::clone(&event));
        }
    }

    fn emit_all(&mut self, events: impl IntoIterator<Item = Body>) {
        for body in events {
            self.emit(body);
        }
    }

    /// Starts one tick: hands the source to the sampler thread. `None`
    /// when the source is out already.
    fn start_sample(&mut self, now: Instant) -> Option<(u64, oneshot::Receiver<Sample>)> {
        let source = self.source.take()?;
        self.last_start = now;
        let snapshot = std::mem::take(&mut self.snapshot);
        Some((
            self.source_generation,
            self.sampler.sample(source, snapshot, now),
        ))
    }

    /// A tick that came while the previous sample was still being read.
    fn skip_tick(&mut self) {
        self.stats.skipped_ticks += 1;
        tracing::debug!(
            skipped = self.stats.skipped_ticks,
            "The previous sample is still being read; tick skipped."
        );
    }

    /// A ticker at the pace's interval whose first tick is one interval
    /// after the latest sample started (at once if that is past).
    fn next_ticker(&self) -> Ticker {
        let interval = self.pace.interval();
        let due = self.last_start + interval;
        Ticker::starting_in(due.saturating_duration_since(Instant::now()), interval)
    }

    /// Takes the sampler's answer back: the source returns to the loop
    /// (unless a reload replaced it meanwhile) and the tick finishes.
    /// Returns whether the poll's duration changed the interval.
    fn finish_sample(
        &mut self,
        generation: u64,
        sample: Result<Sample, oneshot::error::RecvError>,
    ) -> bool {
        let sample = match sample {
            Ok(sample) => sample,
            Err(_) => {
                // The thread died with the source; both are made anew.
                tracing::error!("The sampler thread stopped; starting it again.");
                match Sampler::start() {
                    Ok(sampler) => self.sampler = sampler,
                    Err(error) => tracing::error!(%error, "Cannot start the sampler thread."),
                }
                if generation == self.source_generation {
                    self.replace_source(build_source(&self.config.agent));
                }
                // A question queued on the dead thread is gone with it.
                self.causes
                    .unsent(cause::client_for(&self.config.agent, self.link_mode));
                return false;
            }
        };
        if generation != self.source_generation {
            // Read by the source a reload replaced: neither is wanted, and
            // its time says nothing about the new one.
            return false;
        }
        // `auto` on NX-OS settles on a source at its first answer (and
        // logs which and why).
        self.source_name = sample.source.name();
        self.source = Some(sample.source);
        self.stats.last_poll = sample.poll;
        self.stats.max_poll = self.stats.max_poll.max(sample.poll);
        let change = self.pace.observe(sample.poll, Instant::now());
        if let Some(change) = change {
            self.log_pace(change);
        }
        self.tick(sample.tick, sample.snapshot, sample.result);
        change.is_some()
    }

    /// Says so when the interval is one NX-OS should not be polled at.
    fn warn_interval(&self) {
        if let Some(warning) = self.config.agent.interval_warning() {
            tracing::warn!(
                interval_ms = self.config.agent.interval.as_millis() as u64,
                "{warning}."
            );
        }
    }

    /// One line per change of the polling interval.
    fn log_pace(&self, change: pace::Change) {
        let configured = self.pace.configured();
        let source = self.source_name;
        match change {
            pace::Change::Stretched { from, to, poll } => tracing::warn!(
                source,
                poll_ms = poll.as_millis() as u64,
                interval_ms = to.as_millis() as u64,
                configured_ms = configured.as_millis() as u64,
                "Counter source is slow: a poll took {}, more than 20% of the {} interval; polling every {} until polls are fast again.",
                pace::human(poll),
                pace::human(from),
                pace::human(to),
            ),
            pace::Change::Eased { from, to } => tracing::info!(
                source,
                interval_ms = to.as_millis() as u64,
                configured_ms = configured.as_millis() as u64,
                "Counter source is faster: polling every {} instead of {} (configured {}).",
                pace::human(to),
                pace::human(from),
                pace::human(configured),
            ),
            pace::Change::Restored { to, stretched } => tracing::info!(
                source,
                interval_ms = to.as_millis() as u64,
                "Counter source is fast again: polling at the configured {} after {} at a longer interval.",
                pace::human(to),
                pace::human(stretched),
            ),
        }
    }

    /// One sampling tick, on what the source read.
    fn tick(
        &mut self,
        now: Instant,
        mut snapshot: Snapshot,
        result: Result<(), crate::source::SourceError>,
    ) {
        let started = now;
        if let Err(error) = result {
            self.stats.source_errors += 1;
            let text = error.to_string();
            if self.stats.last_source_error.as_deref() != Some(text.as_str()) {
                tracing::warn!(%error, source = self.source_name, "Sampling failed; retrying next tick.");
            }
            self.stats.last_source_error = Some(text);
            self.publish(None);
            self.snapshot = snapshot;
            return;
        }
        if let Some(partial) = snapshot.partial.take() {
            // The rows are good; what is missing is unavailable, and the
            // operator is told why as for a failed tick.
            self.stats.source_errors += 1;
            if self.stats.last_source_error.as_deref() != Some(partial.as_str()) {
                tracing::warn!(error = %partial, source = self.source_name, "Sampling was partial; retrying next tick.");
            }
            self.stats.last_source_error = Some(partial);
        }
        if !snapshot.skipped.is_empty() {
            self.stats.skipped_lines += snapshot.skipped.len() as u64;
            tracing::debug!(skipped = ?snapshot.skipped, "Unreadable counter lines skipped.");
        }
        match self.link_mode {
            LinkWatch::Poll => self.poll_links(&snapshot),
            LinkWatch::Source => self.source_links(&snapshot),
            LinkWatch::Auto | LinkWatch::Netlink => {}
        }
        let links = &self.links;
        self.link_hints.resize(snapshot.rows.len(), 0);
        self.engine.observe(
            now,
            snapshot
                .rows
                .iter()
                .zip(&mut self.link_hints)
                .map(|(row, hint)| Observation {
                    name: &row.name,
                    counters: &row.counters,
                    columns: row.columns,
                    link: links.get_hinted(&row.name, hint).or_else(|| {
                        // NX-API's `Ethernet1/5` is the kernel's `Eth1-5`.
                        let netdev = crate::nxapi::linux_name(&row.name);
                        (netdev != row.name).then(|| links.get(&netdev)).flatten()
                    }),
                }),
            &mut self.alerts,
        );
        let alerts: Vec<event::Alert> = self.alerts.drain(..).collect();
        self.emit_all(alerts.into_iter().map(Body::Alert));
        self.stats.ticks += 1;
        self.stats.interfaces = snapshot.rows.len();
        self.stats.last_tick = started.elapsed();
        self.stats.max_tick = self.stats.max_tick.max(self.stats.last_tick);
        self.publish(Some(&snapshot));
        self.snapshot = snapshot;
    }

    /// The interface addresses, read again only after the kernel announced a
    /// change (with netlink) or at every heartbeat (without the netlink
    /// watcher, which announces them): a full address dump costs
    /// milliseconds on a switch with hundreds of ports.
    fn addresses(&mut self) -> &[event::VrfAddresses] {
        if matches!(self.link_mode, LinkWatch::Poll | LinkWatch::Source) {
            self.addresses = None;
        }
        self.addresses
            .get_or_insert_with(crate::addresses::vrf_addresses)
    }

    fn heartbeat(&mut self) {
        let nxos = self.config.agent.on_nxos();
        let mut interfaces: Vec<event::InterfaceStatus> = self
            .links
            .iter()
            .filter(|(name, _)| self.config.links.matches(name))
            .map(|(name, state)| event::InterfaceStatus {
                name: if nxos {
                    crate::nxapi::nxos_name(name)
                } else {
                    name.to_string()
                },
                state: event::LinkState::from_up(state.is_up()),
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        let queue_dropped: u64 = self
            .outputs
            .iter()
            .map(|o| o.stats().dropped.load(Ordering::Relaxed))
            .sum();
        let (spool_depth, spool_dropped) = self
            .collector
            .as_ref()
            .map_or((0, 0), |c| (c.spool_depth(), c.dropped()));
        let body = Body::Heartbeat(event::Heartbeat {
            uptime_s: self.started.elapsed().as_secs(),
            interfaces,
            addresses: self.addresses().to_vec(),
            spool_depth,
            events_dropped: queue_dropped + spool_dropped,
            firing: self.engine.firing().len() as u64,
        });
        self.emit(body);
    }

    /// Applies the config file anew, restarting the parts whose plan
    /// changed; returns them, for the timers `run` owns. A refused reload
    /// restarts nothing.
    fn reload(&mut self, link_tx: &mpsc::UnboundedSender<LinkUpdate>) -> Restarts {
        let Some(path) = self.path.clone() else {
            tracing::info!("SIGHUP: running on the embedded config; nothing to reload.");
            return Restarts::default();
        };
        let config = match Config::load(&path) {
            Ok(config) => config,
            Err(error) => {
                for line in error.to_string().lines() {
                    tracing::error!("{line}");
                }
                tracing::error!(path = %path.display(), "Reload refused; the running config stays.");
                return Restarts::default();
            }
        };
        let mut restarts = Plans::of(&self.config).restarts(&Plans::of(&config));
        if restarts.lock {
            match StateLock::acquire(&config.agent.state_dir) {
                // The old directory's lock goes with the old value.
                Ok(lock) => self.lock = lock,
                Err(error) => {
                    tracing::error!(%error, path = %path.display(), "Reload refused; the running config stays.");
                    return Restarts::default();
                }
            }
        }
        if restarts.rules {
            self.engine
                .reconfigure(config.rules.clone(), &mut self.alerts);
            let alerts: Vec<event::Alert> = self.alerts.drain(..).collect();
            self.emit_all(alerts.into_iter().map(Body::Alert));
        }
        if restarts.outputs {
            // The old outputs finish first: the new collector output opens
            // the same spool, which only one may hold.
            if let Some(collector) = &self.collector {
                collector.hand_over();
            }
            self.collector = None;
            self.handover = Some(Handover::start(
                std::mem::take(&mut self.outputs),
                RELOAD_GRACE,
                self.seq.last_seq() + 1,
            ));
        }
        // `auto` on NX-OS asks NX-API anew which source it serves.
        let probe = config.agent.resolved_source() == crate::config::SourceKind::Auto;
        if restarts.source || probe {
            self.replace_source(build_source(&config.agent));
        }
        self.engine.set_classifier(build_classifier(&config.agent));
        if restarts.source || probe || restarts.ticker {
            // A new source or interval starts unstretched; what the old one
            // measured says nothing about it.
            let before = self.pace.interval();
            self.pace = Pace::new(config.agent.interval);
            restarts.ticker |= self.pace.interval() != before;
        }
        self.seq.set_agent(config.agent.name.clone());
        crate::memory::set_limit(config.agent.memory_limit);
        let moved = config.agent.state_dir != self.config.agent.state_dir;
        self.config = config;
        if moved {
            self.silences_moved();
        }
        self.reload_exporter();
        self.watch_links_anew();
        self.start_link_watch(link_tx);
        self.causes
            .replace_client(cause::client_for(&self.config.agent, self.link_mode));
        tracing::info!(path = %path.display(), rules = self.config.rules.len(), "Config reloaded.");
        self.warn_interval();
        restarts
    }

    /// The old outputs are closed: the new ones start, and take the events
    /// that waited for them.
    fn finish_handover(&mut self) {
        let Some(handover) = self.handover.take() else {
            return;
        };
        let (outputs, collector) = build_outputs(
            &self.config,
            &self.seq,
            handover.first_seq,
            &self.loss_tx,
            &self.silences_tx,
        );
        self.outputs = outputs;
        self.collector = collector;
        for event in handover.held {
            for output in &self.outputs {
                output.enqueue(Arc::clone(&event));
            }
        }
        if handover.heartbeat {
            self.heartbeat();
        }
        for reply in handover.status {
            let _ = reply.send(self.status());
        }
    }
}
