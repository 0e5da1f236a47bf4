//! HTTP between hosts on arbitrary bytes: Lattice's forwarded requests and response heads
//! (`lattice:http/incoming-handler`), and wasmCloud's `wrpc:http` requests, outcomes and
//! nested body chunks, which upstream peers send. A value that decodes must survive encoding
//! and decoding again (the bytes may differ: LEB128 lengths need not be minimal).
#![no_main]

use lattice_wrpc::http::{Request, ResponseHead};
use lattice_wrpc::wrpc_http;
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
    if let Ok(r) = wrpc_http::Request::decode(data) {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(wrpc_http::Request::decode(&out), Ok(r));
    }
    let _ = wrpc_http::decode_outcome(data);
    // Body chunks cut at any point decode to the same bytes as whole.
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut whole = wrpc_http::ByteChunks::default();
    let mut split = wrpc_http::ByteChunks::default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let one = whole.push(data, &mut a);
    let two = split
        .push(&data[..cut], &mut b)
        .and_then(|()| split.push(&data[cut..], &mut b));
    if one.is_ok() && two.is_ok() {
        assert_eq!(a.concat(), b.concat());
        assert_eq!(whole.is_done(), split.is_done());
    }
});
