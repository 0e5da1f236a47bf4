//! Wire compatibility with the last upstream wRPC NATS transport (`wrpc-transport-nats` 0.31),
//! built from `interop/` (its own workspace and lock file): their client calls our host, and
//! our client calls their server; and Lattice's HTTP ingress forwarding to a component on a
//! wasmCloud v1 host (the peer serving `wrpc:http` with the crates of wasmCloud v1's era).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use lattice_testkit::{ChildProcess, NatsServer};
use lattice_wrpc::transport;
use wasm_wave::value::{Type, Value};

use crate::common::*;

/// The peer binary: `$LATTICE_INTEROP_BIN` (scripts/test builds it), else built here into
/// `interop/target` (its own target dir, so no lock is shared with this test run).
fn peer() -> PathBuf {
    if let Some(p) = std::env::var_os("LATTICE_INTEROP_BIN") {
        return p.into();
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo build for the interop peer");
    assert!(status.success(), "building the interop peer failed");
    dir.join("target/debug/lattice-interop-peer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_wrpc_client_and_server_interoperate_with_lattice() {
    let peer = peer();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let _h = host_running(&url, &[("calc", "calc", 2)]).await;

    // Their client -> our host.
    for _ in 0..3 {
        let out = Command::new(&peer)
            .args(["invoke", &url, "default.calc"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "add=42 reverse=poretni"
        );
    }

    // Our client -> their server.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&peer);
    cmd.args(["serve", &url, "default.upstream"]);
    let mut server =
        ChildProcess::spawn("interop peer", cmd, &dir.path().join("peer.log")).unwrap();
    server
        .wait_for_log("serving", Duration::from_secs(20))
        .unwrap();
    let client = transport::Client::new(ctl.nats().clone());
    let echo = "lattice:interop/echo@0.1.0";
    let call = |func: &'static str, params: Vec<Type>, args: Vec<Value>, results: Vec<Type>| {
        let client = client.clone();
        async move {
            let mut bytes = Vec::new();
            lattice_wrpc::encode_values(&params, &args, &mut bytes).unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            client
                .invoke(
                    lattice_wrpc::transport::Call::new(
                        "default.upstream",
                        echo,
                        func,
                        Bytes::from(bytes),
                        deadline,
                    ),
                    |b| lattice_wrpc::decode_values::<Value>(&results, b),
                )
                .await
        }
    };
    for word in ["lattice", "wrpc", "nats"] {
        let r = call(
            "shout",
            vec![Type::STRING],
            vec![Value::from(word)],
            vec![Type::STRING],
        )
        .await
        .unwrap();
        assert_eq!(
            wasm_wave::to_string(&r[0]).unwrap(),
            format!("{:?}", word.to_uppercase())
        );
    }
    let list_ty = Type::list(Type::U32);
    let list: Value = wasm_wave::from_str(&list_ty, "[1, 2, 300, 4000000000]").unwrap();
    let r = call("sum", vec![list_ty], vec![list], vec![Type::U64])
        .await
        .unwrap();
    assert_eq!(wasm_wave::to_string(&r[0]).unwrap(), "4000000303");

    // `lattice call` of the upstream server, which no host lists and which answers no
    // `component.signature`: the types come from --wit, and without it the error says so.
    let wit = dir.path().join("echo.wit");
    std::fs::write(
        &wit,
        "package lattice:interop@0.1.0;\ninterface echo {\n  shout: func(s: string) -> string;\n  sum: func(v: list<u32>) -> u64;\n}\n",
    )
    .unwrap();
    let wit_arg = wit.display().to_string();
    let shout = cli_ok(
        &url,
        "default",
        &[
            "call",
            "upstream",
            &format!("{echo}.shout"),
            "\"interop\"",
            "--wit",
            &wit_arg,
        ],
    );
    assert_eq!(shout.trim(), "\"INTEROP\"");
    let sum = cli_ok(
        &url,
        "default",
        &[
            "call",
            "upstream",
            &format!("{echo}.sum"),
            "[1, 2, 3]",
            "--wit",
            &wit_arg,
        ],
    );
    assert_eq!(sum.trim(), "6");
    let without = cli(
        &url,
        "default",
        &["call", "upstream", &format!("{echo}.shout"), "\"x\""],
    );
    assert!(!without.status.success());
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("--wit PATH") && stderr.contains("--wasm PATH"),
        "{stderr}"
    );
    // A Lattice host's component, its types from the component file instead of the host.
    let added = cli_ok(
        &url,
        "default",
        &[
            "call",
            "calc",
            "lattice:examples/calc@0.1.0.add",
            "40, 2",
            "--wasm",
            &lattice_testkit::component_path("calc")
                .display()
                .to_string(),
        ],
    );
    assert_eq!(added.trim(), "42");
    assert!(server.is_running(), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_forwards_to_a_component_on_a_wasmcloud_host() {
    use lattice_testkit::http::request;
    let peer = peer();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let port = lattice_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _h = crate::http::http_host(&url, port);
    // No Lattice host runs `wc-echo`; the peer serves it as a wasmCloud host would.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&peer);
    cmd.args(["serve-http", &url, "default.wc-echo"]);
    let mut server =
        ChildProcess::spawn("wasmCloud-like peer", cmd, &dir.path().join("peer.log")).unwrap();
    server
        .wait_for_log("serving", Duration::from_secs(20))
        .unwrap();
    crate::http::route(&ctl, "wc-echo", &[("path", "/wc")]).await;

    let r = crate::http::until_status(&addr, "localhost", "/wc/hello?x=1", 200).await;
    assert_eq!(r.text(), "GET /wc/hello?x=1\n");
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-served-by" && v == "wasmcloud-peer"),
        "{:?}",
        r.headers
    );
    // A small body goes in place; a large one follows on the request's nested path.
    for body in [
        b"ping".to_vec(),
        (0..1u32 << 20).map(|i| (i % 251) as u8).collect(),
    ] {
        let r = request(
            &addr,
            "POST",
            "localhost",
            "/wc/up",
            &body,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        let mut want = b"POST /wc/up\n".to_vec();
        want.extend_from_slice(&body);
        assert!(
            r.body == want,
            "{} bytes back for {}",
            r.body.len(),
            body.len()
        );
    }
    // Both ways at once: the first chunk's echo arrives before the client sends the second.
    crate::http::echoes_while_sending(&addr, "/wc/echo").await;

    // The peer gone: the route answers 502 again, as for any target nobody runs.
    drop(server);
    let r = crate::http::until_status(&addr, "localhost", "/wc/hello", 502).await;
    assert!(r.text().contains("wc-echo"), "{}", r.text());
}
