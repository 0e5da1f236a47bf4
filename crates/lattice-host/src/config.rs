//! Typed configuration of a host and of its NATS connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lattice_proto::subject::DEFAULT_CTL_PREFIX;

/// Default interval between heartbeats. wasmCloud v1 used 30 s; a watcher declares a host dead
/// after three missed heartbeats, so 5 s keeps that under 15 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// The default shared HTTP listener (wasmCloud's http-server default port, on loopback).
pub const DEFAULT_HTTP_ADDRESS: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8000),
);

/// How to reach NATS: one or more server URLs (a cluster's members), credentials and TLS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs; the client fails over between them and any servers the cluster announces.
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    /// CA file to trust for the servers' TLS certificates (implies TLS).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub tls_client_cert: Option<(PathBuf, PathBuf)>,
    /// Connection name shown in the server's monitoring (`connz`).
    pub name: Option<String>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            urls: vec!["nats://127.0.0.1:4222".into()],
            auth: NatsAuth::None,
            tls_ca: None,
            tls_client_cert: None,
            name: None,
        }
    }
}

impl NatsConfig {
    /// A config for the comma-separated server list `urls`, without auth or TLS.
    pub fn from_urls(urls: &str) -> Self {
        Self {
            urls: split_urls(urls),
            ..Self::default()
        }
    }
}

/// Splits a comma-separated list of URLs, ignoring blanks.
pub fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

/// NATS authentication.
#[derive(Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// A user nkey seed (`SU…`).
    NkeySeed(String),
    /// A `.creds` file holding a user JWT and seed.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            NatsAuth::Token(_) => f.write_str("Token(***)"),
            NatsAuth::NkeySeed(_) => f.write_str("NkeySeed(***)"),
            NatsAuth::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
        }
    }
}

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
    /// Whether this host may run the lattice's application reconciler (one host at a time
    /// does; see `lattice_app::reconcile`).
    pub reconciler: bool,
    /// The shared HTTP listener: where requests for links routed by `path` or `host` arrive.
    /// Opened only while such a link exists.
    pub http_address: std::net::SocketAddr,
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
            call_timeout: crate::router::DEFAULT_CALL_TIMEOUT,
            reconciler: true,
            http_address: DEFAULT_HTTP_ADDRESS,
        }
    }
}
