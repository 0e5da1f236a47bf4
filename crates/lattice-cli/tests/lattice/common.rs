//! Helpers shared by the tests: the binary under test, control clients, polling.

use std::process::{Command, Output};

use lattice_testkit::HostSpec;

/// The `lattice` binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_lattice");

/// A host spec for this test's binary.
pub fn host(nats_url: &str, lattice: &str) -> HostSpec {
    HostSpec::new(BIN, nats_url, lattice)
}

/// Runs the CLI with `args` against `nats_url`.
pub fn cli(nats_url: &str, lattice: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--nats-url", nats_url, "--lattice", lattice])
        .args(args)
        .env_remove("RUST_LOG")
        // Generous under a loaded parallel run; a test's own --timeout still wins.
        .env("LATTICE_TIMEOUT", "10s")
        .output()
        .expect("running the lattice CLI")
}

/// Stdout of a CLI run that must succeed.
pub fn cli_ok(nats_url: &str, lattice: &str, args: &[&str]) -> String {
    let out = cli(nats_url, lattice, args);
    assert!(
        out.status.success(),
        "lattice {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host process (file:// allowed) that has scaled each `(guest, id, count)`.
pub async fn host_running(
    nats_url: &str,
    components: &[(&str, &str, u32)],
) -> lattice_testkit::HostProcess {
    let ctl = ctl(nats_url, "default").await;
    let h = host(nats_url, "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    for (guest, id, count) in components {
        let ev = scale(&ctl, &h.id, &scale_cmd(&component_ref(guest), id, *count)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    h
}

pub use lattice_testkit::control::*;
pub use lattice_testkit::in_process::*;

/// Calls `func` of `interface` on component `id` of lattice `default` over wRPC, with s32
/// arguments and one s32 result: Ok(result) or the error's text.
pub async fn call_s32(
    client: &lattice_wrpc::transport::Client,
    id: &str,
    interface: &str,
    func: &str,
    args: &[i32],
) -> Result<i32, String> {
    use wasm_wave::value::{Type, Value};
    use wasm_wave::wasm::WasmValue;
    let types = vec![Type::S32; args.len()];
    let values: Vec<Value> = args.iter().map(|a| Value::make_s32(*a)).collect();
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&types, &values, &mut bytes).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let prefix = format!("default.{id}");
    let call = lattice_wrpc::transport::Call::new(&prefix, interface, func, bytes.into(), deadline);
    let out = client
        .invoke(call, |b| {
            lattice_wrpc::decode_values::<Value>(&[Type::S32], b)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(out[0].unwrap_s32())
}
