//! Who owns which address: the interface addresses each agent reports per
//! VRF in its `hello` and heartbeats, kept current as they change.

use super::{Directory, Owner};
use std::net::IpAddr;

/// The fleet's addresses, shared by ingest (which updates it) and traces.
#[derive(Debug, Default)]
pub struct Owners {}

impl Owners {
    pub fn new() -> Owners {
        Owners::default()
    }
}

impl Directory for Owners {
    fn owner(&self, _vrf: &str, _address: IpAddr) -> Option<Owner> {
        None
    }

    fn attached(&self, _vrf: &str, _address: IpAddr) -> Vec<Owner> {
        Vec::new()
    }

    fn agents(&self) -> Vec<String> {
        Vec::new()
    }
}
