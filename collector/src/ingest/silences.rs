//! A connection's part in silences: the `silences` line written after the
//! welcome and again whenever the part of the collector's silences that
//! concerns its agent changes. Only for agents whose hello says protocol 3
//! or later; older ones are told nothing they could not read.

use crate::silences::{Board, Live, for_agent};
use hopwatch_wire::silence::Silence;
use hopwatch_wire::wire::CollectorMessage;
use std::sync::Arc;
use tokio::sync::watch;

/// The first protocol that reads `silences`.
pub(super) const SILENCES_PROTOCOL: u32 = 3;

/// What a session holds for silences.
pub(super) struct SilenceLine {
    agent: String,
    /// `None` for an older agent and once the connection is closing.
    watch: Option<watch::Receiver<Arc<Vec<Live>>>>,
    /// What this connection last sent, so an unrelated change sends nothing.
    sent: Option<Vec<Silence>>,
}

impl SilenceLine {
    pub(super) fn open(board: &Board, agent: &str, protocol: u32) -> SilenceLine {
        SilenceLine {
            agent: agent.to_string(),
            watch: (protocol >= SILENCES_PROTOCOL).then(|| board.subscribe()),
            sent: None,
        }
    }

    /// The `silences` line to write now (ending in `\n`): the first time
    /// always, later only when the agent's part has changed.
    pub(super) fn due(&mut self, now_ms: i64) -> Option<Vec<u8>> {
        let watch = self.watch.as_mut()?;
        let mine = for_agent(&watch.borrow_and_update(), &self.agent, now_ms);
        if self.sent.as_ref() == Some(&mine) {
            return None;
        }
        let mut line = serde_json::to_vec(&CollectorMessage::Silences {
            silences: mine.clone(),
        })
        .expect("silences always serialize");
        line.push(b'\n');
        self.sent = Some(mine);
        Some(line)
    }

    /// Waits until the silences change; never, for an older agent or once
    /// hung up.
    pub(super) async fn changed(&mut self) {
        match &mut self.watch {
            Some(watch) => {
                if watch.changed().await.is_err() {
                    // The board is gone: the collector is stopping.
                    self.watch = None;
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    pub(super) fn hang_up(&mut self) {
        self.watch = None;
    }
}
