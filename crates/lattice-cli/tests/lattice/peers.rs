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

/// `wash ARGS -o json` against `nats` (wash 0.39.0 from `$LATTICE_PEERS_DIR`); its JSON answer,
/// after asserting that it succeeded.
/// `wash ARGS` pointed at `nats` and lattice `default`, with its config under `home`.
fn wash_cmd(nats: &NatsServer, home: &std::path::Path, args: &[&str]) -> std::process::Command {
    let port = nats
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut cmd = std::process::Command::new(lattice_testkit::peers::peer_bin("wash"));
    cmd.args(args)
        .env("WASMCLOUD_CTL_PORT", &port)
        .env("WASMCLOUD_RPC_PORT", &port)
        .env("WASMCLOUD_LATTICE", "default")
        .env("HOME", home)
        .env_remove("RUST_LOG");
    cmd
}

fn wash(nats: &NatsServer, home: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = wash_cmd(nats, home, args)
        .args(["-o", "json"])
        .output()
        .expect("running wash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wash {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JSON answer (a first run also prints a welcome banner).
    let start = stdout
        .find('{')
        .unwrap_or_else(|| panic!("wash {args:?}: no JSON in {stdout}"));
    let mut values =
        serde_json::Deserializer::from_str(&stdout[start..]).into_iter::<serde_json::Value>();
    values.next().expect("a JSON value").expect("valid JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs wash, wadm and the providers: scripts/test-peers"]
async fn wash_drives_two_lattice_hosts() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let ctl = ctl(&nats.url(), "default").await;
    let hosts: Vec<_> = (0..2)
        .map(|_| {
            host(&nats.url(), "default")
                .arg("--allow-file-load")
                .start()
                .unwrap()
        })
        .collect();
    let wadm = start_wadm(&nats, dir.path(), Duration::from_secs(70));
    let mut ids: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    let h1 = ids[0].clone();

    let got = wash(&nats, home, &["get", "hosts"]);
    let mut seen: Vec<String> = got["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ids, "get hosts");
    let inv = wash(&nats, home, &["get", "inventory", &h1]);
    assert_eq!(
        inv["inventories"][0]["host_id"],
        h1.as_str(),
        "get inventory"
    );

    wash(
        &nats,
        home,
        &["config", "put", "greet-cfg", "greeting=Howdy"],
    );
    let cfg = wash(&nats, home, &["config", "get", "greet-cfg"]);
    assert_eq!(cfg["greeting"], "Howdy", "config get");
    wash(&nats, home, &["label", &h1, "tier=gold"]);
    let labels = ctl.host_inventory(&h1).await.unwrap().labels;
    assert_eq!(
        labels.get("tier").map(String::as_str),
        Some("gold"),
        "label"
    );

    // By auction, with config; and on a chosen host.
    let greeter = component_ref("greeter");
    let started = wash(
        &nats,
        home,
        &[
            "start",
            "component",
            &greeter,
            "greeter",
            "--config",
            "greet-cfg",
        ],
    );
    assert!(
        ids.contains(&started["host_id"].as_str().unwrap().to_string()),
        "{started}"
    );
    let greeter_host = started["host_id"].as_str().unwrap().to_string();
    let hello = component_ref("http_hello");
    let started = wash(
        &nats,
        home,
        &["start", "component", &hello, "hello", "--host-id", &h1],
    );
    assert_eq!(started["host_id"], h1.as_str(), "start component --host-id");
    let scaled = wash(
        &nats,
        home,
        &[
            "scale",
            "component",
            &h1,
            &hello,
            "hello",
            "--max-instances",
            "3",
        ],
    );
    assert_eq!(scaled["success"], true, "{scaled}");
    wait_inventory(&ctl, &h1, Duration::from_secs(20), "scaled to 3", |inv| {
        inv.components
            .iter()
            .any(|c| c.id == "hello" && c.max_instances == 3)
    })
    .await;

    // wash spy (experimental) watches greeter's invocations while wash calls it.
    let spy_cmd = wash_cmd(&nats, home, &["spy", "--experimental", "greeter"]);
    let mut spy = lattice_testkit::ChildProcess::spawn("wash spy", spy_cmd, &home.join("spy.log"))
        .expect("starting wash spy");
    spy.wait_for_log("Spying on component greeter", Duration::from_secs(20))
        .expect("wash spy to start");

    // wash call: a zero-argument string function, and an HTTP component.
    let called = wash(
        &nats,
        home,
        &["call", "greeter", "lattice:examples/greeter@0.1.0.hello"],
    );
    assert_eq!(called["result"], "Howdy, world!", "{called}");
    let seen = spy
        .wait_for_log(
            "Operation: lattice:examples/greeter@0.1.0.hello",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}: wash spy saw {}", spy.log()));
    assert!(seen.contains("hello"), "{seen}");
    assert!(spy.log().contains("To: greeter"), "{}", spy.log());
    spy.kill();
    let http = wash(
        &nats,
        home,
        &[
            "call",
            "hello",
            "wasi:http/incoming-handler.handle",
            "--http-method",
            "GET",
        ],
    );
    assert_eq!(
        (
            http["response"]["status"].as_u64(),
            http["response"]["body"].as_str()
        ),
        (Some(200), Some("Hello from Lattice!\n")),
        "{http}"
    );
    let echoed = wash(
        &nats,
        home,
        &[
            "call",
            "hello",
            "wasi:http/incoming-handler.handle",
            "--http-method",
            "POST",
            "--http-body",
            "abc",
            "--http-host",
            "x",
        ],
    );
    assert_eq!(echoed["response"]["status"].as_u64(), Some(200), "{echoed}");

    let claims = wash(&nats, home, &["get", "claims"]);
    assert_eq!(claims["claims"], serde_json::json!([]), "get claims");

    // Update in place: the same id, another artifact.
    let updated = wash(
        &nats,
        home,
        &[
            "update",
            "component",
            "greeter",
            &component_ref("demo_greeter"),
        ],
    );
    assert_eq!(updated["success"], true, "{updated}");
    wait_inventory(
        &ctl,
        &greeter_host,
        Duration::from_secs(20),
        "updated",
        |inv| {
            inv.components
                .iter()
                .any(|c| c.id == "greeter" && c.image_ref.contains("demo_greeter"))
        },
    )
    .await;

    wash(
        &nats,
        home,
        &[
            "link",
            "put",
            "hello",
            "greeter",
            "lattice",
            "examples",
            "--interface",
            "greeter",
        ],
    );
    let links = wash(&nats, home, &["link", "get"]);
    let listed = links["links"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|l| l["source_id"] == "hello" && l["target"] == "greeter"),
        "{links}"
    );
    wash(
        &nats,
        home,
        &["link", "del", "hello", "lattice", "examples"],
    );
    let links = wash(&nats, home, &["link", "get"]);
    assert!(links["links"].as_array().unwrap().is_empty(), "{links}");

    // A provider, started and stopped by wash.
    let provider = format!(
        "file://{}",
        lattice_testkit::provider::test_provider_bin().display()
    );
    let started = wash(
        &nats,
        home,
        &["start", "provider", &provider, "testprov", "--host-id", &h1],
    );
    assert_eq!(started["success"], true, "{started}");
    let inv = ctl.host_inventory(&h1).await.unwrap();
    assert!(inv.providers.iter().any(|p| p.id == "testprov"), "{inv:?}");
    wash(
        &nats,
        home,
        &["stop", "provider", "testprov", "--host-id", &h1],
    );
    wait::until_async(
        "provider stopped",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            ctl.host_inventory(&h1)
                .await
                .ok()?
                .providers
                .is_empty()
                .then_some(())
        },
    )
    .await
    .unwrap();

    // wash app with the real wadm.
    let addr = format!("127.0.0.1:{}", free_port());
    let file = dir.path().join("hello.yaml");
    std::fs::write(
        &file,
        hello_manifest(
            &hello,
            "spreadscaler",
            &peer_ref("http-server-provider"),
            &addr,
        ),
    )
    .unwrap();
    let deployed = wash(&nats, home, &["app", "deploy", &file.display().to_string()]);
    assert_eq!(
        deployed["success"],
        true,
        "{deployed}\nwadm log:\n{}",
        wadm.log()
    );
    let list = wash(&nats, home, &["app", "list"]);
    assert!(list.to_string().contains("\"hello\""), "{list}");
    wait::until_async(
        "the app serves",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async { http::get(&addr, "/").await.ok().filter(|r| r.status == 200) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nwadm log:\n{}", wadm.log()));
    let status = wash(&nats, home, &["app", "status", "hello"]);
    assert!(status.to_string().contains("deployed"), "{status}");
    wash(&nats, home, &["app", "undeploy", "hello"]);
    let undeployed = wait::until_async(
        "undeployed",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let mut left = 0;
            for h in &ids {
                let inv = ctl.host_inventory(h).await.ok()?;
                left += inv.providers.len()
                    + inv
                        .components
                        .iter()
                        .filter(|c| c.id.starts_with("hello-"))
                        .count();
            }
            (left == 0).then_some(())
        },
    )
    .await;
    if let Err(e) = undeployed {
        let mut invs = Vec::new();
        for h in &ids {
            invs.push(ctl.host_inventory(h).await);
        }
        panic!("{e}\ninventories: {invs:?}\nwadm log:\n{}", wadm.log());
    }

    wash(
        &nats,
        home,
        &["stop", "component", "hello", "--host-id", &h1],
    );
    wait_inventory(
        &ctl,
        &h1,
        Duration::from_secs(20),
        "component stopped",
        |inv| !inv.components.iter().any(|c| c.id == "hello"),
    )
    .await;
    wash(&nats, home, &["stop", "host", &h1]);
    wait_hosts(&ctl, Duration::from_secs(20), "the host stops", |hs| {
        hs.len() == 1
    })
    .await;
}
