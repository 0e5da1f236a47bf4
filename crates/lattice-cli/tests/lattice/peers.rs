//! Host processes driven by wasmCloud v1's real wadm and providers (`scripts/test-peers`;
//! ignored by the default run, the peers take long to build): a host SIGKILLed under a
//! wadm deployment is healed by wadm.

use std::time::Duration;

use lattice_testkit::peers::{hello_manifest, peer_ref, start_wadm, wadm_request};
use lattice_testkit::{free_port, http, wait, NatsServer};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real providers and wadm: scripts/test-peers"]
async fn wadm_heals_a_deployment_when_the_host_running_its_provider_is_killed() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let mut hosts: Vec<_> = (0..2)
        .map(|_| {
            host(&nats.url(), "default")
                .arg("--allow-file-load")
                .heartbeat(Duration::from_secs(1))
                .start()
                .unwrap()
        })
        .collect();
    // Hosts silent for 5 s are dropped from wadm's state (its default: 70 s).
    let wadm = start_wadm(&nats, dir.path(), Duration::from_secs(5));
    let addr = format!("127.0.0.1:{}", free_port());
    // The component on every host, the provider on one.
    let manifest = hello_manifest(
        &component_ref("http_hello"),
        "daemonscaler",
        &peer_ref("http-server-provider"),
        &addr,
    );
    let put = wadm_request(&raw, &wadm, "default", "model.put", manifest.as_bytes()).await;
    assert_eq!(put["result"], "created", "{put}");
    wadm_request(&raw, &wadm, "default", "model.deploy.hello", b"{}").await;
    let serving = Duration::from_secs(60);
    let served = || async {
        http::get(&addr, "/")
            .await
            .ok()
            .filter(|r| r.status == 200 && r.text() == "Hello from Lattice!\n")
    };
    wait::until_async(
        "the deployment serves",
        serving,
        Duration::from_millis(200),
        served,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm.log()));
    let runs_provider = |inv: &lattice_proto::ctl::HostInventory| {
        inv.providers.iter().any(|p| p.id == "hello-httpserver")
    };
    let mut with_provider = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        if runs_provider(&ctl.host_inventory(&h.id).await.unwrap()) {
            with_provider.push(i);
        }
    }
    assert_eq!(with_provider.len(), 1, "one provider instance");
    let victim = with_provider[0];
    let provider_pids = children(hosts[victim].process.pid());
    assert_eq!(
        provider_pids.len(),
        1,
        "the host runs its provider as a child process"
    );
    hosts[victim].process.kill();
    // The provider dies with its host: no orphan keeps the address or the subscriptions.
    wait::until(
        "the provider process dies with its host",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            provider_pids
                .iter()
                .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
                .then_some(())
        },
    )
    .unwrap();
    let survivor = hosts[1 - victim].id.clone();
    // wadm drops the dead host and starts the provider on the survivor, which serves.
    wait::until_async(
        "wadm re-places the provider",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || async { runs_provider(&ctl.host_inventory(&survivor).await.ok()?).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm.log()));
    wait::until_async(
        "the survivor serves",
        serving,
        Duration::from_millis(200),
        served,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm.log()));
}

/// Pids of the live child processes of `parent` (from /proc).
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so split after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}
