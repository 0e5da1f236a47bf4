//! Partitions with real packet loss: a `calc` host runs in a network namespace of its own
//! ([`Netns`]) and reaches the nats-server through a [`FaultyLink`] on its veth's gateway
//! address. Cutting the namespace drops every packet both ways (no reset, no ICMP), so the
//! host's connection goes silent exactly as behind a failed switch; the link adds delay and
//! lost-segment stalls for the slow-link scenario.
//!
//! These need root (or CAP_NET_ADMIN) and iproute2, as CI on this machine has; without them
//! they fail with what was missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_testkit::netns::Netns;
use lattice_testkit::{Faults, FaultyLink, HostProcess, NatsServer};

use super::load::*;
use crate::common::*;

/// A `calc` host in a namespace of its own, behind `link`.
struct Fenced {
    host: HostProcess,
    link: FaultyLink,
    ns: Arc<Netns>,
}

impl Fenced {
    async fn start(nats: &NatsServer, ctl: &lattice_ctl::Client) -> Self {
        let ns = Arc::new(Netns::create().unwrap_or_else(|e| panic!("{e}")));
        let server = format!("127.0.0.1:{}", nats.port).parse().unwrap();
        let listen = (ns.gateway(), 0).into();
        let link = FaultyLink::start_on(listen, server, Faults::default()).unwrap();
        let spec = calc_spec(&format!("nats://{}", link.addr()), "default").in_netns(ns.name());
        let host = calc_host(ctl, &spec).await;
        Self { host, link, ns }
    }
}

/// Calls `calc` on `id` has served, from its inventory.
async fn calls_served(ctl: &lattice_ctl::Client, id: &str) -> Option<u64> {
    let inv = ctl.host_inventory(id).await.ok()?;
    inv.components.iter().find(|c| c.id == "calc")?.calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_by_dropped_packets_leaves_rotation_and_rejoins_after_heal() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let _beside = calc_hosts(std::slice::from_ref(&url), "default", 2, &[]).await;
    let mut fenced = Fenced::start(&nats, &ctl).await;
    let caller = caller(&url, "default", true, 1).await;
    wait_calls(&caller).await;
    let connections = nats.connections().unwrap();

    let cut_at = Arc::new(std::sync::Mutex::new(None));
    let fault = {
        let (ns, cut_at) = (fenced.ns.clone(), cut_at.clone());
        move || {
            ns.cut().unwrap();
            *cut_at.lock().unwrap() = Some(Instant::now());
        }
    };
    let fault_at = Duration::from_secs(2);
    let load = steady_load(&caller, 20, 200, Duration::from_secs(8), fault_at, fault);
    let dropped = dropped_after(&nats, connections, &cut_at);
    let (report, dropped_after) = tokio::join!(load, dropped);
    report.row(
        "netns: 1 of 3 hosts cut off (packets dropped both ways), idempotent",
        &format!(
            "server dropped it {dropped_after:.1?} after the cut; {}",
            report.around(fault_at)
        ),
    );
    // Idempotent: a call caught on the cut-off host is retried elsewhere; none waited out
    // its deadline (that would be a DeadlineExceeded failure here).
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);

    // Healed: the same process (no restart) reconnects through its retransmissions and
    // serves calls again.
    fenced.ns.heal().unwrap();
    let healed = Instant::now();
    let before = lattice_testkit::wait::until_async(
        "the healed host to reconnect",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { calls_served(&ctl, &fenced.host.id).await },
    )
    .await
    .unwrap();
    let rejoined = healed.elapsed();
    lattice_testkit::wait::until_async(
        "the healed host to serve calls again",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            call_once(&caller, 1, 0).await.ok()?;
            (calls_served(&ctl, &fenced.host.id).await? > before).then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        fenced.host.process.is_running(),
        "the host was not restarted"
    );
    println!("\nnetns heal: the cut-off host answered again {rejoined:.1?} after the heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_host_behind_a_slow_lossy_link_succeed_within_their_deadline() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    // The only calc host: every call crosses the namespace's link.
    let fenced = Fenced::start(&nats, &ctl).await;
    // Not idempotent: a slow link must not be mistaken for a dead host.
    let caller = caller(&url, "default", false, 1).await;
    wait_calls(&caller).await;
    // 200 ms each way, and one chunk in ten held back 200 ms more (Linux's minimum
    // retransmission timeout: what a lost segment costs).
    fenced.link.set_faults(Faults {
        delay: Duration::from_millis(200),
        jitter: Duration::from_millis(20),
        stall_chance: 0.10,
        stall: Duration::from_millis(200),
    });
    let report = steady_load(
        &caller,
        0,
        20,
        Duration::from_secs(10),
        Duration::MAX,
        || {},
    )
    .await;
    report.row(
        "netns: host behind 200 ms each way, 10 % of chunks stalled 200 ms, not idempotent",
        "n/a (nothing fails)",
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);
    assert!(
        report.sent() >= 150,
        "the load held its rate: {}",
        report.sent()
    );
}
