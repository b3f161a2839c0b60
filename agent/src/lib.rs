//! hopwatch: an on-switch agent that samples interface counters every tick,
//! evaluates threshold-over-window rules and reports alerts and link changes.
//!
//! The library holds everything but argument parsing, so tests drive the
//! agent through [`agent::run`]. The events, the protocol and the syslog
//! sender come from the `hopwatch-wire` crate, which the collector shares.
//!
//! # Concurrency
//!
//! Three models, each where the I/O it waits on calls for it. The rule is
//! that the agent's loop never waits on the network or on a disk, and that
//! no lock is held across I/O that can block for long.
//!
//! - **One tokio current-thread loop** ([`agent::run`], started by `main`)
//!   owns what waits on time or on local messages: the tick
//!   ([`timer::Ticker`], a `timerfd`), heartbeats, signals (SIGHUP reload,
//!   SIGTERM/SIGINT), the control socket ([`control::serve`]: an accept
//!   task and one task per request) and the channels through which the
//!   threads below report (link updates, losses, status requests). One
//!   thread because all it runs is short and CPU-bound; the agent's state
//!   (rule engine, link table, sequencer) belongs to the loop and is never
//!   locked. The loop does not read the counter source itself: each tick
//!   hands the source to the sampler thread (below) and finishes when it
//!   comes back, so an NX-API poll that waits out its timeout (one
//!   interval, 1 to 10 s) holds up no signal, status request or link
//!   update. A tick that comes while the source is still out is skipped,
//!   as a missed one is: ticks never overlap. The sampler times each read,
//!   and a slow source stretches the tick's period (`agent::pace`) rather
//!   than being asked as often while it struggles.
//! - **A thread per output, fed through a bounded queue**
//!   ([`output::OutputHandle`]: a `Mutex`ed deque and a `Condvar`), because
//!   an output's I/O blocks: the syslog sender writes to blocking sockets,
//!   stdout may be a pipe nobody reads, the spool writes and syncs files.
//!   Enqueueing never blocks (when the queue is full the oldest event is
//!   dropped and counted), so the loop never waits on an output. A retry
//!   waits on the queue's condvar for the delay [`output::backoff`] gives,
//!   so closing the output wakes it at once; closing waits for the thread
//!   on a channel the thread drops as it returns, with a deadline. Reload
//!   and shutdown close every output first and then wait for them all
//!   under one deadline ([`output::OutputHandle::close_all`]: 1 s for a
//!   reload, 5 s at exit), so outputs that hang cost it once. A reload
//!   waits on a thread of its own, as the new collector output may open
//!   the spool only once the old one let go of it; meanwhile the loop ticks
//!   on, and the events, status requests and heartbeat that concern the
//!   outputs wait for the new ones. At exit the loop is over, and the
//!   wait runs where it ended.
//!   An output whose thread the OS refuses (a pids limit, say) is left out
//!   with an error in the log, as a collector output that cannot open its
//!   spool is: the agent keeps sampling and the other outputs deliver.
//! - **The collector output's session is a `poll(2)` loop** on a thread of
//!   its own ([`output::collector`]), beside the spool writer that is the
//!   output's queue worker. The session must read acknowledgements and
//!   write events at the same time, and one TLS connection (a rustls
//!   `ClientConnection`) cannot be split between a reader thread and a
//!   writer thread; a non-blocking socket polled together with a wake-up
//!   socketpair serves both directions from one thread, without a second
//!   runtime. The spool writer and the trace threads write a byte to that
//!   socketpair to say "new events", "a trace answer" or "stop". The two
//!   threads share the spool under a mutex held only for page-cache writes
//!   and bookkeeping: the device sync runs outside it, and status and
//!   heartbeats read copies, never that lock.
//!
//! Blocking work that must not stall either loop gets a thread of its own:
//! the sampler (for the agent's life), which takes the counter source and
//! the reused snapshot from the loop over a channel and sends them back
//! with the sample, so the loop owns both between ticks and nothing is
//! locked (a procfs read takes about half a millisecond; one path for both
//! sources keeps ticks alike); each trace request from the collector
//! (short-lived, at most four at once), since a trace backend blocks on
//! netlink or NX-API; and the netlink link watcher ([`link::netlink`], for
//! the agent's life), a blocking socket the kernel pushes to, which hands
//! updates to the loop over an unbounded channel so the kernel's socket is
//! always drained. A trace into a VRF runs on a scoped thread that entered
//! the VRF's network namespace, so the caller's namespace never changes.
//! The sampler is started with the agent, and an OS that refuses it fails
//! the start with an error saying so.
//! The one-shot commands (`trace`, `paths`, `counters`, `status`) are plain
//! blocking code on the main thread, without a runtime.

pub use hopwatch_wire::{event, matcher, text, wire};

pub mod addresses;
pub mod agent;
pub mod config;
pub mod control;
pub mod counters;
pub mod exporter;
pub mod hash;
pub mod host;
pub mod link;
pub mod memory;
pub mod metric;
pub mod netlink;
pub mod nxapi;
pub mod output;
pub mod rule;
pub mod silence;
pub mod source;
pub mod state_dir;
pub mod timer;
pub mod trace;
