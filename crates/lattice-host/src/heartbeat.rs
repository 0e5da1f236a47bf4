//! The periodic heartbeat: proof of life with a size that stays bounded.
//!
//! A heartbeat is sent at start, every `heartbeat_interval`, and at once after every reconnect,
//! so watchers learn that a host is back without waiting a full interval.

use std::sync::Arc;

use lattice_proto::event::{HostHeartbeat, HOST_HEARTBEAT};
use tokio::sync::Notify;

use crate::host::HostShared;

pub(crate) async fn run(shared: Arc<HostShared>, reconnected: Arc<Notify>) {
    let mut tick = tokio::time::interval(shared.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = reconnected.notified() => {
                tracing::info!("reconnected to NATS; sending a heartbeat now");
                tick.reset();
            }
        }
        let hb = HostHeartbeat::from_inventory(&shared.inventory(), shared.heartbeat_interval);
        let bytes = shared.events.publish(HOST_HEARTBEAT, hb).await;
        tracing::debug!(bytes, "heartbeat");
    }
}
