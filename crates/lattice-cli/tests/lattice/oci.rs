//! Components from a real OCI registry on loopback: push with our CLI, scale by reference.

use std::time::Duration;

use lattice_host::Val;
use lattice_testkit::registry::OciRegistry;
use lattice_testkit::NatsServer;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_scale_by_oci_reference() {
    let registry = OciRegistry::start().unwrap();
    let nats = NatsServer::start().unwrap();
    let reg = registry.host();
    let reference = format!("{reg}/lattice/calc:0.1.0");
    let calc_path = lattice_testkit::component_path("calc");
    let out = cli_ok(
        &nats.url(),
        "default",
        &[
            "push",
            &reference,
            calc_path.to_str().unwrap(),
            "--oci-insecure",
            &reg,
        ],
    );
    assert!(out.contains("pushed"), "{out}");

    // A host process pulls it, with progress in its log.
    let mut h = host(&nats.url(), "default")
        .arg("--oci-insecure")
        .arg(&reg)
        .start()
        .unwrap();
    let out = cli_ok(
        &nats.url(),
        "default",
        &[
            "scale",
            "component",
            &reference,
            "calc",
            "--host",
            &h.id,
            "--count",
            "2",
        ],
    );
    assert!(out.contains("up to 2 instances"), "{out}");
    let line = h
        .process
        .wait_for_log("pull 100%", Duration::from_secs(5))
        .unwrap();
    println!("{line}");
    assert!(h.process.log().contains("pulling component"));

    // An in-process host pulls the same reference and runs it.
    let ctl = ctl(&nats.url(), "default").await;
    let local = in_process_host_with(&nats.url(), "default", |c| {
        c.oci.insecure_registries = vec![reg.clone()];
    })
    .await;
    let ev = scale(&ctl, local.id(), &scale_cmd(&reference, "calc", 1)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    let r = local
        .call(
            "calc",
            Some("lattice:examples/calc@0.1.0"),
            "add",
            &[Val::S32(20), Val::S32(22)],
        )
        .await
        .unwrap();
    assert_eq!(r, vec![Val::S32(42)]);

    // Unknown tags, and :latest without opting in, fail with the reason.
    let ev = scale(
        &ctl,
        local.id(),
        &scale_cmd(&format!("{reg}/lattice/calc:9.9.9"), "x", 1),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scale_failed"));
    assert!(
        ev.data["error"]
            .as_str()
            .unwrap()
            .contains("cannot pull the manifest"),
        "{:?}",
        ev.data
    );
    let ev = scale(
        &ctl,
        local.id(),
        &scale_cmd(&format!("{reg}/lattice/calc:latest"), "y", 1),
    )
    .await;
    assert!(
        ev.data["error"]
            .as_str()
            .unwrap()
            .contains("--oci-allow-latest"),
        "{:?}",
        ev.data
    );
}
