//! wasmCloud v1's real peers, built by `scripts/peers` into `$LATTICE_PEERS_DIR`: where their
//! binaries are, wadm as a child process, and requests to wadm's API. Only the drop-in suite
//! (`scripts/test-peers`) uses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::ChildProcess;
use crate::NatsServer;

/// Peer binary `name` (`wadm`, `http-server-provider`, ...); panics with the fix when it is
/// missing.
pub fn peer_bin(name: &str) -> PathBuf {
    let dir = std::env::var("LATTICE_PEERS_DIR")
        .expect("LATTICE_PEERS_DIR is not set: run scripts/test-peers");
    let path = Path::new(&dir).join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/peers",
        path.display()
    );
    path
}

/// `file://` reference of peer binary `name`, for `provider.start` or a manifest.
pub fn peer_ref(name: &str) -> String {
    format!("file://{}", peer_bin(name).display())
}

/// wadm, the real one, against `nats`, logging to `dir/wadm.log`; hosts that miss heartbeats
/// for `cleanup` are dropped from its state.
pub fn start_wadm(nats: &NatsServer, dir: &Path, cleanup: Duration) -> ChildProcess {
    let mut cmd = std::process::Command::new(peer_bin("wadm"));
    cmd.args(["--nats-server", &nats.url().replace("nats://", "")])
        .args(["--cleanup-interval", &cleanup.as_secs().max(1).to_string()])
        .env("RUST_LOG", "info,wadm=debug");
    ChildProcess::spawn("wadm", cmd, &dir.join("wadm.log")).expect("starting wadm")
}

/// A request to wadm's API, `wadm.api.{lattice}.{op}` (retried until wadm answers, up to
/// 30 s), and its JSON answer; panics with wadm's log.
pub async fn wadm_request(
    nats: &async_nats::Client,
    wadm: &ChildProcess,
    lattice: &str,
    op: &str,
    body: &[u8],
) -> serde_json::Value {
    let subject = format!("wadm.api.{lattice}.{op}");
    let reply = crate::wait::until_async(
        &subject,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let asked = nats.request(subject.clone(), body.to_vec().into());
            tokio::time::timeout(Duration::from_secs(5), asked)
                .await
                .ok()?
                .ok()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm.log()));
    serde_json::from_slice(&reply.payload).expect("wadm answers JSON")
}

/// A wasmCloud v1 manifest as published (the Rust hello-world): `http-server` provider
/// `provider`, a `wasi:http` component `component` scaled by `component_scaler`
/// (`spreadscaler` or `daemonscaler`) and a link from the provider to it, listening on
/// `address`.
pub fn hello_manifest(
    component: &str,
    component_scaler: &str,
    provider: &str,
    address: &str,
) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: hello
  annotations:
    version: v0.0.1
spec:
  components:
    - name: http-component
      type: component
      properties:
        image: {component}
      traits:
        - type: {component_scaler}
          properties:
            instances: 2
    - name: httpserver
      type: capability
      properties:
        image: {provider}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target: http-component
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source_config:
              - name: default-http
                properties:
                  address: {address}
"#
    )
}
