//! Stopping: a collector told to stop before its runtime has run its
//! listeners' tasks even once still stops, with nothing left waiting.

use crate::util::{TempDir, config_text};
use hopwatch_collector::Collector;
use hopwatch_collector::config::Config;
use std::time::Duration;

/// On a single-threaded runtime the accept loops are first polled only
/// after `run` has already sent its shutdown: they must still hear it.
#[test]
fn a_stop_before_the_listeners_ever_ran_still_stops() {
    let dir = TempDir::new("stop-at-once");
    let text = config_text(&dir.path, "", "");
    let config = Config::parse(&text, "test.toml").unwrap();
    let collector = Collector::build(config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stopped = runtime.block_on(async {
        let agents = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(20),
            collector.run(agents, http, std::future::ready(())),
        )
        .await
    });
    let result = stopped.expect("the collector never finished stopping");
    result.unwrap();
}
