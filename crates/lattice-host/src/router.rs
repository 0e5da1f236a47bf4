//! Where a component's import calls go: resolve the link, then call the target in-process when
//! it runs on this host (no serialization, no NATS hop), else over wRPC.
//!
//! The call path is router → link lookup → local pool or wRPC transport; each step reports a
//! typed [`CallError`] whose text becomes the calling guest's trap ("not linked: …",
//! "no responders: …", "deadline exceeded: …").

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::BoxFuture;
use lattice_proto::ctl::split_instance;
use lattice_runtime::{ImportCall, Val, CURRENT_TRACE};
use lattice_telemetry::KeyValue;
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::transport::{Call, LINK_HEADER, SOURCE_HEADER, TRACEPARENT_HEADER};
use lattice_wrpc::{CallError, CallErrorKind};
use tokio::time::Instant;

use crate::calls::Calls;
use crate::components::Components;
use crate::links::Links;

/// The host's router: one shared [`RouterParts`], so an import call clones one `Arc`.
pub(crate) struct HostRouter(pub Arc<RouterParts>);

/// What routing needs: the link table, this host's components (weakly: they own the
/// runtime that owns this router) and the calls sent elsewhere.
pub(crate) struct RouterParts {
    pub lattice: String,
    pub links: Arc<Links>,
    pub components: Weak<Components>,
    pub calls: Arc<Calls>,
    /// Where calls are counted, when the host measures them (`--metrics-address`).
    pub metrics: Option<Arc<lattice_telemetry::Metrics>>,
    /// Where calls' spans go, when the host has traces on.
    pub tracing: Option<Arc<lattice_telemetry::Tracing>>,
}

impl lattice_runtime::Router for HostRouter {
    fn call(&self, call: ImportCall) -> BoxFuture<'static, Result<Vec<Val>, CallError>> {
        let parts = self.0.clone();
        Box::pin(async move {
            let components = parts
                .components
                .upgrade()
                .ok_or_else(|| CallError::new(CallErrorKind::Stopped, "the host is stopping"))?;
            let router = Route {
                lattice: &parts.lattice,
                links: &parts.links,
                components: &components,
                calls: &parts.calls,
                metrics: parts.metrics.as_deref(),
                tracing: parts.tracing.as_deref(),
            };
            router.route(call).await
        })
    }
}

/// One routing decision's view of the host.
struct Route<'a> {
    lattice: &'a str,
    links: &'a Links,
    components: &'a Components,
    calls: &'a Calls,
    metrics: Option<&'a lattice_telemetry::Metrics>,
    tracing: Option<&'a lattice_telemetry::Tracing>,
}

impl Route<'_> {
    async fn route(&self, call: ImportCall) -> Result<Vec<Val>, CallError> {
        let Route {
            lattice,
            links,
            components,
            calls,
            metrics: _,
            tracing: _,
        } = *self;
        let ImportCall {
            source,
            link_name,
            instance,
            func,
            params,
            param_types,
            results,
        } = call;
        let (source, link_name, instance, func) = (&*source, &*link_name, &*instance, &*func);
        let not_linked = || {
            CallError::new(
            CallErrorKind::NotLinked,
            format!(
                "{source} has no link{} for {instance} (add one: lattice link put {source} TARGET_ID NAMESPACE PACKAGE --interface INTERFACE{})",
                if link_name == "default" { String::new() } else { format!(" named {link_name:?}") },
                if link_name == "default" { String::new() } else { format!(" --name {link_name}") },
            ),
        )
        };
        let (ns, pkg, iface) = split_instance(instance).ok_or_else(not_linked)?;
        let route = links
            .target(source, ns, pkg, iface, link_name)
            .ok_or_else(not_linked)?;
        let target = route.target;
        let local = (!calls.force_remote)
            .then(|| components.get(&target))
            .flatten();
        // Timed only when measured: a host without metrics pays nothing here.
        let started = self.metrics.map(|m| (m, std::time::Instant::now()));
        let on_host = local.is_some();
        let (mut span, trace) = crate::traces::start(
            self.tracing,
            lattice_telemetry::Kind::Client,
            CURRENT_TRACE.try_with(|t| *t).ok().flatten(),
            || format!("{instance}/{func}"),
            || {
                let mut a = crate::traces::rpc(instance, func);
                a.push(KeyValue::new("lattice.source", source.to_string()));
                a.push(KeyValue::new("lattice.target", target.clone()));
                a.push(KeyValue::new(
                    "lattice.route",
                    if on_host { "local" } else { "wrpc" },
                ));
                a
            },
        );
        let result = match local {
            Some(local) => {
                calls.stats.local.fetch_add(1, Ordering::Relaxed);
                // In-process, the target's own calls continue this span.
                let call = local.pool.call(Some(instance), func, &params);
                CURRENT_TRACE
                    .scope(trace, call)
                    .await
                    .map_err(CallError::for_caller)
            }
            None => {
                let remote = Remote {
                    lattice,
                    calls,
                    source,
                    link_name,
                    instance,
                    func,
                };
                // Without a span, the caller's trace goes on with a fresh span id.
                let trace = match (&span, trace) {
                    (Some(_), Some(t)) => t,
                    (_, parent) => parent.map(|t| t.child()).unwrap_or_else(TraceParent::root),
                };
                let (result, retries) = remote
                    .call(
                        &target,
                        route.idempotent,
                        trace,
                        &param_types,
                        &params,
                        &results,
                    )
                    .await;
                if let Some(span) = span.as_mut() {
                    span.set([KeyValue::new("lattice.retries", i64::from(retries))]);
                }
                result
            }
        };
        crate::traces::end(span, &result);
        if let Some((metrics, started)) = started {
            let call = lattice_telemetry::ClientCall {
                source,
                target: &target,
                interface: instance,
                function: func,
                local: on_host,
            };
            let error = result.as_ref().err().map(|e| e.kind().label());
            metrics.client_call(&call, started.elapsed(), error);
        }
        result
    }
}

/// A linked call that goes over wRPC: who makes it, through which link, to what.
struct Remote<'a> {
    lattice: &'a str,
    calls: &'a Calls,
    source: &'a str,
    link_name: &'a str,
    instance: &'a str,
    func: &'a str,
}

impl Remote<'_> {
    async fn call(
        &self,
        target: &str,
        idempotent: bool,
        trace: TraceParent,
        param_types: &[lattice_runtime::Type],
        params: &[Val],
        results: &[lattice_runtime::Type],
    ) -> (Result<Vec<Val>, CallError>, u32) {
        let Remote { lattice, calls, .. } = *self;
        let (source, link_name, instance, func) =
            (self.source, self.link_name, self.instance, self.func);
        calls.stats.remote.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::new();
        if let Err(e) = lattice_wrpc::encode_values(param_types, params, &mut bytes) {
            return (Err(CallError::new(CallErrorKind::Decode, e.to_string())), 0);
        }
        let bytes = Bytes::from(bytes);
        let mut headers = HeaderMap::new();
        headers.insert(SOURCE_HEADER, source);
        headers.insert(LINK_HEADER, link_name);
        headers.insert(TRACEPARENT_HEADER, trace.to_string().as_str());
        let deadline = Instant::now() + calls.timeout;
        let prefix = lattice_proto::wrpc::component_prefix(lattice, target);
        let policy = calls.policy(target, idempotent);
        calls
            .send_counted(target, &policy, deadline, || {
                let call = Call::new(&prefix, instance, func, bytes.clone(), deadline)
                    .with_headers(headers.clone());
                calls
                    .wrpc
                    .invoke(call, |b| lattice_wrpc::decode_values::<Val>(results, b))
            })
            .await
    }
}
