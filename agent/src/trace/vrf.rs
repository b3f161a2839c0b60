//! VRFs: a query names one, and this finds where its routes live — a
//! network namespace in `/var/run/netns` (how NX-OS models VRFs), the
//! agent's own namespace for `default`, or an l3mdev VRF device whose table
//! the kernel reaches through the device (as `ip route get vrf NAME` does).
//!
//! A namespace is entered on a scoped thread that exists for the one query,
//! so the thread the caller runs on never changes namespace.

use super::TraceError;
use super::netlink::Conn;
use crate::netlink as nl;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Where the routes of a VRF are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// The caller's own namespace and its main routing rules.
    Home,
    /// Another network namespace, by the file that holds it.
    Namespace(PathBuf),
    /// An l3mdev VRF device in the caller's namespace: lookups go through
    /// the device, whose FIB rule sends them to its table.
    Device { ifindex: u32, table: Option<u32> },
}

/// Decides where `name` lives. A namespace of that name wins, then
/// `default` means home, then a vrf device; else the error lists what
/// exists.
pub(crate) fn locate(netns_dir: &Path, name: &str, home: &mut Conn) -> Result<Place, TraceError> {
    let path = netns_dir.join(name);
    if path.exists() {
        return Ok(Place::Namespace(path));
    }
    if name == super::DEFAULT_VRF {
        return Ok(Place::Home);
    }
    let sequence = home.queue_link_by_name(name);
    home.send()
        .map_err(|e| TraceError::netlink(format!("asking the kernel for link {name}"), e))?;
    let answer = home
        .answer_raw(sequence)
        .map_err(|e| TraceError::netlink(format!("reading link {name}"), e))?;
    if let Ok((nl::RTM_NEWLINK, payload)) = answer
        && let Some(link) = nl::link(payload)
        && let Some(table) = nl::vrf_table(&link)
    {
        return Ok(Place::Device {
            ifindex: link.index,
            table,
        });
    }
    Err(TraceError::UnknownVrf {
        name: name.to_string(),
        found: list(netns_dir, home),
    })
}

/// Every VRF a query could name: `default`, the namespaces, the vrf devices.
pub(crate) fn list(netns_dir: &Path, home: &mut Conn) -> Vec<String> {
    let mut found = vec![super::DEFAULT_VRF.to_string()];
    if let Ok(entries) = std::fs::read_dir(netns_dir) {
        for entry in entries.flatten() {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    let sequence = home.queue_link_dump();
    if home.send().is_ok() {
        let _ = home.dump_raw(sequence, |kind, payload| {
            if kind == nl::RTM_NEWLINK
                && let Some(link) = nl::link(payload)
                && nl::vrf_table(&link).is_some()
                && let Some(name) = nl::attribute(link.attributes, nl::IFLA_IFNAME)
            {
                found.push(format!("{} (vrf device)", nl::text(name)));
            }
        });
    }
    found.sort();
    found.dedup();
    found
}

/// Runs `work` on a thread that entered the namespace at `path`, so the
/// sockets and `/proc/sys` files it opens belong to that namespace. The
/// calling thread's namespace is untouched.
pub(crate) fn within<T: Send>(
    vrf: &str,
    path: &Path,
    work: impl FnOnce() -> Result<T, TraceError> + Send,
) -> Result<T, TraceError> {
    let enter_error = |source: io::Error| TraceError::EnterVrf {
        vrf: vrf.to_string(),
        path: path.display().to_string(),
        source,
    };
    let handle = File::open(path).map_err(enter_error)?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("trace-{vrf}"))
            .spawn_scoped(scope, move || {
                nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|errno| enter_error(io::Error::from(errno)))?;
                work()
            })
            .map_err(enter_error)?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
