//! Forwarded HTTP requests and response heads (`lattice:http/incoming-handler`) on arbitrary
//! bytes: what one host accepts from another. A value that decodes must survive encoding
//! and decoding again (the bytes may differ: LEB128 lengths need not be minimal).
#![no_main]

use lattice_wrpc::http::{Request, ResponseHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(Request::decode(&out), Ok(r));
    }
    if let Ok(r) = ResponseHead::decode(data) {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(ResponseHead::decode(&out), Ok(r));
    }
});
