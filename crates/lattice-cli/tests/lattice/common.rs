//! Helpers shared by the tests: the binary under test, control clients, polling.

use std::process::{Command, Output};
use std::time::Duration;

use lattice_ctl::Client;
use lattice_proto::ctl::Host;
use lattice_proto::event::CloudEvent;
use lattice_testkit::HostSpec;

/// The `lattice` binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_lattice");

/// A host spec for this test's binary.
pub fn host(nats_url: &str, lattice: &str) -> HostSpec {
    HostSpec::new(BIN, nats_url, lattice)
}

/// A control client with a short gather window, so polls are quick (a ping that finds no host
/// waits out the whole window).
pub async fn ctl(nats_url: &str, lattice: &str) -> Client {
    let nats = lattice_nats::connect(&lattice_nats::NatsConfig::from_urls(nats_url))
        .await
        .expect("connecting the test client to NATS");
    // Requests get a generous timeout: under a full parallel test run, JetStream writes
    // (fsync on every write) can take seconds; these tests assert behaviour, not latency.
    Client::builder(nats, lattice)
        .timeout(Duration::from_secs(10))
        .gather(Duration::from_millis(500), Duration::from_millis(200))
        .build()
        .expect("control client")
}

/// Polls `host.ping` until `done(hosts)` holds, or panics after `timeout`.
pub async fn wait_hosts(
    ctl: &Client,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[Host]) -> bool,
) -> Vec<Host> {
    lattice_testkit::wait::until_async(what, timeout, Duration::from_millis(50), || async {
        let hosts = ctl.ping_hosts().await.ok()?;
        done(&hosts).then_some(hosts)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Ids of `hosts`, sorted.
pub fn ids(hosts: &[Host]) -> Vec<String> {
    let mut ids: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    ids
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

/// The next event of type `ty` (e.g. `host_stopped`) on `events`, within `timeout`.
pub async fn next_event(
    events: &mut (impl futures::Stream<Item = CloudEvent> + Unpin),
    ty: &str,
    timeout: Duration,
) -> CloudEvent {
    use futures::StreamExt;
    tokio::time::timeout(timeout, async {
        loop {
            let ev = events.next().await.expect("event stream ended");
            if ev.event_type() == Some(ty) {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {ty} event within {timeout:?}"))
}

/// A host running in this test process (for the local call path), joined to `lattice`.
pub async fn in_process_host(nats_url: &str, lattice: &str) -> lattice_host::Host {
    in_process_host_with(nats_url, lattice, |_| {}).await
}

/// [`in_process_host`] with a changed configuration.
pub async fn in_process_host_with(
    nats_url: &str,
    lattice: &str,
    change: impl FnOnce(&mut lattice_host::HostConfig),
) -> lattice_host::Host {
    let mut config = lattice_host::HostConfig {
        lattice: lattice.into(),
        nats: lattice_host::NatsConfig::from_urls(nats_url),
        heartbeat_interval: Duration::from_millis(500),
        allow_file_load: true,
        runtime: lattice_host::RuntimeConfig {
            cache_dir: None,
            pool_instances: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    change(&mut config);
    log_to_test_output();
    lattice_host::Host::start(config)
        .await
        .expect("in-process host")
}

/// With `LATTICE_TEST_LOG` set (an `EnvFilter`, e.g. `lattice_host=debug`), in-process hosts
/// log into the test's captured output, which a failing test prints.
fn log_to_test_output() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("LATTICE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// `file://` reference of a guest component built by scripts/build-components.
pub fn component_ref(name: &str) -> String {
    format!("file://{}", lattice_testkit::component_path(name).display())
}

/// A scale request with defaults.
pub fn scale_cmd(
    reference: &str,
    id: &str,
    count: u32,
) -> lattice_proto::ctl::ScaleComponentCommand {
    lattice_proto::ctl::ScaleComponentCommand {
        component_ref: reference.into(),
        component_id: id.into(),
        count,
        host_id: None,
        annotations: Default::default(),
        config: vec![],
        component_limits: None,
        allow_update: false,
        allowed_hosts: vec![],
    }
}

/// Sends a scale request and returns the `component_scaled` / `component_scale_failed` event
/// the host emits for it.
pub async fn scale(
    ctl: &Client,
    host_id: &str,
    cmd: &lattice_proto::ctl::ScaleComponentCommand,
) -> CloudEvent {
    use futures::StreamExt;
    let mut events = ctl.events().await.unwrap();
    ctl.scale_component(host_id, cmd)
        .await
        .expect("scale acknowledged");
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ev = events.next().await.expect("event stream ended");
            let kind = ev.event_type().unwrap_or_default();
            if ev.source == host_id
                && ev.data["component_id"] == cmd.component_id.as_str()
                && (kind == "component_scaled" || kind == "component_scale_failed")
            {
                return ev;
            }
        }
    })
    .await
    .expect("no scale outcome within 30 s")
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

/// Stores named config `name` holding `pairs`.
pub async fn put_config(ctl: &Client, name: &str, pairs: &[(&str, &str)]) {
    let map = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ctl.put_config(name, &map)
        .await
        .unwrap_or_else(|e| panic!("config put {name}: {e}"));
}

/// The call error of a local call that reached its component (panics on `NotRunning`).
pub fn call_error(e: lattice_host::InvokeError) -> lattice_host::CallError {
    match e {
        lattice_host::InvokeError::Call(e) => e,
        other => panic!("expected a call error, got: {other}"),
    }
}
