//! One lattice over a NATS supercluster: two clusters joined by gateways and a leaf node
//! under one of them ([`lattice_testkit::Supercluster`]). Calls, links and config cross the
//! gateway and the leaf; an app spreads over both clusters; losing the gateway leaves each
//! side serving its own instances (the app reports the lost zone), and the lattice
//! reconverges when it returns.

use std::collections::BTreeMap;
use std::time::Duration;

use lattice_proto::ctl::Link;
use lattice_testkit::{HostProcess, Supercluster};

use crate::apps::{calc_placement, wait_placement};
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn zone_host(url: &str, zone: &str, extra: &[&str]) -> HostProcess {
    let mut spec = host(url, "default")
        .heartbeat(Duration::from_millis(500))
        .arg("--allow-file-load")
        .arg("--label")
        .arg(format!("zone={zone}"));
    for a in extra {
        spec = spec.arg(*a);
    }
    spec.start().unwrap()
}

/// Polls `lattice call` through `url` until it prints `want`.
async fn until_call(url: &str, id: &str, func: &str, args: &str, want: &str) {
    let last = std::sync::Mutex::new(String::new());
    lattice_testkit::wait::until_async(
        &format!("{id}.{func}({args}) = {want} through {url}"),
        WAIT,
        Duration::from_millis(100),
        || async {
            let out = cli(url, "default", &["call", id, func, args]);
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            *last.lock().unwrap() = format!("{text} {}", String::from_utf8_lossy(&out.stderr));
            (out.status.success() && text == want).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; last: {}", last.lock().unwrap()));
}

/// Polls `lattice app status span` through `url` until it contains `want`; returns it.
async fn until_status(url: &str, want: &str) -> String {
    lattice_testkit::wait::until_async(
        &format!("app status {want}"),
        WAIT,
        Duration::from_millis(100),
        || async {
            let out = cli(url, "default", &["app", "status", "span"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains(want).then_some(text)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lattice_spans_two_clusters_and_a_leaf_and_outlives_its_gateway() {
    let sc = Supercluster::start().unwrap();
    let (east, west, leaf) = (sc.east[0].url(), sc.west.url(), sc.leaf.url());
    // East's host first: the lattice's buckets and the reconciler's lease are made in the
    // cluster that keeps the JetStream quorum when the gateway goes.
    let ha = zone_host(&east, "east", &[]);
    let ctl_e = ctl(&east, "default").await;
    let js = async_nats::jetstream::new(ctl_e.nats().clone());
    lattice_testkit::wait::until_async(
        "east holds the lease",
        WAIT,
        Duration::from_millis(50),
        || async {
            let kv = js.get_key_value("LATTICE_LEASE_default").await.ok()?;
            let v = kv.get("reconciler").await.ok()??;
            (v.as_ref() == ha.id.as_bytes()).then_some(())
        },
    )
    .await
    .unwrap();
    let hb = zone_host(&west, "west", &[]);
    let domain = lattice_testkit::nats::CLUSTER_JS_DOMAIN;
    let hl = zone_host(&leaf, "leaf", &["--js-domain", domain]);
    let all = [&ha, &hb, &hl];
    for url in [&east, &west, &leaf] {
        let c = ctl(url, "default").await;
        wait_hosts(&c, WAIT, "all three hosts", |h| h.len() == 3).await;
    }

    // Calls and links across the gateway and the leaf: relays in east, calcs in west and
    // behind the leaf.
    for (h, id) in [(&hb, "calc-w"), (&hl, "calc-l")] {
        let ev = scale(&ctl_e, &h.id, &scale_cmd(&component_ref("calc"), id, 2)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    for (relay, target) in [("relay-w", "calc-w"), ("relay-l", "calc-l")] {
        let ev = scale(
            &ctl_e,
            &ha.id,
            &scale_cmd(&component_ref("relay"), relay, 2),
        )
        .await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
        ctl_e
            .put_link(&Link::new(relay, target, "lattice", "examples", &["calc"]))
            .await
            .unwrap();
        until_call(
            &east,
            relay,
            "lattice:examples/relay@0.1.0.add-via-calc",
            "40, 2",
            "42",
        )
        .await;
    }
    // Config written behind the leaf is read in east.
    let ctl_l = ctl(&leaf, "default").await;
    let map: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
    ctl_l.put_config("span", &map).await.unwrap();
    assert_eq!(ctl_e.get_config("span").await.unwrap(), Some(map));

    // An app over both clusters: two instances in each.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("span.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{ name: span }}\n\
             spec:\n  components:\n    - name: calc\n      type: component\n      \
             properties: {{ image: \"{}\" }}\n      traits:\n        - type: spreadscaler\n          \
             properties:\n            instances: 4\n            spread:\n              \
             - {{ name: east, requirements: {{ zone: east }} }}\n              \
             - {{ name: west, requirements: {{ zone: west }} }}\n",
            component_ref("calc")
        ),
    )
    .unwrap();
    cli_ok(
        &east,
        "default",
        &["app", "deploy", &path.display().to_string()],
    );
    wait_placement(
        &ctl_e,
        &all,
        "span-calc",
        &[(&ha, 2), (&hb, 2)],
        "2 and 2 over the clusters",
    )
    .await;

    // The gateway lost: each side keeps serving its own instances.
    sc.cut_gateway();
    let add = "lattice:examples/calc@0.1.0.add";
    until_call(&west, "span-calc", add, "1, 2", "3").await;
    until_call(&east, "span-calc", add, "2, 2", "4").await;
    // East keeps JetStream and the reconciler. It sees no host in zone west any more, so
    // the app is failed with that reason; it does not pile west's share onto east (the
    // spread says where instances go), and west's two keep running.
    let status = until_status(&east, "span: failed").await;
    assert!(
        status.contains("spread \"west\": no host has labels"),
        "{status}"
    );
    assert_eq!(
        calc_placement(&ctl_e, &[&ha], "span-calc").await,
        [(ha.id.clone(), 2)].into(),
        "east's instances stay as they were"
    );
    let ctl_w = ctl(&west, "default").await;
    // West has no JetStream quorum: a write there fails instead of being acknowledged.
    let out = cli(&west, "default", &["config", "put", "cut", "k=v"]);
    assert!(
        !out.status.success(),
        "config put without a quorum: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        calc_placement(&ctl_w, &[&hb], "span-calc").await,
        [(hb.id.clone(), 2)].into(),
        "west's instances ran on"
    );

    // Healed: one lattice again, and the app back to two and two.
    sc.heal_gateway();
    sc.wait_gateways().unwrap();
    wait_placement(
        &ctl_e,
        &all,
        "span-calc",
        &[(&ha, 2), (&hb, 2)],
        "2 and 2 again after the heal",
    )
    .await;
    until_status(&east, "span: deployed").await;
    until_call(
        &east,
        "relay-w",
        "lattice:examples/relay@0.1.0.add-via-calc",
        "1, 1",
        "2",
    )
    .await;
}
