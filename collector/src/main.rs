//! `hopwatch-collector`: the head-end daemon for the fleet's events. This
//! release reports its version and the event schema version it speaks.

use clap::Parser;

#[derive(Parser)]
#[command(name = "hopwatch-collector", version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
    println!(
        "hopwatch-collector {} (event schema v{})",
        env!("CARGO_PKG_VERSION"),
        hopwatch::event::SCHEMA_VERSION
    );
}
