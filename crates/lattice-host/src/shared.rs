//! The state shared by every task of one host, as parts each owned by its module (calls,
//! lattice state, components, grants, messaging connections, admission bounds, events), and
//! what the host says about itself (`host.ping`, inventory).
//!
//! Modules that act for the whole host take a [`HostShared`]; the parts themselves never do,
//! so they can be read and tested alone. Wiring happens once, in `host`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lattice_proto::ctl::{human_uptime, Host as HostInfo, HostInventory};
use lattice_proto::subject::CtlSubjects;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    pub id: String,
    pub friendly_name: String,
    pub lattice: String,
    pub started: Instant,
    pub labels: RwLock<BTreeMap<String, String>>,
    pub heartbeat_interval: Duration,
    pub js_domain: Option<String>,
    pub nats: async_nats::Client,
    pub subjects: CtlSubjects,
    pub events: EventPublisher,
    /// Named config and links, followed live.
    pub state: Arc<crate::state::LatticeState>,
    pub components: Components,
    /// What each component may reach through messaging and key-value.
    pub grants: crate::grants::Grants,
    /// Reply subjects of the messages components are handling now.
    pub replies: crate::messaging::replies::Replies,
    /// The messaging capability's connections: its own (same servers and credentials as the
    /// host's), so a flood of application messages (or a slow consumer) never stalls control,
    /// heartbeats or calls, and those of links' own (`cluster_uris`).
    pub connections: crate::messaging::connections::Connections,
    /// What remote peers may make this host hold.
    pub admission: crate::admission::Admission,
    pub serving: std::sync::Mutex<std::collections::HashMap<String, JoinHandle<()>>>,
    /// Reply subjects of the wRPC calls this host is running, for callers asking about them.
    pub in_flight: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
    /// Calls to components elsewhere: retries, watchdog, reachability, counters.
    pub calls: crate::calls::Calls,
    pub stop: watch::Sender<Option<StopReason>>,
}

impl HostShared {
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.read().map(|l| l.clone()).unwrap_or_default()
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// This host's reply to `host.ping`.
    pub fn info(&self) -> HostInfo {
        let server = self.nats.server_info();
        let server = format!("nats://{}:{}", server.host, server.port);
        HostInfo {
            id: self.id.clone(),
            friendly_name: self.friendly_name.clone(),
            labels: self.labels(),
            lattice: self.lattice.clone(),
            version: crate::VERSION.into(),
            uptime_seconds: self.uptime().as_secs(),
            uptime_human: human_uptime(self.uptime()),
            ctl_host: Some(server.clone()),
            rpc_host: Some(server),
            js_domain: self.js_domain.clone(),
            heartbeat_interval_ms: Some(self.heartbeat_interval.as_millis() as u64),
        }
    }

    /// The full inventory.
    pub fn inventory(&self) -> HostInventory {
        HostInventory {
            host_id: self.id.clone(),
            friendly_name: self.friendly_name.clone(),
            labels: self.labels(),
            version: crate::VERSION.into(),
            uptime_seconds: self.uptime().as_secs(),
            uptime_human: human_uptime(self.uptime()),
            components: self.components.describe(),
            providers: Vec::new(),
        }
    }
}
