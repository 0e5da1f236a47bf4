//! A running host: start-up order (the wiring of its parts) and graceful stop.
//!
//! Start-up order matters for "nothing is lost": every control subscription is in place (and
//! flushed to the server) before `host_started` is published, so a client reacting to that event
//! always reaches the host.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lattice_proto::event::{HostStarted, HostStopped, HOST_STARTED, HOST_STOPPED};
use lattice_proto::subject::{config_bucket, CtlSubjects};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::calls::RoutingCounts;
use crate::components::{Components, InvokeError};
use crate::config::HostConfig;
use crate::events::EventPublisher;
use crate::shared::{HostShared, StopReason};
use crate::store::ConfigStore;
use crate::{ctl, heartbeat, identity, HostError};

/// How long a stopping host tries to announce `host_stopped` and drain its connection.
pub const GOODBYE_BUDGET: Duration = Duration::from_secs(2);

/// A host that has joined its lattice. Stop it with [`Host::shutdown`].
pub struct Host {
    shared: Arc<HostShared>,
    tasks: Vec<JoinHandle<()>>,
    stop_rx: watch::Receiver<Option<StopReason>>,
    /// The metrics endpoint, with `--metrics-address`.
    metrics: Option<lattice_telemetry::Endpoint>,
}

impl Host {
    /// Connects to NATS, starts serving the control interface and heartbeats, and announces
    /// the host with `host_started`.
    pub async fn start(config: HostConfig) -> Result<Host, HostError> {
        let subjects = CtlSubjects::with_prefix(&config.ctl_prefix, &config.lattice)
            .map_err(|e| HostError::Config(e.to_string()))?;
        let key = identity::host_key(config.host_seed.as_deref()).map_err(HostError::Config)?;
        let labels = identity::host_labels(&config.labels).map_err(HostError::Config)?;
        if config.heartbeat_interval.is_zero() {
            return Err(HostError::Config(
                "heartbeat interval must be positive".into(),
            ));
        }
        let id = key.public_key();
        let friendly_name = config
            .friendly_name
            .clone()
            .unwrap_or_else(|| identity::friendly_name(&id));

        let runtime = lattice_runtime::Runtime::new(config.runtime.clone())?;
        let router_runtime = runtime.clone();
        let oci = Arc::new(crate::oci::OciClient::new(config.oci.clone()));
        let reconnected = Arc::new(Notify::new());
        let mut nats_config = config.nats.clone();
        nats_config
            .name
            .get_or_insert_with(|| format!("lattice-host {friendly_name}"));
        let connect_err = |source| HostError::Connect {
            urls: config.nats.urls.join(","),
            source,
        };
        let notify = reconnected.clone();
        let connected_at = Arc::new(crate::calls::ConnectedAt::default());
        let reconnects = connected_at.reconnects.clone();
        let connected = connected_at.clone();
        let opts = lattice_nats::connect_options(&nats_config)
            .await
            .map_err(connect_err)?
            .event_callback(move |event| {
                let notify = notify.clone();
                let connected = connected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            connected.now();
                            notify.notify_one()
                        }
                        async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                        other => tracing::info!(event = %other, "NATS connection event"),
                    }
                }
            });
        let client = lattice_nats::connect_with(&nats_config, opts)
            .await
            .map_err(connect_err)?;
        let mut messaging_config = nats_config.clone();
        messaging_config.name = nats_config.name.as_ref().map(|n| format!("{n} messaging"));
        let messaging_nats = lattice_nats::connect(&messaging_config)
            .await
            .map_err(connect_err)?;
        // The first `Connected` is the initial connection, not a reconnect.
        let _ = tokio::time::timeout(Duration::from_millis(50), reconnected.notified()).await;

        let js = match &config.js_domain {
            Some(domain) => async_nats::jetstream::with_domain(client.clone(), domain),
            None => async_nats::jetstream::new(client.clone()),
        };
        let js_for_kv = js.clone();
        let (stop, stop_rx) = watch::channel(None);
        let connections =
            crate::messaging::connections::Connections::new(messaging_nats, &friendly_name);
        let events = EventPublisher::new(client.clone(), &config.lattice, &id);
        let calls = Arc::new(crate::calls::Calls::new(
            client.clone(),
            subjects.clone(),
            connected_at,
            config.call_timeout,
            config.force_remote_calls,
        ));
        let components = Arc::new(Components::new(
            runtime,
            oci.clone(),
            config.allow_file_load,
            config.default_limits.clone(),
        ));
        let admission = Arc::new(crate::admission::Admission::default());
        let metrics = match (&config.metrics_otlp, config.metrics_address) {
            (Some(base), _) => Some(Arc::new(lattice_telemetry::Metrics::with_otlp(
                &id,
                &config.lattice,
                base,
            )?)),
            (None, Some(_)) => Some(Arc::new(lattice_telemetry::Metrics::new(
                &id,
                &config.lattice,
            ))),
            (None, None) => None,
        };
        if let Some(m) = &metrics {
            let components = Arc::downgrade(&components);
            m.observe(
                move || {
                    components
                        .upgrade()
                        .map(|c| c.instances())
                        .unwrap_or_default()
                },
                reconnects,
            );
        }
        let endpoint = match (config.metrics_address, &metrics) {
            (Some(addr), Some(m)) => {
                Some(lattice_telemetry::Endpoint::start(addr, m.clone()).await?)
            }
            _ => None,
        };
        let tracing = match &config.traces {
            Some(endpoint) => Some(Arc::new(lattice_telemetry::Tracing::otlp(
                Some(endpoint.as_str()).filter(|e| !e.is_empty()),
                &id,
                &config.lattice,
            )?)),
            None => None,
        };
        let server = Arc::new(crate::serve::Server {
            host_id: id.clone(),
            lattice: config.lattice.clone(),
            nats: client.clone(),
            components: components.clone(),
            admission: admission.clone(),
            calls: calls.clone(),
            serving: Default::default(),
            metrics: metrics.clone(),
            tracing: tracing.clone(),
        });
        let state = Arc::new(crate::state::LatticeState::new(
            ConfigStore::new(
                js.clone(),
                config_bucket(&config.lattice),
                config.kv_replicas,
            ),
            Arc::new(crate::links::Links::new(
                js.clone(),
                lattice_proto::subject::lattice_data_bucket(&config.lattice),
                config.kv_replicas,
            )),
        ));
        let grants = Arc::new(crate::grants::Grants::default());
        let messaging = Arc::new(crate::messaging::parts::Broker {
            lattice: config.lattice.clone(),
            state: state.clone(),
            grants: grants.clone(),
            components: components.clone(),
            admission: admission.clone(),
            call_timeout: config.call_timeout,
            replies: Default::default(),
            connections,
            calls: calls.clone(),
        });
        let providers = Arc::new(crate::providers::Providers::new(
            id.clone(),
            config.lattice.clone(),
            client.clone(),
            crate::providers::RpcAccess::of(&config.nats),
            state.clone(),
            events.clone(),
            config.allow_file_load,
            config.providers,
            oci,
        ));
        let shared = Arc::new(HostShared {
            me: crate::identity::Identity {
                id,
                friendly_name,
                lattice: config.lattice.clone(),
                started: Instant::now(),
                labels: RwLock::new(labels),
                heartbeat_interval: config.heartbeat_interval,
                js_domain: config.js_domain.clone(),
            },
            events,
            state,
            grants,
            messaging,
            server,
            calls,
            components,
            providers,
            nats: client,
            subjects,
            stop,
        });

        router_runtime.set_router(Arc::new(crate::router::HostRouter(Arc::new(
            crate::router::RouterParts {
                lattice: shared.me.lattice.clone(),
                links: shared.state.links.clone(),
                components: Arc::downgrade(&shared.components),
                calls: shared.calls.clone(),
                metrics,
                tracing: tracing.clone(),
            },
        ))));
        let kv = crate::keyvalue::JetStreamKv::new(
            js_for_kv,
            &shared.me.lattice,
            config.kv_replicas,
            shared.grants.clone(),
            shared.state.clone(),
            shared.server.metrics.clone(),
        );
        router_runtime.set_keyvalue(Arc::new(kv));
        router_runtime.set_messaging(Arc::new(crate::messaging::NatsMessaging {
            broker: Arc::downgrade(&shared.messaging),
        }));
        let mut tasks = ctl::serve(shared.clone()).await?;
        // Subscriptions must be live on the server before anyone hears of this host.
        if let Err(e) = lattice_nats::sync_with_server(&shared.nats).await {
            tracing::warn!(error = %e, "cannot confirm subscriptions with the server");
        }
        shared
            .events
            .publish(
                HOST_STARTED,
                HostStarted {
                    friendly_name: shared.me.friendly_name.clone(),
                    labels: shared.me.labels(),
                    uptime_seconds: 0,
                    version: crate::VERSION.into(),
                    heartbeat_interval_ms: Some(shared.me.heartbeat_interval.as_millis() as u64),
                },
            )
            .await;
        let described = shared.clone();
        tasks.push(tokio::spawn(heartbeat::run(
            shared.events.clone(),
            shared.me.heartbeat_interval,
            move || described.inventory(),
            reconnected,
        )));
        let refresh = shared.clone();
        tasks.push(tokio::spawn(crate::state::follow_config(
            shared.state.clone(),
            move |name| {
                let shared = refresh.clone();
                async move {
                    shared
                        .components
                        .config_changed(&name, &shared.state.config)
                        .await
                }
            },
        )));
        tasks.push(tokio::spawn(crate::links::follow(
            shared.state.links.clone(),
        )));
        tasks.push(tokio::spawn(crate::messaging::follow(
            shared.messaging.clone(),
        )));
        let ingress = Arc::new(crate::http::Ingress {
            host_id: shared.me.id.clone(),
            lattice: shared.me.lattice.clone(),
            state: shared.state.clone(),
            components: shared.components.clone(),
            calls: shared.calls.clone(),
            tracing,
            metrics: shared.server.metrics.clone(),
        });
        tasks.push(tokio::spawn(crate::http::follow(
            ingress,
            config.http_address,
            Default::default(),
        )));
        tracing::info!(
            host_id = %shared.me.id,
            name = %shared.me.friendly_name,
            lattice = %shared.me.lattice,
            "host started"
        );
        Ok(Host {
            shared,
            tasks,
            stop_rx,
            metrics: endpoint,
        })
    }

    /// The host's instruments, when it measures (for the reconciler beside it).
    pub fn metrics(&self) -> Option<Arc<lattice_telemetry::Metrics>> {
        self.shared.server.metrics.clone()
    }

    /// Where the metrics endpoint listens, with `--metrics-address`.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|e| e.addr())
    }

    /// The host's public key (`N…`).
    pub fn id(&self) -> &str {
        &self.shared.me.id
    }

    pub fn friendly_name(&self) -> &str {
        &self.shared.me.friendly_name
    }

    /// Calls `func` of `interface` (`None`: a root-level function) exported by component `id`
    /// running on this host: the local call path, for embedding and tests.
    pub async fn call(
        &self,
        id: &str,
        interface: Option<&str>,
        func: &str,
        params: &[lattice_runtime::Val],
    ) -> Result<Vec<lattice_runtime::Val>, InvokeError> {
        self.shared
            .components
            .call(id, interface, func, params)
            .await
    }

    /// How many linked calls and HTTP requests stayed in-process, went over wRPC, or were
    /// retried.
    pub fn routing_stats(&self) -> RoutingCounts {
        self.shared.calls.stats.counts()
    }

    /// Instance counters of component `id` on this host.
    pub fn component_stats(&self, id: &str) -> Option<lattice_runtime::PoolStats> {
        self.shared.components.get(id).map(|r| r.pool.stats())
    }

    /// Resolves when a `host.stop` control request asks this host to stop.
    pub async fn stop_requested(&mut self) -> StopReason {
        loop {
            if let Some(reason) = self.stop_rx.borrow_and_update().clone() {
                return reason;
            }
            if self.stop_rx.changed().await.is_err() {
                return StopReason::Signal;
            }
        }
    }

    /// Stops the host: control and serving end at once, running calls are dropped with their
    /// instances, and `host_stopped` is announced if NATS is reachable within
    /// [`GOODBYE_BUDGET`].
    pub async fn shutdown(self, reason: StopReason) {
        tracing::info!(host_id = %self.shared.me.id, ?reason, "host stopping");
        // Dropping the control tasks drops their subscriptions: pings stop finding this host.
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        self.shared.server.serving.stop_all();
        self.shared.components.stop_all();
        // Providers are asked to stop while NATS is still there to ask them.
        let _ = tokio::time::timeout(GOODBYE_BUDGET, self.shared.providers.stop_all()).await;
        let why = match reason {
            StopReason::Requested { .. } => "stop requested",
            StopReason::Signal => "signal",
        };
        // Say goodbye, but never wait on NATS for long: with the server gone, a stopping host
        // must still stop.
        let goodbye = async {
            self.shared
                .events
                .publish(
                    HOST_STOPPED,
                    HostStopped {
                        labels: self.shared.me.labels(),
                        reason: Some(why.into()),
                    },
                )
                .await;
            if let Err(e) = self.shared.nats.flush().await {
                tracing::warn!(error = %e, "flushing host_stopped failed");
            }
            if let Err(e) = self.shared.nats.drain().await {
                tracing::warn!(error = %e, "draining the NATS connection failed");
            }
            let _ = self
                .shared
                .messaging
                .connections
                .default_connection()
                .drain()
                .await;
        };
        if tokio::time::timeout(GOODBYE_BUDGET, goodbye).await.is_err() {
            tracing::warn!("NATS unreachable: stopped without announcing host_stopped");
        }
        tracing::info!(host_id = %self.shared.me.id, "host stopped");
    }
}
