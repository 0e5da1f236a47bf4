//! What the messaging capability needs of its host and owns itself, handed to it once at
//! start-up: apart from the delivery code (`messaging`) that acts on it.

use std::sync::Arc;
use std::time::Duration;

use super::{connections, replies};
use crate::admission::Admission;
use crate::components::Components;
use crate::grants::Grants;
use crate::state::LatticeState;

/// The messaging capability of one host.
pub(crate) struct Broker {
    pub lattice: String,
    /// Links and config: which components subscribe to what, through which servers.
    pub state: Arc<LatticeState>,
    /// What each component may publish and request.
    pub grants: Arc<Grants>,
    pub components: Arc<Components>,
    /// Bounds on the messages delivered at once.
    pub admission: Arc<Admission>,
    /// The longest a component's request waits for its reply.
    pub call_timeout: Duration,
    /// Reply subjects of the messages components are handling now.
    pub replies: replies::Replies,
    /// Its own connection (same servers and credentials as the host's), so a flood of
    /// application messages (or a slow consumer) never stalls control, heartbeats or calls,
    /// and those of links' own (`cluster_uris`).
    pub connections: connections::Connections,
    /// For consumer calls handed to a messaging provider a component is linked to.
    pub calls: Arc<crate::calls::Calls>,
}
