//! The messaging capability's state, owned apart from the delivery code that acts on it.

use super::{connections, replies};

/// The messaging capability's own state: its NATS connections and the reply subjects of the
/// messages components are handling now.
pub(crate) struct Parts {
    pub replies: replies::Replies,
    /// Its own connection (same servers and credentials as the host's), so a flood of
    /// application messages (or a slow consumer) never stalls control, heartbeats or calls,
    /// and those of links' own (`cluster_uris`).
    pub connections: connections::Connections,
}
