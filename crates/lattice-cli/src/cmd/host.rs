//! `lattice host` (run a host) and `lattice host stop`.

use anyhow::Context;
use lattice_host::{Host, HostConfig, StopReason};
use tokio::signal::unix::{signal, SignalKind};

use crate::args::{GlobalArgs, HostAction, HostArgs, HostCommand};
use crate::output;

pub async fn run(global: &GlobalArgs, cmd: HostCommand) -> anyhow::Result<()> {
    match cmd.action {
        None => run_host(global, &cmd.host, None).await,
        Some(HostAction::Stop {
            host_id,
            graceful_timeout,
        }) => {
            let ctl = crate::ctl_client(global).await?;
            ctl.stop_host(&host_id, graceful_timeout).await?;
            output::done(global, &format!("host {host_id} is stopping"));
            Ok(())
        }
    }
}

/// The host configuration described by the command line.
pub fn host_config(
    global: &GlobalArgs,
    args: &HostArgs,
    url: Option<&str>,
) -> anyhow::Result<HostConfig> {
    Ok(HostConfig {
        lattice: global.lattice.clone(),
        nats: crate::nats_config(global, url)?,
        host_seed: args.host_seed.clone(),
        friendly_name: args.friendly_name.clone(),
        labels: args.labels.iter().cloned().collect(),
        heartbeat_interval: args.heartbeat_interval,
        js_domain: args.js_domain.clone(),
        kv_replicas: args.kv_replicas,
        ..HostConfig::default()
    })
}

/// Runs a host in the foreground until SIGINT/SIGTERM or a `host.stop` request.
pub async fn run_host(
    global: &GlobalArgs,
    args: &HostArgs,
    url: Option<&str>,
) -> anyhow::Result<()> {
    // Install the handlers first: a signal during start-up must still stop us cleanly.
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let config = host_config(global, args, url)?;
    let mut host = tokio::select! {
        host = Host::start(config) => host?,
        _ = sigint.recv() => return Ok(()),
        _ = sigterm.recv() => return Ok(()),
    };
    eprintln!(
        "host {} ({}) joined lattice {:?}",
        host.id(),
        host.friendly_name(),
        global.lattice
    );
    let reason = tokio::select! {
        r = host.stop_requested() => r,
        _ = sigint.recv() => StopReason::Signal,
        _ = sigterm.recv() => StopReason::Signal,
    };
    host.shutdown(reason).await;
    Ok(())
}
