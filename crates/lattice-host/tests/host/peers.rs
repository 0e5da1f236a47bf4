//! Lattice hosts with wasmCloud v1's real capability providers, built from crates.io by
//! `scripts/peers` into `$LATTICE_PEERS_DIR` (slow to build, so these tests are ignored by
//! the default run; `scripts/test-peers` runs them).

use std::time::Duration;

use lattice_proto::ctl::Link;
use lattice_proto::provider::StartProviderCommand;
use lattice_testkit::peers::{hello_manifest, peer_ref, start_wadm, wadm_request};
use lattice_testkit::{free_port, http, wait, NatsServer};

use crate::common::*;

const EVENT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real providers: scripts/test-peers"]
async fn the_real_http_server_provider_serves_a_lattice_component_over_wrpc_http() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    scale(
        &ctl,
        host.id(),
        &scale_cmd(&component_ref("http_hello"), "hello", 4),
    )
    .await;
    ctl.start_provider(
        host.id(),
        &StartProviderCommand {
            provider_id: "http-server".into(),
            provider_ref: peer_ref("http-server-provider"),
            host_id: None,
            config: vec![],
            annotations: Default::default(),
        },
    )
    .await
    .unwrap();
    let started = next_event(&mut events, "provider_started", EVENT).await;
    assert_eq!(started.data["provider_id"], "http-server");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    put_config(&ctl, "hello-address", &[("address", addr.as_str())]).await;
    // As a wasmCloud v1 manifest links them: the provider is the source.
    let mut link = Link::new(
        "http-server",
        "hello",
        "wasi",
        "http",
        &["incoming-handler"],
    );
    link.source_config = vec!["hello-address".into()];
    ctl.put_link(&link).await.unwrap();
    let hello = wait::until_async(
        "the provider serves the link",
        EVENT,
        Duration::from_millis(100),
        || async { http::get(&addr, "/").await.ok().filter(|r| r.status == 200) },
    )
    .await
    .unwrap();
    assert_eq!(hello.text(), "Hello from Lattice!\n");
    // A request body streams to the component and its response body back.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = http::request_with(&addr, "POST", "x", "/echo", &[], &body, EVENT)
        .await
        .unwrap();
    assert_eq!((echoed.status, echoed.body.len()), (200, body.len()));
    assert!(echoed.body == body, "the body came back unchanged");
    let sum = http::request_with(&addr, "POST", "x", "/sum", &[], b"abc", EVENT)
        .await
        .unwrap();
    assert_eq!(sum.text(), "3 bytes, sum 294\n");
    // The component's failure is the provider's error status.
    let trapped = http::get(&addr, "/trap").await.unwrap();
    assert!(trapped.status >= 500, "{}", trapped.status);
    ctl.stop_provider(host.id(), "http-server").await.unwrap();
    next_event(&mut events, "provider_stopped", EVENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real providers: scripts/test-peers"]
async fn the_real_messaging_nats_provider_delivers_to_a_lattice_component_and_publishes_for_it() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let host = in_process_host(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    scale(
        &ctl,
        host.id(),
        &scale_cmd(&component_ref("echo"), "echo", 2),
    )
    .await;
    // The provider's own connection: the test's server (its default is port 4222).
    put_config(&ctl, "nats-uris", &[("cluster_uris", nats.url().as_str())]).await;
    ctl.start_provider(
        host.id(),
        &StartProviderCommand {
            provider_id: "nats-messaging".into(),
            provider_ref: peer_ref("messaging-nats-provider"),
            host_id: None,
            config: vec!["nats-uris".into()],
            annotations: Default::default(),
        },
    )
    .await
    .unwrap();
    next_event(&mut events, "provider_started", EVENT).await;
    put_config(
        &ctl,
        "echo-subs",
        &[
            ("subscriptions", "peer.echo"),
            ("cluster_uris", nats.url().as_str()),
        ],
    )
    .await;
    // Messages reach the component through the provider (the link's source), and the
    // component's answers go out through it (its consumer link's target).
    let mut deliver = Link::new(
        "nats-messaging",
        "echo",
        "wasmcloud",
        "messaging",
        &["handler"],
    );
    deliver.source_config = vec!["echo-subs".into()];
    ctl.put_link(&deliver).await.unwrap();
    ctl.put_link(&Link::new(
        "echo",
        "nats-messaging",
        "wasmcloud",
        "messaging",
        &["consumer"],
    ))
    .await
    .unwrap();
    let answer = wait::until_async(
        "the provider delivers and answers",
        EVENT,
        Duration::from_millis(200),
        || async {
            let asked = raw.request("peer.echo", "hello".into());
            let reply = tokio::time::timeout(Duration::from_secs(2), asked)
                .await
                .ok()?
                .ok()?;
            Some(String::from_utf8_lossy(&reply.payload).to_string())
        },
    )
    .await
    .unwrap();
    assert_eq!(answer, "HELLO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real providers and wadm: scripts/test-peers"]
async fn the_real_wadm_deploys_a_wasmcloud_manifest_with_a_provider_onto_lattice_hosts() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let host = in_process_host(&nats.url(), "default").await;
    let mut wadm_process = start_wadm(&nats, dir.path(), Duration::from_secs(70));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // As published for wasmCloud v1 (the Rust hello-world), with file:// artifacts.
    let manifest = hello_manifest(
        &component_ref("http_hello"),
        "spreadscaler",
        &peer_ref("http-server-provider"),
        &addr,
    );
    let put = wadm_request(
        &raw,
        &wadm_process,
        "default",
        "model.put",
        manifest.as_bytes(),
    )
    .await;
    assert_eq!(put["result"], "created", "{put}");
    let deployed = wadm_request(&raw, &wadm_process, "default", "model.deploy.hello", b"{}").await;
    assert_eq!(deployed["result"], "acknowledged", "{deployed}");
    let hello = wait::until_async(
        "wadm's deployment serves",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async { http::get(&addr, "/").await.ok().filter(|r| r.status == 200) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm_process.log()));
    assert_eq!(hello.text(), "Hello from Lattice!\n");
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.providers.len(), 1, "{inv:?}");
    assert_eq!(inv.providers[0].id, "hello-httpserver");
    let status = wait::until_async(
        "wadm reports the app deployed",
        EVENT,
        Duration::from_millis(200),
        || async {
            let s = wadm_request(&raw, &wadm_process, "default", "model.status.hello", b"").await;
            (s["status"]["status"]["type"] == "deployed").then_some(s)
        },
    )
    .await
    .unwrap_or_else(|e| {
        let last = futures::executor::block_on(wadm_request(
            &raw,
            &wadm_process,
            "default",
            "model.status.hello",
            b"",
        ));
        panic!("{e}\nlast status: {last}")
    });
    println!("status: {status}");
    let undeployed = wadm_request(
        &raw,
        &wadm_process,
        "default",
        "model.undeploy.hello",
        b"{}",
    )
    .await;
    assert_eq!(undeployed["result"], "acknowledged", "{undeployed}");
    wait::until_async(
        "wadm removes everything",
        EVENT,
        Duration::from_millis(200),
        || async {
            let inv = ctl.host_inventory(host.id()).await.ok()?;
            (inv.providers.is_empty() && inv.components.is_empty()).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm_process.log()));
    wadm_process.kill();
}
