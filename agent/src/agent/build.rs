//! Building what a config asks for: the outputs, the counter source and
//! the trace backend, at start and again on reload.

use crate::config::{AgentSettings, Config, SourceKind, TraceBackendKind};
use crate::event::{self, Sequencer};
use crate::link::kind::Classifier;
use crate::output::collector::{self, CollectorMonitor};
use crate::output::stdout::StdoutOutput;
use crate::output::syslog::SyslogOutput;
use crate::output::{Output, OutputHandle};
use crate::silence::command::Input;
use crate::source::CounterSource;
use crate::source::dme::DmeSource;
use crate::source::nxapi::{CountersSource, NxapiSource};
use crate::source::nxos_auto::NxosAuto;
use crate::source::procfs::ProcfsSource;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events an output may hold while it cannot deliver.
const OUTPUT_QUEUE: usize = 10_000;

/// How the rules learn an interface's link kind: NX-OS sources name their
/// ports as NX-OS does, and its kernel netdevs do not say what a port is;
/// elsewhere sysfs does.
pub(super) fn build_classifier(settings: &AgentSettings) -> Classifier {
    if settings.on_nxos() {
        Classifier::Names
    } else {
        Classifier::Sysfs(settings.sys_root.clone())
    }
}

/// Builds the outputs a config asks for; the collector output's monitor
/// comes with them when it is on, expecting `first_seq` first.
pub(super) fn build_outputs(
    config: &Config,
    seq: &Sequencer,
    first_seq: u64,
    loss_tx: &mpsc::UnboundedSender<event::Loss>,
    silences_tx: &mpsc::UnboundedSender<Input>,
) -> (Vec<OutputHandle>, Option<CollectorMonitor>) {
    let mut outputs = Vec::new();
    let mut monitor = None;
    if let Some(stdout) = &config.stdout {
        let output: Box<dyn Output> = Box::new(StdoutOutput::new(
            std::io::LineWriter::new(std::io::stdout()),
            stdout.types.clone(),
        ));
        outputs.extend(start_output(output));
    }
    if let Some(syslog) = &config.syslog {
        let output: Box<dyn Output> = Box::new(SyslogOutput::new(syslog.clone()));
        outputs.extend(start_output(output));
    }
    if let Some(settings) = &config.collector {
        let loss_tx = loss_tx.clone();
        let silences_tx = silences_tx.clone();
        let context = collector::Context {
            agent: config.agent.name.clone(),
            boot: seq.boot().to_string(),
            first_seq,
            state_dir: config.agent.state_dir.clone(),
            on_loss: Arc::new(move |loss| {
                let _ = loss_tx.send(loss);
            }),
            trace_backend: new_trace_backend(&config.agent),
            on_silences: Arc::new(move |set| {
                let _ = silences_tx.send(Input::Collector(set));
            }),
        };
        match collector::spawn(settings.clone(), context, OUTPUT_QUEUE) {
            Ok((handle, m)) => {
                outputs.push(handle);
                monitor = Some(m);
            }
            Err(error) => {
                tracing::error!(%error, "Cannot start the collector output; events will not reach the collector.");
            }
        }
    }
    (outputs, monitor)
}

/// Starts one output's thread. An output the OS refuses a thread is left
/// out, as a collector output that cannot start is: the agent keeps
/// running and sampling, and the log says which output is missing.
fn start_output(output: Box<dyn Output>) -> Option<OutputHandle> {
    let name = output.name().to_string();
    OutputHandle::spawn(output, OUTPUT_QUEUE)
        .inspect_err(|error| {
            tracing::error!(output = %name, %error, "Cannot start the output; events will not reach it.");
        })
        .ok()
}

/// The counter source the config names, `auto` resolved as far as it can
/// be without asking NX-API.
pub fn build_source(settings: &AgentSettings) -> Box<dyn CounterSource> {
    let (socket, user, timeout) = (
        &settings.nxapi_socket,
        &settings.nxapi_user,
        nxapi_timeout(settings.interval),
    );
    match settings.resolved_source() {
        SourceKind::Procfs => Box::new(ProcfsSource::new(&settings.proc_root)),
        SourceKind::Nxapi => Box::new(CountersSource::new(socket, user, timeout)),
        SourceKind::Dme => Box::new(DmeSource::new(socket, user, timeout)),
        SourceKind::Auto => Box::new(NxosAuto::new(socket, user, timeout)),
    }
}

/// The source `hopwatch counters` reads: on NX-OS the full `show
/// interface`, which brings each port's link and speed with its counters;
/// asked once or at the person's pace, so its weight does not matter.
/// (`auto` resolves to itself only where NX-API's socket exists.)
pub fn build_counters_source(settings: &AgentSettings) -> Box<dyn CounterSource> {
    match settings.resolved_source() {
        SourceKind::Nxapi | SourceKind::Auto => Box::new(NxapiSource::new(
            &settings.nxapi_socket,
            &settings.nxapi_user,
            nxapi_timeout(settings.interval),
        )),
        _ => build_source(settings),
    }
}

/// The trace backend the config names, `auto` resolved, made anew for each
/// request the collector sends.
pub fn new_trace_backend(settings: &AgentSettings) -> collector::NewBackend {
    let (kind, socket, user) = (
        settings.resolved_trace_backend(),
        settings.nxapi_socket.clone(),
        settings.nxapi_user.clone(),
    );
    Arc::new(move || -> Box<dyn crate::trace::Backend> {
        match kind {
            TraceBackendKind::Nxapi => Box::new(crate::trace::NxapiBackend::new(&socket, &user)),
            TraceBackendKind::Auto | TraceBackendKind::Kernel => {
                Box::new(crate::trace::KernelBackend::new())
            }
        }
    })
}

/// How long one NX-API poll may take: a tick's worth, within 1 to 10 s. A
/// poll that runs out loses its tick; the next tick asks again.
fn nxapi_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(10))
}
