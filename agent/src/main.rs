//! The `hopwatch` command.
fn main() {}
