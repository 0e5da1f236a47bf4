//! Every control-request decoder and the subject parser, on arbitrary bytes.
#![no_main]

use lattice_proto::ctl::{ConfigMap, HostLabel, HostLabelKey, StopHostCommand};
use lattice_proto::decode_request;
use lattice_proto::subject::CtlSubjects;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request::<HostLabel>(data, "label");
    let _ = decode_request::<HostLabelKey>(data, "label key");
    let _ = decode_request::<StopHostCommand>(data, "stop");
    let _ = decode_request::<ConfigMap>(data, "config");
    if let (Ok(subject), Ok(s)) = (std::str::from_utf8(data), CtlSubjects::new("default")) {
        let _ = s.parse(subject);
    }
});
