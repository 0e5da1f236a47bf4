//! What a component may do and use: limits and grants, one typed policy per component.
//!
//! Deny by default: no filesystem, no environment variables, no sockets, no outgoing HTTP.
//! Clocks and randomness are always available. Limits default to values that keep one
//! component from hurting its host; a host may lower or raise them per component.

use std::path::PathBuf;
use std::time::Duration;

/// Resource limits of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory an instance may grow to, in bytes (per memory).
    pub max_memory_bytes: usize,
    /// Longest a single call may run, wall-clock, before it is interrupted.
    pub max_execution_time: Duration,
    /// Largest component binary accepted, in bytes.
    pub max_component_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            max_execution_time: Duration::from_secs(30),
            max_component_bytes: 50 << 20,
        }
    }
}

/// Capabilities granted to a component beyond the always-allowed clocks and randomness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host directories visible to the guest: (host path, guest path, read-only).
    pub dirs: Vec<(PathBuf, String, bool)>,
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Whether the guest may open TCP/UDP sockets and resolve names.
    pub network: bool,
    /// Hosts `wasi:http/outgoing-handler` may reach: `host`, `host:port`, `*.domain` or `*`.
    /// Empty: every outgoing request is denied.
    pub http_hosts: Vec<String>,
}

/// The full policy of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub limits: Limits,
    pub grants: Grants,
}
