//! What the active reconciler knows of the hosts, kept from lattice events rather than by
//! asking every host on every pass: a heartbeat replaces its host's components and providers
//! (unless it was cut short), any other event from a host marks it to be read again
//! (`host.get`, that host only), and `host_stopped` removes it. So at rest the reconciler
//! reads no inventory at all, and a change costs one request to the host that changed.
//!
//! Liveness comes from a sweep: a `host.ping` gather every [`SWEEP`] (small replies, one per
//! host), which also finds hosts whose `host_started` was missed. A host is dropped when
//! [`MISSES`] sweeps in a row miss it (one late reply under load is not a death): a killed
//! host's share is re-placed within about two seconds, whatever its heartbeat interval.
//!
//! Not here: what the reconciler does with the view ([`super::apply`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lattice_proto::ctl::HostInventory;
use lattice_proto::event::{CloudEvent, HostHeartbeat, HOST_HEARTBEAT, HOST_STOPPED};
use tokio::time::Instant;

/// How often the hosts are pinged for liveness.
pub(super) const SWEEP: Duration = Duration::from_secs(1);
/// Sweeps in a row a host may miss before it counts as gone.
pub(super) const MISSES: u32 = 2;

struct Known {
    inventory: HostInventory,
    /// Consecutive sweeps that did not hear from it.
    missed: u32,
}

/// The hosts as last seen, and which must be read again.
#[derive(Default)]
pub(super) struct View {
    hosts: BTreeMap<String, Known>,
    stale: BTreeSet<String>,
    /// Something changed since the last [`View::take_changed`].
    changed: bool,
    last_sweep: Option<Instant>,
    /// Inventory requests made, for logs and tests of the view's cost.
    pub(super) reads: u64,
}

impl View {
    /// Takes in one lattice event.
    pub(super) fn on_event(&mut self, ev: &CloudEvent) {
        let Some(kind) = ev.event_type() else { return };
        let host = ev.source.as_str();
        if kind == HOST_STOPPED {
            if self.hosts.remove(host).is_some() {
                self.changed = true;
            }
            self.stale.remove(host);
            return;
        }
        if kind == HOST_HEARTBEAT {
            let Ok(hb) = serde_json::from_value::<HostHeartbeat>(ev.data.clone()) else {
                self.stale.insert(host.to_string());
                return;
            };
            if hb.components_truncated || self.stale.contains(host) {
                // The list is cut, or an event said more changed than this heartbeat may show.
                self.stale.insert(host.to_string());
            }
            match self.hosts.get_mut(host) {
                Some(k) => {
                    k.missed = 0;
                    if !self.stale.contains(host) {
                        let inv = &mut k.inventory;
                        if inv.components != hb.components
                            || inv.providers != hb.providers
                            || inv.labels != hb.labels
                        {
                            inv.components = hb.components;
                            inv.providers = hb.providers;
                            inv.labels = hb.labels;
                            self.changed = true;
                        }
                    }
                }
                None => {
                    self.stale.insert(host.to_string());
                }
            }
            return;
        }
        // Anything else a host says (scaled, failed, labels, providers, links) may change
        // its inventory: read it again.
        if let Some(k) = self.hosts.get_mut(host) {
            k.missed = 0;
        }
        self.stale.insert(host.to_string());
    }

    /// Pings every host when a sweep is due (and at once the first time), reads the
    /// inventories that are stale, and drops the hosts that are gone.
    pub(super) async fn refresh(&mut self, ctl: &lattice_ctl::Client) -> Result<(), String> {
        let now = Instant::now();
        if self.last_sweep.is_none_or(|t| now >= t + SWEEP) {
            self.last_sweep = Some(now);
            let answered = ctl.ping_hosts().await.map_err(|e| e.to_string())?;
            let answered: BTreeSet<String> = answered.into_iter().map(|h| h.id).collect();
            for (id, k) in &mut self.hosts {
                if answered.contains(id) {
                    k.missed = 0;
                } else {
                    k.missed += 1;
                }
            }
            for id in answered {
                if !self.hosts.contains_key(&id) {
                    self.stale.insert(id);
                }
            }
        }
        let stale: Vec<String> = std::mem::take(&mut self.stale).into_iter().collect();
        for id in stale {
            self.reads += 1;
            match ctl.host_inventory(&id).await {
                Ok(inventory) => {
                    let same = self
                        .hosts
                        .get(&id)
                        .is_some_and(|k| k.inventory == inventory);
                    self.changed |= !same;
                    self.hosts.insert(
                        id,
                        Known {
                            inventory,
                            missed: 0,
                        },
                    );
                }
                // Gone, or slow: a known host is read again next time, until the sweeps
                // drop it; an unknown one only when a sweep hears from it again.
                Err(e) => {
                    tracing::debug!(host_id = %id, error = %e, "inventory unavailable");
                    if self.hosts.contains_key(&id) {
                        self.stale.insert(id);
                    }
                }
            }
        }
        let before = self.hosts.len();
        self.hosts.retain(|id, k| {
            let alive = k.missed < MISSES;
            if !alive {
                tracing::info!(host_id = %id, "reconciler: host gone");
            }
            alive
        });
        self.changed |= self.hosts.len() != before;
        Ok(())
    }

    /// Whether anything changed since the last call.
    pub(super) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The hosts' inventories, by host id.
    pub(super) fn inventories(&self) -> Vec<HostInventory> {
        self.hosts.values().map(|k| k.inventory.clone()).collect()
    }
}
