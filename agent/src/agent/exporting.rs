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

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::exporter::{Exporter, PrometheusSettings, TickView};
    use crate::link::LinkState;
    use crate::metric::COUNTER_COLUMNS;
    use crate::rule::{Engine, Observation};
    use crate::source::CounterRow;
    use std::time::{Duration, Instant};

    fn view(engine: &Engine, source_up: bool) -> TickView<'_> {
        TickView {
            source_up,
            took: Duration::from_micros(700),
            skipped_ticks: 0,
            source_errors: u64::from(!source_up),
            engine,
            outputs: &[],
            collector: None,
        }
    }

    #[test]
    fn evaluations_follow_the_globs_and_a_failed_read_leaves_interfaces_out() {
        let config = Config::parse(
            "[[rule]]\nname = \"eth\"\ninterfaces = [\"eth*\"]\nwhen = \"increase(tx_errors[5s]) > 3\"\n",
            "t.toml",
        )
        .unwrap();
        let mut engine = Engine::new(config.rules);
        let t0 = Instant::now();
        let observe = |engine: &mut Engine, s: u64, rows: &[CounterRow]| {
            let up = LinkState::default();
            let observations = rows.iter().map(|r| Observation {
                name: &r.name,
                counters: &r.counters,
                columns: r.columns,
                link: Some(&up),
            });
            engine.observe(t0 + Duration::from_secs(s), observations, &mut Vec::new());
        };
        let mut exporter = Exporter::start(&PrometheusSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: None,
        })
        .expect("an exporter on loopback");
        let up = LinkState::default();
        let rows = |names: &[&str]| -> Vec<CounterRow> {
            names
                .iter()
                .map(|n| CounterRow::proc_net_dev(*n, [7; COUNTER_COLUMNS]))
                .collect()
        };
        let three = rows(&["eth0", "eth1", "lo"]);
        observe(&mut engine, 0, &three);
        exporter.publish(view(&engine, true), three.iter().map(|r| (r, Some(&up))));
        let first = exporter.latest();
        assert_eq!(first.evaluations, vec![("eth".to_string(), 2)]);
        assert_eq!(first.interfaces.len(), 3);
        assert_eq!(first.interfaces[2].device, "lo");
        let two = rows(&["eth0", "lo"]);
        observe(&mut engine, 1, &two);
        exporter.publish(view(&engine, true), two.iter().map(|r| (r, Some(&up))));
        let second = exporter.latest();
        assert_eq!(second.evaluations, vec![("eth".to_string(), 3)]);
        assert_eq!(second.tick.count, 2);
        exporter.publish(view(&engine, false), std::iter::empty());
        let failed = exporter.latest();
        assert!(!failed.source_up && failed.interfaces.is_empty());
        assert_eq!(failed.evaluations, vec![("eth".to_string(), 3)]);
        assert_eq!(failed.tick.count, 2, "a failed read is no tick");
        assert_eq!(failed.source_errors, 1);
        assert_eq!(
            first.interfaces.len(),
            3,
            "a copy a scrape holds stays as it was"
        );
    }
}
