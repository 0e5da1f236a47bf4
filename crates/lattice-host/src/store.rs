//! Named config in JetStream KV (`CONFIGDATA_{lattice}`): the key is the config name, the value
//! a JSON map of strings, as in wasmCloud v1.
//!
//! The bucket is opened (or created) on first use rather than at start, so a host on a server
//! without JetStream (e.g. behind a leaf node that is still connecting) still joins the lattice;
//! config operations then fail with a clear error until JetStream is reachable.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use lattice_proto::ctl::ConfigMap;
use tokio::sync::OnceCell;

/// A failed config-store operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("config store (JetStream KV bucket {bucket}) unavailable: {detail}")]
    Unavailable { bucket: String, detail: String },
    #[error("config store operation failed: {0}")]
    Op(String),
    #[error("stored config {name:?} is not a JSON string map: {detail}")]
    Corrupt { name: String, detail: String },
}

/// A KV bucket opened (or created) on first use, then kept.
pub(crate) struct LazyBucket {
    js: jetstream::Context,
    bucket: String,
    replicas: usize,
    kv: OnceCell<kv::Store>,
}

impl LazyBucket {
    pub fn new(js: jetstream::Context, bucket: String, replicas: usize) -> Self {
        Self {
            js,
            bucket,
            replicas,
            kv: OnceCell::new(),
        }
    }

    pub async fn kv(&self) -> Result<&kv::Store, StoreError> {
        self.kv
            .get_or_try_init(|| open_or_create(&self.js, &self.bucket, self.replicas))
            .await
    }
}

pub(crate) struct ConfigStore {
    bucket: LazyBucket,
}

impl ConfigStore {
    pub fn new(js: jetstream::Context, bucket: String, replicas: usize) -> Self {
        Self {
            bucket: LazyBucket::new(js, bucket, replicas),
        }
    }

    pub async fn kv(&self) -> Result<&kv::Store, StoreError> {
        self.bucket.kv().await
    }

    pub async fn put(&self, name: &str, map: &ConfigMap) -> Result<(), StoreError> {
        let value = serde_json::to_vec(map).map_err(|e| StoreError::Op(e.to_string()))?;
        self.kv()
            .await?
            .put(name, Bytes::from(value))
            .await
            .map_err(|e| StoreError::Op(e.to_string()))?;
        Ok(())
    }

    pub async fn get(&self, name: &str) -> Result<Option<ConfigMap>, StoreError> {
        let Some(raw) = self
            .kv()
            .await?
            .get(name)
            .await
            .map_err(|e| StoreError::Op(e.to_string()))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                name: name.into(),
                detail: e.to_string(),
            })
    }

    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.kv()
            .await?
            .delete(name)
            .await
            .map_err(|e| StoreError::Op(e.to_string()))
    }
}

/// Opens `bucket`, creating it when missing. Several hosts may race to create it; the loser
/// simply opens what the winner made.
pub(crate) async fn open_or_create(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, StoreError> {
    lattice_nats::kv::open_or_create(
        js,
        kv::Config {
            bucket: bucket.to_string(),
            history: 1,
            num_replicas: replicas.max(1),
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| StoreError::Unavailable {
        bucket: bucket.to_string(),
        detail: e.to_string(),
    })
}

/// Follows every change of a KV bucket forever: opens it with `open`, watches all keys and
/// hands each entry to `on_change`; retries with a capped backoff while JetStream is not
/// reachable or the watch breaks (a new watch replays the current values first).
pub(crate) async fn follow_bucket<'s, Open, OpenFut, Change, ChangeFut>(
    what: &str,
    open: Open,
    mut on_change: Change,
) where
    Open: Fn() -> OpenFut,
    OpenFut: std::future::Future<Output = Result<&'s kv::Store, StoreError>>,
    Change: FnMut(kv::Entry) -> ChangeFut,
    ChangeFut: std::future::Future<Output = ()>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let watch = match open().await {
            // With history: the watch first replays the last value of every key (deletes
            // included), so a host that starts, or rewatches, after a change still sees it.
            // (`watch_all` delivers only changes made after it started.)
            Ok(kv) => kv.watch_with_history(">").await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match watch {
            Ok(mut changes) => {
                tracing::debug!(bucket = what, "watching");
                backoff = Duration::from_millis(100);
                while let Some(change) = changes.next().await {
                    match change {
                        Ok(entry) => {
                            tracing::trace!(
                                bucket = what,
                                key = entry.key,
                                revision = entry.revision,
                                "changed"
                            );
                            on_change(entry).await
                        }
                        Err(e) => {
                            tracing::warn!(bucket = what, error = %e, "watch failed");
                            break;
                        }
                    }
                }
                tracing::debug!(bucket = what, "watch ended");
            }
            Err(e) => tracing::debug!(bucket = what, error = %e, "bucket not reachable yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
