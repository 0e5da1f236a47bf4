//! Hosts find each other with nothing but a NATS URL.

use std::time::{Duration, Instant};

use lattice_testkit::NatsServer;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_appear_in_get_hosts() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let spec = host(&nats.url(), "default");
    let started = Instant::now();
    let spawned: Vec<_> = (0..3).map(|_| spec.spawn().unwrap()).collect();
    let hosts = wait_hosts(&ctl, Duration::from_secs(10), "3 hosts", |h| h.len() == 3).await;
    let elapsed = started.elapsed();
    println!("3 hosts visible {elapsed:?} after spawning their processes");
    let hosts_by_process: Vec<_> = spawned
        .into_iter()
        .map(|(p, d)| lattice_testkit::HostProcess::joined(p, d).unwrap())
        .collect();
    let mut expected: Vec<String> = hosts_by_process.iter().map(|h| h.id.clone()).collect();
    expected.sort();
    assert_eq!(ids(&hosts), expected);

    // The CLI shows the same hosts, as a table and as JSON.
    let table = cli_ok(&nats.url(), "default", &["get", "hosts"]);
    assert!(table.starts_with("HOST ID"), "{table}");
    for h in &hosts_by_process {
        assert!(
            table.contains(&h.id) && table.contains(&h.friendly_name),
            "{table}"
        );
    }
    let json = cli_ok(&nats.url(), "default", &["-o", "json", "get", "hosts"]);
    let listed: Vec<lattice_proto::ctl::Host> = serde_json::from_str(&json).unwrap();
    assert_eq!(ids(&listed), expected);
    for h in &listed {
        assert!(
            h.id.starts_with('N') && h.id.len() == 56,
            "not a server nkey: {}",
            h.id
        );
        assert_eq!(h.lattice, "default");
        assert_eq!(h.labels["hostcore.os"], std::env::consts::OS);
        assert_eq!(h.labels["hostcore.arch"], std::env::consts::ARCH);
        assert_eq!(h.labels["hostcore.osfamily"], std::env::consts::FAMILY);
        assert!(!h.version.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_labels_and_options_come_from_flags_and_environment() {
    let nats = NatsServer::start().unwrap();
    let seed = nkeys::KeyPair::new_server();
    let mut spec = host(&nats.url(), "default")
        .arg("--label")
        .arg("zone=a")
        .arg("--friendly-name")
        .arg("edge-1");
    spec.args
        .extend(["--host-seed".to_string(), seed.seed().unwrap()]);
    let h = spec.start().unwrap();
    assert_eq!(h.id, seed.public_key());
    assert_eq!(h.friendly_name, "edge-1");

    // The same options from the environment only.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("host")
        .env("LATTICE_NATS_URL", nats.url())
        .env("LATTICE_NAME", "envlattice")
        .env("LATTICE_LABELS", "zone=b,tier=edge")
        .env("LATTICE_HEARTBEAT_INTERVAL", "1s");
    let p = lattice_testkit::ChildProcess::spawn("env host", cmd, &dir.path().join("log")).unwrap();
    let env_host = lattice_testkit::HostProcess::joined(p, dir).unwrap();

    let ctl_default = ctl(&nats.url(), "default").await;
    let hosts = wait_hosts(&ctl_default, Duration::from_secs(5), "labelled host", |h| {
        h.iter()
            .any(|h| h.labels.get("zone").map(String::as_str) == Some("a"))
    })
    .await;
    assert_eq!(hosts.len(), 1, "the env host is in another lattice");
    let ctl_env = ctl(&nats.url(), "envlattice").await;
    let hosts = wait_hosts(&ctl_env, Duration::from_secs(5), "env host", |h| {
        h.len() == 1
    })
    .await;
    assert_eq!(hosts[0].id, env_host.id);
    assert_eq!(hosts[0].labels["zone"], "b");
    assert_eq!(hosts[0].labels["tier"], "edge");
    assert_eq!(hosts[0].heartbeat_interval_ms, Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_labels_are_refused_at_start() {
    let nats = NatsServer::start().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "host",
            "--nats-url",
            &nats.url(),
            "--label",
            "hostcore.os=plan9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reserved"), "{err}");
}

#[test]
fn unreachable_nats_gives_a_one_line_error() {
    let port = lattice_testkit::free_port();
    let out = cli(
        &format!("nats://127.0.0.1:{port}"),
        "default",
        &["get", "hosts"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot connect to NATS"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
