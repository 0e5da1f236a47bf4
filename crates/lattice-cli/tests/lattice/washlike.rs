//! The commands wash users type, on `lattice`: `start`/`stop` of components and providers,
//! `get links`, `get inventory` with providers, `app deploy FILE`.

use std::time::Duration;

use lattice_testkit::provider::test_provider_bin;
use lattice_testkit::NatsServer;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wash_style_commands_start_and_stop_components_and_providers_and_deploy_files() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let h = host_running(&url, &[]).await;
    let provider = format!("file://{}", test_provider_bin().display());
    let out = cli_ok(
        &url,
        "default",
        &["start", "provider", &provider, "testprov"],
    );
    assert_eq!(out.trim(), format!("provider testprov started on {}", h.id));
    let inv = cli_ok(&url, "default", &["get", "inventory", &h.id]);
    assert!(
        inv.contains("PROVIDER ID") && inv.contains("testprov"),
        "{inv}"
    );
    let again = cli(
        &url,
        "default",
        &["start", "provider", &provider, "testprov", "--host", &h.id],
    );
    assert!(
        !again.status.success(),
        "a second start of the same id is refused"
    );

    let out = cli_ok(
        &url,
        "default",
        &[
            "start",
            "component",
            &component_ref("calc"),
            "calc",
            "--count",
            "2",
        ],
    );
    assert!(out.contains("calc"), "{out}");
    cli_ok(
        &url,
        "default",
        &[
            "link",
            "put",
            "testprov",
            "calc",
            "lattice",
            "examples",
            "--interface",
            "calc",
        ],
    );
    let links = cli_ok(&url, "default", &["get", "links"]);
    assert!(
        links.contains("testprov") && links.contains("lattice:examples/{calc}"),
        "{links}"
    );

    cli_ok(&url, "default", &["stop", "component", "calc"]);
    cli_ok(&url, "default", &["stop", "provider", "testprov"]);
    wait_inventory(&ctl, &h.id, Duration::from_secs(20), "both stop", |inv| {
        inv.components.is_empty() && inv.providers.is_empty()
    })
    .await;
    let nothing = cli(&url, "default", &["stop", "provider", "testprov"]);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("not running on any host"));

    // `app deploy FILE` stores the manifest and deploys it in one step.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: one\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: calc\n      type: component\n      properties:\n        image: {}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n",
            component_ref("calc")
        ),
    )
    .unwrap();
    let out = cli_ok(
        &url,
        "default",
        &["app", "deploy", &file.display().to_string()],
    );
    assert!(out.contains("one version v1 deployed"), "{out}");
    wait_inventory(
        &ctl,
        &h.id,
        Duration::from_secs(30),
        "the app is placed",
        |inv| inv.components.iter().any(|c| c.id == "one-calc"),
    )
    .await;
}
