//! Declarative applications: manifests stored and deployed with `lattice app`, placed by the
//! reconciler that runs in the hosts, re-placed when hosts die.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lattice_testkit::process::Signal;
use lattice_testkit::{HostProcess, NatsServer};

use crate::common::*;

/// A manifest of app `name`: calc with `scaler` (YAML, indented for `traits:`).
fn manifest(name: &str, version: &str, image: &str, scaler: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
  annotations:
    version: {version}
spec:
  components:
    - name: calc
      type: component
      properties:
        image: {image}
      traits:
{scaler}
"#
    )
}

const SPREAD_6: &str = "        - type: spreadscaler
          properties:
            instances: 6
            spread:
              - name: a
                requirements: { zone: a }
                weight: 2
              - name: b
                requirements: { zone: b }
                weight: 1";

pub(crate) fn zone_host(url: &str, zone: &str) -> HostProcess {
    host(url, "default")
        .heartbeat(Duration::from_millis(500))
        .arg("--allow-file-load")
        .arg("--label")
        .arg(format!("zone={zone}"))
        .start()
        .unwrap()
}

pub(crate) fn app_cli(
    url: &str,
    dir: &tempfile::TempDir,
    args: &[&str],
    text: Option<&str>,
) -> std::process::Output {
    let mut all: Vec<String> = vec!["app".into()];
    for a in args {
        all.push(a.to_string());
    }
    if let Some(t) = text {
        let path = dir.path().join("app.yaml");
        std::fs::write(&path, t).unwrap();
        all.push(path.display().to_string());
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    cli(url, "default", &refs)
}

/// calc's instances per host id (hosts not running it left out).
pub(crate) async fn calc_placement(
    ctl: &lattice_ctl::Client,
    hosts: &[&HostProcess],
    id: &str,
) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for h in hosts {
        if let Ok(inv) = ctl.host_inventory(&h.id).await {
            if let Some(c) = inv.components.iter().find(|c| c.id == id) {
                out.insert(h.id.clone(), c.max_instances);
            }
        }
    }
    out
}

/// Polls until `id`'s instances per host are `want`; returns how long that took.
pub(crate) async fn wait_placement(
    ctl: &lattice_ctl::Client,
    hosts: &[&HostProcess],
    id: &str,
    want: &[(&HostProcess, u32)],
    what: &str,
) -> Duration {
    let want: BTreeMap<String, u32> = want.iter().map(|(h, n)| (h.id.clone(), *n)).collect();
    let started = Instant::now();
    lattice_testkit::wait::until_async(
        what,
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { (calc_placement(ctl, hosts, id).await == want).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weighted_spread_is_placed_then_re_placed_when_a_host_dies_or_joins() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let (a1, mut a2, b1) = (
        zone_host(&url, "a"),
        zone_host(&url, "a"),
        zone_host(&url, "b"),
    );
    let dir = tempfile::tempdir().unwrap();
    let text = manifest("shop", "v1", &component_ref("calc"), SPREAD_6);
    let out = app_cli(&url, &dir, &["put"], Some(&text));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployed_at = Instant::now();
    cli_ok(&url, "default", &["app", "deploy", "shop"]);
    let all = [&a1, &a2, &b1];
    wait_placement(
        &ctl,
        &all,
        "shop-calc",
        &[(&a1, 2), (&a2, 2), (&b1, 2)],
        "6 instances: a 2+2, b 2",
    )
    .await;
    let placed = deployed_at.elapsed();
    println!("spread placed {placed:.2?} after deploy");
    lattice_testkit::wait::until_async(
        "status deployed",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let out = cli(&url, "default", &["app", "status", "shop"]);
            String::from_utf8_lossy(&out.stdout)
                .contains("shop: deployed")
                .then_some(())
        },
    )
    .await
    .unwrap();

    // A zone-a host dies: its share moves to the other zone-a host.
    a2.process.signal(Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    wait_placement(
        &ctl,
        &[&a1, &b1],
        "shop-calc",
        &[(&a1, 4), (&b1, 2)],
        "zone a's 4 on the survivor",
    )
    .await;
    let replaced = killed.elapsed();
    println!("instances of a SIGKILLed host re-placed {replaced:.2?} after the kill");
    a2.process.kill();

    // A new zone-a host gets its share.
    let a3 = zone_host(&url, "a");
    wait_placement(
        &ctl,
        &[&a1, &a3, &b1],
        "shop-calc",
        &[(&a1, 2), (&a3, 2), (&b1, 2)],
        "the newcomer's share",
    )
    .await;

    // Undeploy: everything it started stops.
    cli_ok(&url, "default", &["app", "undeploy", "shop"]);
    wait_placement(&ctl, &[&a1, &a3, &b1], "shop-calc", &[], "nothing left").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_and_overlapping_spreads_settle_on_an_explained_status() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let a1 = zone_host(&url, "a");
    let dir = tempfile::tempdir().unwrap();
    let scaler = "        - type: spreadscaler
          properties:
            instances: 4
            spread:
              - name: a
                requirements: { zone: a }
              - name: also-a
                requirements: { zone: a }
              - name: mars
                requirements: { zone: mars }
                weight: 2";
    let out = app_cli(
        &url,
        &dir,
        &["put"],
        Some(&manifest("odd", "v1", &component_ref("calc"), scaler)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut events = ctl.events().await.unwrap();
    cli_ok(&url, "default", &["app", "deploy", "odd"]);
    // The overlapping spreads add up on the one zone-a host; mars's share has nowhere to go.
    wait_placement(&ctl, &[&a1], "odd-calc", &[(&a1, 2)], "the placeable part").await;
    let status = lattice_testkit::wait::until_async(
        "status failed",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let out = cli(&url, "default", &["app", "status", "odd"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains("odd: failed").then_some(text)
        },
    )
    .await
    .unwrap();
    assert!(
        status.contains("spread \"mars\": no host has labels"),
        "{status}"
    );

    // Stable: no more scale commands over several reconcile ticks.
    let scaled = lattice_testkit::wait::collect_within(&mut events, Duration::from_secs(3), |ev| {
        matches!(
            ev.event_type(),
            Some("component_scaled") | Some("component_scale_failed")
        )
    })
    .await
    .len();
    println!("scale events from deploy to 3 s after settling: {scaled}");
    assert!(scaled <= 2, "the reconciler kept scaling: {scaled} events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_refused_with_their_paths_and_nothing_is_stored() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _h = zone_host(&url, "a");
    let dir = tempfile::tempdir().unwrap();
    let bad = manifest(
        "bad",
        "v1",
        &component_ref("calc"),
        &SPREAD_6.replace("weight: 2", "weight: 0"),
    )
    .replace("type: component", "type: actor");
    let out = app_cli(&url, &dir, &["put"], Some(&bad));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // wadm's own types only: a component or a capability.
    assert!(
        err.contains("spec.components[0].type: \"actor\" is not supported"),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.components[0].traits[0].properties.spread[0].weight: must be at least 1"
        ),
        "{err}"
    );
    let out = app_cli(&url, &dir, &["validate"], Some(&bad));
    assert!(!out.status.success());
    let list = cli_ok(&url, "default", &["app", "list", "-o", "json"]);
    assert_eq!(list.trim(), "[]", "nothing stored");
    let err = String::from_utf8_lossy(&cli(&url, "default", &["app", "deploy", "bad"]).stderr)
        .to_string();
    assert!(err.contains("no application named \"bad\""), "{err}");
}

/// The host id holding the reconciler lease, if any.
async fn reconciler_holder(js: &async_nats::jetstream::Context) -> Option<String> {
    let kv = js.get_key_value("LATTICE_LEASE_default").await.ok()?;
    let v = kv.get("reconciler").await.ok()??;
    Some(String::from_utf8_lossy(&v).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_takes_over_the_reconciler_when_its_host_dies() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let js = async_nats::jetstream::new(ctl.nats().clone());
    let mut hosts = vec![
        zone_host(&url, "a"),
        zone_host(&url, "a"),
        zone_host(&url, "a"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let daemon = |n: u32| {
        format!("        - type: daemonscaler\n          properties:\n            instances: {n}")
    };
    let out = app_cli(
        &url,
        &dir,
        &["put"],
        Some(&manifest("d", "v1", &component_ref("calc"), &daemon(1))),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli_ok(&url, "default", &["app", "deploy", "d"]);
    let all: Vec<&HostProcess> = hosts.iter().collect();
    let one_each: Vec<(&HostProcess, u32)> = all.iter().map(|h| (*h, 1)).collect();
    wait_placement(&ctl, &all, "d-calc", &one_each, "one instance per host").await;

    let leader = lattice_testkit::wait::until_async(
        "a reconciler",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { reconciler_holder(&js).await },
    )
    .await
    .unwrap();
    let i = hosts
        .iter()
        .position(|h| h.id == leader)
        .expect("the leader is one of our hosts");
    let mut dead = hosts.remove(i);
    dead.process.kill();
    let killed = Instant::now();
    let next = lattice_testkit::wait::until_async(
        "another reconciler",
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async { reconciler_holder(&js).await.filter(|h| *h != leader) },
    )
    .await
    .unwrap();
    let took = killed.elapsed();
    println!("reconciler moved to another host {took:.2?} after its host was killed");
    assert!(hosts.iter().any(|h| h.id == next));

    // The new one acts, once per change: v2 asks for 2 instances on each survivor.
    let mut events = ctl.events().await.unwrap();
    let out = app_cli(
        &url,
        &dir,
        &["put"],
        Some(&manifest("d", "v2", &component_ref("calc"), &daemon(2))),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli_ok(&url, "default", &["app", "deploy", "d", "v2"]);
    let survivors: Vec<&HostProcess> = hosts.iter().collect();
    let two_each: Vec<(&HostProcess, u32)> = survivors.iter().map(|h| (*h, 2)).collect();
    wait_placement(
        &ctl,
        &survivors,
        "d-calc",
        &two_each,
        "two instances per survivor",
    )
    .await;
    let scaled = lattice_testkit::wait::collect_within(&mut events, Duration::from_secs(2), |ev| {
        ev.event_type() == Some("component_scaled")
    })
    .await;
    assert_eq!(
        scaled.len(),
        2,
        "one scale per surviving host, no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_under_load_fails_no_call() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let (h1, h2) = (zone_host(&url, "a"), zone_host(&url, "a"));
    // Two versions of calc under different references (the same code: calls must not fail).
    let dir = tempfile::tempdir().unwrap();
    let calc = lattice_testkit::component_path("calc");
    let (v1, v2) = (
        dir.path().join("calc-v1.wasm"),
        dir.path().join("calc-v2.wasm"),
    );
    std::fs::copy(&calc, &v1).unwrap();
    std::fs::copy(&calc, &v2).unwrap();
    let spread = "        - type: spreadscaler\n          properties:\n            instances: 4";
    let put = |version: &str, path: &std::path::Path| {
        let text = manifest(
            "roll",
            version,
            &format!("file://{}", path.display()),
            spread,
        );
        let out = app_cli(&url, &dir, &["put"], Some(&text));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    put("v1", &v1);
    cli_ok(&url, "default", &["app", "deploy", "roll"]);
    wait_placement(
        &ctl,
        &[&h1, &h2],
        "roll-calc",
        &[(&h1, 2), (&h2, 2)],
        "v1 placed",
    )
    .await;

    // Calls from a host that only runs relay, linked to the app's calc.
    let caller = std::sync::Arc::new(in_process_host(&url, "default").await);
    let ev = scale(
        &ctl,
        caller.id(),
        &scale_cmd(&component_ref("relay"), "relay", 16),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    ctl.put_link(&lattice_proto::ctl::Link::new(
        "relay",
        "roll-calc",
        "lattice",
        "examples",
        &["calc"],
    ))
    .await
    .unwrap();
    let relay = Some("lattice:examples/relay@0.1.0");
    let add = |caller: std::sync::Arc<lattice_host::Host>, i: i32| async move {
        let args = [lattice_host::Val::S32(i), lattice_host::Val::S32(1)];
        match caller.call("relay", relay, "add-via-calc", &args).await {
            Ok(v) if v == [lattice_host::Val::S32(i + 1)] => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    lattice_testkit::wait::until_async(
        "calls through the link",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let caller = caller.clone();
            async move { add(caller, 0).await.ok() }
        },
    )
    .await
    .unwrap();

    // 100 calls/s from 2 s before v2 is deployed until 2 s after both hosts run it.
    let started = Instant::now();
    let watcher = {
        let ctl = ctl.clone();
        let ids = [h1.id.clone(), h2.id.clone()];
        let v2_ref = format!("file://{}", v2.display());
        tokio::spawn(async move {
            loop {
                let mut on_v2 = 0;
                for id in &ids {
                    if let Ok(inv) = ctl.host_inventory(id).await {
                        if inv
                            .components
                            .iter()
                            .any(|c| c.id == "roll-calc" && c.image_ref == v2_ref)
                        {
                            on_v2 += 1;
                        }
                    }
                }
                if on_v2 == ids.len() {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut calls = Vec::new();
    let mut deployed = false;
    let mut i = 0;
    let mut updated_at: Option<Instant> = None;
    let give_up = started + Duration::from_secs(60);
    while updated_at.is_none_or(|at| at.elapsed() < Duration::from_secs(2)) {
        assert!(Instant::now() < give_up, "v2 never reached both hosts");
        tick.tick().await;
        if updated_at.is_none() && watcher.is_finished() {
            updated_at = Some(Instant::now());
        }
        if !deployed && started.elapsed() >= Duration::from_secs(2) {
            put("v2", &v2);
            cli_ok(&url, "default", &["app", "deploy", "roll", "v2"]);
            deployed = true;
        }
        i += 1;
        calls.push(tokio::spawn(add(caller.clone(), i)));
    }
    let mut failed = Vec::new();
    for c in calls {
        if let Err(e) = c.await.unwrap() {
            failed.push(e);
        }
    }
    println!("rolling update: {i} calls, {} failed", failed.len());
    assert!(failed.is_empty(), "{failed:?}");
    // The update happened under the load, which went on 2 s after both hosts ran v2.
    let updated = watcher.await.unwrap();
    println!("both hosts ran v2 {updated:.2?} into the load (deployed at 2 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_links_its_components_and_writes_its_config() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let _h = zone_host(&url, "a");
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: duo
spec:
  components:
    - name: front
      type: component
      properties:
        image: {relay}
        config:
          - name: duo-front
            properties: {{ greeting: hi }}
      traits:
        - type: daemonscaler
          properties: {{ instances: 1 }}
        - type: link
          properties:
            target: back
            namespace: lattice
            package: examples
            interfaces: [calc]
    - name: back
      type: component
      properties:
        image: {calc}
      traits:
        - type: daemonscaler
          properties: {{ instances: 1 }}
"#,
        relay = component_ref("relay"),
        calc = component_ref("calc"),
    );
    let out = app_cli(&url, &dir, &["put"], Some(&text));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = cli_ok(&url, "default", &["app", "history", "duo"]);
    assert!(
        history.contains("v1"),
        "versions are numbered when unannotated: {history}"
    );
    cli_ok(&url, "default", &["app", "deploy", "duo"]);
    let out = lattice_testkit::wait::until_async(
        "front -> back through the app's link",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let out = cli(
                &url,
                "default",
                &[
                    "call",
                    "duo-front",
                    "lattice:examples/relay@0.1.0.add-via-calc",
                    "40, 2",
                ],
            );
            out.status.success().then_some(out)
        },
    )
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let links = ctl.get_links().await.unwrap();
    assert!(
        links
            .iter()
            .any(|l| l.source_id == "duo-front" && l.target == "duo-back"),
        "{links:?}"
    );
    let config = ctl
        .get_config("duo-front")
        .await
        .unwrap()
        .expect("config written");
    assert_eq!(config.get("greeting").map(String::as_str), Some("hi"));

    // Undeployed: components stopped, links gone.
    cli_ok(&url, "default", &["app", "undeploy", "duo"]);
    lattice_testkit::wait::until_async(
        "links removed",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let links = ctl.get_links().await.ok()?;
            (!links.iter().any(|l| l.source_id == "duo-front")).then_some(())
        },
    )
    .await
    .unwrap();
    let status = lattice_testkit::wait::until_async(
        "status undeployed",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let out = cli(&url, "default", &["app", "list"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains("undeployed").then_some(text)
        },
    )
    .await
    .unwrap();
    assert!(status.contains("duo"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_serves_http_through_the_built_in_http_server() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let port = lattice_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _h = host(&url, "default")
        .arg("--allow-file-load")
        .arg("--http-address")
        .arg(&addr)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // wadm's shape for HTTP ingress: a capability linked to the component, here the
    // built-in server (as wasmCloud names it), with the route in the link's source config.
    let text = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: web
spec:
  components:
    - name: httpserver
      type: capability
      properties:
        image: wasmcloud+builtin://http-server
      traits:
        - type: link
          properties:
            target: site
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: web-route
                  properties: {{ path: /site }}
    - name: site
      type: component
      properties:
        image: {hello}
      traits:
        - type: daemonscaler
          properties: {{ instances: 4 }}
"#,
        hello = component_ref("http_hello"),
    );
    let out = app_cli(&url, &dir, &["put"], Some(&text));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli_ok(&url, "default", &["app", "deploy", "web"]);
    let body = lattice_testkit::wait::until_async(
        "the app's page",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let r = lattice_testkit::http::get(&addr, "/site").await.ok()?;
            (r.status == 200).then(|| r.text())
        },
    )
    .await
    .unwrap();
    assert_eq!(body, "Hello from Lattice!\n");
    let links = ctl.get_links().await.unwrap();
    assert!(
        links
            .iter()
            .any(|l| l.source_id == "http" && l.target == "web-site" && l.name == "web-site"),
        "{links:?}"
    );

    // Undeployed: the route goes with the app.
    cli_ok(&url, "default", &["app", "undeploy", "web"]);
    lattice_testkit::wait::until_async(
        "the route removed",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let links = ctl.get_links().await.ok()?;
            (!links.iter().any(|l| l.source_id == "http")).then_some(())
        },
    )
    .await
    .unwrap();
}
