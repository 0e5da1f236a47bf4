//! What the OTLP exporters of traces and metrics share: the protocol the standard variables
//! choose, and saying once that the collector cannot be reached (and once that it can
//! again), instead of the SDK's error per dropped batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Whether `signal_var` (e.g. `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`), else the generic
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, asks for gRPC (the default is HTTP/protobuf).
pub(crate) fn grpc(signal_var: &str) -> bool {
    let chosen = std::env::var(signal_var)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok());
    chosen.is_some_and(|p| p.trim() == "grpc")
}

/// An exporter whose failures are reported once per outage; the batch is dropped either way.
#[derive(Debug)]
pub(crate) struct Reported<E> {
    inner: E,
    /// `spans` or `metrics`, for the log line.
    what: &'static str,
    failing: AtomicBool,
}

impl<E> Reported<E> {
    pub(crate) fn new(inner: E, what: &'static str) -> Self {
        Self {
            inner,
            what,
            failing: AtomicBool::new(false),
        }
    }

    fn outcome(&self, result: OTelSdkResult) -> OTelSdkResult {
        let what = self.what;
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("exporting {what} again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "cannot export {what}: dropping them until the collector answers (said once)"
                    );
                }
            }
        }
        // Gone either way; the SDK need not log it again.
        Ok(())
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.outcome(result)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Reported<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.outcome(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
