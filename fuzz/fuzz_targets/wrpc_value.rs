//! The wRPC value decoder and invocation-subject parser, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_wave::value::{Type, Value};

fuzz_target!(|data: &[u8]| {
    let types = [
        Type::STRING,
        Type::list(Type::record([("a", Type::U64), ("b", Type::option(Type::CHAR))]).unwrap()),
        Type::variant([("x", Some(Type::list(Type::S16))), ("y", None)]).unwrap(),
        Type::result(Some(Type::tuple(vec![Type::F64, Type::BOOL]).unwrap()), Some(Type::STRING)),
        Type::flags(["a", "b", "c", "d", "e", "f", "g", "h", "i"]).unwrap(),
    ];
    for t in &types {
        let _ = lattice_wrpc::decode_values::<Value>(std::slice::from_ref(t), data);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = lattice_wrpc::subject::parse_invocation("default.calc", s);
    }
});
