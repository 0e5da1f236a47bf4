//! Traces: the spans a host makes of the calls it takes part in, exported over OTLP.
//!
//! A host with traces on ([`Tracing::otlp`]) makes one span per HTTP request its ingress
//! takes (kind server), per call a component makes through a link (client) and per wRPC call
//! it serves (server). Parents come from the W3C `traceparent` every call already carries
//! (lattice-wrpc's `TraceParent`, passed here as raw ids so this crate needs no wire types):
//! a served call's span is the child of its caller's span, and the calls it makes are
//! children of it, so one request across any number of hosts is one trace. Every span names
//! its host (`lattice.host.id`, and the resource's `service.instance.id`).
//!
//! Export is OpenTelemetry's batch processor with the OTLP HTTP/protobuf exporter on a thread
//! of its own: a bounded queue (2,048 spans) that drops when the collector is slow or down,
//! and says so once in the host's log; calls never wait for it.

use std::borrow::Cow;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::Error;

/// The W3C trace context of a span: what `traceparent` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// One host's tracer and its exporter.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: Tracer,
    host_id: String,
}

/// What a span is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This host serves it (an HTTP request, a wRPC call).
    Server,
    /// This host sends it (a call through a link).
    Client,
    /// Work a request started (a scale).
    Internal,
}

/// A span in progress; ended (and queued for export) by [`CallSpan::end`] or when dropped.
pub struct CallSpan {
    span: opentelemetry_sdk::trace::Span,
}

impl Tracing {
    /// Exports to `endpoint` (an OTLP base URL such as `http://collector:4318`; over HTTP the
    /// `/v1/traces` path is added), or else where the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// / `OTEL_EXPORTER_OTLP_ENDPOINT` variables say (default `http://localhost:4318`, or
    /// `:4317` for gRPC, chosen by `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=grpc`). The batch
    /// processor follows the standard `OTEL_BSP_*` variables. Must run in a Tokio runtime.
    pub fn otlp(endpoint: Option<&str>, host_id: &str, lattice: &str) -> Result<Self, Error> {
        let exporter = if crate::otlp::grpc("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            // gRPC (tonic): the channel's worker runs on the runtime this is built in, so
            // the batch processor's thread can export through it.
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(base) = endpoint {
                b = b.with_endpoint(base.to_string());
            }
            b.build()
        } else {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(base) = endpoint {
                b = b.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
            }
            b.build()
        };
        let exporter = crate::otlp::Reported::new(exporter.map_err(Error::Exporter)?, "spans");
        let resource = crate::resource(host_id, lattice);
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("lattice");
        Ok(Self {
            provider,
            tracer,
            host_id: host_id.to_string(),
        })
    }

    /// Starts span `name` as a child of `parent` (a new trace without one).
    pub fn start(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: Kind,
        parent: Option<TraceIds>,
        mut attributes: Vec<KeyValue>,
    ) -> CallSpan {
        attributes.push(KeyValue::new("lattice.host.id", self.host_id.clone()));
        let cx = match parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(p.trace_id),
                SpanId::from_bytes(p.span_id),
                if p.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(match kind {
                Kind::Server => SpanKind::Server,
                Kind::Client => SpanKind::Client,
                Kind::Internal => SpanKind::Internal,
            })
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &cx);
        CallSpan { span }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        // Flushes what is queued (bounded by the exporter's timeout), off any async worker.
        let provider = self.provider.clone();
        let _ = std::thread::spawn(move || provider.shutdown()).join();
    }
}

impl CallSpan {
    /// Its trace context: what the calls it makes carry as their parent.
    pub fn ids(&self) -> TraceIds {
        let cx = self.span.span_context();
        TraceIds {
            trace_id: cx.trace_id().to_bytes(),
            span_id: cx.span_id().to_bytes(),
            sampled: cx.is_sampled(),
        }
    }

    /// Adds attributes learnt after the start (a response's status, a retry count).
    pub fn set(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        self.span.set_attributes(attributes);
    }

    /// Ends the span: `error` is a failed call's kind (`error.type`) and message.
    pub fn end(mut self, error: Option<(&'static str, String)>) {
        if let Some((kind, message)) = error {
            self.span.set_attribute(KeyValue::new("error.type", kind));
            self.span.set_status(Status::error(message));
        }
        self.span.end();
    }
}
