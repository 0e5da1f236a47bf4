//! The NATS connections messaging travels on: the host's own messaging connection, and the
//! ones links ask for (`cluster_uris`), bounded in number.

use std::collections::HashMap;
use std::time::Duration;

use lattice_runtime::MessagingError;

/// Connections of their own that messaging links asked for (`cluster_uris`) at most, per host.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// How long connecting one of those may take before the publish (or subscription) fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The host's messaging connection, and the ones links point at (`cluster_uris`), one per
/// set of servers, made on first use and kept.
pub(crate) struct Connections {
    /// The host's own messaging connection (same servers and credentials as the host's).
    default: async_nats::Client,
    /// Connection names start with this (`lattice-host {friendly name}`).
    name: String,
    by_servers: tokio::sync::Mutex<HashMap<Vec<String>, async_nats::Client>>,
}

impl Connections {
    pub(crate) fn new(default: async_nats::Client, friendly_name: &str) -> Self {
        Self {
            default,
            name: format!("lattice-host {friendly_name} messaging"),
            by_servers: Default::default(),
        }
    }

    /// The host's messaging connection.
    pub(crate) fn default_connection(&self) -> &async_nats::Client {
        &self.default
    }

    /// The connection for `servers` (`None`: the host's messaging connection).
    pub(crate) async fn get(
        &self,
        servers: Option<&Vec<String>>,
    ) -> Result<async_nats::Client, MessagingError> {
        let Some(servers) = servers else {
            return Ok(self.default.clone());
        };
        let mut by = self.by_servers.lock().await;
        if let Some(c) = by.get(servers) {
            return Ok(c.clone());
        }
        if by.len() >= MAX_CONNECTIONS {
            return Err(MessagingError::Busy(format!(
                "this host holds {MAX_CONNECTIONS} messaging connections of links' own, its most"
            )));
        }
        let config = crate::NatsConfig {
            urls: servers.clone(),
            name: Some(self.name.clone()),
            ..Default::default()
        };
        let what = servers.join(",");
        let client = tokio::time::timeout(CONNECT_TIMEOUT, lattice_nats::connect(&config))
            .await
            .map_err(|_| {
                MessagingError::Failed(format!(
                    "cannot connect to {what} within {CONNECT_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| MessagingError::Failed(format!("cannot connect to {what}: {e}")))?;
        tracing::info!(servers = %what, "messaging connection of a link's own");
        by.insert(servers.clone(), client.clone());
        Ok(client)
    }
}
