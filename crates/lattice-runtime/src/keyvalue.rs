//! `wasi:keyvalue` (draft 0.2.0) for guests. The runtime has no storage of its own: the host
//! supplies a [`KeyValue`] (JetStream KV on Lattice hosts), and these bindings turn guest calls
//! into calls on it. Without one, every operation fails with a clear error.

use std::sync::Arc;

use futures::future::BoxFuture;

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

/// One page of keys, and the cursor of the next page (none: the last page).
pub type KeyPage = (Vec<String>, Option<u64>);

/// Storage behind `wasi:keyvalue`, supplied by the host.
pub trait KeyValue: Send + Sync + 'static {
    /// Makes the bucket component `component` asked for by `name` usable (creating it when
    /// missing), and returns the bucket's name as later calls give it (the host may map
    /// `name` to another bucket, e.g. one chosen by a link).
    fn open(
        &self,
        component: Arc<str>,
        name: String,
    ) -> BoxFuture<'static, Result<String, KvError>>;
    fn get(
        &self,
        bucket: String,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, KvError>>;
    fn set(
        &self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), KvError>>;
    fn delete(&self, bucket: String, key: String) -> BoxFuture<'static, Result<(), KvError>>;
    /// One page of keys from `cursor` (an offset), and the cursor of the next page.
    fn list_keys(
        &self,
        bucket: String,
        cursor: Option<u64>,
    ) -> BoxFuture<'static, Result<KeyPage, KvError>>;
    /// Adds `delta` to the decimal number at `key` without losing concurrent updates.
    fn increment(
        &self,
        bucket: String,
        key: String,
        delta: u64,
    ) -> BoxFuture<'static, Result<u64, KvError>>;
}

/// An open bucket, as the guest holds it.
pub struct KvBucket {
    pub(crate) name: String,
}
