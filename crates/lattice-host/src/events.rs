//! Publishing lattice events (CloudEvents 1.0 JSON on `wasmbus.evt.{lattice}.{type}`).

use lattice_proto::event::CloudEvent;
use lattice_proto::subject::event_subject;
use serde::Serialize;

/// Publishes this host's events. Losing an event must never stop the host, so failures are
/// logged, not returned.
#[derive(Clone)]
pub(crate) struct EventPublisher {
    nats: async_nats::Client,
    lattice: String,
    source: String,
}

impl EventPublisher {
    pub fn new(nats: async_nats::Client, lattice: &str, source: &str) -> Self {
        Self {
            nats,
            lattice: lattice.into(),
            source: source.into(),
        }
    }

    /// Publishes `data` as an event of `event_type` and returns its encoded size.
    pub async fn publish(&self, event_type: &str, data: impl Serialize) -> usize {
        let data = match serde_json::to_value(data) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(event_type, error = %e, "cannot encode event");
                return 0;
            }
        };
        let event = CloudEvent::new(&self.source, event_type, data);
        let bytes = match serde_json::to_vec(&event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(event_type, error = %e, "cannot encode event");
                return 0;
            }
        };
        let len = bytes.len();
        let subject = event_subject(&self.lattice, event_type);
        match self.nats.publish(subject, bytes.into()).await {
            Ok(()) => tracing::trace!(event_type, bytes = len, "event published"),
            Err(e) => tracing::warn!(event_type, error = %e, "cannot publish event"),
        }
        len
    }
}
