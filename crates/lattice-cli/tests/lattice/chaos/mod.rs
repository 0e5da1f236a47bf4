//! Chaos: calls under steady load while hosts, servers and links fail for real.
//!
//! A caller host in this process runs `relay`, whose `add-via-calc` calls `calc` through a
//! link; `calc` runs on host processes that get SIGKILLed, SIGSTOPped, or lose their NATS
//! server. Every call is checked for the right sum. Each scenario prints one row of a table
//! (scenario, calls sent, succeeded, failed, retried, p50/p99 latency, time to detect or
//! reroute); `scripts/chaos` runs them all with `--nocapture`, and `scripts/chaos --long`
//! (LATTICE_CHAOS_LONG=1) makes the soak scenario run 10 minutes instead of 60 s.
//!
//! - [`load`]: the caller, the load and its report;
//! - [`partitions`]: hosts in network namespaces, cut off by dropped packets and behind a
//!   slow, lossy link;
//! - here: killed and stopped hosts, lost and flapping servers, a slow leaf link.

mod load;
mod partitions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lattice_host::{CallErrorKind, Host};
use lattice_testkit::nats::CLUSTER_JS_DOMAIN;
use lattice_testkit::process::Signal;
use lattice_testkit::NatsCluster as Cluster;
use lattice_testkit::{Faults, FaultyLink, HostProcess, NatsServer};

use crate::common::*;
use load::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_shared_by_every_host_running_the_target() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let hosts = calc_hosts(std::slice::from_ref(&url), "default", 3, &[]).await;
    let caller = caller(&url, "default", false, 1).await;
    wait_calls(&caller).await;
    let ctl = ctl(&url, "default").await;
    let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    let before = served(&ctl, &ids).await;

    let calls = 10_000;
    let started = Instant::now();
    let results: Vec<Result<Duration, Failed>> =
        futures::StreamExt::collect(futures::StreamExt::buffer_unordered(
            futures::stream::iter(0..calls).map(|i| {
                let caller = caller.clone();
                async move { call_once(&caller, i, 0).await }
            }),
            32,
        ))
        .await;
    let took = started.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let after = served(&ctl, &ids).await;
    let share: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: u64 = share.iter().sum();
    let pct: Vec<String> = share
        .iter()
        .map(|s| format!("{:.1} %", *s as f64 * 100.0 / total as f64))
        .collect();
    println!(
        "\nload sharing: {calls} calls (32 at a time) in {took:.1?}, {failed} failed; served per host: {share:?} = {pct:?}"
    );
    assert_eq!(failed, 0);
    assert_eq!(total, calls as u64, "every call counted once, on one host");
    for s in &share {
        let p = *s as f64 / total as f64;
        assert!((0.20..=0.47).contains(&p), "unfair share {share:?}");
    }
}

/// SIGKILL one of three hosts under 200 calls/s, each holding a `calc` instance 50 ms (so
/// about 3 calls are running on the host when it dies); `idempotent` says how the link
/// declares `calc`. Returns the report and the kill's offset into the run.
async fn kill_under_load(idempotent: bool) -> (Report, Duration) {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let mut hosts = calc_hosts(std::slice::from_ref(&url), "default", 3, &[]).await;
    let caller = caller(&url, "default", idempotent, 1).await;
    wait_calls(&caller).await;
    let victim = hosts.remove(1);
    let fault_at = Duration::from_secs(3);
    let report = steady_load(
        &caller,
        50,
        200,
        Duration::from_secs(10),
        fault_at,
        move || {
            let mut victim = victim;
            victim.process.kill();
        },
    )
    .await;
    assert!(
        report.sent() >= 1900,
        "the load held its rate: {}",
        report.sent()
    );
    (report, fault_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_host_under_load_fails_no_idempotent_call() {
    let (report, killed_at) = kill_under_load(true).await;
    report.row(
        "SIGKILL 1 of 3 hosts, idempotent",
        &report.around(killed_at),
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_host_under_load_ends_other_calls_fast_with_outcome_unknown() {
    let (report, killed_at) = kill_under_load(false).await;
    report.row(
        "SIGKILL 1 of 3 hosts, not idempotent",
        &report.around(killed_at),
    );
    // The watchdog ends them: a call that waited out its 5 s deadline would be
    // DeadlineExceeded (a silent host is given 2 s to acknowledge). How long they took is in
    // the row above.
    for (kind, (n, _)) in &report.failed {
        assert_eq!(
            *kind,
            Failure::Call(CallErrorKind::OutcomeUnknown),
            "{n} calls failed otherwise"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_host_stops_getting_calls_and_rejoins_when_resumed() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let hosts = calc_hosts(std::slice::from_ref(&url), "default", 3, &[]).await;
    let caller = caller(&url, "default", true, 1).await;
    wait_calls(&caller).await;
    let connections = nats.connections().unwrap();
    let stopped = Arc::new(std::sync::Mutex::new(None));
    let stopped_at = stopped.clone();
    let victim_signal = {
        let p = hosts[1].process.signaller();
        move || {
            p.signal(Signal::SIGSTOP).unwrap();
            *stopped_at.lock().unwrap() = Some(Instant::now());
        }
    };
    let fault_at = Duration::from_secs(2);
    let load = steady_load(
        &caller,
        20,
        200,
        Duration::from_secs(8),
        fault_at,
        victim_signal,
    );
    let dropped = dropped_after(&nats, connections, &stopped);
    let (report, dropped_after) = tokio::join!(load, dropped);
    report.row(
        "SIGSTOP 1 of 3 hosts (no reset), idempotent",
        &format!("server dropped it {dropped_after:.1?} after SIGSTOP"),
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);

    // Resumed, it reconnects by itself and serves calls again.
    hosts[1].process.signal(Signal::SIGCONT).unwrap();
    let ctl = ctl(&url, "default").await;
    let calls_of = |inv: lattice_proto::ctl::HostInventory| {
        inv.components.iter().find(|c| c.id == "calc")?.calls
    };
    let before = lattice_testkit::wait::until_async(
        "the resumed host to reconnect",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { calls_of(ctl.host_inventory(&hosts[1].id).await.ok()?) },
    )
    .await
    .unwrap();
    lattice_testkit::wait::until_async(
        "the resumed host to serve calls again",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            call_once(&caller, 1, 0).await.ok()?;
            let calls = calls_of(ctl.host_inventory(&hosts[1].id).await.ok()?)?;
            (calls > before).then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_nats_server_under_load_fails_no_idempotent_call_and_keeps_kv() {
    let mut cluster = Cluster::start(3).unwrap();
    let urls: Vec<String> = cluster.servers.iter().map(|s| s.url()).collect();
    let _hosts = calc_hosts(&urls, "default", 3, &["--kv-replicas", "3"]).await;
    let caller = caller(&urls[0], "default", true, 3).await;
    wait_calls(&caller).await;
    let ctl = ctl(&urls[0], "default").await;
    let config: lattice_proto::ctl::ConfigMap = [("k".to_string(), "v".to_string())].into();
    ctl.put_config("chaos", &config).await.unwrap();
    let links = ctl.get_links().await.unwrap();

    // The server of the second calc host goes away; its host moves to another member.
    let victim = cluster.servers.remove(1);
    let fault_at = Duration::from_secs(3);
    let report = steady_load(
        &caller,
        20,
        200,
        Duration::from_secs(10),
        fault_at,
        move || {
            let mut victim = victim;
            victim.kill();
        },
    )
    .await;
    report.row(
        "kill 1 of 3 nats-servers, idempotent",
        "hosts reconnect to the others",
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);

    // KV (3 replicas, fsync always) lost nothing.
    let ctl = lattice_ctl_for(&urls[2]).await;
    assert_eq!(ctl.get_links().await.unwrap(), links);
    assert_eq!(ctl.get_config("chaos").await.unwrap(), Some(config));
}

/// A control client on `url`, retried while JetStream elects new leaders.
async fn lattice_ctl_for(url: &str) -> lattice_ctl::Client {
    let ctl = ctl(url, "default").await;
    lattice_testkit::wait::until_async(
        "KV to answer after the server loss",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { ctl.get_links().await.ok() },
    )
    .await
    .unwrap();
    ctl
}

/// calc on the only host behind a leaf node whose link to the hub crosses a [`FaultyLink`];
/// relay on a caller host in the hub, linked (not idempotent) to calc.
struct AcrossALeaf {
    caller: Arc<Host>,
    wan: FaultyLink,
    _calc: Vec<HostProcess>,
    _leaf: NatsServer,
    _cluster: Cluster,
}

impl AcrossALeaf {
    async fn start() -> Self {
        let cluster = Cluster::start(3).unwrap();
        let hub: std::net::SocketAddr = cluster.leaf_addrs()[0].parse().unwrap();
        let wan = FaultyLink::start(hub, Faults::default()).unwrap();
        let leaf = cluster.start_leaf_to("leaf", &[wan.addr()]).unwrap();
        let js = ["--js-domain", CLUSTER_JS_DOMAIN];
        let calc = calc_hosts(&[leaf.url()], "default", 1, &js).await;
        let caller = caller(&cluster.servers[0].url(), "default", false, 1).await;
        wait_calls(&caller).await;
        Self {
            caller,
            wan,
            _calc: calc,
            _leaf: leaf,
            _cluster: cluster,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_across_a_slow_stalling_leaf_link_succeed_within_their_deadlines() {
    // Not idempotent: a slow link must not be mistaken for a dead host.
    let across = AcrossALeaf::start().await;
    let (caller, wan) = (&across.caller, &across.wan);
    wan.set_faults(Faults {
        delay: Duration::from_millis(200),
        jitter: Duration::from_millis(20),
        stall_chance: 0.05,
        stall: Duration::from_millis(300),
    });
    let report = steady_load(caller, 0, 20, Duration::from_secs(10), Duration::MAX, || {}).await;
    report.row(
        "leaf node behind 200 ms delay, 5 % stalls of 300 ms",
        "n/a (nothing fails)",
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);
    assert!(
        report.percentile(0.5, None) >= Duration::from_millis(400),
        "the delay applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_servers_flapping_never_need_a_host_restart() {
    let long = std::env::var_os("LATTICE_CHAOS_LONG").is_some();
    let duration = Duration::from_secs(if long { 600 } else { 60 });
    let cluster = Cluster::start(3).unwrap();
    let urls: Vec<String> = cluster.servers.iter().map(|s| s.url()).collect();
    let mut hosts = calc_hosts(&urls, "default", 3, &["--kv-replicas", "3"]).await;
    let caller = caller(&urls[0], "default", true, 3).await;
    wait_calls(&caller).await;

    // Each member in turn: killed, restarted after 0-2 s, a second's rest once healthy.
    // Shared, so the servers outlive the flapping thread (dropping one kills it).
    let servers = Arc::new(std::sync::Mutex::new(cluster.servers));
    let flapped = servers.clone();
    let flaps = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = flaps.clone();
    let report = steady_load(&caller, 20, 50, duration, Duration::ZERO, move || {
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() + Duration::from_secs(4) < duration {
            let mut servers = flapped.lock().unwrap();
            let s = &mut servers[i % 3];
            s.kill();
            eprintln!("flapping: n{} killed at {:.1?}", i % 3, started.elapsed());
            std::thread::sleep(Duration::from_millis(fastrand::u64(0..=2000)));
            s.restart().unwrap();
            eprintln!("flapping: n{} healthy at {:.1?}", i % 3, started.elapsed());
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(servers);
            std::thread::sleep(Duration::from_secs(1));
            i += 1;
        }
    })
    .await;
    let flaps = flaps.load(std::sync::atomic::Ordering::SeqCst);
    report.row(
        &format!(
            "{} s of cluster members flapping 0-2 s ({flaps} outages), idempotent",
            duration.as_secs()
        ),
        "hosts reconnect by themselves",
    );
    // A member takes seconds to restart (JetStream catches up before it reports healthy).
    assert!(
        flaps as u64 >= duration.as_secs() / 12,
        "only {flaps} outages"
    );
    assert_eq!(report.failed_count(), 0, "failures: {:?}", report.failed);
    for h in &mut hosts {
        assert!(h.process.is_running(), "{} exited", h.id);
    }
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_leaf_link_fails_calls_fast_and_heals_by_itself() {
    let across = AcrossALeaf::start().await;
    let (caller, wan) = (&across.caller, &across.wan);

    // Cut: the only host running calc is out of reach. Calls fail at once, never hang.
    wan.cut();
    let cut_at = Instant::now();
    let (failing, message) = lattice_testkit::wait::until_async(
        "calls to fail once the link is cut",
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { call_once(caller, 1, 0).await.err() },
    )
    .await
    .unwrap();
    let noticed = cut_at.elapsed();
    // A call already on its way when the link went is "outcome unknown"; later ones find
    // nobody serving calc, retried for the 2 s grace of a target that answered recently.
    assert!(
        [CallErrorKind::NoResponders, CallErrorKind::OutcomeUnknown]
            .map(Failure::Call)
            .contains(&failing),
        "{message}"
    );
    // Never a hang: each ends as "no responders", not at its deadline.
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        let (kind, err) = call_once(caller, i, 0).await.expect_err("the link is cut");
        assert_eq!(kind, Failure::Call(CallErrorKind::NoResponders), "{err}");
        slowest = slowest.max(started.elapsed());
    }

    // Healed: the leaf reconnects by itself and calls go through again, no restart.
    wan.heal();
    let healed_at = Instant::now();
    wait_calls(caller).await;
    println!(
        "\nleaf link cut: calls failed {noticed:.1?} after the cut (then \"no responders\", slowest of 5: \
         {slowest:.1?}); after healing, calls succeeded again in {:.1?}",
        healed_at.elapsed()
    );
}
