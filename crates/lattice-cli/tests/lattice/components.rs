//! Components on host processes: scaling, auction, bad references, update, a small address space.

use lattice_host::{CallErrorKind, Val};
use lattice_proto::ctl::ComponentAuctionRequest;
use lattice_testkit::NatsServer;

use crate::common::*;

const CALC: Option<&str> = Some("lattice:examples/calc@0.1.0");

fn max_instances(inv: &lattice_proto::ctl::HostInventory, id: &str) -> Option<u32> {
    inv.components
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.max_instances)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_down_and_to_zero_on_one_host() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let h = host(&nats.url(), "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    let calc = component_ref("calc");

    for count in [3, 5, 1] {
        let mut cmd = scale_cmd(&calc, "calc", count);
        cmd.annotations = [("team".to_string(), "math".to_string())].into();
        let ev = scale(&ctl, &h.id, &cmd).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
        assert_eq!(ev.data["max_instances"], count);
        assert_eq!(ev.data["image_ref"], calc.as_str());
        assert_eq!(ev.data["host_id"], h.id.as_str());
        assert_eq!(ev.data["annotations"]["team"], "math");
        let inv = ctl.host_inventory(&h.id).await.unwrap();
        assert_eq!(max_instances(&inv, "calc"), Some(count));
        assert_eq!(inv.components[0].annotations["team"], "math");
    }
    let ev = scale(&ctl, &h.id, &scale_cmd(&calc, "calc", 0)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"));
    assert_eq!(ev.data["max_instances"], 0);
    assert!(ctl
        .host_inventory(&h.id)
        .await
        .unwrap()
        .components
        .is_empty());

    // The CLI does the same, and waits for the outcome.
    let out = cli_ok(
        &nats.url(),
        "default",
        &["scale", "component", &calc, "calc", "--count", "2"],
    );
    assert!(out.contains("up to 2 instances"), "{out}");
    let out = cli_ok(&nats.url(), "default", &["get", "inventory", &h.id]);
    assert!(out.contains("calc") && out.contains(&calc), "{out}");
    let out = cli_ok(
        &nats.url(),
        "default",
        &["scale", "component", &calc, "calc", "--count", "0"],
    );
    assert!(out.contains("stopped"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_on_three_hosts_and_auction_by_labels() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let hosts: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|zone| {
            host(&nats.url(), "default")
                .arg("--allow-file-load")
                .arg("--label")
                .arg(format!("zone={zone}"))
                .start()
                .unwrap()
        })
        .collect();
    let calc = component_ref("calc");
    for (i, h) in hosts.iter().enumerate() {
        let ev = scale(&ctl, &h.id, &scale_cmd(&calc, "calc", i as u32 + 1)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"));
    }
    for (i, h) in hosts.iter().enumerate() {
        let inv = ctl.host_inventory(&h.id).await.unwrap();
        assert_eq!(max_instances(&inv, "calc"), Some(i as u32 + 1));
    }
    // Only the zone=b host bids for a component constrained to zone=b; nobody bids for an id
    // already running on the only matching host.
    let bids = ctl
        .auction_component(&ComponentAuctionRequest {
            component_ref: calc.clone(),
            component_id: "other".into(),
            constraints: [("zone".to_string(), "b".to_string())].into(),
        })
        .await
        .unwrap();
    assert_eq!(
        bids.iter().map(|b| b.host_id.as_str()).collect::<Vec<_>>(),
        vec![hosts[1].id.as_str()]
    );
    let bids = ctl
        .auction_component(&ComponentAuctionRequest {
            component_ref: calc.clone(),
            component_id: "calc".into(),
            constraints: [("zone".to_string(), "b".to_string())].into(),
        })
        .await
        .unwrap();
    assert!(bids.is_empty(), "{bids:?}");
    // The CLI scales by auction when no host is named.
    cli_ok(
        &nats.url(),
        "default",
        &[
            "scale",
            "component",
            &calc,
            "pinned",
            "--constraint",
            "zone=c",
        ],
    );
    let inv = ctl.host_inventory(&hosts[2].id).await.unwrap();
    assert_eq!(max_instances(&inv, "pinned"), Some(1));
    for h in &hosts {
        scale(&ctl, &h.id, &scale_cmd(&calc, "calc", 0)).await;
    }
    for h in &hosts[..2] {
        assert!(ctl
            .host_inventory(&h.id)
            .await
            .unwrap()
            .components
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_references_fail_with_clear_reasons() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let h = host(&nats.url(), "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    let strict = host(&nats.url(), "default").start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not wasm").unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();

    let mut oversized = scale_cmd(&component_ref("calc"), "big", 1);
    oversized.component_limits =
        Some([("max_component_size".to_string(), "1000".to_string())].into());
    let cases = [
        (
            scale_cmd("nope://component", "a", 1),
            "unsupported component reference",
        ),
        (
            scale_cmd("file:///no/such/component.wasm", "b", 1),
            "No such file",
        ),
        (
            scale_cmd(&format!("file://{}", text.display()), "c", 1),
            "not WebAssembly at all",
        ),
        (
            scale_cmd(&format!("file://{}", module.display()), "d", 1),
            "core WebAssembly module",
        ),
        (oversized, "over the 1000-byte limit"),
        (
            scale_cmd("127.0.0.1:1/none/here:1.0", "e", 1),
            "cannot pull",
        ),
    ];
    for (cmd, reason) in &cases {
        let ev = scale(&ctl, &h.id, cmd).await;
        assert_eq!(
            ev.event_type(),
            Some("component_scale_failed"),
            "{:?}",
            ev.data
        );
        let error = ev.data["error"].as_str().unwrap();
        assert!(error.contains(reason), "{}: {error}", cmd.component_ref);
        println!("{} -> {error}", cmd.component_ref);
    }
    let ev = scale(&ctl, &strict.id, &scale_cmd(&component_ref("calc"), "f", 1)).await;
    assert!(
        ev.data["error"]
            .as_str()
            .unwrap()
            .contains("--allow-file-load"),
        "{:?}",
        ev.data
    );
    let mut missing_config = scale_cmd(&component_ref("greeter"), "g", 1);
    missing_config.config = vec!["nope".into()];
    let ev = scale(&ctl, &h.id, &missing_config).await;
    assert!(
        ev.data["error"]
            .as_str()
            .unwrap()
            .contains("\"nope\" does not exist"),
        "{:?}",
        ev.data
    );
    assert!(ctl
        .host_inventory(&h.id)
        .await
        .unwrap()
        .components
        .is_empty());

    // Requests that are wrong on their face are refused before the acknowledgement.
    let err = ctl
        .scale_component(&h.id, &scale_cmd("", "x", 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), lattice_ctl::ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("component_ref"), "{err}");
    let err = ctl
        .scale_component(&h.id, &scale_cmd("file:///x", "bad.id", 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), lattice_ctl::ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("component id"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_swaps_the_version_in_place() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    let dir = tempfile::tempdir().unwrap();
    // Two "versions": different references (and bytes) of compatible components.
    let v1 = dir.path().join("calc-v1.wasm");
    std::fs::copy(lattice_testkit::component_path("calc"), &v1).unwrap();
    let v1 = format!("file://{}", v1.display());
    assert_eq!(
        scale(&ctl, host.id(), &scale_cmd(&v1, "app", 3))
            .await
            .event_type(),
        Some("component_scaled")
    );
    let v2 = component_ref("relay");
    let out = cli_ok(
        &nats.url(),
        "default",
        &["update", "component", "app", &v2, "--host", host.id()],
    );
    assert!(out.contains("up to 3 instances"), "{out}");
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.components[0].image_ref, v2);
    assert_eq!(inv.components[0].revision, 1);
    assert_eq!(inv.components[0].max_instances, 3);
    // The new version answers: relay's export exists now, calc's does not.
    let e = host
        .call("app", CALC, "add", &[Val::S32(1), Val::S32(1)])
        .await
        .unwrap_err();
    assert_eq!(call_error(e).kind(), CallErrorKind::NoSuchFunction);
    let e = host
        .call(
            "app",
            Some("lattice:examples/relay@0.1.0"),
            "add-via-calc",
            &[Val::S32(1), Val::S32(1)],
        )
        .await
        .unwrap_err();
    assert_eq!(call_error(e).kind(), CallErrorKind::NotLinked);
    // Scaling the id to another reference without allow_update is refused with the reason.
    let ev = scale(&ctl, host.id(), &scale_cmd(&v1, "app", 1)).await;
    assert!(
        ev.data["error"]
            .as_str()
            .unwrap()
            .contains("component.update"),
        "{:?}",
        ev.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_starts_and_runs_components_within_a_small_address_space() {
    // wasmCloud v1 failed to start where 1.6 GB could not be reserved. Under a 1.5 GiB
    // address-space limit the pooling allocator cannot reserve its slots; the host must fall
    // back to on-demand allocation and work.
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -v 1572864 && exec {BIN} host --nats-url {} --allow-file-load",
        nats.url()
    ));
    let p =
        lattice_testkit::ChildProcess::spawn("small host", cmd, &dir.path().join("log")).unwrap();
    let mut h = lattice_testkit::HostProcess::joined(p, dir).unwrap();
    let ev = scale(&ctl, &h.id, &scale_cmd(&component_ref("calc"), "calc", 4)).await;
    assert_eq!(
        ev.event_type(),
        Some("component_scaled"),
        "{:?}\n{}",
        ev.data,
        h.process.log()
    );
    assert!(
        h.process.log().contains("pooling allocator unavailable"),
        "{}",
        h.process.log()
    );
    assert!(h.process.is_running());
}
