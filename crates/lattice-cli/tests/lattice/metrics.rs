//! Metrics as an operator reads them: two host processes with `--metrics-address`, scraped
//! by a real Prometheus (Debian's), asked through its query API. `relay` on one host calls
//! `calc` on the other through a link; every call is counted on both sides, and a failed
//! call carries its error kind as a label.

use std::time::Duration;

use lattice_proto::ctl::Link;
use lattice_testkit::prometheus::Prometheus;
use lattice_testkit::{HostProcess, NatsServer};

use crate::common::*;

const RELAY: &str = "lattice:examples/relay@0.1.0";
const CALC: &str = "lattice:examples/calc@0.1.0";

/// A host with its metrics endpoint and HTTP listener on ports of their own.
fn measured_host(url: &str) -> (HostProcess, String, u16) {
    let addr = format!("127.0.0.1:{}", lattice_testkit::free_port());
    let http = lattice_testkit::free_port();
    let h = host(url, "default")
        .arg("--allow-file-load")
        .arg("--metrics-address")
        .arg(&addr)
        .arg("--http-address")
        .arg(format!("127.0.0.1:{http}"))
        .start()
        .unwrap();
    (h, addr, http)
}

/// `relay.add-via-calc(i, 1)` over wRPC from the test: Ok(i + 1) or the error's text.
async fn relay_add(client: &lattice_wrpc::transport::Client, i: i32) -> Result<i32, String> {
    call_s32(client, "relay", RELAY, "add-via-calc", &[i, 1]).await
}

/// Polls Prometheus until `expr` is `want` (it scrapes every second).
async fn until_value(prom: &Prometheus, expr: &str, want: f64) {
    let mut last = None;
    let found = lattice_testkit::wait::until_async(
        &format!("{expr} == {want}"),
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            last = prom.query(expr);
            async move { (last == Some(want)).then_some(()) }
        },
    )
    .await;
    if let Err(e) = found {
        panic!(
            "{e}; last value {last:?}; targets: {}; prometheus log:\n{}",
            prom.targets(),
            prom.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_every_linked_call_on_both_hosts_and_labels_failures() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let (a, a_metrics, a_http) = measured_host(&url);
    let (b, b_metrics, _) = measured_host(&url);
    let targets = [a_metrics, b_metrics];
    let prom = Prometheus::start(&targets).unwrap();

    for (h, id) in [(&a, "relay"), (&b, "calc")] {
        let ev = scale(&ctl, &h.id, &scale_cmd(&component_ref(id), id, 4)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    ctl.put_link(&Link::new(
        "relay",
        "calc",
        "lattice",
        "examples",
        &["calc"],
    ))
    .await
    .unwrap();
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    // The link reaches every host a moment after it is stored.
    lattice_testkit::wait::until_async(
        "a first call through the link",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { relay_add(&client, 0).await.ok() },
    )
    .await
    .unwrap();
    for i in 1..100 {
        assert_eq!(relay_add(&client, i).await, Ok(i + 1));
    }

    // Both scrapes succeed (Prometheus refuses a whole scrape it cannot parse).
    lattice_testkit::wait::until_async(
        "both hosts scraped",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { prom.all_up(2).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; prometheus log:\n{}", prom.log()));
    let link = r#"lattice_source="relay",lattice_target="calc",rpc_method="add""#;
    // Calls that succeeded carry no `error_type` (a call made before the link reached relay's
    // host failed, and counts under its kind).
    let ok = r#"error_type="""#;
    until_value(
        &prom,
        &format!("sum(rpc_client_call_duration_seconds_count{{{link},{ok}}})"),
        100.0,
    )
    .await;
    until_value(
        &prom,
        &format!(r#"sum(rpc_server_call_duration_seconds_count{{lattice_component="calc",{ok}}})"#),
        100.0,
    )
    .await;
    until_value(
        &prom,
        &format!(
            r#"sum(rpc_server_call_duration_seconds_count{{lattice_component="relay",rpc_method="add-via-calc",{ok}}})"#
        ),
        100.0,
    )
    .await;
    // Every call took less than the 10 s bucket's bound, and each was counted on the host
    // that made it: all 100 on relay's host.
    until_value(
        &prom,
        &format!(r#"sum(rpc_client_call_duration_seconds_bucket{{{link},{ok},le="10"}})"#),
        100.0,
    )
    .await;
    until_value(
        &prom,
        &format!(
            r#"sum(rpc_client_call_duration_seconds_count{{{link},{ok},instance="{}"}})"#,
            targets[0]
        ),
        100.0,
    )
    .await;

    // Instances per component, as each host reports them.
    until_value(
        &prom,
        r#"lattice_component_instances{lattice_component="calc",state="max"}"#,
        4.0,
    )
    .await;
    until_value(&prom, "sum(lattice_nats_reconnects_total)", 0.0).await;
    // Calls waiting for an instance: three 1.5 s calls of a component bounded to one, read
    // from host 2's endpoint while they are held.
    let ev = scale(&ctl, &b.id, &scale_cmd(&component_ref("calc"), "slow", 1)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    let held: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            // `wait(ms: u32) -> u32`: u32 and s32 encode alike below 2^31.
            tokio::spawn(async move { call_s32(&c, "slow", CALC, "wait", &[1500]).await })
        })
        .collect();
    lattice_testkit::wait::until_async(
        "two calls waiting for slow's one instance",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let text = lattice_testkit::nats::http_response(&targets[1], "/metrics")?;
            text.lines()
                .any(|l| {
                    l.starts_with("lattice_component_instances{")
                        && l.contains(r#"lattice_component="slow""#)
                        && l.contains(r#"state="waiting""#)
                        && l.ends_with(" 2")
                })
                .then_some(())
        },
    )
    .await
    .unwrap();
    for h in held {
        assert_eq!(h.await.unwrap(), Ok(1500));
    }

    // HTTP requests per route and status, counted by the host whose ingress took them.
    let ev = scale(
        &ctl,
        &a.id,
        &scale_cmd(&component_ref("http_hello"), "hello", 2),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    crate::http::route(&ctl, "hello", &[("path", "/hello")]).await;
    let addr = format!("127.0.0.1:{a_http}");
    crate::http::until_status(&addr, "localhost", "/hello", 200).await;
    for _ in 0..2 {
        let r = lattice_testkit::http::request(
            &addr,
            "GET",
            "localhost",
            "/hello",
            b"",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
    }
    until_value(
        &prom,
        &format!(
            r#"sum(http_server_request_duration_seconds_count{{lattice_target="hello",http_request_method="GET",http_response_status_code="200",instance="{}"}})"#,
            targets[0]
        ),
        3.0,
    )
    .await;

    // Key-value operations by bucket and outcome: counter on host 2, granted bucket visits.
    let ev = scale(
        &ctl,
        &b.id,
        &scale_cmd(&component_ref("counter"), "counter", 2),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    crate::keyvalue::grant(&ctl, &[("bucket", "visits")]).await;
    lattice_testkit::wait::until_async(
        "a first increment through the grant",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let v = crate::keyvalue::counter_call(&client, "increment", "home").await;
            crate::keyvalue::err_text(&v).is_none().then_some(())
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let v = crate::keyvalue::counter_call(&client, "increment", "home").await;
        assert_eq!(crate::keyvalue::err_text(&v), None);
    }
    until_value(
        &prom,
        &format!(
            r#"sum(lattice_kv_operations_total{{lattice_kv_operation="increment",{ok},instance="{}"}})"#,
            targets[1]
        ),
        3.0,
    )
    .await;

    // The reconciler beside whichever host leads counts its passes and the commands it sends.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("measured.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{ name: measured }}\n\
             spec:\n  components:\n    - name: calc\n      type: component\n      \
             properties: {{ image: \"{}\" }}\n      traits:\n        - type: spreadscaler\n          \
             properties: {{ instances: 2 }}\n",
            component_ref("calc")
        ),
    )
    .unwrap();
    cli_ok(
        &url,
        "default",
        &["app", "deploy", &manifest.display().to_string()],
    );
    until_value(
        &prom,
        r#"clamp_max(sum(lattice_reconciler_actions_total{lattice_action="scale"}), 1)"#,
        1.0,
    )
    .await;
    until_value(
        &prom,
        r#"clamp_max(sum(lattice_reconciler_passes_total{lattice_outcome="complete"}), 1)"#,
        1.0,
    )
    .await;

    // calc stops: relay's next call fails, and its kind is a label.
    let ev = scale(&ctl, &b.id, &scale_cmd(&component_ref("calc"), "calc", 0)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    let failed = relay_add(&client, 7).await;
    assert!(failed.is_err(), "{failed:?}");
    until_value(
        &prom,
        &format!(
            r#"sum(rpc_client_call_duration_seconds_count{{{link},error_type="no_responders"}})"#
        ),
        1.0,
    )
    .await;
    until_value(
        &prom,
        &format!("sum(rpc_client_call_duration_seconds_count{{{link},{ok}}})"),
        100.0,
    )
    .await;
}
