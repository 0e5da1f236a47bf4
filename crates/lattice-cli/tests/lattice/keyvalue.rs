//! `wasi:keyvalue` built into every host, backed by JetStream KV.

use std::time::Duration;

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

/// Grants `counter` the buckets of config `buckets` (`key=value` pairs of a `wasi:keyvalue`
/// link's target config), replacing its link.
pub(crate) async fn grant(ctl: &lattice_ctl::Client, values: &[(&str, &str)]) {
    put_config(ctl, "counter-kv", values).await;
    let mut link = lattice_proto::ctl::Link::new(
        "counter",
        "keyvalue",
        "wasi",
        "keyvalue",
        &["store", "atomics"],
    );
    link.target_config = vec!["counter-kv".into()];
    ctl.put_link(&link).await.unwrap();
}

/// A NATS server, `n` hosts running `counter` (granted bucket `visits`), a control client
/// and a wRPC client.
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
    grant(&ctl, &[("buckets", "visits")]).await;
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    (nats, hosts, ctl, client)
}

/// The count stored at `key` in KV bucket `kv`.
async fn stored(kv: &async_nats::jetstream::kv::Store, key: &str) -> u64 {
    let raw = kv.get(key).await.unwrap().expect("a stored count");
    String::from_utf8(raw.to_vec()).unwrap().parse().unwrap()
}

/// `counter.{func}("visits", key)` over wRPC, on whichever host NATS picks.
pub(crate) async fn counter_call(
    client: &lattice_wrpc::transport::Client,
    func: &str,
    key: &str,
) -> Value {
    counter_call_in(client, func, "visits", key).await
}

/// `counter.{func}(bucket, key)` over wRPC.
async fn counter_call_in(
    client: &lattice_wrpc::transport::Client,
    func: &str,
    bucket: &str,
    key: &str,
) -> Value {
    let params = [
        Value::make_string(bucket.into()),
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
            lattice_wrpc::transport::Call::new(
                "default.counter",
                COUNTER,
                func,
                bytes.into(),
                deadline,
            ),
            |b| lattice_wrpc::decode_values::<Value>(&result, b),
        )
        .await
        .unwrap_or_else(|e| panic!("counter.{func}: {e}"));
    out.remove(0)
}

/// The error text of a counter call that failed.
pub(crate) fn err_text(v: &Value) -> Option<String> {
    match v.unwrap_result() {
        Err(Some(e)) => Some(e.unwrap_string().to_string()),
        _ => None,
    }
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
async fn buckets_are_reached_only_through_a_link_that_grants_them() {
    let nats = NatsServer::start().unwrap();
    let _hosts = counter_hosts(&nats.url(), 1).await;
    let ctl = ctl(&nats.url(), "default").await;
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    let js = async_nats::jetstream::new(ctl.nats().clone());

    // No link: access denied, and no bucket made.
    let e = err_text(&counter_call(&client, "increment", "k").await).expect("refused");
    assert!(e.contains("AccessDenied"), "{e}");
    assert!(
        js.get_key_value("KV_default_visits").await.is_err(),
        "a bucket was created"
    );

    // `buckets=` lets the guest open those names, and only those.
    grant(&ctl, &[("buckets", "visits,other")]).await;
    lattice_testkit::wait::until_async(
        "an increment in a granted bucket",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { ok_u64_or_none(&counter_call(&client, "increment", "k").await) },
    )
    .await
    .unwrap();
    let e = err_text(&counter_call_in(&client, "increment", "secret", "k").await).expect("refused");
    assert!(e.contains("AccessDenied"), "{e}");
    assert!(js.get_key_value("KV_default_secret").await.is_err());

    // `bucket=` sends every open to the operator's choice.
    grant(&ctl, &[("bucket", "chosen")]).await;
    let chosen = lattice_testkit::wait::until_async(
        "an increment in the chosen bucket",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            ok_u64_or_none(&counter_call_in(&client, "increment", "anything", "k").await)?;
            let kv = js.get_key_value("KV_default_chosen").await.ok()?;
            kv.get("k").await.ok().flatten()
        },
    )
    .await
    .unwrap();
    assert_eq!(&chosen[..], b"1");
    // The bucket granted before kept its count and got nothing after the grant changed.
    let visits = js.get_key_value("KV_default_visits").await.unwrap();
    let before = stored(&visits, "k").await;
    ok_u64(&counter_call(&client, "increment", "k").await).unwrap();
    assert_eq!(
        stored(&visits, "k").await,
        before,
        "an increment went to the old grant"
    );
}

/// The count a counter call returned, or `None` if it failed (a grant not yet seen).
fn ok_u64_or_none(v: &Value) -> Option<u64> {
    err_text(v).is_none().then(|| ok_u64(v)).flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lattices_whose_names_concatenate_alike_keep_separate_buckets() {
    // Lattice `a` bucket `b_c` and lattice `a_b` bucket `c` once both were KV_a_b_c.
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let mut counts = Vec::new();
    let mut hosts = Vec::new();
    for (lattice, bucket) in [("a", "b_c"), ("a_b", "c")] {
        let ctl = ctl(&url, lattice).await;
        let h = host(&url, lattice)
            .arg("--allow-file-load")
            .start()
            .unwrap();
        let ev = scale(
            &ctl,
            &h.id,
            &scale_cmd(&component_ref("counter"), "counter", 1),
        )
        .await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
        grant(&ctl, &[("bucket", bucket)]).await;
        let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
        let prefix = format!("{lattice}.counter");
        for _ in 0..if lattice == "a" { 3 } else { 1 } {
            lattice_testkit::wait::until_async(
                "an increment",
                Duration::from_secs(20),
                Duration::from_millis(50),
                || async { ok_u64_or_none(&counter_call_at(&client, &prefix, "k").await) },
            )
            .await
            .unwrap();
        }
        counts.push(ok_u64(&counter_call_at(&client, &prefix, "k").await));
        hosts.push(h);
    }
    // Lattice `a` counted to 4 in its bucket; `a_b` to 2 in its own, not 5 in a shared one.
    assert_eq!(counts, vec![Some(4), Some(2)]);
}

/// `counter.increment("x", key)` of the counter under wRPC prefix `prefix`.
async fn counter_call_at(
    client: &lattice_wrpc::transport::Client,
    prefix: &str,
    key: &str,
) -> Value {
    let params = [
        Value::make_string("x".into()),
        Value::make_string(key.into()),
    ];
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&[Type::STRING, Type::STRING], &params, &mut bytes).unwrap();
    let result = [Type::result(Some(Type::U64), Some(Type::STRING))];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut out = client
        .invoke(
            lattice_wrpc::transport::Call::new(
                prefix,
                COUNTER,
                "increment",
                bytes.into(),
                deadline,
            ),
            |b| lattice_wrpc::decode_values::<Value>(&result, b),
        )
        .await
        .unwrap_or_else(|e| panic!("counter.increment: {e}"));
    out.remove(0)
}
