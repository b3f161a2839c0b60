//! A cheap hasher for maps keyed by interface name, which every tick looks
//! up hundreds of times.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by interface name.
pub type NameMap<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// Hashes interface names for the per-tick lookups. Names are short and
/// chosen by the switch's own administrator, so SipHash's resistance to
/// hash flooding buys nothing here, and its cost showed in every tick.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

impl NameHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
