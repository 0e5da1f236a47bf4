//! Hosts leaving: stopped on request, by signal, or killed.

use std::time::{Duration, Instant};

use lattice_proto::event::{HostStopped, HOST_STARTED, HOST_STOPPED};
use lattice_testkit::{ChildProcess, NatsServer};
use nix::sys::signal::Signal;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_stop_emits_host_stopped_and_the_host_leaves() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    let mut a = host(&nats.url(), "default").start().unwrap();
    let b = host(&nats.url(), "default").start().unwrap();
    wait_hosts(&ctl, Duration::from_secs(5), "2 hosts", |h| h.len() == 2).await;

    let out = cli_ok(&nats.url(), "default", &["host", "stop", &a.id]);
    assert!(out.contains("stopping"), "{out}");
    let ev = loop {
        let ev = next_event(&mut events, HOST_STOPPED, Duration::from_secs(5)).await;
        if ev.source == a.id {
            break ev;
        }
    };
    let payload: HostStopped = serde_json::from_value(ev.data).unwrap();
    assert_eq!(payload.labels["hostcore.os"], std::env::consts::OS);
    let status = a.process.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
    let hosts = ctl.ping_hosts().await.unwrap();
    assert_eq!(ids(&hosts), vec![b.id.clone()]);

    // A stop addressed to a host that does not exist fails fast and says so.
    let out = cli(&nats.url(), "default", &["host", "stop", &a.id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no responders"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigterm_stop_a_host_cleanly() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut h = host(&nats.url(), "default").start().unwrap();
        h.process.signal(signal).unwrap();
        let ev = next_event(&mut events, HOST_STOPPED, Duration::from_secs(5)).await;
        assert_eq!(ev.source, h.id);
        let status = h.process.wait_exit(Duration::from_secs(10)).unwrap();
        assert!(status.success(), "{signal}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_host_is_gone_from_ping_at_once_and_watch_declares_it_dead() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let heartbeat = Duration::from_millis(500);
    let mut hosts: Vec<_> = (0..3)
        .map(|_| {
            host(&nats.url(), "default")
                .heartbeat(heartbeat)
                .start()
                .unwrap()
        })
        .collect();
    wait_hosts(&ctl, Duration::from_secs(5), "3 hosts", |h| h.len() == 3).await;

    // A client watching the lattice from the CLI.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "--nats-url",
        &nats.url(),
        "-o",
        "json",
        "get",
        "hosts",
        "--watch",
    ]);
    let mut watch = ChildProcess::spawn("watch", cmd, &dir.path().join("watch.log")).unwrap();
    for h in &hosts {
        watch.wait_for_log(&h.id, Duration::from_secs(5)).unwrap();
    }

    let victim = hosts.remove(0);
    victim.process.signal(Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    // The kernel closes the dead process's socket; NATS drops its subscriptions at once.
    let remaining = ctl.ping_hosts().await.unwrap();
    assert!(
        !ids(&remaining).contains(&victim.id),
        "killed host still answers ping"
    );
    assert_eq!(remaining.len(), 2);

    let line = watch
        .wait_for_log("\"event\":\"dead\"", Duration::from_secs(5))
        .unwrap();
    let detected = killed.elapsed();
    println!(
        "killed host declared dead {detected:?} after SIGKILL (heartbeat {heartbeat:?}): {line}"
    );
    assert!(line.contains(&victim.id), "{line}");
    // The survivors keep heartbeating: none of them is declared dead over four heartbeats.
    lattice_testkit::wait::nothing_within_async(
        "another host declared dead",
        heartbeat * 4,
        Duration::from_millis(50),
        || async {
            let log = watch.log();
            (log.matches("\"event\":\"dead\"").count() > 1).then_some(log)
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_started_is_sent_after_the_host_can_answer() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    let (_p, _d) = host(&nats.url(), "default").spawn().unwrap();
    let ev = next_event(&mut events, HOST_STARTED, Duration::from_secs(10)).await;
    // Reacting to host_started must reach the host: its subscriptions are already live.
    let inv = ctl.host_inventory(&ev.source).await.unwrap();
    assert_eq!(inv.host_id, ev.source);
    assert_eq!(ev.data["heartbeat_interval_ms"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_nats_is_gone_still_stops_on_sigterm() {
    let mut nats = NatsServer::start().unwrap();
    let mut h = host(&nats.url(), "default").start().unwrap();
    nats.kill();
    let started = Instant::now();
    h.process.signal(Signal::SIGTERM).unwrap();
    let status = h.process.wait_exit(Duration::from_secs(10)).unwrap();
    println!(
        "host stopped {:?} after SIGTERM with NATS down",
        started.elapsed()
    );
    assert!(status.success(), "{status}");
}
