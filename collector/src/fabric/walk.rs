//! The single-path walk: one flow from switch to switch until it is
//! delivered, dropped or stopped; and the return flow with its asymmetry.
//!
//! Entry point (the API and the other walks call it):
//! `pub async fn trace<A: Asker, D: Directory>(asker: &A, directory: &D, spec: &FlowSpec, bounds: &TraceSettings, reverse: bool) -> Result<FabricTrace, WalkError>`
