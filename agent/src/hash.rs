//! Cheap ways to find an interface by name, which every tick does hundreds
//! of times: a map keyed by name with a cheap hasher, and a name kept in
//! place for recognising the interface seen at the same position last tick.

use rustc_hash::FxBuildHasher;
use std::collections::HashMap;

/// A map keyed by interface name, hashed with FxHash for the per-tick
/// lookups. Names are short and chosen by the switch's own administrator, so
/// SipHash's resistance to hash flooding buys nothing here, and its cost
/// showed in every tick.
pub type NameMap<V> = HashMap<String, V, FxBuildHasher>;

/// An interface name's length and first 16 bytes, kept in place next to what
/// it names. Interfaces come in the same order tick after tick, so the
/// question a tick asks most is "is this still the interface that was here
/// last time"; this answers it without reading the name's own allocation,
/// which a second's worth of other work has pushed out of the cache. Linux
/// names always fit (`IFNAMSIZ` is 16 bytes with the terminating NUL); for a
/// longer name the full texts are compared too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShortName {
    len: usize,
    head: u128,
}

impl ShortName {
    const HEAD: usize = 16;

    pub fn of(name: &str) -> ShortName {
        let bytes = name.as_bytes();
        let mut head = [0u8; Self::HEAD];
        let n = bytes.len().min(Self::HEAD);
        head[..n].copy_from_slice(&bytes[..n]);
        ShortName {
            len: bytes.len(),
            head: u128::from_le_bytes(head),
        }
    }

    /// Whether `name` is `full`, the name this was made from.
    pub fn is(&self, full: &str, name: &str) -> bool {
        *self == ShortName::of(name) && (self.len <= Self::HEAD || full == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_tell_names_apart() {
        let eth0 = ShortName::of("eth0");
        assert!(eth0.is("eth0", "eth0"));
        assert!(!eth0.is("eth0", "eth1"));
        assert!(!eth0.is("eth0", "eth00"));
        assert!(!eth0.is("eth0", "eth"));
        assert!(!eth0.is("eth0", ""));
        assert!(ShortName::of("").is("", ""));
        let long = "Ethernet101/1/48.100";
        let named = ShortName::of(long);
        assert!(named.is(long, long));
        // Same length and first 16 bytes, different tail.
        assert!(!named.is(long, "Ethernet101/1/48.200"));
        assert!(ShortName::of("vpeer249").is("vpeer249", "vpeer249"));
    }
}
