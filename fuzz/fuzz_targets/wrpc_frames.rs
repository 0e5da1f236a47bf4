//! The wRPC frame path on arbitrary bytes: a stream cut into messages at fuzzer-chosen points
//! and reassembled, plus every header a peer can send (error, trace context).
#![no_main]

use lattice_wrpc::frames::{Frames, Progress};
use libfuzzer_sys::fuzz_target;
use wasm_wave::value::{Type, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, data)) = data.split_first() else {
        return;
    };
    let types = [Type::list(Type::STRING), Type::option(Type::U32)];
    let decode = |b: &[u8]| lattice_wrpc::decode_values::<Value>(&types, b);
    let step = usize::from(cuts % 16) + 1;
    let mut chunks = data.chunks(step);
    let mut frames = Frames::new("fuzz", chunks.next().unwrap_or_default(), 4096);
    loop {
        match frames.decode(decode) {
            Ok(Progress::Done(_)) | Err(_) => break,
            Ok(Progress::More) => {}
        }
        // Running out of chunks ends the stream with an empty message, as a peer does.
        if frames.push(chunks.next().unwrap_or_default()).is_err() {
            break;
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = lattice_wrpc::CallError::from_header(s);
        let _ = lattice_wrpc::trace::TraceParent::parse(s);
    }
});
