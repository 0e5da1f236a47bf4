//! What a Lattice host measures, and how it is read.
//!
//! One OpenTelemetry meter provider per host ([`Metrics`]), its instruments named after
//! OpenTelemetry's semantic conventions (`rpc.client.call.duration`, ...), read on demand by
//! the Prometheus text endpoint (`lattice host --metrics-address`). A host without that
//! option builds none of this and records nothing.
//!
//! - [`metrics`]: the provider, its instruments and what each records;
//! - [`prometheus`]: one collection rendered in Prometheus' text exposition format;
//! - [`endpoint`]: the HTTP endpoint serving it.
//!
//! Not here: where calls are measured (lattice-host's router and serve modules).

pub mod endpoint;
pub mod metrics;
pub mod prometheus;

pub use endpoint::Endpoint;
pub use metrics::{ClientCall, Metrics, ServerCall};

/// Why metrics could not be collected or served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("collecting metrics: {0}")]
    Collect(#[source] opentelemetry_sdk::error::OTelSdkError),
    #[error("cannot listen for metrics scrapes on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
