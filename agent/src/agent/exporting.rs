//! The loop's end of `[output.prometheus]`: the listener started with the
//! agent and on reload, and each tick published to it. Publishing copies
//! what the scrape will render, so a scrape needs nothing the loop holds.

use super::Agent;
use crate::exporter::{Exporter, PrometheusSettings, TickView};
use crate::source::Snapshot;

/// Starts the listener a config asks for. One that cannot bind is logged
/// and left out, as an output whose thread the OS refuses: the agent
/// samples and alerts on without it.
pub(super) fn start_exporter(settings: Option<&PrometheusSettings>) -> Option<Exporter> {
    let settings = settings?;
    match Exporter::start(settings) {
        Ok(exporter) => {
            tracing::info!(listen = %exporter.local_addr(), "Serving /metrics for Prometheus.");
            Some(exporter)
        }
        Err(error) => {
            tracing::error!(%error, "Prometheus exporter not started; the agent runs on without it.");
            None
        }
    }
}

impl Agent {
    /// Publishes the tick that just ended: `None` when the source failed,
    /// which leaves the interfaces out until it answers again.
    pub(super) fn publish(&mut self, snapshot: Option<&Snapshot>) {
        let Some(exporter) = self.exporter.as_mut() else {
            return;
        };
        let links = &self.links;
        let rows = snapshot.map_or(&[][..], |s| s.rows.as_slice());
        let view = TickView {
            source_up: snapshot.is_some(),
            took: self.stats.last_tick,
            skipped_ticks: self.stats.skipped_ticks,
            source_errors: self.stats.source_errors,
            engine: &self.engine,
            outputs: &self.outputs,
            collector: self.collector.as_ref(),
        };
        // The tick left in each hint where its row's link was found.
        let rows = rows.iter().zip(&self.link_hints).map(|(row, &hint)| {
            let mut hint = hint;
            let link = links.get_hinted(&row.name, &mut hint).or_else(|| {
                let netdev = crate::nxapi::linux_name(&row.name);
                (netdev != row.name).then(|| links.get(&netdev)).flatten()
            });
            (row, link)
        });
        exporter.publish(view, rows);
    }

    /// After a reload: a new listener when the address changed or the
    /// table came or went, else the same one with its token read anew.
    pub(super) fn reload_exporter(&mut self) {
        let wanted = self.config.prometheus.as_ref();
        match (self.exporter.as_mut(), wanted) {
            (Some(exporter), Some(settings)) if exporter.settings().listen == settings.listen => {
                if let Err(error) = exporter.reload_token(settings) {
                    tracing::error!(%error, "Prometheus exporter keeps its previous token.");
                }
            }
            _ => {
                // The old listener lets go of its port before the new binds.
                self.exporter = None;
                self.exporter = start_exporter(wanted);
            }
        }
    }
}
