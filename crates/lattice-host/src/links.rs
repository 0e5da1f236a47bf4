//! Links in JetStream KV (`LATTICEDATA_{lattice}`), and every host's live copy of them.
//!
//! Links are stored per source component under `COMPONENT_{source_id}` as `{"links": [...]}`
//! (wasmCloud v1's layout). Writes use the entry's revision (compare-and-set), so two
//! concurrent `link.put`s for one source cannot lose each other. Every host watches the
//! bucket and keeps a table the router reads on each call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use lattice_proto::ctl::Link;
use lattice_proto::subject::LINKS_KEY_PREFIX as KEY_PREFIX;
use serde::{Deserialize, Serialize};

use crate::store::{LazyBucket, StoreError};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ComponentSpec {
    #[serde(default)]
    links: Vec<Link>,
}

/// Where a link sends a call.
pub(crate) struct Route {
    pub target: String,
    /// Calls may be retried after their host died mid-call.
    pub idempotent: bool,
}

pub(crate) struct Links {
    bucket: LazyBucket,
    table: RwLock<HashMap<String, Vec<Link>>>,
    /// Bumped on every change of the table, for those who follow links (providers).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Links {
    pub fn new(js: jetstream::Context, bucket: String, replicas: usize) -> Self {
        Self {
            bucket: LazyBucket::new(js, bucket, replicas),
            table: RwLock::new(HashMap::new()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    async fn kv(&self) -> Result<&kv::Store, StoreError> {
        self.bucket.kv().await
    }

    /// Every link from `source`, from the live table.
    pub fn of_source(&self, source: &str) -> Vec<Link> {
        self.table
            .read()
            .ok()
            .and_then(|t| t.get(source).cloned())
            .unwrap_or_default()
    }

    /// Tells of every change of the live table.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every link from or to `id`, from the live table.
    pub fn involving(&self, id: &str) -> Vec<Link> {
        let Ok(table) = self.table.read() else {
            return Vec::new();
        };
        table
            .values()
            .flatten()
            .filter(|l| l.source_id == id || l.target == id)
            .cloned()
            .collect()
    }

    /// The links from `source` that carry `ns:pkg/iface`, from the live table: how a built-in
    /// source (`http`, `messaging`) finds the components it serves.
    pub fn of_source_for(&self, source: &str, ns: &str, pkg: &str, iface: &str) -> Vec<Link> {
        let mut links = self.of_source(source);
        links.retain(|l| {
            l.wit_namespace == ns && l.wit_package == pkg && l.interfaces.iter().any(|i| i == iface)
        });
        links
    }

    /// The target of `source`'s calls on `ns:pkg/iface` through link `name`, from the live table.
    pub fn target(
        &self,
        source: &str,
        ns: &str,
        pkg: &str,
        iface: &str,
        name: &str,
    ) -> Option<Route> {
        let table = self.table.read().ok()?;
        table
            .get(source)?
            .iter()
            .find(|l| l.serves(source, ns, pkg, iface, name))
            .map(|l| Route {
                target: l.target.clone(),
                idempotent: l.idempotent,
            })
    }

    /// Every link of the lattice, read from KV (not the live table), sorted.
    pub async fn all(&self) -> Result<Vec<Link>, StoreError> {
        let kv = self.kv().await?;
        let mut keys = kv.keys().await.map_err(|e| StoreError::Op(e.to_string()))?;
        let mut links = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| StoreError::Op(e.to_string()))?;
            if !key.starts_with(KEY_PREFIX) {
                continue;
            }
            if let Some(raw) = kv
                .get(&key)
                .await
                .map_err(|e| StoreError::Op(e.to_string()))?
            {
                if let Ok(spec) = serde_json::from_slice::<ComponentSpec>(&raw) {
                    links.extend(spec.links);
                }
            }
        }
        links.sort_by(|a, b| {
            (&a.source_id, &a.wit_namespace, &a.wit_package, &a.name).cmp(&(
                &b.source_id,
                &b.wit_namespace,
                &b.wit_package,
                &b.name,
            ))
        });
        Ok(links)
    }

    /// Applies `change` to the links of `source` with compare-and-set, retrying on conflicts.
    /// `change` returns `Err` to refuse (nothing is written).
    pub async fn modify(
        &self,
        source: &str,
        change: impl Fn(&mut Vec<Link>) -> Result<(), String>,
    ) -> Result<(), String> {
        let kv = self.kv().await.map_err(|e| e.to_string())?;
        let key = format!("{KEY_PREFIX}{source}");
        for _ in 0..10 {
            let entry = kv.entry(&key).await.map_err(|e| e.to_string())?;
            let (mut spec, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    serde_json::from_slice::<ComponentSpec>(&e.value).unwrap_or_default(),
                    Some(e.revision),
                ),
                Some(e) => (ComponentSpec::default(), Some(e.revision)),
                None => (ComponentSpec::default(), None),
            };
            change(&mut spec.links)?;
            let value = Bytes::from(serde_json::to_vec(&spec).map_err(|e| e.to_string())?);
            let written = match revision {
                Some(r) => kv
                    .update(&key, value, r)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => kv
                    .create(&key, value)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(source, error = %e, "link write conflicted; retrying"),
            }
        }
        Err(format!(
            "links of {source} changed concurrently too often; try again"
        ))
    }

    fn apply(&self, key: &str, value: Option<&[u8]>) {
        let Some(source) = key.strip_prefix(KEY_PREFIX) else {
            return;
        };
        let links = value
            .and_then(|v| serde_json::from_slice::<ComponentSpec>(v).ok())
            .map(|s| s.links)
            .unwrap_or_default();
        if let Ok(mut table) = self.table.write() {
            if links.is_empty() {
                table.remove(source);
            } else {
                table.insert(source.to_string(), links);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Keeps the host's link table in step with the bucket. Runs until the host stops.
pub(crate) async fn follow(links: Arc<Links>) {
    crate::store::follow_bucket(
        "link",
        || links.kv(),
        |entry| {
            let value = (entry.operation == kv::Operation::Put).then_some(&entry.value[..]);
            links.apply(&entry.key, value);
            std::future::ready(())
        },
    )
    .await
}
