//! The storage behind components' `wasi:keyvalue`: JetStream KV, so values are shared by every
//! host of the lattice and outlive them all.
//!
//! A component opens only what its link grants (see `grants`): a link from the component to
//! `keyvalue` for `wasi:keyvalue` whose target config has `bucket=B` sends every `open` to
//! bucket `B` (the wasmCloud way: where a component's data lives is the operator's choice,
//! not the code's), and `buckets=a,b` lets it open `a` or `b` by name. Without a link, `open`
//! fails with `access-denied`. Bucket `B` of lattice `L` is the JetStream KV bucket
//! [`lattice_proto::subject::keyvalue_bucket`] names (`KV_L_B`), created on first use.
//!
//! Keys must be valid JetStream KV keys (letters, digits and `-/_=.`); numbers for
//! `increment` are stored as decimal text, updated with compare-and-set so concurrent
//! increments from any number of hosts all count.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_runtime::{KeyValue, KvError};

use crate::grants::Denied;

/// Keys per `list-keys` page.
const PAGE: usize = 1000;
/// Compare-and-set attempts before an increment gives up (only under extreme contention).
const CAS_ATTEMPTS: usize = 1000;

pub(crate) struct JetStreamKv {
    inner: Arc<Inner>,
    /// What each component may reach, resolved from the links in `state`.
    grants: Arc<crate::grants::Grants>,
    state: Arc<crate::state::LatticeState>,
    /// Where operations are counted, when the host measures them.
    metrics: Option<Arc<lattice_telemetry::Metrics>>,
}

/// Counts `op` on `bucket` with its outcome, when measured; returns the outcome.
fn counted<T>(
    metrics: Option<&lattice_telemetry::Metrics>,
    op: &'static str,
    bucket: &str,
    result: Result<T, KvError>,
) -> Result<T, KvError> {
    if let Some(m) = metrics {
        let error = result.as_ref().err().map(|e| match e {
            KvError::NoSuchStore => "no_such_store",
            KvError::AccessDenied => "access_denied",
            KvError::Other(_) => "other",
        });
        m.kv_operation(op, bucket, error);
    }
    result
}

struct Inner {
    js: jetstream::Context,
    lattice: String,
    replicas: usize,
    buckets: tokio::sync::Mutex<HashMap<String, kv::Store>>,
}

fn other(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

fn check_key(key: &str) -> Result<(), KvError> {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(KvError::Other(format!(
            "invalid key {key:?}: keys may only hold letters, digits and '-', '/', '_', '=', '.'"
        )))
    }
}

impl Inner {
    async fn bucket(&self, name: &str) -> Result<kv::Store, KvError> {
        if lattice_proto::subject::validate_token("bucket", name).is_err() {
            return Err(KvError::NoSuchStore);
        }
        let mut buckets = self.buckets.lock().await;
        if let Some(b) = buckets.get(name) {
            return Ok(b.clone());
        }
        let store = lattice_nats::kv::open_or_create(
            &self.js,
            kv::Config {
                bucket: lattice_proto::subject::keyvalue_bucket(&self.lattice, name),
                history: 1,
                num_replicas: self.replicas.max(1),
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| KvError::Other(e.to_string()))?;
        buckets.insert(name.to_string(), store.clone());
        Ok(store)
    }

    async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        check_key(key)?;
        let kv = self.bucket(bucket).await?;
        for _ in 0..CAS_ATTEMPTS {
            let entry = kv.entry(key).await.map_err(other)?;
            let written = match entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    let now: u64 = std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| {
                            KvError::Other(format!("{key:?} does not hold a decimal number"))
                        })?;
                    let next = now
                        .checked_add(delta)
                        .ok_or_else(|| KvError::Other(format!("{key:?} would overflow a u64")))?;
                    kv.update(key, next.to_string().into(), e.revision)
                        .await
                        .map(|_| next)
                        .ok()
                }
                _ => kv
                    .create(key, delta.to_string().into())
                    .await
                    .map(|_| delta)
                    .ok(),
            };
            if let Some(v) = written {
                return Ok(v);
            }
            // Someone else wrote first: read again and retry.
        }
        Err(KvError::Other(format!(
            "{key:?}: too much contention ({CAS_ATTEMPTS} attempts)"
        )))
    }
}

impl JetStreamKv {
    /// Buckets of `lattice` in `js`, reached as `grants` allow under the links in `state`.
    pub fn new(
        js: jetstream::Context,
        lattice: &str,
        replicas: usize,
        grants: Arc<crate::grants::Grants>,
        state: Arc<crate::state::LatticeState>,
        metrics: Option<Arc<lattice_telemetry::Metrics>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                js,
                lattice: lattice.into(),
                replicas,
                buckets: Default::default(),
            }),
            grants,
            state,
            metrics,
        }
    }
}

impl KeyValue for JetStreamKv {
    fn open(
        &self,
        component: Arc<str>,
        name: String,
    ) -> BoxFuture<'static, Result<String, KvError>> {
        let inner = self.inner.clone();
        let (grants, state) = (self.grants.clone(), self.state.clone());
        Box::pin(async move {
            let granted = grants
                .keyvalue(&state, &component)
                .await
                .and_then(|g| g.resolve(&component, &name));
            let bucket = match granted {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(component_id = %component, bucket = %name, error = %e, "key-value access denied");
                    return Err(match e {
                        Denied::Invalid(why) => KvError::Other(why),
                        _ => KvError::AccessDenied,
                    });
                }
            };
            tracing::debug!(component_id = %component, %bucket, "opening key-value bucket");
            inner.bucket(&bucket).await.map(|_| bucket)
        })
    }

    fn get(
        &self,
        bucket: String,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, KvError>> {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        Box::pin(async move {
            let got = async {
                check_key(&key)?;
                let kv = inner.bucket(&bucket).await?;
                kv.get(key)
                    .await
                    .map(|v| v.map(|b| b.to_vec()))
                    .map_err(other)
            };
            counted(metrics.as_deref(), "get", &bucket, got.await)
        })
    }

    fn set(
        &self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), KvError>> {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        Box::pin(async move {
            let set = async {
                check_key(&key)?;
                let kv = inner.bucket(&bucket).await?;
                kv.put(key, value.into()).await.map(drop).map_err(other)
            };
            counted(metrics.as_deref(), "set", &bucket, set.await)
        })
    }

    fn delete(&self, bucket: String, key: String) -> BoxFuture<'static, Result<(), KvError>> {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        Box::pin(async move {
            let deleted = async {
                check_key(&key)?;
                let kv = inner.bucket(&bucket).await?;
                kv.delete(key).await.map_err(other)
            };
            counted(metrics.as_deref(), "delete", &bucket, deleted.await)
        })
    }

    fn list_keys(
        &self,
        bucket: String,
        cursor: Option<u64>,
    ) -> BoxFuture<'static, Result<lattice_runtime::keyvalue::KeyPage, KvError>> {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        Box::pin(async move {
            let listed = list_page(&inner, &bucket, cursor).await;
            counted(metrics.as_deref(), "list", &bucket, listed)
        })
    }

    fn increment(
        &self,
        bucket: String,
        key: String,
        delta: u64,
    ) -> BoxFuture<'static, Result<u64, KvError>> {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        Box::pin(async move {
            let added = inner.increment(&bucket, &key, delta).await;
            counted(metrics.as_deref(), "increment", &bucket, added)
        })
    }
}

/// One page of `bucket`'s keys, sorted, from `cursor`.
async fn list_page(
    inner: &Inner,
    bucket: &str,
    cursor: Option<u64>,
) -> Result<lattice_runtime::keyvalue::KeyPage, KvError> {
    let kv = inner.bucket(bucket).await?;
    let mut keys: Vec<String> = Vec::new();
    let mut stream = kv.keys().await.map_err(other)?;
    while let Some(k) = stream.next().await {
        keys.push(k.map_err(other)?);
    }
    keys.sort();
    let from = cursor.unwrap_or(0) as usize;
    let page: Vec<String> = keys.iter().skip(from).take(PAGE).cloned().collect();
    let next = (from + page.len() < keys.len()).then_some((from + page.len()) as u64);
    Ok((page, next))
}
