//! The `procfs` counter source: `/proc/net/dev`.
