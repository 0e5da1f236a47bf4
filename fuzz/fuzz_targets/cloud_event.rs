//! Lattice events as a client receives them, on arbitrary bytes.
#![no_main]

use lattice_proto::event::{CloudEvent, HostHeartbeat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = serde_json::from_slice::<CloudEvent>(data) {
        let _ = ev.event_type();
        let _ = serde_json::from_value::<HostHeartbeat>(ev.data);
    }
});
