//! Capability providers as wasmCloud v1 runs them: the control operations that start, stop
//! and auction them, their events, what a host hands a provider process on start
//! ([`HostData`]), and the subjects a host and its providers talk on.
//!
//! A provider is a native process. The host writes its [`HostData`] (JSON, base64, then CRLF)
//! to the process's stdin; the process dials NATS itself and serves its exports over wRPC in
//! the queue group `{lattice}.{provider_id}`, like a component. The host then speaks to it on
//! `wasmbus.rpc.{lattice}.…`: [`health_subject`], [`shutdown_subject`], and links on
//! [`link_put_subject`] / [`link_del_subject`], keyed by the process's own xkey so each process
//! gets exactly the links its host sends it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub const PROVIDER_STARTED: &str = "provider_started";
pub const PROVIDER_START_FAILED: &str = "provider_start_failed";
pub const PROVIDER_STOPPED: &str = "provider_stopped";
pub const HEALTH_CHECK_PASSED: &str = "health_check_passed";
pub const HEALTH_CHECK_FAILED: &str = "health_check_failed";
pub const HEALTH_CHECK_STATUS: &str = "health_check_status";

/// The prefix of the subjects between a host and its providers.
pub const RPC_PREFIX: &str = "wasmbus.rpc";

/// Body of `provider.start.{host}`. The host acknowledges at once and reports the outcome
/// with `provider_started` or `provider_start_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartProviderCommand {
    pub provider_id: String,
    pub provider_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Names of named configs, merged in order (later names win), handed to the provider.
    #[serde(default)]
    pub config: Vec<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Body of `provider.stop.{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopProviderCommand {
    #[serde(alias = "provider_ref")]
    pub provider_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
}

/// Body of `provider.auction`: which hosts could run this provider?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuctionRequest {
    pub provider_ref: String,
    pub provider_id: String,
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

/// A host's bid in a provider auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuctionAck {
    pub provider_ref: String,
    pub provider_id: String,
    pub host_id: String,
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

/// Payload of `provider_started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStarted {
    pub host_id: String,
    pub image_ref: String,
    pub provider_id: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Payload of `provider_start_failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStartFailed {
    pub provider_ref: String,
    pub provider_id: String,
    pub host_id: String,
    pub error: String,
}

/// Payload of `provider_stopped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStopped {
    pub host_id: String,
    pub provider_id: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `normal` when asked to stop; otherwise what happened (the process died, ...).
    pub reason: String,
}

/// Payload of the `health_check_*` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub host_id: String,
    pub provider_id: String,
}

/// A provider's answer on [`health_subject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckResponse {
    #[serde(default)]
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A link as a provider receives it: named configs resolved to their merged values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceLinkDefinition {
    pub source_id: String,
    pub target: String,
    pub name: String,
    pub wit_namespace: String,
    pub wit_package: String,
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub source_config: HashMap<String, String>,
    #[serde(default)]
    pub target_config: HashMap<String, String>,
    /// Sealed secrets (not given by Lattice hosts yet).
    #[serde(default)]
    pub source_secrets: Option<Vec<u8>>,
    #[serde(default)]
    pub target_secrets: Option<Vec<u8>>,
}

/// Body of `provider.stop`'s request to the process on [`shutdown_subject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRequest {
    pub host_id: String,
}

/// What a host writes to a provider process's stdin (the fields wasmCloud v1's provider SDK
/// reads; those it does not use are sent empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostData {
    pub host_id: String,
    /// The lattice's name.
    pub lattice_rpc_prefix: String,
    pub link_name: String,
    pub lattice_rpc_user_jwt: String,
    pub lattice_rpc_user_seed: String,
    pub lattice_rpc_url: String,
    /// The provider's id.
    pub provider_key: String,
    pub env_values: HashMap<String, String>,
    pub instance_id: String,
    pub link_definitions: Vec<InterfaceLinkDefinition>,
    pub cluster_issuers: Vec<String>,
    pub config: HashMap<String, String>,
    pub secrets: HashMap<String, serde_json::Value>,
    pub host_xkey_public_key: String,
    pub provider_xkey_private_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rpc_timeout_ms: Option<u64>,
    pub structured_logging: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    pub otel_config: serde_json::Value,
}

fn rpc(lattice: &str, key: &str, rest: &str) -> String {
    format!("{RPC_PREFIX}.{lattice}.{key}.{rest}")
}

/// Where a host asks a provider whether it is healthy.
pub fn health_subject(lattice: &str, provider_id: &str) -> String {
    rpc(lattice, provider_id, "health")
}

/// Where a host asks a provider to shut down (a request with [`ShutdownRequest`]).
pub fn shutdown_subject(lattice: &str, provider_id: &str) -> String {
    rpc(lattice, provider_id, "default.shutdown")
}

/// Where a host puts a link to the provider process whose xkey is `xkey`.
pub fn link_put_subject(lattice: &str, xkey: &str) -> String {
    rpc(lattice, xkey, "linkdefs.put")
}

/// Where a host deletes a link from the provider process whose xkey is `xkey`.
pub fn link_del_subject(lattice: &str, xkey: &str) -> String {
    rpc(lattice, xkey, "linkdefs.del")
}

/// Where a host sends a provider its merged config when a named config of it changes.
pub fn config_update_subject(lattice: &str, provider_id: &str) -> String {
    rpc(lattice, provider_id, "config.update")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_commands_match_wasmcloud_v1() {
        assert_eq!(
            health_subject("default", "http"),
            "wasmbus.rpc.default.http.health"
        );
        assert_eq!(
            shutdown_subject("default", "http"),
            "wasmbus.rpc.default.http.default.shutdown"
        );
        assert_eq!(
            link_put_subject("l", "XKEY"),
            "wasmbus.rpc.l.XKEY.linkdefs.put"
        );
        // wash sends the id of a provider to stop as `provider_id` (older ones `provider_ref`).
        let stop: StopProviderCommand =
            serde_json::from_str(r#"{"provider_ref":"p","host_id":"N1"}"#).unwrap();
        assert_eq!(stop.provider_id, "p");
        let start: StartProviderCommand = serde_json::from_str(
            r#"{"provider_id":"p","provider_ref":"file:///x","host_id":"N1"}"#,
        )
        .unwrap();
        assert!(start.config.is_empty() && start.annotations.is_empty());
    }
}
