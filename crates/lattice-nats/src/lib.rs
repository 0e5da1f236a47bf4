//! Connecting to NATS the way every Lattice member does (hosts, the CLI, the reconciler), and
//! the JetStream KV helper they share. No lattice logic: that is the other crates'.
//!
//! # Layout
//! - here: [`NatsConfig`] and [`NatsAuth`] (how to reach NATS), [`connect`] and its parts,
//!   [`sync_with_server`] (wait until the server has processed what was sent).
//! - [`kv`]: opening a JetStream KV bucket, creating it when missing, race-free across hosts.
//!
//! A member (a host above all) must outlive restarts and fail-overs of its NATS servers, so
//! it reconnects forever with a short, capped backoff, and pings its server often enough to notice a half-open
//! connection in seconds rather than minutes. async-nats re-establishes subscriptions (queue
//! groups included) on every reconnect.

pub mod kv;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};

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

/// How often the client pings its server; two unanswered pings drop the connection. Dead
/// *hosts* are found by the server's own pings (every 500 ms, 3 missed, in the configs we
/// ship: a silent host is dropped within 3 s); this side only
/// has to notice a dead server, and a short interval here turns a briefly CPU-starved host
/// (e.g. compiling components on a small machine) into a needless reconnect.
pub const CLIENT_PING_INTERVAL: Duration = Duration::from_secs(5);

/// Why a NATS connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no NATS server URL given")]
    NoUrl,
    #[error("invalid NATS URL {url:?}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot read credentials file {path}: {source}")]
    Creds {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Nats(#[from] async_nats::ConnectError),
}

/// Options for a connection that reconnects forever, from `config`.
pub async fn connect_options(config: &NatsConfig) -> Result<ConnectOptions, ConnectError> {
    let mut opts =
        match &config.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(token) => ConnectOptions::with_token(token.clone()),
            NatsAuth::NkeySeed(seed) => ConnectOptions::with_nkey(seed.clone()),
            NatsAuth::CredsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| ConnectError::Creds {
                    path: path.display().to_string(),
                    source,
                })?,
        };
    if let Some(ca) = &config.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &config.tls_client_cert {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(name) = &config.name {
        opts = opts.name(name);
    }
    Ok(opts
        .max_reconnects(None)
        .ping_interval(CLIENT_PING_INTERVAL)
        .connection_timeout(Duration::from_secs(3))
        // Capped exponential backoff: first retries are fast so a fail-over is quick.
        .reconnect_delay_callback(|attempts| {
            let ms = 25u64.saturating_mul(1 << attempts.min(6) as u64);
            Duration::from_millis(ms.min(1000))
        }))
}

/// Parses the configured URLs.
pub fn server_addrs(config: &NatsConfig) -> Result<Vec<ServerAddr>, ConnectError> {
    if config.urls.is_empty() {
        return Err(ConnectError::NoUrl);
    }
    config
        .urls
        .iter()
        .map(|u| {
            u.parse::<ServerAddr>().map_err(|e| ConnectError::BadUrl {
                url: u.clone(),
                detail: e.to_string(),
            })
        })
        .collect()
}

/// Connects with `opts` (from [`connect_options`], possibly extended) to `config`'s servers.
pub async fn connect_with(
    config: &NatsConfig,
    opts: ConnectOptions,
) -> Result<async_nats::Client, ConnectError> {
    let addrs = server_addrs(config)?;
    Ok(opts.connect(addrs).await?)
}

/// Connects to NATS as described by `config`.
pub async fn connect(config: &NatsConfig) -> Result<async_nats::Client, ConnectError> {
    let opts = connect_options(config).await?;
    connect_with(config, opts).await
}

/// Waits until the server has processed everything this connection sent so far (in
/// particular its subscriptions), by publishing to a fresh inbox it listens on and waiting for
/// the message to come back. `flush()` alone only empties the client's socket buffer.
pub async fn sync_with_server(nats: &async_nats::Client) -> Result<(), SyncError> {
    use futures::StreamExt;
    let inbox = nats.new_inbox();
    let mut sub = nats.subscribe(inbox.clone()).await?;
    nats.publish(inbox, bytes::Bytes::new()).await?;
    match tokio::time::timeout(SYNC_TIMEOUT, sub.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(SyncError::Closed),
        Err(_) => Err(SyncError::NoEcho),
    }
}

/// How long [`sync_with_server`] waits for its echo.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// Why [`sync_with_server`] could not confirm that the server caught up.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot subscribe for the echo: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("cannot publish the echo: {0}")]
    Publish(#[from] async_nats::PublishError),
    #[error("the echo's subscription closed")]
    Closed,
    #[error("no echo from the server within {SYNC_TIMEOUT:?}")]
    NoEcho,
}
