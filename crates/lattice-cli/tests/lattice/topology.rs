//! Flat topology: one lattice across a NATS cluster and its leaf nodes; lattices isolated.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use lattice_proto::event::LABELS_CHANGED;
use lattice_testkit::{NatsCluster, NatsServer};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_on_cluster_members_and_a_leaf_node_form_one_lattice() {
    let cluster = NatsCluster::start(3).unwrap();
    let leaf = cluster.start_leaf("leaf").unwrap();
    let mut urls: Vec<String> = cluster.servers.iter().map(|s| s.url()).collect();
    urls.push(leaf.url());
    // Each host knows only its own server; the one behind the leaf reaches the cluster's
    // JetStream through its domain.
    let hosts: Vec<_> = urls
        .iter()
        .map(|u| {
            let spec = host(u, "default");
            let spec = if *u == leaf.url() {
                spec.arg("--js-domain")
                    .arg(lattice_testkit::nats::CLUSTER_JS_DOMAIN)
            } else {
                spec
            };
            spec.start().unwrap()
        })
        .collect();
    let mut expected: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    expected.sort();

    // A client on any server, the leaf included, sees all four hosts.
    for url in &urls {
        let ctl = ctl(url, "default").await;
        let seen = wait_hosts(&ctl, Duration::from_secs(10), "all 4 hosts", |h| {
            h.len() == 4
        })
        .await;
        assert_eq!(ids(&seen), expected, "as seen from {url}");
    }

    // Shared state works across the leaf: config written through the leaf's host is read
    // back through a cluster member, and the other way round.
    let on_leaf = ctl(&leaf.url(), "default").await;
    let on_n2 = ctl(&cluster.servers[2].url(), "default").await;
    let map: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
    lattice_testkit::wait::until_async(
        "config put through the leaf",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            on_leaf
                .put_config("shared", &map)
                .await
                .map_err(|e| eprintln!("put via leaf: {e}"))
                .ok()
        },
    )
    .await
    .unwrap();
    assert_eq!(on_n2.get_config("shared").await.unwrap(), Some(map));

    // Events from a host on the leaf reach a watcher on the cluster. Interest crosses the leaf
    // connection asynchronously, so repeat the change until the watcher hears one.
    let mut events = on_n2.events().await.unwrap();
    let leaf_host = &hosts[3];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ev = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no event from the leaf host"
        );
        on_leaf
            .put_label(&leaf_host.id, "site", "edge")
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match events.next().await {
                    Some(ev) if ev.event_type() == Some(LABELS_CHANGED) => return Some(ev),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await;
        if let Ok(Some(ev)) = heard {
            break ev;
        }
    };
    assert_eq!(ev.source, leaf_host.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lattices_on_one_nats_never_see_each_other() {
    let nats = NatsServer::start().unwrap();
    let a = host(&nats.url(), "alpha").start().unwrap();
    let b = host(&nats.url(), "beta").start().unwrap();
    let ctl_a = ctl(&nats.url(), "alpha").await;
    let ctl_b = ctl(&nats.url(), "beta").await;

    assert_eq!(ids(&ctl_a.ping_hosts().await.unwrap()), vec![a.id.clone()]);
    assert_eq!(ids(&ctl_b.ping_hosts().await.unwrap()), vec![b.id.clone()]);

    // Host-addressed operations do not cross lattices either.
    let err = ctl_a.host_inventory(&b.id).await.unwrap_err();
    assert_eq!(err.kind(), lattice_ctl::ErrorKind::NoResponders);

    let mut events_b = ctl_b.events().await.unwrap();
    let map: BTreeMap<String, String> = [("secret".to_string(), "alpha-only".to_string())].into();
    ctl_a.put_config("app", &map).await.unwrap();
    ctl_a.put_label(&a.id, "team", "alpha").await.unwrap();
    assert_eq!(ctl_a.get_config("app").await.unwrap(), Some(map));
    assert_eq!(ctl_b.get_config("app").await.unwrap(), None);

    // Positive control: an action in beta produces an event in beta; everything beta's watcher
    // received up to it must come from beta's host.
    ctl_b.put_label(&b.id, "team", "beta").await.unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = events_b.next().await {
            let done = ev.event_type() == Some(LABELS_CHANGED);
            seen.push(ev);
            if done {
                break;
            }
        }
    })
    .await
    .unwrap();
    assert!(seen.iter().all(|e| e.source == b.id), "{seen:?}");
}
