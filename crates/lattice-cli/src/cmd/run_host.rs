//! Running a host in the foreground (`lattice host`, `lattice up`): its configuration from
//! the command line, the application reconciler beside it, signals and graceful stop.
//!
//! Only with the `host` cargo feature: this is what links `lattice-host` and wasmtime.

use anyhow::Context;
use lattice_host::{Host, HostConfig, Limits, RuntimeConfig, StopReason};
use tokio::signal::unix::{signal, SignalKind};

use crate::args::{GlobalArgs, HostArgs};

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
        allow_file_load: args.allow_file_load,
        runtime: RuntimeConfig {
            cache_dir: match &args.cache_dir {
                Some(d) => Some(d.clone()),
                None => dirs::cache_dir().map(|d| d.join("lattice/compiled")),
            },
            pool_instances: args.pool_instances,
            max_memory_bytes: args
                .max_linear_memory
                .max(RuntimeConfig::default().max_memory_bytes),
        },
        default_limits: Limits {
            max_memory_bytes: args.max_linear_memory,
            max_execution_time: args.max_execution_time,
            max_component_bytes: args.max_component_size,
        },
        oci: super::oci::oci_config(&args.oci, args.oci_registry.as_deref())?,
        force_remote_calls: args.force_remote_calls,
        call_timeout: args.call_timeout,
        http_address: args.http_address,
        metrics_address: args.metrics_address,
        // The exporters read the standard variables themselves; setting one turns its
        // signal on.
        traces: (args.enable_traces || otel_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .then(String::new),
        metrics_otlp: (args.enable_metrics || otel_env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
            .then(String::new),
        ..HostConfig::default()
    })
}

/// The reconciler's passes and commands, counted in its host's metrics.
struct Measured(std::sync::Arc<lattice_telemetry::Metrics>);

impl lattice_app::ReconcilerObserver for Measured {
    fn pass(&self, complete: bool) {
        self.0.reconciler_pass(complete);
    }

    fn action(&self, kind: &'static str) {
        self.0.reconciler_action(kind);
    }
}

/// Whether `signal_var` or the generic `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
fn otel_env(signal_var: &str) -> bool {
    [signal_var, "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Starts the lattice's application reconciler beside host `host_id`, on a connection of its
/// own; it is active only while it holds the lattice's lease (one host at a time).
async fn start_reconciler(
    config: &HostConfig,
    host_id: &str,
    friendly_name: &str,
    metrics: Option<std::sync::Arc<lattice_telemetry::Metrics>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut nats_config = config.nats.clone();
    nats_config.name = Some(format!("lattice-host {friendly_name} reconciler"));
    let nats = lattice_nats::connect(&nats_config)
        .await
        .context("cannot connect the reconciler to NATS")?;
    let js = match &config.js_domain {
        Some(domain) => async_nats::jetstream::with_domain(nats.clone(), domain),
        None => async_nats::jetstream::new(nats.clone()),
    };
    let mut rc = lattice_app::ReconcilerConfig::new(&config.lattice, host_id);
    rc.kv_replicas = config.kv_replicas;
    rc.ctl_prefix = config.ctl_prefix.clone();
    rc.observer = metrics.map(|m| std::sync::Arc::new(Measured(m)) as _);
    Ok(tokio::spawn(lattice_app::run_reconciler(nats, js, rc)))
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
    let apps = config.clone();
    let mut host = tokio::select! {
        host = Host::start(config) => host?,
        _ = sigint.recv() => return Ok(()),
        _ = sigterm.recv() => return Ok(()),
    };
    let reconciler =
        match start_reconciler(&apps, host.id(), host.friendly_name(), host.metrics()).await {
            Ok(task) => task,
            Err(e) => {
                host.shutdown(StopReason::Signal).await;
                return Err(e);
            }
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
    reconciler.abort();
    // A second signal stops at once.
    tokio::select! {
        _ = host.shutdown(reason) => {}
        _ = sigint.recv() => eprintln!("stopped without waiting (second signal)"),
        _ = sigterm.recv() => eprintln!("stopped without waiting (second signal)"),
    }
    Ok(())
}
