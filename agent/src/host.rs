//! The machine's own name, read by the config (the default agent name) and
//! by traces (the switch that answered), so it lives below both.

/// The machine's hostname; `localhost` when it has none or it is not UTF-8.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
