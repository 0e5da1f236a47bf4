//! `wasi:keyvalue` (draft 0.2.0) for guests: their calls, turned into calls on the host's
//! [`KeyValue`]; without one, every operation fails with a clear error.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::wasi::keyvalue::{atomics, batch, store};
use crate::keyvalue::{KeyValue, KvBucket, KvError};
use crate::store::Ctx;

impl From<KvError> for store::Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::NoSuchStore => store::Error::NoSuchStore,
            KvError::AccessDenied => store::Error::AccessDenied,
            KvError::Other(m) => store::Error::Other(m),
        }
    }
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

impl Ctx {
    fn kv(&self) -> Result<Arc<dyn KeyValue>, store::Error> {
        self.keyvalue
            .clone()
            .ok_or_else(|| store::Error::Other("this host has no key-value store".into()))
    }

    fn bucket_name(&self, b: &Resource<KvBucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(b)?.name.clone())
    }
}

impl store::Host for Ctx {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<KvBucket>> {
        let kv = match self.kv() {
            Ok(kv) => kv,
            Err(e) => return Ok(Err(e)),
        };
        let name = match kv.open(self.component_id.clone(), identifier).await {
            Ok(name) => name,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(Ok(self.table.push(KvBucket { name })?))
    }
}

impl store::HostBucket for Ctx {
    async fn get(&mut self, b: Resource<KvBucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv.get(name, key).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn set(&mut self, b: Resource<KvBucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv.set(name, key, value).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn delete(&mut self, b: Resource<KvBucket>, key: String) -> Outcome<()> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv.delete(name, key).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn exists(&mut self, b: Resource<KvBucket>, key: String) -> Outcome<bool> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv
                .get(name, key)
                .await
                .map(|v| v.is_some())
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn list_keys(
        &mut self,
        b: Resource<KvBucket>,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv
                .list_keys(name, cursor)
                .await
                .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn drop(&mut self, b: Resource<KvBucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for Ctx {
    async fn increment(&mut self, b: Resource<KvBucket>, key: String, delta: u64) -> Outcome<u64> {
        let name = self.bucket_name(&b)?;
        Ok(match self.kv() {
            Ok(kv) => kv.increment(name, key, delta).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        b: Resource<KvBucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let name = self.bucket_name(&b)?;
        let kv = match self.kv() {
            Ok(kv) => kv,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match kv.get(name.clone(), key.clone()).await {
                Ok(v) => out.push(v.map(|v| (key, v))),
                Err(e) => return Ok(Err(e.into())),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        b: Resource<KvBucket>,
        kvs: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let name = self.bucket_name(&b)?;
        let kv = match self.kv() {
            Ok(kv) => kv,
            Err(e) => return Ok(Err(e)),
        };
        for (key, value) in kvs {
            if let Err(e) = kv.set(name.clone(), key, value).await {
                return Ok(Err(e.into()));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(&mut self, b: Resource<KvBucket>, keys: Vec<String>) -> Outcome<()> {
        let name = self.bucket_name(&b)?;
        let kv = match self.kv() {
            Ok(kv) => kv,
            Err(e) => return Ok(Err(e)),
        };
        for key in keys {
            if let Err(e) = kv.delete(name.clone(), key).await {
                return Ok(Err(e.into()));
            }
        }
        Ok(Ok(()))
    }
}
