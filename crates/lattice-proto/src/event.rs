//! Lattice events: CloudEvents 1.0 JSON on `wasmbus.evt.{lattice}.{type}`.
//!
//! The envelope and the payload field names follow wasmCloud v1, so event consumers written for
//! it (wadm, `wash get hosts --watch`-style tools) understand our hosts.

use crate::ctl::{ComponentDescription, HostInventory, ProviderDescription};
use crate::subject::EVENT_TYPE_PREFIX;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub const HOST_STARTED: &str = "host_started";
pub const HOST_STOPPED: &str = "host_stopped";
pub const HOST_HEARTBEAT: &str = "host_heartbeat";
pub const LABELS_CHANGED: &str = "labels_changed";
pub const CONFIG_SET: &str = "config_set";
pub const CONFIG_DELETED: &str = "config_deleted";
pub const COMPONENT_SCALED: &str = "component_scaled";
pub const COMPONENT_SCALE_FAILED: &str = "component_scale_failed";
pub const LINKDEF_SET: &str = "linkdef_set";
pub const LINKDEF_SET_FAILED: &str = "linkdef_set_failed";
pub const LINKDEF_DELETED: &str = "linkdef_deleted";

/// Bytes of serialized component descriptions a heartbeat may carry. Past this the list is cut
/// and `components_truncated` set: wasmCloud v1 heartbeats carried the full inventory and
/// overflowed NATS's 1 MiB `max_payload` on busy hosts. The full list is one `host.get` away.
pub const HEARTBEAT_COMPONENT_BUDGET: usize = 4 * 1024;

/// A CloudEvents 1.0 event in structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    /// The emitting host's public key.
    pub source: String,
    /// `com.wasmcloud.lattice.{event_type}`.
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// A new event of `event_type` (e.g. [`HOST_STARTED`]) from `source` with `data`.
    pub fn new(source: &str, event_type: &str, data: serde_json::Value) -> Self {
        Self {
            specversion: "1.0".into(),
            id: uuid::Uuid::new_v4().to_string(),
            source: source.into(),
            ty: format!("{EVENT_TYPE_PREFIX}.{event_type}"),
            time: Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
            datacontenttype: Some("application/json".into()),
            data,
        }
    }

    /// The short event type (`host_heartbeat`), if this is a lattice event.
    pub fn event_type(&self) -> Option<&str> {
        self.ty
            .strip_prefix(EVENT_TYPE_PREFIX)
            .and_then(|t| t.strip_prefix('.'))
    }
}

/// Payload of `host_started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStarted {
    pub friendly_name: String,
    pub labels: BTreeMap<String, String>,
    pub uptime_seconds: u64,
    pub version: String,
    /// Lattice extension: the host's heartbeat interval, so watchers know when it is overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
}

/// Payload of `host_stopped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStopped {
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Payload of `labels_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelsChanged {
    pub host_id: String,
    pub labels: BTreeMap<String, String>,
}

/// Payload of `config_set` and `config_deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChanged {
    pub config_name: String,
}

/// Payload of `component_scaled` (`max_instances: 0` means stopped) and
/// `component_scale_failed` (with `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScaled {
    pub component_id: String,
    pub image_ref: String,
    pub host_id: String,
    pub max_instances: u32,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Payload of `host_heartbeat`: wasmCloud v1's fields, with a bounded component list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostHeartbeat {
    #[serde(default)]
    pub host_id: String,
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub uptime_seconds: u64,
    #[serde(default)]
    pub uptime_human: String,
    /// The first components of the inventory, cut at [`HEARTBEAT_COMPONENT_BUDGET`] bytes.
    #[serde(default)]
    pub components: Vec<ComponentDescription>,
    #[serde(default)]
    pub providers: Vec<ProviderDescription>,
    /// Lattice extension: how many components the host runs in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_count: Option<usize>,
    /// Lattice extension: true when `components` was cut; ask `host.get` for the full list.
    #[serde(default)]
    pub components_truncated: bool,
    /// Lattice extension: the interval between this host's heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
}

impl HostHeartbeat {
    /// Builds the heartbeat of `inventory`, keeping its size bounded however many components
    /// the host runs.
    pub fn from_inventory(inventory: &HostInventory, interval: Duration) -> Self {
        let mut used = 0;
        let mut components = Vec::new();
        for c in &inventory.components {
            // Serializing a plain struct of strings and maps cannot fail; count 0 if it did.
            let size = serde_json::to_vec(c).map(|v| v.len() + 1).unwrap_or(0);
            if used + size > HEARTBEAT_COMPONENT_BUDGET {
                break;
            }
            used += size;
            components.push(c.clone());
        }
        Self {
            host_id: inventory.host_id.clone(),
            friendly_name: inventory.friendly_name.clone(),
            labels: inventory.labels.clone(),
            version: inventory.version.clone(),
            uptime_seconds: inventory.uptime_seconds,
            uptime_human: inventory.uptime_human.clone(),
            components_truncated: components.len() < inventory.components.len(),
            components,
            // One per provider id the host runs: few, so never cut. Schedulers (wadm)
            // reconcile providers from heartbeats too.
            providers: inventory.providers.clone(),
            component_count: Some(inventory.components.len()),
            heartbeat_interval_ms: Some(interval.as_millis() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(components: usize) -> HostInventory {
        HostInventory {
            host_id: "N".repeat(56),
            friendly_name: "quiet-river-1234".into(),
            labels: [("hostcore.os".to_string(), "linux".to_string())].into(),
            version: "0.1.0".into(),
            uptime_seconds: 12,
            uptime_human: "12s".into(),
            components: (0..components)
                .map(|i| ComponentDescription {
                    id: format!("component-{i}"),
                    image_ref: format!("registry.example/app/component-{i}:1.0.0"),
                    name: Some(format!("component {i}")),
                    annotations: [("owner".to_string(), "team".to_string())].into(),
                    revision: 0,
                    max_instances: 4,
                    limits: None,
                    calls: Some(u64::MAX),
                    failed_calls: Some(u64::MAX),
                })
                .collect(),
            providers: vec![],
        }
    }

    fn heartbeat_len(components: usize) -> usize {
        let hb = HostHeartbeat::from_inventory(&inventory(components), Duration::from_secs(5));
        let ev = CloudEvent::new("N", HOST_HEARTBEAT, serde_json::to_value(hb).unwrap());
        serde_json::to_vec(&ev).unwrap().len()
    }

    #[test]
    fn heartbeat_size_is_bounded_whatever_the_inventory() {
        let empty = heartbeat_len(0);
        let sizes: Vec<usize> = [10, 100, 1_000, 10_000].map(heartbeat_len).to_vec();
        println!("heartbeat bytes: 0 components -> {empty}, 10/100/1k/10k -> {sizes:?}");
        // Past the budget the size no longer grows with the inventory (only the digits of
        // `component_count` do).
        assert!(sizes[3] - sizes[1] <= 8, "{sizes:?}");
        assert!(
            sizes[3] <= empty + HEARTBEAT_COMPONENT_BUDGET + 64,
            "{sizes:?}"
        );
    }

    #[test]
    fn small_inventories_travel_whole() {
        let mut inv = inventory(3);
        inv.providers.push(ProviderDescription {
            id: "http-server".into(),
            image_ref: Some("file:///p".into()),
            name: None,
            annotations: Default::default(),
            revision: 0,
        });
        let hb = HostHeartbeat::from_inventory(&inv, Duration::from_secs(1));
        assert_eq!(hb.components.len(), 3);
        assert_eq!(
            hb.providers, inv.providers,
            "providers travel in heartbeats"
        );
        assert!(!hb.components_truncated);
        let hb = HostHeartbeat::from_inventory(&inventory(1000), Duration::from_secs(1));
        assert!(hb.components_truncated);
        assert_eq!(hb.component_count, Some(1000));
    }

    #[test]
    fn event_envelope_is_cloudevents() {
        let ev = CloudEvent::new("NHOST", HOST_STARTED, serde_json::json!({}));
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "com.wasmcloud.lattice.host_started");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(ev.event_type(), Some("host_started"));
    }
}
