//! All paths: every ECMP member of every hop followed, as a bounded tree, and a source-port range spread over the paths.
