//! A received rtnetlink datagram, as the link watcher and vrf lookups read
//! it: the message walk, the link decoder and the vrf link info must refuse
//! what they cannot read, never panic, and never read past a length.
#![no_main]

use hopwatch::link::netlink::decode;
use hopwatch::netlink::{link, messages, vrf_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut read = 0;
    for message in messages(data) {
        let Ok(message) = message else {
            break;
        };
        read += 16 + message.payload.len();
        assert!(read <= data.len(), "a message ran past the datagram");
        if let Some((index, _name, _state)) = decode(message.payload) {
            assert_eq!(Some(index), link(message.payload).map(|l| l.index));
        }
        if let Some(link) = link(message.payload) {
            let _ = vrf_table(&link);
        }
    }
});
