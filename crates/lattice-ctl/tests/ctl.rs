//! The control client against a real nats-server: a real in-process host for what succeeds,
//! and peers of the test's own for what a misbehaving one sends back.

use std::time::Duration;

use futures::StreamExt;
use lattice_ctl::{Client, ErrorKind, WatchEvent};
use lattice_proto::ctl::{ConfigMap, DeleteLinkRequest, Link};
use lattice_testkit::NatsServer;

fn nats_server() -> NatsServer {
    NatsServer::start().expect("nats-server (set LATTICE_NATS_SERVER_BIN or run scripts/test)")
}

async fn host(nats: &NatsServer) -> lattice_host::Host {
    lattice_testkit::in_process::in_process_host_with(&nats.url(), "ctl-test", |c| {
        c.runtime.pool_instances = 0
    })
    .await
}

async fn client(nats: &NatsServer, timeout: Duration) -> Client {
    let conn = async_nats::connect(nats.url()).await.unwrap();
    Client::builder(conn, "ctl-test")
        .timeout(timeout)
        .gather(timeout, Duration::from_millis(200))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_a_host_and_come_back_typed() {
    let nats = nats_server();
    let host = host(&nats).await;
    let ctl = client(&nats, Duration::from_secs(5)).await;

    let hosts = ctl.ping_hosts().await.unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        [host.id()]
    );

    ctl.put_label(host.id(), "zone", "b").await.unwrap();
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.host_id, host.id());
    assert_eq!(inv.labels.get("zone").map(String::as_str), Some("b"));
    ctl.delete_label(host.id(), "zone").await.unwrap();
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert!(!inv.labels.contains_key("zone"), "{:?}", inv.labels);

    let values: ConfigMap = [("url".to_string(), "postgres://db".to_string())].into();
    ctl.put_config("db", &values).await.unwrap();
    assert_eq!(ctl.get_config("db").await.unwrap(), Some(values));
    ctl.delete_config("db").await.unwrap();
    assert_eq!(ctl.get_config("db").await.unwrap(), None);

    let link = Link::new("relay", "calc", "lattice", "examples", &["calc"]);
    ctl.put_link(&link).await.unwrap();
    let links = ctl.get_links().await.unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        (links[0].source_id.as_str(), links[0].target.as_str()),
        ("relay", "calc")
    );
    ctl.delete_link(&DeleteLinkRequest {
        source_id: "relay".into(),
        name: "default".into(),
        wit_namespace: "lattice".into(),
        wit_package: "examples".into(),
    })
    .await
    .unwrap();
    assert!(ctl.get_links().await.unwrap().is_empty());

    // claims.get is answered (as wash and wadm ask it): no component here is signed.
    assert!(ctl.get_claims().await.unwrap().is_empty());
    host.shutdown(lattice_host::StopReason::Signal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_kind() {
    let nats = nats_server();
    let host = host(&nats).await;
    let ctl = client(&nats, Duration::from_millis(500)).await;

    // Refused before anything is sent.
    let e = ctl.host_inventory("not a host id").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = ctl.get_config("").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // Nobody there.
    let e = ctl.host_inventory("NNOBODY").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoResponders, "{e}");
    // The host says no.
    let e = ctl
        .put_label(host.id(), "hostcore.os", "plan9")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");

    // Peers that answer garbage, or nothing at all.
    let peer = async_nats::connect(nats.url()).await.unwrap();
    let root = lattice_proto::subject::CtlSubjects::new("ctl-test").unwrap();
    let op = lattice_proto::op::Op::HostGet;
    let mut garbage = peer.subscribe(root.host_op(op, "NGARBAGE")).await.unwrap();
    let mut silent = peer.subscribe(root.host_op(op, "NSILENT")).await.unwrap();
    lattice_nats::sync_with_server(&peer).await.unwrap();
    let answering = peer.clone();
    tokio::spawn(async move {
        while let Some(m) = garbage.next().await {
            if let Some(reply) = m.reply {
                let _ = answering.publish(reply, "{not json".into()).await;
            }
        }
    });
    tokio::spawn(async move { while silent.next().await.is_some() {} });
    let e = ctl.host_inventory("NGARBAGE").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    let e = ctl.host_inventory("NSILENT").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    host.shutdown(lattice_host::StopReason::Signal).await;
}

/// The watcher's next event, within a generous bound (a hang fails instead of blocking).
async fn next(w: &mut lattice_ctl::HostWatcher) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("a watch event within 20 s")
        .expect("the watcher runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_sees_hosts_join_and_stop() {
    let nats = nats_server();
    let first = host(&nats).await;
    let ctl = client(&nats, Duration::from_secs(5)).await;
    let mut watcher = ctl.watch_hosts().await.unwrap();
    match next(&mut watcher).await {
        WatchEvent::Joined(h) => assert_eq!(h.id, first.id()),
        other => panic!("expected the first host to join, got {other:?}"),
    }
    let second = host(&nats).await;
    match next(&mut watcher).await {
        WatchEvent::Joined(h) => assert_eq!(h.id, second.id()),
        other => panic!("expected the second host to join, got {other:?}"),
    }
    let id = second.id().to_string();
    second.shutdown(lattice_host::StopReason::Signal).await;
    match next(&mut watcher).await {
        WatchEvent::Stopped(h) => assert_eq!(h.id, id),
        other => panic!("expected the second host to stop, got {other:?}"),
    }
    first.shutdown(lattice_host::StopReason::Signal).await;
}
