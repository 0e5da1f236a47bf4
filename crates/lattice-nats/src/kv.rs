//! JetStream KV buckets every member opens the same way: created by whoever comes first.

use async_nats::jetstream::{self, kv};

/// Why a bucket could be neither opened nor created.
#[derive(Debug, thiserror::Error)]
#[error("cannot open or create KV bucket {bucket}: {source}")]
pub struct OpenError {
    pub bucket: String,
    #[source]
    pub source: jetstream::context::CreateKeyValueError,
}

/// Opens the bucket `config` names, creating it when missing. Several members may race to
/// create it; the loser opens what the winner made.
pub async fn open_or_create(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, OpenError> {
    if let Ok(store) = js.get_key_value(&config.bucket).await {
        return Ok(store);
    }
    let bucket = config.bucket.clone();
    match js.create_key_value(config).await {
        Ok(store) => {
            tracing::info!(bucket, "created KV bucket");
            Ok(store)
        }
        Err(source) => js
            .get_key_value(&bucket)
            .await
            .map_err(|_| OpenError { bucket, source }),
    }
}
