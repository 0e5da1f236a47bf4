//! A provider's life after its first start: health checks, links as they change, restarts
//! with backoff when the process dies, and the stop.
//!
//! A process that dies is not reported as stopped (schedulers such as wadm would place the
//! provider again elsewhere while this host brings it back): it is reported unhealthy
//! (`health_check_failed`) and, once a new process answers, healthy again.

use std::path::PathBuf;
use std::sync::Arc;

use lattice_proto::provider::{
    health_subject, shutdown_subject, HostData, InterfaceLinkDefinition, ProviderHealth,
    ProviderStopped, HEALTH_CHECK_FAILED, HEALTH_CHECK_PASSED, HEALTH_CHECK_STATUS,
    PROVIDER_STOPPED,
};

use super::process::{ask_health, Process};
use super::{Providers, Running};

/// What a provider is (re)started from.
pub(super) struct Launch {
    pub path: PathBuf,
    pub config_names: Vec<String>,
}

impl Providers {
    /// Spawns a process of provider `id` (a new xkey each time), and waits until it
    /// answers its health check. Returns it with the links it was started with.
    pub(super) async fn launch(
        &self,
        id: &str,
        launch: &Launch,
        config: std::collections::HashMap<String, String>,
    ) -> Result<(Process, Vec<InterfaceLinkDefinition>), String> {
        let xkey = nkeys::XKey::new();
        let links = self.links_of(id).await;
        let data = HostData {
            host_id: self.host_id.clone(),
            lattice_rpc_prefix: self.lattice.clone(),
            link_name: "default".into(),
            lattice_rpc_user_jwt: self.rpc.jwt.clone(),
            lattice_rpc_user_seed: self.rpc.seed.clone(),
            lattice_rpc_url: self.rpc.url.clone(),
            provider_key: id.to_string(),
            env_values: Default::default(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            link_definitions: links.clone(),
            cluster_issuers: Vec::new(),
            config,
            secrets: Default::default(),
            host_xkey_public_key: self.host_xkey.public_key(),
            provider_xkey_private_key: xkey
                .seed()
                .map_err(|e| format!("cannot make an xkey: {e}"))?,
            default_rpc_timeout_ms: Some(2000),
            structured_logging: false,
            log_level: None,
            otel_config: serde_json::json!({}),
        };
        let mut process = Process::spawn(&launch.path, id, &data).await?;
        process.xkey = xkey.public_key();
        process
            .ready(
                &self.nats,
                &health_subject(&self.lattice, id),
                self.timings.ready_within,
            )
            .await?;
        Ok((process, links))
    }

    async fn health_event(&self, kind: &str, id: &str) {
        self.events
            .publish(
                kind,
                ProviderHealth {
                    host_id: self.host_id.clone(),
                    provider_id: id.to_string(),
                },
            )
            .await;
    }
}

/// Runs provider `running` from its first process on, until it is asked to stop.
pub(super) async fn run(
    providers: Arc<Providers>,
    running: Arc<Running>,
    launch: Launch,
    mut process: Process,
    mut sent: Vec<InterfaceLinkDefinition>,
) {
    let id = running.id.clone();
    let timings = providers.timings;
    let mut stop = running.stop.subscribe();
    // A stop asked while the first process was starting (before this subscription) counts:
    // a new receiver takes the current value as seen.
    if *stop.borrow() {
        stop.mark_changed();
    }
    let mut links = providers.state.links.subscribe();
    let health = health_subject(&providers.lattice, &id);
    let mut checks = tokio::time::interval_at(
        tokio::time::Instant::now() + timings.health_interval,
        timings.health_interval,
    );
    let mut healthy = true;
    let mut backoff = timings.restart_backoff.0;
    // Links put between the first process's start and now.
    providers.sync_links(&id, &process.xkey, &mut sent).await;
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => {
                process
                    .stop(&providers.nats, &shutdown_subject(&providers.lattice, &id), &providers.host_id, timings.stop_within)
                    .await;
                break "normal".to_string();
            }
            how = process.exited() => {
                let output = process.final_output().await;
                tracing::warn!(provider_id = %id, exit = %how, output = %output, "provider died; restarting it");
                if healthy {
                    providers.health_event(HEALTH_CHECK_FAILED, &id).await;
                }
                // Started again after a growing wait, until it answers or is asked to stop.
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(timings.restart_backoff.1);
                    let config = providers.merged_config(&launch.config_names, false).await.unwrap_or_default();
                    match providers.launch(&id, &launch, config).await {
                        Ok((p, s)) => {
                            process = p;
                            sent = s;
                            break;
                        }
                        Err(e) => tracing::warn!(provider_id = %id, error = %e, "provider restart failed"),
                    }
                }
                if *stop.borrow() {
                    break "stopped while restarting".to_string();
                }
                tracing::info!(provider_id = %id, "provider restarted");
                providers.health_event(HEALTH_CHECK_PASSED, &id).await;
                healthy = true;
            }
            _ = checks.tick() => {
                let now = ask_health(&providers.nats, &health).await.is_some_and(|h| h.healthy);
                let event = match (healthy, now) {
                    (false, true) => HEALTH_CHECK_PASSED,
                    (true, false) => HEALTH_CHECK_FAILED,
                    _ => HEALTH_CHECK_STATUS,
                };
                if now {
                    backoff = timings.restart_backoff.0;
                }
                healthy = now;
                providers.health_event(event, &id).await;
            }
            _ = links.changed() => {
                providers.sync_links(&id, &process.xkey, &mut sent).await;
            }
        }
    };
    providers.forget(&id);
    tracing::info!(provider_id = %id, %reason, "provider stopped");
    providers
        .events
        .publish(
            PROVIDER_STOPPED,
            ProviderStopped {
                host_id: providers.host_id.clone(),
                provider_id: id,
                annotations: running.annotations.clone(),
                reason,
            },
        )
        .await;
}
