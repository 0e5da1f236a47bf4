//! Following hosts through lattice events, and telling when one is dead.
//!
//! **Liveness rule.** A host is alive while it is heard from: any event it emits (heartbeats
//! above all) counts. A host that stops cleanly says so with `host_stopped`. A host that is
//! silent for [`MISSED_HEARTBEATS`] of its heartbeat intervals is declared dead: it was killed,
//! lost its network, or its NATS server went away. Lattice hosts publish their interval in
//! `host_started`, heartbeats and ping replies (`heartbeat_interval_ms`); for hosts that do not
//! (wasmCloud v1 hosts) the watcher assumes [`FALLBACK_INTERVAL`].
//!
//! The watcher subscribes to events *before* it pings, so no host can start unseen in between.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures::{Stream, StreamExt};
use lattice_proto::event::{CloudEvent, HOST_STOPPED};
use serde::Deserialize;
use tokio::time::Instant;

use crate::{Client, Error};

/// Heartbeats a host may miss before the watcher declares it dead.
pub const MISSED_HEARTBEATS: u32 = 3;
/// Heartbeat interval assumed for hosts that do not announce theirs (wasmCloud v1's default).
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(30);

/// A host as the watcher knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedHost {
    pub id: String,
    pub friendly_name: String,
    pub labels: BTreeMap<String, String>,
    pub heartbeat_interval: Duration,
}

/// What the watcher saw happen.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// A host answered the initial ping or was heard from for the first time.
    Joined(WatchedHost),
    /// A host announced a clean stop (`host_stopped`).
    Stopped(WatchedHost),
    /// A host stayed silent for [`MISSED_HEARTBEATS`] heartbeat intervals.
    Dead {
        host: WatchedHost,
        silent_for: Duration,
    },
}

struct Tracked {
    host: WatchedHost,
    last_seen: Instant,
}

impl Tracked {
    fn deadline(&self) -> Instant {
        self.last_seen + self.host.heartbeat_interval * MISSED_HEARTBEATS
    }
}

/// Fields of host events the watcher reads; all optional, since events differ.
#[derive(Deserialize, Default)]
struct HostFields {
    #[serde(default)]
    friendly_name: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    heartbeat_interval_ms: Option<u64>,
}

type Events = std::pin::Pin<Box<dyn Stream<Item = CloudEvent> + Send>>;

/// Follows the hosts of one lattice. Create it with [`Client::watch_hosts`].
pub struct HostWatcher {
    events: Events,
    hosts: HashMap<String, Tracked>,
    pending: VecDeque<WatchEvent>,
}

impl HostWatcher {
    pub(crate) async fn start(client: &Client) -> Result<Self, Error> {
        let events: Events = Box::pin(client.events().await?);
        let mut watcher = Self {
            events,
            hosts: HashMap::new(),
            pending: VecDeque::new(),
        };
        for host in client.ping_hosts().await? {
            let fields = HostFields {
                friendly_name: Some(host.friendly_name),
                labels: Some(host.labels),
                heartbeat_interval_ms: host.heartbeat_interval_ms,
            };
            watcher.heard_from(&host.id, fields, Instant::now());
        }
        Ok(watcher)
    }

    /// Hosts currently believed alive.
    pub fn hosts(&self) -> impl Iterator<Item = &WatchedHost> {
        self.hosts.values().map(|t| &t.host)
    }

    /// The next change. Returns `None` only when the event subscription ends.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            let deadline = self.hosts.values().map(Tracked::deadline).min();
            let overdue = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.next() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return None,
                },
                _ = overdue => self.reap(Instant::now()),
            }
        }
    }

    fn on_event(&mut self, ev: CloudEvent) {
        let now = Instant::now();
        let Some(kind) = ev.event_type() else { return };
        if kind == HOST_STOPPED {
            if let Some(t) = self.hosts.remove(&ev.source) {
                self.pending.push_back(WatchEvent::Stopped(t.host));
            }
            return;
        }
        let fields = serde_json::from_value(ev.data).unwrap_or_default();
        self.heard_from(&ev.source, fields, now);
    }

    fn heard_from(&mut self, id: &str, fields: HostFields, now: Instant) {
        let interval = fields.heartbeat_interval_ms.map(Duration::from_millis);
        match self.hosts.get_mut(id) {
            Some(t) => {
                t.last_seen = now;
                if let Some(i) = interval {
                    t.host.heartbeat_interval = i;
                }
                if let Some(l) = fields.labels {
                    t.host.labels = l;
                }
            }
            None => {
                let host = WatchedHost {
                    id: id.into(),
                    friendly_name: fields.friendly_name.unwrap_or_default(),
                    labels: fields.labels.unwrap_or_default(),
                    heartbeat_interval: interval.unwrap_or(FALLBACK_INTERVAL),
                };
                self.pending.push_back(WatchEvent::Joined(host.clone()));
                self.hosts.insert(
                    id.into(),
                    Tracked {
                        host,
                        last_seen: now,
                    },
                );
            }
        }
    }

    fn reap(&mut self, now: Instant) {
        let dead: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, t)| t.deadline() <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            if let Some(t) = self.hosts.remove(&id) {
                self.pending.push_back(WatchEvent::Dead {
                    silent_for: now - t.last_seen,
                    host: t.host,
                });
            }
        }
    }
}
