//! The lattice state a host follows: named config and links, both in JetStream KV and
//! watched live, and a generation bumped on every config change, so whoever caches
//! something derived from config (grants, HTTP routes, subscriptions) knows when to re-read.
//!
//! Not here: what the state means for components (`components`, `grants`, `http`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::links::Links;
use crate::store::ConfigStore;

pub(crate) struct LatticeState {
    pub config: ConfigStore,
    pub links: Arc<Links>,
    config_generation: AtomicU64,
}

impl LatticeState {
    pub(crate) fn new(config: ConfigStore, links: Arc<Links>) -> Self {
        Self {
            config,
            links,
            config_generation: AtomicU64::new(0),
        }
    }

    /// Changes every time any named config changes.
    pub(crate) fn config_generation(&self) -> u64 {
        self.config_generation.load(Ordering::Relaxed)
    }

    pub(crate) fn config_changed(&self) {
        self.config_generation.fetch_add(1, Ordering::Relaxed);
    }
}

/// Follows every change of the config bucket: bumps the state's config generation and hands
/// the changed config's name to `on_change`. Runs until the host stops.
pub(crate) async fn follow_config<F, Fut>(state: Arc<LatticeState>, on_change: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    crate::store::follow_bucket(
        "config",
        || state.config.kv(),
        |entry| {
            tracing::debug!(config = %entry.key, "config changed");
            state.config_changed();
            on_change(entry.key)
        },
    )
    .await
}
