//! The metrics a rule can name: every `/proc/net/dev` column, the CRC error
//! count the hardware keeps, and the link state and utilisation that hopwatch
//! derives. One enum, so a typo in a rule is a config error rather than a
//! silent zero.

use std::fmt;

/// The number of counter columns: the 16 of `/proc/net/dev` in file order,
/// then `rx_crc`.
pub const COUNTER_COLUMNS: usize = 17;

/// The columns `/proc/net/dev` has.
pub const PROC_NET_DEV_COLUMNS: usize = 16;

/// Whether a metric only ever grows (a counter) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

macro_rules! metrics {
    ($($variant:ident => $name:literal, $kind:ident;)*) => {
        /// A per-interface metric. The first [`COUNTER_COLUMNS`] variants are the
        /// counter columns (`/proc/net/dev`'s in file order, then `rx_crc`), so
        /// `metric as usize` indexes a counter row.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $($variant,)*
        }

        impl Metric {
            /// Every metric, in declaration order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The name used in rules and JSON.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }

            pub fn kind(self) -> Kind {
                match self {
                    $(Metric::$variant => Kind::$kind,)*
                }
            }
        }
    };
}

metrics! {
    RxBytes => "rx_bytes", Counter;
    RxPackets => "rx_packets", Counter;
    RxErrors => "rx_errors", Counter;
    RxDropped => "rx_dropped", Counter;
    RxFifo => "rx_fifo", Counter;
    RxFrame => "rx_frame", Counter;
    RxCompressed => "rx_compressed", Counter;
    RxMulticast => "rx_multicast", Counter;
    TxBytes => "tx_bytes", Counter;
    TxPackets => "tx_packets", Counter;
    TxErrors => "tx_errors", Counter;
    TxDropped => "tx_dropped", Counter;
    TxFifo => "tx_fifo", Counter;
    TxCollisions => "tx_collisions", Counter;
    TxCarrier => "tx_carrier", Counter;
    TxCompressed => "tx_compressed", Counter;
    RxCrc => "rx_crc", Counter;
    CarrierChanges => "carrier_changes", Counter;
    OperUp => "oper_up", Gauge;
    SpeedMbps => "speed_mbps", Gauge;
    RxUtil => "rx_util", Gauge;
    TxUtil => "tx_util", Gauge;
}

impl Metric {
    /// Looks a metric up by its rule name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// The counter column of this metric, if it is one.
    pub fn column(self) -> Option<usize> {
        let index = self as usize;
        (index < COUNTER_COLUMNS).then_some(index)
    }

    /// All metric names joined for error hints.
    pub fn names() -> String {
        Metric::ALL
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which counter columns a source supplied for one interface. A source
/// supplies what its platform counts: `/proc/net/dev` has no CRC column, and
/// NX-API reports no compressed packets. A metric whose column is missing is
/// unavailable for that interface, never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Columns(u32);

impl Columns {
    pub const NONE: Columns = Columns(0);
    pub const ALL: Columns = Columns((1 << COUNTER_COLUMNS) - 1);
    /// The sixteen columns of `/proc/net/dev`.
    pub const PROC_NET_DEV: Columns = Columns((1 << PROC_NET_DEV_COLUMNS) - 1);

    /// These columns and `metric`'s, if it is a counter column.
    pub const fn with(self, metric: Metric) -> Columns {
        let index = metric as usize;
        if index < COUNTER_COLUMNS {
            Columns(self.0 | 1 << index)
        } else {
            self
        }
    }

    pub const fn has(self, column: usize) -> bool {
        column < COUNTER_COLUMNS && self.0 & (1 << column) != 0
    }

    /// Whether `metric`'s value can be had from these columns; metrics that
    /// are not columns (link state, utilisation) are judged elsewhere.
    pub fn supplies(self, metric: Metric) -> bool {
        metric.column().is_none_or(|column| self.has(column))
    }

    /// The counter metrics these columns lack, in column order.
    pub fn missing(self) -> impl Iterator<Item = Metric> {
        Metric::ALL[..COUNTER_COLUMNS]
            .iter()
            .copied()
            .filter(move |m| !self.has(*m as usize))
    }
}

/// The increase of a counter between two readings, never negative or huge:
/// a counter below its previous reading either wrapped at 32 bits (drivers
/// that still keep 32-bit counters) or was reset to zero and counted `cur`
/// since.
pub fn counter_delta(prev: u64, cur: u64) -> u64 {
    if cur >= prev {
        return cur - prev;
    }
    const WRAP: u64 = 1 << 32;
    if prev < WRAP {
        let wrapped = cur + WRAP - prev;
        if wrapped < WRAP / 2 {
            return wrapped;
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_proc_net_dev_order() {
        assert_eq!(Metric::RxBytes.column(), Some(0));
        assert_eq!(Metric::RxMulticast.column(), Some(7));
        assert_eq!(Metric::TxBytes.column(), Some(8));
        assert_eq!(Metric::TxCompressed.column(), Some(15));
        assert_eq!(Metric::RxCrc.column(), Some(16));
        assert_eq!(Metric::CarrierChanges.column(), None);
    }

    #[test]
    fn names_round_trip() {
        for &m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        assert_eq!(Metric::from_name("tx_error"), None);
    }

    #[test]
    fn columns_say_what_a_source_supplies() {
        let procfs = Columns::PROC_NET_DEV;
        assert!(procfs.has(0) && procfs.has(15));
        assert!(!procfs.supplies(Metric::RxCrc));
        assert!(procfs.supplies(Metric::OperUp));
        assert_eq!(procfs.missing().collect::<Vec<_>>(), vec![Metric::RxCrc]);
        let some = Columns::NONE.with(Metric::RxBytes).with(Metric::RxCrc);
        assert!(some.has(0) && some.has(16) && !some.has(1));
        assert_eq!(Columns::NONE.with(Metric::OperUp), Columns::NONE);
    }

    #[test]
    fn deltas_survive_resets_and_wraps() {
        assert_eq!(counter_delta(10, 15), 5);
        assert_eq!(counter_delta(u64::MAX - 1, u64::MAX), 1);
        // 32-bit wrap: 4294967290 -> 4 is 10 more.
        assert_eq!(counter_delta(4_294_967_290, 4), 10);
        // Reset: a counter that restarted counts from zero.
        assert_eq!(counter_delta(1_000, 7), 7);
        assert_eq!(counter_delta(1 << 40, 3), 3);
        // A drop of 2^31 or more is no wrap but a reset.
        assert_eq!(counter_delta(1 << 31, 0), 0);
        assert_eq!(counter_delta(u64::MAX, 3), 3);
    }
}
