//! The codec's wire forms, round trips, refusals and decoded-size budget.

use super::*;
use wasm_wave::value::{Type, Value};

fn ty(kind: WasmTypeKind) -> Type {
    Type::simple(kind).unwrap()
}

fn round_trip(t: &Type, wave: &str) -> Vec<u8> {
    let v: Value = wasm_wave::from_str(t, wave).unwrap();
    let mut out = Vec::new();
    encode(t, &v, &mut out).unwrap();
    let back: Vec<Value> = decode_values(std::slice::from_ref(t), &out).unwrap();
    assert_eq!(
        wasm_wave::to_string(&back[0]).unwrap(),
        wasm_wave::to_string(&v).unwrap()
    );
    // Every strict prefix is incomplete, never malformed and never a panic.
    for cut in 0..out.len() {
        assert_eq!(
            decode_values::<Value>(std::slice::from_ref(t), &out[..cut]).unwrap_err(),
            DecodeError::Incomplete,
            "{wave} cut at {cut}"
        );
    }
    out
}

#[test]
fn decoded_size_is_bounded_not_just_wire_size() {
    // A list<u8> that is small on the wire takes a value per byte decoded.
    let bytes = Type::list(ty(WasmTypeKind::U8));
    let n = MAX_DECODED_BYTES / std::mem::size_of::<Value>() + 1;
    let mut big = Vec::new();
    crate::leb::write_unsigned(&mut big, n as u64);
    big.resize(big.len() + n, 1);
    let e = decode_values::<Value>(std::slice::from_ref(&bytes), &big).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
    // What fits is measured: a list<u8> of 1,000 bytes takes a value per byte.
    let mut wire = Vec::new();
    crate::leb::write_unsigned(&mut wire, 1000);
    wire.extend([7u8; 1000]);
    let (_, spent) =
        decode_values_within::<Value>(std::slice::from_ref(&bytes), &wire, 1 << 20).unwrap();
    assert!(spent >= 1000 * std::mem::size_of::<Value>(), "{spent}");
    let e = decode_values_within::<Value>(std::slice::from_ref(&bytes), &wire, spent - 1);
    assert!(matches!(e, Err(DecodeError::TooLarge { .. })), "{e:?}");
}

#[test]
fn scalars_have_their_wire_form() {
    use WasmTypeKind as K;
    assert_eq!(round_trip(&ty(K::Bool), "true"), [1]);
    assert_eq!(round_trip(&ty(K::S8), "-1"), [0xff]);
    assert_eq!(round_trip(&ty(K::U8), "200"), [200]);
    assert_eq!(round_trip(&ty(K::S32), "-1"), [0x7f]);
    assert_eq!(
        round_trip(&ty(K::S32), "-2147483648"),
        [0x80, 0x80, 0x80, 0x80, 0x78]
    );
    assert_eq!(round_trip(&ty(K::U32), "300"), [0xac, 0x02]);
    assert_eq!(round_trip(&ty(K::U64), "18446744073709551615").len(), 10);
    assert_eq!(round_trip(&ty(K::F32), "1.5"), 1.5f32.to_le_bytes());
    assert_eq!(round_trip(&ty(K::F64), "-2.25"), (-2.25f64).to_le_bytes());
    assert_eq!(round_trip(&ty(K::Char), "'☃'"), "☃".as_bytes());
    assert_eq!(round_trip(&ty(K::String), "\"hi\""), [2, b'h', b'i']);
}

#[test]
fn compound_types_round_trip() {
    use WasmTypeKind as K;
    let list = Type::list(ty(K::U16));
    assert_eq!(round_trip(&list, "[1, 2, 300]"), [3, 1, 2, 0xac, 0x02]);
    let rec = Type::record([("name", ty(K::String)), ("age", ty(K::U8))]).unwrap();
    assert_eq!(round_trip(&rec, "{name: \"a\", age: 7}"), [1, b'a', 7]);
    let tup = Type::tuple(vec![ty(K::Bool), ty(K::S64)]).unwrap();
    round_trip(&tup, "(false, -5)");
    let var = Type::variant([("none-here", None), ("num", Some(ty(K::U32)))]).unwrap();
    assert_eq!(round_trip(&var, "num(5)"), [1, 5]);
    assert_eq!(round_trip(&var, "none-here"), [0]);
    let en = Type::enum_ty(["red", "green", "blue"]).unwrap();
    assert_eq!(round_trip(&en, "blue"), [2]);
    let opt = Type::option(ty(K::String));
    assert_eq!(round_trip(&opt, "none"), [0]);
    assert_eq!(round_trip(&opt, "some(\"x\")"), [1, 1, b'x']);
    let res = Type::result(Some(ty(K::U8)), Some(ty(K::String)));
    assert_eq!(round_trip(&res, "ok(3)"), [0, 3]);
    assert_eq!(round_trip(&res, "err(\"no\")"), [1, 2, b'n', b'o']);
    let bare = Type::result(None, None);
    assert_eq!(round_trip(&bare, "ok"), [0]);
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let flags = Type::flags(names.iter().map(String::as_str)).unwrap();
    assert_eq!(round_trip(&flags, "{f0, f9}"), [0x01, 0x02]);
    let nested = Type::list(Type::option(rec.clone()));
    round_trip(&nested, "[some({name: \"n\", age: 1}), none]");
}

#[test]
fn malformed_bytes_are_refused() {
    use WasmTypeKind as K;
    let bad = |t: &Type, bytes: &[u8]| {
        matches!(
            decode_values::<Value>(std::slice::from_ref(t), bytes),
            Err(DecodeError::Invalid(_))
        )
    };
    assert!(bad(&ty(K::Bool), &[2]));
    assert!(bad(&ty(K::String), &[1, 0xff]));
    assert!(bad(&ty(K::Char), &[0xff]));
    assert!(bad(&Type::option(ty(K::U8)), &[7]));
    assert!(bad(&Type::enum_ty(["a"]).unwrap(), &[1]));
    assert!(bad(&ty(K::U8), &[1, 2]), "trailing bytes");
    // A huge length prefix with no bytes behind it is just incomplete: no allocation.
    assert_eq!(
        decode_values::<Value>(&[ty(K::String)], &[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err(),
        DecodeError::Incomplete
    );
}

#[test]
fn mismatched_values_are_refused_not_panicked() {
    use WasmTypeKind as K;
    let v: Value = wasm_wave::from_str(&ty(K::String), "\"x\"").unwrap();
    let mut out = Vec::new();
    assert!(encode(&ty(K::U32), &v, &mut out).is_err());
}

#[test]
fn garbage_never_panics() {
    use WasmTypeKind as K;
    let types = [
        Type::list(Type::record([("a", ty(K::String)), ("b", ty(K::F64))]).unwrap()),
        Type::variant([("x", Some(ty(K::Char))), ("y", None)]).unwrap(),
        Type::result(Some(Type::list(ty(K::S16))), Some(ty(K::U64))),
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for len in 0..3000usize {
        let bytes: Vec<u8> = (0..len % 61)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for t in &types {
            let _ = decode_values::<Value>(std::slice::from_ref(t), &bytes);
        }
    }
}
