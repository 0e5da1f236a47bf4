//! The periodic heartbeat: proof of life with a size that stays bounded.
//!
//! A heartbeat is sent at start, every `heartbeat_interval`, and at once after every reconnect,
//! so watchers learn that a host is back without waiting a full interval.

use std::sync::Arc;
use std::time::Duration;

use lattice_proto::ctl::HostInventory;
use lattice_proto::event::{HostHeartbeat, HOST_HEARTBEAT};
use tokio::sync::Notify;

use crate::events::EventPublisher;

/// Publishes a heartbeat every `interval` (and after each reconnect) describing what
/// `inventory` says. Runs until the host stops.
pub(crate) async fn run(
    events: EventPublisher,
    interval: Duration,
    inventory: impl Fn() -> HostInventory,
    reconnected: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = reconnected.notified() => {
                tracing::info!("reconnected to NATS; sending a heartbeat now");
                tick.reset();
            }
        }
        let hb = HostHeartbeat::from_inventory(&inventory(), interval);
        let bytes = events.publish(HOST_HEARTBEAT, hb).await;
        tracing::debug!(bytes, "heartbeat");
    }
}
