//! What the host supplies to guests' built-in interfaces (storage behind `wasi:keyvalue`,
//! NATS behind `wasmcloud:messaging`), set once after start-up, and the host's budget of
//! spare instances.

use std::sync::Arc;

/// What the host supplies to guests' built-in interfaces, set once after start-up.
pub(crate) struct Services {
    pub keyvalue: std::sync::OnceLock<Arc<dyn crate::KeyValue>>,
    pub messaging: std::sync::OnceLock<Arc<dyn crate::Messaging>>,
    /// One permit per spare instance the host may keep (see `ComponentPool`).
    spares: Arc<tokio::sync::Semaphore>,
}

/// Most spare instances a host keeps.
const MAX_SPARES: usize = 16;

impl Services {
    /// Each spare holds an instance slot: at most an eighth of `pool_instances` (0: slots
    /// allocated on demand) are spares.
    pub(crate) fn new(pool_instances: u32) -> Self {
        let max_spares = match pool_instances {
            0 => MAX_SPARES,
            n => MAX_SPARES.min(n as usize / 8),
        };
        Self {
            keyvalue: Default::default(),
            messaging: Default::default(),
            spares: Arc::new(tokio::sync::Semaphore::new(max_spares)),
        }
    }

    /// Room for one more spare instance, if the host has it; given back on drop.
    pub fn spare_budget(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.spares.clone().try_acquire_owned().ok()
    }
}
