//! The `syslog` output.
