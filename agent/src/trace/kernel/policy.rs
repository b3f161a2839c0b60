//! The multipath hash a namespace applies: its policy read from the
//! sysctls kept open, and in words. Read at most once per
//! [`REREAD_AFTER`], because no notification announces a change.

use super::super::hash::{self, HashInfo, HashedFlow};
use super::super::{LoadShare, TraceError};
use super::{Namespace, REREAD_AFTER};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// A family's multipath hash: the load share in words and the
/// `fib_multipath_hash_fields` mask policy 3 hashes.
pub(super) type Policy = (LoadShare, Option<u32>);

impl Namespace {
    /// A sysctl under `/proc/sys` of this namespace, opened afresh.
    pub(super) fn sysctl(&self, relative: &[&str]) -> Option<i64> {
        let mut path = self.proc_sys.clone();
        path.extend(relative);
        read_number(&File::open(path).ok()?)
    }

    /// The multipath hash in words, read from this namespace's sysctls at
    /// most once per [`REREAD_AFTER`].
    pub(super) fn load_share(&mut self, ipv4: bool, now: Instant) -> Option<LoadShare> {
        self.policy(ipv4, now).map(|(share, _)| share)
    }

    /// The policy and fields behind [`Namespace::load_share`].
    pub(super) fn policy(&mut self, ipv4: bool, now: Instant) -> Option<Policy> {
        let slot = usize::from(!ipv4);
        if let Some((read, policy)) = &self.load_shares[slot]
            && now.saturating_duration_since(*read) < REREAD_AFTER
        {
            return policy.clone();
        }
        let policy = self.read_policy(ipv4);
        self.load_shares[slot] = Some((now, policy.clone()));
        policy
    }

    /// The hash section for `flow`, and the check that a flow label given
    /// means something under the policy in force. When a real packet is
    /// hashed otherwise than this lookup, and why, is in [`super::hash`].
    pub(super) fn hash_info(
        &mut self,
        flow: HashedFlow,
        now: Instant,
    ) -> Result<Option<HashInfo>, TraceError> {
        let Some((share, fields)) = self.policy(flow.ipv4, now) else {
            return Ok(None);
        };
        if let Some(label) = flow.flowlabel
            && !hash::flowlabel_hashed(share.policy, fields)
        {
            return Err(TraceError::InvalidQuery(format!(
                "{} = {} ({}) does not hash the flow label, so --flowlabel {label} changes nothing; drop --flowlabel",
                share.setting, share.policy, share.mode
            )));
        }
        Ok(Some(hash::describe(flow, share.policy, fields)))
    }

    fn read_policy(&mut self, ipv4: bool) -> Option<Policy> {
        let family = if ipv4 { "ipv4" } else { "ipv6" };
        let slot = usize::from(!ipv4);
        if self.hash_policy[slot].is_none() {
            let path = self
                .proc_sys
                .join("net")
                .join(family)
                .join("fib_multipath_hash_policy");
            self.hash_policy[slot] = File::open(path).ok();
        }
        let policy = read_number(self.hash_policy[slot].as_ref()?)? as u32;
        // Policy 3 hashes the fields this mask names; read only then.
        let fields = (policy == 3)
            .then(|| self.sysctl(&["net", family, "fib_multipath_hash_fields"]))
            .flatten()
            .map(|f| f as u32);
        Some((
            LoadShare {
                setting: format!("net.{family}.fib_multipath_hash_policy"),
                policy,
                mode: hash_mode(ipv4, policy, fields),
            },
            fields,
        ))
    }
}

/// Reads a number from an open sysctl file; `pread` at 0 asks the kernel
/// for the current value each time.
fn read_number(file: &File) -> Option<i64> {
    let mut buffer = [0u8; 32];
    let size = file.read_at(&mut buffer, 0).ok()?;
    std::str::from_utf8(&buffer[..size])
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The multipath hash policy in words (see the kernel's ip-sysctl.rst).
pub fn hash_mode(ipv4: bool, policy: u32, fields: Option<u32>) -> String {
    let l3 = if ipv4 {
        "source and destination address"
    } else {
        "source and destination address, flow label, next header"
    };
    match policy {
        0 => format!("L3: {l3}"),
        1 => "L4: source and destination address, protocol, source and destination port".into(),
        2 => format!("L3, of the inner packet for tunnelled traffic: {l3}"),
        3 => {
            const FIELDS: [&str; 12] = [
                "source address",
                "destination address",
                "protocol",
                "flow label",
                "source port",
                "destination port",
                "inner source address",
                "inner destination address",
                "inner protocol",
                "inner flow label",
                "inner source port",
                "inner destination port",
            ];
            match fields {
                Some(mask) => {
                    let named: Vec<&str> = FIELDS
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| mask & (1 << bit) != 0)
                        .map(|(_, name)| *name)
                        .collect();
                    if named.is_empty() {
                        "custom: no fields (every flow hashes alike)".into()
                    } else {
                        format!("custom: {}", named.join(", "))
                    }
                }
                None => "custom fields (fib_multipath_hash_fields unreadable)".into(),
            }
        }
        other => format!("policy {other}, unknown to hopwatch"),
    }
}
