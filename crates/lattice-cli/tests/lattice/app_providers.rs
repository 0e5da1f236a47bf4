//! Applications with capability providers (`type: capability` with a provider's image):
//! Lattice's reconciler starts them one per host where their scaler says, hands them their
//! config and links, and stops them when a version drops them or the app is undeployed.

use std::collections::BTreeSet;
use std::time::Duration;

use lattice_testkit::provider::{provider_state, test_provider_bin};
use lattice_testkit::HostProcess;
use lattice_testkit::NatsServer;

use crate::apps::{app_cli, zone_host};
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// App `gw`: calc, and the test provider (`instances` hosts) linked to it.
fn manifest(version: &str, instances: u32) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: gw
  annotations:
    version: {version}
spec:
  components:
    - name: back
      type: component
      properties:
        image: {calc}
      traits:
        - type: daemonscaler
          properties: {{ instances: 1 }}
    - name: gateway
      type: capability
      properties:
        image: file://{provider}
        config:
          - name: gw-gateway
            properties: {{ greeting: hi }}
      traits:
        - type: spreadscaler
          properties: {{ instances: {instances} }}
        - type: link
          properties:
            target: back
            namespace: lattice
            package: examples
            interfaces: [calc]
"#,
        calc = component_ref("calc"),
        provider = test_provider_bin().display(),
    )
}

/// The hosts running provider `id`, and the app each says started it.
async fn provider_hosts(
    ctl: &lattice_ctl::Client,
    hosts: &[&HostProcess],
    id: &str,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for h in hosts {
        if let Ok(inv) = ctl.host_inventory(&h.id).await {
            for p in inv.providers.iter().filter(|p| p.id == id) {
                let app = p.annotations.get("lattice.dev/app").cloned();
                out.insert((h.id.clone(), app.unwrap_or_default()));
            }
        }
    }
    out
}

async fn wait_hosts(
    ctl: &lattice_ctl::Client,
    hosts: &[&HostProcess],
    want: usize,
    what: &str,
) -> BTreeSet<(String, String)> {
    lattice_testkit::wait::until_async(what, WAIT, Duration::from_millis(50), || async {
        let got = provider_hosts(ctl, hosts, "gw-gateway").await;
        (got.len() == want).then_some(got)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn wait_status(url: &str, want: &str) {
    lattice_testkit::wait::until_async(
        &format!("app gw {want}"),
        WAIT,
        Duration::from_millis(100),
        || async {
            let out = cli(url, "default", &["app", "status", "gw"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains(want).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_runs_its_provider_once_per_host_and_links_it() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let raw = async_nats::connect(&url).await.unwrap();
    let (a, b) = (zone_host(&url, "a"), zone_host(&url, "b"));
    let hosts = [&a, &b];
    let dir = tempfile::tempdir().unwrap();

    // Three instances asked, two hosts: one each, and the status says what is missing.
    let out = app_cli(&url, &dir, &["deploy"], Some(&manifest("v1", 3)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let placed = wait_hosts(&ctl, &hosts, 2, "the provider on both hosts").await;
    assert!(placed.iter().all(|(_, app)| app == "gw"), "{placed:?}");
    wait_status(&url, "1 more host(s)").await;

    // It got its config, and the link from it to calc.
    let state = lattice_testkit::wait::until_async(
        "the provider holds its link",
        WAIT,
        Duration::from_millis(50),
        || async {
            let s = provider_state(&raw, "default", "gw-gateway").await?;
            (!s.links.is_empty()).then_some(s)
        },
    )
    .await
    .unwrap();
    assert_eq!(state.config.get("greeting").map(String::as_str), Some("hi"));
    let link = &state.links[0];
    assert_eq!(
        (link.source_id.as_str(), link.target.as_str()),
        ("gw-gateway", "gw-back")
    );

    // v2 asks for one: the other host's process is stopped, and the app is deployed.
    let out = app_cli(&url, &dir, &["deploy"], Some(&manifest("v2", 1)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_hosts(&ctl, &hosts, 1, "one provider left").await;
    wait_status(&url, "deployed").await;

    // Undeployed: the provider stops and its link is deleted.
    cli_ok(&url, "default", &["app", "undeploy", "gw"]);
    wait_hosts(&ctl, &hosts, 0, "no provider left").await;
    lattice_testkit::wait::until_async("link deleted", WAIT, Duration::from_millis(50), || async {
        let links = ctl.get_links().await.ok()?;
        (!links.iter().any(|l| l.source_id == "gw-gateway")).then_some(())
    })
    .await
    .unwrap();
}
