//! `hopwatch-collector`: the head-end daemon that stores the fleet's events.
//! Until ingest and storage land it only reports its version and the event
//! schema version it speaks.

use clap::Parser;

#[derive(Parser)]
#[command(name = "hopwatch-collector", version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
    println!(
        "hopwatch-collector {} (event schema v{}); ingest and storage are not built yet",
        env!("CARGO_PKG_VERSION"),
        hopwatch::event::SCHEMA_VERSION
    );
}
