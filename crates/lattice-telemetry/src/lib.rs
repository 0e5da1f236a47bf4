//! What a Lattice host measures, and how it is read.
//!
//! One OpenTelemetry meter provider per host ([`Metrics`]), its instruments named after
//! OpenTelemetry's semantic conventions (`rpc.client.call.duration`, ...), read on demand by
//! the Prometheus text endpoint (`lattice host --metrics-address`). A host without that
//! option builds none of this and records nothing.
//!
//! - [`metrics`]: the provider, its instruments and what each records;
//! - [`prometheus`]: one collection rendered in Prometheus' text exposition format;
//! - [`endpoint`]: the HTTP endpoint serving it;
//! - [`spans`]: traces of requests and calls across hosts, exported over OTLP.
//!
//! Not here: where calls are measured (lattice-host's router and serve modules).

pub mod endpoint;
pub mod metrics;
mod otlp;
pub mod prometheus;
pub mod spans;

pub use endpoint::Endpoint;
pub use metrics::{ClientCall, HttpRequest, Instances, Metrics, ServerCall};
pub use opentelemetry::KeyValue;
pub use spans::{CallSpan, Kind, TraceIds, Tracing};

/// The resource every signal of host `host_id` is reported under.
pub(crate) fn resource(host_id: &str, lattice: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "lattice-host"),
            KeyValue::new("service.instance.id", host_id.to_string()),
            KeyValue::new("lattice.name", lattice.to_string()),
        ])
        .build()
}

/// Why metrics could not be collected or served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("collecting metrics: {0}")]
    Collect(#[source] opentelemetry_sdk::error::OTelSdkError),
    #[error("cannot make the OTLP trace exporter: {0}")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot listen for metrics scrapes on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
