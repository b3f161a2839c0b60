//! Which collectors share the PostgreSQL store, and which agent each one
//! holds: a collector writes its `collectors` row at start and refreshes it
//! every [`REFRESH`], and marks `agents.held_by` while an agent's session
//! is on it, so any collector can tell whom to ask for a trace through that
//! agent. A row not refreshed for [`STALE`] is a collector that died: what
//! it held counts for nothing, and whoever the agent reaches next takes it.
//!
//! Holding is decided by session start: an agent that moves from A to B is
//! held by B from B's hello on, and A's older session, still open until A
//! notices the socket died, neither takes it back nor clears B's mark.

use super::super::StoreError;
use std::time::Duration;
use tokio_postgres::Client;

/// How often a collector refreshes its row and its holdings.
pub const REFRESH: Duration = Duration::from_secs(2);

/// How long a collector's row may go unrefreshed before its holdings are
/// void: a few missed refreshes, so one slow round trip does not void them.
pub const STALE: Duration = Duration::from_secs(10);

/// The prefix of the channel each collector listens on for relayed trace
/// questions and answers.
const CHANNEL_PREFIX: &str = "hopwatch_relay_";

/// A collector's name in the store: its host name and a random part drawn
/// at start, so two collectors on one host (or one restarted) are told
/// apart and a restarted one never inherits a dead one's holdings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub host: String,
}

impl Identity {
    /// A fresh identity on this host.
    pub fn generate() -> Identity {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let mut random = [0u8; 8];
        // The system's random source failing leaves the time as the random
        // part: unique enough between collectors started apart.
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
            random = (super::super::millis(std::time::SystemTime::now()) as u64).to_be_bytes();
        }
        Identity::from_parts(&host, u64::from_be_bytes(random))
    }

    /// The identity of `host` with random part `random`.
    pub fn from_parts(host: &str, random: u64) -> Identity {
        let host = if host.is_empty() { "collector" } else { host };
        Identity {
            id: format!("{host}-{random:016x}"),
            host: host.to_string(),
        }
    }

    /// The channel this collector listens on.
    pub fn channel(&self) -> String {
        channel(&self.id).expect("an identity always has a random part")
    }
}

/// The channel of the collector named `id`: the prefix and the id's random
/// part, lower-case hex, so it is a plain identifier well within
/// PostgreSQL's 63 bytes whatever the host is called. None for an id no
/// collector would have.
pub fn channel(id: &str) -> Option<String> {
    let (_, random) = id.rsplit_once('-')?;
    (random.len() == 16
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then(|| format!("{CHANNEL_PREFIX}{random}"))
}

/// What a collector says of itself in its row, for people reading it.
#[derive(Debug, Clone)]
pub struct Listens {
    pub agents: String,
    pub http: String,
}

/// Writes (or writes again) this collector's row.
pub async fn register(
    client: &Client,
    me: &Identity,
    listens: &Listens,
    now_ms: i64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO collectors (id, host, agents_listen, http_listen, version, started_ms, last_seen_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
            &[
                &me.id,
                &me.host,
                &listens.agents,
                &listens.http,
                &env!("CARGO_PKG_VERSION"),
                &now_ms,
            ],
        )
        .await?;
    Ok(())
}

/// Refreshes this collector's row; false when it is gone (deleted by hand,
/// or swept), so the caller writes it again.
pub async fn refresh(client: &Client, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE collectors SET last_seen_ms = $2 WHERE id = $1",
            &[&id, &now_ms],
        )
        .await?;
    Ok(n > 0)
}

/// Whether marking an agent held took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It is held by this collector now.
    Held,
    /// A live collector holds a newer session of it.
    Elsewhere,
    /// The store has no such agent yet (its hello is still on its way to
    /// the writer): try again.
    Unknown,
}

/// Marks `agent` held by `id` for a session that began at `since_ms`,
/// unless a live collector holds a session of it that began later.
pub async fn hold(
    client: &Client,
    id: &str,
    agent: &str,
    since_ms: i64,
    now_ms: i64,
) -> Result<Hold, StoreError> {
    let live_after = now_ms - STALE.as_millis() as i64;
    // One statement, so whether the row exists and whether the mark took
    // are seen in the same snapshot: a row the writer creates between two
    // statements would read as held elsewhere.
    let row = client
        .query_one(
            "WITH found AS (SELECT 1 FROM agents WHERE name = $2),
                  marked AS (
                    UPDATE agents SET held_by = $1, held_since_ms = $3
                    WHERE name = $2
                      AND (held_by IS NULL OR held_by = $1 OR held_since_ms IS NULL
                           OR held_since_ms <= $3
                           OR held_by NOT IN (SELECT id FROM collectors WHERE last_seen_ms >= $4))
                    RETURNING 1)
             SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM marked)",
            &[&id, &agent, &since_ms, &live_after],
        )
        .await?;
    let (found, marked): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(match (found, marked) {
        (_, 1..) => Hold::Held,
        (0, _) => Hold::Unknown,
        _ => Hold::Elsewhere,
    })
}

/// Clears `agent`'s mark if it is still `id`'s: a newer session on another
/// collector keeps its own.
pub async fn release(client: &Client, id: &str, agent: &str) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE agents SET held_by = NULL, held_since_ms = NULL
             WHERE name = $2 AND held_by = $1",
            &[&id, &agent],
        )
        .await?;
    Ok(n > 0)
}

/// The agents the store says `id` holds.
pub async fn held(client: &Client, id: &str) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT name FROM agents WHERE held_by = $1 ORDER BY name",
            &[&id],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(StoreError::from))
        .collect()
}

/// A clean stop: the holdings cleared and the row removed, so the others
/// stop relaying to this collector at once rather than after [`STALE`].
pub async fn leave(client: &Client, id: &str) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE agents SET held_by = NULL, held_since_ms = NULL WHERE held_by = $1",
            &[&id],
        )
        .await?;
    client
        .execute("DELETE FROM collectors WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

/// The live collector holding `agent` now, if any.
pub async fn holder(
    client: &Client,
    agent: &str,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    let live_after = now_ms - STALE.as_millis() as i64;
    let row = client
        .query_opt(
            "SELECT a.held_by FROM agents a JOIN collectors c ON c.id = a.held_by
             WHERE a.name = $1 AND c.last_seen_ms >= $2",
            &[&agent, &live_after],
        )
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// Every agent with a digest of its stored addresses, so a collector reads
/// again only the reports that changed.
pub async fn address_digests(client: &Client) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query("SELECT name, md5(addresses) FROM agents", &[])
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The stored addresses (JSON) of `agents`.
pub async fn addresses(
    client: &Client,
    agents: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT name, addresses FROM agents WHERE name = ANY($1)",
            &[&agents],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_names_its_host_and_listens_on_a_plain_channel() {
        let me = Identity::from_parts("leaf-collector.example.net", 0x0123_4567_89ab_cdef);
        assert_eq!(me.id, "leaf-collector.example.net-0123456789abcdef");
        assert_eq!(me.channel(), "hopwatch_relay_0123456789abcdef");
        assert!(me.channel().len() <= 63);
        assert_eq!(Identity::from_parts("", 1).id, "collector-0000000000000001");
        assert_eq!(channel("host-xyz"), None);
        assert_eq!(channel("host-0123456789ABCDEF"), None);
        assert_eq!(channel("nohyphen"), None);
        assert_ne!(Identity::generate().id, Identity::generate().id);
    }
}
