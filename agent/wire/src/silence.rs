//! Silences: an operator's "not now" for some alerts, bounded in time. They
//! are shared because both binaries hold them: the agent applies them (a
//! silenced alert still reaches the collector, marked, but not syslog), and
//! the collector keeps the fleet's and pushes each agent the ones that
//! concern it.

use serde::{Deserialize, Serialize};

/// One silence. Every silence ends: `ends_at` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique where it was made: `l-…` for one made on the agent, the
    /// collector's own id otherwise. Alerts it covers carry it.
    pub id: String,
    /// Interface glob, as in a rule's `interfaces` (`Eth1-*`).
    pub interface: String,
    /// Rule-name glob; none covers every rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Agent-name glob, used by the collector to choose the agents it pushes
    /// the silence to; none covers every agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// RFC 3339 with milliseconds, UTC: the silence covers alert changes
    /// at `starts_at <= t < ends_at`.
    pub starts_at: String,
    pub ends_at: String,
    /// Why, as the person who made it wrote it.
    pub reason: String,
    /// Who: the API token's name on the collector, the local user on the
    /// agent.
    pub author: String,
}
