//! Bodies of control-interface requests and responses (wasmCloud control interface v1).
//!
//! Field names follow wasmCloud v1 exactly, so its clients (`wash`, wadm) can read our replies.
//! Fields Lattice adds are optional on input and documented where they are defined.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A named config: string keys to string values.
pub type ConfigMap = BTreeMap<String, String>;

/// Label keys under this prefix are set by the host itself and cannot be changed remotely.
pub const RESERVED_LABEL_PREFIX: &str = "hostcore.";

/// The reply of one host to `host.ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The host's public nkey (`N…`).
    pub id: String,
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub lattice: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub uptime_seconds: u64,
    #[serde(default)]
    pub uptime_human: String,
    /// NATS server the host's control connection is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctl_host: Option<String>,
    /// NATS server the host's RPC connection is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js_domain: Option<String>,
    /// Lattice extension: the host's heartbeat interval, so watchers know when it is overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
}

/// One component in a host's inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDescription {
    pub id: String,
    pub image_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub revision: i32,
    #[serde(default)]
    pub max_instances: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, String>>,
    /// Lattice extension: calls this host's instances served (since the last scale or
    /// update), so load sharing across hosts can be seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    /// Lattice extension: how many of those calls failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_calls: Option<u64>,
}

/// One capability provider in a host's inventory. Lattice builds capabilities into the host,
/// so its hosts always report an empty list; the type exists so wasmCloud inventories parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDescription {
    pub id: String,
    #[serde(default)]
    pub image_ref: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub revision: i32,
}

/// The reply to `host.get.{host}`: the full inventory of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInventory {
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
    #[serde(default)]
    pub components: Vec<ComponentDescription>,
    #[serde(default)]
    pub providers: Vec<ProviderDescription>,
}

/// Body of `label.put.{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLabel {
    pub key: String,
    pub value: String,
}

/// Body of `label.del.{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLabelKey {
    pub key: String,
}

/// Why a label key cannot be set or deleted by a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLabelKey {
    #[error("label key must not be empty")]
    Empty,
    #[error("label key must be at most 256 bytes")]
    TooLong,
    #[error("label key {0:?} is reserved: keys starting with {RESERVED_LABEL_PREFIX:?} are set by the host")]
    Reserved(String),
}

/// Checks a label key a client wants to set or delete.
pub fn validate_label_key(key: &str) -> Result<(), InvalidLabelKey> {
    if key.trim().is_empty() {
        return Err(InvalidLabelKey::Empty);
    }
    if key.len() > 256 {
        return Err(InvalidLabelKey::TooLong);
    }
    if key.starts_with(RESERVED_LABEL_PREFIX) {
        return Err(InvalidLabelKey::Reserved(key.to_string()));
    }
    Ok(())
}

/// Body of `host.stop.{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopHostCommand {
    pub host_id: String,
    /// Milliseconds the host may take to stop its work gracefully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Body of `component.scale.{host}`.
///
/// `count` (alias `max_instances`) is the number of instances that may run at once; 0 stops
/// the component. The host acknowledges at once and reports the outcome with a
/// `component_scaled` or `component_scale_failed` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleComponentCommand {
    pub component_ref: String,
    pub component_id: String,
    #[serde(alias = "max_instances")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Names of named configs, merged in order (later names win).
    #[serde(default)]
    pub config: Vec<String>,
    /// Per-component limits: `max_linear_memory` (bytes), `max_execution_time` (ms),
    /// `max_component_size` (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_limits: Option<BTreeMap<String, String>>,
    /// Allow replacing a running component of the same id with a different ref.
    #[serde(default)]
    pub allow_update: bool,
    /// Lattice extension: hosts the component's outgoing HTTP requests may reach (`host`,
    /// `host:port`, `*.domain`, `*`). Empty: outgoing HTTP is denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

/// Body of `component.update.{host}`: swap a running component's version in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateComponentCommand {
    pub component_id: String,
    pub new_component_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Body of `component.auction`: which hosts could run this component?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAuctionRequest {
    pub component_ref: String,
    pub component_id: String,
    /// Labels a host must carry (all of them, with these values).
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

/// A host's bid in a component auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAuctionAck {
    pub component_ref: String,
    pub component_id: String,
    pub host_id: String,
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

fn default_link_name() -> String {
    "default".into()
}

/// A link: calls from `source_id` on interfaces `interfaces` of `wit_namespace:wit_package`
/// go to `target`. Stored in JetStream KV `LATTICEDATA_{lattice}` and watched by every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub source_id: String,
    pub target: String,
    #[serde(default = "default_link_name")]
    pub name: String,
    pub wit_namespace: String,
    pub wit_package: String,
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub source_config: Vec<String>,
    #[serde(default)]
    pub target_config: Vec<String>,
    /// Lattice extension: the target's functions on this link may run more than once without
    /// harm, so a call whose host died mid-call is retried rather than failed with
    /// "outcome unknown". Omitted when false (wasmCloud clients never see it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
}

impl Link {
    /// A link named `default` without configs.
    pub fn new(source: &str, target: &str, ns: &str, pkg: &str, interfaces: &[&str]) -> Self {
        Self {
            source_id: source.into(),
            target: target.into(),
            name: default_link_name(),
            wit_namespace: ns.into(),
            wit_package: pkg.into(),
            interfaces: interfaces.iter().map(|i| i.to_string()).collect(),
            source_config: vec![],
            target_config: vec![],
            idempotent: false,
        }
    }

    /// Whether this link carries calls of `source` on `ns:pkg/iface` under link `name`.
    pub fn serves(&self, source: &str, ns: &str, pkg: &str, iface: &str, name: &str) -> bool {
        self.source_id == source
            && self.wit_namespace == ns
            && self.wit_package == pkg
            && self.name == name
            && self.interfaces.iter().any(|i| i == iface)
    }
}

/// Body of `link.del`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLinkRequest {
    pub source_id: String,
    #[serde(default = "default_link_name")]
    pub name: String,
    pub wit_namespace: String,
    pub wit_package: String,
}

/// Splits a WIT instance name `ns:pkg/iface[@version]` into `(ns, pkg, iface)`.
pub fn split_instance(instance: &str) -> Option<(&str, &str, &str)> {
    let unversioned = instance.split('@').next()?;
    let (ns, rest) = unversioned.split_once(':')?;
    let (pkg, iface) = rest.split_once('/')?;
    (!ns.is_empty() && !pkg.is_empty() && !iface.is_empty()).then_some((ns, pkg, iface))
}

/// Body of `component.signature.{host}` (a Lattice extension): the types of one export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRequest {
    pub component_id: String,
    /// `ns:pkg/iface@version`, or empty for a root-level function.
    #[serde(default)]
    pub instance: String,
    pub function: String,
}

/// Formats an uptime the way wasmCloud's `uptime_human` does, e.g. `1h 2m 3s`.
pub fn human_uptime(uptime: Duration) -> String {
    let s = uptime.as_secs();
    let (d, h, m, s) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 || !out.is_empty() {
            out.push_str(&format!("{n}{unit} "));
        }
    }
    out.push_str(&format!("{s}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_split_into_namespace_package_interface() {
        assert_eq!(
            split_instance("wasi:keyvalue/store@0.2.0-draft"),
            Some(("wasi", "keyvalue", "store"))
        );
        assert_eq!(split_instance("a:b/c"), Some(("a", "b", "c")));
        assert_eq!(split_instance("nope"), None);
        let link: Link = serde_json::from_str(
            r#"{"source_id":"a","target":"b","wit_namespace":"x","wit_package":"y","interfaces":["i"]}"#,
        )
        .unwrap();
        assert_eq!(link.name, "default");
        assert!(link.serves("a", "x", "y", "i", "default"));
        assert!(!link.serves("a", "x", "y", "j", "default"));
    }

    #[test]
    fn reserved_labels_are_rejected() {
        assert!(validate_label_key("hostcore.os").is_err());
        assert!(validate_label_key("").is_err());
        validate_label_key("zone").unwrap();
    }

    #[test]
    fn uptime_reads_like_wasmcloud() {
        assert_eq!(human_uptime(Duration::from_secs(5)), "5s");
        assert_eq!(human_uptime(Duration::from_secs(3723)), "1h 2m 3s");
        assert_eq!(human_uptime(Duration::from_secs(86_400)), "1d 0h 0m 0s");
    }

    #[test]
    fn parses_a_wasmcloud_ping_reply() {
        let h: Host = serde_json::from_str(
            r#"{"id":"NB","friendly_name":"x","labels":{"a":"b"},"lattice":"default",
                "version":"1.9.2","uptime_seconds":3,"uptime_human":"3s",
                "ctl_host":"nats://127.0.0.1:4222","rpc_host":"nats://127.0.0.1:4222","js_domain":null}"#,
        )
        .unwrap();
        assert_eq!(h.labels["a"], "b");
    }
}
