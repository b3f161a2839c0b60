//! All paths: every ECMP member of every hop followed, as a bounded tree,
//! and a source-port range spread over the paths.
//!
//! Entry point:
//! `pub async fn all_paths<A: Asker, D: Directory>(asker: &A, directory: &D, spec: &FlowSpec, sports: Option<hopwatch_wire::trace::PortRange>, bounds: &TraceSettings) -> Result<PathTree, WalkError>`
