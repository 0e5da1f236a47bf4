//! The host's meter provider and its instruments.
//!
//! Calls are measured on both sides, as OpenTelemetry's RPC conventions name them:
//! `rpc.client.call.duration` for every call a component makes through a link (in-process or
//! over wRPC), `rpc.server.call.duration` for every wRPC call this host serves. Both are
//! histograms in seconds; their counts are the call counts. Attributes: `rpc.system`
//! (`wrpc`), `rpc.service` (the interface, e.g. `lattice:examples/calc@0.1.0`), `rpc.method`
//! (the function), the components (`lattice.source` and `lattice.target` for links,
//! `lattice.component` when served), `lattice.route` (`local` or `wrpc`) and, for a failed
//! call, `error.type` (the call error's kind, e.g. `no_responders`).
//!
//! Recording is a histogram update keyed by those attributes; nothing here allocates per
//! call beyond the attribute array.

use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, PeriodicReader, Pipeline, SdkMeterProvider, Temporality,
};

use opentelemetry_otlp::WithExportConfig as _;

use crate::Error;

/// Histogram bucket bounds in seconds: 100 µs to 10 s, where a call's time falls.
const BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// The OTLP exporter the periodic reader pushes to.
type Pushed = crate::otlp::Reported<opentelemetry_otlp::MetricExporter>;

/// One host's instruments and the reader that collects them.
pub struct Metrics {
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    client_calls: Histogram<f64>,
    server_calls: Histogram<f64>,
    http_requests: Histogram<f64>,
    kv_operations: opentelemetry::metrics::Counter<u64>,
    reconciler_passes: opentelemetry::metrics::Counter<u64>,
    reconciler_actions: opentelemetry::metrics::Counter<u64>,
}

/// What the host reports, when collected, of one running component.
#[derive(Debug, Clone)]
pub struct Instances {
    pub component: String,
    /// Instances alive now (each serving a call, or made ahead for the next).
    pub active: u64,
    /// The most it may have at once.
    pub max: u64,
    /// Calls waiting for an instance (the bound reached).
    pub waiting: u64,
}

/// An HTTP request the ingress answered.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a http::Method,
    pub status: u16,
    /// The component its route names.
    pub target: &'a str,
}

/// A call a component made through a link.
#[derive(Debug, Clone, Copy)]
pub struct ClientCall<'a> {
    pub source: &'a str,
    pub target: &'a str,
    pub interface: &'a str,
    pub function: &'a str,
    /// Served in-process (the target runs on this host) rather than over wRPC.
    pub local: bool,
}

/// A wRPC call this host served.
#[derive(Debug, Clone, Copy)]
pub struct ServerCall<'a> {
    pub component: &'a str,
    pub interface: &'a str,
    pub function: &'a str,
}

impl Metrics {
    /// The instruments of host `host_id` in `lattice` (both become resource attributes),
    /// read on demand by the Prometheus endpoint.
    pub fn new(host_id: &str, lattice: &str) -> Self {
        Self::build(host_id, lattice, None)
    }

    /// The same, also pushed over OTLP/HTTP: to `base` (an OTLP base URL, `/v1/metrics`
    /// added) or, when it is empty, where the standard `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` say, every `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s).
    pub fn with_otlp(host_id: &str, lattice: &str, base: &str) -> Result<Self, Error> {
        let exporter = if crate::otlp::grpc("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") {
            let mut b = opentelemetry_otlp::MetricExporter::builder().with_tonic();
            if !base.is_empty() {
                b = b.with_endpoint(base.to_string());
            }
            b.build()
        } else {
            let mut b = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if !base.is_empty() {
                b = b.with_endpoint(format!("{}/v1/metrics", base.trim_end_matches('/')));
            }
            b.build()
        };
        let exporter = exporter.map_err(Error::Exporter)?;
        let push = PeriodicReader::builder(crate::otlp::Reported::new(exporter, "metrics")).build();
        Ok(Self::build(host_id, lattice, Some(push)))
    }

    fn build(host_id: &str, lattice: &str, push: Option<PeriodicReader<Pushed>>) -> Self {
        let reader = Arc::new(ManualReader::builder().build());
        let resource = crate::resource(host_id, lattice);
        let mut builder = SdkMeterProvider::builder()
            .with_reader(Shared(reader.clone()))
            .with_resource(resource);
        if let Some(push) = push {
            builder = builder.with_reader(push);
        }
        let provider = builder.build();
        let meter = provider.meter("lattice");
        let client_calls = meter
            .f64_histogram("rpc.client.call.duration")
            .with_unit("s")
            .with_description("Calls made by this host's components through their links")
            .with_boundaries(BOUNDS.to_vec())
            .build();
        let server_calls = meter
            .f64_histogram("rpc.server.call.duration")
            .with_unit("s")
            .with_description("wRPC calls served by this host's components")
            .with_boundaries(BOUNDS.to_vec())
            .build();
        let http_requests = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("HTTP requests this host's ingress answered, by route and status")
            .with_boundaries(BOUNDS.to_vec())
            .build();
        let kv_operations = meter
            .u64_counter("lattice.kv.operations")
            .with_description("wasi:keyvalue operations components made, by bucket and outcome")
            .build();
        let reconciler_passes = meter
            .u64_counter("lattice.reconciler.passes")
            .with_description("Passes of the application reconciler beside this host, while it led")
            .build();
        let reconciler_actions = meter
            .u64_counter("lattice.reconciler.actions")
            .with_description("Commands the application reconciler beside this host sent, by kind")
            .build();
        Self {
            provider,
            reader,
            client_calls,
            server_calls,
            http_requests,
            kv_operations,
            reconciler_passes,
            reconciler_actions,
        }
    }

    /// Counts a reconciler pass; `complete`: nothing in it failed.
    pub fn reconciler_pass(&self, complete: bool) {
        let outcome = if complete { "complete" } else { "incomplete" };
        self.reconciler_passes
            .add(1, &[KeyValue::new("lattice.outcome", outcome)]);
    }

    /// Counts a command the reconciler sent (`scale`, `update`, `stop`, `start`, `link`,
    /// `config`).
    pub fn reconciler_action(&self, kind: &'static str) {
        self.reconciler_actions
            .add(1, &[KeyValue::new("lattice.action", kind)]);
    }

    /// Counts a key-value operation (`get`, `set`, `delete`, `list`, `increment`, `open`) on
    /// `bucket` (a bucket a link granted, so the labels stay bounded); `error` its failure.
    pub fn kv_operation(&self, operation: &'static str, bucket: &str, error: Option<&'static str>) {
        let mut attrs = [
            KeyValue::new("lattice.kv.operation", operation),
            KeyValue::new("lattice.kv.bucket", bucket.to_string()),
            KeyValue::new("error.type", ""),
        ];
        let n = with_error(&mut attrs, error);
        self.kv_operations.add(1, &attrs[..n]);
    }

    /// Reports, at each collection, `instances()` (`lattice.component.instances`, by
    /// component and `state`: `active`, `max` or `waiting`) and `reconnects` (`lattice.nats.reconnects`).
    pub fn observe(
        &self,
        instances: impl Fn() -> Vec<Instances> + Send + Sync + 'static,
        reconnects: Arc<std::sync::atomic::AtomicU64>,
    ) {
        let meter = self.provider.meter("lattice");
        // Registered with the provider for its lifetime; the handles need not be kept.
        let _ = meter
            .u64_observable_gauge("lattice.component.instances")
            .with_description("Instances of each running component: alive now, and the bound")
            .with_callback(move |observer| {
                for i in instances() {
                    for (state, n) in [("active", i.active), ("max", i.max), ("waiting", i.waiting)]
                    {
                        let attrs = [
                            KeyValue::new("lattice.component", i.component.clone()),
                            KeyValue::new("state", state),
                        ];
                        observer.observe(n, &attrs);
                    }
                }
            })
            .build();
        let _ = meter
            .u64_observable_counter("lattice.nats.reconnects")
            .with_description("Times this host's NATS connection was re-established")
            .with_callback(move |observer| {
                observer.observe(reconnects.load(std::sync::atomic::Ordering::Relaxed), &[])
            })
            .build();
    }

    /// Records an HTTP request; methods other than the standard ones are `_OTHER`, so a
    /// client cannot grow the labels.
    pub fn http_request(&self, req: &HttpRequest<'_>, took: Duration) {
        use http::Method;
        let method = match *req.method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::OPTIONS => "OPTIONS",
            Method::CONNECT => "CONNECT",
            Method::TRACE => "TRACE",
            _ => "_OTHER",
        };
        let attrs = [
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.response.status_code", i64::from(req.status)),
            KeyValue::new("lattice.target", req.target.to_string()),
        ];
        self.http_requests.record(took.as_secs_f64(), &attrs);
    }

    /// Records a call made through a link; `error` is the failed call's kind.
    pub fn client_call(&self, call: &ClientCall<'_>, took: Duration, error: Option<&'static str>) {
        let route = if call.local { "local" } else { "wrpc" };
        let mut attrs = [
            KeyValue::new("rpc.system", "wrpc"),
            KeyValue::new("rpc.service", call.interface.to_string()),
            KeyValue::new("rpc.method", call.function.to_string()),
            KeyValue::new("lattice.source", call.source.to_string()),
            KeyValue::new("lattice.target", call.target.to_string()),
            KeyValue::new("lattice.route", route),
            KeyValue::new("error.type", ""),
        ];
        let n = with_error(&mut attrs, error);
        self.client_calls.record(took.as_secs_f64(), &attrs[..n]);
    }

    /// Records a call served; `error` is the failed call's kind.
    pub fn server_call(&self, call: &ServerCall<'_>, took: Duration, error: Option<&'static str>) {
        let mut attrs = [
            KeyValue::new("rpc.system", "wrpc"),
            KeyValue::new("rpc.service", call.interface.to_string()),
            KeyValue::new("rpc.method", call.function.to_string()),
            KeyValue::new("lattice.component", call.component.to_string()),
            KeyValue::new("error.type", ""),
        ];
        let n = with_error(&mut attrs, error);
        self.server_calls.record(took.as_secs_f64(), &attrs[..n]);
    }

    /// Everything recorded so far (cumulative since the host started).
    pub fn collect(&self) -> Result<ResourceMetrics, Error> {
        let mut rm = ResourceMetrics::default();
        self.reader.collect(&mut rm).map_err(Error::Collect)?;
        Ok(rm)
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        // Pushes what is left over OTLP (if on), off any async worker.
        let provider = self.provider.clone();
        let _ = std::thread::spawn(move || provider.shutdown()).join();
    }
}

/// Fills in the last attribute, `error.type`, for a failed call; returns how many to use
/// (a successful call carries no `error.type`, as the conventions say).
fn with_error<const N: usize>(attrs: &mut [KeyValue; N], error: Option<&'static str>) -> usize {
    match error {
        Some(kind) => {
            attrs[N - 1] = KeyValue::new("error.type", kind);
            N
        }
        None => N - 1,
    }
}

/// The manual reader, shared between the provider (which owns its readers) and
/// [`Metrics::collect`].
#[derive(Debug)]
struct Shared(Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
