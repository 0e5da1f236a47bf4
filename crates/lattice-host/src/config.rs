//! Typed configuration of a host and of its NATS connection.

use std::collections::BTreeMap;
use std::time::Duration;

pub use lattice_nats::{split_urls, NatsAuth, NatsConfig};
use lattice_proto::subject::DEFAULT_CTL_PREFIX;

/// Default interval between heartbeats. wasmCloud v1 used 30 s; a watcher declares a host dead
/// after three missed heartbeats, so 5 s keeps that under 15 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// The default shared HTTP listener (wasmCloud's http-server default port, on loopback).
pub const DEFAULT_HTTP_ADDRESS: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8000),
);

/// Everything a host starts from.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The lattice to join (a namespace of subjects and buckets).
    pub lattice: String,
    pub nats: NatsConfig,
    /// Prefix of control subjects (`wasmbus.ctl`).
    pub ctl_prefix: String,
    /// Server nkey seed (`SN…`) fixing the host's identity; a fresh key when `None`.
    pub host_seed: Option<String>,
    /// Human-friendly name; derived from the host key when `None`.
    pub friendly_name: Option<String>,
    /// User labels. `hostcore.*` keys are reserved and rejected.
    pub labels: BTreeMap<String, String>,
    pub heartbeat_interval: Duration,
    /// JetStream domain holding the lattice's buckets (for leaf-node topologies).
    pub js_domain: Option<String>,
    /// Replicas of KV buckets this host creates when missing (3 in a production cluster).
    pub kv_replicas: usize,
    /// Whether `file://` component references may be loaded.
    pub allow_file_load: bool,
    /// Engine, allocator and compile-cache settings.
    pub runtime: lattice_runtime::RuntimeConfig,
    /// Limits of components whose scale request sets none.
    pub default_limits: lattice_runtime::Limits,
    /// OCI registry access.
    pub oci: crate::oci::OciConfig,
    /// Send every linked call over wRPC, even when the target runs here (for testing).
    pub force_remote_calls: bool,
    /// Time budget of a call a component makes through an import.
    pub call_timeout: Duration,
    /// The shared HTTP listener: where requests for links routed by `path` or `host` arrive.
    /// Opened only while such a link exists.
    pub http_address: std::net::SocketAddr,
    /// How capability providers are paced (health checks, start and stop bounds).
    pub providers: crate::providers::ProviderTimings,
    /// Where Prometheus scrapes this host's metrics (`GET /metrics`); `None`: the host
    /// measures nothing.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Metrics pushed over OTLP as well: `None`, off; `Some(endpoint)`, on, to that OTLP/HTTP
    /// base URL or (when empty) where the standard `OTEL_EXPORTER_OTLP_*` variables say.
    pub metrics_otlp: Option<String>,
    /// Traces over OTLP: `None`, off; `Some(endpoint)`, on, to that OTLP/HTTP base URL or
    /// (when empty) where the standard `OTEL_EXPORTER_OTLP_*` variables say.
    pub traces: Option<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            lattice: "default".into(),
            nats: NatsConfig::default(),
            ctl_prefix: DEFAULT_CTL_PREFIX.into(),
            host_seed: None,
            friendly_name: None,
            labels: BTreeMap::new(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            js_domain: None,
            kv_replicas: 1,
            allow_file_load: false,
            runtime: lattice_runtime::RuntimeConfig::default(),
            default_limits: lattice_runtime::Limits::default(),
            oci: crate::oci::OciConfig::default(),
            force_remote_calls: false,
            call_timeout: crate::calls::DEFAULT_CALL_TIMEOUT,
            http_address: DEFAULT_HTTP_ADDRESS,
            providers: Default::default(),
            metrics_address: None,
            traces: None,
            metrics_otlp: None,
        }
    }
}
