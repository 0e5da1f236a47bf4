//! `wasmcloud:messaging` built into every host: subscribed subjects reach one instance of a
//! component (queue group), and components answer requests from anywhere.

use std::time::Duration;

use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;

use crate::common::*;

/// Messages `echo` handled on each of `hosts`, from their inventories.
async fn handled(ctl: &lattice_ctl::Client, hosts: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    for h in hosts {
        let inv = ctl.host_inventory(h).await.unwrap();
        let c = inv.components.iter().find(|c| c.id == "echo");
        out.push(c.and_then(|c| c.calls).unwrap_or(0));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_one_instance_and_requests_are_answered_across_hosts() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let hosts = [
        host_running(&url, &[("echo", "echo", 4)]).await,
        host_running(&url, &[("echo", "echo", 4)]).await,
    ];
    ctl.put_config(
        "echo-subs",
        &[(
            "subscriptions".to_string(),
            "demo.echo, demo.other".to_string(),
        )]
        .into(),
    )
    .await
    .unwrap();
    let mut link = Link::new("messaging", "echo", "wasmcloud", "messaging", &["handler"]);
    link.source_config = vec!["echo-subs".into()];
    ctl.put_link(&link).await.unwrap();

    // Request/reply: this test's own connection asks, a component on one of the hosts answers.
    let client = ctl.nats().clone();
    let answer = lattice_testkit::wait::until_async(
        "an answer from echo",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let asked = client.request("demo.echo", "hello lattice".into());
            match tokio::time::timeout(Duration::from_secs(2), asked).await {
                Ok(Ok(m)) => Some(m.payload),
                _ => None,
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(&answer[..], b"HELLO LATTICE");

    // Both hosts subscribe before the count starts (each answers a request at least once).
    let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    lattice_testkit::wait::until_async(
        "both hosts subscribed",
        Duration::from_secs(20),
        Duration::from_millis(10),
        || async {
            let _ = client.request("demo.other", "x".into()).await;
            handled(&ctl, &ids)
                .await
                .iter()
                .all(|n| *n > 0)
                .then_some(())
        },
    )
    .await
    .unwrap();

    // 100 messages, each handled by exactly one of the two hosts' instances.
    let before: u64 = handled(&ctl, &ids).await.iter().sum();
    for i in 0..100 {
        client
            .publish("demo.echo", format!("m{i}").into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let after = lattice_testkit::wait::until_async(
        "100 messages handled",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            let now: u64 = handled(&ctl, &ids).await.iter().sum();
            (now >= before + 100).then_some(now)
        },
    )
    .await
    .unwrap();
    assert_eq!(after - before, 100, "a message was handled more than once");
}
