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
    let nats = lattice_host::nats::connect(&lattice_host::NatsConfig::from_urls(nats_url))
        .await
        .expect("connecting the test client to NATS");
    Client::builder(nats, lattice)
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
