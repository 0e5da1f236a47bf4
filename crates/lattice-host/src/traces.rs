//! The spans of calls this host takes part in (made by `lattice_telemetry::spans`, when the
//! host has traces on): the conversion between the wire's `traceparent` and the exporter's
//! ids, and which trace a call's own calls continue.
//!
//! Without traces a served call's calls continue the caller's trace with fresh span ids, as
//! before; with them, each continues the span of the call that made it, so the exported
//! spans form the call tree.

use lattice_telemetry::{CallSpan, KeyValue, Kind, TraceIds, Tracing};
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::CallError;

/// A span's ids as a `traceparent` naming it as the parent.
pub(crate) fn traceparent(ids: TraceIds) -> TraceParent {
    TraceParent {
        trace_id: ids.trace_id,
        parent_id: ids.span_id,
        flags: u8::from(ids.sampled),
    }
}

fn ids(t: &TraceParent) -> TraceIds {
    TraceIds {
        trace_id: t.trace_id,
        span_id: t.parent_id,
        sampled: t.flags & 1 == 1,
    }
}

/// Starts a span of `kind` under `parent` (when tracing); returns it and the trace that
/// calls made within it carry (its own ids, else `parent` as it was).
pub(crate) fn start(
    tracing: Option<&Tracing>,
    kind: Kind,
    parent: Option<TraceParent>,
    name: impl FnOnce() -> String,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> (Option<CallSpan>, Option<TraceParent>) {
    match tracing {
        None => (None, parent),
        Some(t) => {
            let span = t.start(name(), kind, parent.as_ref().map(ids), attributes());
            let within = traceparent(span.ids());
            (Some(span), Some(within))
        }
    }
}

/// Ends `span` (if any) with the call's outcome.
pub(crate) fn end<T>(span: Option<CallSpan>, outcome: &Result<T, CallError>) {
    if let Some(span) = span {
        let error = outcome
            .as_ref()
            .err()
            .map(|e| (e.kind().label(), e.to_string()));
        span.end(error);
    }
}

/// The attributes of an RPC span: `rpc.system`, `rpc.service`, `rpc.method`.
pub(crate) fn rpc(interface: &str, function: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("rpc.system", "wrpc"),
        KeyValue::new("rpc.service", interface.to_string()),
        KeyValue::new("rpc.method", function.to_string()),
    ]
}
