//! Hosts outlive their NATS servers: restarts and fail-over within a cluster.

use std::time::{Duration, Instant};

use lattice_proto::event::HOST_HEARTBEAT;
use lattice_testkit::{NatsCluster, NatsServer};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_comes_back_after_its_nats_server_restarts() {
    let mut nats = NatsServer::start().unwrap();
    let mut h = host(&nats.url(), "default").start().unwrap();

    nats.kill();
    nats.restart().unwrap();
    let restarted = Instant::now();
    // A fresh client: the old one may still be reconnecting itself.
    let ctl = ctl(&nats.url(), "default").await;
    let hosts = wait_hosts(&ctl, Duration::from_secs(10), "host back", |hs| {
        hs.len() == 1
    })
    .await;
    println!(
        "host back in get hosts {:?} after NATS restarted",
        restarted.elapsed()
    );
    assert_eq!(hosts[0].id, h.id);
    assert!(
        h.process.is_running(),
        "the host must not have been restarted"
    );

    // And it heartbeats again, and still serves config (JetStream came back with the server).
    let mut events = ctl.events().await.unwrap();
    let ev = next_event(&mut events, HOST_HEARTBEAT, Duration::from_secs(5)).await;
    assert_eq!(ev.source, h.id);
    let map = [("a".to_string(), "b".to_string())].into();
    ctl.put_config("after-restart", &map).await.unwrap();
    assert_eq!(ctl.get_config("after-restart").await.unwrap(), Some(map));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_fails_over_to_another_cluster_member() {
    let mut cluster = NatsCluster::start(3).unwrap();
    // The host is given only n0; it learns the other members from the cluster itself.
    let mut h = host(&cluster.servers[0].url(), "default").start().unwrap();
    let ctl = ctl(&cluster.servers[1].url(), "default").await;
    wait_hosts(&ctl, Duration::from_secs(10), "host", |hs| hs.len() == 1).await;

    cluster.servers[0].kill();
    let killed = Instant::now();
    let mut events = ctl.events().await.unwrap();
    // Pings are answered again once it has reconnected to n1 or n2 and resubscribed.
    let hosts = wait_hosts(
        &ctl,
        Duration::from_secs(10),
        "host after fail-over",
        |hs| hs.len() == 1,
    )
    .await;
    assert_eq!(hosts[0].id, h.id);
    let ev = next_event(&mut events, HOST_HEARTBEAT, Duration::from_secs(5)).await;
    assert_eq!(ev.source, h.id);
    println!("host failed over in {:?}", killed.elapsed());
    assert!(h.process.is_running());
    assert!(
        h.process.log().contains("sending a heartbeat now"),
        "the host should have noticed the reconnect:\n{}",
        h.process.log()
    );
}
