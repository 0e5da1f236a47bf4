//! Labels, named config and heartbeats: state a host keeps or shares through JetStream KV.

use std::collections::BTreeMap;
use std::time::Duration;

use lattice_ctl::ErrorKind;
use lattice_proto::event::{
    HostHeartbeat, CONFIG_DELETED, CONFIG_SET, HOST_HEARTBEAT, LABELS_CHANGED,
};
use lattice_testkit::NatsServer;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_set_and_removed_with_events() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    let h = host(&nats.url(), "default").start().unwrap();

    cli_ok(
        &nats.url(),
        "default",
        &["label", "put", &h.id, "zone", "eu-1"],
    );
    let ev = next_event(&mut events, LABELS_CHANGED, Duration::from_secs(5)).await;
    assert_eq!(ev.data["labels"]["zone"], "eu-1");
    assert_eq!(ev.data["host_id"], h.id.as_str());
    let hosts = ctl.ping_hosts().await.unwrap();
    assert_eq!(hosts[0].labels["zone"], "eu-1");

    cli_ok(&nats.url(), "default", &["label", "del", &h.id, "zone"]);
    let ev = next_event(&mut events, LABELS_CHANGED, Duration::from_secs(5)).await;
    assert!(ev.data["labels"].get("zone").is_none());
    let inv = ctl.host_inventory(&h.id).await.unwrap();
    assert!(!inv.labels.contains_key("zone"));

    for key in ["hostcore.os", "hostcore.new"] {
        let err = ctl.put_label(&h.id, key, "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(err.to_string().contains("reserved"), "{err}");
        let err = ctl.delete_label(&h.id, key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
    }
    let inv = ctl.host_inventory(&h.id).await.unwrap();
    assert_eq!(inv.labels["hostcore.os"], std::env::consts::OS);

    // Labels ride in every heartbeat, so a host caps them.
    let big = "v".repeat(10_000);
    let err = ctl.put_label(&h.id, "big", &big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_is_stored_in_kv_and_answered_by_one_host() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    let _hosts: Vec<_> = (0..2)
        .map(|_| host(&nats.url(), "default").start().unwrap())
        .collect();

    let out = cli_ok(
        &nats.url(),
        "default",
        &["config", "put", "db", "url=postgres://db", "pool=4"],
    );
    assert!(out.contains("stored"), "{out}");
    let ev = next_event(&mut events, CONFIG_SET, Duration::from_secs(5)).await;
    assert_eq!(ev.data["config_name"], "db");

    let expected: BTreeMap<String, String> = [("url", "postgres://db"), ("pool", "4")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    assert_eq!(ctl.get_config("db").await.unwrap(), Some(expected.clone()));
    let json = cli_ok(
        &nats.url(),
        "default",
        &["-o", "json", "config", "get", "db"],
    );
    assert_eq!(
        serde_json::from_str::<BTreeMap<String, String>>(&json).unwrap(),
        expected
    );

    // The value really is in the wasmCloud-compatible KV bucket.
    let nats_client = async_nats::connect(nats.url()).await.unwrap();
    let kv = async_nats::jetstream::new(nats_client)
        .get_key_value("CONFIGDATA_default")
        .await
        .unwrap();
    let raw = kv.get("db").await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<BTreeMap<String, String>>(&raw).unwrap(),
        expected
    );

    // Exactly one host answered (queue group): a request gets one reply, not two.
    let mut sub = ctl.nats().subscribe("_T.cfg").await.unwrap();
    ctl.nats()
        .publish_with_reply("wasmbus.ctl.v1.default.config.get.db", "_T.cfg", "".into())
        .await
        .unwrap();
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(2), sub.next())
        .await
        .unwrap();
    assert!(first.is_some());
    let second = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
    assert!(
        second.is_err(),
        "a second host answered a queue-grouped config request"
    );

    cli_ok(&nats.url(), "default", &["config", "del", "db"]);
    let ev = next_event(&mut events, CONFIG_DELETED, Duration::from_secs(5)).await;
    assert_eq!(ev.data["config_name"], "db");
    assert_eq!(ctl.get_config("db").await.unwrap(), None);
    let out = cli(&nats.url(), "default", &["config", "get", "db"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    let err = ctl
        .put_config("bad name", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_periodic_small_and_say_when_the_next_is_due() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let mut events = ctl.events().await.unwrap();
    let h = host(&nats.url(), "default")
        .heartbeat(Duration::from_millis(300))
        .start()
        .unwrap();
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let ev = next_event(&mut events, HOST_HEARTBEAT, Duration::from_secs(2)).await;
        assert_eq!(ev.source, h.id);
        sizes.push(serde_json::to_vec(&ev).unwrap().len());
        let hb: HostHeartbeat = serde_json::from_value(ev.data).unwrap();
        assert_eq!(hb.heartbeat_interval_ms, Some(300));
        assert_eq!(hb.component_count, Some(0));
        assert!(!hb.components_truncated);
        assert_eq!(hb.friendly_name, h.friendly_name);
    }
    println!("heartbeat event bytes with an empty inventory: {sizes:?}");
    assert!(sizes.iter().all(|s| *s < 2048), "{sizes:?}");
}
