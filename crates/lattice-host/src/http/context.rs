//! What the ingress needs of its host, handed to it once at start-up.

use std::sync::Arc;

use crate::calls::Calls;
use crate::components::Components;
use crate::state::LatticeState;

/// What the HTTP ingress needs of its host: the links and config its routes come from, the
/// components here, and the calls sent elsewhere.
pub(crate) struct Ingress {
    pub host_id: String,
    pub lattice: String,
    pub state: Arc<LatticeState>,
    pub components: Arc<Components>,
    pub calls: Arc<Calls>,
    /// Where requests' spans go, when the host has traces on.
    pub tracing: Option<Arc<lattice_telemetry::Tracing>>,
    /// Where requests are counted, when the host measures them.
    pub metrics: Option<Arc<lattice_telemetry::Metrics>>,
}
