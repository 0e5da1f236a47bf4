//! Capability providers on an in-process host, with the test provider (wasmCloud's provider
//! protocol, `lattice-test-provider`): start and its event, inventory, config and links
//! reaching the process, restart after a real SIGKILL, stop; and every way a start fails.

use std::time::Duration;

use lattice_proto::provider::StartProviderCommand;
use lattice_testkit::provider::{provider_state, test_provider_bin};
use lattice_testkit::wait;
use lattice_testkit::NatsServer;

use crate::common::*;

const EVENT: Duration = Duration::from_secs(20);

fn start_cmd(id: &str, reference: &str, config: &[&str]) -> StartProviderCommand {
    StartProviderCommand {
        provider_id: id.into(),
        provider_ref: reference.into(),
        host_id: None,
        config: config.iter().map(|c| c.to_string()).collect(),
        annotations: [("owner".to_string(), "test".to_string())].into(),
    }
}

async fn quick_host(url: &str) -> lattice_host::Host {
    in_process_host_with(url, "default", |c| {
        c.providers = lattice_host::ProviderTimings {
            health_interval: Duration::from_millis(300),
            ready_within: Duration::from_secs(10),
            stop_within: Duration::from_secs(3),
            restart_backoff: (Duration::from_millis(100), Duration::from_secs(1)),
        };
    })
    .await
}

async fn no_providers(ctl: &lattice_ctl::Client, host: &str) -> bool {
    ctl.host_inventory(host).await.unwrap().providers.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_gets_its_config_and_links_is_restarted_when_killed_and_stops() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let host = quick_host(&nats.url()).await;
    let mut events = ctl.events().await.unwrap();
    put_config(&ctl, "prov-cfg", &[("greeting", "hi")]).await;
    let reference = format!("file://{}", test_provider_bin().display());
    ctl.start_provider(host.id(), &start_cmd("testprov", &reference, &["prov-cfg"]))
        .await
        .unwrap();
    let started = next_event(&mut events, "provider_started", EVENT).await;
    assert_eq!(started.data["provider_id"], "testprov");
    assert_eq!(started.data["annotations"]["owner"], "test");
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.providers.len(), 1);
    assert_eq!(
        inv.providers[0].image_ref.as_deref(),
        Some(reference.as_str())
    );
    let first = provider_state(&raw, "default", "testprov")
        .await
        .expect("provider answers");
    assert_eq!(first.config.get("greeting").map(String::as_str), Some("hi"));
    assert_eq!(first.host_id, host.id());
    assert!(first.links.is_empty());
    // A second start of the same id is refused at once.
    assert!(ctl
        .start_provider(host.id(), &start_cmd("testprov", &reference, &[]))
        .await
        .is_err());

    // A link with the provider as source reaches the process, its config resolved.
    put_config(&ctl, "route", &[("path", "/p")]).await;
    let mut link = link("testprov", "calc");
    link.source_config = vec!["route".into()];
    ctl.put_link(&link).await.unwrap();
    let got = wait::until_async(
        "the link reaches the provider",
        EVENT,
        Duration::from_millis(50),
        || async {
            let s = provider_state(&raw, "default", "testprov").await?;
            s.links.first().cloned()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (got.source_id.as_str(), got.target.as_str()),
        ("testprov", "calc")
    );
    assert_eq!(
        got.source_config.get("path").map(String::as_str),
        Some("/p")
    );
    ctl.delete_link(&lattice_proto::ctl::DeleteLinkRequest {
        source_id: "testprov".into(),
        name: "default".into(),
        wit_namespace: "lattice".into(),
        wit_package: "examples".into(),
    })
    .await
    .unwrap();
    wait::until_async(
        "the link is deleted from the provider",
        EVENT,
        Duration::from_millis(50),
        || async {
            let s = provider_state(&raw, "default", "testprov").await?;
            s.links.is_empty().then_some(())
        },
    )
    .await
    .unwrap();

    // Killed for real: reported unhealthy, started again, healthy again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    next_event(&mut events, "health_check_failed", EVENT).await;
    next_event(&mut events, "health_check_passed", EVENT).await;
    let second = provider_state(&raw, "default", "testprov")
        .await
        .expect("restarted");
    assert_ne!(second.pid, first.pid, "a new process");
    assert_eq!(
        second.config.get("greeting").map(String::as_str),
        Some("hi")
    );

    ctl.stop_provider(host.id(), "testprov").await.unwrap();
    let stopped = next_event(&mut events, "provider_stopped", EVENT).await;
    assert_eq!(stopped.data["reason"], "normal");
    assert!(no_providers(&ctl, host.id()).await);
    assert!(
        provider_state(&raw, "default", "testprov").await.is_none(),
        "the process is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_run_fails_to_start_with_the_reason() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = quick_host(&nats.url()).await;
    let mut events = ctl.events().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("plain");
    std::fs::write(&not_executable, b"#!/bin/sh\n").unwrap();
    put_config(&ctl, "exit", &[("exit_at_once", "3")]).await;
    let bin = format!("file://{}", test_provider_bin().display());
    let wrong_target = dir.path().join("other.par.gz");
    write_par(&wrong_target, "riscv64-plan9", b"not for here");
    let cases = [
        (
            "missing",
            format!("file://{}/nothing-here", dir.path().display()),
            vec![],
            "No such file",
        ),
        (
            "plain",
            format!("file://{}", not_executable.display()),
            vec![],
            "not executable",
        ),
        (
            "quitter",
            bin.clone(),
            vec!["exit"],
            "exiting at once as configured",
        ),
        (
            "unpinned",
            "127.0.0.1:1/http-server".to_string(),
            vec![],
            "names no version",
        ),
        ("noconfig", bin, vec!["nope"], "does not exist"),
        (
            "elsewhere",
            format!("file://{}", wrong_target.display()),
            vec![],
            "no binary for",
        ),
    ];
    for (id, reference, config, reason) in cases {
        ctl.start_provider(host.id(), &start_cmd(id, &reference, &config))
            .await
            .unwrap();
        let failed = next_event(&mut events, "provider_start_failed", EVENT).await;
        assert_eq!(failed.data["provider_id"], id);
        let error = failed.data["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{id}: {error}");
    }
    assert!(no_providers(&ctl, host.id()).await);
}

/// A provider archive as `wash par create` makes one: gzipped tar with `claims.jwt` and the
/// binary for `target` as `{target}.bin`.
fn write_par(path: &std::path::Path, target: &str, binary: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("claims.jwt", &b"unverified"[..]),
        (&format!("{target}.bin"), binary),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_archive_runs_its_binary_for_this_machine() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let host = quick_host(&nats.url()).await;
    let mut events = ctl.events().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let par = dir.path().join("test-provider.par.gz");
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    write_par(&par, &target, &std::fs::read(test_provider_bin()).unwrap());
    let reference = format!("file://{}", par.display());
    ctl.start_provider(host.id(), &start_cmd("archived", &reference, &[]))
        .await
        .unwrap();
    next_event(&mut events, "provider_started", EVENT).await;
    let state = provider_state(&raw, "default", "archived")
        .await
        .expect("it runs");
    assert_eq!(state.host_id, host.id());
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(
        inv.providers[0].image_ref.as_deref(),
        Some(reference.as_str())
    );
    ctl.stop_provider(host.id(), "archived").await.unwrap();
    next_event(&mut events, "provider_stopped", EVENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_pulled_from_an_oci_registry_as_wasmcloud_pushes_it() {
    let registry = lattice_testkit::registry::OciRegistry::start().unwrap();
    let oci = lattice_host::oci::OciConfig {
        insecure_registries: vec![registry.host()],
        ..Default::default()
    };
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let host = in_process_host_with(&nats.url(), "default", |c| c.oci = oci.clone()).await;
    let mut events = ctl.events().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let par = dir.path().join("p.par.gz");
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    write_par(&par, &target, &std::fs::read(test_provider_bin()).unwrap());
    let reference = format!("{}/providers/test:0.1.0", registry.host());
    lattice_host::oci::OciClient::new(oci)
        .push_provider(&reference, std::fs::read(&par).unwrap())
        .await
        .unwrap();
    ctl.start_provider(host.id(), &start_cmd("pulled", &reference, &[]))
        .await
        .unwrap();
    let started = next_event(&mut events, "provider_started", EVENT).await;
    assert_eq!(started.data["image_ref"], reference.as_str());
    assert!(
        provider_state(&raw, "default", "pulled").await.is_some(),
        "it runs"
    );
    // A component artifact is not a provider: refused with what the artifact holds.
    let component = format!("{}/components/calc:0.1.0", registry.host());
    lattice_host::oci::OciClient::new(lattice_host::oci::OciConfig {
        insecure_registries: vec![registry.host()],
        ..Default::default()
    })
    .push(
        &component,
        std::fs::read(lattice_testkit::component_path("calc")).unwrap(),
    )
    .await
    .unwrap();
    ctl.start_provider(host.id(), &start_cmd("wrong", &component, &[]))
        .await
        .unwrap();
    let failed = next_event(&mut events, "provider_start_failed", EVENT).await;
    let error = failed.data["error"].as_str().unwrap_or_default();
    assert!(error.contains("application/wasm"), "{error}");
}
