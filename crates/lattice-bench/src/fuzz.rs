//! A stable-toolchain fuzz run of the network-facing decoders: mutated valid encodings and
//! random bytes through the wRPC value decoder, the forwarded-HTTP decoders, the
//! invocation-subject parser and the control-request decoders. Not coverage-guided (that is `fuzz/`, with cargo-fuzz on
//! nightly); it shows that many millions of hostile inputs cause no panic.

use std::time::Instant;

use lattice_proto::ctl::{ConfigMap, HostLabel, ScaleComponentCommand, StopHostCommand};
use rand::{Rng, SeedableRng};
use wasm_wave::value::{Type, Value};

pub fn run(execs: u64) -> anyhow::Result<()> {
    let types = [
        Type::STRING,
        Type::list(
            Type::record([("a", Type::U64), ("b", Type::option(Type::CHAR))]).expect("record"),
        ),
        Type::variant([("x", Some(Type::list(Type::S16))), ("y", None)]).expect("variant"),
        Type::result(
            Some(Type::tuple(vec![Type::F64, Type::BOOL]).expect("tuple")),
            Some(Type::STRING),
        ),
        Type::flags(["a", "b", "c", "d", "e", "f", "g", "h", "i"]).expect("flags"),
    ];
    let seeds: Vec<Vec<u8>> = [
        ("\"lattice\"", 0),
        (
            "[{a: 1, b: some('x')}, {a: 18446744073709551615, b: none}]",
            1,
        ),
        ("x([1, -2, 300])", 2),
        ("ok((1.5, true))", 3),
        ("{a, i}", 4),
    ]
    .iter()
    .map(|(wave, i)| {
        let v: Value = wasm_wave::from_str(&types[*i], wave).expect("seed value");
        let mut out = Vec::new();
        lattice_wrpc::encode(&types[*i], &v, &mut out).expect("seed encoding");
        out
    })
    .collect();
    let mut seeds = seeds;
    let mut http = Vec::new();
    lattice_wrpc::http::Request {
        method: "POST".into(),
        path_with_query: "/a?b".into(),
        scheme: Some("http".into()),
        authority: Some("localhost".into()),
        headers: vec![("x".into(), b"y".to_vec())],
        body: b"body".to_vec(),
        body_follows: false,
    }
    .encode(&mut http);
    seeds.push(http);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let started = Instant::now();
    let mut decoded = 0u64;
    for n in 0..execs {
        let input = mutate(&mut rng, &seeds[(n % seeds.len() as u64) as usize]);
        for t in &types {
            decoded += u64::from(
                lattice_wrpc::decode_values::<Value>(std::slice::from_ref(t), &input).is_ok(),
            );
        }
        if let Ok(s) = std::str::from_utf8(&input) {
            let _ = lattice_wrpc::subject::parse_invocation("default.calc", s);
        }
        let _ = lattice_wrpc::http::Request::decode(&input);
        let _ = lattice_wrpc::http::ResponseHead::decode(&input);
        let _ = lattice_proto::decode_request::<ScaleComponentCommand>(&input, "");
        let _ = lattice_proto::decode_request::<HostLabel>(&input, "");
        let _ = lattice_proto::decode_request::<StopHostCommand>(&input, "");
        let _ = lattice_proto::decode_request::<ConfigMap>(&input, "");
    }
    println!(
        "# lattice-bench fuzz\n\n{execs} inputs x {} decoders in {:.1?}: no panic ({decoded} inputs decoded as valid values)",
        types.len() + 7,
        started.elapsed()
    );
    Ok(())
}

fn mutate(rng: &mut impl Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    match rng.random_range(0..6) {
        0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        1 => {
            v.truncate(rng.random_range(0..=v.len()));
            v
        }
        _ => {
            for _ in 0..rng.random_range(1..4) {
                if v.is_empty() {
                    v.push(rng.random());
                    continue;
                }
                let i = rng.random_range(0..v.len());
                match rng.random_range(0..3) {
                    0 => v[i] ^= 1 << rng.random_range(0..8),
                    1 => v.insert(i, rng.random()),
                    _ => {
                        v.remove(i);
                    }
                }
            }
            v
        }
    }
}
