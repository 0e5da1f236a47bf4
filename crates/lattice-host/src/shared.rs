//! The handles of one host's subsystems, each owning its state in its own module: identity,
//! events, lattice state (config and links), components, grants, the messaging capability
//! (`messaging::parts::Broker`), serving (`serve::Server`) and calls; and what the host says
//! about itself (`host.ping`, inventory).
//!
//! Only the control server takes a [`HostShared`]: its dispatch, ping and inventory, and
//! scale/update/auction (`ctl/component.rs`), which touch components, serving, state and
//! events at once. Everything else is handed just the handles it uses, once, in `host`: the
//! router (links, components, calls), serving, messaging, the HTTP ingress (`http::Ingress`),
//! key-value (grants, state), and the other control handlers (config, links, labels,
//! registries, `host.alive`, `host.stop`).

use std::sync::Arc;
use std::time::Duration;

use lattice_proto::ctl::{human_uptime, Host as HostInfo, HostInventory};
use lattice_proto::subject::CtlSubjects;
use tokio::sync::watch;

use crate::components::Components;
use crate::events::EventPublisher;

/// Why a host is stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A `host.stop` control request, allowing `timeout` for graceful work.
    Requested { timeout: Duration },
    /// The process was told to stop (SIGINT/SIGTERM).
    Signal,
}

/// State shared by every task of one host.
pub(crate) struct HostShared {
    /// Who this host is.
    pub me: crate::identity::Identity,
    pub nats: async_nats::Client,
    pub subjects: CtlSubjects,
    pub events: EventPublisher,
    /// Named config and links, followed live.
    pub state: Arc<crate::state::LatticeState>,
    pub components: Arc<Components>,
    /// What each component may reach through messaging and key-value.
    pub grants: Arc<crate::grants::Grants>,
    /// The messaging capability (its connections, replies, and the parts it reads).
    pub messaging: Arc<crate::messaging::parts::Broker>,
    /// Serving components' exports over wRPC, and what is served now.
    pub server: Arc<crate::serve::Server>,
    /// Calls to components elsewhere: retries, watchdog, reachability, counters.
    pub calls: Arc<crate::calls::Calls>,
    /// Capability providers running on this host.
    pub providers: Arc<crate::providers::Providers>,
    pub stop: watch::Sender<Option<StopReason>>,
}

impl HostShared {
    /// This host's reply to `host.ping`.
    pub fn info(&self) -> HostInfo {
        let server = self.nats.server_info();
        let server = format!("nats://{}:{}", server.host, server.port);
        HostInfo {
            id: self.me.id.clone(),
            friendly_name: self.me.friendly_name.clone(),
            labels: self.me.labels(),
            lattice: self.me.lattice.clone(),
            version: crate::VERSION.into(),
            uptime_seconds: self.me.uptime().as_secs(),
            uptime_human: human_uptime(self.me.uptime()),
            ctl_host: Some(server.clone()),
            rpc_host: Some(server),
            js_domain: self.me.js_domain.clone(),
            heartbeat_interval_ms: Some(self.me.heartbeat_interval.as_millis() as u64),
        }
    }

    /// The full inventory.
    pub fn inventory(&self) -> HostInventory {
        HostInventory {
            host_id: self.me.id.clone(),
            friendly_name: self.me.friendly_name.clone(),
            labels: self.me.labels(),
            version: crate::VERSION.into(),
            uptime_seconds: self.me.uptime().as_secs(),
            uptime_human: human_uptime(self.me.uptime()),
            components: self.components.describe(),
            providers: self.providers.describe(),
        }
    }
}
