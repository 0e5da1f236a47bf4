//! `wasmcloud:messaging` built into every host: subscribed subjects reach one instance of a
//! component (queue group), and components answer requests from anywhere.

use std::time::Duration;

use futures::StreamExt;

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
    put_config(
        &ctl,
        "echo-subs",
        &[("subscriptions", "demo.echo, demo.other")],
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_puts_a_components_messages_on_other_servers() {
    // The lattice on server `a`; application traffic on server `b` (another NATS, as another
    // account would be), named by the links' `cluster_uris`.
    let a = NatsServer::start().unwrap();
    let b = NatsServer::start().unwrap();
    let ctl = ctl(&a.url(), "default").await;
    let host = host_running(&a.url(), &[("echo", "echo", 2), ("snoop", "snoop", 1)]).await;
    let on_b = lattice_nats::connect(&lattice_nats::NatsConfig::from_urls(&b.url()))
        .await
        .unwrap();
    let mut seen_on_a = ctl.nats().subscribe("app.>").await.unwrap();
    let mut seen_on_b = on_b.subscribe("app.>").await.unwrap();
    ctl.nats().flush().await.unwrap();
    on_b.flush().await.unwrap();
    let b_url = b.url();

    // Sending: snoop's consumer link names server b.
    put_config(&ctl, "snoop-elsewhere", &[("cluster_uris", &b_url)]).await;
    let mut consumer = Link::new(
        "snoop",
        "messaging",
        "wasmcloud",
        "messaging",
        &["consumer"],
    );
    consumer.target_config = vec!["snoop-elsewhere".into()];
    ctl.put_link(&consumer).await.unwrap();
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    use wasm_wave::value::{Type, Value};
    use wasm_wave::wasm::WasmValue;
    let publish = || async {
        let params = [
            Value::make_string("app.hello".into()),
            Value::make_option(&Type::option(Type::STRING), None).unwrap(),
            Value::make_list(&Type::list(Type::U8), [Value::make_u8(b'x')]).unwrap(),
        ];
        let types = [
            Type::STRING,
            Type::option(Type::STRING),
            Type::list(Type::U8),
        ];
        let mut bytes = Vec::new();
        lattice_wrpc::encode_values(&types, &params, &mut bytes).unwrap();
        let result = [Type::result(None, Some(Type::STRING))];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let out = client
            .invoke(
                lattice_wrpc::transport::Call::new(
                    "default.snoop",
                    "lattice:examples/snoop@0.1.0",
                    "publish",
                    bytes.into(),
                    deadline,
                ),
                |b| lattice_wrpc::decode_values::<Value>(&result, b),
            )
            .await
            .unwrap();
        out[0].unwrap_result().is_ok().then_some(())
    };
    lattice_testkit::wait::until_async(
        "a publish through the link",
        Duration::from_secs(20),
        Duration::from_millis(50),
        publish,
    )
    .await
    .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), seen_on_b.next())
        .await
        .expect("the message on server b")
        .unwrap();
    assert_eq!(m.subject.as_str(), "app.hello");
    ctl.nats().flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), seen_on_a.next())
            .await
            .is_err(),
        "the message reached the lattice's own server"
    );

    // Receiving: echo's subscription link names server b too, and it answers there.
    let subs = [("cluster_uris", b_url.as_str()), ("subscriptions", "b.ask")];
    put_config(&ctl, "echo-elsewhere", &subs).await;
    let mut handler = Link::new("messaging", "echo", "wasmcloud", "messaging", &["handler"]);
    handler.source_config = vec!["echo-elsewhere".into()];
    ctl.put_link(&handler).await.unwrap();
    let answer = lattice_testkit::wait::until_async(
        "echo answering on server b",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let asked = on_b.request("b.ask", "hi there".into());
            match tokio::time::timeout(Duration::from_secs(2), asked).await {
                Ok(Ok(m)) => Some(m.payload),
                _ => None,
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(&answer[..], b"HI THERE");
    drop(host);
}
