//! The lease that makes one host's reconciler the active one: key `reconciler` in KV bucket
//! `LATTICE_LEASE_{lattice}`, renewed by compare-and-set on its revision, expiring when its
//! holder stops renewing. Not here: what the holder does with it ([`super::run`]).

use async_nats::jetstream::{self, kv};

use super::ReconcilerConfig;

/// The lease that makes one reconciler active.
pub(super) struct Lease {
    kv: kv::Store,
    me: String,
    revision: Option<u64>,
}

impl Lease {
    pub(super) async fn open(
        js: &jetstream::Context,
        c: &ReconcilerConfig,
    ) -> Result<Self, String> {
        let kv = lattice_nats::kv::open_or_create(
            js,
            kv::Config {
                bucket: lattice_proto::subject::lease_bucket(&c.lattice),
                history: 1,
                max_age: c.lease_ttl,
                num_replicas: c.kv_replicas.max(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(Self {
            kv,
            me: c.host_id.clone(),
            revision: None,
        })
    }

    /// Renews the lease if held, else tries to take it. True while this host holds it.
    pub(super) async fn hold(&mut self) -> bool {
        let me = bytes::Bytes::from(self.me.clone());
        let result = match self.revision {
            Some(r) => self
                .kv
                .update("reconciler", me, r)
                .await
                .map_err(|e| e.to_string()),
            None => self
                .kv
                .create("reconciler", me)
                .await
                .map_err(|e| e.to_string()),
        };
        match (result, self.revision) {
            (Ok(r), None) => {
                tracing::info!(host_id = %self.me, "this host now runs the lattice's reconciler");
                self.revision = Some(r);
                true
            }
            (Ok(r), Some(_)) => {
                self.revision = Some(r);
                true
            }
            (Err(e), Some(_)) => {
                tracing::warn!(error = %e, "lost the reconciler lease");
                self.revision = None;
                false
            }
            (Err(_), None) => false,
        }
    }
}
