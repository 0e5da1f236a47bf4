//! Components from OCI registries: pull (with progress and digest check) and push.
//!
//! Components travel as Wasm OCI artifacts: one layer of media type `application/wasm`
//! (older wasmCloud media types are accepted on pull) and a config of type
//! `application/vnd.wasm.config.v0+json`. Credentials come from the host's flags or from the
//! `registry.put` control operation, per registry, and go only to the registry they were
//! given for: a reference naming any other registry is pulled anonymously.

use std::collections::HashMap;
use std::sync::RwLock;

use futures::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use sha2::{Digest, Sha256};

/// Media type of a component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the artifact config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of a capability provider's layer: a provider archive (wasmCloud's, as `wash push`
/// makes it).
pub const PROVIDER_LAYER_MEDIA_TYPE: &str =
    "application/vnd.wasmcloud.provider.archive.layer.v1+par";
/// Media type of a provider artifact's config.
pub const PROVIDER_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasmcloud.provider.archive.config";
const PROVIDER_LAYER_TYPES: &[&str] = &[PROVIDER_LAYER_MEDIA_TYPE];
const ACCEPTED_LAYER_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];

/// Registry credentials.
#[derive(Clone, Default)]
pub struct RegistryCredentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl RegistryCredentials {
    fn auth(&self) -> RegistryAuth {
        match (&self.username, &self.password, &self.token) {
            (Some(u), Some(p), _) => RegistryAuth::Basic(u.clone(), p.clone()),
            (_, _, Some(t)) => RegistryAuth::Bearer(t.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryCredentials({:?}, ***)", self.username)
    }
}

/// How the host talks to registries.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// Registries (`host:port`) reached over plain HTTP, e.g. a registry on loopback.
    pub insecure_registries: Vec<String>,
    /// Whether `:latest` (or no tag) may be pulled; off by default, since it is not reproducible.
    pub allow_latest: bool,
    /// Credentials by registry (`host[:port]`), sent to that registry only.
    pub credentials: HashMap<String, RegistryCredentials>,
    /// How long one pull (manifest and layer) may take before it is abandoned.
    pub pull_timeout: std::time::Duration,
}

/// How long a pull may take unless the host says otherwise.
pub const DEFAULT_PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Bytes reserved up front for a layer, whatever size the registry declares: a registry's
/// word is not an allocation (the buffer grows as bytes really arrive).
const INITIAL_LAYER_CAPACITY: usize = 1 << 20;

impl Default for OciConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            allow_latest: false,
            credentials: HashMap::new(),
            pull_timeout: DEFAULT_PULL_TIMEOUT,
        }
    }
}

/// The registry (`host[:port]`) an OCI reference names, as credentials are keyed.
pub fn registry_of(reference: &str) -> Option<String> {
    reference
        .parse::<Reference>()
        .ok()
        .map(|r| r.registry().to_string())
}

pub struct OciClient {
    client: oci_client::Client,
    config: OciConfig,
    credentials: RwLock<HashMap<String, RegistryCredentials>>,
}

impl OciClient {
    pub fn new(config: OciConfig) -> Self {
        // reqwest is built without a bundled crypto provider; use ring, as async-nats does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
            ..Default::default()
        });
        Self {
            client,
            credentials: RwLock::new(config.credentials.clone()),
            config,
        }
    }

    /// Sets the credentials of `registry` (`host[:port]`).
    pub fn set_credentials(&self, registry: &str, credentials: RegistryCredentials) {
        if let Ok(mut c) = self.credentials.write() {
            c.insert(registry.to_string(), credentials);
        }
    }

    fn auth_for(&self, reference: &Reference) -> RegistryAuth {
        let registry = reference.resolve_registry();
        self.credentials
            .read()
            .ok()
            .and_then(|c| {
                c.get(registry)
                    .or_else(|| c.get(reference.registry()))
                    .cloned()
            })
            .map(|c| c.auth())
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Pulls the component at `reference`, refusing layers over `max_bytes` and pulls that
    /// take longer than the configured timeout, logging progress and checking the layer
    /// digest.
    pub async fn pull(&self, reference: &str, max_bytes: usize) -> Result<Vec<u8>, PullError> {
        self.pull_layer(reference, max_bytes, ACCEPTED_LAYER_TYPES, "component")
            .await
    }

    /// Pulls the provider archive at `reference`, with the bounds and checks of [`pull`].
    ///
    /// [`pull`]: OciClient::pull
    pub async fn pull_provider(
        &self,
        reference: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, PullError> {
        self.pull_layer(reference, max_bytes, PROVIDER_LAYER_TYPES, "provider")
            .await
    }

    async fn pull_layer(
        &self,
        reference: &str,
        max_bytes: usize,
        accepted: &[&str],
        what: &'static str,
    ) -> Result<Vec<u8>, PullError> {
        let limit = self.config.pull_timeout;
        tokio::time::timeout(
            limit,
            self.pull_within(reference, max_bytes, accepted, what),
        )
        .await
        .unwrap_or_else(|_| {
            Err(PullError::TimedOut {
                reference: reference.into(),
                limit,
            })
        })
    }

    async fn pull_within(
        &self,
        reference: &str,
        max_bytes: usize,
        accepted: &[&str],
        what: &'static str,
    ) -> Result<Vec<u8>, PullError> {
        let oci =
            |what: &'static str, e: Box<dyn std::error::Error + Send + Sync>| PullError::Registry {
                what,
                reference: reference.into(),
                source: e,
            };
        let parsed: Reference = reference
            .parse()
            .map_err(|e: oci_client::ParseError| oci("invalid OCI reference", e.into()))?;
        if parsed.digest().is_none()
            && parsed.tag().is_none_or(|t| t == "latest")
            && !self.config.allow_latest
        {
            return Err(PullError::Unpinned {
                reference: reference.into(),
            });
        }
        let auth = self.auth_for(&parsed);
        let (manifest, _) = self
            .client
            .pull_image_manifest(&parsed, &auth)
            .await
            .map_err(|e| oci("cannot pull the manifest of", e.into()))?;
        let layer = manifest
            .layers
            .iter()
            .find(|l| accepted.contains(&l.media_type.as_str()))
            .ok_or_else(|| PullError::NoWasmLayer {
                reference: reference.into(),
                media_types: manifest
                    .layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let total = u64::try_from(layer.size).unwrap_or(0);
        if total > max_bytes as u64 {
            return Err(PullError::TooLarge {
                reference: reference.into(),
                size: total,
                limit: max_bytes,
            });
        }
        tracing::info!(reference, bytes = total, digest = %layer.digest, "pulling {what}");
        let mut stream = self
            .client
            .pull_blob_stream(&parsed, layer)
            .await
            .map_err(|e| oci("cannot pull the layer of", e.into()))?
            .stream;
        let mut data = Vec::with_capacity((total as usize).min(INITIAL_LAYER_CAPACITY));
        let mut next_report = 25;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| oci("download failed for", e.into()))?
        {
            data.extend_from_slice(&chunk);
            if data.len() > max_bytes {
                return Err(PullError::TooLarge {
                    reference: reference.into(),
                    size: data.len() as u64,
                    limit: max_bytes,
                });
            }
            let percent = (data.len() as u64 * 100).checked_div(total).unwrap_or(100);
            while percent >= next_report && next_report <= 100 {
                tracing::info!(
                    reference,
                    received = data.len(),
                    total,
                    "pull {next_report}%"
                );
                next_report += 25;
            }
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        if digest != layer.digest {
            return Err(PullError::DigestMismatch {
                reference: reference.into(),
                expected: layer.digest.clone(),
                got: digest,
            });
        }
        Ok(data)
    }

    /// Pushes `component` to `reference` as a Wasm OCI artifact; returns the manifest URL.
    pub async fn push(&self, reference: &str, component: Vec<u8>) -> Result<String, PushError> {
        let layer = ImageLayer::new(component, WASM_LAYER_MEDIA_TYPE.into(), None);
        let config = Config::new(
            br#"{"architecture":"wasm","os":"wasip2"}"#.to_vec(),
            WASM_CONFIG_MEDIA_TYPE.into(),
            None,
        );
        self.push_artifact(reference, layer, config).await
    }

    /// Pushes provider archive `par` to `reference` as wasmCloud's provider artifact.
    pub async fn push_provider(&self, reference: &str, par: Vec<u8>) -> Result<String, PushError> {
        let layer = ImageLayer::new(par, PROVIDER_LAYER_MEDIA_TYPE.into(), None);
        let config = Config::new(b"{}".to_vec(), PROVIDER_CONFIG_MEDIA_TYPE.into(), None);
        self.push_artifact(reference, layer, config).await
    }

    async fn push_artifact(
        &self,
        reference: &str,
        layer: ImageLayer,
        config: Config,
    ) -> Result<String, PushError> {
        let parsed: Reference = reference.parse().map_err(|e| PushError::BadReference {
            reference: reference.to_string(),
            source: e,
        })?;
        let auth = self.auth_for(&parsed);
        self.client
            .push(&parsed, &[layer], config, &auth, None)
            .await
            .map(|r| r.manifest_url)
            .map_err(|e| PushError::Push {
                reference: reference.to_string(),
                source: e,
            })
    }
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid OCI reference {reference}: {source}")]
    BadReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },
    #[error("cannot push {reference}: {source}")]
    Push {
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry (or the way to it) failed; the cause is the `source()`.
    #[error("{what} {reference}: {source}")]
    Registry {
        what: &'static str,
        reference: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{reference} names no version (or :latest); pin a tag or digest, or allow it with --oci-allow-latest")]
    Unpinned { reference: String },
    #[error("{reference} has no layer of the kind asked for (media types: {media_types})")]
    NoWasmLayer {
        reference: String,
        media_types: String,
    },
    #[error("{reference}: layer digest mismatch (expected {expected}, got {got})")]
    DigestMismatch {
        reference: String,
        expected: String,
        got: String,
    },
    #[error("pulling {reference} took longer than {limit:?}; abandoned")]
    TimedOut {
        reference: String,
        limit: std::time::Duration,
    },
    #[error("component at {reference} is {size} bytes, over the {limit}-byte limit (max component size)")]
    TooLarge {
        reference: String,
        size: u64,
        limit: usize,
    },
}
