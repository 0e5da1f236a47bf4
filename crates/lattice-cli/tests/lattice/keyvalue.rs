//! `wasi:keyvalue` built into every host, backed by JetStream KV.

use std::time::Duration;

use async_nats::HeaderMap;
use lattice_testkit::{HostProcess, NatsServer};
use wasm_wave::value::{Type, Value};
use wasm_wave::wasm::WasmValue;

use crate::common::*;

const COUNTER: &str = "lattice:examples/counter@0.1.0";

async fn counter_hosts(url: &str, n: usize) -> Vec<HostProcess> {
    let mut hosts = Vec::new();
    for _ in 0..n {
        hosts.push(host_running(url, &[("counter", "counter", 8)]).await);
    }
    hosts
}

/// A NATS server, `n` hosts running `counter`, a control client and a wRPC client.
async fn counter_lattice(
    n: usize,
) -> (
    NatsServer,
    Vec<HostProcess>,
    lattice_ctl::Client,
    lattice_wrpc::transport::Client,
) {
    let nats = NatsServer::start().unwrap();
    let hosts = counter_hosts(&nats.url(), n).await;
    let ctl = ctl(&nats.url(), "default").await;
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    (nats, hosts, ctl, client)
}

/// The count stored at `key` in KV bucket `kv`.
async fn stored(kv: &async_nats::jetstream::kv::Store, key: &str) -> u64 {
    let raw = kv.get(key).await.unwrap().expect("a stored count");
    String::from_utf8(raw.to_vec()).unwrap().parse().unwrap()
}

/// `counter.{func}("visits", key)` over wRPC, on whichever host NATS picks.
async fn counter_call(client: &lattice_wrpc::transport::Client, func: &str, key: &str) -> Value {
    let params = [
        Value::make_string("visits".into()),
        Value::make_string(key.into()),
    ];
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&[Type::STRING, Type::STRING], &params, &mut bytes).unwrap();
    let ok = if func == "get" {
        Type::option(Type::U64)
    } else {
        Type::U64
    };
    let result = [Type::result(Some(ok), Some(Type::STRING))];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut out = client
        .invoke(
            "default.counter",
            COUNTER,
            func,
            bytes.into(),
            HeaderMap::new(),
            deadline,
            |b| lattice_wrpc::decode_values::<Value>(&result, b),
        )
        .await
        .unwrap_or_else(|e| panic!("counter.{func}: {e}"));
    out.remove(0)
}

fn ok_u64(v: &Value) -> Option<u64> {
    match v.unwrap_result() {
        Ok(Some(v)) => match v.kind() {
            wasm_wave::wasm::WasmTypeKind::U64 => Some(v.unwrap_u64()),
            wasm_wave::wasm::WasmTypeKind::Option => v.unwrap_option().map(|v| v.unwrap_u64()),
            _ => None,
        },
        Ok(None) => None,
        Err(e) => panic!(
            "counter failed: {:?}",
            e.map(|e| e.unwrap_string().to_string())
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_from_three_hosts_all_count_and_outlive_the_hosts() {
    let (nats, hosts, ctl, client) = counter_lattice(3).await;
    let url = nats.url();

    // 3 callers x 100 increments, each call served by any of the 3 hosts.
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    counter_call(&client, "increment", "home").await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let total = ok_u64(&counter_call(&client, "get", "home").await);
    assert_eq!(total, Some(300), "no increment lost");
    for h in &hosts {
        let inv = ctl.host_inventory(&h.id).await.unwrap();
        let calls = inv
            .components
            .iter()
            .find(|c| c.id == "counter")
            .and_then(|c| c.calls);
        assert!(calls.unwrap_or(0) > 0, "{} served no increment", h.id);
    }

    // Every host killed and replaced: the count is still there.
    drop(hosts);
    let _new = counter_hosts(&url, 2).await;
    let total = ok_u64(&counter_call(&client, "get", "home").await);
    assert_eq!(total, Some(300), "values outlive the hosts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_chooses_the_bucket() {
    let (_nats, _hosts, ctl, client) = counter_lattice(1).await;
    // Without a link, the guest's own name ("visits") is the bucket.
    assert_eq!(
        ok_u64(&counter_call(&client, "increment", "k").await),
        Some(1)
    );

    // With one, the operator's choice wins, for every name the guest opens.
    ctl.put_config(
        "kv-choice",
        &[("bucket".to_string(), "chosen".to_string())].into(),
    )
    .await
    .unwrap();
    let mut link = lattice_proto::ctl::Link::new(
        "counter",
        "keyvalue",
        "wasi",
        "keyvalue",
        &["store", "atomics"],
    );
    link.target_config = vec!["kv-choice".into()];
    ctl.put_link(&link).await.unwrap();
    let js = async_nats::jetstream::new(ctl.nats().clone());
    let chosen = lattice_testkit::wait::until_async(
        "an increment in the chosen bucket",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            ok_u64(&counter_call(&client, "increment", "k").await)?;
            let kv = js.get_key_value("KV_default_chosen").await.ok()?;
            kv.get("k").await.ok().flatten()
        },
    )
    .await
    .unwrap();
    assert_eq!(&chosen[..], b"1");
    // The unlinked bucket kept its count (and got nothing after the link took effect).
    let visits = js.get_key_value("KV_default_visits").await.unwrap();
    let before = stored(&visits, "k").await;
    ok_u64(&counter_call(&client, "increment", "k").await).unwrap();
    assert_eq!(
        stored(&visits, "k").await,
        before,
        "an increment still went to the guest's own bucket"
    );

    // A changed config moves the next opens (the host's cached choice follows the config).
    ctl.put_config(
        "kv-choice",
        &[("bucket".to_string(), "moved".to_string())].into(),
    )
    .await
    .unwrap();
    lattice_testkit::wait::until_async(
        "an increment in the bucket the config moved to",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            ok_u64(&counter_call(&client, "increment", "k").await)?;
            let kv = js.get_key_value("KV_default_moved").await.ok()?;
            kv.get("k").await.ok().flatten()
        },
    )
    .await
    .unwrap();
}
