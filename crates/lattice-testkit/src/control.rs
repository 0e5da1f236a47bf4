//! Driving a lattice from a test through the control interface: a client with a short
//! gather window, scale requests and their outcome events, config, and polls over `host.ping`.
//! For tests of every crate that runs hosts (in-process or as processes).

use std::time::Duration;

use lattice_ctl::Client;
use lattice_proto::ctl::Host;
use lattice_proto::event::CloudEvent;

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
    crate::wait::until_async(what, timeout, Duration::from_millis(50), || async {
        let hosts = ctl.ping_hosts().await.ok()?;
        done(&hosts).then_some(hosts)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `host.get` of `host` until `done(inventory)` holds, or panics after `timeout`.
pub async fn wait_inventory(
    ctl: &Client,
    host: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&lattice_proto::ctl::HostInventory) -> bool,
) {
    crate::wait::until_async(what, timeout, Duration::from_millis(100), || async {
        let inv = ctl.host_inventory(host).await.ok()?;
        done(&inv).then_some(())
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

/// `file://` reference of a guest component built by scripts/build-components.
pub fn component_ref(name: &str) -> String {
    format!("file://{}", crate::component_path(name).display())
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
