//! `lattice compose`: a manifest's links made at build time give a component that answers
//! like the linked pair.

use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_manifest_answers_like_its_linked_components() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("relay.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: relayed\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: relay\n      type: component\n      properties:\n        image: {}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n        - type: link\n          properties:\n            target: calc\n            namespace: lattice\n            package: examples\n            interfaces: [calc]\n    - name: calc\n      type: component\n      properties:\n        image: {}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n",
            component_ref("relay"),
            component_ref("calc")
        ),
    )
    .unwrap();
    let out = dir.path().join("composed.wasm");
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let composed = cli_ok(
        &url,
        "default",
        &[
            "compose",
            &manifest.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
    );
    assert!(composed.contains("composed relay"), "{composed}");

    let ctl = ctl(&url, "default").await;
    let _h = host_running(&url, &[("relay", "relay", 1), ("calc", "calc", 1)]).await;
    ctl.put_link(&Link::new(
        "relay",
        "calc",
        "lattice",
        "examples",
        &["calc"],
    ))
    .await
    .unwrap();
    let one = format!("file://{}", out.display());
    let ev = scale(&ctl, &_h.id, &scale_cmd(&one, "composed", 1)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    let relay = "lattice:examples/relay@0.1.0";
    for (func, args) in [
        ("add-via-calc", "2, 3"),
        ("reverse-via-calc", "\"lattice\""),
    ] {
        let f = format!("{relay}.{func}");
        // The link reaches every host's table shortly after it is put.
        let linked = lattice_testkit::wait::until_async(
            "the linked pair answers",
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || async {
                let out = cli(&url, "default", &["call", "relay", &f, args]);
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            },
        )
        .await
        .unwrap();
        let alone = cli_ok(&url, "default", &["call", "composed", &f, args]);
        assert_eq!(alone, linked, "{func}");
    }
}
