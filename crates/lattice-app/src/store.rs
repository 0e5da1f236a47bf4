//! The versioned application store, in JetStream KV bucket `LATTICE_APPS_{lattice}`:
//! `manifest.{name}` holds every version put and which one is deployed; `status.{name}` the
//! reconciler's last word on it. Writes are compare-and-set on the entry's revision, so two
//! clients putting versions at once cannot lose one.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
pub use lattice_proto::subject::apps_bucket as bucket;
use lattice_proto::subject::{
    APP_MANIFEST_KEY_PREFIX as MANIFEST, APP_STATUS_KEY_PREFIX as STATUS,
};
use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// JetStream failed underneath; the cause is the `source()`.
    #[error("JetStream KV: {0}")]
    Kv(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no application named {0:?}")]
    NoSuchApp(String),
    #[error("application {app:?} has no version {version:?} (known: {known})")]
    NoSuchVersion {
        app: String,
        version: String,
        known: String,
    },
    #[error("version {version:?} of {app:?} exists with other content: give the new one another version")]
    VersionExists { app: String, version: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[source] serde_json::Error),
}

fn kv_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Kv(Box::new(e))
}

/// One stored version of an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub version: String,
    pub manifest: Manifest,
    /// Seconds since the Unix epoch.
    pub stored_at: u64,
}

/// Everything stored about one application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub versions: Vec<StoredVersion>,
    /// The version that should be running, if any.
    pub deployed: Option<String>,
}

impl AppRecord {
    pub fn deployed_manifest(&self) -> Option<&Manifest> {
        let v = self.deployed.as_deref()?;
        self.versions
            .iter()
            .find(|s| s.version == v)
            .map(|s| &s.manifest)
    }
}

/// The reconciler's account of an application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// `deployed`, `reconciling`, `failed` or `undeployed`.
    pub status: String,
    pub version: Option<String>,
    pub scalers: Vec<ScalerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalerStatus {
    pub component: String,
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// The application store of one lattice.
#[derive(Clone)]
pub struct AppStore {
    kv: kv::Store,
}

impl AppStore {
    /// Opens (creating when missing) the lattice's bucket.
    pub async fn open(
        js: &jetstream::Context,
        lattice: &str,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let kv = lattice_nats::kv::open_or_create(
            js,
            kv::Config {
                bucket: bucket(lattice),
                history: 1,
                num_replicas: replicas.max(1),
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await
        .map_err(kv_err)?;
        Ok(Self { kv })
    }

    async fn read(&self, name: &str) -> Result<(AppRecord, Option<u64>), StoreError> {
        match self
            .kv
            .entry(format!("{MANIFEST}{name}"))
            .await
            .map_err(kv_err)?
        {
            Some(e) if e.operation == kv::Operation::Put => {
                let rec = serde_json::from_slice(&e.value).map_err(StoreError::Corrupt)?;
                Ok((rec, Some(e.revision)))
            }
            Some(e) => Ok((AppRecord::default(), Some(e.revision))),
            None => Ok((AppRecord::default(), None)),
        }
    }

    async fn write(
        &self,
        name: &str,
        rec: &AppRecord,
        revision: Option<u64>,
    ) -> Result<(), StoreError> {
        let bytes = Bytes::from(serde_json::to_vec(rec).map_err(StoreError::Corrupt)?);
        let key = format!("{MANIFEST}{name}");
        match revision {
            Some(r) => self
                .kv
                .update(key, bytes, r)
                .await
                .map(drop)
                .map_err(kv_err),
            None => self.kv.create(key, bytes).await.map(drop).map_err(kv_err),
        }
    }

    /// Stores `manifest` as a new version (its `version` annotation, else `v{n}`). Putting the
    /// same content under an existing version is a no-op; other content is refused.
    pub async fn put(&self, manifest: Manifest) -> Result<String, StoreError> {
        let name = manifest.metadata.name.clone();
        let (mut rec, revision) = self.read(&name).await?;
        let version = manifest
            .version()
            .map(str::to_string)
            .unwrap_or_else(|| format!("v{}", rec.versions.len() + 1));
        if let Some(existing) = rec.versions.iter().find(|v| v.version == version) {
            if existing.manifest == manifest {
                return Ok(version);
            }
            return Err(StoreError::VersionExists { app: name, version });
        }
        rec.versions.push(StoredVersion {
            version: version.clone(),
            manifest,
            stored_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
        self.write(&name, &rec, revision).await?;
        Ok(version)
    }

    /// Marks `version` (default: the newest) of `name` deployed; returns it.
    pub async fn deploy(&self, name: &str, version: Option<&str>) -> Result<String, StoreError> {
        let (mut rec, revision) = self.read(name).await?;
        let Some(newest) = rec.versions.last() else {
            return Err(StoreError::NoSuchApp(name.into()));
        };
        let version = version.unwrap_or(&newest.version).to_string();
        if !rec.versions.iter().any(|v| v.version == version) {
            let known = rec
                .versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(StoreError::NoSuchVersion {
                app: name.into(),
                version,
                known,
            });
        }
        rec.deployed = Some(version.clone());
        self.write(name, &rec, revision).await?;
        Ok(version)
    }

    /// Marks `name` undeployed: the reconciler stops its components and removes its links.
    pub async fn undeploy(&self, name: &str) -> Result<(), StoreError> {
        let (mut rec, revision) = self.read(name).await?;
        if rec.versions.is_empty() {
            return Err(StoreError::NoSuchApp(name.into()));
        }
        rec.deployed = None;
        self.write(name, &rec, revision).await
    }

    pub async fn get(&self, name: &str) -> Result<Option<AppRecord>, StoreError> {
        let (rec, _) = self.read(name).await?;
        Ok((!rec.versions.is_empty()).then_some(rec))
    }

    /// Every application, by name.
    pub async fn list(&self) -> Result<Vec<(String, AppRecord)>, StoreError> {
        let mut keys = self.kv.keys().await.map_err(kv_err)?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(kv_err)?;
            if let Some(name) = k.strip_prefix(MANIFEST) {
                names.push(name.to_string());
            }
        }
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(rec) = self.get(&n).await? {
                out.push((n, rec));
            }
        }
        Ok(out)
    }

    /// A stream that yields whenever a manifest is put, deployed, undeployed or deleted
    /// (status writes do not count): what tells the reconciler to look again.
    pub async fn changes(&self) -> Result<futures::stream::BoxStream<'static, ()>, StoreError> {
        let watch = self
            .kv
            .watch(format!("{MANIFEST}>"))
            .await
            .map_err(kv_err)?;
        Ok(watch.map(drop).boxed())
    }

    pub async fn status(&self, name: &str) -> Result<Option<AppStatus>, StoreError> {
        match self
            .kv
            .get(format!("{STATUS}{name}"))
            .await
            .map_err(kv_err)?
        {
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(StoreError::Corrupt),
            None => Ok(None),
        }
    }

    pub async fn set_status(&self, name: &str, status: &AppStatus) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(status).map_err(StoreError::Corrupt)?;
        self.kv
            .put(format!("{STATUS}{name}"), bytes.into())
            .await
            .map(drop)
            .map_err(kv_err)
    }
}
