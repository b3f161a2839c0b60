//! The agent caps its own memory, because the NX-OS bash shell puts no limit
//! on it and a switch's supervisor shares its memory with the agent.
//!
//! # Mechanism
//!
//! The binary's global allocator is [`CountingAlloc`]: the system allocator
//! plus one relaxed atomic add per allocation and one subtract per free, so
//! the agent always knows the heap bytes it holds. Two thresholds act on
//! that count:
//!
//! - **`memory_limit`** (`[agent]`, default [`DEFAULT_LIMIT`]), checked once a
//!   second by [`watch`] on the agent's loop: over it, the agent logs one
//!   ERROR line naming the limit, the use and the fix, then stops as on
//!   SIGTERM — every output delivers or spools what it holds, the collector
//!   output's spool on disk keeps every event — and then [`restart`]s: the
//!   process executes its own binary afresh, same pid and arguments, so the
//!   heap starts anew even where nothing restarts a service (the NX-OS bash
//!   shell's init scripts do not). Over the limit again within
//!   [`RESTART_SPACING`] of that, it exits with status 3 instead, for
//!   systemd (`Restart=on-failure`) or the operator. A slow leak or a grown
//!   window ends in an orderly restart, never a silent death.
//! - **The hard cap**, [`hard_cap`] of the limit (the limit plus as much
//!   again, at least [`HEADROOM`] more): an allocation past it is refused.
//!   The allocator first writes one line to stderr (the log) without
//!   allocating, then returns null, and Rust aborts the process. Only a
//!   burst within one second can get there (one huge reply, say); the
//!   headroom is what the orderly stop above may spend.
//!
//! Why not the kernel's limits: `RLIMIT_AS` counts address space, not memory
//! (the mapped binary, every thread's reserved stack), so a limit on it is
//! either loose or hit by a thread start; `RLIMIT_DATA` counts `mmap`ed heap
//! only from Linux 4.7: on an older kernel (which each NX-OS release runs
//! was not checked) it limits `brk` alone, and musl's large allocations
//! escape it. Either fails an allocation with no word in the log. A cgroup
//! is the switch's to set, not the agent's. RSS per tick was the other
//! candidate: it costs a read of `/proc/self/statm` each second and counts
//! pages the agent does not control (its own binary's text), so a limit on
//! it would move with the kernel's paging, while the heap count is exact
//! and free to read.
//!
//! Cost, measured with `cargo bench --bench tick` (501 interfaces, 20 rules,
//! 2,000 ticks per measure), two runs with each allocator taking turns on a
//! loaded 2-core machine: a tick (read, parse, rules) took a median
//! 0.540–0.568 ms with the system allocator and 0.557–0.561 ms with this
//! one, 1.03–1.05× and 0.99–1.02× the bare read of `/proc/net/dev` in the
//! same runs: no difference above the noise, as a tick reuses its buffers
//! and allocates little. The static binary grew by 25 KB with all of
//! `memory_limit` (3,741,800 to 3,766,504 bytes), 16 KB of it the allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// `memory_limit` when the config sets none: about 24 times the heap the
/// agent held watching 501 interfaces with 20 rules, a syslog and a
/// collector output, windows full (2.65 MiB; 5.7 MiB RSS, the static musl
/// build), so only a fault reaches it.
pub const DEFAULT_LIMIT: u64 = 64 << 20;

/// The least `memory_limit` a config may set, a guard against a unit left
/// out: the smallest agent (one interface on fixture roots, no netlink)
/// holds about 170 KiB, one watching a host's links over netlink 400 KiB.
pub const MIN_LIMIT: u64 = 64 << 10;

/// The least room between `memory_limit` and the hard cap, for the orderly
/// stop to deliver what the outputs hold.
pub const HEADROOM: usize = 16 << 20;

/// The exit status of an agent stopped at its `memory_limit`.
pub const EXIT_STATUS: u8 = 3;

/// The least time between two restarts for `memory_limit`: a limit too low
/// for the agent's work stops it rather than restart it in a loop.
pub const RESTART_SPACING: Duration = Duration::from_secs(3600);

/// When the agent last restarted itself for `memory_limit` (Unix seconds),
/// handed to the new image in its environment.
pub const RESTART_ENV: &str = "HOPWATCH_MEMORY_RESTART";

/// Heap accounting: the bytes held, and the two thresholds.
pub struct Accounting {
    in_use: AtomicUsize,
    limit: AtomicUsize,
    hard: AtomicUsize,
    refused: AtomicBool,
}

/// What an over-limit check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Over {
    pub in_use: usize,
    pub limit: usize,
}

impl Accounting {
    /// No limit until [`Accounting::set_limit`].
    pub const fn new() -> Accounting {
        Accounting {
            in_use: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
            hard: AtomicUsize::new(usize::MAX),
            refused: AtomicBool::new(false),
        }
    }

    pub fn set_limit(&self, limit: u64) {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.limit.store(limit, Ordering::Relaxed);
        self.hard.store(hard_cap(limit), Ordering::Relaxed);
    }

    pub fn limit(&self) -> Option<usize> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != usize::MAX)
    }

    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Counts `size` more bytes, unless that would pass the hard cap: then
    /// nothing is counted and the caller must refuse the allocation.
    /// Returns the bytes in use that the allocation would have made, as
    /// `Err`, for the refusal's message.
    pub fn reserve(&self, size: usize) -> Result<(), usize> {
        let after = self
            .in_use
            .fetch_add(size, Ordering::Relaxed)
            .saturating_add(size);
        if after > self.hard.load(Ordering::Relaxed) {
            self.in_use.fetch_sub(size, Ordering::Relaxed);
            return Err(after);
        }
        Ok(())
    }

    pub fn release(&self, size: usize) {
        self.in_use.fetch_sub(size, Ordering::Relaxed);
    }

    /// Whether the heap is over `memory_limit` (not the hard cap).
    pub fn over(&self) -> Option<Over> {
        let (in_use, limit) = (self.in_use(), self.limit.load(Ordering::Relaxed));
        (in_use > limit).then_some(Over { in_use, limit })
    }

    /// True the first time only: one refusal line, however many follow.
    fn first_refusal(&self) -> bool {
        !self.refused.swap(true, Ordering::Relaxed)
    }
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting::new()
    }
}

/// The hard cap for a limit: twice the limit, and at least [`HEADROOM`]
/// above it.
pub fn hard_cap(limit: usize) -> usize {
    limit.saturating_add(limit.max(HEADROOM))
}

/// The process's accounting, kept by [`CountingAlloc`].
static HEAP: Accounting = Accounting::new();
/// Set when [`watch`] found the heap over the limit.
static EXCEEDED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counted in [`HEAP`]. The `hopwatch` binary installs
/// it with `#[global_allocator]`; without it (the library's tests) nothing
/// is counted and no limit acts.
pub struct CountingAlloc;

// The project's one `unsafe`: a global allocator cannot be written without
// it, and no allocator crate logs before it refuses. The methods stay out of
// line: inlined at every allocation site under LTO, they grew the static
// binary by 128 KB; out of line, by 16 KB, for one call more per allocation.
// SAFETY: every call is passed to `System` unchanged; only the count and a
// refusal (a null return, which the contract allows) are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Err(after) = HEAP.reserve(layout.size()) {
            refuse(layout.size(), after);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            HEAP.release(layout.size());
        }
        ptr
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Err(after) = HEAP.reserve(layout.size()) {
            refuse(layout.size(), after);
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            HEAP.release(layout.size());
        }
        ptr
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's pointer and layout, from this allocator.
        unsafe { System.dealloc(ptr, layout) };
        HEAP.release(layout.size());
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old
            && let Err(after) = HEAP.reserve(new_size - old)
        {
            refuse(new_size - old, after);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's pointer, layout and size, as
        // `GlobalAlloc::realloc` requires.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        match (new.is_null(), new_size > old) {
            // Failed: the old block stands, and what was reserved goes back.
            (true, true) => HEAP.release(new_size - old),
            (true, false) => {}
            (false, true) => {}
            (false, false) => HEAP.release(old - new_size),
        }
        new
    }
}

/// Says once, on stderr and without allocating, why an allocation is
/// refused; Rust aborts the process when the null comes back.
#[cold]
#[inline(never)]
fn refuse(size: usize, after: usize) {
    if !HEAP.first_refusal() {
        return;
    }
    let mut line = StackLine::default();
    let _ = std::fmt::Write::write_fmt(
        &mut line,
        format_args!(
            "ERROR hopwatch::memory: The heap would grow to {after} bytes (an allocation of {size}), past the hard cap of {} bytes (twice memory_limit = {} bytes, at least 16 MiB above it); aborting. Raise memory_limit under [agent] in the config if the agent needs this much.\n",
            HEAP.hard.load(Ordering::Relaxed),
            HEAP.limit.load(Ordering::Relaxed),
        ),
    );
    // Straight to the descriptor: `Stderr`'s lock is not taken, so nothing
    // here allocates.
    let _ = nix::unistd::write(
        std::os::fd::AsFd::as_fd(&std::io::stderr()),
        line.as_bytes(),
    );
}

/// A line formatted on the stack: the refusal cannot allocate.
struct StackLine {
    buf: [u8; 512],
    len: usize,
}

impl Default for StackLine {
    fn default() -> Self {
        StackLine {
            buf: [0; 512],
            len: 0,
        }
    }
}

impl StackLine {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackLine {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // Cut, never fail: a cut line is still a line.
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Sets the process's `memory_limit` (at start and at every reload).
pub fn set_limit(limit: u64) {
    HEAP.set_limit(limit);
}

/// The heap bytes the process holds, when [`CountingAlloc`] counts them.
pub fn heap_bytes() -> Option<usize> {
    Some(HEAP.in_use()).filter(|&n| n > 0)
}

/// The `memory_limit` in force, if one is set.
pub fn limit() -> Option<usize> {
    HEAP.limit()
}

/// Whether [`watch`] stopped the agent.
pub fn exceeded() -> bool {
    EXCEEDED.load(Ordering::Relaxed)
}

/// Completes when the heap is over `memory_limit`, after logging why; the
/// agent's shutdown future. Checks every `period`.
pub async fn watch(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Some(over) = HEAP.over() {
            EXCEEDED.store(true, Ordering::Relaxed);
            // In KiB, as `hopwatch status` shows them.
            tracing::error!(
                memory_limit_kib = over.limit / 1024,
                heap_kib = over.in_use / 1024,
                rss_kib = crate::control::rss_kib().unwrap_or(0),
                "The agent's heap is over memory_limit; stopping, with queued events delivered or spooled first. Raise memory_limit under [agent] in the config if this use is expected."
            );
            return;
        }
    }
}

/// After an orderly stop at `memory_limit`: executes this binary afresh
/// (same pid, arguments and environment, plus [`RESTART_ENV`]), unless it
/// did so less than [`RESTART_SPACING`] ago. Returns only when it does not
/// restart, with the exit status to leave with.
pub fn restart() -> std::process::ExitCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = std::env::var(RESTART_ENV)
        .ok()
        .and_then(|t| t.parse::<u64>().ok());
    if !may_restart(last, now) {
        tracing::error!(
            restarted_s_ago = now.saturating_sub(last.unwrap_or(now)),
            "Over memory_limit again within an hour of restarting for it; exiting with status 3. Raise memory_limit under [agent] in the config."
        );
        return std::process::ExitCode::from(EXIT_STATUS);
    }
    tracing::warn!(
        pid = std::process::id(),
        "Restarting the agent afresh for memory_limit (at most once an hour)."
    );
    let error = exec_self(now);
    tracing::error!(%error, "Could not restart the agent; exiting with status 3.");
    std::process::ExitCode::from(EXIT_STATUS)
}

/// Executes this process's own image with its arguments and environment,
/// [`RESTART_ENV`] set to `now`; returns only on failure. `execve` itself
/// rather than `Command::exec`, which added 25 KB to the static binary.
fn exec_self(now: u64) -> nix::Error {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstring = |bytes: &[u8]| CString::new(bytes).ok();
    let args: Option<Vec<CString>> = std::env::args_os().map(|a| cstring(a.as_bytes())).collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != RESTART_ENV)
        .filter_map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect();
    env.extend(cstring(format!("{RESTART_ENV}={now}").as_bytes()));
    let Some(args) = args else {
        return nix::Error::EINVAL;
    };
    // The kernel's link to this process's own image: the binary it runs even
    // if an upgrade has replaced the file meanwhile. Every descriptor the
    // agent opens is close-on-exec (Rust's default, and the flags it gives
    // its timerfd and netlink sockets), so the new image starts with stdin,
    // stdout and stderr only.
    match nix::unistd::execve(c"/proc/self/exe", &args, &env) {
        Err(error) => error,
        Ok(never) => match never {},
    }
}

/// Whether a restart for `memory_limit` at `now` is allowed after the last
/// one at `last` (Unix seconds).
fn may_restart(last: Option<u64>, now: u64) -> bool {
    last.is_none_or(|last| now.saturating_sub(last) >= RESTART_SPACING.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_held_and_refuses_past_the_hard_cap_only() {
        let heap = Accounting::new();
        assert_eq!(heap.limit(), None);
        // No limit: anything is counted, nothing refused.
        assert_eq!(heap.reserve(1 << 30), Ok(()));
        heap.release(1 << 30);
        assert_eq!(heap.in_use(), 0);

        heap.set_limit(1 << 20);
        assert_eq!(heap.limit(), Some(1 << 20));
        let hard = hard_cap(1 << 20);
        assert_eq!(hard, (1 << 20) + HEADROOM);
        assert_eq!(heap.reserve(1000), Ok(()));
        assert_eq!(heap.reserve(24), Ok(()));
        assert_eq!(heap.in_use(), 1024);
        heap.release(24);
        assert_eq!(heap.in_use(), 1000);
        assert_eq!(heap.over(), None);

        // Over the limit: reported, still allowed (the orderly stop needs
        // room).
        assert_eq!(heap.reserve(1 << 20), Ok(()));
        assert_eq!(
            heap.over(),
            Some(Over {
                in_use: 1000 + (1 << 20),
                limit: 1 << 20
            })
        );
        // Up to the hard cap exactly, and not a byte past it; a refusal
        // counts nothing.
        let room = hard - heap.in_use();
        assert_eq!(heap.reserve(room + 1), Err(hard + 1));
        assert_eq!(heap.in_use(), 1000 + (1 << 20));
        assert_eq!(heap.reserve(room), Ok(()));
        assert_eq!(heap.in_use(), hard);
        assert_eq!(heap.reserve(1), Err(hard + 1));

        // A larger limit (a reload) lifts both thresholds.
        heap.set_limit(64 << 20);
        assert_eq!(heap.reserve(1), Ok(()));
        assert_eq!(heap.over(), None);
    }

    #[test]
    fn the_hard_cap_is_twice_the_limit_and_at_least_the_headroom_above() {
        assert_eq!(hard_cap(1 << 20), (1 << 20) + HEADROOM);
        assert_eq!(hard_cap(64 << 20), 128 << 20);
        assert_eq!(hard_cap(usize::MAX), usize::MAX);
        assert_eq!(hard_cap(usize::MAX / 2 + 1), usize::MAX);
    }

    #[test]
    fn a_restart_comes_at_most_once_an_hour() {
        assert!(may_restart(None, 1_000_000));
        assert!(!may_restart(Some(1_000_000), 1_000_000));
        assert!(!may_restart(Some(1_000_000), 1_003_599));
        assert!(may_restart(Some(1_000_000), 1_003_600));
        // A clock set back counts as no time passed.
        assert!(!may_restart(Some(1_000_000), 999_000));
    }

    #[test]
    fn one_refusal_line_however_many_refusals() {
        let heap = Accounting::new();
        assert!(heap.first_refusal());
        assert!(!heap.first_refusal());
        assert!(!heap.first_refusal());
    }

    #[test]
    fn the_refusal_line_is_cut_not_lost_when_too_long() {
        use std::fmt::Write;
        let mut line = StackLine::default();
        write!(line, "{}", "x".repeat(600)).unwrap();
        assert_eq!(line.as_bytes().len(), 512);
        let mut line = StackLine::default();
        write!(line, "limit {} bytes", 1usize << 20).unwrap();
        assert_eq!(line.as_bytes(), b"limit 1048576 bytes");
    }
}
